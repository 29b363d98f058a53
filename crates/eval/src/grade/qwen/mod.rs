//! `--grader qwen`: the behaviour of Qwen2.5-Math's `evaluation/grader.py` `math_equal` after its `parser.py`
//! `strip_string`, quirks included (reimplemented from reading that code; sympy's symbolic step is approximated by
//! servebench's evaluator with LaTeX-only parsing, where `sqrt(3)` and `pi` are products of letters as in
//! `parse_latex`).
//!
//! Quirks reproduced: unit words (including single letters such as `a`, `t`, `m`) deleted wherever they stand
//! alone, a trailing `\text{…}` deleted, `and` deleted everywhere, digit-only answers lose leading zeros, percent
//! accepted ×100 and ÷100 for any pair of numbers, relative tolerance 1e-4 even for integers, bracket type of
//! intervals ignored, list elements split naïvely at commas, `x=`/`y=`/`z=` removed.

use std::time::Instant;

use super::equal::Rules;
use super::eval::EvalError;
use super::parser::{parse, Syntax};
use super::{GradeOptions, Verdict};

mod strip;

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

pub(crate) fn grade(pred: &str, gold: &str, opts: &GradeOptions, deadline: Instant) -> Verdict {
    let Some(pt) = patterns() else {
        return Verdict::no("unavailable");
    };
    // Qwen's pipeline strips the prediction twice (in extract_answer and again in run_execute), the gold once.
    let p = strip_string(&strip_string(pred));
    let g = strip_string(gold);
    let ctx = Ctx { opts, deadline, pt };
    match ctx.math_equal(&p, &g, 0) {
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

impl Ctx<'_> {
    fn math_equal(&self, pred: &str, reference: &str, depth: usize) -> Cmp {
        if depth > 8 || Instant::now() > self.deadline {
            return if depth > 8 {
                Ok(None)
            } else {
                Err(EvalError::Timeout)
            };
        }
        if pred.trim().to_lowercase() == reference.trim().to_lowercase() {
            return Ok(Some("exact"));
        }
        if ["A", "B", "C", "D", "E"].contains(&reference)
            && choice_clean(pred, self.pt) == reference
        {
            return Ok(Some("choice"));
        }
        if self.numerical_equal(pred, reference) {
            return Ok(Some("numeric"));
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
        let (mut ps, mut rs) = (prediction.to_string(), reference.clone());
        if (has_format(&ps, '[', ']') && !has_format(&rs, '(', ')'))
            || (has_format(&ps, '(', ')') && !has_format(&rs, '[', ']'))
        {
            ps = ps
                .trim_matches(|c| matches!(c, '[' | ']' | '(' | ')'))
                .to_string();
            rs = rs
                .trim_matches(|c| matches!(c, '[' | ']' | '(' | ')'))
                .to_string();
        }
        let drop = |s: &str| {
            s.chars()
                .filter(|c| !matches!(c, '{' | '}' | '(' | ')'))
                .collect::<String>()
                .to_lowercase()
        };
        if drop(&ps) == drop(&rs) {
            return Ok(Some("brackets"));
        }
        let is_list = |s: &str| self.pt.list_format.is_match(s);
        if is_list(prediction) && is_list(&reference) {
            return self.compare_lists(prediction, &reference, depth);
        }
        let is_matrix = |s: &str| {
            (s.starts_with("\\begin{pmatrix}") || s.starts_with("\\begin{bmatrix}"))
                && (s.ends_with("\\end{pmatrix}") || s.ends_with("\\end{bmatrix}"))
        };
        if is_matrix(prediction) && is_matrix(&reference) {
            return self.compare_matrices(prediction, &reference, depth);
        }
        let pe = prediction.matches('=').count();
        let re = reference.matches('=').count();
        let simple = |s: &str| {
            s.matches('=').count() == 1
                && s.split('=').next().map_or(0, |l| l.trim().chars().count()) <= 2
        };
        if pe == 1 && re == 1 {
            return self.equations(prediction, &reference);
        } else if simple(prediction) && re == 0 {
            let rhs = prediction.split('=').nth(1).unwrap_or("");
            return self.math_equal(rhs, &reference, depth + 1);
        } else if simple(&reference) && pe == 0 {
            let rhs = reference.split('=').nth(1).unwrap_or("");
            return self.math_equal(prediction, rhs, depth + 1);
        }
        self.symbolic(prediction, &reference)
    }

    fn numerical_equal(&self, pred: &str, reference: &str) -> bool {
        let (Some(p), Some(r)) = (parse_digits(pred), parse_digits(reference)) else {
            return false;
        };
        let candidates: Vec<f64> = if self.opts.percent {
            vec![r / 100.0, r, r * 100.0]
        } else {
            vec![r]
        };
        candidates
            .into_iter()
            .any(|c| isclose(c, p, self.opts.rel_tol))
    }

    fn compare_lists(&self, p: &str, r: &str, depth: usize) -> Cmp {
        let inner = |s: &str| -> String {
            let chars: Vec<char> = s.chars().collect();
            if chars.len() < 2 {
                String::new()
            } else {
                chars[1..chars.len() - 1].iter().collect()
            }
        };
        let (pi, ri) = (inner(p), inner(r));
        let pp: Vec<&str> = pi.split(',').collect();
        let rp: Vec<&str> = ri.split(',').collect();
        if pp.len() != rp.len() {
            return Ok(None);
        }
        for (a, b) in pp.iter().zip(&rp) {
            if self.math_equal(a, b, depth + 1)?.is_none() {
                return Ok(None);
            }
        }
        Ok(Some("list"))
    }

    fn compare_matrices(&self, p: &str, r: &str, depth: usize) -> Cmp {
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
            return Ok(None);
        }
        for (a, b) in pl.iter().zip(&rl) {
            let ap: Vec<&str> = a.split('&').collect();
            let bp: Vec<&str> = b.split('&').collect();
            if ap.len() != bp.len() {
                return Ok(None);
            }
            for (x, y) in ap.iter().zip(&bp) {
                if self.math_equal(x, y, depth + 1)?.is_none() {
                    return Ok(None);
                }
            }
        }
        Ok(Some("matrix"))
    }

    /// Both sides `a = b`: (lhs − rhs) equal up to sign.
    fn equations(&self, p: &str, r: &str) -> Cmp {
        let diff = |s: &str| -> String {
            let mut it = s.split('=');
            let l = it.next().unwrap_or("").trim();
            let rr = it.next().unwrap_or("").trim();
            format!("{l} - ({rr})")
        };
        let (dp, dr) = (diff(p), diff(r));
        if self.symbolic(&dp, &dr)?.is_some() || self.symbolic(&format!("-({dp})"), &dr)?.is_some()
        {
            return Ok(Some("equation"));
        }
        Ok(None)
    }

    /// Stand-in for sympy's `symbolic_equal`: LaTeX-only parsing, then value or random-point comparison.
    fn symbolic(&self, p: &str, r: &str) -> Cmp {
        let syntax = Syntax { ascii_names: false };
        let (Ok(a), Ok(b)) = (parse(p, syntax), parse(r, syntax)) else {
            return Ok(None);
        };
        if !(a.expr.is_scalar() && b.expr.is_scalar()) {
            return Ok((a.expr == b.expr).then_some("symbolic"));
        }
        let rules = Rules {
            rel_tol: self.opts.rel_tol,
            percent: false,
            interval_brackets: false,
            deadline: self.deadline,
            seed: super::rules::SYMBOLIC_SEED,
            exact_rationals: false,
        };
        rules.equal(&b.expr, &a.expr)
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
        assert_eq!(choice_clean("(B).", patterns().unwrap()), "B");
    }
}
