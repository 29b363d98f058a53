//! Scores of a dataset from per-sample verdicts.
//!
//! Scores are fractions in [0, 1] (evalscope's unit). A sample that failed (an HTTP or connection error after
//! retries) or came back empty is **errored**. By default errored samples count as wrong samples with no answer
//! (as evalscope and Qwen2.5-Math score them: 0), so a deployment that fails scores lower, never higher; with
//! `exclude_errors` they leave the denominators instead (an explicit option, shown in the table).
//!
//! For item i with n_i counted samples of which c_i are correct, over the N items with at least one counted sample:
//! - **score**: accuracy for n = 1; avg@n = mean over items of c_i / n_i for n > 1 (the unbiased pass@1);
//! - **stderr**: the sample standard deviation (ddof 1, as evalscope and lm-eval) of the per-item values,
//!   divided by √N: SE = √(Σ (x_i − x̄)² / (N − 1)) / √N, `null` for N < 2. For n = 1 this is √(p(1−p)/(N−1));
//! - **spread**: that standard deviation itself (ddof 1; n > 1);
//! - **pass@k**: mean over items with n_i ≥ k of 1 − C(n_i − c_i, k) / C(n_i, k), computed as the product
//!   1 − ∏_{j = n−c+1}^{n} (1 − k/j) (no large binomials); its standard error is the same formula applied to the
//!   per-item pass@k values (items as the sampling unit, the within-item estimate taken as given);
//! - **maj@n**: an item counts as correct when the most frequent extracted answer among its samples (answers
//!   grouped by grader equivalence; ties go to the answer seen first; samples with no answer do not vote) is
//!   correct; its standard error is the formula above over the per-item 0/1 values.

/// The outcome of one sample.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleResult {
    pub correct: bool,
    pub extracted: Option<String>,
    /// The request failed (after retries) or came back empty: wrong by default, excluded with `exclude_errors`.
    pub error: bool,
    /// finish_reason was `length`.
    pub truncated: bool,
}

/// All samples of one item.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemResult {
    pub id: String,
    pub gold: String,
    pub samples: Vec<SampleResult>,
}

impl ItemResult {
    /// (counted samples, correct samples): errored samples count (as wrong) unless `exclude_errors`.
    pub fn counts(&self, exclude_errors: bool) -> (u64, u64) {
        let counted = |s: &&SampleResult| !(exclude_errors && s.error);
        let valid = self.samples.iter().filter(counted).count() as u64;
        let correct = self
            .samples
            .iter()
            .filter(counted)
            .filter(|s| !s.error && s.correct)
            .count() as u64;
        (valid, correct)
    }
}

/// The scores of one dataset.
#[derive(Debug, Clone, PartialEq)]
pub struct Scores {
    /// Samples per item requested.
    pub n: u32,
    /// Items with at least one counted sample (the denominator of every score).
    pub num: usize,
    /// `None` when no item has a valid sample.
    pub score: Option<f64>,
    pub stderr: Option<f64>,
    /// Sample std (ddof 1) over items of c_i / n_i (n > 1 only).
    pub spread: Option<f64>,
    /// (k, pass@k, its standard error) for k in 1, 2, 4, … ≤ n and k = n (n > 1 only).
    pub pass_at_k: Vec<(u32, f64, Option<f64>)>,
    /// n > 1 only.
    pub maj_at_n: Option<f64>,
    pub maj_at_n_stderr: Option<f64>,
    /// Errored samples were left out of the scores (`exclude_errors`).
    pub errors_excluded: bool,
    /// Samples that did not error.
    pub samples: usize,
    /// Errored samples (failed or empty).
    pub errors: usize,
    /// Valid samples with finish_reason `length`.
    pub truncated: usize,
    /// Valid samples from which no answer could be extracted.
    pub no_answer: usize,
    /// Items whose samples all errored.
    pub errored_items: Vec<String>,
}

/// Unbiased pass@k for one item: 1 − C(n−c, k)/C(n, k); 1 when n − c < k. Requires k ≤ n.
pub fn pass_at_k(n: u64, c: u64, k: u64) -> f64 {
    if k == 0 || n == 0 {
        return 0.0;
    }
    let c = c.min(n);
    if n - c < k {
        return 1.0;
    }
    let mut prod = 1.0f64;
    for j in (n - c + 1)..=n {
        prod *= 1.0 - k as f64 / j as f64;
    }
    1.0 - prod
}

/// The majority answer's verdict among (extracted, correct) pairs: `None` when no sample has an answer.
pub fn majority_correct<'a>(
    samples: impl IntoIterator<Item = (Option<&'a str>, bool)>,
    same: impl Fn(&str, &str) -> bool,
) -> Option<bool> {
    // (representative answer, its verdict, votes); in order of first appearance.
    let mut groups: Vec<(&str, bool, usize)> = Vec::new();
    for (answer, correct) in samples {
        let Some(a) = answer else { continue };
        match groups.iter_mut().find(|g| same(g.0, a)) {
            Some(g) => g.2 += 1,
            None => groups.push((a, correct, 1)),
        }
    }
    let mut best: Option<&(&str, bool, usize)> = None;
    for g in &groups {
        let better = match best {
            None => true,
            Some(b) => g.2 > b.2,
        };
        if better {
            best = Some(g);
        }
    }
    best.map(|g| g.1)
}

/// Mean and sample standard deviation (ddof 1; `None` for fewer than 2 values) of a non-empty slice.
pub fn mean_and_std(xs: &[f64]) -> (f64, Option<f64>) {
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    if xs.len() < 2 {
        return (mean, None);
    }
    let var = xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (n - 1.0);
    (mean, Some(var.max(0.0).sqrt()))
}

/// The standard error of the mean of `xs`: sample std (ddof 1) / √N; `None` for fewer than 2 values.
pub fn stderr_of_mean(xs: &[f64]) -> Option<f64> {
    if xs.is_empty() {
        return None;
    }
    mean_and_std(xs).1.map(|sd| sd / (xs.len() as f64).sqrt())
}

/// The k values reported for n samples: powers of two below n, and n.
pub fn reported_ks(n: u32) -> Vec<u32> {
    let mut ks = Vec::new();
    let mut k = 1;
    while k < n {
        ks.push(k);
        k *= 2;
    }
    ks.push(n.max(1));
    ks
}

/// Scores items (only samples with index < n should be passed). `same` groups answers for maj@n; with
/// `exclude_errors` errored samples leave the denominators instead of counting as wrong.
pub fn score(
    items: &[ItemResult],
    n: u32,
    exclude_errors: bool,
    same: impl Fn(&str, &str) -> bool,
) -> Scores {
    let mut s = Scores {
        n,
        num: 0,
        score: None,
        stderr: None,
        spread: None,
        pass_at_k: Vec::new(),
        maj_at_n: None,
        maj_at_n_stderr: None,
        errors_excluded: exclude_errors,
        samples: 0,
        errors: 0,
        truncated: 0,
        no_answer: 0,
        errored_items: Vec::new(),
    };
    let mut means = Vec::new();
    let mut maj = Vec::new();
    for item in items {
        for smp in &item.samples {
            if smp.error {
                s.errors += 1;
                continue;
            }
            s.samples += 1;
            s.truncated += usize::from(smp.truncated);
            s.no_answer += usize::from(smp.extracted.is_none());
        }
        if !item.samples.is_empty() && item.samples.iter().all(|x| x.error) {
            s.errored_items.push(item.id.clone());
        }
        let (valid, correct) = item.counts(exclude_errors);
        if valid == 0 {
            continue;
        }
        means.push(correct as f64 / valid as f64);
        // Errored samples have no answer: they never vote.
        let votes = item
            .samples
            .iter()
            .filter(|x| !x.error)
            .map(|x| (x.extracted.as_deref(), x.correct));
        maj.push(if majority_correct(votes, &same) == Some(true) {
            1.0
        } else {
            0.0
        });
    }
    s.num = means.len();
    if means.is_empty() {
        return s;
    }
    let (mean, std) = mean_and_std(&means);
    s.score = Some(mean);
    s.stderr = stderr_of_mean(&means);
    if n > 1 {
        s.spread = std;
        s.maj_at_n = Some(maj.iter().sum::<f64>() / maj.len() as f64);
        s.maj_at_n_stderr = stderr_of_mean(&maj);
        for k in reported_ks(n) {
            let vals: Vec<f64> = items
                .iter()
                .map(|i| i.counts(exclude_errors))
                .filter(|&(v, _)| v >= u64::from(k))
                .map(|(v, c)| pass_at_k(v, c, u64::from(k)))
                .collect();
            if !vals.is_empty() {
                let mean = vals.iter().sum::<f64>() / vals.len() as f64;
                s.pass_at_k.push((k, mean, stderr_of_mean(&vals)));
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn smp(correct: bool, ans: Option<&str>) -> SampleResult {
        SampleResult {
            correct,
            extracted: ans.map(String::from),
            error: false,
            truncated: false,
        }
    }

    fn err() -> SampleResult {
        SampleResult {
            correct: false,
            extracted: None,
            error: true,
            truncated: false,
        }
    }

    fn binom(n: u64, k: u64) -> f64 {
        (0..k).fold(1.0, |acc, i| acc * (n - i) as f64 / (i + 1) as f64)
    }

    #[test]
    fn pass_at_k_known_values() {
        assert!((pass_at_k(10, 3, 1) - 0.3).abs() < 1e-12);
        let expect = 1.0 - binom(7, 5) / binom(10, 5); // 1 - 21/252
        assert!((pass_at_k(10, 3, 5) - expect).abs() < 1e-12);
        assert!((pass_at_k(10, 3, 5) - 0.916_666_666_666_666_7).abs() < 1e-12);
        assert_eq!(pass_at_k(10, 3, 8), 1.0); // n - c = 7 < 8
        assert_eq!(pass_at_k(10, 0, 5), 0.0);
        assert_eq!(pass_at_k(10, 10, 1), 1.0);
        // Stable for large n where binomials overflow f64: C(1000, 500) ~ 1e299, C(1000,600) overflows to inf.
        let p = pass_at_k(1000, 1, 600);
        assert!((p - 0.6).abs() < 1e-9, "{p}");
    }

    #[test]
    fn accuracy_and_stderr_for_single_samples() {
        let items: Vec<ItemResult> = (0..10)
            .map(|i| ItemResult {
                id: i.to_string(),
                gold: "1".into(),
                samples: vec![smp(i < 9, Some("1"))],
            })
            .collect();
        let s = score(&items, 1, false, |a, b| a == b);
        assert_eq!(s.num, 10);
        assert!((s.score.unwrap() - 0.9).abs() < 1e-12);
        // numpy: np.std([1]*9 + [0], ddof=1) / np.sqrt(10) = sqrt(0.9 * 0.1 / 9) = 0.1
        let se = (0.9f64 * 0.1 / 9.0).sqrt();
        assert!((se - 0.1).abs() < 1e-15);
        assert!((s.stderr.unwrap() - se).abs() < 1e-12);
        assert_eq!(s.spread, None);
        assert_eq!(s.maj_at_n, None);
        assert!(s.pass_at_k.is_empty());
    }

    #[test]
    fn avg_at_n_pass_at_k_and_spread() {
        // Item a: 3 of 4 correct; item b: 1 of 4 correct.
        let a = ItemResult {
            id: "a".into(),
            gold: "1".into(),
            samples: vec![
                smp(true, Some("1")),
                smp(true, Some("1")),
                smp(false, Some("2")),
                smp(true, Some("1")),
            ],
        };
        let b = ItemResult {
            id: "b".into(),
            gold: "5".into(),
            samples: vec![
                smp(false, Some("4")),
                smp(true, Some("5")),
                smp(false, Some("4")),
                smp(false, None),
            ],
        };
        let s = score(&[a, b], 4, false, |x, y| x == y);
        assert!((s.score.unwrap() - 0.5).abs() < 1e-12); // (0.75 + 0.25) / 2
                                                         // ddof 1 over [0.75, 0.25]: sd = 0.25·√2, SE = sd / √2 = 0.25.
        assert!((s.spread.unwrap() - 0.25 * 2f64.sqrt()).abs() < 1e-12);
        assert!((s.stderr.unwrap() - 0.25).abs() < 1e-12);
        let ks: Vec<u32> = s.pass_at_k.iter().map(|p| p.0).collect();
        assert_eq!(ks, [1, 2, 4]);
        assert!((s.pass_at_k[0].1 - 0.5).abs() < 1e-12);
        // pass@2: a: 1 - C(1,2)/C(4,2) = 1; b: 1 - C(3,2)/C(4,2) = 0.5.
        assert!((s.pass_at_k[1].1 - 0.75).abs() < 1e-12);
        // Per-item pass@2 values [1, 0.5]: SE = std([1, .5], ddof=1) / √2 = 0.25.
        assert!((s.pass_at_k[1].2.unwrap() - 0.25).abs() < 1e-12);
        assert!((s.pass_at_k[2].1 - 1.0).abs() < 1e-12);
        assert_eq!(s.pass_at_k[2].2, Some(0.0));
        // maj@4: a votes "1" (correct); b votes "4" (wrong).
        assert_eq!(s.maj_at_n, Some(0.5));
        // Per-item maj values [1, 0]: SE = std([1, 0], ddof=1) / √2 = 0.5.
        assert!((s.maj_at_n_stderr.unwrap() - 0.5).abs() < 1e-12);
        assert_eq!(s.no_answer, 1);
    }

    #[test]
    fn majority_ties_go_to_first_seen_and_use_equivalence() {
        let votes = [
            (Some("2"), false),
            (Some("3"), true),
            (Some("3"), true),
            (Some("2"), false),
        ];
        assert_eq!(majority_correct(votes, |a, b| a == b), Some(false));
        let votes = [
            (Some("0.5"), true),
            (Some("1/2"), true),
            (Some("7"), false),
            (Some("7"), false),
            (None, false),
        ];
        let same = |a: &str, b: &str| {
            let v = |s: &str| {
                if s == "1/2" {
                    0.5
                } else {
                    s.parse::<f64>().unwrap()
                }
            };
            v(a) == v(b)
        };
        assert_eq!(majority_correct(votes, same), Some(true));
        assert_eq!(majority_correct([(None, false)], |a, b| a == b), None);
    }

    #[test]
    fn errors_count_as_wrong_unless_excluded() {
        let items = vec![
            ItemResult {
                id: "a".into(),
                gold: "1".into(),
                samples: vec![smp(true, Some("1"))],
            },
            ItemResult {
                id: "b".into(),
                gold: "1".into(),
                samples: vec![err()],
            },
            ItemResult {
                id: "c".into(),
                gold: "1".into(),
                samples: vec![SampleResult {
                    correct: false,
                    extracted: None,
                    error: false,
                    truncated: true,
                }],
            },
        ];
        // Default: the failed item is a wrong item.
        let s = score(&items, 1, false, |a, b| a == b);
        assert_eq!(s.num, 3);
        assert!((s.score.unwrap() - 1.0 / 3.0).abs() < 1e-12);
        assert!(!s.errors_excluded);
        // Excluded on request: it leaves the denominator.
        let x = score(&items, 1, true, |a, b| a == b);
        assert_eq!((x.num, x.score, x.errors_excluded), (2, Some(0.5), true));
        assert_eq!(x.errored_items, ["b"]);
        // A deployment whose failures are counted never scores higher than one whose requests all succeed.
        assert!(s.score <= x.score);
        assert_eq!(s.errors, 1);
        assert_eq!(s.truncated, 1);
        assert_eq!(s.no_answer, 1);
        assert_eq!(s.errored_items, ["b"]);
        let none = score(&items[1..2], 1, true, |a, b| a == b);
        assert_eq!(none.score, None);
        assert_eq!(none.num, 0);
        let counted = score(&items[1..2], 1, false, |a, b| a == b);
        assert_eq!(
            (counted.score, counted.num, counted.stderr),
            (Some(0.0), 1, None)
        );
    }

    #[test]
    fn reported_k_values() {
        assert_eq!(reported_ks(1), [1]);
        assert_eq!(reported_ks(8), [1, 2, 4, 8]);
        assert_eq!(reported_ks(10), [1, 2, 4, 8, 10]);
    }
}
