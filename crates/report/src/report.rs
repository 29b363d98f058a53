//! `servebench report`: summary.csv, summary.md, charts and report.html from a collection.

use std::path::{Path, PathBuf};

use crate::charts::{render, ChartImage, DistChart, DistPanel};
use crate::collect::Collection;
use crate::details::{read_details, RequestSamples};
use crate::error::ReportError;
use crate::escape::markdown as md_text;
use crate::html::{figure, list, Page};
use crate::perf_charts::{write_perf_charts, Variant};
use crate::run::{file_stem, RunSummary};
use crate::summary_csv::{sort_runs, write_summary_csv, SortKey};
use crate::tables::{accuracy_table, perf_table, runs_table};

/// Folder (under the output folder) that receives the chart files.
pub const CHARTS_DIR: &str = "charts";

/// Distribution charts drawn without `--point`, at most.
pub const MAX_AUTO_DIST: usize = 12;

#[derive(Debug, Clone, Default)]
pub struct ReportOptions {
    pub out_dir: PathBuf,
    pub sort: SortKey,
    /// Points whose per-request distributions to chart (`--point`): a point name as listed in
    /// the runs table (`stem` or `stem@c64`), a file stem, or a file path. Empty: every run
    /// that has per-request data, up to [`MAX_AUTO_DIST`].
    pub points: Vec<String>,
    /// Page title; default "servebench report".
    pub title: Option<String>,
}

/// What `write_report` wrote.
#[derive(Debug, Clone, Default)]
pub struct ReportOutput {
    pub files: Vec<PathBuf>,
    /// The collection's notes plus those raised while writing.
    pub notes: Vec<String>,
    /// Runs in summary order.
    pub runs: Vec<RunSummary>,
}

fn sanitize_name(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The runs `--point` names, in run order.
fn select_points<'a>(
    runs: &'a [RunSummary],
    wanted: &[String],
) -> Result<Vec<&'a RunSummary>, ReportError> {
    let mut out: Vec<&RunSummary> = Vec::new();
    for w in wanted {
        let matches: Vec<&RunSummary> = runs
            .iter()
            .filter(|r| {
                r.point_name() == *w
                    || file_stem(&r.file) == *w
                    || r.file.display().to_string() == *w
                    || r.file.file_name().and_then(|n| n.to_str()) == Some(w.as_str())
            })
            .collect();
        if matches.is_empty() {
            let mut known: Vec<String> = runs.iter().map(RunSummary::point_name).collect();
            known.dedup();
            let more = known.len().saturating_sub(20);
            known.truncate(20);
            let mut known = known.join(", ");
            if more > 0 {
                known.push_str(&format!(" … and {more} more"));
            }
            return Err(ReportError::UnknownPoint {
                wanted: w.clone(),
                known,
            });
        }
        for m in matches {
            if !out.iter().any(|o| std::ptr::eq(*o, m)) {
                out.push(m);
            }
        }
    }
    Ok(out)
}

/// Per-request latencies of a run: its details file, else samples embedded in its result.
fn samples_for(
    run: &RunSummary,
    notes: &mut Vec<String>,
) -> Result<Option<RequestSamples>, ReportError> {
    if let Some(p) = &run.details {
        return read_details(p, notes).map(Some);
    }
    Ok(run.embedded.as_ref().map(|e| RequestSamples {
        ttft_ms: e.ttft_ms.clone(),
        e2e_ms: e.e2e_ms.clone(),
        failed: 0,
        source: format!(
            "{} line {} (embedded per-request arrays)",
            run.file.display(),
            run.line
        ),
    }))
}

/// The runs whose distributions to draw: `--point` (an unknown name is an error), else every
/// run with per-request data up to [`MAX_AUTO_DIST`].
fn dist_points<'a>(
    runs: &'a [RunSummary],
    opts: &ReportOptions,
    notes: &mut Vec<String>,
) -> Result<Vec<&'a RunSummary>, ReportError> {
    Ok(if opts.points.is_empty() {
        let with_data: Vec<&RunSummary> = runs
            .iter()
            .filter(|r| r.details.is_some() || r.embedded.is_some())
            .collect();
        if with_data.len() > MAX_AUTO_DIST {
            notes.push(format!(
                "{} runs have per-request records; distributions drawn for the first {MAX_AUTO_DIST} (pick others with --point)",
                with_data.len()
            ));
        }
        with_data.into_iter().take(MAX_AUTO_DIST).collect()
    } else {
        select_points(runs, &opts.points)?
    })
}

fn dist_charts(
    chosen: &[&RunSummary],
    dir: &Path,
    notes: &mut Vec<String>,
) -> Result<Vec<ChartImage>, ReportError> {
    let mut images = Vec::new();
    for &run in chosen {
        let name = run.point_name();
        let Some(s) = samples_for(run, notes)? else {
            notes.push(format!(
                "point {name}: no per-request data (no {} file next to the result, no embedded arrays); run the benchmark with --output-details",
                crate::details::DETAILS_SUFFIX
            ));
            continue;
        };
        let mut panels = Vec::new();
        if !s.ttft_ms.is_empty() {
            panels.push(DistPanel {
                name: "Time to first token".into(),
                x_desc: "TTFT (ms)".into(),
                values: s.ttft_ms.clone(),
                color: 0,
            });
        }
        if !s.e2e_ms.is_empty() {
            panels.push(DistPanel {
                name: "End-to-end latency".into(),
                x_desc: "E2E latency (ms)".into(),
                values: s.e2e_ms.clone(),
                color: 1,
            });
        }
        if panels.is_empty() {
            notes.push(format!("point {name}: per-request records hold no successful request with ttft_ms or e2e_ms"));
            continue;
        }
        let title = format!("Per-request latency: {name}");
        let mut subtitle = format!(
            "{} · max concurrency {}",
            run.setting().label(),
            run.max_concurrency
                .map(crate::numfmt::plain)
                .unwrap_or_else(|| "–".into())
        );
        if s.failed > 0 {
            subtitle.push_str(&format!(" · {} failed request(s) left out", s.failed));
        }
        let chart = DistChart {
            title: title.clone(),
            subtitle,
            panels,
        };
        images.push(render(
            dir,
            &format!("dist_{}", sanitize_name(&name)),
            &title,
            &chart,
        )?);
    }
    Ok(images)
}

/// One note per distinct warning the runs recorded, with how many runs recorded it and which (all, or up to
/// five names): a warning every run of a sweep carries is printed once, not once per run.
pub(crate) fn warning_notes(runs: &[RunSummary]) -> Vec<String> {
    let mut by_text: Vec<(String, Vec<String>)> = Vec::new();
    for r in runs {
        for w in &r.warnings {
            match by_text.iter_mut().find(|(t, _)| t == w) {
                Some((_, names)) => names.push(r.point_name()),
                None => by_text.push((w.clone(), vec![r.point_name()])),
            }
        }
    }
    by_text
        .into_iter()
        .map(|(text, names)| {
            let which = if names.len() == runs.len() && runs.len() > 1 {
                format!("all {} runs", runs.len())
            } else if names.len() > 5 {
                format!(
                    "{} of {} runs: {} and {} more",
                    names.len(),
                    runs.len(),
                    names[..5].join(", "),
                    names.len() - 5
                )
            } else {
                format!(
                    "{} of {} runs: {}",
                    names.len(),
                    runs.len(),
                    names.join(", ")
                )
            };
            format!("warning ({which}): {text}")
        })
        .collect()
}

fn write_file(path: &Path, text: &str, files: &mut Vec<PathBuf>) -> Result<(), ReportError> {
    std::fs::write(path, text).map_err(|e| ReportError::write(path, e))?;
    files.push(path.to_path_buf());
    Ok(())
}

fn simulated_badge(c: &Collection) -> Option<String> {
    let sim = c.runs.iter().filter(|r| r.simulated).count();
    let eval_sim = c
        .evals
        .iter()
        .filter(|e| e.report.as_ref().is_some_and(|r| r.simulated))
        .count();
    if sim == 0 && eval_sim == 0 {
        None
    } else if sim == c.runs.len() && eval_sim == c.evals.len() {
        Some("simulated engine: numbers describe the simulator, not hardware".into())
    } else {
        Some(format!(
            "simulated engine: {sim} of {} runs, {eval_sim} of {} eval sets",
            c.runs.len(),
            c.evals.len()
        ))
    }
}

/// Writes summary.csv, summary.md, charts/ (SVG + PNG) and report.html into `opts.out_dir`.
pub fn write_report(c: &Collection, opts: &ReportOptions) -> Result<ReportOutput, ReportError> {
    let out = &opts.out_dir;
    let mut notes = c.notes.clone();
    let mut files = Vec::new();
    let mut runs = c.runs.clone();
    sort_runs(&mut runs, opts.sort);
    notes.extend(warning_notes(&runs));
    // Checked before anything is written: an unknown --point fails the whole command.
    let chosen = dist_points(&runs, opts, &mut notes)?;
    std::fs::create_dir_all(out).map_err(|e| ReportError::write(out, e))?;

    let charts_dir = out.join(CHARTS_DIR);
    let mut perf_imgs = Vec::new();
    let mut dist_imgs = Vec::new();
    if !runs.is_empty() {
        let csv = out.join("summary.csv");
        write_summary_csv(&csv, &runs)?;
        files.push(csv);
        perf_imgs = write_perf_charts(
            &[Variant {
                label: "",
                runs: &runs,
            }],
            &charts_dir,
            &mut notes,
        )?;
        dist_imgs = dist_charts(&chosen, &charts_dir, &mut notes)?;
    }
    for img in perf_imgs.iter().chain(&dist_imgs) {
        files.push(img.svg_path.clone());
        files.push(img.png_path.clone());
    }
    let perf = perf_table(&runs);
    let acc = (!c.evals.is_empty()).then(|| accuracy_table(c, &mut notes));

    // summary.md
    let title = opts
        .title
        .clone()
        .unwrap_or_else(|| "servebench report".into());
    let mut md = format!("# {}\n\n", md_text(&title));
    if let Some(b) = simulated_badge(c) {
        md.push_str(&format!("> **{}**\n\n", md_text(&b)));
    }
    if !runs.is_empty() {
        md.push_str(&format!(
            "## Performance ({} runs)\n\n{}\n",
            runs.len(),
            perf.markdown()
        ));
    }
    if let Some(a) = &acc {
        md.push_str(&format!("## Accuracy\n\n{}\n", a.markdown()));
    }
    write_file(&out.join("summary.md"), &md, &mut files)?;

    // report.html
    let mut sections = Vec::new();
    if !runs.is_empty() {
        sections.push((
            "summary".to_string(),
            "Summary".to_string(),
            format!(
                "<p class=\"lead\">One row per run, sorted by configured max concurrency; all columns in summary.csv.</p>\n{}",
                perf.html("summary-table")
            ),
        ));
    }
    if !perf_imgs.is_empty() {
        let figs: String = perf_imgs.iter().map(|i| figure(i, CHARTS_DIR)).collect();
        sections.push((
            "charts".into(),
            "Charts".into(),
            format!("<div class=\"charts\">\n{figs}</div>\n"),
        ));
    }
    if !dist_imgs.is_empty() {
        let figs: String = dist_imgs.iter().map(|i| figure(i, CHARTS_DIR)).collect();
        sections.push((
            "distributions".into(),
            "Per-request distributions".into(),
            format!("<p class=\"lead\">Successful requests only; dashed lines mark p50, p90 and p99.</p>\n<div class=\"charts\">\n{figs}</div>\n"),
        ));
    }
    if let Some(a) = &acc {
        sections.push((
            "accuracy".into(),
            "Accuracy".into(),
            format!("<p class=\"lead\">Scores as the eval reports give them; accuracy recomputed from the predictions as the mean over items of per-item mean correctness (rows with errors excluded).</p>\n{}", a.html("accuracy-table")),
        ));
    }
    if !runs.is_empty() {
        sections.push((
            "runs".into(),
            "Runs and sources".into(),
            runs_table(&runs).html("runs-table"),
        ));
    }
    if !notes.is_empty() {
        sections.push(("notes".into(), "Notes".into(), list(&notes)));
    }
    let files_read: std::collections::BTreeSet<&PathBuf> = runs.iter().map(|r| &r.file).collect();
    let mut meta = vec![format!(
        "{} runs from {} result files in {}",
        runs.len(),
        files_read.len(),
        c.dirs
            .iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    )];
    let mut tools: Vec<&str> = runs
        .iter()
        .filter_map(|r| r.tool.map(|t| t.as_str()))
        .collect();
    tools.sort();
    tools.dedup();
    if !tools.is_empty() {
        meta.push(format!("written by: {}", tools.join(", ")));
    }
    if !c.evals.is_empty() {
        meta.push(format!("{} eval set(s)", c.evals.len()));
    }
    let page = Page {
        title,
        meta,
        badge: simulated_badge(c),
        sections,
    };
    write_file(&out.join("report.html"), &page.render(), &mut files)?;
    Ok(ReportOutput { files, notes, runs })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warnings_are_grouped_by_text() {
        let run = |name: &str, w: &[&str]| RunSummary {
            file: PathBuf::from(format!("{name}.json")),
            runs_in_file: 1,
            warnings: w.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        };
        let runs = vec![
            run("a", &["tok", "sat"]),
            run("b", &["tok"]),
            run("c", &["tok", "sat"]),
        ];
        assert_eq!(
            warning_notes(&runs),
            vec![
                "warning (all 3 runs): tok".to_string(),
                "warning (2 of 3 runs: a, c): sat".to_string()
            ]
        );
    }

    #[test]
    fn sanitizes_chart_names() {
        assert_eq!(
            sanitize_name("tp1_in10_out5_ratio0.5@c64"),
            "tp1_in10_out5_ratio0.5_c64"
        );
    }

    #[test]
    fn unknown_point_lists_known_ones() {
        let runs = vec![RunSummary {
            file: PathBuf::from("d/a.json"),
            runs_in_file: 1,
            ..Default::default()
        }];
        let err = select_points(&runs, &["b".to_string()]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "--point b: no run matches; known points: a"
        );
        assert_eq!(select_points(&runs, &["a".to_string()]).unwrap().len(), 1);
        assert_eq!(
            select_points(&runs, &["d/a.json".to_string()])
                .unwrap()
                .len(),
            1
        );
    }
}
