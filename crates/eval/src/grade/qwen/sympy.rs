//! The stand-in for Qwen's `symbolic_equal` (sympy 1.12): each side is read as `parse_latex` reads it (the valid
//! prefix kept, `\pi`/`e`/`i` plain symbols, juxtaposition a product), else as Python's `parse_expr` reads a set,
//! tuple or list of numbers, else kept as text; then equal when the two readings are the same, when their values
//! agree (at random points where symbols occur), or when both values overflow to the same infinity, as
//! `float(N(x))` does.

use std::time::Instant;

use num_rational::BigRational;
use num_traits::ToPrimitive;

use super::super::ast::{Expr, Func};
use super::super::equal::Rules;
use super::super::eval::{eval, Env, EvalError};
use super::super::number::Value;
use super::super::parser::{parse, Syntax};

/// What `_parse` returned for one side.
#[derive(Debug, PartialEq)]
enum Reading {
    Latex(Expr),
    /// A Python set (`{3,2,1}`): sympy compares the elements as a set.
    PySet(Vec<BigRational>),
    /// A Python tuple or list, by kind (`(`/`[`) and elements in order.
    PySeq(char, Vec<BigRational>),
    Text(String),
}

fn read(s: &str, deadline: Instant) -> Reading {
    // `_parse` tries `s` with `\\` replaced by `\` first, then `s` itself
    let unescaped = s.replace("\\\\", "\\");
    for candidate in [unescaped.as_str(), s] {
        if let Ok(p) = parse(candidate, Syntax::SYMPY) {
            return Reading::Latex(p.expr);
        }
    }
    python_literal(s, deadline).unwrap_or_else(|| Reading::Text(s.to_string()))
}

/// `parse_expr` on a Python set, tuple or list literal of plain numbers (`{3,2,1}`, `(1,2)`, `[0.5,1]`).
fn python_literal(s: &str, deadline: Instant) -> Option<Reading> {
    let s = s.trim();
    let open = s.chars().next()?;
    let close = match open {
        '{' => '}',
        '(' => ')',
        '[' => ']',
        _ => return None,
    };
    let body = s.strip_prefix(open)?.strip_suffix(close)?;
    let arithmetic = |c: char| c.is_ascii_digit() || matches!(c, '.' | '+' | '-' | '*' | '/' | ' ');
    if body.contains("**") || !body.chars().all(|c| arithmetic(c) || c == ',') {
        return None;
    }
    let mut items = Vec::new();
    for part in body.split(',') {
        if part.trim().is_empty() {
            // `(1,)` is a tuple, `{1,}` a set; an empty element elsewhere is a syntax error
            continue;
        }
        let e = parse(part, Syntax::SERVEBENCH).ok()?.expr;
        match eval(&e, &mut Env::new(&[], deadline)) {
            Ok(Value::Exact(r)) => items.push(r),
            _ => return None,
        }
    }
    if items.is_empty() || (open == '(' && items.len() == 1 && !body.contains(',')) {
        return None;
    }
    Some(if open == '{' {
        items.sort();
        items.dedup();
        Reading::PySet(items)
    } else {
        Reading::PySeq(open, items)
    })
}

/// `float(N(e))` for an expression without symbols: IEEE arithmetic, so that a value too large for a float is an
/// infinity (`10^{10^{10}}`), as in Python. `None` where symbols or functions occur or the value is undefined.
fn float_value(e: &Expr) -> Option<f64> {
    let v = match e {
        Expr::Int(n) => n.to_f64()?,
        Expr::Dec(r) => r.to_f64()?,
        Expr::Infinity => f64::INFINITY,
        Expr::Neg(a) => -float_value(a)?,
        Expr::Add(v) => v.iter().map(float_value).sum::<Option<f64>>()?,
        Expr::Mul(v) => v.iter().map(float_value).product::<Option<f64>>()?,
        // x/0 and 0^-n are sympy's complex infinity, which has no float
        Expr::Div(a, b) => {
            let d = float_value(b)?;
            if d == 0.0 {
                return None;
            }
            float_value(a)? / d
        }
        Expr::Pow(a, b) => {
            let (x, y) = (float_value(a)?, float_value(b)?);
            if x == 0.0 && y < 0.0 {
                return None;
            }
            x.powf(y)
        }
        Expr::Call(Func::Sqrt, a) if a.len() == 1 => float_value(&a[0])?.sqrt(),
        _ => return None,
    };
    (!v.is_nan()).then_some(v)
}

/// Qwen's `symbolic_equal(a, b)`, approximated (see the module).
pub(super) fn symbolic_equal(
    a: &str,
    b: &str,
    rel_tol: f64,
    deadline: Instant,
) -> Result<bool, EvalError> {
    let (ra, rb) = (read(a, deadline), read(b, deadline));
    if ra == rb {
        return Ok(true);
    }
    let (Reading::Latex(ea), Reading::Latex(eb)) = (&ra, &rb) else {
        return Ok(false);
    };
    if !(ea.is_scalar() && eb.is_scalar()) {
        return Ok(false);
    }
    if let (Some(x), Some(y)) = (float_value(ea), float_value(eb)) {
        if x.is_infinite() && x == y {
            return Ok(true);
        }
    }
    let rules = Rules {
        rel_tol,
        percent: false,
        interval_brackets: false,
        deadline,
        seed: super::super::rules::SYMBOLIC_SEED,
        exact_rationals: false,
    };
    Ok(rules.equal(eb, ea)?.is_some())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn eq(a: &str, b: &str) -> bool {
        symbolic_equal(a, b, 1e-4, Instant::now() + Duration::from_secs(5)).unwrap()
    }

    /// Each expectation is sympy 1.12's (`symbolic_equal` run in Python).
    #[test]
    fn readings_as_sympy() {
        assert!(eq("1", "1,-2")); // parse_latex("1,-2") is 1
        assert!(eq("4210", "4210_{5}"));
        assert!(eq("12^{\\mathrm{}}grade", "12"));
        assert!(eq("2]\\cup[3", "2)\\cup(3"));
        assert!(eq("5)(2", "+5)(b+2"));
        assert!(!eq("15\\frac{39}{40}", "\\frac{639}{40}")); // a product: 15·39/40
        assert!(!eq("2\\frac{1}{3}", "\\frac{7}{3}"));
        assert!(eq("{3,2,1}", "{1,2,3}")); // parse_expr: Python sets
        assert!(!eq("(1,2)", "(2,1)"));
        assert!(eq("+\\infty", "\\infty"));
        assert!(eq("10^{10^{10}}+1", "10^{10^{10}}")); // both floats overflow to inf
        assert!(!eq("\\pi", "3.14159265")); // \pi is a symbol
        assert!(!eq("e^{i\\pi}", "-1"));
        assert!(eq("2\\pi", "\\pi+\\pi"));
        assert!(eq("\\frac{x}{7}+\\frac{2}{7}", "\\frac{x+2}{7}"));
        assert!(!eq("sqrt(3)", "\\sqrt{3}"));
        assert!(!eq("[-2,7]", "[-2,8]"));
        assert!(!eq("\\frac{1}{0}", "\\infty")); // zoo, not oo
        assert!(!eq("1e400", "10^{400}")); // 1·e·400
        assert!(eq("2^10", "1024")); // a whole number after ^
        assert!(eq("1,000", "10^3")); // thousands groups are one number
        assert!(!eq("0\\overline{3}", "\\frac{1}{3}")); // 0·conjugate(3)
        assert!(!eq("\\varnothing", "{}"));
        assert!(eq("\\log 8", "\\ln 8")); // natural logarithm
        assert!(!eq("\\log e^{2}", "2")); // e is a symbol
        assert!(eq("\\log_{2} 8", "3"));
        assert!(!eq("1\\pm\\sqrt{2}", "1+\\sqrt{2}")); // \pm is a symbol
    }
}
