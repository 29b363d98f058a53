//! `{dataset}_report.json` and the printed score table (evalscope's layout: Model, Dataset, Metric, Subset, Num,
//! Score, plus the protocol of each number and, with the field-report preset, the report's number). Scores and their
//! standard errors are fractions in [0, 1].
//!
//! Errored samples — failed requests and empty completions — are listed in `errored_items` with their reason and
//! count as wrong in every score unless the run excluded them (`errors_excluded`, then marked in the table).

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

/// A sample that failed or came back empty.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErroredItem {
    pub id: String,
    pub sample: u32,
    /// The error after retries, or `empty completion`.
    pub reason: String,
}

/// Why a predictions row is errored (`None`: it is not): its error, or an empty completion (no text, no reasoning).
pub fn errored_reason(r: &Prediction) -> Option<String> {
    if r.is_error() {
        return r.error.clone();
    }
    let empty =
        r.response.trim().is_empty() && r.reasoning.as_deref().is_none_or(|t| t.trim().is_empty());
    empty.then(|| "empty completion".to_string())
}

/// The report of one dataset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub model: String,
    pub dataset: String,
    /// The protocol that produced the numbers (`evalscope-0`, `evalscope-1`, `qwen2.5-math`, `servebench`).
    pub protocol: String,
    /// `accuracy` (n = 1) or `avg@N` (n = N > 1).
    pub metric: String,
    /// Items scored (with at least one counted sample).
    pub num: usize,
    pub n: u32,
    /// Fraction in [0, 1]; `null` when nothing could be scored.
    pub score: Option<f64>,
    /// Standard error of `score`, same unit (sample std with ddof 1 over items, / √num).
    pub stderr: Option<f64>,
    /// Sample std (ddof 1) over items of the per-item mean (n > 1).
    pub spread: Option<f64>,
    /// `pass@k` → value, k = 1, 2, 4, … and n (n > 1).
    pub pass_at_k: BTreeMap<String, f64>,
    /// `pass@k` → its standard error (n > 1).
    pub pass_at_k_stderr: BTreeMap<String, f64>,
    pub maj_at_n: Option<f64>,
    pub maj_at_n_stderr: Option<f64>,
    /// The field report's number for this dataset (DeepSeek-R1 FP8), with `--protocol field-report`.
    pub field_report_score: Option<f64>,
    /// Samples that did not error.
    pub samples: usize,
    /// Errored samples (failed after retries, or empty): wrong in every score unless `errors_excluded`.
    pub errors: usize,
    /// Errored samples were left out of the scores (an explicit option).
    pub errors_excluded: bool,
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
    /// Every errored sample with its reason.
    pub errored_items: Vec<ErroredItem>,
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
    /// Leave errored samples out of the scores instead of counting them wrong.
    pub exclude_errors: bool,
    /// Print the field report's numbers next to the scores.
    pub field_report: bool,
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
    let mut errored = Vec::new();
    let mut pending = 0;
    for item in selection {
        let Some(mut rs) = by_id.remove(item.id.as_str()) else {
            pending += 1;
            continue;
        };
        rs.sort_by_key(|r| r.sample);
        let samples: Vec<SampleResult> = rs
            .iter()
            .map(|r| {
                let reason = errored_reason(r);
                let error = reason.is_some();
                if let Some(reason) = reason {
                    errored.push(ErroredItem {
                        id: r.id.clone(),
                        sample: r.sample,
                        reason,
                    });
                }
                SampleResult {
                    correct: r.correct && !error,
                    extracted: if error { None } else { r.extracted.clone() },
                    error,
                    truncated: r.finish_reason.as_deref() == Some("length"),
                }
            })
            .collect();
        let ir = ItemResult {
            id: item.id.clone(),
            gold: item.gold.clone(),
            samples,
        };
        let (valid, correct) = ir.counts(ctx.exclude_errors);
        if valid > correct {
            let first_wrong = rs
                .iter()
                .find(|r| !r.correct && errored_reason(r).is_none())
                .or_else(|| rs.iter().find(|r| !r.correct));
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
    let grade = ds.protocol.grade_options(ctx.grade);
    let s = score::score(&results, ctx.n, ctx.exclude_errors, |a, b| {
        same_answer(kind, a, b, &grade)
    });
    Report {
        model: ctx.model.to_string(),
        dataset: ds.name.clone(),
        protocol: ds.protocol.as_str().to_string(),
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
            .map(|(k, v, _)| (format!("pass@{k}"), *v))
            .collect(),
        pass_at_k_stderr: s
            .pass_at_k
            .iter()
            .filter_map(|(k, _, e)| e.map(|e| (format!("pass@{k}"), e)))
            .collect(),
        maj_at_n: s.maj_at_n,
        maj_at_n_stderr: s.maj_at_n_stderr,
        field_report_score: if ctx.field_report {
            crate::protocol::field_report_score(&ds.name)
        } else {
            None
        },
        samples: s.samples,
        errors: s.errors,
        errors_excluded: s.errors_excluded,
        truncated: s.truncated,
        no_answer: s.no_answer,
        pending,
        simulated: ctx.simulated,
        settings: ctx.settings.clone(),
        wrong_items,
        errored_items: errored,
        data_file: ds.source.display().to_string(),
        predictions_file: ctx.predictions_file.clone(),
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
    }
}

fn fmt_score(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.4}"))
}

fn with_stderr(v: Option<f64>, e: Option<f64>) -> String {
    match (v, e) {
        (Some(s), Some(e)) => format!("{s:.4} ± {e:.4}"),
        (s, _) => fmt_score(s),
    }
}

/// The score table: one row per dataset (score ± stderr), plus pass@k and maj@n rows when n > 1. The Protocol
/// column names the rules behind each number; a `Report` column holds the field report's number when the preset
/// asked for it; a run that excluded errored samples says so in the Metric column.
pub fn table(reports: &[Report]) -> String {
    let mut t = Table::new();
    t.load_preset(ASCII_MARKDOWN);
    let with_report = reports.iter().any(|r| r.field_report_score.is_some());
    let mut header = vec![
        "Model", "Dataset", "Protocol", "Metric", "Subset", "Num", "Score",
    ];
    if with_report {
        header.push("Report");
    }
    t.set_header(header);
    for r in reports {
        let model = if r.simulated {
            format!("{} (simulated)", r.model)
        } else {
            r.model.clone()
        };
        let mut row = |metric: String, score: String, reference: Option<f64>| {
            let metric = if r.errors_excluded {
                format!("{metric} (errors excluded)")
            } else {
                metric
            };
            let mut cells = vec![
                Cell::new(&model),
                Cell::new(&r.dataset),
                Cell::new(&r.protocol),
                Cell::new(metric),
                Cell::new("default"),
                Cell::new(r.num).set_alignment(CellAlignment::Right),
                Cell::new(score).set_alignment(CellAlignment::Right),
            ];
            if with_report {
                let text = reference.map_or("-".into(), |v| format!("{v:.4}"));
                cells.push(Cell::new(text).set_alignment(CellAlignment::Right));
            }
            t.add_row(cells);
        };
        row(
            r.metric.clone(),
            with_stderr(r.score, r.stderr),
            r.field_report_score,
        );
        if r.n > 1 {
            for (k, v) in &r.pass_at_k {
                if k != "pass@1" {
                    let e = r.pass_at_k_stderr.get(k).copied();
                    row(k.clone(), with_stderr(Some(*v), e), None);
                }
            }
            row(
                format!("maj@{}", r.n),
                with_stderr(r.maj_at_n, r.maj_at_n_stderr),
                None,
            );
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
        let how = if r.errors_excluded {
            "excluded from the score (--exclude-errors)"
        } else {
            "counted as wrong"
        };
        let mut reasons: BTreeMap<&str, usize> = BTreeMap::new();
        for e in &r.errored_items {
            *reasons.entry(e.reason.as_str()).or_default() += 1;
        }
        let listed: Vec<String> = reasons
            .iter()
            .take(3)
            .map(|(reason, k)| format!("{k}× {reason}"))
            .collect();
        out.push(format!(
            "{d}: {} samples failed or came back empty, {how}; rerun to retry them ({}{}; errored_items in the report)",
            r.errors,
            listed.join("; "),
            if reasons.len() > 3 { "; …" } else { "" }
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
            protocol: crate::protocol::Protocol::Servebench,
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
            response: if error { String::new() } else { "text".into() },
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
            protocol: "servebench".into(),
            attempts: 1,
            endpoint: None,
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
            exclude_errors: false,
            field_report: false,
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
        // The failed item counts as wrong: 1 of 3.
        assert_eq!(r.num, 3);
        assert!((r.score.unwrap() - 1.0 / 3.0).abs() < 1e-12);
        // ddof 1 over [1, 0, 0]: sd = √(1/3), SE = sd / √3 = 1/3.
        assert!((r.stderr.unwrap() - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(r.errors, 1);
        assert_eq!(
            r.errored_items,
            [ErroredItem {
                id: "62".into(),
                sample: 0,
                reason: "HTTP 500".into()
            }]
        );
        assert_eq!(r.pending, 1);
        assert_eq!(r.protocol, "servebench");
        assert_eq!(r.wrong_items.len(), 2);
        assert_eq!(r.wrong_items[0].id, "61");
        assert_eq!(r.wrong_items[0].extracted.as_deref(), Some("7"));
        // Excluding errors is explicit and shown.
        let x = build(
            &ds(),
            &rows,
            &ReportContext {
                exclude_errors: true,
                ..ctx(1, &g)
            },
        );
        assert_eq!((x.num, x.score, x.errors_excluded), (2, Some(0.5), true));
        assert!(table(std::slice::from_ref(&x)).contains("accuracy (errors excluded)"));
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
            t.contains("m (simulated)")
                && t.contains("0.3333 ± 0.3333")
                && t.contains("| servebench"),
            "{t}"
        );
        assert!(!t.contains("Report"), "{t}");
        let notes = notes(&r, "out/aime24_report.json");
        assert_eq!(notes[0], "aime24: 2 wrong: 61, 62");
        assert!(
            notes.iter().any(|n| n
                .contains("1 samples failed or came back empty, counted as wrong")
                && n.contains("1× HTTP 500")),
            "{notes:?}"
        );
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
    fn empty_completions_are_errored_and_lower_the_score() {
        let g = GradeOptions::default();
        let mut empty = row("61", 0, None, false, false);
        empty.response = "  ".into();
        empty.finish_reason = Some("stop".into());
        let rows = vec![
            row("60", 0, Some("25"), true, false),
            empty,
            row("62", 0, Some("25"), true, false),
            row("63", 0, Some("25"), true, false),
        ];
        let r = build(&ds(), &rows, &ctx(1, &g));
        assert_eq!(r.score, Some(0.75));
        assert_eq!(r.errors, 1);
        assert_eq!(r.errored_items[0].reason, "empty completion");
        assert_eq!(
            r.no_answer, 0,
            "an errored sample is not also a sample without an answer"
        );
        // The same rows with every completion non-empty and right score higher.
        let mut fine = rows.clone();
        fine[1] = row("61", 0, Some("25"), true, false);
        assert!(build(&ds(), &fine, &ctx(1, &g)).score > r.score);
        // The field-report preset adds the report's number (AIME24: 83.3) in its own column.
        let d = Dataset {
            name: "aime24".into(),
            ..ds()
        };
        let fr = build(
            &d,
            &rows,
            &ReportContext {
                field_report: true,
                ..ctx(1, &g)
            },
        );
        assert_eq!(fr.field_report_score, Some(0.833));
        let t = table(&[fr]);
        assert!(t.contains("Report") && t.contains("0.8330"), "{t}");
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
