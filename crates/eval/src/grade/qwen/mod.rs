//! `--grader qwen`: Qwen2.5-Math's evaluation (`evaluation/parser.py`, `grader.py`, `math_eval.py`), quirks
//! included, reimplemented from reading that code and checked against its real verdicts
//! (`tests/fixtures/grading/qwen_verdicts_*.jsonl`, `crates/eval/tests/qwen_compat.rs`).
//!
//! * [`qwen_extract`] (`extract.rs`): `extract_answer` on the whole text, then `strip_string` (`strip.rs`).
//! * [`qwen_gold`]: the gold stripped twice, as `math_eval.py` does.
//! * [`qwen_math_equal`]: `math_equal`'s branches (this file); its `symbolic_equal` is emulated in `sympy.rs`
//!   with the parser's sympy mode (`parse_latex`'s readings: valid prefix kept, `\pi`/`e`/`i` symbols, …).
//! * [`qwen_grade_response`]: the whole pipeline for one response.
//!
//! Quirks reproduced include: unit words (including single letters such as `a`, `t`, `m`) deleted wherever they
//! stand alone, a trailing `\text{…}` deleted, `and` deleted everywhere, digit-only answers lose leading zeros,
//! percent accepted ×100 and ÷100 for any pair of numbers, relative tolerance 1e-4 even for integers, bracket type
//! of intervals ignored, list elements split naïvely at commas, `x=`/`y=`/`z=` removed.

use std::time::Instant;

use super::eval::EvalError;
use super::{GradeOptions, Verdict};

mod extract;
mod strip;
mod sympy;

pub use extract::qwen_extract;
use strip::{patterns, Patterns};
pub(crate) use strip::{prepare, strip_string};

/// Python's `float(str)` for the forms that matter here (commas already removed).
fn python_float(x: &str) -> Option<f64> {
    let t = x.trim().to_ascii_lowercase();
    if t.is_empty() {
        return None;
    }
    let ok = t
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | '+' | '-' | '_'))
        || matches!(t.trim_start_matches(['+', '-']), "inf" | "infinity" | "nan");
    if !ok {
        return None;
    }
    // Python allows `_` only between two digits (`52_8` is 528.0; `_5`, `5_`, `5__2`, `5_.2` are errors)
    let b = t.as_bytes();
    let underscore_ok = b.iter().enumerate().all(|(k, c)| {
        *c != b'_'
            || (k > 0 && b[k - 1].is_ascii_digit() && b.get(k + 1).is_some_and(u8::is_ascii_digit))
    });
    if !underscore_ok {
        return None;
    }
    t.replace('_', "").parse::<f64>().ok()
}

fn parse_digits(x: &str) -> Option<f64> {
    let t = x.replace(',', "");
    if let Some(v) = python_float(&t) {
        return Some(v);
    }
    let rest = t.strip_suffix('%')?;
    let rest = rest.strip_suffix('\\').unwrap_or(rest);
    python_float(rest).map(|v| v / 100.0)
}

/// Python's `math.isclose(a, b, rel_tol=rel)`: infinities are close only to themselves.
fn isclose(a: f64, b: f64, rel: f64) -> bool {
    if a == b {
        return true;
    }
    if a.is_infinite() || b.is_infinite() {
        return false;
    }
    (a - b).abs() <= rel * a.abs().max(b.abs())
}

fn choice_clean(pred: &str, pt: &Patterns) -> String {
    let p = pred
        .trim_matches('\n')
        .trim_end_matches('.')
        .trim_end_matches('/')
        .trim_matches(' ')
        .trim_start_matches(':');
    let upper = p.to_uppercase();
    let found: Vec<&str> = pt.choice.find_iter(&upper).map(|m| m.as_str()).collect();
    let last = match found.last() {
        Some(l) => l.to_string(),
        None => p.trim().trim_matches('.').to_string(),
    };
    last.trim_end_matches('.').trim_end_matches('/').to_string()
}

struct Ctx<'a> {
    opts: &'a GradeOptions,
    deadline: Instant,
    pt: &'static Patterns,
}

/// What Qwen's pipeline compares for a prediction written as a final answer (the text of its box):
/// `strip_string` twice (once in `extract_answer`, once in `run_execute`).
fn normalize_pred(pred: &str) -> String {
    strip_string(&strip_string(&extract::clean_extracted(pred)))
}

/// What Qwen's `math_eval.py` compares for a gold answer: `parse_ground_truth` strips it once and `evaluate()` once
/// more (the second pass matters for MATH-500 #383, `x \in [-2,7]` → `[-2,7]`).
pub fn qwen_gold(gold: &str) -> String {
    strip_string(&strip_string(gold))
}

/// Qwen2.5-Math's `strip_string` (one pass), the normalisation behind [`qwen_extract`] and [`qwen_gold`].
pub fn qwen_strip(answer: &str) -> String {
    strip_string(answer)
}

/// Grades a bare predicted answer against a gold answer as Qwen's pipeline would: both normalised (see
/// [`normalize_pred`], [`qwen_gold`]), then [`qwen_math_equal`].
pub(crate) fn grade(pred: &str, gold: &str, opts: &GradeOptions, deadline: Instant) -> Verdict {
    math_equal_until(&normalize_pred(pred), &qwen_gold(gold), opts, deadline)
}

/// Grades a whole response as Qwen2.5-Math's `math_eval.py` does: [`qwen_extract`] on the whole text (reasoning
/// included), then `math_equal` against [`qwen_gold`]. As there, when the once-stripped gold consists only of the
/// letters A–E (MATH-500 #97 `\text{east}` strips to the empty string, which qualifies) and the prediction does not,
/// the prediction is cut down to its letters A–E first (so any answer without a capital A–E "equals" that empty
/// gold). Returns the compared prediction and the verdict.
pub fn qwen_grade_response(response: &str, gold: &str, opts: &GradeOptions) -> (String, Verdict) {
    let mut pred = qwen_extract(response);
    let gt = strip_string(gold);
    let letters_only = |s: &str| s.chars().all(|c| matches!(c, 'A'..='E'));
    // a single letter A–E gold takes another path in math_eval.py (`choice_answer_clean` of the response), which
    // no math dataset here needs: it is left out
    let single_letter = gt.chars().count() == 1 && letters_only(&gt);
    if letters_only(&gt) && !single_letter && !letters_only(&pred) {
        pred = pred.chars().filter(|c| matches!(c, 'A'..='E')).collect();
    }
    // `qwen_gold`: the once-stripped gold stripped once more
    let v = qwen_math_equal(&pred, &strip_string(&gt), opts);
    (pred, v)
}

/// Qwen2.5-Math's `math_equal(pred, gold)` on answers already normalised as its pipeline does (no further
/// stripping): [`qwen_extract`] of a response against [`qwen_gold`] of the gold answer.
pub fn qwen_math_equal(pred: &str, gold: &str, opts: &GradeOptions) -> Verdict {
    if pred.len() > super::MAX_ANSWER_BYTES || gold.len() > super::MAX_ANSWER_BYTES {
        return if pred.trim().to_lowercase() == gold.trim().to_lowercase() {
            Verdict::yes("exact")
        } else {
            Verdict::no("too_long")
        };
    }
    prepare();
    math_equal_until(pred, gold, opts, Instant::now() + opts.timeout)
}

fn math_equal_until(pred: &str, gold: &str, opts: &GradeOptions, deadline: Instant) -> Verdict {
    let Some(pt) = patterns() else {
        return Verdict::no("unavailable");
    };
    let ctx = Ctx { opts, deadline, pt };
    match ctx.math_equal(pred, gold, 0) {
        Ok(Some(rule)) => Verdict::yes(rule),
        Ok(None) => Verdict::no("different"),
        Err(EvalError::Timeout) => Verdict::timed_out(),
        Err(EvalError::Undefined) => Verdict::no("different"),
    }
}

type Cmp = Result<Option<&'static str>, EvalError>;

fn has_format(s: &str, start: char, end: char) -> bool {
    s.starts_with(start) && s.ends_with(end)
}

/// Python's `s[1:-1]` on characters.
fn inner(s: &str) -> &str {
    let mut it = s.char_indices();
    let start = it.next().map_or(0, |(_, c)| c.len_utf8());
    let end = s.char_indices().last().map_or(0, |(i, _)| i);
    s.get(start..end.max(start)).unwrap_or("")
}

fn is_matrix(s: &str) -> bool {
    (s.starts_with("\\begin{pmatrix}") || s.starts_with("\\begin{bmatrix}"))
        && (s.ends_with("\\end{pmatrix}") || s.ends_with("\\end{bmatrix}"))
}

/// `len(s.split("=")[0].strip()) <= 2` for a text with one `=`.
fn simple_equation(s: &str) -> bool {
    s.matches('=').count() == 1 && s.split('=').next().map_or(0, |l| l.trim().chars().count()) <= 2
}

impl Ctx<'_> {
    /// Qwen's `math_equal`, branch for branch: exact text, choice letter, numbers (decided there when both sides
    /// are numbers), brackets removed, lists, matrices, equations; every structural branch that does not succeed
    /// falls through to the symbolic comparison of the whole strings.
    fn math_equal(&self, pred: &str, reference: &str, depth: usize) -> Cmp {
        if depth > 8 {
            return Ok(None);
        }
        if Instant::now() > self.deadline {
            return Err(EvalError::Timeout);
        }
        if pred.trim().to_lowercase() == reference.trim().to_lowercase() {
            return Ok(Some("exact"));
        }
        if ["A", "B", "C", "D", "E"].contains(&reference)
            && choice_clean(pred, self.pt) == reference
        {
            return Ok(Some("choice"));
        }
        if let (Some(p), Some(r)) = (parse_digits(pred), parse_digits(reference)) {
            return Ok(self.numerical_equal(p, r).then_some("numeric"));
        }
        if pred.is_empty() {
            return Ok(None);
        }
        let reference = reference.trim();
        let prediction = pred.trim();
        let reference = if prediction.contains("pmatrix") && !reference.contains("pmatrix") {
            str_to_pmatrix(reference)
        } else {
            reference.to_string()
        };
        let (mut ps, mut rs) = (prediction, reference.as_str());
        let brackets = |c: char| matches!(c, '[' | ']' | '(' | ')');
        if (has_format(ps, '[', ']') && !rs.starts_with('('))
            || (has_format(ps, '(', ')') && !rs.starts_with('['))
        {
            ps = ps.trim_matches(brackets);
            rs = rs.trim_matches(brackets);
        }
        let drop = |s: &str| {
            s.chars()
                .filter(|c| !matches!(c, '{' | '}' | '(' | ')'))
                .collect::<String>()
                .to_lowercase()
        };
        if drop(ps) == drop(rs) {
            return Ok(Some("brackets"));
        }
        let is_list = |s: &str| self.pt.list_format.is_match(s);
        if is_list(prediction)
            && is_list(&reference)
            && self.lists_equal(prediction, &reference, depth)?
        {
            return Ok(Some("list"));
        }
        if is_matrix(prediction)
            && is_matrix(&reference)
            && self.matrices_equal(prediction, &reference, depth)?
        {
            return Ok(Some("matrix"));
        }
        let (pe, re) = (
            prediction.matches('=').count(),
            reference.matches('=').count(),
        );
        if pe == 1 && re == 1 {
            if self.equations(prediction, &reference)? {
                return Ok(Some("equation"));
            }
        } else if simple_equation(prediction) && re == 0 {
            let rhs = prediction.split('=').nth(1).unwrap_or("");
            if self.math_equal(rhs, &reference, depth + 1)?.is_some() {
                return Ok(Some("equation_rhs"));
            }
        } else if simple_equation(&reference) && pe == 0 {
            let rhs = reference.split('=').nth(1).unwrap_or("");
            if self.math_equal(prediction, rhs, depth + 1)?.is_some() {
                return Ok(Some("equation_rhs"));
            }
        }
        Ok(self.symbolic(prediction, &reference)?.then_some("symbolic"))
    }

    /// Both sides numbers: the gold, the gold / 100 and the gold × 100 (percent), each with `math.isclose` at the
    /// relative tolerance (Python floats: overflow gives infinity, and infinity is close only to itself).
    fn numerical_equal(&self, p: f64, r: f64) -> bool {
        let candidates: &[f64] = if self.opts.percent {
            &[r / 100.0, r, r * 100.0]
        } else {
            &[r]
        };
        candidates.iter().any(|c| isclose(*c, p, self.opts.rel_tol))
    }

    fn lists_equal(&self, p: &str, r: &str, depth: usize) -> Result<bool, EvalError> {
        let pp: Vec<&str> = inner(p).split(',').collect();
        let rp: Vec<&str> = inner(r).split(',').collect();
        if pp.len() != rp.len() {
            return Ok(false);
        }
        for (a, b) in pp.iter().zip(&rp) {
            if self.math_equal(a, b, depth + 1)?.is_none() {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn matrices_equal(&self, p: &str, r: &str, depth: usize) -> Result<bool, EvalError> {
        let body = |s: &str| -> Vec<String> {
            let start = "\\begin{pmatrix}".len();
            let end = s.len().saturating_sub("\\end{pmatrix}".len());
            s.get(start..end)
                .unwrap_or("")
                .split("\\\\")
                .map(|l| l.trim().to_string())
                .filter(|l| !l.is_empty())
                .collect()
        };
        let (pl, rl) = (body(p), body(r));
        if pl.len() != rl.len() {
            return Ok(false);
        }
        for (a, b) in pl.iter().zip(&rl) {
            let ap: Vec<&str> = a.split('&').collect();
            let bp: Vec<&str> = b.split('&').collect();
            if ap.len() != bp.len() {
                return Ok(false);
            }
            for (x, y) in ap.iter().zip(&bp) {
                if self.math_equal(x, y, depth + 1)?.is_none() {
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }

    /// Both sides `a = b`: (lhs − rhs) equal, or equal up to sign.
    fn equations(&self, p: &str, r: &str) -> Result<bool, EvalError> {
        let diff = |s: &str| -> String {
            let mut it = s.split('=');
            let l = it.next().unwrap_or("").trim();
            let rr = it.next().unwrap_or("").trim();
            format!("{l} - ({rr})")
        };
        let (dp, dr) = (diff(p), diff(r));
        Ok(self.symbolic(&dp, &dr)? || self.symbolic(&format!("-({dp})"), &dr)?)
    }

    fn symbolic(&self, p: &str, r: &str) -> Result<bool, EvalError> {
        sympy::symbolic_equal(p, r, self.opts.rel_tol, self.deadline)
    }
}

/// `{a,b}` → `\begin{pmatrix}a\b\end{pmatrix}` (as Qwen's `str_to_pmatrix`, single backslash included).
fn str_to_pmatrix(s: &str) -> String {
    let s = s.trim();
    let mut out = Vec::new();
    if let (Some(open), Some(close)) = (s.find('{'), s.rfind('}')) {
        if open < close {
            let m = &s[open..=close];
            if m.contains(',') {
                let inner = m.trim_matches(|c| c == '{' || c == '}');
                out.push(format!(
                    "\\begin{{pmatrix}}{}\\end{{pmatrix}}",
                    inner.replace(',', "\\")
                ));
            }
        }
    }
    out.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_number_semantics() {
        assert!(!isclose(f64::INFINITY, 1e10, 1e-4));
        assert!(isclose(1.0, 1.00001, 1e-4));
        assert_eq!(parse_digits("1,000"), Some(1000.0));
        assert_eq!(parse_digits("10\\%"), Some(0.1));
        assert_eq!(parse_digits("\\frac{1}{2}"), None);
        // Python's float(): underscores between digits only
        assert_eq!(parse_digits("52_8"), Some(528.0));
        assert_eq!(parse_digits("52_"), None);
        assert_eq!(parse_digits("5__2"), None);
        assert_eq!(parse_digits("1e400"), Some(f64::INFINITY));
        assert_eq!(choice_clean("(B).", patterns().unwrap()), "B");
    }
}
