//! `{dataset}_report.json` and the printed score table (evalscope's layout: Model, Dataset, Metric, Subset, Num,
//! Score). Scores and their standard errors are fractions in [0, 1].

use std::collections::{BTreeMap, HashMap};

use comfy_table::{presets::ASCII_MARKDOWN, Cell, CellAlignment, Table};
use serde::{Deserialize, Serialize};

use crate::dataset::Dataset;
use crate::grade::GradeOptions;
use crate::judge::same_answer;
use crate::predictions::Prediction;
use crate::score::{self, ItemResult, SampleResult};

/// An item with at least one wrong (valid) sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WrongItem {
    pub id: String,
    pub gold: String,
    /// The answer extracted from its first wrong sample (`null`: none could be extracted).
    pub extracted: Option<String>,
    /// Correct samples of the item.
    pub correct: u64,
    /// Valid samples of the item.
    pub samples: u64,
}

/// The report of one dataset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub model: String,
    pub dataset: String,
    /// `accuracy` (n = 1) or `avg@N` (n = N > 1).
    pub metric: String,
    /// Items scored (with at least one valid sample).
    pub num: usize,
    pub n: u32,
    /// Fraction in [0, 1]; `null` when nothing could be scored.
    pub score: Option<f64>,
    /// Standard error of `score`, same unit.
    pub stderr: Option<f64>,
    /// Population std over items of the per-item mean (n > 1).
    pub spread: Option<f64>,
    /// `pass@k` → value, k = 1, 2, 4, … and n (n > 1).
    pub pass_at_k: BTreeMap<String, f64>,
    pub maj_at_n: Option<f64>,
    /// Samples scored.
    pub samples: usize,
    /// Samples that failed after retries (excluded from the score).
    pub errors: usize,
    /// Samples cut by max_tokens (finish_reason `length`), graded as they are.
    pub truncated: usize,
    /// Samples with no extractable answer.
    pub no_answer: usize,
    /// Items of the selection with no finished sample yet (an interrupted run).
    pub pending: usize,
    /// The server is servebench's simulator.
    pub simulated: bool,
    pub settings: serde_json::Value,
    pub wrong_items: Vec<WrongItem>,
    /// Items whose every sample failed.
    pub errored_items: Vec<String>,
    pub data_file: String,
    pub predictions_file: String,
    pub tool_version: String,
}

/// Inputs of a report besides the rows.
#[derive(Debug, Clone)]
pub struct ReportContext<'a> {
    pub model: &'a str,
    pub n: u32,
    /// Items in the selection (the first `items` of the dataset).
    pub items: usize,
    pub simulated: bool,
    pub settings: serde_json::Value,
    pub grade: &'a GradeOptions,
    pub predictions_file: String,
}

/// Builds the report from the predictions rows (rows of other items or with sample ≥ n are ignored).
pub fn build(ds: &Dataset, rows: &[Prediction], ctx: &ReportContext<'_>) -> Report {
    let selection = &ds.items[..ctx.items.min(ds.items.len())];
    let mut by_id: HashMap<&str, Vec<&Prediction>> = HashMap::new();
    for r in rows.iter().filter(|r| r.sample < ctx.n) {
        by_id.entry(r.id.as_str()).or_default().push(r);
    }
    let mut results = Vec::new();
    let mut wrong_items = Vec::new();
    let mut pending = 0;
    for item in selection {
        let Some(mut rs) = by_id.remove(item.id.as_str()) else {
            pending += 1;
            continue;
        };
        rs.sort_by_key(|r| r.sample);
        let samples: Vec<SampleResult> = rs
            .iter()
            .map(|r| SampleResult {
                correct: r.correct && !r.is_error(),
                extracted: r.extracted.clone(),
                error: r.is_error(),
                truncated: r.finish_reason.as_deref() == Some("length"),
            })
            .collect();
        let ir = ItemResult {
            id: item.id.clone(),
            gold: item.gold.clone(),
            samples,
        };
        let (valid, correct) = ir.counts();
        if valid > correct {
            let first_wrong = rs.iter().find(|r| !r.is_error() && !r.correct);
            wrong_items.push(WrongItem {
                id: item.id.clone(),
                gold: item.gold.clone(),
                extracted: first_wrong.and_then(|r| r.extracted.clone()),
                correct,
                samples: valid,
            });
        }
        results.push(ir);
    }
    let kind = ds.grader;
    let s = score::score(&results, ctx.n, |a, b| same_answer(kind, a, b, ctx.grade));
    Report {
        model: ctx.model.to_string(),
        dataset: ds.name.clone(),
        metric: if ctx.n > 1 {
            format!("avg@{}", ctx.n)
        } else {
            "accuracy".into()
        },
        num: s.num,
        n: ctx.n,
        score: s.score,
        stderr: s.stderr,
        spread: s.spread,
        pass_at_k: s
            .pass_at_k
            .iter()
            .map(|(k, v)| (format!("pass@{k}"), *v))
            .collect(),
        maj_at_n: s.maj_at_n,
        samples: s.samples,
        errors: s.errors,
        truncated: s.truncated,
        no_answer: s.no_answer,
        pending,
        simulated: ctx.simulated,
        settings: ctx.settings.clone(),
        wrong_items,
        errored_items: s.errored_items,
        data_file: ds.source.display().to_string(),
        predictions_file: ctx.predictions_file.clone(),
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
    }
}

fn fmt_score(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.4}"))
}

/// The score table: one row per dataset (score ± stderr), plus pass@k and maj@n rows when n > 1.
pub fn table(reports: &[Report]) -> String {
    let mut t = Table::new();
    t.load_preset(ASCII_MARKDOWN);
    t.set_header(["Model", "Dataset", "Metric", "Subset", "Num", "Score"]);
    for r in reports {
        let model = if r.simulated {
            format!("{} (simulated)", r.model)
        } else {
            r.model.clone()
        };
        let mut row = |metric: String, score: String| {
            t.add_row(vec![
                Cell::new(&model),
                Cell::new(&r.dataset),
                Cell::new(metric),
                Cell::new("default"),
                Cell::new(r.num).set_alignment(CellAlignment::Right),
                Cell::new(score).set_alignment(CellAlignment::Right),
            ]);
        };
        let main = match (r.score, r.stderr) {
            (Some(s), Some(e)) => format!("{s:.4} ± {e:.4}"),
            (s, _) => fmt_score(s),
        };
        row(r.metric.clone(), main);
        if r.n > 1 {
            for (k, v) in &r.pass_at_k {
                if k != "pass@1" {
                    row(k.clone(), fmt_score(Some(*v)));
                }
            }
            row(format!("maj@{}", r.n), fmt_score(r.maj_at_n));
        }
    }
    t.to_string()
}

/// Lines under the table for one dataset: wrong items (ids when few, else where they are listed), errors,
/// truncations, missing answers, pending items.
pub fn notes(r: &Report, report_file: &str) -> Vec<String> {
    let mut out = Vec::new();
    let d = &r.dataset;
    if r.wrong_items.is_empty() {
        if r.num > 0 {
            out.push(format!("{d}: no wrong items"));
        }
    } else {
        let (few, many) = if r.n > 1 {
            ("items with a wrong sample", "items with a wrong sample")
        } else {
            ("wrong", "wrong items")
        };
        let k = r.wrong_items.len();
        if k <= 20 {
            let ids: Vec<&str> = r.wrong_items.iter().map(|w| w.id.as_str()).collect();
            out.push(format!("{d}: {k} {few}: {}", ids.join(", ")));
        } else {
            out.push(format!(
                "{d}: {k} {many}, listed in {report_file} (wrong_items)"
            ));
        }
    }
    if r.errors > 0 {
        out.push(format!(
            "{d}: {} samples failed after retries (excluded from the score; rerun to retry them)",
            r.errors
        ));
    }
    if r.truncated > 0 {
        out.push(format!(
            "{d}: {} samples cut by max_tokens (finish_reason length), graded as they are",
            r.truncated
        ));
    }
    if r.no_answer > 0 {
        out.push(format!(
            "{d}: {} samples without an extractable answer",
            r.no_answer
        ));
    }
    if r.pending > 0 {
        out.push(format!(
            "{d}: {} items not run yet (rerun the same command to finish)",
            r.pending
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::{GraderKind, Item};

    fn ds() -> Dataset {
        Dataset {
            name: "aime24".into(),
            source: "data/aime24/test.jsonl".into(),
            source_sha256: String::new(),
            grader: GraderKind::Math,
            items: ["60", "61", "62", "63"]
                .iter()
                .map(|id| Item {
                    id: id.to_string(),
                    question: "q".into(),
                    choices: None,
                    gold: "025".into(),
                })
                .collect(),
        }
    }

    fn row(
        id: &str,
        sample: u32,
        extracted: Option<&str>,
        correct: bool,
        error: bool,
    ) -> Prediction {
        Prediction {
            dataset: "aime24".into(),
            id: id.into(),
            sample,
            prompt: String::new(),
            response: String::new(),
            reasoning: None,
            extracted: extracted.map(String::from),
            gold: "025".into(),
            correct,
            rule: "x".into(),
            finish_reason: Some(
                if extracted.is_none() {
                    "length"
                } else {
                    "stop"
                }
                .into(),
            ),
            prompt_tokens: None,
            completion_tokens: None,
            latency_ms: None,
            error: error.then(|| "HTTP 500".to_string()),
        }
    }

    fn ctx(n: u32, grade: &GradeOptions) -> ReportContext<'_> {
        ReportContext {
            model: "m",
            n,
            items: 4,
            simulated: true,
            settings: serde_json::json!({"temperature": 0.0}),
            grade,
            predictions_file: "out/aime24_predictions.jsonl".into(),
        }
    }

    #[test]
    fn single_sample_report_lists_wrong_items_and_counts() {
        let g = GradeOptions::default();
        let rows = vec![
            row("60", 0, Some("25"), true, false),
            row("61", 0, Some("7"), false, false),
            row("62", 0, None, false, true),
            row("99", 0, Some("1"), true, false), // not in the selection
        ];
        let r = build(&ds(), &rows, &ctx(1, &g));
        assert_eq!(r.metric, "accuracy");
        assert_eq!(r.num, 2);
        assert_eq!(r.score, Some(0.5));
        assert!((r.stderr.unwrap() - (0.25f64 / 2.0).sqrt()).abs() < 1e-12);
        assert_eq!(r.errors, 1);
        assert_eq!(r.errored_items, ["62"]);
        assert_eq!(r.pending, 1);
        assert_eq!(r.wrong_items.len(), 1);
        assert_eq!(r.wrong_items[0].id, "61");
        assert_eq!(r.wrong_items[0].extracted.as_deref(), Some("7"));
        let v = serde_json::to_value(&r).unwrap();
        for k in [
            "model",
            "dataset",
            "metric",
            "num",
            "n",
            "score",
            "stderr",
            "pass_at_k",
            "maj_at_n",
            "errors",
            "truncated",
            "no_answer",
            "simulated",
            "settings",
            "wrong_items",
        ] {
            assert!(v.get(k).is_some(), "missing {k}");
        }
        let t = table(std::slice::from_ref(&r));
        assert!(t.contains("| Model") && t.contains("Subset"), "{t}");
        assert!(
            t.contains("m (simulated)") && t.contains("0.5000 ± 0.3536"),
            "{t}"
        );
        let notes = notes(&r, "out/aime24_report.json");
        assert_eq!(notes[0], "aime24: 1 wrong: 61");
        assert!(notes.iter().any(|n| n.contains("1 samples failed")));
        assert!(notes.iter().any(|n| n.contains("1 items not run yet")));
    }

    #[test]
    fn multi_sample_report_has_pass_at_k_and_majority() {
        let g = GradeOptions::default();
        let mut rows = Vec::new();
        for id in ["60", "61", "62", "63"] {
            for s in 0..4u32 {
                let ok = id == "60" || (id == "61" && s == 0);
                rows.push(row(id, s, Some(if ok { "25" } else { "3" }), ok, false));
            }
        }
        rows.push(row("60", 4, Some("3"), false, false)); // sample ≥ n: ignored
        let r = build(&ds(), &rows, &ctx(4, &g));
        assert_eq!(r.metric, "avg@4");
        assert!((r.score.unwrap() - (1.0 + 0.25) / 4.0).abs() < 1e-12);
        assert_eq!(
            r.pass_at_k.keys().collect::<Vec<_>>(),
            ["pass@1", "pass@2", "pass@4"]
        );
        assert!((r.pass_at_k["pass@4"] - 0.5).abs() < 1e-12);
        assert_eq!(r.maj_at_n, Some(0.25));
        assert_eq!(r.wrong_items.len(), 3);
        assert_eq!((r.wrong_items[0].correct, r.wrong_items[0].samples), (1, 4));
        assert_eq!(
            notes(&r, "R.json")[0],
            "aime24: 3 items with a wrong sample: 61, 62, 63"
        );
        let t = table(&[r]);
        assert!(
            t.contains("avg@4") && t.contains("pass@4") && t.contains("maj@4"),
            "{t}"
        );
    }

    #[test]
    fn many_wrong_items_point_to_the_file() {
        let g = GradeOptions::default();
        let items: Vec<Item> = (0..30)
            .map(|i| Item {
                id: i.to_string(),
                question: "q".into(),
                choices: None,
                gold: "1".into(),
            })
            .collect();
        let d = Dataset { items, ..ds() };
        let rows: Vec<Prediction> = (0..30)
            .map(|i| row(&i.to_string(), 0, Some("2"), false, false))
            .collect();
        let r = build(
            &d,
            &rows,
            &ReportContext {
                items: 30,
                ..ctx(1, &g)
            },
        );
        assert_eq!(r.wrong_items.len(), 30);
        assert_eq!(
            notes(&r, "R.json")[0],
            "aime24: 30 wrong items, listed in R.json (wrong_items)"
        );
    }
}
