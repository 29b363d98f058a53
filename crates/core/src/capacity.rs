//! Capacity under an SLO: the highest load (closed-loop concurrency or open-loop request rate) whose
//! runs meet the SLO, found by bracketing (doubling) then bisecting, instead of running a whole grid.
//!
//! This module is the search alone, with no I/O: [`CapacitySearch::next_load`] proposes the next load
//! to run, the caller runs it and hands back an [`Observation`] with [`CapacitySearch::record`], until
//! `next_load` returns `None`; [`CapacitySearch::finish`] then states the capacity and why the search
//! stopped. A decision that is within noise (the attainment's 95% Wilson interval contains the
//! target) at an end of the final bracket is measured again, up to `max_repeats` times, and decided
//! on the pooled counts (loads passed on the way up are not repeated: a higher load met the SLO).
//! Bracketing stops early when throughput stops growing (the server is saturated: more load only
//! queues) or when the caller saw queueing in the server's own metrics.

use serde::{Deserialize, Serialize};

/// How the search proceeds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SearchConfig {
    /// The first load tried (e.g. concurrency 1).
    pub start: f64,
    /// The largest load ever tried.
    pub max: f64,
    /// Loads are whole numbers (concurrency) rather than rates.
    pub integer: bool,
    /// Bracketing multiplies the load by this factor (> 1).
    pub growth: f64,
    /// Bisection stops when the bracket is narrower than this share of its lower end (integer loads:
    /// also when it is one apart).
    pub resolution: f64,
    /// The SLO's attainment target (share of good requests).
    pub target: f64,
    /// Extra runs of a load whose decision is within noise.
    pub max_repeats: u32,
    /// Bracketing stops when a doubling raised throughput by less than this share.
    pub min_gain: f64,
}

impl Default for SearchConfig {
    fn default() -> Self {
        SearchConfig {
            start: 1.0,
            max: 1024.0,
            integer: true,
            growth: 2.0,
            resolution: 0.1,
            target: 0.99,
            max_repeats: 1,
            min_gain: 0.05,
        }
    }
}

/// Why a search configuration was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SearchError {
    #[error("capacity search: {0}")]
    Invalid(String),
}

impl SearchConfig {
    pub fn validate(&self) -> Result<(), SearchError> {
        let bad = |m: &str| Err(SearchError::Invalid(m.to_string()));
        let finite = [
            self.start,
            self.max,
            self.growth,
            self.resolution,
            self.target,
            self.min_gain,
        ];
        if finite.iter().any(|v| !v.is_finite()) {
            return bad("every setting must be a finite number");
        }
        if self.start <= 0.0 || self.max < self.start {
            return bad("the start load must be above 0 and not above the maximum load");
        }
        if self.integer && (self.start.fract() != 0.0 || self.max.fract() != 0.0) {
            return bad("concurrency bounds must be whole numbers");
        }
        if self.growth <= 1.0 {
            return bad("the growth factor must be above 1 (2 doubles the load)");
        }
        if self.resolution <= 0.0 || self.resolution >= 1.0 {
            return bad("the resolution must be in (0, 1), e.g. 0.1 for 10%");
        }
        if self.target <= 0.0 || self.target > 1.0 {
            return bad("the attainment target must be in (0, 1]");
        }
        if self.min_gain < 0.0 {
            return bad("the minimum throughput gain must not be negative");
        }
        Ok(())
    }
}

/// One run at one load.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    pub load: f64,
    /// Requests of the timed run, failed ones included.
    pub requests: u64,
    /// Requests that met the SLO.
    pub good: u64,
    /// Output tokens (or requests) per second: the saturation rule compares it between loads.
    pub throughput: f64,
    /// The server's own metrics showed requests queueing (e.g. `sglang:num_queue_reqs` > 0).
    pub queued: bool,
    /// Accelerator-seconds the run used (duration × GPUs), for the cost of the search.
    pub gpu_seconds: f64,
}

/// The decision at one load, from every run at that load pooled.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PointDecision {
    pub load: f64,
    pub runs: u32,
    pub requests: u64,
    pub good: u64,
    pub attainment: f64,
    /// 95% Wilson interval of the attainment.
    pub low: f64,
    pub high: f64,
    pub meets: bool,
    /// The target was inside the interval after every allowed repeat.
    pub within_noise: bool,
}

/// Why the search stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// The bracket between a passing and a failing load is as narrow as the resolution.
    Converged,
    /// Throughput stopped growing (or the server queued) while the SLO still held.
    Saturated,
    /// The largest load allowed still met the SLO.
    MaxReached,
    /// Even the first load failed the SLO.
    FailsAtStart,
}

/// The answer: the highest load that met the SLO and how sure that is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Capacity {
    /// The highest load that met the SLO (`None` when the first load failed).
    pub capacity: Option<f64>,
    /// The lowest load that failed it, above `capacity` (`None` if none failed).
    pub first_failing: Option<f64>,
    pub stopped: StopReason,
    /// Every load decided, in the order first measured.
    pub points: Vec<PointDecision>,
    pub runs: u32,
    pub gpu_seconds: f64,
}

/// The search state.
#[derive(Debug, Clone)]
pub struct CapacitySearch {
    cfg: SearchConfig,
    runs: Vec<Observation>,
    pass: Option<f64>,
    fail: Option<f64>,
    stopped: Option<StopReason>,
}

impl CapacitySearch {
    pub fn new(cfg: SearchConfig) -> Result<Self, SearchError> {
        cfg.validate()?;
        Ok(CapacitySearch {
            cfg,
            runs: Vec::new(),
            pass: None,
            fail: None,
            stopped: None,
        })
    }

    /// The load to run next, or `None` when the search is over.
    ///
    /// Loads are decided on their first run while the search moves (assuming the SLO holds at every
    /// load below one that meets it); a decision within noise is repeated only where it matters: at
    /// the two ends of the final bracket, before the search stops. A repeat that flips a decision
    /// moves the bracket and the search goes on.
    pub fn next_load(&mut self) -> Option<f64> {
        if self.stopped.is_some() {
            return None;
        }
        if self.runs.is_empty() {
            return Some(self.cfg.start);
        }
        let (pass, fail) = self.bracket();
        self.pass = pass;
        self.fail = fail;
        match (pass, fail) {
            (None, Some(f)) => self.end(&[f], StopReason::FailsAtStart),
            (Some(p), None) => self.grow(p),
            (Some(p), Some(f)) => self.bisect(p, f),
            (None, None) => Some(self.cfg.start),
        }
    }

    /// The lowest failing load, and the highest meeting load below it.
    fn bracket(&self) -> (Option<f64>, Option<f64>) {
        let mut loads: Vec<f64> = self.runs.iter().map(|o| o.load).collect();
        loads.sort_by(f64::total_cmp);
        loads.dedup();
        let decided: Vec<PointDecision> = loads.iter().map(|&l| self.decide(l)).collect();
        let fail = decided.iter().find(|d| !d.meets).map(|d| d.load);
        let pass = decided
            .iter()
            .filter(|d| d.meets && fail.is_none_or(|f| d.load < f))
            .map(|d| d.load)
            .next_back();
        (pass, fail)
    }

    /// Before stopping for `why`: repeat a bracket end whose decision is within noise (up to
    /// `max_repeats` extra runs each).
    fn end(&mut self, ends: &[f64], why: StopReason) -> Option<f64> {
        for &l in ends {
            let d = self.decide(l);
            if d.within_noise && d.runs <= self.cfg.max_repeats {
                return Some(l);
            }
        }
        self.stop(why)
    }

    fn grow(&mut self, pass: f64) -> Option<f64> {
        if pass >= self.cfg.max {
            return self.end(&[pass], StopReason::MaxReached);
        }
        if self.saturated(pass) {
            return self.end(&[pass], StopReason::Saturated);
        }
        let next = self.round(pass * self.cfg.growth).min(self.cfg.max);
        Some(if next <= pass { self.cfg.max } else { next })
    }

    fn bisect(&mut self, pass: f64, fail: f64) -> Option<f64> {
        let narrow =
            fail - pass <= self.cfg.resolution * pass || (self.cfg.integer && fail - pass <= 1.0);
        if narrow {
            return self.end(&[pass, fail], StopReason::Converged);
        }
        let mid = self.round((pass + fail) / 2.0);
        if mid <= pass || mid >= fail {
            return self.end(&[pass, fail], StopReason::Converged);
        }
        Some(mid)
    }

    fn stop(&mut self, why: StopReason) -> Option<f64> {
        self.stopped = Some(why);
        None
    }

    fn round(&self, v: f64) -> f64 {
        if self.cfg.integer {
            v.round().max(1.0)
        } else {
            v
        }
    }

    /// Throughput at `load` gained less than `min_gain` over the load below it, or the server queued.
    fn saturated(&self, load: f64) -> bool {
        let at = |l: f64| self.runs.iter().filter(move |o| o.load == l);
        if at(load).any(|o| o.queued) {
            return true;
        }
        let below = self
            .runs
            .iter()
            .map(|o| o.load)
            .filter(|&l| l < load)
            .fold(None, |m: Option<f64>, l| Some(m.map_or(l, |m| m.max(l))));
        let Some(below) = below else { return false };
        let mean = |l: f64| {
            let v: Vec<f64> = at(l).map(|o| o.throughput).collect();
            v.iter().sum::<f64>() / v.len().max(1) as f64
        };
        let (lo, hi) = (mean(below), mean(load));
        lo > 0.0 && hi < lo * (1.0 + self.cfg.min_gain)
    }

    /// Hands back the result of running the load `next_load` proposed.
    pub fn record(&mut self, o: Observation) {
        self.runs.push(o);
    }

    /// Every run at `load` pooled into one decision.
    pub fn decide(&self, load: f64) -> PointDecision {
        let (mut runs, mut requests, mut good) = (0u32, 0u64, 0u64);
        for o in self.runs.iter().filter(|o| o.load == load) {
            runs += 1;
            requests += o.requests;
            good += o.good;
        }
        let attainment = if requests == 0 {
            0.0
        } else {
            good as f64 / requests as f64
        };
        let (low, high) = wilson(good, requests);
        PointDecision {
            load,
            runs,
            requests,
            good,
            attainment,
            low,
            high,
            meets: requests > 0 && attainment >= self.cfg.target,
            within_noise: requests > 0 && low < self.cfg.target && self.cfg.target < high,
        }
    }

    /// The result (call when `next_load` returned `None`; earlier, it reports the search so far).
    pub fn finish(&self) -> Capacity {
        let mut loads: Vec<f64> = Vec::new();
        for o in &self.runs {
            if !loads.contains(&o.load) {
                loads.push(o.load);
            }
        }
        let (pass, fail) = self.bracket();
        Capacity {
            capacity: pass,
            first_failing: fail,
            stopped: self.stopped.unwrap_or(StopReason::Converged),
            points: loads.into_iter().map(|l| self.decide(l)).collect(),
            runs: self.runs.len() as u32,
            gpu_seconds: self.runs.iter().map(|o| o.gpu_seconds).sum(),
        }
    }
}

/// The 95% Wilson score interval of `good` successes in `n` trials.
pub fn wilson(good: u64, n: u64) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    let z = 1.959_963_984_540_054_f64;
    let (n, p) = (n as f64, good as f64 / n as f64);
    let denom = 1.0 + z * z / n;
    let centre = (p + z * z / (2.0 * n)) / denom;
    let half = z * ((p * (1.0 - p) + z * z / (4.0 * n)) / n).sqrt() / denom;
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server whose SLO holds up to `knee` and whose throughput grows up to `sat`.
    fn run(search: &mut CapacitySearch, knee: f64, sat: f64, requests: u64) -> Capacity {
        let mut guard = 0;
        while let Some(load) = search.next_load() {
            guard += 1;
            assert!(guard < 100, "the search must end");
            let good = if load <= knee { requests } else { requests / 2 };
            search.record(Observation {
                load,
                requests,
                good,
                throughput: load.min(sat) * 10.0,
                queued: false,
                gpu_seconds: 60.0,
            });
        }
        search.finish()
    }

    #[test]
    fn finds_the_knee_by_bracketing_then_bisecting() {
        let mut s = CapacitySearch::new(SearchConfig::default()).unwrap();
        let c = run(&mut s, 40.0, 1e9, 500);
        // Bisection stops once the bracket is within 10% of its lower end: (40, 44].
        assert_eq!(c.capacity, Some(40.0));
        assert_eq!(c.first_failing, Some(44.0));
        assert_eq!(c.stopped, StopReason::Converged);
        let loads: Vec<f64> = c.points.iter().map(|p| p.load).collect();
        assert_eq!(
            loads,
            [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 48.0, 40.0, 44.0]
        );
        let fine = SearchConfig {
            resolution: 0.01,
            ..SearchConfig::default()
        };
        let c = run(&mut CapacitySearch::new(fine).unwrap(), 40.0, 1e9, 500);
        assert_eq!((c.capacity, c.first_failing), (Some(40.0), Some(41.0)));
        assert_eq!(c.gpu_seconds, 60.0 * c.runs as f64);
    }

    #[test]
    fn coarse_resolution_stops_within_ten_percent() {
        let cfg = SearchConfig {
            integer: false,
            start: 0.5,
            max: 100.0,
            ..SearchConfig::default()
        };
        let mut s = CapacitySearch::new(cfg).unwrap();
        let c = run(&mut s, 7.3, 1e9, 500);
        let (p, f) = (c.capacity.unwrap(), c.first_failing.unwrap());
        assert!(p <= 7.3 && f > 7.3 && f - p <= 0.1 * p, "{p} {f}");
    }

    #[test]
    fn stops_at_saturation_and_at_the_maximum() {
        let mut s = CapacitySearch::new(SearchConfig::default()).unwrap();
        let c = run(&mut s, 1e9, 32.0, 500);
        assert_eq!(c.stopped, StopReason::Saturated);
        assert_eq!(c.capacity, Some(64.0));
        let cfg = SearchConfig {
            max: 8.0,
            ..SearchConfig::default()
        };
        let mut s = CapacitySearch::new(cfg).unwrap();
        let c = run(&mut s, 1e9, 1e9, 500);
        assert_eq!((c.stopped, c.capacity), (StopReason::MaxReached, Some(8.0)));
    }

    #[test]
    fn fails_at_start() {
        let mut s = CapacitySearch::new(SearchConfig::default()).unwrap();
        let c = run(&mut s, 0.5, 1e9, 500);
        assert_eq!(
            (c.stopped, c.capacity, c.first_failing),
            (StopReason::FailsAtStart, None, Some(1.0))
        );
    }

    #[test]
    fn repeats_a_bracket_end_within_noise_and_pools_it() {
        let cfg = SearchConfig {
            max: 2.0,
            ..SearchConfig::default()
        };
        let mut s = CapacitySearch::new(cfg).unwrap();
        let obs = |load, good| Observation {
            load,
            requests: 100,
            good,
            throughput: load,
            queued: false,
            gpu_seconds: 1.0,
        };
        assert_eq!(s.next_load(), Some(1.0));
        // 99 of 100: the interval [0.946, 0.998] contains 0.99, but load 2 may settle it: no repeat yet.
        s.record(obs(1.0, 99));
        assert_eq!(s.next_load(), Some(2.0));
        s.record(obs(2.0, 99));
        // The last bracket end is within noise: measured again before the search stops.
        assert_eq!(s.next_load(), Some(2.0));
        s.record(obs(2.0, 100));
        let d = s.decide(2.0);
        assert_eq!((d.runs, d.requests, d.good), (2, 200, 199));
        assert!(d.meets && d.within_noise);
        assert_eq!(s.next_load(), None, "decided after one repeat");
        assert_eq!(s.finish().stopped, StopReason::MaxReached);
        assert_eq!(
            s.decide(1.0).runs,
            1,
            "a load below a meeting one is not repeated"
        );
    }

    #[test]
    fn a_repeat_that_flips_the_decision_moves_the_bracket() {
        let mut s = CapacitySearch::new(SearchConfig::default()).unwrap();
        let mut feed = |load: f64, good: u64| {
            s.record(Observation {
                load,
                requests: 100,
                good,
                throughput: load,
                queued: false,
                gpu_seconds: 1.0,
            });
        };
        // 1, 2 clear passes; 4 a marginal pass; 8 a clear fail; then 6 fails clearly.
        for (l, g) in [(1.0, 100), (2.0, 100), (4.0, 99), (8.0, 50), (6.0, 50)] {
            feed(l, g);
        }
        // Bracket (4, 6] is narrow only at resolution 1 apart: 5 is next.
        assert_eq!(s.next_load(), Some(5.0));
        s.record(Observation {
            load: 5.0,
            requests: 100,
            good: 50,
            throughput: 5.0,
            queued: false,
            gpu_seconds: 1.0,
        });
        // (4, 5]: converged, but 4 is within noise: repeated; it now fails on the pooled counts.
        assert_eq!(s.next_load(), Some(4.0));
        s.record(Observation {
            load: 4.0,
            requests: 100,
            good: 90,
            throughput: 4.0,
            queued: false,
            gpu_seconds: 1.0,
        });
        // (2, 4]: 3 is measured.
        assert_eq!(s.next_load(), Some(3.0));
    }

    #[test]
    fn queueing_stops_bracketing() {
        let mut s = CapacitySearch::new(SearchConfig::default()).unwrap();
        s.next_load();
        s.record(Observation {
            load: 1.0,
            requests: 1000,
            good: 1000,
            throughput: 1.0,
            queued: true,
            gpu_seconds: 1.0,
        });
        assert_eq!(s.next_load(), None);
        assert_eq!(s.finish().stopped, StopReason::Saturated);
    }

    #[test]
    fn wilson_interval() {
        let (lo, hi) = wilson(99, 100);
        assert!(
            (lo - 0.9455).abs() < 1e-3 && (hi - 0.9982).abs() < 1e-3,
            "{lo} {hi}"
        );
        assert_eq!(wilson(0, 0), (0.0, 1.0));
    }

    #[test]
    fn refuses_bad_configs() {
        for cfg in [
            SearchConfig {
                growth: 1.0,
                ..Default::default()
            },
            SearchConfig {
                start: 0.0,
                ..Default::default()
            },
            SearchConfig {
                start: 1.5,
                ..Default::default()
            },
            SearchConfig {
                target: f64::NAN,
                ..Default::default()
            },
            SearchConfig {
                max: 0.5,
                ..Default::default()
            },
        ] {
            assert!(CapacitySearch::new(cfg).is_err(), "{cfg:?}");
        }
    }
}
