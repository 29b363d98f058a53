//! When requests are due (from the start of the run), as SGLang/vLLM define it: with `request_rate` = ∞ all
//! are due at once (closed loop, limited by `max_concurrency`); otherwise the gaps come from NumPy's legacy
//! global generator, continuing its stream after the workload's draws, as the reference tools draw them:
//! burstiness 1 → `np.random.exponential(1 / rate)` (sglang.bench_serving 0.5.9, bit for bit, so the same
//! `--seed` gives sglang's send offsets); other burstiness → `np.random.gamma(shape=burstiness,
//! scale=1 / (rate · burstiness))` (vLLM's rule; mean gap 1/rate either way). The first request goes at once
//! and each gap is drawn after the request before it, as in both tools.

use crate::LoadError;
use servebench_core::pyrandom::NumpyLegacy;

/// Offsets in seconds from the run's start at which each of `n` requests is due; gaps drawn from `np` (the
/// generator as the workload left it).
pub fn schedule(
    n: usize,
    rate: f64,
    burstiness: f64,
    np: &mut NumpyLegacy,
) -> Result<Vec<f64>, LoadError> {
    if rate.is_nan() || rate <= 0.0 {
        return Err(LoadError::Config(format!(
            "--request-rate must be > 0 (or inf), got {rate}"
        )));
    }
    if rate.is_infinite() {
        return Ok(vec![0.0; n]);
    }
    if !(burstiness.is_finite() && burstiness > 0.0) {
        return Err(LoadError::Config(format!(
            "--burstiness must be a finite number > 0, got {burstiness}"
        )));
    }
    let mut t = 0.0;
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        if i > 0 {
            t += if burstiness == 1.0 {
                np.exponential(1.0 / rate)
            } else {
                np.gamma(burstiness, 1.0 / (rate * burstiness))
            };
        }
        out.push(t);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sched(n: usize, rate: f64, b: f64, seed: u32) -> Vec<f64> {
        schedule(n, rate, b, &mut NumpyLegacy::seed(seed)).unwrap()
    }

    #[test]
    fn infinite_rate_is_all_at_once() {
        assert_eq!(sched(3, f64::INFINITY, 1.0, 1), vec![0.0; 3]);
    }

    #[test]
    fn sglang_offsets_for_seed_1() {
        // sglang 0.5.9, --request-rate 4 --seed 1, a workload that drew nothing from NumPy:
        //   np.random.seed(1); t = 0; [t := t + np.random.exponential(1.0 / 4) for _ in range(3)]
        // (NumPy 2.4.6) → 0.13490145931479636, 0.4534327725681224, 0.4534613679077832
        let s = sched(4, 4.0, 1.0, 1);
        assert_eq!(s[0], 0.0);
        assert_eq!(s[1], 0.13490145931479636);
        assert_eq!(s[2], 0.13490145931479636 + 0.31853131325332606);
        assert_eq!(s[2], 0.4534327725681224);
        assert_eq!(s[3], 0.4534613679077832);
    }

    #[test]
    fn poisson_mean_gap_matches_rate() {
        let s = sched(20001, 50.0, 1.0, 7);
        let mean_gap = s[20000] / 20000.0;
        assert!((mean_gap - 0.02).abs() < 0.0006, "mean gap {mean_gap}");
        assert!(s.windows(2).all(|w| w[1] >= w[0]));
        assert_eq!(sched(5, 50.0, 1.0, 7), sched(5, 50.0, 1.0, 7));
    }

    #[test]
    fn burstiness_changes_variance_not_mean() {
        let cv = |b: f64| {
            let s = sched(20001, 10.0, b, 3);
            let gaps: Vec<f64> = s.windows(2).map(|w| w[1] - w[0]).collect();
            let m = gaps.iter().sum::<f64>() / gaps.len() as f64;
            let var = gaps.iter().map(|g| (g - m).powi(2)).sum::<f64>() / gaps.len() as f64;
            (m, var.sqrt() / m)
        };
        let (m1, cv1) = cv(1.0);
        let (m4, cv4) = cv(0.25);
        assert!((m1 - 0.1).abs() < 0.005 && (m4 - 0.1).abs() < 0.01);
        assert!((cv1 - 1.0).abs() < 0.05, "{cv1}");
        assert!((cv4 - 2.0).abs() < 0.15, "{cv4}"); // cv = 1/sqrt(shape)
    }

    #[test]
    fn bad_rates_are_rejected() {
        let np = &mut NumpyLegacy::seed(0);
        assert!(schedule(1, 0.0, 1.0, np).is_err());
        assert!(schedule(1, 1.0, 0.0, np).is_err());
        assert!(schedule(1, 1.0, f64::INFINITY, np).is_err());
    }
}
