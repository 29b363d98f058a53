//! servebench-core: the parts of servebench that do no I/O and are worth unit-testing hardest.
//!
//! - [`sse`]: incremental Server-Sent-Events framing (chunks split anywhere, `\r\n`, multi-line `data:`).
//! - [`api`]: backends, request bodies, and decoding of streamed / non-streamed responses (a strict
//!   allocation-free walk of each event in `json_scan`, serde for everything unusual).
//! - [`record`]: the per-request record every run produces.
//! - [`stats`]: percentiles (NumPy's linear rule), mean, population std.
//! - [`metrics`]: from records to the aggregate numbers of a run.
//! - [`pyrandom`]: CPython's `random` and NumPy's legacy `np.random` (MT19937), bit for bit.
//! - [`capacity`]: the capacity search under an SLO (bracket, then bisect; repeats within noise).
//! - [`duration`]: seconds and rates from users checked once and turned into `Duration`s.
//! - [`slo`]: per-request SLOs, attainment and goodput (vLLM's `--goodput`).
//! - [`result`]: the result JSON (a superset of `sglang.bench_serving --output-file`), strict JSON.

pub mod api;
pub mod capacity;
pub mod duration;
#[cfg(test)]
mod fuzz_tests;
pub mod gpqa;
mod json_scan;
pub mod metrics;
pub mod pyrandom;
pub mod record;
pub mod result;
pub mod slo;
pub mod sse;
pub mod stats;

/// Errors of the core crate.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    #[error("malformed event from the server: {reason} (event data: {snippet})")]
    MalformedEvent { reason: String, snippet: String },
    #[error("server reported an error in the stream: {0}")]
    ServerError(String),
    #[error("unknown backend '{0}': use one of sglang, sglang-native, sglang-oai, sglang-oai-chat, vllm, vllm-chat, openai, openai-chat, lmdeploy, lmdeploy-chat")]
    UnknownBackend(String),
}
