//! Eval outputs: `{dataset}_report.json` (score summary) and `{dataset}_predictions.jsonl`
//! (one object per item and sample), read into per-item correctness.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::error::ReportError;
use crate::lenient_json::{as_f64, parse_values};

pub const REPORT_SUFFIX: &str = "_report.json";
pub const PREDICTIONS_SUFFIX: &str = "_predictions.jsonl";

/// The summary an eval run writes for one dataset.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EvalReport {
    pub model: Option<String>,
    pub dataset: Option<String>,
    pub metric: Option<String>,
    pub num: Option<f64>,
    pub score: Option<f64>,
    pub stderr: Option<f64>,
    pub n: Option<f64>,
    pub simulated: bool,
}

/// True when an object looks like an eval report (a dataset and a score, no serving results).
pub fn is_eval_report(obj: &Map<String, Value>) -> bool {
    obj.contains_key("score") && obj.contains_key("dataset") && !crate::run::is_result_object(obj)
}

impl EvalReport {
    pub fn from_object(obj: &Map<String, Value>) -> Self {
        let text = |k: &str| obj.get(k).and_then(Value::as_str).map(str::to_string);
        let num = |k: &str| obj.get(k).and_then(as_f64);
        EvalReport {
            model: text("model"),
            dataset: text("dataset"),
            metric: text("metric"),
            num: num("num"),
            score: num("score"),
            stderr: num("stderr"),
            n: num("n"),
            simulated: matches!(obj.get("simulated"), Some(Value::Bool(true))),
        }
    }
}

/// The eval outputs for one dataset in one folder.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalSet {
    pub dir: PathBuf,
    /// The `{dataset}` part of the file names: the key that pairs datasets across folders.
    pub key: String,
    pub report: Option<EvalReport>,
    pub report_file: Option<PathBuf>,
    pub predictions: Option<PathBuf>,
}

impl EvalSet {
    /// The dataset's display name: the report's `dataset`, else the file-name key.
    pub fn name(&self) -> String {
        self.report
            .as_ref()
            .and_then(|r| r.dataset.clone())
            .unwrap_or_else(|| self.key.clone())
    }
}

/// Correctness of one item over its samples.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ItemScore {
    pub correct: u32,
    /// Samples without an error.
    pub valid: u32,
}

impl ItemScore {
    /// Mean correctness over the valid samples; `None` if every sample errored.
    pub fn mean(&self) -> Option<f64> {
        (self.valid > 0).then(|| f64::from(self.correct) / f64::from(self.valid))
    }
}

/// Per-item correctness read from a predictions file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ItemScores {
    pub items: BTreeMap<String, ItemScore>,
    /// Largest number of valid samples of any item (1 for single-sample evals).
    pub max_samples: u32,
    /// Rows with an error (excluded from scores).
    pub errored_rows: usize,
    /// Rows that could not be read (bad JSON, no id, no `correct`).
    pub unreadable_rows: usize,
    /// Output tokens the server reported (`completion_tokens`) over every row, errored ones included: what the
    /// eval cost in generation.
    pub completion_tokens: u64,
    /// Rows without a `completion_tokens` count (their tokens are not in `completion_tokens`).
    pub rows_without_tokens: usize,
}

impl ItemScores {
    /// Mean over items of the per-item mean correctness, in [0, 1].
    pub fn accuracy(&self) -> Option<f64> {
        let means: Vec<f64> = self.items.values().filter_map(ItemScore::mean).collect();
        (!means.is_empty()).then(|| means.iter().sum::<f64>() / means.len() as f64)
    }

    /// Correct samples over every item (each sample of an item counts once).
    pub fn correct_samples(&self) -> u64 {
        self.items.values().map(|s| u64::from(s.correct)).sum()
    }
}

/// Reads `{dataset}_predictions.jsonl`. Rows with a non-empty `error` are excluded from the
/// scores; unreadable lines are counted and described in `notes`.
pub fn read_predictions(path: &Path, notes: &mut Vec<String>) -> Result<ItemScores, ReportError> {
    let text = std::fs::read_to_string(path).map_err(|e| ReportError::read(path, e))?;
    let parsed = parse_values(&text);
    let mut scores = ItemScores::default();
    for p in &parsed.problems {
        notes.push(format!("{}: {p}", path.display()));
        scores.unreadable_rows += 1;
    }
    for lv in &parsed.values {
        let Some(obj) = lv.value.as_object() else {
            scores.unreadable_rows += 1;
            continue;
        };
        let id = match obj.get("id") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => {
                scores.unreadable_rows += 1;
                notes.push(format!(
                    "{}: line {}: no \"id\"; row skipped",
                    path.display(),
                    lv.line
                ));
                continue;
            }
        };
        let errored = match obj.get("error") {
            None | Some(Value::Null) => false,
            Some(Value::String(s)) => !s.is_empty(),
            Some(_) => true,
        };
        match obj.get("completion_tokens").and_then(Value::as_u64) {
            Some(t) => scores.completion_tokens = scores.completion_tokens.saturating_add(t),
            None => scores.rows_without_tokens += 1,
        }
        let entry = scores.items.entry(id).or_default();
        if errored {
            scores.errored_rows += 1;
            continue;
        }
        match obj.get("correct").and_then(Value::as_bool) {
            Some(c) => {
                entry.valid += 1;
                entry.correct += u32::from(c);
            }
            None => {
                scores.unreadable_rows += 1;
                notes.push(format!(
                    "{}: line {}: \"correct\" is not true/false; row skipped",
                    path.display(),
                    lv.line
                ));
            }
        }
    }
    scores.max_samples = scores.items.values().map(|s| s.valid).max().unwrap_or(0);
    Ok(scores)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn predictions_give_per_item_means() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("gsm8k_predictions.jsonl");
        let rows = [
            r#"{"dataset":"gsm8k","id":"1","sample":0,"correct":true,"error":null,"completion_tokens":100}"#,
            r#"{"dataset":"gsm8k","id":"1","sample":1,"correct":false,"error":null,"completion_tokens":250}"#,
            r#"{"dataset":"gsm8k","id":"2","sample":0,"correct":true,"error":null,"completion_tokens":40}"#,
            r#"{"dataset":"gsm8k","id":"2","sample":1,"correct":false,"error":"HTTP 500"}"#,
            r#"{"dataset":"gsm8k","id":"3","sample":0,"correct":false,"error":"timeout"}"#,
        ];
        std::fs::write(&p, rows.join("\n")).unwrap();
        let mut notes = Vec::new();
        let s = read_predictions(&p, &mut notes).unwrap();
        assert!(notes.is_empty(), "{notes:?}");
        assert_eq!(
            s.items["1"],
            ItemScore {
                correct: 1,
                valid: 2
            }
        );
        assert_eq!(
            s.items["2"],
            ItemScore {
                correct: 1,
                valid: 1
            }
        );
        assert_eq!(s.items["3"].mean(), None);
        assert_eq!(s.errored_rows, 2);
        assert_eq!(s.max_samples, 2);
        // Items 1 (0.5) and 2 (1.0); item 3 has no valid sample.
        assert_eq!(s.accuracy(), Some(0.75));
        assert_eq!(s.correct_samples(), 2);
        // Tokens of the rows that have a count, errored ones included; two rows have none.
        assert_eq!((s.completion_tokens, s.rows_without_tokens), (390, 2));
    }

    #[test]
    fn eval_report_is_read() {
        let v: Value = serde_json::from_str(
            r#"{"model":"m","dataset":"MATH-500","metric":"accuracy","num":500,"score":0.812,"stderr":0.017,"n":1,"simulated":true}"#,
        )
        .unwrap();
        let obj = v.as_object().unwrap();
        assert!(is_eval_report(obj));
        let r = EvalReport::from_object(obj);
        assert_eq!(r.dataset.as_deref(), Some("MATH-500"));
        assert_eq!(r.score, Some(0.812));
        assert!(r.simulated);
    }
}
