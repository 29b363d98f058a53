//! The one error type of this crate.

use std::path::PathBuf;

/// What went wrong while collecting, writing or comparing results.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source} (check that the folder exists and is writable)")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a folder: pass folders that hold result files (*.json, *.jsonl)")]
    NotADir { path: PathBuf },
    #[error("no result files found under {dirs}: expected servebench, sglang.bench_serving or vllm bench serve result JSON (*.json, *.jsonl){hint}")]
    NothingFound { dirs: String, hint: String },
    #[error("chart {name}: {message}")]
    Chart { name: String, message: String },
    #[error("--point {wanted}: no run matches; known points: {known}")]
    UnknownPoint { wanted: String, known: String },
    #[error("{0}")]
    Invalid(String),
}

impl ReportError {
    pub(crate) fn read(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Read {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn write(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Write {
            path: path.into(),
            source,
        }
    }
}
