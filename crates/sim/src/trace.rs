//! Ground truth: what the simulator did with each request, and when.
//!
//! Served as `GET /sim/trace?id=ID` (one JSON object; 404 if unknown) and `GET /sim/traces` (JSON lines, oldest
//! first), and returned by `SimServer::traces()`. One trace per request:
//!
//! ```json
//! {"id": "client-id-or-sim-id", "sim_id": "sim-17", "endpoint": "chat", "stream": true, "status": "ok",
//!  "prompt_tokens": 512, "completion_tokens": 128, "finish_reason": "length",
//!  "arrival_ns": 1700000000000000000, "prefill_start_ns": …, "prefill_end_ns": …, "first_token_ns": …,
//!  "end_ns": …, "chunk_ns": [ … ], "chunk_tokens": [ … ]}
//! ```
//!
//! - Times are Unix-epoch nanoseconds read from the system clock (`SystemTime`), comparable with a client's
//!   wall-clock timestamps on the same machine.
//! - `id` is the client's `x-request-id` header when sent (else the body's `rid` for `/generate`, else `sim_id`);
//!   `sim_id` is the value of the `x-sim-request-id` response header.
//! - `endpoint`: `completions`, `chat` or `generate`.
//! - `arrival_ns`: the handler received the whole request body.
//! - `prefill_start_ns` / `prefill_end_ns`: the engine step that began the prompt's prefill started / the step that
//!   finished it ended (that step produced the first chunk). Absent for fixed-latency presets and for requests that
//!   never reached the engine.
//! - `chunk_ns[i]`: when the i-th text-carrying chunk was handed to the HTTP response body (immediately before the
//!   server writes it to the socket); `chunk_tokens[i]` its token count. Chunks produced in the same instant share a
//!   time. Extra events (the chat role chunk, the usage chunk, `[DONE]`, an injected malformed event) are not listed.
//!   A non-streaming response has one entry: when the whole body was handed over.
//! - `first_token_ns`: `chunk_ns[0]`. `end_ns`: when the final bytes (`[DONE]`) were handed over, or when the
//!   request ended otherwise.
//! - `status`: `ok`, `fail_injected` (HTTP 500 by `--fail-rate`), `disconnect_injected`, `malformed_injected` (the
//!   stream completed but carried a malformed event), `keepalive_dropped` (`--close-keepalive` dropped it),
//!   `client_gone` (the client closed the connection first), `rejected` (HTTP 4xx).
//!
//! A trace is published when its response ends: for a stream, just before the final bytes are handed over, so a
//! client that has read `[DONE]` finds it. Memory is bounded: at most `trace_capacity` traces and
//! `trace_chunk_budget` chunk times are kept (the oldest traces go first).

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// Unix-epoch nanoseconds now.
pub(crate) fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// How a request ended (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TraceStatus {
    Ok,
    FailInjected,
    DisconnectInjected,
    MalformedInjected,
    KeepaliveDropped,
    ClientGone,
    Rejected,
}

/// The ground truth of one request (format in the module documentation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestTrace {
    pub id: String,
    pub sim_id: String,
    pub endpoint: String,
    pub stream: bool,
    pub status: TraceStatus,
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finish_reason: Option<String>,
    pub arrival_ns: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefill_start_ns: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefill_end_ns: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_token_ns: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_ns: Option<u64>,
    pub chunk_ns: Vec<u64>,
    pub chunk_tokens: Vec<u32>,
}

impl RequestTrace {
    pub(crate) fn new(
        id: String,
        sim_id: String,
        endpoint: &str,
        stream: bool,
        arrival_ns: u64,
    ) -> Self {
        RequestTrace {
            id,
            sim_id,
            endpoint: endpoint.to_string(),
            stream,
            status: TraceStatus::Ok,
            prompt_tokens: 0,
            completion_tokens: 0,
            finish_reason: None,
            arrival_ns,
            prefill_start_ns: None,
            prefill_end_ns: None,
            first_token_ns: None,
            end_ns: None,
            chunk_ns: Vec::new(),
            chunk_tokens: Vec::new(),
        }
    }

    /// Make room for `n` more chunk records (one allocation per request instead of regrowth).
    pub(crate) fn reserve_chunks(&mut self, n: usize) {
        self.chunk_ns.reserve_exact(n);
        self.chunk_tokens.reserve_exact(n);
    }

    /// Record a text-carrying chunk handed over at `t`.
    pub(crate) fn chunk(&mut self, t: u64, tokens: u32) {
        if self.first_token_ns.is_none() {
            self.first_token_ns = Some(t);
        }
        self.chunk_ns.push(t);
        self.chunk_tokens.push(tokens);
        self.completion_tokens += tokens;
    }
}

/// Bounded store of finished traces.
#[derive(Debug)]
pub(crate) struct TraceStore {
    capacity: usize,
    chunk_budget: usize,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    traces: VecDeque<RequestTrace>,
    chunks: usize,
}

impl TraceStore {
    pub(crate) fn new(capacity: usize, chunk_budget: usize) -> Self {
        TraceStore {
            capacity,
            chunk_budget,
            inner: Mutex::new(Inner::default()),
        }
    }

    pub(crate) fn enabled(&self) -> bool {
        self.capacity > 0
    }

    pub(crate) fn push(&self, trace: RequestTrace) {
        if self.capacity == 0 {
            return;
        }
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        g.chunks += trace.chunk_ns.len();
        g.traces.push_back(trace);
        while g.traces.len() > self.capacity || (g.chunks > self.chunk_budget && g.traces.len() > 1)
        {
            if let Some(old) = g.traces.pop_front() {
                g.chunks -= old.chunk_ns.len();
            }
        }
    }

    /// The most recent trace with this id.
    pub(crate) fn get(&self, id: &str) -> Option<RequestTrace> {
        let g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        g.traces
            .iter()
            .rev()
            .find(|t| t.id == id || t.sim_id == id)
            .cloned()
    }

    pub(crate) fn all(&self) -> Vec<RequestTrace> {
        let g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        g.traces.iter().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trace(id: &str, chunks: usize) -> RequestTrace {
        let mut t = RequestTrace::new(id.to_string(), format!("sim-{id}"), "chat", true, 1);
        for i in 0..chunks {
            t.chunk(10 + i as u64, 1);
        }
        t
    }

    #[test]
    fn store_keeps_the_newest_within_both_bounds() {
        let s = TraceStore::new(3, 10);
        for i in 0..5 {
            s.push(trace(&i.to_string(), 2));
        }
        let ids: Vec<String> = s.all().into_iter().map(|t| t.id).collect();
        assert_eq!(ids, vec!["2", "3", "4"]);
        s.push(trace("big", 9));
        let ids: Vec<String> = s.all().into_iter().map(|t| t.id).collect();
        assert_eq!(ids, vec!["big"]);
        assert_eq!(s.get("sim-big").unwrap().completion_tokens, 9);
        assert!(s.get("0").is_none());
    }

    #[test]
    fn disabled_store_keeps_nothing() {
        let s = TraceStore::new(0, 10);
        assert!(!s.enabled());
        s.push(trace("a", 1));
        assert!(s.all().is_empty());
    }

    #[test]
    fn serializes_with_documented_keys() {
        let t = trace("x", 2);
        let v: serde_json::Value = serde_json::to_value(&t).unwrap();
        assert_eq!(v["status"], "ok");
        assert_eq!(v["first_token_ns"], 10);
        assert_eq!(v["chunk_ns"], serde_json::json!([10, 11]));
        assert!(v.get("prefill_start_ns").is_none());
        let back: RequestTrace = serde_json::from_value(v).unwrap();
        assert_eq!(back, t);
    }
}
