//! servebench-sim: a simulated LLM serving engine.
//!
//! An HTTP server that speaks the OpenAI completions and chat APIs (vLLM-shaped responses, SSE streaming,
//! `stream_options.include_usage`, `ignore_eos`, `min_tokens`) and SGLang's native `/generate`, and behaves like a
//! continuous-batching engine: a FCFS queue beyond `max_running`, KV-capacity admission, chunked prefill, and a decode
//! step whose cost grows with batch size and context ([`timing`], [`engine`]). It records the true send time of
//! every chunk ([`RequestTrace`], `GET /sim/traces`) so tests can measure a client's timing error, injects seeded
//! faults (the fault matrix: [`Fault`], by rate with [`FaultConfig::set_rate`] or per request with the
//! `x-sim-fault` header; docs/reliability.md), and can answer benchmark questions from an answer key for eval demos
//! ([`answer_key`]).
//!
//! Endpoints: `POST /v1/completions`, `POST /v1/chat/completions`, `POST /generate` (not in strict mode),
//! `GET /v1/models`, `GET /health`, `GET /health_generate`, `GET /version`, `GET /get_model_info`,
//! `GET /get_server_info` (also `/server_info`; `"simulated": true`), `GET /metrics` (vLLM metric names, see
//! [`metrics`](crate#metrics)), `POST /flush_cache`, `POST /reset_prefix_cache`, `GET /sim/trace?id=ID`,
//! `GET /sim/traces`. Every response carries `x-sim-request-id`, and echoes `x-request-id` when the request had one.
//!
//! ```no_run
//! # async fn demo() -> Result<(), servebench_sim::SimError> {
//! use servebench_sim::{SimConfig, SimServer};
//! let server = SimServer::start(SimConfig::preset("fast")?, "127.0.0.1:0".parse().unwrap()).await?;
//! println!("{}", server.base_url());
//! server.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! # Output
//! Filler output is common English words, one token each in the Llama-3, Qwen2, DeepSeek and SmolLM2 tokenizers
//! ([`words`]), drawn by a generator seeded from (`--seed`, prompt, request `seed`), so identical requests get
//! identical text. `max_tokens` defaults to 16 (completions), 128 (`/generate`) or `default_max_tokens` (chat, ending
//! "stop"); `ignore_eos` or `min_tokens = max_tokens` give exactly `max_tokens`; otherwise a seeded EOS with
//! `eos_prob` per token may end it early ("stop"). Prompt tokens are counted by a [`PromptCounter`] (a heuristic by
//! default; exact for `input_ids`). The ground-truth trace format is documented in [`trace`].
//!
//! # Metrics
//! `/metrics` uses vLLM's names with label `model_name`: `vllm:num_requests_running`, `vllm:num_requests_waiting`,
//! `vllm:kv_cache_usage_perc` (also the older `vllm:gpu_cache_usage_perc`), `vllm:prompt_tokens_total`,
//! `vllm:generation_tokens_total`, `vllm:request_success_total{finished_reason}`; and
//! `servebench_sim_requests_received_total`, `servebench_sim_requests_aborted_total`,
//! `servebench_sim_requests_rejected_total`, `servebench_sim_engine_steps_total`,
//! `servebench_sim_faults_injected_total{kind}`, `servebench_sim_info{preset,simulated="true"}`.

pub mod answer_key;
mod body;
mod config;
pub mod engine;
mod fault_body;
pub mod faults;
mod framing;
mod handlers;
mod metrics;
mod output;
pub mod prompt;
mod request;
mod rng;
mod scheduler;
mod server;
mod state;
pub mod timing;
pub mod trace;
pub mod words;

pub use answer_key::{AnswerKey, Verdict};
pub use config::{
    ExpectedLatency, FaultConfig, FixedLatency, ReasoningMode, SimConfig, FIREHOSE_CHUNKS_PER_WRITE,
};
pub use faults::{Fault, FaultSet, FAULT_HEADER};
pub use prompt::{ChatMessage, HeuristicCounter, PromptCounter};
pub use server::SimServer;
pub use timing::TimingModel;
pub use trace::{RequestTrace, TraceStatus};

/// Errors of the simulator's setup (requests never produce these: they get HTTP errors).
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// A parameter is out of range or a name is unknown.
    #[error("simulator configuration: {0}")]
    Config(String),
    /// A file could not be read.
    #[error("{path}: {message}")]
    Io { path: String, message: String },
    /// An answer-key file has a bad row.
    #[error("answer key {file}, line {line}: {message}")]
    AnswerKey {
        file: String,
        line: usize,
        message: String,
    },
    /// The listening address could not be bound.
    #[error(
        "cannot listen on {addr}: {message} (is another server using the port? try another --port)"
    )]
    Bind { addr: String, message: String },
}
