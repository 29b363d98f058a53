//! The performance charts people in this field read, built from runs: throughput, TTFT and
//! TPOT against concurrency, and the latency–throughput curve; one line per workload setting
//! (and per variant in compare).

use std::path::Path;

use crate::charts::{render, ChartImage, LineChart, Series};
use crate::error::ReportError;
use crate::numfmt;
use crate::run::{RunSummary, Setting};

/// A set of runs drawn with one line style (compare draws A solid, B dashed).
pub struct Variant<'a> {
    pub label: &'a str,
    pub runs: &'a [RunSummary],
}

type Metric = fn(&RunSummary) -> Option<f64>;

/// One metric drawn against concurrency: (legend suffix, value, dashed in single-variant mode).
struct Line {
    suffix: &'static str,
    value: Metric,
    dashed: bool,
}

struct ConcurrencyChart {
    name: &'static str,
    title: &'static str,
    y_desc: &'static str,
    lines: Vec<Line>,
}

fn single_variant_charts() -> Vec<ConcurrencyChart> {
    vec![
        ConcurrencyChart {
            name: "throughput_vs_concurrency",
            title: "Output throughput vs concurrency",
            y_desc: "output throughput (tok/s)",
            lines: vec![Line {
                suffix: "",
                value: |r| r.output_throughput,
                dashed: false,
            }],
        },
        ConcurrencyChart {
            name: "ttft_vs_concurrency",
            title: "Time to first token vs concurrency",
            y_desc: "TTFT (ms)",
            lines: vec![
                Line {
                    suffix: "median",
                    value: |r| r.ttft.median,
                    dashed: false,
                },
                Line {
                    suffix: "p99",
                    value: |r| r.ttft.p99,
                    dashed: true,
                },
            ],
        },
        ConcurrencyChart {
            name: "tpot_vs_concurrency",
            title: "Time per output token vs concurrency",
            y_desc: "TPOT (ms)",
            lines: vec![
                Line {
                    suffix: "median",
                    value: |r| r.tpot.median,
                    dashed: false,
                },
                Line {
                    suffix: "p99",
                    value: |r| r.tpot.p99,
                    dashed: true,
                },
            ],
        },
    ]
}

fn compare_charts() -> Vec<ConcurrencyChart> {
    let one = |name, title, y_desc, value: Metric| ConcurrencyChart {
        name,
        title,
        y_desc,
        lines: vec![Line {
            suffix: "",
            value,
            dashed: false,
        }],
    };
    vec![
        one(
            "throughput_vs_concurrency",
            "Output throughput vs concurrency",
            "output throughput (tok/s)",
            |r| r.output_throughput,
        ),
        one(
            "ttft_median_vs_concurrency",
            "Median TTFT vs concurrency",
            "median TTFT (ms)",
            |r| r.ttft.median,
        ),
        one(
            "ttft_p99_vs_concurrency",
            "p99 TTFT vs concurrency",
            "p99 TTFT (ms)",
            |r| r.ttft.p99,
        ),
        one(
            "tpot_median_vs_concurrency",
            "Median TPOT vs concurrency",
            "median TPOT (ms)",
            |r| r.tpot.median,
        ),
    ]
}

/// Distinct settings over all variants, sorted (the colour of a setting is its index).
pub fn settings(variants: &[Variant]) -> Vec<Setting> {
    let mut out: Vec<Setting> = Vec::new();
    for v in variants {
        for r in v.runs {
            let s = r.setting();
            if !out.contains(&s) {
                out.push(s);
            }
        }
    }
    out.sort_by_key(|a| a.sort_key());
    out
}

/// Points (x, y, concurrency) of one variant and setting, sorted by concurrency; the last run
/// wins where a concurrency repeats (a rerun appended to the same file).
fn points(runs: &[RunSummary], setting: &Setting, x: Metric, y: Metric) -> Vec<(f64, f64, f64)> {
    let mut pts: Vec<(f64, f64, f64)> = Vec::new();
    for r in runs.iter().filter(|r| r.setting() == *setting) {
        let (Some(c), Some(xv), Some(yv)) = (r.max_concurrency, x(r), y(r)) else {
            continue;
        };
        if !(c.is_finite() && xv.is_finite() && yv.is_finite()) {
            continue;
        }
        pts.retain(|p| p.2 != c);
        pts.push((xv, yv, c));
    }
    pts.sort_by(|a, b| a.2.total_cmp(&b.2));
    pts
}

fn color_for(variants: usize, n_settings: usize, setting_idx: usize, variant_idx: usize) -> usize {
    if variants > 1 && n_settings == 1 {
        variant_idx
    } else {
        setting_idx
    }
}

/// Renders the performance charts into `dir`. Charts without any point are skipped with a
/// note (e.g. no TPOT in the results).
pub fn write_perf_charts(
    variants: &[Variant],
    dir: &Path,
    notes: &mut Vec<String>,
) -> Result<Vec<ChartImage>, ReportError> {
    let settings = settings(variants);
    let multi = variants.len() > 1;
    let mut images = Vec::new();
    let no_conc: usize = variants
        .iter()
        .map(|v| {
            v.runs
                .iter()
                .filter(|r| r.max_concurrency.is_none())
                .count()
        })
        .sum();
    if no_conc > 0 {
        notes.push(format!(
            "{no_conc} run(s) have no configured max concurrency (request-rate runs?) and are left out of the charts"
        ));
    }
    let defs = if multi {
        compare_charts()
    } else {
        single_variant_charts()
    };
    let conc: Metric = |r| r.max_concurrency;
    let all_conc: Vec<f64> = variants
        .iter()
        .flat_map(|v| v.runs.iter().filter_map(|r| r.max_concurrency))
        .filter(|c| c.is_finite())
        .collect();
    let x_scale = LineChart::scale_for(&all_conc);
    let log_note = match x_scale {
        crate::charts::XScale::Log2 => "configured max concurrency, log2 scale",
        crate::charts::XScale::Linear => "configured max concurrency",
    };
    for def in defs {
        let mut series = Vec::new();
        for (vi, v) in variants.iter().enumerate() {
            for (si, s) in settings.iter().enumerate() {
                for line in &def.lines {
                    let pts = points(v.runs, s, conc, line.value);
                    if pts.is_empty() {
                        continue;
                    }
                    let mut label = s.label();
                    if multi {
                        label = format!("{} · {label}", v.label);
                    }
                    if !line.suffix.is_empty() {
                        label = format!("{label} · {}", line.suffix);
                    }
                    series.push(Series {
                        label,
                        color: color_for(variants.len(), settings.len(), si, vi),
                        dashed: if multi { vi > 0 } else { line.dashed },
                        points: pts.iter().map(|p| (p.0, p.1)).collect(),
                        point_labels: Vec::new(),
                    });
                }
            }
        }
        let subtitle = if multi {
            format!(
                "x: {log_note} · solid: {} · dashed: {}",
                variants[0].label,
                variants.get(1).map(|v| v.label).unwrap_or("")
            )
        } else if def.lines.len() > 1 {
            format!("x: {log_note} · solid: median · dashed: p99")
        } else {
            format!("x: {log_note}")
        };
        let chart = LineChart {
            title: def.title.to_string(),
            subtitle,
            x_desc: "max concurrency (requests)".to_string(),
            y_desc: def.y_desc.to_string(),
            x_scale,
            series,
        };
        if !chart.has_points() {
            notes.push(format!(
                "chart \"{}\" not drawn: no run has both a max concurrency and this metric",
                def.title
            ));
            continue;
        }
        images.push(render(dir, def.name, def.title, &chart)?);
    }

    // Latency–throughput curve: output throughput against median TPOT.
    let mut series = Vec::new();
    for (vi, v) in variants.iter().enumerate() {
        for (si, s) in settings.iter().enumerate() {
            let pts = points(v.runs, s, |r| r.tpot.median, |r| r.output_throughput);
            if pts.is_empty() {
                continue;
            }
            let label = if multi {
                format!("{} · {}", v.label, s.label())
            } else {
                s.label()
            };
            series.push(Series {
                label,
                color: color_for(variants.len(), settings.len(), si, vi),
                dashed: multi && vi > 0,
                points: pts.iter().map(|p| (p.0, p.1)).collect(),
                point_labels: pts
                    .iter()
                    .map(|p| format!("c{}", numfmt::plain(p.2)))
                    .collect(),
            });
        }
    }
    let title = "Throughput vs latency";
    let chart = LineChart {
        title: title.to_string(),
        subtitle: "each point is one concurrency (cN) · up and to the left is better".to_string(),
        x_desc: "median TPOT (ms)".to_string(),
        y_desc: "output throughput (tok/s)".to_string(),
        x_scale: crate::charts::XScale::Linear,
        series,
    };
    if chart.has_points() {
        images.push(render(dir, "throughput_vs_tpot", title, &chart)?);
    } else {
        notes.push(
            "chart \"Throughput vs latency\" not drawn: no run has both median TPOT and output throughput"
                .to_string(),
        );
    }
    Ok(images)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn run(c: f64, input: f64, tput: f64) -> RunSummary {
        RunSummary {
            file: PathBuf::from("r.json"),
            max_concurrency: Some(c),
            random_input_len: Some(input),
            random_output_len: Some(100.0),
            output_throughput: Some(tput),
            ..Default::default()
        }
    }

    #[test]
    fn points_sorted_by_concurrency_and_reruns_replace() {
        let runs = vec![
            run(8.0, 1.0, 80.0),
            run(1.0, 1.0, 10.0),
            run(8.0, 1.0, 90.0),
            run(4.0, 2.0, 1.0),
        ];
        let s = runs[0].setting();
        let pts = points(&runs, &s, |r| r.max_concurrency, |r| r.output_throughput);
        assert_eq!(pts, vec![(1.0, 10.0, 1.0), (8.0, 90.0, 8.0)]);
        let v = [Variant {
            label: "",
            runs: &runs,
        }];
        assert_eq!(settings(&v).len(), 2);
    }

    #[test]
    fn charts_are_written_and_empty_ones_skipped_with_a_note() {
        let dir = tempfile::tempdir().unwrap();
        let runs = vec![run(1.0, 1.0, 10.0), run(64.0, 1.0, 300.0)];
        let mut notes = Vec::new();
        let imgs = write_perf_charts(
            &[Variant {
                label: "",
                runs: &runs,
            }],
            dir.path(),
            &mut notes,
        )
        .unwrap();
        let names: Vec<_> = imgs.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, vec!["throughput_vs_concurrency"]);
        assert_eq!(notes.len(), 3, "{notes:?}");
        let svg =
            std::fs::read_to_string(dir.path().join("throughput_vs_concurrency.svg")).unwrap();
        assert!(svg.contains("output throughput (tok/s)"));
        assert!(svg.contains("max concurrency (requests)"));
        assert!(svg.contains("log2 scale"));
    }
}
