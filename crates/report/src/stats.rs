//! The statistics behind compare: McNemar's exact test, the normal-approximation confidence
//! interval of a paired difference, and percentiles for the distribution charts.

/// Two-sided exact McNemar test: the binomial test of `b` vs `c` discordant pairs with
/// p = 1/2, i.e. `min(1, 2 · P(X ≤ min(b, c)))` for X ~ Binomial(b + c, 1/2).
/// With no discordant pairs the p-value is 1.
pub fn mcnemar_exact_p(b: u64, c: u64) -> f64 {
    let n = b + c;
    if n == 0 {
        return 1.0;
    }
    let k = b.min(c);
    // Sum in log space so that large n does not overflow.
    let ln_half_n = -(n as f64) * std::f64::consts::LN_2;
    let ln_fact = ln_factorials(n);
    let mut tail = 0.0;
    for i in 0..=k {
        let ln_choose = ln_fact[n as usize] - ln_fact[i as usize] - ln_fact[(n - i) as usize];
        tail += (ln_choose + ln_half_n).exp();
    }
    (2.0 * tail).min(1.0)
}

fn ln_factorials(n: u64) -> Vec<f64> {
    let mut out = Vec::with_capacity(n as usize + 1);
    let mut acc = 0.0;
    out.push(0.0);
    for i in 1..=n {
        acc += (i as f64).ln();
        out.push(acc);
    }
    out
}

/// The 97.5th percentile of the standard normal distribution.
pub const Z_975: f64 = 1.959_963_984_540_054;

/// Mean of paired differences with its standard error and 95% confidence interval
/// (normal approximation: mean ± 1.96 · s / √n, s the sample standard deviation).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PairedDiff {
    pub n: usize,
    pub mean: f64,
    pub se: f64,
    pub ci_low: f64,
    pub ci_high: f64,
}

/// `None` for fewer than 2 pairs (no spread to estimate).
pub fn paired_diff(diffs: &[f64]) -> Option<PairedDiff> {
    let n = diffs.len();
    if n < 2 {
        return None;
    }
    let nf = n as f64;
    let mean = diffs.iter().sum::<f64>() / nf;
    let var = diffs.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / (nf - 1.0);
    let se = (var / nf).sqrt();
    Some(PairedDiff {
        n,
        mean,
        se,
        ci_low: mean - Z_975 * se,
        ci_high: mean + Z_975 * se,
    })
}

/// Two-sided p-value of a z statistic under the standard normal distribution.
pub fn normal_two_sided_p(z: f64) -> f64 {
    if z.is_nan() {
        return 1.0;
    }
    erfc(z.abs() / std::f64::consts::SQRT_2).min(1.0)
}

/// Complementary error function, relative error below 1.2e-7 everywhere (the Chebyshev
/// fit given in Numerical Recipes, 2nd ed., §6.2).
pub fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let r = t * poly.exp();
    if x >= 0.0 {
        r
    } else {
        2.0 - r
    }
}

/// Percentile with linear interpolation between order statistics (NumPy's default);
/// `sorted` must be ascending. `q` in [0, 100].
pub fn percentile_sorted(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let pos = (q / 100.0).clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    let frac = pos - lo as f64;
    Some(sorted[lo] + (sorted[hi] - sorted[lo]) * frac)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn mcnemar_known_values() {
        // b=10, c=2: 2 * (1 + 12 + 66) / 4096 = 0.03857
        assert!(close(mcnemar_exact_p(10, 2), 0.038_574_2, 1e-6));
        assert!(close(mcnemar_exact_p(2, 10), 0.038_574_2, 1e-6));
        // b=5, c=5: symmetric, p = 1.
        assert_eq!(mcnemar_exact_p(5, 5), 1.0);
        // b=0, c=6: 2 / 64.
        assert!(close(mcnemar_exact_p(0, 6), 0.031_25, 1e-12));
        // b=1, c=0: 2 * 0.5 = 1.
        assert_eq!(mcnemar_exact_p(1, 0), 1.0);
        assert_eq!(mcnemar_exact_p(0, 0), 1.0);
        // Large counts stay finite: b=300, c=200 (exact sum with big integers: 8.940066542e-6).
        let p = mcnemar_exact_p(300, 200);
        assert!((p - 8.940_066_542e-6).abs() < 1e-12, "{p}");
    }

    #[test]
    fn paired_ci_maths() {
        // diffs 1, 0, 0, -1, 1: mean 0.2, s² = (0.64+0.04+0.04+1.44+0.64)/4 = 0.7
        let d = paired_diff(&[1.0, 0.0, 0.0, -1.0, 1.0]).unwrap();
        assert!(close(d.mean, 0.2, 1e-12));
        let se = (0.7f64 / 5.0).sqrt();
        assert!(close(d.se, se, 1e-12));
        assert!(close(d.ci_low, 0.2 - 1.959_964 * se, 1e-6));
        assert!(close(d.ci_high, 0.2 + 1.959_964 * se, 1e-6));
        assert!(paired_diff(&[1.0]).is_none());
    }

    #[test]
    fn normal_p_values() {
        assert!(close(normal_two_sided_p(1.959_964), 0.05, 1e-6));
        assert!(close(normal_two_sided_p(0.0), 1.0, 1e-6));
        assert!(close(normal_two_sided_p(-2.575_829), 0.01, 1e-6));
        assert!(close(erfc(-1.0), 1.842_700_79, 1e-6));
    }

    #[test]
    fn percentiles_interpolate_like_numpy() {
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(percentile_sorted(&v, 50.0), Some(2.5));
        assert!(close(percentile_sorted(&v, 99.0).unwrap(), 3.97, 1e-12));
        assert_eq!(percentile_sorted(&v, 0.0), Some(1.0));
        assert_eq!(percentile_sorted(&[], 50.0), None);
    }
}
