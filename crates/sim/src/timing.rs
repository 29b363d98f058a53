//! The cost model of one engine step (pure arithmetic, no clocks).
//!
//! A step processes some prefill tokens (chunks of prompts) and one decode position for every sequence that is
//! already decoding. Its duration is the sum of the two parts:
//!
//! ```text
//! prefill = prefill_tokens × prefill_us_per_token
//! decode  = decode_base_ms + decode_per_seq_us × batch + decode_per_ctx_token_ns × context_tokens   (if batch > 0)
//! step    = prefill + decode
//! ```
//!
//! where `batch` is the number of decoding sequences and `context_tokens` the sum of their current lengths
//! (prompt + tokens generated so far). A prefill-only step has no decode part, so the time to first token of a lone
//! request is exactly `prompt_tokens × prefill_us_per_token`.

use std::time::Duration;

/// Parameters of the step cost model (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TimingModel {
    pub prefill_us_per_token: f64,
    pub decode_base_ms: f64,
    pub decode_per_seq_us: f64,
    pub decode_per_ctx_token_ns: f64,
}

impl TimingModel {
    /// Cost of the prefill part of a step, in nanoseconds.
    pub fn prefill_ns(&self, prefill_tokens: u64) -> f64 {
        prefill_tokens as f64 * self.prefill_us_per_token * 1e3
    }

    /// Cost of the decode part of a step, in nanoseconds (0 when nothing decodes).
    pub fn decode_ns(&self, batch: u64, context_tokens: u64) -> f64 {
        if batch == 0 {
            return 0.0;
        }
        self.decode_base_ms * 1e6
            + batch as f64 * self.decode_per_seq_us * 1e3
            + context_tokens as f64 * self.decode_per_ctx_token_ns
    }

    /// Duration of one step (rounded to whole nanoseconds).
    pub fn step_cost(&self, prefill_tokens: u64, batch: u64, context_tokens: u64) -> Duration {
        let ns = self.prefill_ns(prefill_tokens) + self.decode_ns(batch, context_tokens);
        Duration::from_nanos(ns.max(0.0).round() as u64)
    }

    /// Whether every step costs nothing (a zero-compute engine).
    pub fn is_zero(&self) -> bool {
        self.prefill_us_per_token == 0.0
            && self.decode_base_ms == 0.0
            && self.decode_per_seq_us == 0.0
            && self.decode_per_ctx_token_ns == 0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: TimingModel = TimingModel {
        prefill_us_per_token: 40.0,
        decode_base_ms: 9.0,
        decode_per_seq_us: 50.0,
        decode_per_ctx_token_ns: 20.0,
    };

    #[test]
    fn prefill_only_step() {
        // 512 tokens x 40 us = 20.48 ms
        assert_eq!(M.step_cost(512, 0, 0), Duration::from_micros(20_480));
    }

    #[test]
    fn decode_only_step() {
        // 9 ms + 64 x 50 us + 64 x 1000 tokens x 20 ns = 9 + 3.2 + 1.28 ms
        assert_eq!(M.step_cost(0, 64, 64_000), Duration::from_micros(13_480));
        // batch 1, context 600: 9 ms + 50 us + 12 us
        assert_eq!(M.step_cost(0, 1, 600), Duration::from_micros(9_062));
    }

    #[test]
    fn mixed_step_is_the_sum() {
        let mixed = M.step_cost(2048, 8, 8_000);
        assert_eq!(mixed, M.step_cost(2048, 0, 0) + M.step_cost(0, 8, 8_000));
        assert_eq!(mixed, Duration::from_micros(81_920 + 9_000 + 400 + 160));
    }

    #[test]
    fn empty_step_costs_nothing() {
        assert_eq!(M.step_cost(0, 0, 0), Duration::ZERO);
        assert!(!M.is_zero());
        let z = TimingModel {
            prefill_us_per_token: 0.0,
            decode_base_ms: 0.0,
            decode_per_seq_us: 0.0,
            decode_per_ctx_token_ns: 0.0,
        };
        assert!(z.is_zero());
        assert_eq!(z.step_cost(1000, 100, 100_000), Duration::ZERO);
    }
}
