//! `servebench compare A B`: performance at matching load points and accuracy with paired
//! significance tests; writes compare.csv, compare_accuracy.csv, compare.md, compare.html and
//! charts, and returns a text table for the terminal.

pub mod accuracy;
pub mod perf;

use std::path::PathBuf;

use crate::charts::ChartImage;
use crate::collect::Collection;
use crate::error::ReportError;
use crate::escape::markdown as md_text;
use crate::html::{figure, list, Cell, Page};
use crate::numfmt::{self, display, plain, signed};
use crate::perf_charts::{write_perf_charts, Variant};
use crate::report::CHARTS_DIR;
use crate::tables::Table;

pub use accuracy::{compare_evals, AccuracyComparison};
pub use perf::{direction, match_points, Direction, PointComparison};

#[derive(Debug, Clone)]
pub struct CompareOptions {
    pub out_dir: PathBuf,
    /// Name of A in tables and statements (e.g. `FP8`).
    pub label_a: String,
    pub label_b: String,
}

#[derive(Debug, Clone, Default)]
pub struct CompareOutput {
    pub points: Vec<PointComparison>,
    pub accuracy: Vec<AccuracyComparison>,
    /// One sentence per dataset, as in the HTML.
    pub statements: Vec<String>,
    pub files: Vec<PathBuf>,
    pub notes: Vec<String>,
    /// The tables for the terminal.
    pub text: String,
}

fn ratio_cell(m: &perf::MetricComparison) -> String {
    match m.ratio {
        Some(r) => format!("{:.2}× {}", r, m.direction.as_str()),
        None => "–".to_string(),
    }
}

fn class_for(d: Direction) -> Option<&'static str> {
    match d {
        Direction::Better => Some("better"),
        Direction::Worse => Some("worse"),
        _ => None,
    }
}

fn point_cells(p: &PointComparison) -> Vec<Cell> {
    let n = |v: Option<f64>| Cell::num(v.map(plain).unwrap_or_else(|| "–".into()));
    vec![
        n(p.setting.input_len),
        n(p.setting.output_len),
        n(p.setting.ratio),
        n(p.concurrency),
    ]
}

/// One row per point, one B/A column per metric.
pub fn ratio_table(points: &[PointComparison]) -> Table {
    let mut headers: Vec<&'static str> = vec!["In", "Out", "Ratio", "Conc."];
    headers.extend(perf::METRICS.iter().map(|m| m.short));
    let rows = points
        .iter()
        .map(|p| {
            let mut row = point_cells(p);
            for m in &p.metrics {
                let mut c = Cell::num(ratio_cell(m));
                c.class = class_for(m.direction);
                row.push(c);
            }
            row
        })
        .collect();
    Table { headers, rows }
}

/// One row per point and metric, with both values.
pub fn detail_table(points: &[PointComparison]) -> Table {
    let headers = vec![
        "In",
        "Out",
        "Ratio",
        "Conc.",
        "Metric",
        "Unit",
        "A",
        "B",
        "B/A",
        "Change",
        "Direction",
    ];
    let mut rows = Vec::new();
    for p in points {
        for m in &p.metrics {
            let mut row = point_cells(p);
            let dec = m.a.map(numfmt::auto_decimals).unwrap_or(2);
            row.push(Cell::text(m.metric));
            row.push(Cell::text(m.unit));
            row.push(Cell::num(display(m.a, dec)));
            row.push(Cell::num(display(m.b, dec)));
            row.push(Cell::num(
                m.ratio
                    .map(|r| format!("{r:.3}"))
                    .unwrap_or_else(|| "–".into()),
            ));
            row.push(Cell::num(
                m.ratio
                    .map(|r| format!("{}%", signed((r - 1.0) * 100.0, 1)))
                    .unwrap_or_else(|| "–".into()),
            ));
            let mut d = Cell::text(m.direction.as_str());
            d.class = class_for(m.direction);
            row.push(d);
            rows.push(row);
        }
    }
    Table { headers, rows }
}

pub fn accuracy_table(acc: &[AccuracyComparison]) -> Table {
    let headers = vec![
        "Dataset",
        "Items",
        "Samples A/B",
        "Score A (%)",
        "Score B (%)",
        "B − A (points)",
        "95% CI",
        "Test",
        "Discordant (only A right / only B right)",
        "p",
        "Verdict",
    ];
    let rows = acc
        .iter()
        .map(|c| {
            vec![
                Cell::text(c.dataset.clone()),
                Cell::num(c.items.to_string()),
                Cell::num(format!("{}/{}", c.samples_a, c.samples_b)),
                Cell::num(format!("{:.1}", c.score_a)),
                Cell::num(format!("{:.1}", c.score_b)),
                Cell::num(signed(c.diff, 1)),
                Cell::num(
                    c.ci.map(|(lo, hi)| format!("[{}, {}]", signed(lo, 1), signed(hi, 1)))
                        .unwrap_or_else(|| "–".into()),
                ),
                Cell::text(c.test),
                Cell::num(
                    c.discordant
                        .map(|(x, y)| format!("{x} / {y}"))
                        .unwrap_or_else(|| "–".into()),
                ),
                Cell::num(accuracy::format_p(c.p).trim_start_matches("p=").to_string()),
                if c.significant() {
                    Cell::text("significant").with_class(if c.diff < 0.0 {
                        "worse"
                    } else {
                        "better"
                    })
                } else {
                    Cell::text("not significant")
                },
            ]
        })
        .collect();
    Table { headers, rows }
}

/// Plain-text table with aligned columns (numbers right-aligned).
pub fn text_table(t: &Table) -> String {
    let cols = t.headers.len();
    let mut widths: Vec<usize> = t.headers.iter().map(|h| h.chars().count()).collect();
    for r in &t.rows {
        for (i, c) in r.iter().enumerate().take(cols) {
            widths[i] = widths[i].max(c.text.chars().count());
        }
    }
    let pad = |s: &str, w: usize, right: bool| {
        let fill = " ".repeat(w.saturating_sub(s.chars().count()));
        if right {
            format!("{fill}{s}")
        } else {
            format!("{s}{fill}")
        }
    };
    let mut out = String::new();
    let line: Vec<String> = t
        .headers
        .iter()
        .enumerate()
        .map(|(i, h)| pad(h, widths[i], false))
        .collect();
    out.push_str(line.join("  ").trim_end());
    out.push('\n');
    out.push_str(
        &widths
            .iter()
            .map(|w| "-".repeat(*w))
            .collect::<Vec<_>>()
            .join("  "),
    );
    out.push('\n');
    for r in &t.rows {
        let line: Vec<String> = r
            .iter()
            .enumerate()
            .take(cols)
            .map(|(i, c)| pad(&c.text, widths[i], c.numeric))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

use crate::summary_csv::write_csv;

fn perf_csv_rows(points: &[PointComparison]) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    for p in points {
        for m in &p.metrics {
            rows.push(vec![
                numfmt::cell(p.setting.input_len),
                numfmt::cell(p.setting.output_len),
                numfmt::cell(p.setting.ratio),
                numfmt::cell(p.concurrency),
                m.metric.to_string(),
                m.unit.to_string(),
                numfmt::cell(m.a),
                numfmt::cell(m.b),
                numfmt::cell(m.ratio),
                numfmt::cell(m.ratio.map(|r| (r - 1.0) * 100.0)),
                m.direction.as_str().to_string(),
            ]);
        }
    }
    rows
}

fn accuracy_csv_rows(acc: &[AccuracyComparison]) -> Vec<Vec<String>> {
    acc.iter()
        .map(|c| {
            vec![
                c.dataset.clone(),
                c.items.to_string(),
                c.samples_a.to_string(),
                c.samples_b.to_string(),
                plain(c.score_a),
                plain(c.score_b),
                plain(c.diff),
                numfmt::cell(c.ci.map(|x| x.0)),
                numfmt::cell(c.ci.map(|x| x.1)),
                c.test.to_string(),
                c.discordant.map(|d| d.0.to_string()).unwrap_or_default(),
                c.discordant.map(|d| d.1.to_string()).unwrap_or_default(),
                plain(c.p),
                c.significant().to_string(),
            ]
        })
        .collect()
}

/// Compares two collections and writes the outputs into `opts.out_dir`.
pub fn compare(
    a: &Collection,
    b: &Collection,
    opts: &CompareOptions,
) -> Result<CompareOutput, ReportError> {
    let (la, lb) = (opts.label_a.as_str(), opts.label_b.as_str());
    if la == lb {
        return Err(ReportError::Invalid(format!(
            "both sides are labelled {la:?}: pass --label-a and --label-b with different names"
        )));
    }
    let out = &opts.out_dir;
    std::fs::create_dir_all(out).map_err(|e| ReportError::write(out, e))?;
    let mut notes: Vec<String> = Vec::new();
    notes.extend(a.notes.iter().map(|n| format!("{la}: {n}")));
    notes.extend(b.notes.iter().map(|n| format!("{lb}: {n}")));
    for (label, c) in [(la, a), (lb, b)] {
        notes.extend(
            crate::report::warning_notes(&c.runs)
                .into_iter()
                .map(|n| format!("{label}: {n}")),
        );
    }
    let points = match_points(&a.runs, &b.runs, la, lb, &mut notes);
    let acc = compare_evals(&a.evals, &b.evals, la, lb, &mut notes)?;
    let statements: Vec<String> = acc.iter().map(|c| c.statement(la, lb)).collect();
    let mut files = Vec::new();

    let charts: Vec<ChartImage> = if !a.runs.is_empty() && !b.runs.is_empty() {
        write_perf_charts(
            &[
                Variant {
                    label: la,
                    runs: &a.runs,
                },
                Variant {
                    label: lb,
                    runs: &b.runs,
                },
            ],
            &out.join(CHARTS_DIR),
            &mut notes,
        )?
    } else {
        Vec::new()
    };
    for c in &charts {
        files.push(c.svg_path.clone());
        files.push(c.png_path.clone());
    }

    let csv_path = out.join("compare.csv");
    write_csv(
        &csv_path,
        &[
            "random_input_len",
            "random_output_len",
            "random_range_ratio",
            "max_concurrency",
            "metric",
            "unit",
            "a",
            "b",
            "ratio_b_over_a",
            "change_pct",
            "direction",
        ],
        &perf_csv_rows(&points),
    )?;
    files.push(csv_path);
    if !acc.is_empty() {
        let p = out.join("compare_accuracy.csv");
        write_csv(
            &p,
            &[
                "dataset",
                "paired_items",
                "samples_a",
                "samples_b",
                "score_a_pct",
                "score_b_pct",
                "diff_points",
                "ci95_low_points",
                "ci95_high_points",
                "test",
                "a_only_correct",
                "b_only_correct",
                "p_value",
                "significant",
            ],
            &accuracy_csv_rows(&acc),
        )?;
        files.push(p);
    }

    let ratios = ratio_table(&points);
    let details = detail_table(&points);
    let acc_table = accuracy_table(&acc);
    let title = format!("servebench compare: {lb} vs {la}");
    let ratio_lead = format!(
        "B/A for each metric, B = {lb}, A = {la}; higher throughput and lower latency are better; changes within ±{}% read \"same\".",
        perf::SAME_WITHIN * 100.0
    );

    // Markdown.
    let mut md = format!("# {}\n\n", md_text(&title));
    if a.any_simulated() || b.any_simulated() {
        md.push_str("> **simulated engine**: at least one side comes from the simulator\n\n");
    }
    if !acc.is_empty() {
        md.push_str("## Accuracy\n\n");
        for s in &statements {
            md.push_str(&format!("- {}\n", md_text(s)));
        }
        md.push_str(&format!("\n{}\n", acc_table.markdown()));
    }
    if !points.is_empty() {
        md.push_str(&format!(
            "## Performance ({} matching points)\n\n{}\n\n{}\n### All values (A = {}, B = {})\n\n{}\n",
            points.len(),
            md_text(&ratio_lead),
            ratios.markdown(),
            md_text(la),
            md_text(lb),
            details.markdown()
        ));
    }
    if !notes.is_empty() {
        md.push_str("## Notes\n\n");
        for n in &notes {
            md.push_str(&format!("- {}\n", md_text(n)));
        }
    }
    let md_path = out.join("compare.md");
    std::fs::write(&md_path, &md).map_err(|e| ReportError::write(&md_path, e))?;
    files.push(md_path);

    // HTML.
    let mut sections = Vec::new();
    if !acc.is_empty() {
        let items: String = statements
            .iter()
            .map(|s| format!("<li>{}</li>\n", crate::html::escape(s)))
            .collect();
        sections.push((
            "accuracy".to_string(),
            "Accuracy".to_string(),
            format!(
                "<ul class=\"statements\">\n{items}</ul>\n<p class=\"lead\">Paired over the items answered on both sides; per-item mean correctness when there are several samples. CI: normal approximation of the mean paired difference. p: McNemar's exact test (one sample per item) or the paired z test.</p>\n{}",
                acc_table.html("accuracy-compare-table")
            ),
        ));
    }
    if !points.is_empty() {
        sections.push((
            "performance".to_string(),
            "Performance".to_string(),
            format!(
                "<p class=\"lead\">{}</p>\n{}",
                crate::html::escape(&ratio_lead),
                ratios.html("ratio-table")
            ),
        ));
    }
    if !charts.is_empty() {
        let figs: String = charts.iter().map(|c| figure(c, CHARTS_DIR)).collect();
        sections.push((
            "charts".to_string(),
            "Charts".to_string(),
            format!("<div class=\"charts\">\n{figs}</div>\n"),
        ));
    }
    if !points.is_empty() {
        sections.push((
            "values".to_string(),
            "All values".to_string(),
            format!(
                "<p class=\"lead\">A = {}, B = {}.</p>\n{}",
                crate::html::escape(la),
                crate::html::escape(lb),
                details.html("detail-table")
            ),
        ));
    }
    if !notes.is_empty() {
        sections.push(("notes".to_string(), "Notes".to_string(), list(&notes)));
    }
    let dirs = |c: &Collection| {
        c.dirs
            .iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let page = Page {
        title: title.clone(),
        meta: vec![
            format!(
                "A = {la}: {} runs, {} eval sets from {}",
                a.runs.len(),
                a.evals.len(),
                dirs(a)
            ),
            format!(
                "B = {lb}: {} runs, {} eval sets from {}",
                b.runs.len(),
                b.evals.len(),
                dirs(b)
            ),
        ],
        badge: (a.any_simulated() || b.any_simulated())
            .then(|| "simulated engine: numbers describe the simulator, not hardware".to_string()),
        sections,
    };
    let html_path = out.join("compare.html");
    std::fs::write(&html_path, page.render()).map_err(|e| ReportError::write(&html_path, e))?;
    files.push(html_path);

    // Terminal text.
    let mut text = String::new();
    if !statements.is_empty() {
        text.push_str("Accuracy\n");
        for s in &statements {
            text.push_str(&format!("  {s}\n"));
        }
        text.push('\n');
    }
    if !points.is_empty() {
        text.push_str(&format!("Performance, {ratio_lead}\n"));
        text.push_str(&text_table(&ratios));
    } else {
        text.push_str("Performance: no matching points (same input len, output len, range ratio and max concurrency) in both folders\n");
    }
    Ok(CompareOutput {
        points,
        accuracy: acc,
        statements,
        files,
        notes,
        text,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_table_aligns_numbers_right() {
        let t = Table {
            headers: vec!["name", "value"],
            rows: vec![
                vec![Cell::text("a"), Cell::num("1.5")],
                vec![Cell::text("long"), Cell::num("12.25")],
            ],
        };
        assert_eq!(
            text_table(&t),
            "name  value\n----  -----\na       1.5\nlong  12.25\n"
        );
    }
}
