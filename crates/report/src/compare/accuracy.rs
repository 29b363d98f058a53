//! Accuracy side by side: per dataset present in both folders, a paired comparison over the
//! items both answered — score A, score B, B − A in points, the 95% CI of the paired
//! difference (normal approximation over items of b_i − a_i, per-item mean correctness when
//! there are several samples), and a p-value (McNemar's exact test with one sample per item,
//! the normal test of the mean paired difference otherwise).

use crate::error::ReportError;
use crate::eval_files::{read_predictions, EvalSet, ItemScores};
use crate::numfmt::signed;
use crate::stats::{mcnemar_exact_p, normal_two_sided_p, paired_diff};

/// Significance level of the statements.
pub const ALPHA: f64 = 0.05;

#[derive(Debug, Clone, PartialEq)]
pub struct AccuracyComparison {
    /// Display name (the report's `dataset`, else the file-name key).
    pub dataset: String,
    /// Items answered (at least one sample without error) on both sides.
    pub items: usize,
    pub only_a: usize,
    pub only_b: usize,
    pub samples_a: u32,
    pub samples_b: u32,
    /// Scores over the paired items, in percent.
    pub score_a: f64,
    pub score_b: f64,
    /// B − A in percentage points.
    pub diff: f64,
    /// 95% CI of B − A in points; `None` with fewer than 2 paired items.
    pub ci: Option<(f64, f64)>,
    /// "McNemar exact" or "paired z".
    pub test: &'static str,
    pub p: f64,
    /// (A right & B wrong, A wrong & B right), for McNemar.
    pub discordant: Option<(u64, u64)>,
}

impl AccuracyComparison {
    pub fn significant(&self) -> bool {
        self.p < ALPHA
    }

    /// `INT8 − FP8 on MATH-500: −0.4 points, 95% CI [−1.6, +0.8], p=0.62, not significant`.
    pub fn statement(&self, label_a: &str, label_b: &str) -> String {
        let ci = match self.ci {
            Some((lo, hi)) => format!(", 95% CI [{}, {}]", signed(lo, 1), signed(hi, 1)),
            None => String::new(),
        };
        format!(
            "{label_b} − {label_a} on {}: {} points{ci}, {}, {}",
            self.dataset,
            signed(self.diff, 1),
            format_p(self.p),
            if self.significant() {
                "significant"
            } else {
                "not significant"
            }
        )
    }
}

/// `p=0.62`, `p=0.039`, `p=0.0012`, `p<0.0001`.
pub fn format_p(p: f64) -> String {
    if p < 0.0001 {
        "p<0.0001".to_string()
    } else if p >= 0.095 {
        format!("p={p:.2}")
    } else {
        // Two significant digits: decimals = 1 − ⌊log10 p⌋ (0.01 → 3: "0.010").
        let digits = (1.0 - p.log10().floor()).max(0.0) as usize;
        format!("p={p:.digits$}")
    }
}

/// Compares two item-score sets; `None` when no item is answered on both sides.
pub fn compare_items(dataset: &str, a: &ItemScores, b: &ItemScores) -> Option<AccuracyComparison> {
    let mut pairs: Vec<(f64, f64)> = Vec::new();
    let mut discordant = (0u64, 0u64);
    let mut only_a = 0;
    for (id, sa) in &a.items {
        let Some(ma) = sa.mean() else { continue };
        match b.items.get(id).and_then(|sb| sb.mean()) {
            Some(mb) => {
                pairs.push((ma, mb));
                if ma == 1.0 && mb == 0.0 {
                    discordant.0 += 1;
                } else if ma == 0.0 && mb == 1.0 {
                    discordant.1 += 1;
                }
            }
            None => only_a += 1,
        }
    }
    let only_b = b
        .items
        .iter()
        .filter(|(id, sb)| sb.mean().is_some() && a.items.get(*id).and_then(|s| s.mean()).is_none())
        .count();
    if pairs.is_empty() {
        return None;
    }
    let n = pairs.len() as f64;
    let score_a = pairs.iter().map(|p| p.0).sum::<f64>() / n * 100.0;
    let score_b = pairs.iter().map(|p| p.1).sum::<f64>() / n * 100.0;
    let diffs: Vec<f64> = pairs.iter().map(|(x, y)| (y - x) * 100.0).collect();
    let pd = paired_diff(&diffs);
    let single = a.max_samples <= 1 && b.max_samples <= 1;
    let (test, p, disc) = if single {
        (
            "McNemar exact",
            mcnemar_exact_p(discordant.0, discordant.1),
            Some(discordant),
        )
    } else {
        let p = match pd {
            Some(d) if d.se > 0.0 => normal_two_sided_p(d.mean / d.se),
            Some(d) if d.mean != 0.0 => 0.0,
            _ => 1.0,
        };
        ("paired z", p, None)
    };
    Some(AccuracyComparison {
        dataset: dataset.to_string(),
        items: pairs.len(),
        only_a,
        only_b,
        samples_a: a.max_samples,
        samples_b: b.max_samples,
        score_a,
        score_b,
        diff: score_b - score_a,
        ci: pd.map(|d| (d.ci_low, d.ci_high)),
        test,
        p,
        discordant: disc,
    })
}

/// Compares every dataset (by file-name key) that has predictions in both A and B.
pub fn compare_evals(
    a: &[EvalSet],
    b: &[EvalSet],
    label_a: &str,
    label_b: &str,
    notes: &mut Vec<String>,
) -> Result<Vec<AccuracyComparison>, ReportError> {
    let mut out = Vec::new();
    for ea in a {
        let Some(eb) = b.iter().find(|e| e.key == ea.key) else {
            notes.push(format!(
                "dataset {} only in {label_a}; not compared",
                ea.name()
            ));
            continue;
        };
        let (Some(pa), Some(pb)) = (&ea.predictions, &eb.predictions) else {
            notes.push(format!(
                "dataset {}: predictions file ({}_predictions.jsonl) missing on one side; the paired test needs both",
                ea.name(),
                ea.key
            ));
            continue;
        };
        let sa = read_predictions(pa, notes)?;
        let sb = read_predictions(pb, notes)?;
        match compare_items(&ea.name(), &sa, &sb) {
            Some(c) => {
                if c.only_a + c.only_b > 0 {
                    notes.push(format!(
                        "dataset {}: {} item(s) only in {label_a}, {} only in {label_b}; compared over the {} answered in both",
                        c.dataset, c.only_a, c.only_b, c.items
                    ));
                }
                out.push(c);
            }
            None => notes.push(format!(
                "dataset {}: no item answered in both {label_a} and {label_b}",
                ea.name()
            )),
        }
    }
    for eb in b {
        if !a.iter().any(|e| e.key == eb.key) {
            notes.push(format!(
                "dataset {} only in {label_b}; not compared",
                eb.name()
            ));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval_files::ItemScore;

    fn scores(items: &[(u32, u32)]) -> ItemScores {
        let mut s = ItemScores::default();
        for (i, &(correct, valid)) in items.iter().enumerate() {
            s.items
                .insert(format!("q{i}"), ItemScore { correct, valid });
        }
        s.max_samples = items.iter().map(|x| x.1).max().unwrap_or(0);
        s
    }

    #[test]
    fn single_sample_uses_mcnemar() {
        // 10 items A right/B wrong, 2 A wrong/B right, 8 both right.
        let mut a = vec![(1, 1); 10];
        a.extend(vec![(0, 1); 2]);
        a.extend(vec![(1, 1); 8]);
        let mut b = vec![(0, 1); 10];
        b.extend(vec![(1, 1); 2]);
        b.extend(vec![(1, 1); 8]);
        let c = compare_items("MATH-500", &scores(&a), &scores(&b)).unwrap();
        assert_eq!(c.items, 20);
        assert_eq!(c.discordant, Some((10, 2)));
        assert_eq!(c.test, "McNemar exact");
        assert!((c.p - 0.038_574_2).abs() < 1e-6);
        assert!((c.score_a - 90.0).abs() < 1e-9);
        assert!((c.score_b - 50.0).abs() < 1e-9);
        assert!((c.diff + 40.0).abs() < 1e-9);
        let (lo, hi) = c.ci.unwrap();
        assert!(lo < c.diff && c.diff < hi);
        assert!(c.significant());
        assert_eq!(
            c.statement("FP8", "INT8"),
            format!(
                "INT8 − FP8 on MATH-500: −40.0 points, 95% CI [{}, {}], p=0.039, significant",
                signed(lo, 1),
                signed(hi, 1)
            )
        );
    }

    #[test]
    fn multi_sample_uses_paired_means() {
        // Item means A: 1, 0.5, 0.5, 0; B: 1, 1, 0.5, 0.5 → diffs 0, 50, 0, 50 points.
        let a = scores(&[(2, 2), (1, 2), (1, 2), (0, 2)]);
        let b = scores(&[(2, 2), (2, 2), (1, 2), (1, 2)]);
        let c = compare_items("GSM8K", &a, &b).unwrap();
        assert_eq!(c.test, "paired z");
        assert!((c.diff - 25.0).abs() < 1e-9);
        // s = sqrt(((25)^2*4)/3) = 28.8675; se = 14.4338
        let se = (625.0f64 * 4.0 / 3.0).sqrt() / 2.0;
        let (lo, hi) = c.ci.unwrap();
        assert!((lo - (25.0 - 1.959_964 * se)).abs() < 1e-4);
        assert!((hi - (25.0 + 1.959_964 * se)).abs() < 1e-4);
        assert!((c.p - normal_two_sided_p(25.0 / se)).abs() < 1e-12);
        assert!(!c.significant());
    }

    #[test]
    fn items_missing_or_errored_on_one_side_are_not_paired() {
        let a = scores(&[(1, 1), (0, 1), (1, 1)]);
        let mut b = scores(&[(1, 1), (1, 1)]);
        b.items.insert(
            "q2".into(),
            ItemScore {
                correct: 0,
                valid: 0,
            },
        );
        let c = compare_items("x", &a, &b).unwrap();
        assert_eq!((c.items, c.only_a, c.only_b), (2, 1, 0));
        assert_eq!(c.discordant, Some((0, 1)));
        assert_eq!(c.p, 1.0);
    }

    #[test]
    fn p_formatting() {
        assert_eq!(format_p(0.6234), "p=0.62");
        assert_eq!(format_p(0.038_574), "p=0.039");
        assert_eq!(format_p(0.001_234), "p=0.0012");
        assert_eq!(format_p(0.000_01), "p<0.0001");
        assert_eq!(format_p(1.0), "p=1.00");
        assert_eq!(format_p(0.01), "p=0.010");
        assert_eq!(format_p(0.001), "p=0.0010");
        assert_eq!(format_p(0.05), "p=0.050");
    }
}
