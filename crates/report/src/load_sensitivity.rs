//! Accuracy under load: the same eval at temperature 0 run once at concurrency 1 and once at
//! concurrency N. Engines are not batch-invariant (batched kernels change the floating-point order),
//! and a quantized model may be more sensitive, so answers can change with the batch they ran in.
//!
//! Over the (item, sample) pairs answered without error in both runs: the share of answers that
//! changed (the extracted answer differs; one side having no answer counts as a change) with its
//! 95% Wilson interval, accuracy at each load over the same pairs, and the paired difference
//! (N − 1) with McNemar's exact test on the discordant pairs.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;
use serde_json::Value;

use crate::compare::accuracy::format_p;
use crate::error::ReportError;
use crate::lenient_json::parse_values;
use crate::numfmt::signed;
use crate::stats::mcnemar_exact_p;

/// One answered sample.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// The extracted answer (`None`: nothing extracted).
    pub extracted: Option<String>,
    pub correct: bool,
}

/// (item id, sample index) → answer, for samples without an error.
pub type Answers = BTreeMap<(String, u64), Answer>;

/// Reads a `{dataset}_predictions.jsonl` into answers; rows with an error or without `id`/`correct`
/// are left out (counted in `skipped`).
pub fn read_answers(path: &Path) -> Result<(Answers, usize), ReportError> {
    let text = std::fs::read_to_string(path).map_err(|e| ReportError::read(path, e))?;
    let parsed = parse_values(&text);
    let mut out = Answers::new();
    let mut skipped = parsed.problems.len();
    for lv in &parsed.values {
        match answer_of(&lv.value) {
            Some((key, a)) => {
                out.insert(key, a);
            }
            None => skipped += 1,
        }
    }
    Ok((out, skipped))
}

fn answer_of(v: &Value) -> Option<((String, u64), Answer)> {
    let obj = v.as_object()?;
    let id = match obj.get("id")? {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    let errored = match obj.get("error") {
        None | Some(Value::Null) => false,
        Some(Value::String(s)) => !s.is_empty(),
        Some(_) => true,
    };
    if errored {
        return None;
    }
    let sample = obj.get("sample").and_then(Value::as_u64).unwrap_or(0);
    let correct = obj.get("correct")?.as_bool()?;
    let extracted = obj
        .get("extracted")
        .and_then(Value::as_str)
        .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|s| !s.is_empty());
    Some(((id, sample), Answer { extracted, correct }))
}

/// The measurement.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoadSensitivity {
    pub dataset: String,
    pub concurrency_low: u32,
    pub concurrency_high: u32,
    /// Samples answered without error at both loads.
    pub pairs: u64,
    /// Pairs whose extracted answer differs.
    pub changed: u64,
    pub change_share: f64,
    /// 95% Wilson interval of `change_share`.
    pub change_ci: (f64, f64),
    /// Accuracy over the pairs, in percent.
    pub accuracy_low: f64,
    pub accuracy_high: f64,
    /// high − low, in points.
    pub diff: f64,
    /// (right at low & wrong at high, wrong at low & right at high).
    pub discordant: (u64, u64),
    /// McNemar's exact p of the discordant pairs.
    pub p: f64,
}

/// Compares the answers of the same eval at two loads; `None` when no sample pairs up.
pub fn measure(
    dataset: &str,
    low: (u32, &Answers),
    high: (u32, &Answers),
) -> Option<LoadSensitivity> {
    let (mut pairs, mut changed, mut right_low, mut right_high) = (0u64, 0u64, 0u64, 0u64);
    let mut discordant = (0u64, 0u64);
    for (key, a) in low.1 {
        let Some(b) = high.1.get(key) else { continue };
        pairs += 1;
        changed += u64::from(a.extracted != b.extracted);
        right_low += u64::from(a.correct);
        right_high += u64::from(b.correct);
        match (a.correct, b.correct) {
            (true, false) => discordant.0 += 1,
            (false, true) => discordant.1 += 1,
            _ => {}
        }
    }
    if pairs == 0 {
        return None;
    }
    let pct = |k: u64| k as f64 / pairs as f64 * 100.0;
    Some(LoadSensitivity {
        dataset: dataset.to_string(),
        concurrency_low: low.0,
        concurrency_high: high.0,
        pairs,
        changed,
        change_share: changed as f64 / pairs as f64,
        change_ci: servebench_core::capacity::wilson(changed, pairs),
        accuracy_low: pct(right_low),
        accuracy_high: pct(right_high),
        diff: pct(right_high) - pct(right_low),
        discordant,
        p: mcnemar_exact_p(discordant.0, discordant.1),
    })
}

impl LoadSensitivity {
    /// `MATH-500 under load: 3.2% of answers changed [2.0%, 5.1%] between concurrency 1 and 64;
    /// accuracy 95.0% → 94.6% (−0.4 points, p=0.62)`.
    pub fn statement(&self) -> String {
        format!(
            "{} under load: {:.1}% of answers changed [{:.1}%, {:.1}%] between concurrency {} and {}; \
             accuracy {:.1}% → {:.1}% ({} points, {})",
            self.dataset,
            self.change_share * 100.0,
            self.change_ci.0 * 100.0,
            self.change_ci.1 * 100.0,
            self.concurrency_low,
            self.concurrency_high,
            self.accuracy_low,
            self.accuracy_high,
            signed(self.diff, 1),
            format_p(self.p)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answers(rows: &[(&str, Option<&str>, bool)]) -> Answers {
        rows.iter()
            .map(|(id, x, c)| {
                (
                    (id.to_string(), 0),
                    Answer {
                        extracted: x.map(str::to_string),
                        correct: *c,
                    },
                )
            })
            .collect()
    }

    #[test]
    fn counts_changes_and_discordant_pairs() {
        let low = answers(&[
            ("1", Some("5"), true),
            ("2", Some("7"), false),
            ("3", None, false),
            ("4", Some("x"), true),
        ]);
        let high = answers(&[
            ("1", Some("5"), true),
            ("2", Some("8"), true),
            ("3", Some("2"), false),
            ("5", Some("y"), true),
        ]);
        let m = measure("MATH-500", (1, &low), (64, &high)).unwrap();
        assert_eq!((m.pairs, m.changed), (3, 2));
        assert_eq!(m.discordant, (0, 1));
        assert!(
            (m.accuracy_low - 100.0 / 3.0).abs() < 1e-9
                && (m.accuracy_high - 200.0 / 3.0).abs() < 1e-9
        );
        assert_eq!(m.p, 1.0);
        assert!(
            m.statement()
                .starts_with("MATH-500 under load: 66.7% of answers changed"),
            "{}",
            m.statement()
        );
        assert!(measure("x", (1, &low), (2, &Answers::new())).is_none());
    }

    #[test]
    fn reads_predictions_and_skips_errors() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("math500_predictions.jsonl");
        std::fs::write(
            &p,
            [
                r#"{"id":"a","sample":0,"extracted":" 1/2 ","correct":true,"error":null}"#,
                r#"{"id":7,"sample":1,"extracted":null,"correct":false}"#,
                r#"{"id":"b","sample":0,"extracted":"3","correct":false,"error":"timeout_total"}"#,
                r#"{"id":"c","sample":0,"extracted":"3"}"#,
                "not json",
            ]
            .join("\n"),
        )
        .unwrap();
        let (a, skipped) = read_answers(&p).unwrap();
        assert_eq!(a.len(), 2);
        assert_eq!(a[&("a".to_string(), 0)].extracted.as_deref(), Some("1/2"));
        assert_eq!(a[&("7".to_string(), 1)].extracted, None);
        assert_eq!(skipped, 3);
    }
}
