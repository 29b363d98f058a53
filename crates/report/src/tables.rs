//! The human-readable tables (Markdown and HTML share them): key performance columns, eval
//! scores, the list of runs.

use std::path::Path;

use crate::collect::Collection;
use crate::eval_files::{read_predictions, EvalSet};
use crate::html::Cell;
use crate::numfmt::{display, plain};
use crate::run::RunSummary;

/// A rendered table: headers and rows of cells.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub headers: Vec<&'static str>,
    pub rows: Vec<Vec<Cell>>,
}

impl Table {
    /// GitHub-flavoured Markdown; numeric columns right-aligned.
    pub fn markdown(&self) -> String {
        let numeric: Vec<bool> = (0..self.headers.len())
            .map(|i| {
                !self.rows.is_empty()
                    && self
                        .rows
                        .iter()
                        .all(|r| r.get(i).is_some_and(|c| c.numeric))
            })
            .collect();
        let esc = |s: &str| crate::escape::markdown(s).into_owned();
        let mut md = format!(
            "| {} |\n",
            self.headers
                .iter()
                .map(|h| esc(h))
                .collect::<Vec<_>>()
                .join(" | ")
        );
        md.push_str(&format!(
            "|{}|\n",
            numeric
                .iter()
                .map(|n| if *n { "---:" } else { "---" })
                .collect::<Vec<_>>()
                .join("|")
        ));
        for r in &self.rows {
            md.push_str(&format!(
                "| {} |\n",
                r.iter()
                    .map(|c| esc(&c.text))
                    .collect::<Vec<_>>()
                    .join(" | ")
            ));
        }
        md
    }

    pub fn html(&self, id: &str) -> String {
        crate::html::table(id, &self.headers, &self.rows)
    }
}

fn opt_plain(v: Option<f64>) -> String {
    v.map(plain).unwrap_or_else(|| "–".to_string())
}

/// The key columns of `summary.csv`, rounded for reading.
pub fn perf_table(runs: &[RunSummary]) -> Table {
    let headers = vec![
        "Conc.",
        "In",
        "Out",
        "Ratio",
        "Prompts",
        "Failed",
        "Req/s",
        "Out tok/s",
        "In+out tok/s",
        "TTFT p50 (ms)",
        "TTFT p99 (ms)",
        "TPOT p50 (ms)",
        "TPOT p99 (ms)",
        "ITL p50 (ms)",
        "E2E p50 (ms)",
        "E2E p99 (ms)",
        "Meas. conc.",
    ];
    let rows = runs
        .iter()
        .map(|r| {
            vec![
                Cell::num(opt_plain(r.max_concurrency)),
                Cell::num(opt_plain(r.random_input_len)),
                Cell::num(opt_plain(r.random_output_len)),
                Cell::num(opt_plain(r.random_range_ratio)),
                Cell::num(display(r.prompt_num(), 0)),
                Cell::num(display(r.failed, 0)),
                Cell::num(display(r.request_throughput, 2)),
                Cell::num(display(r.output_throughput, 1)),
                Cell::num(display(r.total_throughput, 1)),
                Cell::num(display(r.ttft.median, 1)),
                Cell::num(display(r.ttft.p99, 1)),
                Cell::num(display(r.tpot.median, 2)),
                Cell::num(display(r.tpot.p99, 2)),
                Cell::num(display(r.itl.median, 2)),
                Cell::num(display(r.e2e.median, 1)),
                Cell::num(display(r.e2e.p99, 1)),
                Cell::num(display(r.measured_concurrency, 2)),
            ]
        })
        .collect();
    let mut table = Table { headers, rows };
    if runs.iter().any(|r| r.slo.is_some()) {
        add_slo_columns(&mut table, runs);
    }
    table
}

/// SLO attainment, goodput and the verdict, for runs judged against an SLO.
fn add_slo_columns(table: &mut Table, runs: &[RunSummary]) {
    table
        .headers
        .extend(["SLO", "Attainment", "Goodput (req/s)", "SLO met"]);
    for (row, r) in table.rows.iter_mut().zip(runs) {
        row.push(Cell::text(r.slo.clone().unwrap_or_default()));
        row.push(Cell::num(display(r.slo_attainment, 4)));
        row.push(Cell::num(display(r.goodput, 2)));
        row.push(Cell::text(match r.slo_met {
            Some(true) => "yes",
            Some(false) => "no",
            None => "–",
        }));
    }
}

/// A path shown relative to `base` when it lies under it.
pub fn rel(path: &Path, base: &Path) -> String {
    path.strip_prefix(base)
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| path.display().to_string())
}

/// Every run with its source: the list a reader uses to find the raw file.
pub fn runs_table(runs: &[RunSummary]) -> Table {
    let headers = vec![
        "#",
        "Point",
        "Tool",
        "Backend",
        "Model",
        "Conc.",
        "Engine",
        "Source file",
        "Line",
    ];
    let rows = runs
        .iter()
        .enumerate()
        .map(|(i, r)| {
            vec![
                Cell::num((i + 1).to_string()),
                Cell::text(r.point_name()),
                Cell::text(r.tool.map(|t| t.as_str()).unwrap_or("")),
                Cell::text(r.backend.clone().unwrap_or_default()),
                Cell::text(r.model.clone().unwrap_or_default()),
                Cell::num(opt_plain(r.max_concurrency)),
                if r.simulated {
                    Cell::text("simulated").with_class("sim")
                } else {
                    Cell::text("real")
                },
                Cell::text(r.file.display().to_string()),
                Cell::num(r.line.to_string()),
            ]
        })
        .collect();
    Table { headers, rows }
}

/// One eval set's scores: as reported, and recomputed from the predictions when present.
pub fn accuracy_table(c: &Collection, notes: &mut Vec<String>) -> Table {
    let headers = vec![
        "Dataset",
        "Model",
        "Metric",
        "Score (reported)",
        "Stderr",
        "Items",
        "Samples/item",
        "Accuracy from predictions (%)",
        "Errored rows",
        "Engine",
        "Folder",
    ];
    let rows = c
        .evals
        .iter()
        .map(|e: &EvalSet| {
            let r = e.report.clone().unwrap_or_default();
            let preds = e
                .predictions
                .as_ref()
                .and_then(|p| match read_predictions(p, notes) {
                    Ok(s) => Some(s),
                    Err(err) => {
                        notes.push(err.to_string());
                        None
                    }
                });
            let acc = preds.as_ref().and_then(|p| p.accuracy()).map(|a| a * 100.0);
            let items = r
                .num
                .or_else(|| preds.as_ref().map(|p| p.items.len() as f64));
            let samples =
                r.n.or_else(|| preds.as_ref().map(|p| f64::from(p.max_samples)));
            vec![
                Cell::text(e.name()),
                Cell::text(r.model.clone().unwrap_or_default()),
                Cell::text(r.metric.clone().unwrap_or_default()),
                Cell::num(r.score.map(plain).unwrap_or_else(|| "–".into())),
                Cell::num(r.stderr.map(plain).unwrap_or_else(|| "–".into())),
                Cell::num(display(items, 0)),
                Cell::num(display(samples, 0)),
                Cell::num(display(acc, 1)),
                Cell::num(
                    preds
                        .as_ref()
                        .map(|p| p.errored_rows.to_string())
                        .unwrap_or_else(|| "–".into()),
                ),
                if r.simulated {
                    Cell::text("simulated").with_class("sim")
                } else {
                    Cell::text("real")
                },
                Cell::text(e.dir.display().to_string()),
            ]
        })
        .collect();
    Table { headers, rows }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn markdown_right_aligns_numeric_columns_and_escapes_pipes() {
        let t = Table {
            headers: vec!["name", "v"],
            rows: vec![vec![Cell::text("a|b"), Cell::num("1.0")]],
        };
        assert_eq!(t.markdown(), "| name | v |\n|---|---:|\n| a\\|b | 1.0 |\n");
    }

    #[test]
    fn perf_table_rounds_and_marks_missing() {
        let r = RunSummary {
            file: PathBuf::from("x.json"),
            max_concurrency: Some(64.0),
            random_range_ratio: Some(0.7),
            output_throughput: Some(12345.678),
            ..Default::default()
        };
        let t = perf_table(&[r]);
        let row = &t.rows[0];
        assert_eq!(row[0].text, "64");
        assert_eq!(row[3].text, "0.7");
        assert_eq!(row[7].text, "12,345.7");
        assert_eq!(row[9].text, "–");
    }

    #[test]
    fn slo_columns_appear_only_when_a_run_has_an_slo() {
        let plain = RunSummary::default();
        assert_eq!(perf_table(std::slice::from_ref(&plain)).headers.len(), 17);
        let judged = RunSummary {
            slo: Some("ttft_ms=2000".into()),
            slo_attainment: Some(0.987654),
            goodput: Some(3.456),
            slo_met: Some(false),
            ..Default::default()
        };
        let t = perf_table(&[judged, plain]);
        assert_eq!(
            &t.headers[17..],
            ["SLO", "Attainment", "Goodput (req/s)", "SLO met"]
        );
        let texts =
            |i: usize| -> Vec<String> { t.rows[i][17..].iter().map(|c| c.text.clone()).collect() };
        assert_eq!(texts(0), ["ttft_ms=2000", "0.9877", "3.46", "no"]);
        assert_eq!(texts(1), ["", "–", "–", "–"]);
    }
}
