//! Performance side by side: points matched by (input len, output len, range ratio, max
//! concurrency), each metric as A, B, B/A and a direction word.

use crate::run::{OrdF64, RunSummary, Setting};

/// Whether B is better than A on a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Better,
    Worse,
    /// Within ±1% of A.
    Same,
    /// A or B missing, or A is zero.
    NotComparable,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Better => "better",
            Direction::Worse => "worse",
            Direction::Same => "same",
            Direction::NotComparable => "n/a",
        }
    }
}

/// Relative changes smaller than this read as "same".
pub const SAME_WITHIN: f64 = 0.01;

/// B/A and its direction: higher is better for throughputs, lower for latencies.
pub fn direction(
    a: Option<f64>,
    b: Option<f64>,
    higher_is_better: bool,
) -> (Option<f64>, Direction) {
    let (Some(a), Some(b)) = (a, b) else {
        return (None, Direction::NotComparable);
    };
    if !(a.is_finite() && b.is_finite()) || a == 0.0 {
        return (None, Direction::NotComparable);
    }
    let ratio = b / a;
    let dir = if (ratio - 1.0).abs() < SAME_WITHIN {
        Direction::Same
    } else if (ratio > 1.0) == higher_is_better {
        Direction::Better
    } else {
        Direction::Worse
    };
    (Some(ratio), dir)
}

/// A compared metric.
pub struct MetricDef {
    pub name: &'static str,
    /// Short column title.
    pub short: &'static str,
    pub unit: &'static str,
    pub higher_is_better: bool,
    pub get: fn(&RunSummary) -> Option<f64>,
}

pub const METRICS: &[MetricDef] = &[
    MetricDef {
        name: "output throughput",
        short: "Out tok/s",
        unit: "tok/s",
        higher_is_better: true,
        get: |r| r.output_throughput,
    },
    MetricDef {
        name: "request throughput",
        short: "Req/s",
        unit: "req/s",
        higher_is_better: true,
        get: |r| r.request_throughput,
    },
    MetricDef {
        name: "TTFT median",
        short: "TTFT p50",
        unit: "ms",
        higher_is_better: false,
        get: |r| r.ttft.median,
    },
    MetricDef {
        name: "TTFT p99",
        short: "TTFT p99",
        unit: "ms",
        higher_is_better: false,
        get: |r| r.ttft.p99,
    },
    MetricDef {
        name: "TPOT median",
        short: "TPOT p50",
        unit: "ms",
        higher_is_better: false,
        get: |r| r.tpot.median,
    },
    MetricDef {
        name: "TPOT p99",
        short: "TPOT p99",
        unit: "ms",
        higher_is_better: false,
        get: |r| r.tpot.p99,
    },
    MetricDef {
        name: "ITL median",
        short: "ITL p50",
        unit: "ms",
        higher_is_better: false,
        get: |r| r.itl.median,
    },
    MetricDef {
        name: "E2E median",
        short: "E2E p50",
        unit: "ms",
        higher_is_better: false,
        get: |r| r.e2e.median,
    },
];

#[derive(Debug, Clone, PartialEq)]
pub struct MetricComparison {
    pub metric: &'static str,
    pub short: &'static str,
    pub unit: &'static str,
    pub a: Option<f64>,
    pub b: Option<f64>,
    /// B / A.
    pub ratio: Option<f64>,
    pub direction: Direction,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PointComparison {
    pub setting: Setting,
    pub concurrency: Option<f64>,
    pub metrics: Vec<MetricComparison>,
}

type Key = ([OrdF64; 3], OrdF64);

fn key(r: &RunSummary) -> Key {
    (r.setting().sort_key(), OrdF64(r.max_concurrency))
}

/// Last run per key (a rerun appended later replaces the earlier one), counting duplicates.
fn by_key(runs: &[RunSummary]) -> (Vec<(Key, &RunSummary)>, usize) {
    let mut out: Vec<(Key, &RunSummary)> = Vec::new();
    let mut dups = 0;
    for r in runs {
        let k = key(r);
        if let Some(slot) = out.iter_mut().find(|(kk, _)| *kk == k) {
            slot.1 = r;
            dups += 1;
        } else {
            out.push((k, r));
        }
    }
    (out, dups)
}

fn describe(r: &RunSummary) -> String {
    format!(
        "{} @ concurrency {}",
        r.setting().label(),
        r.max_concurrency
            .map(crate::numfmt::plain)
            .unwrap_or_else(|| "–".into())
    )
}

/// Matches A's and B's runs point by point, sorted by setting then concurrency. Points found
/// on one side only, and repeated points, are described in `notes`.
pub fn match_points(
    a: &[RunSummary],
    b: &[RunSummary],
    label_a: &str,
    label_b: &str,
    notes: &mut Vec<String>,
) -> Vec<PointComparison> {
    let (ka, dups_a) = by_key(a);
    let (kb, dups_b) = by_key(b);
    for (label, dups) in [(label_a, dups_a), (label_b, dups_b)] {
        if dups > 0 {
            notes.push(format!(
                "{label}: {dups} point(s) measured more than once; the last run of each is compared"
            ));
        }
    }
    let mut out = Vec::new();
    let mut only_a = Vec::new();
    for (k, ra) in &ka {
        match kb.iter().find(|(kk, _)| kk == k) {
            Some((_, rb)) => out.push((
                *k,
                PointComparison {
                    setting: ra.setting(),
                    concurrency: ra.max_concurrency,
                    metrics: METRICS
                        .iter()
                        .map(|m| {
                            let (va, vb) = ((m.get)(ra), (m.get)(rb));
                            let (ratio, direction) = direction(va, vb, m.higher_is_better);
                            MetricComparison {
                                metric: m.name,
                                short: m.short,
                                unit: m.unit,
                                a: va,
                                b: vb,
                                ratio,
                                direction,
                            }
                        })
                        .collect(),
                },
            )),
            None => only_a.push(describe(ra)),
        }
    }
    let only_b: Vec<String> = kb
        .iter()
        .filter(|(k, _)| !ka.iter().any(|(kk, _)| kk == k))
        .map(|(_, r)| describe(r))
        .collect();
    for (label, list) in [(label_a, only_a), (label_b, only_b)] {
        if !list.is_empty() {
            notes.push(format!(
                "{} point(s) only in {label}, not compared: {}",
                list.len(),
                list.join("; ")
            ));
        }
    }
    out.sort_by_key(|x| x.0);
    out.into_iter().map(|(_, p)| p).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn direction_words() {
        assert_eq!(
            direction(Some(100.0), Some(120.0), true),
            (Some(1.2), Direction::Better)
        );
        assert_eq!(
            direction(Some(100.0), Some(80.0), true),
            (Some(0.8), Direction::Worse)
        );
        assert_eq!(
            direction(Some(100.0), Some(80.0), false),
            (Some(0.8), Direction::Better)
        );
        assert_eq!(
            direction(Some(100.0), Some(120.0), false),
            (Some(1.2), Direction::Worse)
        );
        assert_eq!(
            direction(Some(100.0), Some(100.5), false).1,
            Direction::Same
        );
        assert_eq!(
            direction(Some(0.0), Some(1.0), true),
            (None, Direction::NotComparable)
        );
        assert_eq!(
            direction(None, Some(1.0), true),
            (None, Direction::NotComparable)
        );
        assert_eq!(Direction::Better.as_str(), "better");
        assert_eq!(Direction::Worse.as_str(), "worse");
    }

    fn run(c: f64, input: f64, tput: f64, ttft: f64) -> RunSummary {
        let mut r = RunSummary {
            file: PathBuf::from("x.json"),
            max_concurrency: Some(c),
            random_input_len: Some(input),
            random_output_len: Some(10.0),
            random_range_ratio: Some(1.0),
            output_throughput: Some(tput),
            ..Default::default()
        };
        r.ttft.median = Some(ttft);
        r
    }

    #[test]
    fn matches_points_and_notes_the_rest() {
        let a = vec![
            run(1.0, 100.0, 10.0, 50.0),
            run(8.0, 100.0, 60.0, 80.0),
            run(8.0, 100.0, 70.0, 90.0),
            run(64.0, 100.0, 1.0, 1.0),
        ];
        let b = vec![
            run(8.0, 100.0, 84.0, 45.0),
            run(1.0, 100.0, 10.0, 50.0),
            run(8.0, 200.0, 1.0, 1.0),
        ];
        let mut notes = Vec::new();
        let pts = match_points(&a, &b, "FP8", "INT8", &mut notes);
        assert_eq!(pts.len(), 2);
        assert_eq!(pts[0].concurrency, Some(1.0));
        let p8 = &pts[1];
        let tput = &p8.metrics[0];
        assert_eq!((tput.a, tput.b), (Some(70.0), Some(84.0)));
        assert_eq!(tput.direction, Direction::Better);
        let ttft = &p8.metrics[2];
        assert_eq!(ttft.ratio, Some(0.5));
        assert_eq!(ttft.direction, Direction::Better);
        assert_eq!(pts[0].metrics[0].direction, Direction::Same);
        assert!(
            notes
                .iter()
                .any(|n| n.contains("FP8: 1 point(s) measured more than once")),
            "{notes:?}"
        );
        assert!(
            notes
                .iter()
                .any(|n| n.contains("only in FP8") && n.contains("concurrency 64")),
            "{notes:?}"
        );
        assert!(
            notes
                .iter()
                .any(|n| n.contains("only in INT8") && n.contains("in 200")),
            "{notes:?}"
        );
    }
}
