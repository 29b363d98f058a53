//! Seeded per-request fault decisions (`--fail-rate`, `--disconnect-rate`, `--malformed-rate`).
//!
//! Each decision is a hash of (global seed, fault kind, request number), where the request number is the one in
//! `x-sim-request-id` (assigned in arrival order), so a run at concurrency 1 injects the same faults every time.

use crate::config::FaultConfig;
use crate::rng::{combine, unit_f64};

/// What goes wrong with one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct FaultPlan {
    /// Answer HTTP 500 instead of generating.
    pub(crate) fail: bool,
    /// Drop the connection after this many text chunks (1..=chunks; at `chunks` the final `[DONE]` is withheld).
    pub(crate) disconnect_after: Option<u32>,
    /// Insert a malformed event before this chunk (0-based).
    pub(crate) malformed_at: Option<u32>,
}

const SALT_FAIL: u64 = 0xFA11;
const SALT_DISCONNECT: u64 = 0xD15C;
const SALT_MALFORMED: u64 = 0xBAD0;

pub(crate) fn decide(cfg: &FaultConfig, seed: u64, request_no: u64, chunks: u32) -> FaultPlan {
    let draw = |salt: u64| combine(combine(seed, salt), request_no);
    let hit = |salt: u64, rate: f64| rate > 0.0 && unit_f64(draw(salt)) < rate;
    let chunks = chunks.max(1);
    let pick = |salt: u64| (combine(draw(salt), 1) % u64::from(chunks)) as u32;
    FaultPlan {
        fail: hit(SALT_FAIL, cfg.fail_rate),
        disconnect_after: hit(SALT_DISCONNECT, cfg.disconnect_rate)
            .then(|| 1 + pick(SALT_DISCONNECT)),
        malformed_at: hit(SALT_MALFORMED, cfg.malformed_rate).then(|| pick(SALT_MALFORMED)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_zero_and_one() {
        let none = FaultConfig::default();
        for n in 0..100 {
            assert_eq!(decide(&none, 1, n, 10), FaultPlan::default());
        }
        let all = FaultConfig {
            fail_rate: 1.0,
            disconnect_rate: 1.0,
            malformed_rate: 1.0,
            ..FaultConfig::default()
        };
        for n in 0..100 {
            let f = decide(&all, 1, n, 10);
            assert!(f.fail);
            assert!((1..=10).contains(&f.disconnect_after.unwrap()));
            assert!(f.malformed_at.unwrap() < 10);
        }
    }

    #[test]
    fn rate_is_respected_and_deterministic() {
        let half = FaultConfig {
            fail_rate: 0.25,
            ..FaultConfig::default()
        };
        let hits = (0..4000).filter(|&n| decide(&half, 5, n, 1).fail).count();
        assert!((900..1100).contains(&hits), "{hits}");
        assert_eq!(decide(&half, 5, 17, 3), decide(&half, 5, 17, 3));
    }
}
