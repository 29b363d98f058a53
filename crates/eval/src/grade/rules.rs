//! servebench's grading flow: clean, exact string, parse, compare (structure, value, symbolic), text fallback.

use std::time::{Duration, Instant};

use num_rational::BigRational;

use super::clean::clean;
use super::equal::Rules;
use super::eval::{eval, Env, EvalError};
use super::number::Value;
use super::parser::{parse, Syntax};
use super::{GradeOptions, Verdict};

/// Seed of the random points used by symbolic comparison (fixed: verdicts are reproducible).
pub(crate) const SYMBOLIC_SEED: u64 = 0x5e7e_be4c;

/// Letters and digits only, lower case: the form in which prose answers are compared.
fn squash(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace()).collect()
}

fn text_key(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_whitespace() && !matches!(c, '{' | '}' | '(' | ')' | '\\'))
        .flat_map(char::to_lowercase)
        .collect()
}

pub(crate) fn grade(pred: &str, gold: &str, opts: &GradeOptions, deadline: Instant) -> Verdict {
    let g = clean(gold);
    let p = clean(pred);
    if p.is_empty() {
        return Verdict::no("empty");
    }
    if squash(&g) == squash(&p) {
        return Verdict::yes("exact");
    }
    let syntax = Syntax::SERVEBENCH;
    let (pg, pp) = match (parse(&g, syntax), parse(&p, syntax)) {
        (Ok(a), Ok(b)) => (a, b),
        _ => {
            return if text_key(&g) == text_key(&p) {
                Verdict::yes("text")
            } else {
                Verdict::no("unparsed")
            };
        }
    };
    if pg.has_text || pp.has_text {
        return if text_key(&g) == text_key(&p) {
            Verdict::yes("text")
        } else {
            Verdict::no("text")
        };
    }
    let rules = Rules {
        rel_tol: opts.rel_tol,
        percent: opts.percent,
        interval_brackets: opts.strict_intervals,
        deadline,
        seed: SYMBOLIC_SEED,
        exact_rationals: true,
    };
    match rules.equal(&pg.expr, &pp.expr) {
        Ok(Some(rule)) => Verdict::yes(rule),
        Err(EvalError::Timeout) => Verdict::timed_out(),
        // the same expression written differently, which has no value to compare (`+\infty` and `\infty`)
        Ok(None) | Err(EvalError::Undefined) if pg.expr == pp.expr => {
            Verdict::yes("same_expression")
        }
        Ok(None) | Err(EvalError::Undefined) => Verdict::no("different"),
    }
}

/// The exact value of a plain numeric answer (`$1,234.50`, `18 dollars`, `-7`, `3/4`), for GSM8K-style grading.
pub(crate) fn numeric_value(s: &str) -> Option<BigRational> {
    let c = clean(s);
    let parsed = parse(&c, Syntax::SERVEBENCH).ok()?;
    let deadline = Instant::now() + Duration::from_millis(200);
    match eval(&parsed.expr, &mut Env::new(&[], deadline)).ok()? {
        Value::Exact(r) => Some(r),
        Value::Approx(_) => None,
    }
}
