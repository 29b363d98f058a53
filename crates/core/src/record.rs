//! The per-request record: everything measured about one request, written one JSON object a line
//! (`--output-details`) and the only input of the statistics.

use serde::{Deserialize, Serialize};

/// How sglang.bench_serving 0.5.9 turns chunk gaps into `*_itl_ms` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ItlRule {
    /// One gap per answer-carrying chunk (its OpenAI-style clients).
    #[default]
    PerChunk,
    /// Native `/generate`: each gap split evenly over the chunk's new tokens (the `completion_tokens` delta);
    /// a chunk with 0 new tokens is skipped without moving the reference time.
    ServerTokens,
    /// `sglang-oai` / `sglang-oai-chat` with a server accept length > 0: one gap per answer chunk kept by the
    /// client, split over the chunk's re-tokenized answer text in the statistics.
    RetokenizedChunks,
}

impl ItlRule {
    /// The rule sglang applies to a run of `backend` (as named on the command line) whose server reported
    /// `accept_length`.
    pub fn for_run(backend: &str, native: bool, accept_length: Option<f64>) -> ItlRule {
        if native {
            ItlRule::ServerTokens
        } else if matches!(backend, "sglang-oai" | "sglang-oai-chat")
            && accept_length.is_some_and(|a| a > 0.0)
        {
            ItlRule::RetokenizedChunks
        } else {
            ItlRule::PerChunk
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ItlRule::PerChunk => "per_chunk",
            ItlRule::ServerTokens => "server_tokens",
            ItlRule::RetokenizedChunks => "retokenized_chunks",
        }
    }
}

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
    /// Tokens carried by each chunk: SGLang native, the server's `completion_tokens` delta; `sglang-oai(-chat)`
    /// with a server accept length, each chunk's answer text re-tokenized (as sglang splits its ITL); else empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub chunk_tokens: Vec<u32>,
    /// Bytes of answer text (`generated_text`) received up to and including each chunk. A chunk that did not
    /// extend it carried reasoning only (or, SGLang native, new tokens without new text). Empty when unknown.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub chunk_text_end: Vec<u32>,
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
    /// Which endpoint served it (0-based position in the run's `--base-url` list); only set when the run used
    /// more than one endpoint, so single-endpoint records are unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<u32>,
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

    /// servebench's per-chunk ITL: gaps between successive chunks carrying answer or reasoning text.
    pub fn itl_ms(&self) -> impl Iterator<Item = f64> + '_ {
        self.chunk_ms.windows(2).map(|w| w[1] - w[0])
    }

    /// Per-token ITL: a chunk carrying k tokens contributes k gaps of (gap / k). Only where token counts per
    /// chunk are known.
    pub fn itl_per_token_ms(&self) -> Vec<f64> {
        if self.chunk_tokens.len() != self.chunk_ms.len() {
            return Vec::new();
        }
        let mut out = Vec::with_capacity(self.chunk_ms.len());
        for i in 1..self.chunk_ms.len() {
            let k = self.chunk_tokens[i].max(1);
            let gap = (self.chunk_ms[i] - self.chunk_ms[i - 1]) / k as f64;
            out.extend(std::iter::repeat_n(gap, k as usize));
        }
        out
    }

    /// Whether chunk `i` carried answer text (unknown: every chunk did).
    fn answer_chunk(&self, i: usize) -> bool {
        if self.chunk_text_end.len() != self.chunk_ms.len() {
            return true;
        }
        let prev = if i == 0 {
            0
        } else {
            self.chunk_text_end[i - 1]
        };
        self.chunk_text_end[i] > prev
    }

    /// The answer text chunk `i` carried (empty when unknown).
    pub fn chunk_answer_text(&self, i: usize) -> &str {
        let (Some(&end), true) = (
            self.chunk_text_end.get(i),
            self.chunk_text_end.len() == self.chunk_ms.len(),
        ) else {
            return "";
        };
        let start = if i == 0 {
            0
        } else {
            self.chunk_text_end[i - 1]
        };
        self.generated_text
            .get(start as usize..end as usize)
            .unwrap_or("")
    }

    /// Time to the first chunk carrying answer text (sglang's TTFT: reasoning is not timed). `None` when no
    /// chunk carried answer text.
    pub fn answer_ttft_ms(&self) -> Option<f64> {
        if self.chunk_ms.is_empty() {
            return self.ttft_ms;
        }
        (0..self.chunk_ms.len())
            .find(|&i| self.answer_chunk(i))
            .map(|i| self.chunk_ms[i])
    }

    /// The inter-token latencies sglang 0.5.9 computes for this request under `rule`: `(itl, raw)`, where
    /// `itl` enters the `*_itl_ms` statistics and `raw` is what sglang's client keeps per request
    /// (`output.itl`, which its `max_output_tokens_per_s` walks). Chunks before the first answer chunk and
    /// chunks without answer text are ignored (they do not move the reference time).
    pub fn sglang_itl_ms(&self, rule: ItlRule) -> (Vec<f64>, Vec<f64>) {
        let n = self.chunk_ms.len();
        // One gap a chunk, mostly: room for them up front (a run's records are walked after the run).
        let (mut itl, mut raw) = (Vec::with_capacity(n), Vec::with_capacity(n));
        let Some(first) = (0..n).find(|&i| self.answer_chunk(i)) else {
            return (itl, raw);
        };
        let tokens = self.chunk_tokens.len() == n;
        let mut reference = self.chunk_ms[first];
        for i in first + 1..n {
            let t = self.chunk_ms[i];
            let gap = t - reference;
            match rule {
                ItlRule::PerChunk => {
                    if !self.answer_chunk(i) {
                        continue;
                    }
                    itl.push(gap);
                    raw.push(gap);
                }
                ItlRule::ServerTokens => {
                    let k = match tokens {
                        true => self.chunk_tokens[i] as usize,
                        false => self.answer_chunk(i) as usize,
                    };
                    if k == 0 {
                        continue;
                    }
                    let split = std::iter::repeat_n(gap / k as f64, k);
                    itl.extend(split.clone());
                    raw.extend(split);
                }
                ItlRule::RetokenizedChunks => {
                    if !self.answer_chunk(i) {
                        continue;
                    }
                    raw.push(gap);
                    let k = if tokens {
                        self.chunk_tokens[i] as usize
                    } else {
                        1
                    };
                    // sglang divides by the count (a chunk of 0 tokens would stop it); skipped here.
                    if k > 0 {
                        itl.extend(std::iter::repeat_n(gap / k as f64, k));
                    }
                }
            }
            reference = t;
        }
        (itl, raw)
    }

    /// (E2E − TTFT) / (output_tokens − 1), for more than one output token, with sglang's TTFT (the first
    /// answer chunk; 0 when none, as sglang leaves it).
    pub fn tpot_ms(&self) -> Option<f64> {
        let out = self.output_tokens?;
        if out <= 1 {
            return None;
        }
        Some((self.e2e_ms? - self.answer_ttft_ms().unwrap_or(0.0)) / (out - 1) as f64)
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

    /// A stream of chunks (time ms, answer bytes so far, tokens).
    fn stream(chunks: &[(f64, u32, u32)]) -> RequestRecord {
        RequestRecord {
            ttft_ms: chunks.first().map(|c| c.0),
            e2e_ms: chunks.last().map(|c| c.0),
            chunk_ms: chunks.iter().map(|c| c.0).collect(),
            chunk_text_end: chunks.iter().map(|c| c.1).collect(),
            chunk_tokens: chunks.iter().map(|c| c.2).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn native_itl_splits_each_gap_over_the_chunks_new_tokens() {
        // 4 tokens per chunk, 100 ms apart: sglang's 25 ms, servebench's per-chunk 100 ms.
        let r = stream(&[(100.0, 8, 4), (200.0, 16, 4), (300.0, 24, 4)]);
        let (itl, raw) = r.sglang_itl_ms(ItlRule::ServerTokens);
        assert_eq!(itl, vec![25.0; 8]);
        assert_eq!(raw, itl, "the native client keeps the split values");
        assert_eq!(r.itl_ms().collect::<Vec<_>>(), vec![100.0, 100.0]);
        // A chunk with 0 new tokens is skipped and does not move the reference time; new tokens without new
        // text are timed.
        let r = stream(&[(100.0, 8, 1), (150.0, 9, 0), (200.0, 9, 2), (260.0, 12, 3)]);
        let (itl, _) = r.sglang_itl_ms(ItlRule::ServerTokens);
        assert_eq!(itl, vec![50.0, 50.0, 20.0, 20.0, 20.0]);
    }

    #[test]
    fn reasoning_is_not_timed_by_sglangs_keys() {
        // Three reasoning chunks (no answer bytes), then the answer.
        let r = stream(&[
            (100.0, 0, 0),
            (200.0, 0, 0),
            (300.0, 0, 0),
            (400.0, 5, 0),
            (500.0, 9, 0),
            (550.0, 9, 0),
            (600.0, 12, 0),
        ]);
        assert_eq!(r.ttft_ms, Some(100.0), "first token of any kind");
        assert_eq!(r.answer_ttft_ms(), Some(400.0), "sglang's TTFT");
        let (itl, raw) = r.sglang_itl_ms(ItlRule::PerChunk);
        assert_eq!(
            itl,
            vec![100.0, 100.0],
            "the reasoning chunk at 550 is ignored"
        );
        assert_eq!(raw, itl);
        assert_eq!(
            r.itl_ms().count(),
            6,
            "servebench's per-chunk ITL keeps every chunk"
        );
        assert_eq!(r.chunk_answer_text(4), "", "no text kept in this record");
        let none = stream(&[(100.0, 0, 0)]);
        assert_eq!(none.answer_ttft_ms(), None);
        assert!(none.sglang_itl_ms(ItlRule::PerChunk).0.is_empty());
    }

    #[test]
    fn retokenized_chunks_split_the_statistics_not_the_raw_gaps() {
        let mut r = stream(&[(100.0, 2, 1), (200.0, 7, 3), (300.0, 9, 0), (400.0, 12, 2)]);
        r.generated_text = "ab cde fghij".into();
        assert_eq!(r.chunk_answer_text(1), " cde ");
        let (itl, raw) = r.sglang_itl_ms(ItlRule::RetokenizedChunks);
        assert_eq!(raw, vec![100.0, 100.0, 100.0]);
        assert_eq!(
            itl,
            vec![100.0 / 3.0, 100.0 / 3.0, 100.0 / 3.0, 50.0, 50.0],
            "a chunk of 0 tokens adds nothing"
        );
        assert_eq!(
            ItlRule::for_run("sglang-oai", false, Some(3.5)),
            ItlRule::RetokenizedChunks
        );
        assert_eq!(
            ItlRule::for_run("sglang-oai-chat", false, Some(0.0)),
            ItlRule::PerChunk
        );
        assert_eq!(
            ItlRule::for_run("vllm", false, Some(3.5)),
            ItlRule::PerChunk
        );
        assert_eq!(
            ItlRule::for_run("sglang", true, None),
            ItlRule::ServerTokens
        );
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
