//! Simulator configuration and named presets.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::engine::{simulate, EngineParams, VirtualRequest};
use crate::prompt::PromptCounter;
use crate::timing::TimingModel;
use crate::SimError;

/// Where an answer-key response puts its reasoning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReasoningMode {
    /// `<think>…</think>` at the start of the content (DeepSeek-R1 served without a reasoning parser).
    #[default]
    Inline,
    /// In `reasoning_content` of the chat message/delta (a reasoning parser on SGLang/vLLM). Text APIs
    /// (`/v1/completions`, `/generate`) have no such field and get the inline form.
    Field,
    /// No reasoning text at all: only the final answer sentence.
    None,
}

impl ReasoningMode {
    pub fn parse(s: &str) -> Result<ReasoningMode, SimError> {
        match s {
            "inline" => Ok(ReasoningMode::Inline),
            "field" => Ok(ReasoningMode::Field),
            "none" => Ok(ReasoningMode::None),
            other => Err(SimError::Config(format!(
                "unknown reasoning mode {other:?}: use inline, field or none"
            ))),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ReasoningMode::Inline => "inline",
            ReasoningMode::Field => "field",
            ReasoningMode::None => "none",
        }
    }
}

/// Fixed-latency ("mock") timing: every request independently gets its first chunk `ttft_ms` after it is admitted
/// and each next chunk `itl_ms` after the previous one, with no batching interaction (GuideLLM's mock server works
/// this way). `0/0` is the zero-compute fire-hose: chunks are produced as fast as the client reads them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FixedLatency {
    pub ttft_ms: f64,
    pub itl_ms: f64,
}

/// Seeded fault injection. Rates are probabilities per request in [0, 1].
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct FaultConfig {
    /// Answer HTTP 500 (JSON error body) before any byte of a generation response.
    pub fail_rate: f64,
    /// Drop the connection in the middle of a response (after at least one chunk for streams).
    pub disconnect_rate: f64,
    /// Insert one malformed (truncated JSON) event into a stream, or truncate a non-streaming JSON body.
    pub malformed_rate: f64,
    /// Serve one request per connection, as servers that close keep-alive connections after each response do
    /// (llama.cpp's), but without announcing it (no `Connection: close`): the connection is closed once idle for
    /// 25 ms after its response, and a further request that arrives on it before then is dropped unanswered — the
    /// race a client meets when it reuses a connection the server is closing. Tests the client's retry of a request
    /// that fails on a reused connection before any byte arrives.
    pub close_keepalive: bool,
    /// Close keep-alive connections (silently, without `Connection: close`) once idle for this long.
    pub close_idle_after_ms: Option<u64>,
    /// The fault matrix: probability per request of each [`crate::Fault`], by `Fault as usize`
    /// (`--fault NAME[=RATE]`); a request's `x-sim-fault` header overrides the draw.
    pub rates: [f64; crate::faults::FAULT_COUNT],
}

impl FaultConfig {
    /// Injects `fault` into this share of requests.
    pub fn set_rate(&mut self, fault: crate::Fault, rate: f64) {
        self.rates[fault as usize] = rate;
    }
}

/// Every parameter of the simulator. `Default` is the `default` preset.
#[derive(Clone)]
pub struct SimConfig {
    /// Preset this configuration started from (reported by `/get_server_info`).
    pub preset: String,
    /// Model name served (`/v1/models`); requests may name any model, it is echoed back.
    pub model: String,
    /// Global seed of every random choice (output words, EOS, answer-key verdicts, faults).
    pub seed: u64,
    /// Longest prompt + output accepted (HTTP 400 beyond it).
    pub max_model_len: u32,

    /// Sequences decoding at once; more requests wait in a FCFS queue.
    pub max_running: usize,
    /// KV-cache capacity in tokens: a request is admitted only if its prompt + output fit.
    pub kv_capacity_tokens: u64,
    /// Prompt tokens processed per step (chunked prefill).
    pub chunked_prefill_size: u32,
    pub prefill_us_per_token: f64,
    pub decode_base_ms: f64,
    pub decode_per_seq_us: f64,
    pub decode_per_ctx_token_ns: f64,
    /// Tokens per streamed chunk (and per step for each decoding sequence).
    pub tokens_per_chunk: u32,
    /// Busy-wait (yielding) this long before each step deadline instead of sleeping. Tokio timers have 1 ms
    /// resolution; 1000 gives sub-millisecond step times at the cost of CPU. 0: sleep only (steps end up to ~1 ms
    /// late, but deadlines are absolute, so the error never accumulates).
    pub timer_spin_us: u64,
    /// When set, use fixed per-request latencies instead of the batch engine (see [`FixedLatency`]).
    pub fixed_latency: Option<FixedLatency>,
    /// Zero-latency (fire-hose) mode only: most SSE events written per body frame (a frame also stops growing
    /// at about 16 KiB). 1 (the default of every preset but `firehose`) writes each event on its own, as engines
    /// do; more makes the simulator cheaper per event (fewer, larger socket writes, same SSE bytes). The `firehose`
    /// preset uses [`FIREHOSE_CHUNKS_PER_WRITE`].
    pub chunks_per_write: u32,

    /// Probability per generated token that the model emits EOS (ends with finish_reason "stop"), unless the
    /// request sets `ignore_eos` or a `min_tokens` that forbids it. 0 (default): outputs run to `max_tokens`.
    pub eos_prob: f64,
    /// Output length for a chat request that sets no `max_tokens` (the simulator's stand-in for a model's natural
    /// answer length; finish_reason "stop"). Completions default to 16 tokens (OpenAI), `/generate` to 128 (SGLang).
    pub default_max_tokens: u32,

    /// Imitate `transformers serve`: HTTP 422 on any body field outside the OpenAI schema, no usage in streams,
    /// no `/generate`.
    pub strict_openai: bool,
    pub faults: FaultConfig,
    /// Largest request body accepted (HTTP 413 beyond it).
    pub max_body_bytes: usize,

    /// Answer-key files (JSONL with problem/question + answer, or GPQA-layout CSV).
    pub answer_key_files: Vec<PathBuf>,
    /// Probability that a known question gets the gold answer.
    pub accuracy: f64,
    /// Share of wrong answers that are well-formed (a wrong `\boxed{}`); the rest have no boxed answer.
    pub wrong_share: f64,
    /// Accuracy under load: when at least `load_flip_threshold` other generation requests are in flight
    /// (arrived, not yet ended) at a request's arrival, this share of answer-key answers flip (correct → a wrong boxed
    /// answer, wrong → correct), chosen by the request's content (question and sample).
    pub load_flip_rate: f64,
    pub load_flip_threshold: u64,
    pub reasoning: ReasoningMode,
    /// Filler words of reasoning before an answer-key answer.
    pub reasoning_tokens: u32,

    /// Request traces kept (oldest dropped first); 0 disables tracing.
    pub trace_capacity: usize,
    /// Chunk timestamps kept over all traces (oldest traces dropped first); 12 bytes each, so the default 8 M
    /// bounds trace memory to about 100 MB.
    pub trace_chunk_budget: usize,

    /// Prompt token counter; `None` uses [`crate::HeuristicCounter`].
    pub prompt_counter: Option<Arc<dyn PromptCounter>>,
}

impl fmt::Debug for SimConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimConfig")
            .field("preset", &self.preset)
            .field("model", &self.model)
            .field("seed", &self.seed)
            .field("max_model_len", &self.max_model_len)
            .field("max_running", &self.max_running)
            .field("kv_capacity_tokens", &self.kv_capacity_tokens)
            .field("chunked_prefill_size", &self.chunked_prefill_size)
            .field("prefill_us_per_token", &self.prefill_us_per_token)
            .field("decode_base_ms", &self.decode_base_ms)
            .field("decode_per_seq_us", &self.decode_per_seq_us)
            .field("decode_per_ctx_token_ns", &self.decode_per_ctx_token_ns)
            .field("tokens_per_chunk", &self.tokens_per_chunk)
            .field("timer_spin_us", &self.timer_spin_us)
            .field("fixed_latency", &self.fixed_latency)
            .field("chunks_per_write", &self.chunks_per_write)
            .field("eos_prob", &self.eos_prob)
            .field("default_max_tokens", &self.default_max_tokens)
            .field("strict_openai", &self.strict_openai)
            .field("faults", &self.faults)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("answer_key_files", &self.answer_key_files)
            .field("accuracy", &self.accuracy)
            .field("wrong_share", &self.wrong_share)
            .field("load_flip_rate", &self.load_flip_rate)
            .field("load_flip_threshold", &self.load_flip_threshold)
            .field("reasoning", &self.reasoning)
            .field("reasoning_tokens", &self.reasoning_tokens)
            .field("trace_capacity", &self.trace_capacity)
            .field("trace_chunk_budget", &self.trace_chunk_budget)
            .field(
                "prompt_counter",
                &self.prompt_counter.as_ref().map(|_| "custom"),
            )
            .finish()
    }
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            preset: "default".to_string(),
            model: "servebench-sim".to_string(),
            seed: 0,
            max_model_len: 32_768,
            max_running: 256,
            kv_capacity_tokens: 500_000,
            chunked_prefill_size: 8192,
            prefill_us_per_token: 40.0,
            decode_base_ms: 9.0,
            decode_per_seq_us: 50.0,
            decode_per_ctx_token_ns: 20.0,
            tokens_per_chunk: 1,
            timer_spin_us: 0,
            fixed_latency: None,
            chunks_per_write: 1,
            eos_prob: 0.0,
            default_max_tokens: 1024,
            strict_openai: false,
            faults: FaultConfig::default(),
            max_body_bytes: 32 << 20,
            answer_key_files: Vec::new(),
            accuracy: 1.0,
            wrong_share: 0.8,
            load_flip_rate: 0.0,
            load_flip_threshold: 2,
            reasoning: ReasoningMode::Inline,
            reasoning_tokens: 48,
            trace_capacity: 100_000,
            trace_chunk_budget: 8_000_000,
            prompt_counter: None,
        }
    }
}

/// `chunks_per_write` of the `firehose` preset: with one event per frame the simulator spends most of its core in
/// the kernel's per-write path and saturates near 1M chunks/s, below what a fast client reads (bench/sim_ceiling.sh).
pub const FIREHOSE_CHUNKS_PER_WRITE: u32 = 64;

/// Names accepted by [`SimConfig::preset`].
const PRESETS: &[&str] = &["default", "h200-dsr1", "slow", "fast", "firehose", "mock"];

/// Zero-load latency of a configuration for one request shape.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ExpectedLatency {
    /// Arrival to first chunk.
    pub ttft: Duration,
    /// Mean time per output token after the first chunk: (last chunk - first chunk) / (output tokens - 1).
    pub tpot: Duration,
    /// Arrival to last chunk.
    pub e2e: Duration,
}

impl SimConfig {
    /// A named preset (see [`SimConfig::preset_names`]):
    /// - `default`: a mid-size model on one modern GPU (TTFT ~20 ms for 512 tokens, TPOT ~9 ms at batch 1,
    ///   ~15 ms at batch 64);
    /// - `h200-dsr1`: roughly DeepSeek-R1 on 8×H200 (TTFT ~0.45 s for 5,600 tokens, TPOT ~22 ms growing to
    ///   ~32 ms at batch 64 with long contexts);
    /// - `slow`: visible progress for demos (TTFT ~100 ms, TPOT ~40 ms);
    /// - `fast`: tiny but non-zero costs for tests (TTFT ~0.5 ms, TPOT ~1 ms);
    /// - `firehose`: zero compute, no queue: chunks as fast as clients read them (for measuring clients), up to
    ///   [`FIREHOSE_CHUNKS_PER_WRITE`] per body frame;
    /// - `mock`: fixed TTFT 50 ms and ITL 10 ms per request, no batching interaction.
    pub fn preset(name: &str) -> Result<SimConfig, SimError> {
        let base = SimConfig {
            preset: name.to_string(),
            ..SimConfig::default()
        };
        let cfg = match name {
            "default" => base,
            "h200-dsr1" => SimConfig {
                max_model_len: 163_840,
                max_running: 256,
                kv_capacity_tokens: 600_000,
                chunked_prefill_size: 16_384,
                prefill_us_per_token: 80.0,
                decode_base_ms: 22.0,
                decode_per_seq_us: 120.0,
                decode_per_ctx_token_ns: 3.0,
                ..base
            },
            "slow" => SimConfig {
                max_running: 32,
                kv_capacity_tokens: 200_000,
                chunked_prefill_size: 4096,
                prefill_us_per_token: 200.0,
                decode_base_ms: 40.0,
                decode_per_seq_us: 200.0,
                decode_per_ctx_token_ns: 10.0,
                ..base
            },
            "fast" => SimConfig {
                max_model_len: 131_072,
                max_running: 1024,
                kv_capacity_tokens: 10_000_000,
                chunked_prefill_size: 16_384,
                prefill_us_per_token: 1.0,
                decode_base_ms: 1.0,
                decode_per_seq_us: 1.0,
                decode_per_ctx_token_ns: 0.0,
                ..base
            },
            "firehose" => SimConfig {
                max_model_len: 1 << 24,
                max_running: usize::MAX,
                kv_capacity_tokens: u64::MAX,
                fixed_latency: Some(FixedLatency {
                    ttft_ms: 0.0,
                    itl_ms: 0.0,
                }),
                prefill_us_per_token: 0.0,
                decode_base_ms: 0.0,
                decode_per_seq_us: 0.0,
                decode_per_ctx_token_ns: 0.0,
                chunks_per_write: FIREHOSE_CHUNKS_PER_WRITE,
                ..base
            },
            "mock" => SimConfig {
                max_model_len: 1 << 24,
                max_running: usize::MAX,
                kv_capacity_tokens: u64::MAX,
                fixed_latency: Some(FixedLatency {
                    ttft_ms: 50.0,
                    itl_ms: 10.0,
                }),
                ..base
            },
            other => {
                return Err(SimError::Config(format!(
                    "unknown preset {other:?}: use one of {}",
                    PRESETS.join(", ")
                )))
            }
        };
        Ok(cfg)
    }

    /// The names [`SimConfig::preset`] accepts.
    pub fn preset_names() -> &'static [&'static str] {
        PRESETS
    }

    /// The timing model of the batch engine.
    pub fn timing(&self) -> TimingModel {
        TimingModel {
            prefill_us_per_token: self.prefill_us_per_token,
            decode_base_ms: self.decode_base_ms,
            decode_per_seq_us: self.decode_per_seq_us,
            decode_per_ctx_token_ns: self.decode_per_ctx_token_ns,
        }
    }

    /// The scheduler parameters (for [`crate::engine::simulate`]).
    pub fn engine_params(&self) -> EngineParams {
        EngineParams {
            max_running: self.max_running,
            kv_capacity_tokens: self.kv_capacity_tokens,
            chunked_prefill_size: self.chunked_prefill_size,
            tokens_per_chunk: self.tokens_per_chunk,
            timing: self.timing(),
        }
    }

    /// Check every parameter; the error names the offending field.
    pub fn validate(&self) -> Result<(), SimError> {
        let bad = |field: &str, why: &str| Err(SimError::Config(format!("{field}: {why}")));
        for (field, v) in [
            ("prefill_us_per_token", self.prefill_us_per_token),
            ("decode_base_ms", self.decode_base_ms),
            ("decode_per_seq_us", self.decode_per_seq_us),
            ("decode_per_ctx_token_ns", self.decode_per_ctx_token_ns),
        ] {
            if !v.is_finite() || v < 0.0 {
                return bad(field, "must be a finite number >= 0");
            }
        }
        for (field, v) in [
            ("eos_prob", self.eos_prob),
            ("accuracy", self.accuracy),
            ("wrong_share", self.wrong_share),
            ("load_flip_rate", self.load_flip_rate),
            ("fail_rate", self.faults.fail_rate),
            ("disconnect_rate", self.faults.disconnect_rate),
            ("malformed_rate", self.faults.malformed_rate),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return bad(field, "must be a probability between 0 and 1");
            }
        }
        for f in crate::Fault::ALL {
            if !(0.0..=1.0).contains(&self.faults.rates[f as usize]) {
                return bad(f.name(), "must be a probability between 0 and 1");
            }
        }
        if let Some(f) = self.fixed_latency {
            if !f.ttft_ms.is_finite() || f.ttft_ms < 0.0 || !f.itl_ms.is_finite() || f.itl_ms < 0.0
            {
                return bad("ttft_ms/itl_ms", "must be finite numbers >= 0");
            }
        }
        if self.max_running == 0 {
            return bad("max_running", "must be at least 1");
        }
        if self.kv_capacity_tokens == 0 {
            return bad("kv_capacity_tokens", "must be at least 1");
        }
        if self.chunked_prefill_size == 0 {
            return bad("chunked_prefill_size", "must be at least 1");
        }
        if self.chunks_per_write == 0 {
            return bad("chunks_per_write", "must be at least 1");
        }
        if self.tokens_per_chunk == 0 {
            return bad("tokens_per_chunk", "must be at least 1");
        }
        if self.max_model_len < 2 {
            return bad("max_model_len", "must be at least 2");
        }
        if self.default_max_tokens == 0 {
            return bad("default_max_tokens", "must be at least 1");
        }
        if self.model.is_empty() {
            return bad("model", "must not be empty");
        }
        Ok(())
    }

    /// Latency of one request alone on the engine (no queue, no other sequences).
    pub fn expected_latency(&self, prompt_tokens: u32, output_tokens: u32) -> ExpectedLatency {
        let output_tokens = output_tokens.max(1);
        let k = self.tokens_per_chunk.max(1);
        if let Some(f) = self.fixed_latency {
            let chunks = output_tokens.div_ceil(k);
            let ttft = Duration::from_secs_f64(f.ttft_ms / 1e3);
            let rest = Duration::from_secs_f64(f.itl_ms / 1e3 * f64::from(chunks - 1));
            let tpot = if output_tokens > 1 {
                rest / (output_tokens - 1)
            } else {
                Duration::ZERO
            };
            return ExpectedLatency {
                ttft,
                tpot,
                e2e: ttft + rest,
            };
        }
        let req = VirtualRequest {
            arrival_ns: 0,
            prompt_tokens,
            output_tokens,
        };
        let t = &simulate(self.engine_params(), &[req])[0];
        let first = t.first_chunk_ns().unwrap_or(0);
        let last = t.last_chunk_ns().unwrap_or(0);
        let tpot = if output_tokens > 1 {
            (last - first) / u64::from(output_tokens - 1)
        } else {
            0
        };
        ExpectedLatency {
            ttft: Duration::from_nanos(first),
            tpot: Duration::from_nanos(tpot),
            e2e: Duration::from_nanos(last),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_preset_is_valid() {
        for name in SimConfig::preset_names() {
            let c = SimConfig::preset(name).unwrap();
            c.validate().unwrap();
            assert_eq!(c.preset, *name);
        }
        assert!(matches!(
            SimConfig::preset("nope"),
            Err(SimError::Config(_))
        ));
        assert_eq!(SimConfig::default().preset, "default");
    }

    #[test]
    fn default_preset_latency_at_low_load() {
        let e = SimConfig::default().expected_latency(512, 128);
        // 512 x 40 us
        assert_eq!(e.ttft, Duration::from_micros(20_480));
        // 9 ms + 50 us + ~(512+64) x 20 ns
        assert!(
            e.tpot > Duration::from_micros(9_050) && e.tpot < Duration::from_micros(9_070),
            "{e:?}"
        );
    }

    #[test]
    fn mock_preset_latency() {
        let e = SimConfig::preset("mock").unwrap().expected_latency(100, 11);
        assert_eq!(e.ttft, Duration::from_millis(50));
        assert_eq!(e.tpot, Duration::from_millis(10));
        assert_eq!(e.e2e, Duration::from_millis(150));
    }

    #[test]
    fn validation_names_the_field() {
        let c = SimConfig {
            accuracy: 1.5,
            ..SimConfig::default()
        };
        let err = c.validate().unwrap_err().to_string();
        assert!(err.contains("accuracy"), "{err}");
        let c = SimConfig {
            max_running: 0,
            ..SimConfig::default()
        };
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("max_running"));
        let c = SimConfig {
            decode_base_ms: f64::NAN,
            ..SimConfig::default()
        };
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("decode_base_ms"));
    }

    #[test]
    fn reasoning_mode_parses() {
        assert_eq!(ReasoningMode::parse("field").unwrap(), ReasoningMode::Field);
        assert_eq!(ReasoningMode::parse("none").unwrap().as_str(), "none");
        assert!(ReasoningMode::parse("both").is_err());
    }
}
