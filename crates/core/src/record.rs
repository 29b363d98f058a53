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

/// Why a request failed: a stable code that groups failures (`failure_reasons` in the result). The message and
/// the elapsed time of each failure stay in its record ([`RequestRecord::error`], [`RequestRecord::error_ms`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureCode {
    /// HTTP 429 (rate limited).
    #[serde(rename = "http_429")]
    Http429,
    /// Another HTTP 4xx answer (bad request, unknown model, …).
    #[serde(rename = "http_4xx")]
    Http4xx,
    /// An HTTP 5xx answer.
    #[serde(rename = "http_5xx")]
    Http5xx,
    /// Another non-2xx status (1xx/3xx as a final answer).
    HttpOther,
    /// The TCP connection could not be opened (refused, unreachable, name not resolved).
    Connect,
    /// The connection was closed or reset by the server before the response ended.
    Reset,
    /// The connection was not open within the connect timeout.
    TimeoutConnect,
    /// No first token within the first-token timeout.
    TimeoutTtft,
    /// No byte for longer than the idle timeout after the first token.
    TimeoutIdle,
    /// The request took longer than the total timeout.
    TimeoutTotal,
    /// The server reported an error inside the stream (`{"error": …}`).
    StreamError,
    /// An event or body that is not the JSON the API defines (also invalid UTF-8).
    Parse,
    /// The HTTP framing itself is invalid (bad head, bad chunk sizes).
    Protocol,
    /// A 200 answer to a streamed request that is not `text/event-stream`.
    ContentType,
    /// The response ended without any generated text.
    NoOutput,
    /// The stream ended (cleanly) before `[DONE]` and without a finish reason.
    Incomplete,
    /// Any other failure (a record written by an older servebench has no code).
    Other,
}

impl FailureCode {
    /// The stable name (as serialized).
    pub fn as_str(self) -> &'static str {
        match self {
            FailureCode::Http429 => "http_429",
            FailureCode::Http4xx => "http_4xx",
            FailureCode::Http5xx => "http_5xx",
            FailureCode::HttpOther => "http_other",
            FailureCode::Connect => "connect",
            FailureCode::Reset => "reset",
            FailureCode::TimeoutConnect => "timeout_connect",
            FailureCode::TimeoutTtft => "timeout_ttft",
            FailureCode::TimeoutIdle => "timeout_idle",
            FailureCode::TimeoutTotal => "timeout_total",
            FailureCode::StreamError => "stream_error",
            FailureCode::Parse => "parse",
            FailureCode::Protocol => "protocol",
            FailureCode::ContentType => "content_type",
            FailureCode::NoOutput => "no_output",
            FailureCode::Incomplete => "incomplete",
            FailureCode::Other => "other",
        }
    }

    /// The code of a non-2xx HTTP status.
    pub fn of_status(status: u16) -> FailureCode {
        match status {
            429 => FailureCode::Http429,
            400..=499 => FailureCode::Http4xx,
            500..=599 => FailureCode::Http5xx,
            _ => FailureCode::HttpOther,
        }
    }
}

impl std::fmt::Display for FailureCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
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
    /// What went wrong, in words (None: the request succeeded).
    pub error: Option<String>,
    /// The failure's stable code (set with `error`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<FailureCode>,
    /// When the failure was seen, ms after the first send.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_ms: Option<f64>,
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

    /// Marks the request failed with `code`, unless an earlier failure is already recorded (the first cause
    /// wins).
    pub fn fail(&mut self, code: FailureCode, message: impl Into<String>, at_ms: f64) {
        if self.error.is_none() {
            self.error = Some(message.into());
            self.error_code = Some(code);
            self.error_ms = Some(at_ms);
        }
    }

    /// The failure's code (`other` for an error without one); None when the request succeeded.
    pub fn failure_code(&self) -> Option<FailureCode> {
        self.error
            .as_ref()
            .map(|_| self.error_code.unwrap_or(FailureCode::Other))
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
            error_code: Some(FailureCode::Http5xx),
            error_ms: Some(12.5),
            ..Default::default()
        };
        let s = serde_json::to_string(&r).unwrap();
        assert!(s.contains("\"output_tokens_source\":\"usage\""));
        assert!(s.contains("\"error_code\":\"http_5xx\""), "{s}");
        let back: RequestRecord = serde_json::from_str(&s).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn failure_codes_are_stable_names_and_the_first_cause_wins() {
        for code in [
            FailureCode::Http429,
            FailureCode::TimeoutTtft,
            FailureCode::ContentType,
        ] {
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
        }
        assert_eq!(FailureCode::of_status(429), FailureCode::Http429);
        assert_eq!(FailureCode::of_status(404), FailureCode::Http4xx);
        assert_eq!(FailureCode::of_status(503), FailureCode::Http5xx);
        assert_eq!(FailureCode::of_status(302), FailureCode::HttpOther);
        let mut r = RequestRecord::default();
        assert_eq!(r.failure_code(), None);
        r.fail(FailureCode::Reset, "closed", 5.0);
        r.fail(FailureCode::TimeoutIdle, "later", 9.0);
        assert_eq!(r.failure_code(), Some(FailureCode::Reset));
        assert_eq!(
            (r.error.as_deref(), r.error_ms),
            (Some("closed"), Some(5.0))
        );
        r.error_code = None;
        assert_eq!(r.failure_code(), Some(FailureCode::Other));
    }
}
