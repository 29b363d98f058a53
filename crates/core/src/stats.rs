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

/// Sorts `data` in `f64::total_cmp` order. Long lists (a run's inter-token latencies: one per streamed chunk)
/// take a radix sort of the values' bits, several times faster than comparing; the order is the same, and
/// values equal under `total_cmp` are the same bits, so the result is identical.
pub fn sort_total(data: &mut [f64]) {
    const RADIX_FROM: usize = 2_048;
    if data.len() < RADIX_FROM {
        data.sort_unstable_by(|a, b| a.total_cmp(b));
        return;
    }
    // `total_cmp`'s key: negative values with every bit flipped, the others with the sign bit set.
    let key = |x: f64| {
        let b = x.to_bits();
        b ^ (((b as i64 >> 63) as u64) | (1 << 63))
    };
    let unkey = |k: u64| {
        let b = if k >> 63 == 1 { k ^ (1 << 63) } else { !k };
        f64::from_bits(b)
    };
    let mut keys: Vec<u64> = data.iter().map(|&x| key(x)).collect();
    let mut counts = [[0usize; 256]; 8];
    for &k in &keys {
        for (byte, c) in counts.iter_mut().enumerate() {
            c[((k >> (8 * byte)) & 0xff) as usize] += 1;
        }
    }
    let mut spare = vec![0u64; keys.len()];
    for (byte, c) in counts.iter().enumerate() {
        // A byte every key shares orders nothing.
        if c.contains(&keys.len()) {
            continue;
        }
        let mut at = [0usize; 256];
        let mut sum = 0;
        for (slot, &n) in at.iter_mut().zip(c) {
            *slot = sum;
            sum += n;
        }
        for &k in &keys {
            let d = ((k >> (8 * byte)) & 0xff) as usize;
            spare[at[d]] = k;
            at[d] += 1;
        }
        std::mem::swap(&mut keys, &mut spare);
    }
    for (x, &k) in data.iter_mut().zip(&keys) {
        *x = unkey(k);
    }
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
        sort_total(data);
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
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        /// The radix sort gives `total_cmp`'s order bit for bit: signed zeros, infinities, subnormals, values
        /// sharing high bytes, lists on both sides of the length where it takes over.
        #[test]
        fn sort_total_is_total_cmp_order(
            values in prop::collection::vec(
                prop_oneof![
                    any::<f64>().prop_filter("not NaN", |x| !x.is_nan()),
                    (0.0f64..100.0),
                    Just(0.0), Just(-0.0), Just(f64::INFINITY), Just(f64::NEG_INFINITY),
                    Just(f64::MIN_POSITIVE / 4.0), Just(-1.5),
                ],
                0..3_000,
            ),
            repeat in 1usize..4,
        ) {
            let data: Vec<f64> = values.iter().copied().cycle().take(values.len() * repeat).collect();
            let mut want = data.clone();
            want.sort_by(|a, b| a.total_cmp(b));
            let mut got = data;
            sort_total(&mut got);
            let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            prop_assert_eq!(bits(&got), bits(&want));
        }
    }

    #[test]
    fn sort_total_takes_the_radix_path_on_long_lists() {
        // Latencies in milliseconds, as a run gives them: the radix path, same result as comparing.
        let mut x = 0x9e37_79b9_u64;
        let mut data: Vec<f64> = (0..50_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x % 1_000_000) as f64 / 1_000.0 - if x.is_multiple_of(97) { 5.0 } else { 0.0 }
            })
            .collect();
        let mut want = data.clone();
        want.sort_by(|a, b| a.total_cmp(b));
        sort_total(&mut data);
        assert_eq!(data, want);
        assert_eq!(Summary::of(&mut data.clone()).min, Some(want[0]));
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
