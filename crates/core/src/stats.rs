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
    /// Summarises `data` (NaN values are dropped; the rest is left in an unspecified order). The percentiles
    /// are those of the sorted data (NumPy's linear rule), found by selecting the order statistics they
    /// interpolate between instead of sorting: a run's inter-token list has one value per streamed chunk, and
    /// sorting it cost 50–160 instructions a chunk. The mean and the standard deviation sum the values in their
    /// given order, one after another (NumPy adds pairwise: the last bits of a long list's mean can differ).
    pub fn of(data: &mut Vec<f64>) -> Summary {
        data.retain(|x| !x.is_nan());
        let d = data.as_slice();
        if d.is_empty() {
            return Summary::default();
        }
        let (mean, std) = (mean(d), std_pop(d));
        let count = d.len();
        // Selection compares integers: each value's `total_cmp` key, in the list's own allocation (collecting
        // a vector's own items into a vector of a type of the same size reuses it; no cold new memory).
        let mut keys: Vec<u64> = std::mem::take(data).into_iter().map(order_key).collect();
        let min = keys.iter().min().map(|&k| from_order_key(k));
        let max = keys.iter().max().map(|&k| from_order_key(k));
        let [median, p90, p95, p99, p999] = percentiles(&mut keys, [50.0, 90.0, 95.0, 99.0, 99.9]);
        *data = keys.into_iter().map(from_order_key).collect();
        Summary {
            count,
            mean,
            median: Some(median),
            std,
            min,
            max,
            p90: Some(p90),
            p95: Some(p95),
            p99: Some(p99),
            p999: Some(p999),
        }
    }
}

/// A key whose unsigned order is `f64::total_cmp`'s: negative values with every bit flipped, the others with
/// the sign bit set.
fn order_key(x: f64) -> u64 {
    let b = x.to_bits();
    b ^ (((b as i64 >> 63) as u64) | (1 << 63))
}

fn from_order_key(k: u64) -> f64 {
    f64::from_bits(if k >> 63 == 1 { k ^ (1 << 63) } else { !k })
}

/// Percentiles `qs` (ascending, 0..=100) of the values whose [`order_key`]s are `keys` (non-empty), by
/// NumPy's linear rule, as [`percentile_sorted`] gives them on the sorted values. `keys` is reordered: each
/// needed order statistic is selected in the part above the previous one, so the work shrinks as ranks rise.
fn percentiles<const N: usize>(keys: &mut [u64], qs: [f64; N]) -> [f64; N] {
    debug_assert!(
        qs.windows(2).all(|w| w[0] <= w[1]),
        "percentiles must be asked in order"
    );
    let last = keys.len() - 1;
    // `keys[..from]` holds the `from` smallest; every index selected so far holds its order statistic.
    let mut from = 0;
    let mut at = |keys: &mut [u64], k: usize| -> f64 {
        if k >= from {
            keys[from..].select_nth_unstable(k - from);
            from = k + 1;
        }
        from_order_key(keys[k])
    };
    qs.map(|q| {
        let rank = q.clamp(0.0, 100.0) / 100.0 * last as f64;
        let (lo, hi) = (rank.floor() as usize, rank.ceil() as usize);
        let frac = rank - lo as f64;
        let (a, b) = (at(keys, lo), at(keys, hi));
        a + (b - a) * frac
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// What `Summary::of` gave when it sorted the data first (the reference its selection must equal).
    fn sorted_summary(data: &[f64]) -> Summary {
        let mut d: Vec<f64> = data.iter().copied().filter(|x| !x.is_nan()).collect();
        d.sort_by(f64::total_cmp);
        let p = |q| percentile_sorted(&d, q);
        Summary {
            count: d.len(),
            mean: mean(&d),
            median: p(50.0),
            std: std_pop(&d),
            min: d.first().copied(),
            max: d.last().copied(),
            p90: p(90.0),
            p95: p(95.0),
            p99: p(99.0),
            p999: p(99.9),
        }
    }

    fn assert_same_summary(got: &Summary, want: &Summary) {
        let bits = |s: &Summary| {
            [s.median, s.min, s.max, s.p90, s.p95, s.p99, s.p999].map(|v| v.map(f64::to_bits))
        };
        assert_eq!(got.count, want.count);
        // Order statistics and their interpolation: bit for bit.
        assert_eq!(bits(got), bits(want), "{got:?} vs {want:?}");
        // Sums in another order: equal to rounding.
        let close = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) => {
                a == b || (a.is_nan() && b.is_nan()) || (a - b).abs() <= 1e-9 * a.abs().max(b.abs())
            }
            (a, b) => a == b,
        };
        assert!(close(got.mean, want.mean), "{got:?} vs {want:?}");
        assert!(
            close(got.std, want.std) || want.std.is_some_and(f64::is_nan),
            "{got:?} vs {want:?}"
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Selected order statistics are the sorted data's, bit for bit: ties, signed zeros, NaN dropped,
        /// lists of one to thousands of values with many repeats.
        #[test]
        fn summary_by_selection_is_the_sorted_summary(
            values in prop::collection::vec(
                prop_oneof![
                    (0.0f64..100.0),
                    (0.0f64..3.0).prop_map(|x| x.round()),
                    Just(0.0), Just(-0.0), Just(f64::NAN), Just(-1.5), Just(1e-300),
                    Just(f64::INFINITY), Just(f64::NEG_INFINITY), Just(-f64::MIN_POSITIVE / 4.0),
                ],
                0..3_000,
            ),
            repeat in 1usize..4,
        ) {
            let data: Vec<f64> = values.iter().copied().cycle().take(values.len() * repeat).collect();
            let want = sorted_summary(&data);
            let got = Summary::of(&mut data.clone());
            assert_same_summary(&got, &want);
        }
    }

    #[test]
    fn summary_of_a_run_sized_list_is_the_sorted_summary() {
        // Latencies in milliseconds, as a run gives them: 50,000 values with repeats.
        let mut x = 0x9e37_79b9_u64;
        let data: Vec<f64> = (0..50_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x % 100_000) as f64 / 1_000.0
            })
            .collect();
        let mut kept = data.clone();
        assert_same_summary(&Summary::of(&mut kept), &sorted_summary(&data));
        // The list keeps its values (in another order).
        let mut want = data.clone();
        want.sort_by(f64::total_cmp);
        kept.sort_by(f64::total_cmp);
        assert_eq!(kept, want);
        // Known values: 1..=1000 ms.
        let s = Summary::of(&mut (1..=1000).rev().map(f64::from).collect());
        assert_eq!(
            (s.min, s.max, s.median),
            (Some(1.0), Some(1000.0), Some(500.5))
        );
        assert_eq!((s.p90, s.p99), (Some(900.1), Some(990.01)));
        assert!((s.p999.unwrap() - 999.001).abs() < 1e-9);
    }

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
