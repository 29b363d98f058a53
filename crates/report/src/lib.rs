//! servebench-report: turns result files on disk into `summary.csv`, a Markdown table, charts
//! (SVG and PNG) and a self-contained `report.html`; compares two folders (performance at
//! matching load points, accuracy with paired significance tests).
//!
//! Reads the result JSON of servebench, `python3 -m sglang.bench_serving --output-file`
//! (including bare `NaN`/`Infinity`) and `vllm bench serve --save-result`.
//!
//! ```no_run
//! # fn main() -> Result<(), servebench_report::ReportError> {
//! use std::path::PathBuf;
//! let dirs = vec![PathBuf::from("results/fp8")];
//! let collection = servebench_report::collect(&dirs)?;
//! let opts = servebench_report::ReportOptions {
//!     out_dir: PathBuf::from("results/fp8"),
//!     ..Default::default()
//! };
//! let written = servebench_report::write_report(&collection, &opts)?;
//! for note in &written.notes {
//!     eprintln!("note: {note}");
//! }
//! # Ok(())
//! # }
//! ```

pub mod charts;
pub mod collect;
pub mod compare;
pub mod decision;
pub mod details;
pub mod duplicates;
pub mod error;
pub mod escape;
pub mod eval_files;
pub mod html;
pub mod lenient_json;
pub mod load_sensitivity;
pub mod numfmt;
pub mod perf_charts;
pub mod report;
pub mod run;
pub mod stats;
pub mod summary_csv;
pub mod tables;

#[cfg(test)]
mod fixture_tests;

pub use collect::{collect, collect_with, Collection};
pub use compare::{compare, CompareOptions, CompareOutput};
pub use duplicates::DuplicatePolicy;
pub use error::ReportError;
pub use report::{write_report, ReportOptions, ReportOutput};
pub use run::{Dist, RunSummary, Setting, SourceTool};
pub use summary_csv::{sort_runs, write_summary_csv, SortKey, SEED_COLUMNS};
