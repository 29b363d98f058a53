//! servebench: measure an LLM serving deployment (accuracy and performance) through its API.
//!
//! The binary's commands live in [`cli`]; the work is done by the workspace crates re-exported here.

pub mod cli;
pub mod launch;
pub mod run_plan;
pub mod secrets;
pub mod server_metrics;
pub mod shard;
pub mod sim_counter;
pub mod sim_thread;
pub mod study_plan;
pub mod study_report;
pub mod sweep_plan;

pub use servebench_core as core;
pub use servebench_eval as eval;
pub use servebench_load as load;
pub use servebench_report as report;
pub use servebench_sim as sim;
pub use servebench_tokenize as tokenize;
