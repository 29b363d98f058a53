//! servebench-load: the async load engine.
//!
//! - [`client`]: the streaming HTTP client (pooled keep-alive connections, SSE timed as bytes are read,
//!   retry of a request whose reused connection fails before any byte arrives).
//! - [`http1`]: the native HTTP/1.1 client the timed requests use on plain `http://` (one buffer per
//!   connection, chunked framing decoded in place, body read in the request's own task).
//! - [`dataset`]: workloads (random, random-ids, sharegpt, custom) with token-exact prompts.
//! - [`dispatch`]: which endpoint a request goes to when several serve one run (round-robin, least-outstanding).
//! - [`endpoint_stats`]: per-endpoint statistics of a run over several endpoints, and the slow-endpoint warning.
//! - [`bench`]: one benchmark as a library call (`BenchConfig` in, `BenchOutcome` out), used by every command.
//! - [`capacity`]: the highest load meeting an SLO (bracket, bisect, repeat within noise), one bench per load.
//! - [`draws`]: the workload's random draws in `sglang.bench_serving`'s order (same `--seed`, same workload).
//! - [`arrival`]: arrival processes (closed loop, Poisson, gamma with burstiness).
//! - [`prometheus`]: the server's own `/metrics` scraped during a run (SGLang and vLLM names).
//! - [`preflight`]: checks before any work (configuration, URL, outputs, open files; the server reachable,
//!   the model it lists), with messages that say what to do.
//! - [`runner`]: one timed run: warm-up, concurrency permits, open/closed loop, records over a channel,
//!   Ctrl-C handling, client saturation monitor.

pub mod arrival;
pub mod bench;
pub mod capacity;
pub mod client;
pub mod corpus;
pub mod dataset;
pub mod dispatch;
pub mod draws;
pub mod endpoint_stats;
mod guarded;
pub mod http1;
pub mod monitor;
pub mod nofile;
pub mod outpath;
pub mod preflight;
pub mod prometheus;
mod record_queue;
pub mod runner;
#[cfg(test)]
mod sglang_fixture_tests;

/// Installs the TLS crypto provider (ring) once; every HTTP client needs it before it is built.
pub fn ensure_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("invalid setting: {0}")]
    Config(String),
    #[error("dataset {path}: {message}")]
    Dataset { path: String, message: String },
    #[error(transparent)]
    Tokenize(#[from] servebench_tokenize::TokenizeError),
    #[error("HTTP client setup failed: {0}")]
    Http(String),
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    /// The server cannot be used as given (no scheme, refused, TLS to a plain port, no model listed).
    #[error(transparent)]
    Server(#[from] preflight::ServerError),
    #[error("warm-up failed: no warm-up request succeeded ({0}). Check --base-url/--backend/--model, or pass --warmup-requests 0")]
    Warmup(String),
}
