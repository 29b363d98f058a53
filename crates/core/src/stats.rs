//! Statistics with the reference tools' conventions: percentiles by linear interpolation between order
//! statistics (NumPy's default, `method="linear"`), population standard deviation (`np.std`).

use serde::Serialize;

/// The `q`-th percentile (0..=100) of sorted data, NumPy's linear rule. `None` for no data.
pub fn percentile_sorted(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let q = q.clamp(0.0, 100.0);
    let rank = q / 100.0 * (sorted.len() - 1) as f64;
    let lo = rank.floor() as usize;
    let hi = rank.ceil() as usize;
    let frac = rank - lo as f64;
    Some(sorted[lo] + (sorted[hi] - sorted[lo]) * frac)
}

pub fn mean(data: &[f64]) -> Option<f64> {
    if data.is_empty() {
        None
    } else {
        Some(data.iter().sum::<f64>() / data.len() as f64)
    }
}

/// Population standard deviation (ddof = 0).
pub fn std_pop(data: &[f64]) -> Option<f64> {
    let m = mean(data)?;
    Some((data.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / data.len() as f64).sqrt())
}

/// The distribution summary written for each latency metric.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Summary {
    pub count: usize,
    pub mean: Option<f64>,
    pub median: Option<f64>,
    pub std: Option<f64>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub p90: Option<f64>,
    pub p95: Option<f64>,
    pub p99: Option<f64>,
    pub p999: Option<f64>,
}

impl Summary {
    /// Summarises `data` (sorted in place; NaN values are dropped first).
    pub fn of(data: &mut Vec<f64>) -> Summary {
        data.retain(|x| !x.is_nan());
        // Unstable is enough: values equal under `total_cmp` are the same bits.
        data.sort_unstable_by(|a, b| a.total_cmp(b));
        let d = data.as_slice();
        Summary {
            count: d.len(),
            mean: mean(d),
            median: percentile_sorted(d, 50.0),
            std: std_pop(d),
            min: d.first().copied(),
            max: d.last().copied(),
            p90: percentile_sorted(d, 90.0),
            p95: percentile_sorted(d, 95.0),
            p99: percentile_sorted(d, 99.0),
            p999: percentile_sorted(d, 99.9),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_match_numpy_linear() {
        // np.percentile([1,2,3,4,10], [50, 90, 99]) -> [3.0, 7.6, 9.76]
        let d = [1.0, 2.0, 3.0, 4.0, 10.0];
        assert_eq!(percentile_sorted(&d, 50.0), Some(3.0));
        assert!((percentile_sorted(&d, 90.0).unwrap() - 7.6).abs() < 1e-12);
        assert!((percentile_sorted(&d, 99.0).unwrap() - 9.76).abs() < 1e-12);
        // np.median([1,2,3,4]) -> 2.5
        assert_eq!(percentile_sorted(&[1.0, 2.0, 3.0, 4.0], 50.0), Some(2.5));
        assert_eq!(percentile_sorted(&[], 50.0), None);
        assert_eq!(percentile_sorted(&[7.0], 99.0), Some(7.0));
    }

    #[test]
    fn population_std() {
        // np.std([2,4,4,4,5,5,7,9]) -> 2.0
        assert_eq!(
            std_pop(&[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]),
            Some(2.0)
        );
    }

    #[test]
    fn summary_sorts_and_drops_nan() {
        let mut v = vec![3.0, f64::NAN, 1.0, 2.0];
        let s = Summary::of(&mut v);
        assert_eq!(s.count, 3);
        assert_eq!(s.median, Some(2.0));
        assert_eq!(s.min, Some(1.0));
        assert_eq!(s.max, Some(3.0));
    }
}
