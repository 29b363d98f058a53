//! Eval protocols: the whole recipe that turns a dataset row into a score — prompt, option order and clean-up,
//! which part of the response is read, answer extraction and grading — named so that a number can say which
//! recipe produced it. See `docs/eval-protocols.md` for each protocol's rules and its reference.
//!
//! | protocol | datasets | reference |
//! |---|---|---|
//! | `evalscope-0` | GPQA | evalscope 0.12.1 `benchmarks/gpqa/gpqa_adapter.py` (the field report's GPQA-Diamond 70.2) |
//! | `evalscope-1` | GPQA | evalscope 1.14.1 `benchmarks/gpqa/gpqa_adapter.py` + `utils/multi_choices.py` |
//! | `qwen2.5-math` | AIME, MATH-500 | Qwen2.5-Math `math_eval.py --prompt_type deepseek-math` (the report's AIME24 83.3, MATH-500 96.0) |
//! | `servebench` | every set | servebench's own rules (final answer after the reasoning, lenient letter extraction) |

use crate::dataset::Builtin;
use crate::error::EvalError;
use crate::grade::{GradeOptions, GraderMode};

/// One named protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// evalscope 0.x GPQA: its prompt and option clean-up, `seed_everything(42)` then one `random.shuffle` per row
    /// in file order, the last standalone A–D of the upper-cased content.
    Evalscope0,
    /// evalscope 1.x GPQA: its `ANSWER: [LETTER]` prompt, options only stripped, `random.Random(seed)` per
    /// question with the seed from SHA-256 of the stripped question, its `parse_answers` extraction.
    Evalscope1,
    /// Qwen2.5-Math: deepseek-math prompt, the last `\boxed{}` anywhere in the whole text (reasoning included, an
    /// empty box taken and wrong), Qwen's `math_equal`.
    Qwen25Math,
    /// servebench's rules (today's behaviour).
    Servebench,
}

impl Protocol {
    pub fn parse(s: &str) -> Result<Protocol, EvalError> {
        match s.trim() {
            "evalscope-0" => Ok(Protocol::Evalscope0),
            "evalscope-1" => Ok(Protocol::Evalscope1),
            "qwen2.5-math" => Ok(Protocol::Qwen25Math),
            "servebench" => Ok(Protocol::Servebench),
            other => Err(EvalError::Config(format!(
                "unknown protocol '{other}': use evalscope-0, evalscope-1 (GPQA), qwen2.5-math (AIME, MATH-500) \
                 or servebench"
            ))),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Evalscope0 => "evalscope-0",
            Protocol::Evalscope1 => "evalscope-1",
            Protocol::Qwen25Math => "qwen2.5-math",
            Protocol::Servebench => "servebench",
        }
    }

    /// Whether this protocol is defined for GPQA (multiple choice from the GPQA CSV).
    pub fn is_gpqa(self) -> bool {
        matches!(
            self,
            Protocol::Evalscope0 | Protocol::Evalscope1 | Protocol::Servebench
        )
    }

    /// Whether this protocol is defined for the competition-math sets (AIME, MATH-500).
    pub fn is_math(self) -> bool {
        matches!(self, Protocol::Qwen25Math | Protocol::Servebench)
    }

    /// The grading options this protocol uses, from the user's: `qwen2.5-math` grades with Qwen's `math_equal`.
    pub fn grade_options(self, user: &GradeOptions) -> GradeOptions {
        match self {
            Protocol::Qwen25Math => GradeOptions {
                mode: GraderMode::Qwen,
                ..user.clone()
            },
            _ => user.clone(),
        }
    }
}

/// The protocol of each kind of dataset in one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Protocols {
    /// GPQA-Diamond.
    pub gpqa: Protocol,
    /// AIME 2024/2025 and MATH-500.
    pub math: Protocol,
}

impl Default for Protocols {
    /// The reference protocols (the field report's tools): evalscope 0.x for GPQA, Qwen2.5-Math for AIME/MATH-500.
    fn default() -> Self {
        Protocols::REFERENCE
    }
}

impl Protocols {
    /// The field report's tools.
    pub const REFERENCE: Protocols = Protocols {
        gpqa: Protocol::Evalscope0,
        math: Protocol::Qwen25Math,
    };
    /// servebench's own rules everywhere.
    pub const SERVEBENCH: Protocols = Protocols {
        gpqa: Protocol::Servebench,
        math: Protocol::Servebench,
    };

    /// Checks that each protocol fits its kind of dataset.
    pub fn validate(&self) -> Result<(), EvalError> {
        if !self.gpqa.is_gpqa() {
            return Err(EvalError::Config(format!(
                "protocol {} is not a GPQA protocol: use evalscope-0, evalscope-1 or servebench",
                self.gpqa.as_str()
            )));
        }
        if !self.math.is_math() {
            return Err(EvalError::Config(format!(
                "protocol {} is not a math protocol: use qwen2.5-math or servebench",
                self.math.as_str()
            )));
        }
        Ok(())
    }

    /// The protocol of a built-in set; GSM8K and custom sets always use `servebench`.
    pub fn for_builtin(&self, b: Builtin) -> Protocol {
        match b {
            Builtin::GpqaDiamond => self.gpqa,
            Builtin::Aime24 | Builtin::Aime25 | Builtin::Math500 => self.math,
            Builtin::Gsm8k => Protocol::Servebench,
        }
    }
}

/// The field report's numbers (DeepSeek-R1 FP8), as fractions: what `--protocol field-report` prints next to each
/// score. `None` for a set the report did not measure.
pub fn field_report_score(dataset: &str) -> Option<f64> {
    match dataset {
        "gpqa_diamond" => Some(0.702),
        "aime24" => Some(0.833),
        "math500" => Some(0.960),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_are_explained() {
        for p in [
            Protocol::Evalscope0,
            Protocol::Evalscope1,
            Protocol::Qwen25Math,
            Protocol::Servebench,
        ] {
            assert_eq!(Protocol::parse(p.as_str()).unwrap(), p);
        }
        let e = Protocol::parse("evalscope").unwrap_err().to_string();
        assert!(e.contains("evalscope-0, evalscope-1"), "{e}");
    }

    #[test]
    fn defaults_are_the_reference_protocols_and_kinds_are_checked() {
        let d = Protocols::default();
        assert_eq!(d.for_builtin(Builtin::GpqaDiamond), Protocol::Evalscope0);
        assert_eq!(d.for_builtin(Builtin::Math500), Protocol::Qwen25Math);
        assert_eq!(d.for_builtin(Builtin::Aime25), Protocol::Qwen25Math);
        assert_eq!(d.for_builtin(Builtin::Gsm8k), Protocol::Servebench);
        assert!(d.validate().is_ok());
        let bad = Protocols {
            gpqa: Protocol::Qwen25Math,
            ..d
        };
        assert!(bad.validate().unwrap_err().to_string().contains("GPQA"));
        let bad = Protocols {
            math: Protocol::Evalscope1,
            ..d
        };
        assert!(bad.validate().unwrap_err().to_string().contains("math"));
    }

    #[test]
    fn qwen_protocol_grades_with_qwen_mode() {
        let user = GradeOptions::default();
        assert_eq!(
            Protocol::Qwen25Math.grade_options(&user).mode,
            GraderMode::Qwen
        );
        assert_eq!(
            Protocol::Servebench.grade_options(&user).mode,
            GraderMode::Servebench
        );
        assert_eq!(field_report_score("gpqa_diamond"), Some(0.702));
        assert_eq!(field_report_score("gsm8k"), None);
    }
}
