//! The per-request record: everything measured about one request, written one JSON object a line
//! (`--output-details`) and the only input of the statistics.

use serde::{Deserialize, Serialize};

/// Where an output token count came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum TokenSource {
    /// The server's `usage.completion_tokens` (or SGLang's `meta_info.completion_tokens`).
    Usage,
    /// Re-tokenizing the generated text with the client's tokenizer (the server sent no usage).
    Tokenizer,
    /// Unknown (no usage and no tokenizer).
    #[default]
    None,
}

/// One request, as measured. Times are milliseconds; offsets `*_ms` without a prefix are from the
/// request's send, `scheduled_ms`/`send_ms` are from the start of the timed run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RequestRecord {
    pub index: u64,
    /// Sent as `X-Request-Id`.
    pub request_id: String,
    /// The prompt text as sent (token ids as a list for `random-ids`).
    pub prompt: String,
    pub prompt_len_intended: Option<u64>,
    /// Prompt tokens counted by the client's tokenizer (chat: after rendering the chat template).
    pub prompt_tokens: Option<u64>,
    /// Prompt tokens the server reported in `usage`.
    pub prompt_tokens_server: Option<u64>,
    pub output_len_intended: Option<u64>,
    /// Output tokens, from [`RequestRecord::output_tokens_source`].
    pub output_tokens: Option<u64>,
    pub output_tokens_source: TokenSource,
    /// Output tokens re-counted with the client's tokenizer (always, when a tokenizer is present).
    pub output_tokens_retokenized: Option<u64>,
    /// When the request was due (open loop: its arrival time; closed loop: when it was ready).
    pub scheduled_ms: f64,
    /// Time spent waiting for a concurrency permit (`client_queue_ms`).
    pub queue_ms: f64,
    /// When the request was written, from the start of the run.
    pub send_ms: f64,
    /// Wall clock at send, nanoseconds since the Unix epoch (to line up with server-side traces).
    pub send_unix_ns: u64,
    /// Send → first chunk carrying text or reasoning.
    pub ttft_ms: Option<f64>,
    /// Send → end of stream.
    pub e2e_ms: Option<f64>,
    /// Arrival of each text-carrying chunk, from send.
    pub chunk_ms: Vec<f64>,
    /// Tokens carried by each chunk when the server says (SGLang's cumulative counts); else empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub chunk_tokens: Vec<u32>,
    pub finish_reason: Option<String>,
    pub http_status: Option<u16>,
    /// Requests re-sent because a reused connection failed before any byte arrived.
    pub retries: u32,
    /// Longest wait between a response segment's arrival (kernel receive timestamp) and the client's read of
    /// it: the client's own delay, which the chunk times do not include. Only with kernel timestamps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_delay_ms: Option<f64>,
    /// Reads of this response with a kernel timestamp, and how many of them came more than 1 ms late.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub timed_reads: u32,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub late_reads: u32,
    pub error: Option<String>,
    pub generated_text: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reasoning_text: String,
    /// Part of warm-up, not of the timed run.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub warmup: bool,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl RequestRecord {
    pub fn ok(&self) -> bool {
        self.error.is_none()
    }

    /// Inter-token latencies: gaps between successive text-carrying chunks (SGLang's per-chunk ITL).
    pub fn itl_ms(&self) -> impl Iterator<Item = f64> + '_ {
        self.chunk_ms.windows(2).map(|w| w[1] - w[0])
    }

    /// Per-token ITL: a chunk carrying k tokens contributes k gaps of (gap / k). Only where token counts per
    /// chunk are known.
    pub fn itl_per_token_ms(&self) -> Vec<f64> {
        if self.chunk_tokens.len() != self.chunk_ms.len() {
            return Vec::new();
        }
        let mut out = Vec::new();
        for i in 1..self.chunk_ms.len() {
            let k = self.chunk_tokens[i].max(1);
            let gap = (self.chunk_ms[i] - self.chunk_ms[i - 1]) / k as f64;
            out.extend(std::iter::repeat_n(gap, k as usize));
        }
        out
    }

    /// (E2E − TTFT) / (output_tokens − 1), for more than one output token.
    pub fn tpot_ms(&self) -> Option<f64> {
        let out = self.output_tokens?;
        if out <= 1 {
            return None;
        }
        Some((self.e2e_ms? - self.ttft_ms?) / (out - 1) as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_latencies() {
        let r = RequestRecord {
            ttft_ms: Some(100.0),
            e2e_ms: Some(190.0),
            output_tokens: Some(10),
            chunk_ms: vec![100.0, 110.0, 130.0],
            chunk_tokens: vec![1, 2, 4],
            ..Default::default()
        };
        assert_eq!(r.tpot_ms(), Some(10.0));
        assert_eq!(r.itl_ms().collect::<Vec<_>>(), vec![10.0, 20.0]);
        assert_eq!(r.itl_per_token_ms(), vec![5.0, 5.0, 5.0, 5.0, 5.0, 5.0]);
        let one = RequestRecord {
            output_tokens: Some(1),
            ..r.clone()
        };
        assert_eq!(one.tpot_ms(), None);
    }

    #[test]
    fn record_round_trips_through_json() {
        let r = RequestRecord {
            index: 3,
            prompt: "hi".into(),
            output_tokens_source: TokenSource::Usage,
            error: Some("HTTP 500".into()),
            ..Default::default()
        };
        let s = serde_json::to_string(&r).unwrap();
        assert!(s.contains("\"output_tokens_source\":\"usage\""));
        let back: RequestRecord = serde_json::from_str(&s).unwrap();
        assert_eq!(back, r);
    }
}
