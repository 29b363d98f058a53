//! Math answer equivalence: is a predicted final answer equal to the gold answer?
//!
//! [`grade`] compares two already-extracted answers; [`grade_response`] extracts the answer from a full response
//! first. [`GraderMode::Servebench`] is strict but fair; [`GraderMode::Qwen`] reproduces Qwen2.5-Math's
//! `math_equal`. Every function is pure, bounded in time and never panics.

use std::time::{Duration, Instant};

use crate::extract;

mod ast;
mod clean;
mod equal;
mod eval;
mod lexer;
mod number;
mod parser;
mod qwen;
mod realset;
mod rules;
#[cfg(test)]
mod tests;

pub use qwen::{qwen_extract, qwen_gold, qwen_grade_response, qwen_math_equal, qwen_strip};

/// Which rule set decides equality.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GraderMode {
    /// servebench's rules: strict where it matters (ordered tuples, interval brackets, bases), forgiving on notation.
    #[default]
    Servebench,
    /// Qwen2.5-Math `evaluation/grader.py` `math_equal` behaviour, quirks included.
    Qwen,
}

/// Options of the grader.
#[derive(Debug, Clone, PartialEq)]
pub struct GradeOptions {
    pub mode: GraderMode,
    /// Relative tolerance of numeric comparison.
    pub rel_tol: f64,
    /// Accept a percentage written as its fraction (`10\%` = `0.1`).
    pub percent: bool,
    /// Time bound per item; a timeout counts as not equal and is reported.
    pub timeout: Duration,
    /// Interval bracket type is significant (`[2,5)` ≠ `[2,5]`).
    pub strict_intervals: bool,
}

impl Default for GradeOptions {
    fn default() -> Self {
        GradeOptions {
            mode: GraderMode::Servebench,
            rel_tol: 1e-4,
            percent: true,
            timeout: Duration::from_secs(1),
            strict_intervals: true,
        }
    }
}

/// The outcome of one comparison and the rule that decided it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    pub equal: bool,
    pub rule: &'static str,
    pub timeout: bool,
}

impl Verdict {
    pub(crate) fn yes(rule: &'static str) -> Self {
        Verdict {
            equal: true,
            rule,
            timeout: false,
        }
    }
    pub(crate) fn no(rule: &'static str) -> Self {
        Verdict {
            equal: false,
            rule,
            timeout: false,
        }
    }
    pub(crate) fn timed_out() -> Self {
        Verdict {
            equal: false,
            rule: "timeout",
            timeout: true,
        }
    }
}

/// Answers longer than this (in bytes) are compared as plain text only.
pub const MAX_ANSWER_BYTES: usize = 10_000;

/// Grades an already-extracted predicted answer against the gold answer.
///
/// Never panics; bounded by `opts.timeout` (a timeout is reported as not equal with `timeout: true`).
pub fn grade(pred: &str, gold: &str, opts: &GradeOptions) -> Verdict {
    // a final answer this long is not a formula anyone wrote; only an identical text is equal
    if pred.len() > MAX_ANSWER_BYTES || gold.len() > MAX_ANSWER_BYTES {
        return if pred.trim() == gold.trim() {
            Verdict::yes("exact")
        } else {
            Verdict::no("too_long")
        };
    }
    if opts.mode == GraderMode::Qwen {
        qwen::prepare();
    }
    let deadline = Instant::now() + opts.timeout;
    match opts.mode {
        GraderMode::Servebench => rules::grade(pred, gold, opts, deadline),
        GraderMode::Qwen => qwen::grade(pred, gold, opts, deadline),
    }
}

/// Extracts the final answer of a response (after any `<think>` reasoning; from the reasoning when nothing follows
/// it) and grades it. No answer found → not equal, rule `no_answer`. With [`GraderMode::Qwen`] the extraction is
/// Qwen2.5-Math's on the whole text ([`qwen_grade_response`]).
pub fn grade_response(
    response: &str,
    gold: &str,
    opts: &GradeOptions,
) -> (Option<String>, Verdict) {
    if opts.mode == GraderMode::Qwen {
        let (pred, v) = qwen_grade_response(response, gold, opts);
        return (Some(pred), v);
    }
    let (reasoning, final_text) = extract::strip_reasoning(response);
    let scope = if final_text.trim().is_empty() {
        reasoning.unwrap_or_default()
    } else {
        final_text
    };
    match extract::extract_math_answer(&scope) {
        Some(ans) => {
            let v = grade(&ans, gold, opts);
            (Some(ans), v)
        }
        None => (None, Verdict::no("no_answer")),
    }
}

/// Grades a prediction that may be a bare answer (`14/3`) or a response (`… so \boxed{14/3}.`, `<think>…</think>…`,
/// "The answer is 5"): a response is extracted first (returned as `Some(extracted)`), a bare answer is graded as is.
pub fn grade_prediction(pred: &str, gold: &str, opts: &GradeOptions) -> (Option<String>, Verdict) {
    if looks_like_response(pred) {
        grade_response(pred, gold, opts)
    } else {
        (None, grade(pred, gold, opts))
    }
}

fn looks_like_response(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    [
        "\\boxed",
        "\\fbox",
        "<think>",
        "</think>",
        "answer is",
        "final answer",
    ]
    .iter()
    .any(|m| lower.contains(m))
}

/// Grades a multiple-choice prediction (`B`, `(B)`, `\text{(B)}`, `B) 42`, or a whole response) against a letter.
pub fn grade_choice(pred: &str, gold_letter: char) -> Verdict {
    let gold = gold_letter.to_ascii_uppercase();
    let short = pred.trim();
    // a short prediction is the answer itself (`B`, `(B)`, `B) 42`); a longer one is a response to extract from
    let letter = if short.chars().count() <= 24 && !short.contains("\\boxed") {
        extract::leading_choice(short).or_else(|| extract::extract_choice(pred))
    } else {
        extract::extract_choice(pred)
    };
    match letter {
        Some(c) if c == gold => Verdict::yes("choice"),
        Some(_) => Verdict::no("choice"),
        None => Verdict::no("no_answer"),
    }
}

/// GSM8K-style numeric comparison: `$`, thousands commas, units and trailing `.0` ignored; the values must be equal
/// exactly (decimals are exact: `18.00` = `18`).
pub fn numeric_equal(pred: &str, gold: &str) -> Verdict {
    match (rules::numeric_value(pred), rules::numeric_value(gold)) {
        (Some(a), Some(b)) if a == b => Verdict::yes("numeric"),
        (Some(_), Some(_)) => Verdict::no("numeric"),
        _ => Verdict::no("not_a_number"),
    }
}
