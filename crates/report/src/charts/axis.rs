//! A linear axis whose ticks are exactly the positions we choose (round numbers, or powers of
//! two on a log2 axis), so that labels are never odd values like 37.5.

use std::ops::Range;

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};

pub struct TickedAxis {
    lo: f64,
    hi: f64,
    ticks: Vec<f64>,
}

impl TickedAxis {
    pub fn new(lo: f64, hi: f64, ticks: Vec<f64>) -> Self {
        let hi = if hi > lo { hi } else { lo + 1.0 };
        let ticks = ticks.into_iter().filter(|t| *t >= lo && *t <= hi).collect();
        TickedAxis { lo, hi, ticks }
    }
}

impl Ranged for TickedAxis {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let frac = (value - self.lo) / (self.hi - self.lo);
        let span = f64::from(limit.1 - limit.0);
        let px = (span * frac + 1e-3).floor();
        // Keep far-off values finite for the backends.
        limit.0 + px.clamp(-1e6, 1e6) as i32
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.ticks.clone()
        }
    }

    fn range(&self) -> Range<f64> {
        self.lo..self.hi
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use plotters::coord::ranged1d::BoldPoints;

    #[test]
    fn maps_linearly_and_returns_chosen_ticks() {
        let a = TickedAxis::new(0.0, 10.0, vec![0.0, 5.0, 10.0, 12.0]);
        assert_eq!(a.map(&5.0, (0, 100)), 50);
        assert_eq!(a.map(&0.0, (100, 0)), 100);
        assert_eq!(a.key_points(BoldPoints(10)), vec![0.0, 5.0, 10.0]);
        assert!(a.key_points(10usize).is_empty());
    }
}
