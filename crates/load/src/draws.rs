//! The workload's random draws, in `sglang.bench_serving` 0.5.9's order, so that the same `--seed` gives the
//! same workload as sglang.
//!
//! sglang seeds Python's `random.seed(seed)` and NumPy's `np.random.seed(seed)` once, before anything else draws.
//! Then, for `random`/`random-ids`: all input lengths (`np.random.randint(max(int(L·r), 1), L + 1, size=n)`),
//! then all output lengths the same way, then the special tokens the tokenizer adds are subtracted from text
//! prompts' input lengths; `random` shuffles the ShareGPT conversations with `random.shuffle`, `random-ids`
//! draws one id offset per prompt with `np.random.randint(0, vocab_size, size=n)`. `sharegpt` and `custom`
//! shuffle their conversations with `random.shuffle`. Warm-up sends the first prompt and draws nothing.

use crate::LoadError;
use servebench_core::pyrandom::{NumpyLegacy, PyRandom};

/// How `--random-range-ratio` is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeRule {
    /// SGLang: U[max(⌊L·r⌋, 1), L]; the tokenizer's special tokens are subtracted from text prompts' drawn lengths.
    Sglang,
    /// vLLM (`vllm bench serve --random-range-ratio`): the special tokens are subtracted from L first, then
    /// U[⌊L'·(1−r)⌋, ⌈L'·(1+r)⌉] (outputs at least 1), r in [0, 1).
    Vllm,
}

/// The two generators sglang seeds at start.
#[derive(Debug, Clone)]
pub struct Draws {
    /// `np.random` (NumPy's legacy global `RandomState`).
    pub np: NumpyLegacy,
    /// Python's `random`.
    pub py: PyRandom,
}

impl Draws {
    /// `random.seed(seed); np.random.seed(seed)`. NumPy takes seeds below 2³² only, as sglang does.
    pub fn seeded(seed: u64) -> Result<Draws, LoadError> {
        let np_seed = u32::try_from(seed).map_err(|_| {
            LoadError::Config(format!(
                "--seed {seed} is too large: sglang seeds NumPy with it, which takes 0 to 4294967295"
            ))
        })?;
        Ok(Draws {
            np: NumpyLegacy::seed(np_seed),
            py: PyRandom::from_int(i128::from(seed)),
        })
    }

    /// sglang's `compute_random_lens` (or vLLM's bounds with `RangeRule::Vllm`): `n` lengths for a nominal
    /// length `len`. `special` is subtracted first under vLLM's rule (sglang subtracts after drawing: see
    /// [`Draws::random_lengths`]).
    fn lengths(
        &mut self,
        len: u64,
        ratio: f64,
        rule: RangeRule,
        special: u64,
        n: usize,
    ) -> Result<Vec<u64>, LoadError> {
        let (lo, hi) = length_bounds(len, ratio, rule, special)?;
        let high = i64::try_from(hi)
            .ok()
            .and_then(|h| h.checked_add(1))
            .ok_or_else(|| LoadError::Config(format!("length {hi} is too large")))?;
        let low = lo as i64;
        let drawn = self.np.randint(low, high, n).ok_or_else(|| {
            LoadError::Config(format!("empty length range [{lo}, {hi}] for length {len}"))
        })?;
        Ok(drawn.into_iter().map(|v| v.max(0) as u64).collect())
    }

    /// All input lengths, then all output lengths, as sglang draws them. `special` is the tokenizer's
    /// `num_special_tokens_to_add()` for prompts sent as text (0 for prompts sent as token ids): sglang
    /// subtracts it from each drawn input length (at least 0), vLLM from the nominal length before drawing.
    pub fn random_lengths(&mut self, spec: &LengthSpec) -> Result<(Vec<u64>, Vec<u64>), LoadError> {
        let n = spec.num_prompts;
        let mut inputs =
            self.lengths(spec.input_len, spec.range_ratio, spec.rule, spec.special, n)?;
        let outputs = self.lengths(spec.output_len, spec.range_ratio, spec.rule, 0, n)?;
        if spec.rule == RangeRule::Sglang {
            for l in &mut inputs {
                *l = l.saturating_sub(spec.special);
            }
        }
        Ok((inputs, outputs))
    }
}

/// What the length draws depend on.
#[derive(Debug, Clone, Copy)]
pub struct LengthSpec {
    pub num_prompts: usize,
    pub input_len: u64,
    pub output_len: u64,
    pub range_ratio: f64,
    pub rule: RangeRule,
    /// Special tokens the server's tokenizer adds to a text prompt (0 for token-id prompts).
    pub special: u64,
}

/// Inclusive bounds of a drawn length (before sglang's special-token subtraction).
pub fn length_bounds(
    len: u64,
    ratio: f64,
    rule: RangeRule,
    special: u64,
) -> Result<(u64, u64), LoadError> {
    if !ratio.is_finite() {
        return Err(LoadError::Config(format!(
            "--random-range-ratio {ratio} must be a finite number"
        )));
    }
    match rule {
        RangeRule::Sglang => {
            if !(0.0..=1.0).contains(&ratio) {
                return Err(LoadError::Config(format!(
                    "--random-range-ratio {ratio} must be in [0, 1] with SGLang's rule"
                )));
            }
            if len == 0 {
                return Err(LoadError::Config(
                    "lengths must be at least 1 (--random-input-len / --random-output-len)".into(),
                ));
            }
            // Python's int(L * r): truncation of a non-negative float.
            let lo = ((len as f64 * ratio) as u64).max(1);
            Ok((lo, len))
        }
        RangeRule::Vllm => {
            if !(0.0..1.0).contains(&ratio) {
                return Err(LoadError::Config(format!(
                    "--random-range-ratio {ratio} must be in [0, 1) with vLLM's rule"
                )));
            }
            let real = len.saturating_sub(special) as f64;
            let lo = (real * (1.0 - ratio)).floor() as u64;
            let hi = (real * (1.0 + ratio)).ceil() as u64;
            // vLLM keeps outputs at least 1; servebench keeps inputs at least 1 too (an empty prompt).
            Ok((lo.max(1), hi.max(1)))
        }
    }
}

/// sglang's prompt ids for a wanted length: the source ids cut to `target`, or repeated until long enough and
/// then cut (`(ids * ceil(target / len))[:target]`). Empty for an empty source.
pub fn truncate_or_repeat(ids: &[u32], target: usize) -> Vec<u32> {
    if ids.is_empty() {
        return Vec::new();
    }
    ids.iter().copied().cycle().take(target).collect()
}

/// sglang's `random-ids` prompt: ids `(offset + i + j) % vocab` for j in 0..len.
pub fn offset_ids(offset: u64, index: usize, len: usize, vocab: u64) -> Vec<u32> {
    if vocab == 0 {
        return Vec::new();
    }
    (0..len as u64)
        .map(|j| ((offset + index as u64 + j) % vocab) as u32)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(input_len: u64, output_len: u64, ratio: f64, n: usize, special: u64) -> LengthSpec {
        LengthSpec {
            num_prompts: n,
            input_len,
            output_len,
            range_ratio: ratio,
            rule: RangeRule::Sglang,
            special,
        }
    }

    #[test]
    fn the_seed_workload_matches_sglang() {
        // sglang.bench_serving 0.5.9, 5600/1400, ratio 0.8, 1 prompt, seed 1 (issue 10): 5541/1355.
        let mut d = Draws::seeded(1).unwrap();
        let (i, o) = d.random_lengths(&spec(5600, 1400, 0.8, 1, 0)).unwrap();
        assert_eq!((i, o), (vec![5541], vec![1355]));
        // With a BOS-adding tokenizer the input is one shorter, the draws the same.
        let mut d = Draws::seeded(1).unwrap();
        let (i, o) = d.random_lengths(&spec(5600, 1400, 0.8, 1, 1)).unwrap();
        assert_eq!((i, o), (vec![5540], vec![1355]));
    }

    #[test]
    fn bounds_follow_each_rule() {
        let b = |l, r, rule, s| length_bounds(l, r, rule, s).unwrap();
        assert_eq!(b(5600, 0.8, RangeRule::Sglang, 0), (4480, 5600));
        assert_eq!(b(1024, 0.0, RangeRule::Sglang, 0), (1, 1024));
        assert_eq!(b(1024, 1.0, RangeRule::Sglang, 0), (1024, 1024));
        assert_eq!(b(3500, 0.7, RangeRule::Sglang, 0), (2450, 3500));
        // vLLM: special tokens off first, floor low, ceil high; 100 * 1.1 = 110.00000000000001 in floats, so
        // Python's math.ceil gives 111 there too.
        assert_eq!(b(100, 0.1, RangeRule::Vllm, 0), (90, 111));
        assert_eq!(b(101, 0.1, RangeRule::Vllm, 1), (90, 111));
        assert_eq!(b(100, 0.5, RangeRule::Vllm, 0), (50, 150));
        assert_eq!(b(105, 0.25, RangeRule::Vllm, 0), (78, 132));
        assert_eq!(b(10, 0.95, RangeRule::Vllm, 0), (1, 20));
        assert!(length_bounds(10, 1.0, RangeRule::Vllm, 0).is_err());
        assert!(length_bounds(10, 1.5, RangeRule::Sglang, 0).is_err());
        assert!(length_bounds(10, f64::NAN, RangeRule::Sglang, 0).is_err());
        assert!(length_bounds(0, 0.5, RangeRule::Sglang, 0).is_err());
    }

    #[test]
    fn seeds_numpy_cannot_take_are_refused() {
        let e = Draws::seeded(1 << 32).unwrap_err().to_string();
        assert!(e.contains("--seed") && e.contains("4294967295"), "{e}");
        assert!(Draws::seeded(u64::from(u32::MAX)).is_ok());
    }

    #[test]
    fn truncate_or_repeat_as_sglang() {
        assert_eq!(truncate_or_repeat(&[1, 2, 3], 2), vec![1, 2]);
        assert_eq!(truncate_or_repeat(&[1, 2, 3], 7), vec![1, 2, 3, 1, 2, 3, 1]);
        assert_eq!(truncate_or_repeat(&[1, 2, 3], 0), Vec::<u32>::new());
        assert!(truncate_or_repeat(&[], 5).is_empty());
        assert_eq!(offset_ids(9, 1, 3, 11), vec![10, 0, 1]);
    }
}
