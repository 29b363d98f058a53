//! Errors of the eval pipeline (datasets, prediction logs, runs). Each says what was wrong and what to do.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A data file is malformed; `line` is 1-based (a CSV record number for CSV files).
    #[error("{}{}: {message}", path.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
    Data {
        path: PathBuf,
        line: Option<usize>,
        message: String,
    },
    /// No data for a dataset: the message says where to put which file.
    #[error("{dataset}: {message}")]
    Missing { dataset: String, message: String },
    #[error("{dataset}: download from the Hugging Face Hub failed: {message}")]
    Download { dataset: String, message: String },
    #[error("invalid setting: {0}")]
    Config(String),
    /// The predictions on disk were made with other settings.
    #[error(
        "{}: the predictions already there were made with different settings ({diffs}). \
         Rerun with the same settings to resume, or pass --fresh to move the old files aside and start over",
        path.display()
    )]
    SettingsMismatch { path: PathBuf, diffs: String },
    /// The server refused in a way that retrying cannot fix (authentication, unknown model or path).
    #[error("the server refused the request: {0}")]
    Fatal(String),
    #[error("HTTP client: {0}")]
    Client(String),
}

impl EvalError {
    pub fn read(path: &Path, source: std::io::Error) -> Self {
        EvalError::Read {
            path: path.to_path_buf(),
            source,
        }
    }

    pub fn write(path: &Path, source: std::io::Error) -> Self {
        EvalError::Write {
            path: path.to_path_buf(),
            source,
        }
    }

    pub fn data(path: &Path, line: Option<usize>, message: impl Into<String>) -> Self {
        EvalError::Data {
            path: path.to_path_buf(),
            line,
            message: message.into(),
        }
    }
}
