//! The resumable predictions log, `{output_dir}/{dataset}_predictions.jsonl`, and its settings file,
//! `{dataset}_settings.json`.
//!
//! - One JSON object a line per finished sample, appended and flushed as soon as it is graded.
//! - Reading tolerates a malformed last line (a run killed mid-write): it is reported and cut off before the next
//!   append. A malformed line anywhere else is an error naming the file and line.
//! - A sample is finished when it has a row without an error. Rows with an error are retried by the next run: the
//!   file is first rewritten without them (atomically, through a temporary file), so no (id, sample) appears twice.
//! - The settings file records what the predictions depend on (model, sampling, template, grader, data file);
//!   resuming with different settings is refused, `--fresh` moves the old files aside.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::EvalError;

/// One finished sample (the exact field set other tools read).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    pub dataset: String,
    pub id: String,
    pub sample: u32,
    pub prompt: String,
    pub response: String,
    pub reasoning: Option<String>,
    pub extracted: Option<String>,
    pub gold: String,
    pub correct: bool,
    pub rule: String,
    pub finish_reason: Option<String>,
    pub prompt_tokens: Option<u64>,
    pub completion_tokens: Option<u64>,
    pub latency_ms: Option<f64>,
    pub error: Option<String>,
    /// The protocol the row was judged under (rows written before protocols existed: `servebench`).
    #[serde(default = "servebench_protocol")]
    pub protocol: String,
    /// Requests sent for this row: 1, plus one per re-send after a failure or an empty stream.
    #[serde(default = "one")]
    pub attempts: u32,
    /// Which endpoint answered (0-based position in the `--base-url` list); only when the eval used several.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<u32>,
}

fn servebench_protocol() -> String {
    "servebench".into()
}

fn one() -> u32 {
    1
}

impl Prediction {
    pub fn is_error(&self) -> bool {
        self.error.as_deref().is_some_and(|e| !e.is_empty())
    }

    pub fn key(&self) -> (String, u32) {
        (self.id.clone(), self.sample)
    }
}

/// The file names of a dataset's outputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputFiles {
    pub predictions: PathBuf,
    pub settings: PathBuf,
    pub report: PathBuf,
}

impl OutputFiles {
    pub fn new(output_dir: &Path, dataset: &str) -> Self {
        OutputFiles {
            predictions: output_dir.join(format!("{dataset}_predictions.jsonl")),
            settings: output_dir.join(format!("{dataset}_settings.json")),
            report: output_dir.join(format!("{dataset}_report.json")),
        }
    }
}

/// What a predictions file holds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LogContents {
    /// Rows in file order (later duplicates of a finished (id, sample) dropped).
    pub rows: Vec<Prediction>,
    /// 1-based number of a malformed last line that was ignored (a run killed mid-write).
    pub torn_line: Option<usize>,
    /// Byte length of the well-formed part of the file (where the next append must start).
    pub valid_len: u64,
    /// Duplicate rows ignored.
    pub duplicates: usize,
}

impl LogContents {
    /// Keys of finished samples (rows without an error).
    pub fn finished(&self) -> HashSet<(String, u32)> {
        self.rows
            .iter()
            .filter(|r| !r.is_error())
            .map(Prediction::key)
            .collect()
    }

    pub fn error_rows(&self) -> usize {
        self.rows.iter().filter(|r| r.is_error()).count()
    }
}

/// Reads a predictions file; a missing file is empty.
pub fn read_log(path: &Path) -> Result<LogContents, EvalError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(LogContents::default()),
        Err(e) => return Err(EvalError::read(path, e)),
    };
    parse_log(path, &bytes)
}

/// Parses predictions JSONL (see the module docs for the rules).
pub fn parse_log(path: &Path, bytes: &[u8]) -> Result<LogContents, EvalError> {
    let mut out = LogContents::default();
    // (start, end exclusive of the newline, has newline)
    let mut lines = Vec::new();
    let mut start = 0;
    for (i, b) in bytes.iter().enumerate() {
        if *b == b'\n' {
            lines.push((start, i, true));
            start = i + 1;
        }
    }
    if start < bytes.len() {
        lines.push((start, bytes.len(), false));
    }
    let last_nonblank = lines
        .iter()
        .rposition(|&(s, e, _)| !bytes[s..e].iter().all(u8::is_ascii_whitespace));
    let mut best: std::collections::HashMap<(String, u32), usize> =
        std::collections::HashMap::new();
    for (idx, &(s, e, nl)) in lines.iter().enumerate() {
        let line = &bytes[s..e];
        if line.iter().all(u8::is_ascii_whitespace) {
            if nl {
                out.valid_len = (e + 1) as u64;
            }
            continue;
        }
        match serde_json::from_slice::<Prediction>(line) {
            Ok(p) => {
                if !nl {
                    // A complete row without its newline: keep it, the next append adds the newline first.
                    out.valid_len = e as u64;
                } else {
                    out.valid_len = (e + 1) as u64;
                }
                let key = p.key();
                match best.get(&key) {
                    Some(&k) if out.rows[k].is_error() && !p.is_error() => {
                        out.rows[k] = p;
                        out.duplicates += 1;
                    }
                    Some(_) => out.duplicates += 1,
                    None => {
                        best.insert(key, out.rows.len());
                        out.rows.push(p);
                    }
                }
            }
            Err(err) if Some(idx) == last_nonblank => {
                out.torn_line = Some(idx + 1);
                tracing::warn!("{}:{}: ignoring a malformed last line ({err})", path.display(), idx + 1);
            }
            Err(err) => {
                return Err(EvalError::data(
                    path,
                    Some(idx + 1),
                    format!(
                        "not a prediction row ({err}); only the last line may be damaged (a killed run). \
                         Fix or remove the line, or pass --fresh to start over"
                    ),
                ))
            }
        }
    }
    Ok(out)
}

/// Appends rows to a predictions file, flushing each one.
#[derive(Debug)]
pub struct PredictionWriter {
    path: PathBuf,
    file: std::fs::File,
}

impl PredictionWriter {
    /// Opens for appending after the well-formed part `log` describes: a torn last line is cut off; rows with
    /// errors (to be retried) are dropped by rewriting the file first.
    pub fn open(path: &Path, log: &LogContents) -> Result<PredictionWriter, EvalError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| EvalError::write(dir, e))?;
        }
        if log.error_rows() > 0 || log.duplicates > 0 {
            rewrite(path, log.rows.iter().filter(|r| !r.is_error()))?;
        } else if path.exists() {
            let f = std::fs::OpenOptions::new()
                .write(true)
                .open(path)
                .map_err(|e| EvalError::write(path, e))?;
            let len = f.metadata().map_err(|e| EvalError::read(path, e))?.len();
            if len > log.valid_len {
                f.set_len(log.valid_len)
                    .map_err(|e| EvalError::write(path, e))?;
            }
        }
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| EvalError::write(path, e))?;
        // A last row written without its newline gets one now.
        let len = file.metadata().map_err(|e| EvalError::read(path, e))?.len();
        if len > 0 && !ends_with_newline(path)? {
            file.write_all(b"\n")
                .map_err(|e| EvalError::write(path, e))?;
        }
        Ok(PredictionWriter {
            path: path.to_path_buf(),
            file,
        })
    }

    /// Appends one row and flushes it to the OS.
    pub fn append(&mut self, p: &Prediction) -> Result<(), EvalError> {
        let mut line = serde_json::to_vec(p)
            .map_err(|e| EvalError::write(&self.path, std::io::Error::other(e)))?;
        line.push(b'\n');
        self.file
            .write_all(&line)
            .map_err(|e| EvalError::write(&self.path, e))?;
        self.file
            .flush()
            .map_err(|e| EvalError::write(&self.path, e))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn ends_with_newline(path: &Path) -> Result<bool, EvalError> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path).map_err(|e| EvalError::read(path, e))?;
    f.seek(SeekFrom::End(-1))
        .map_err(|e| EvalError::read(path, e))?;
    let mut b = [0u8; 1];
    f.read_exact(&mut b).map_err(|e| EvalError::read(path, e))?;
    Ok(b[0] == b'\n')
}

/// Rewrites a predictions file with the given rows (through a temporary file and a rename).
fn rewrite<'a>(path: &Path, rows: impl Iterator<Item = &'a Prediction>) -> Result<(), EvalError> {
    let tmp = path.with_extension("jsonl.tmp");
    let mut buf = Vec::new();
    for r in rows {
        serde_json::to_writer(&mut buf, r)
            .map_err(|e| EvalError::write(&tmp, std::io::Error::other(e)))?;
        buf.push(b'\n');
    }
    std::fs::write(&tmp, &buf).map_err(|e| EvalError::write(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| EvalError::write(path, e))
}

/// What the predictions depend on. Resuming requires every field to match.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSettings {
    pub dataset: String,
    pub model: String,
    pub api: String,
    pub prompt_template: String,
    pub max_tokens: Option<u32>,
    pub temperature: f64,
    pub top_p: Option<f64>,
    pub seed: Option<u64>,
    pub grader: String,
    pub grader_mode: String,
    pub gpqa_shuffle: Option<String>,
    /// SHA-256 of the dataset file.
    pub data_sha256: String,
    /// The protocol (settings written before protocols existed: `servebench`).
    #[serde(default = "servebench_protocol")]
    pub protocol: String,
}

impl RunSettings {
    /// Names and values of the fields that differ from `other` (empty when equal).
    pub fn diff(&self, other: &RunSettings) -> Vec<String> {
        let a = serde_json::to_value(self).unwrap_or_default();
        let b = serde_json::to_value(other).unwrap_or_default();
        let (Some(a), Some(b)) = (a.as_object(), b.as_object()) else {
            return vec!["settings".into()];
        };
        a.iter()
            .filter(|(k, v)| b.get(*k) != Some(*v))
            .map(|(k, v)| {
                format!(
                    "{k}: {} before, {} now",
                    b.get(k).cloned().unwrap_or_default(),
                    v
                )
            })
            .collect()
    }
}

/// Reads the settings file written by a previous run (`None` if absent).
pub fn read_settings(path: &Path) -> Result<Option<RunSettings>, EvalError> {
    match std::fs::read(path) {
        Ok(b) => serde_json::from_slice(&b).map(Some).map_err(|e| {
            EvalError::data(
                path,
                None,
                format!("not a settings file ({e}); pass --fresh to start over"),
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(EvalError::read(path, e)),
    }
}

pub fn write_settings(path: &Path, s: &RunSettings) -> Result<(), EvalError> {
    let text = serde_json::to_string_pretty(s)
        .map_err(|e| EvalError::write(path, std::io::Error::other(e)))?;
    std::fs::write(path, text + "\n").map_err(|e| EvalError::write(path, e))
}

/// How a run starts on existing files.
#[derive(Debug, Clone, PartialEq)]
pub struct Prepared {
    pub log: LogContents,
    /// Old files moved aside by `--fresh`.
    pub moved: Vec<PathBuf>,
}

/// Checks settings and reads the log to resume, or (fresh) moves old files aside as `NAME.bak-UNIXSECS`.
pub fn prepare(
    files: &OutputFiles,
    settings: &RunSettings,
    fresh: bool,
) -> Result<Prepared, EvalError> {
    let mut moved = Vec::new();
    if fresh {
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        for p in [&files.predictions, &files.settings, &files.report] {
            if p.exists() {
                let mut name = p.as_os_str().to_os_string();
                name.push(format!(".bak-{stamp}"));
                let to = PathBuf::from(name);
                std::fs::rename(p, &to).map_err(|e| EvalError::write(p, e))?;
                moved.push(to);
            }
        }
    }
    let log = read_log(&files.predictions)?;
    // With no rows there is nothing to mix up: the new settings simply replace the old ones.
    match read_settings(&files.settings)? {
        Some(_) if log.rows.is_empty() => {}
        Some(old) => {
            let diffs = settings.diff(&old);
            if !diffs.is_empty() {
                return Err(EvalError::SettingsMismatch {
                    path: files.predictions.clone(),
                    diffs: diffs.join("; "),
                });
            }
        }
        None if !log.rows.is_empty() => {
            return Err(EvalError::SettingsMismatch {
                path: files.predictions.clone(),
                diffs: format!("no {} to check them against", files.settings.display()),
            })
        }
        None => {}
    }
    if let Some(dir) = files
        .settings
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
    {
        std::fs::create_dir_all(dir).map_err(|e| EvalError::write(dir, e))?;
    }
    write_settings(&files.settings, settings)?;
    Ok(Prepared { log, moved })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, sample: u32, correct: bool, error: Option<&str>) -> Prediction {
        Prediction {
            dataset: "math500".into(),
            id: id.into(),
            sample,
            prompt: "p".into(),
            response: "\\boxed{1}".into(),
            reasoning: None,
            extracted: Some("1".into()),
            gold: "1".into(),
            correct,
            rule: "exact".into(),
            finish_reason: Some("stop".into()),
            prompt_tokens: Some(10),
            completion_tokens: Some(5),
            latency_ms: Some(12.5),
            error: error.map(String::from),
            protocol: "servebench".into(),
            attempts: 1,
            endpoint: None,
        }
    }

    fn settings() -> RunSettings {
        RunSettings {
            dataset: "math500".into(),
            model: "m".into(),
            api: "chat".into(),
            prompt_template: "deepseek-math".into(),
            max_tokens: Some(100),
            temperature: 0.0,
            top_p: None,
            seed: None,
            grader: "math".into(),
            grader_mode: "servebench".into(),
            gpqa_shuffle: None,
            data_sha256: "abc".into(),
            protocol: "servebench".into(),
        }
    }

    #[test]
    fn field_names_are_exactly_the_documented_set() {
        let v = serde_json::to_value(row("a", 0, true, None)).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "dataset",
                "id",
                "sample",
                "prompt",
                "response",
                "reasoning",
                "extracted",
                "gold",
                "correct",
                "rule",
                "finish_reason",
                "prompt_tokens",
                "completion_tokens",
                "latency_ms",
                "error",
                "protocol",
                "attempts"
            ]
        );
        assert!(v["reasoning"].is_null() && v["error"].is_null());
        // Rows written before protocols existed read as servebench rows sent once.
        let mut old = v.as_object().unwrap().clone();
        old.remove("protocol");
        old.remove("attempts");
        let back: Prediction = serde_json::from_value(serde_json::Value::Object(old)).unwrap();
        assert_eq!((back.protocol.as_str(), back.attempts), ("servebench", 1));
    }

    #[test]
    fn append_then_resume_skips_finished_and_tolerates_torn_last_line() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("x_predictions.jsonl");
        let mut w = PredictionWriter::open(&path, &LogContents::default()).unwrap();
        w.append(&row("a", 0, true, None)).unwrap();
        w.append(&row("b", 0, false, None)).unwrap();
        drop(w);
        // A run killed mid-write leaves half a line.
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(br#"{"dataset":"math500","id":"c","sam"#)
            .unwrap();
        drop(f);
        let log = read_log(&path).unwrap();
        assert_eq!(log.torn_line, Some(3));
        assert_eq!(log.rows.len(), 2);
        let finished = log.finished();
        assert!(
            finished.contains(&("a".to_string(), 0)) && finished.contains(&("b".to_string(), 0))
        );
        let mut w = PredictionWriter::open(&path, &log).unwrap();
        w.append(&row("c", 0, true, None)).unwrap();
        drop(w);
        let again = read_log(&path).unwrap();
        assert_eq!(again.torn_line, None);
        let ids: Vec<&str> = again.rows.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["a", "b", "c"]);
    }

    #[test]
    fn last_row_without_newline_is_kept() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("p.jsonl");
        let text = serde_json::to_string(&row("a", 0, true, None)).unwrap();
        std::fs::write(&path, &text).unwrap();
        let log = read_log(&path).unwrap();
        assert_eq!(log.rows.len(), 1);
        assert_eq!(log.torn_line, None);
        let mut w = PredictionWriter::open(&path, &log).unwrap();
        w.append(&row("b", 0, true, None)).unwrap();
        assert_eq!(read_log(&path).unwrap().rows.len(), 2);
    }

    #[test]
    fn malformed_line_in_the_middle_is_an_error_naming_the_line() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("p.jsonl");
        let good = serde_json::to_string(&row("a", 0, true, None)).unwrap();
        std::fs::write(&path, format!("{good}\nnot json\n{good}\n")).unwrap();
        let e = read_log(&path).unwrap_err().to_string();
        assert!(e.contains("p.jsonl:2: not a prediction row"), "{e}");
    }

    #[test]
    fn error_rows_are_retried_without_duplicates() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("p.jsonl");
        let mut w = PredictionWriter::open(&path, &LogContents::default()).unwrap();
        w.append(&row("a", 0, true, None)).unwrap();
        w.append(&row("b", 0, false, Some("HTTP 500: boom")))
            .unwrap();
        drop(w);
        let log = read_log(&path).unwrap();
        assert_eq!(log.error_rows(), 1);
        assert!(!log.finished().contains(&("b".to_string(), 0)));
        let mut w = PredictionWriter::open(&path, &log).unwrap();
        w.append(&row("b", 0, true, None)).unwrap();
        drop(w);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 2);
        assert!(!text.contains("boom"));
    }

    #[test]
    fn settings_mismatch_is_refused_and_fresh_moves_files_aside() {
        let d = tempfile::tempdir().unwrap();
        let files = OutputFiles::new(d.path(), "math500");
        let s = settings();
        let p = prepare(&files, &s, false).unwrap();
        assert!(p.log.rows.is_empty());
        let mut w = PredictionWriter::open(&files.predictions, &p.log).unwrap();
        w.append(&row("a", 0, true, None)).unwrap();
        drop(w);
        // Same settings: resumes.
        assert_eq!(prepare(&files, &s, false).unwrap().log.rows.len(), 1);
        // Other temperature: refused, naming the field.
        let hot = RunSettings {
            temperature: 0.6,
            ..s.clone()
        };
        let e = prepare(&files, &hot, false).unwrap_err().to_string();
        assert!(
            e.contains("temperature: 0.0 before, 0.6 now") && e.contains("--fresh"),
            "{e}"
        );
        // --fresh moves the old files aside and starts empty.
        let p = prepare(&files, &hot, true).unwrap();
        assert!(p.log.rows.is_empty());
        assert_eq!(p.moved.len(), 2);
        assert!(p
            .moved
            .iter()
            .all(|m| m.to_string_lossy().contains(".bak-")));
        assert!(!p
            .moved
            .iter()
            .any(|m| m.to_string_lossy().ends_with("_predictions.jsonl")));
        assert_eq!(read_settings(&files.settings).unwrap(), Some(hot.clone()));
        // No rows yet: other settings just replace the stored ones.
        let cold = RunSettings {
            temperature: 0.1,
            ..hot
        };
        assert!(prepare(&files, &cold, false).is_ok());
        assert_eq!(read_settings(&files.settings).unwrap(), Some(cold));
    }

    #[test]
    fn predictions_without_settings_are_refused() {
        let d = tempfile::tempdir().unwrap();
        let files = OutputFiles::new(d.path(), "aime24");
        let mut w = PredictionWriter::open(&files.predictions, &LogContents::default()).unwrap();
        w.append(&row("a", 0, true, None)).unwrap();
        drop(w);
        let e = prepare(&files, &settings(), false).unwrap_err().to_string();
        assert!(e.contains("aime24_settings.json"), "{e}");
    }
}
