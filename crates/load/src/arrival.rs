//! When requests are due (from the start of the run), as SGLang/vLLM define it: with `request_rate` = ∞ all
//! are due at once (closed loop, limited by `max_concurrency`); otherwise gaps are drawn from a gamma
//! distribution with shape `burstiness` and mean 1/rate (burstiness 1 = Poisson process).

use crate::LoadError;
use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_distr::{Distribution, Gamma};

/// Offsets in seconds from the run's start at which each of `n` requests is due.
pub fn schedule(n: usize, rate: f64, burstiness: f64, seed: u64) -> Result<Vec<f64>, LoadError> {
    if rate.is_nan() || rate <= 0.0 {
        return Err(LoadError::Config(format!(
            "--request-rate must be > 0 (or inf), got {rate}"
        )));
    }
    if rate.is_infinite() {
        return Ok(vec![0.0; n]);
    }
    if burstiness.is_nan() || burstiness <= 0.0 {
        return Err(LoadError::Config(format!(
            "--burstiness must be > 0, got {burstiness}"
        )));
    }
    let gamma = Gamma::new(burstiness, 1.0 / (rate * burstiness))
        .map_err(|e| LoadError::Config(format!("bad arrival distribution: {e}")))?;
    let mut rng = StdRng::seed_from_u64(seed ^ 0x5eed_a771_0000_0000);
    let mut t = 0.0;
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        // The first request goes at once, like the reference tools.
        if i > 0 {
            t += gamma.sample(&mut rng);
        }
        out.push(t);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn infinite_rate_is_all_at_once() {
        assert_eq!(schedule(3, f64::INFINITY, 1.0, 1).unwrap(), vec![0.0; 3]);
    }

    #[test]
    fn poisson_mean_gap_matches_rate() {
        let s = schedule(20001, 50.0, 1.0, 7).unwrap();
        let mean_gap = s[20000] / 20000.0;
        assert!((mean_gap - 0.02).abs() < 0.0006, "mean gap {mean_gap}");
        assert!(s.windows(2).all(|w| w[1] >= w[0]));
        assert_eq!(
            schedule(5, 50.0, 1.0, 7).unwrap(),
            schedule(5, 50.0, 1.0, 7).unwrap()
        );
    }

    #[test]
    fn burstiness_changes_variance_not_mean() {
        let cv = |b: f64| {
            let s = schedule(20001, 10.0, b, 3).unwrap();
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
        assert!(schedule(1, 0.0, 1.0, 0).is_err());
        assert!(schedule(1, 1.0, 0.0, 0).is_err());
    }
}
