//! Structural and numeric equality of parsed answers (servebench rules).

use std::time::Instant;

use num_bigint::BigInt;
use num_rational::BigRational;
use num_traits::{Signed, ToPrimitive};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::ast::{Expr, RelOp};
use super::eval::{eval, Env, EvalError};
use super::number::{values_equal, Value};
use super::realset::{is_set_like, sets_equal, to_set};

/// Result of a comparison: `Ok(Some(rule))` equal, `Ok(None)` not equal, `Err(Timeout)` out of time.
pub(crate) type Cmp = Result<Option<&'static str>, EvalError>;

/// Settings the comparison needs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rules {
    pub rel_tol: f64,
    pub percent: bool,
    pub interval_brackets: bool,
    pub deadline: Instant,
    pub seed: u64,
    /// Integers and fractions of integers compare exactly (Qwen's grader uses the tolerance everywhere).
    pub exact_rationals: bool,
}

const POINTS: usize = 6;

fn timeout_or_none(e: EvalError) -> Cmp {
    match e {
        EvalError::Timeout => Err(EvalError::Timeout),
        EvalError::Undefined => Ok(None),
    }
}

/// Is `e` a lone variable (the left side of `x = 5`)?
fn lone_var(e: &Expr) -> bool {
    matches!(e, Expr::Var(_))
}

/// `x = 5` → `5`; `x \in [1,2]` → `[1,2]`; otherwise None.
pub(crate) fn rhs_of_definition(e: &Expr) -> Option<&Expr> {
    match e {
        Expr::Rel(operands, ops)
            if ops.len() == 1
                && matches!(ops[0], RelOp::Eq | RelOp::In)
                && lone_var(&operands[0]) =>
        {
            operands.get(1)
        }
        _ => None,
    }
}

impl Rules {
    pub(crate) fn check_time(&self) -> Result<(), EvalError> {
        if Instant::now() > self.deadline {
            Err(EvalError::Timeout)
        } else {
            Ok(())
        }
    }

    /// Compares gold `g` with prediction `p`.
    pub(crate) fn equal(&self, g: &Expr, p: &Expr) -> Cmp {
        self.check_time()?;
        // definitions: `x = 5` vs `5`, `x \in [2,5)` vs `[2,5)`
        match (rhs_of_definition(g), rhs_of_definition(p)) {
            (Some(gr), None) if !matches!(p, Expr::Rel(..)) => {
                return self.equal(gr, p).map(|r| r.map(|_| "equation_rhs"))
            }
            (None, Some(pr)) if !matches!(g, Expr::Rel(..)) => {
                return self.equal(g, pr).map(|r| r.map(|_| "equation_rhs"))
            }
            _ => {}
        }
        if let (Expr::Rel(go, gops), Expr::Rel(po, pops)) = (g, p) {
            if let Some(r) = self.relations(go, gops, po, pops)? {
                return Ok(Some(r));
            }
            // inequalities in different form: compare as sets below
            if !(is_set_like(g) && is_set_like(p)) {
                return Ok(None);
            }
        }
        if is_set_like(g) || is_set_like(p) {
            return self.as_sets(g, p);
        }
        match (g, p) {
            (Expr::Tuple(a), Expr::Tuple(b))
            | (Expr::Tuple(a), Expr::List(b))
            | (Expr::List(a), Expr::Tuple(b)) => self.ordered(a, b, "tuple"),
            (Expr::Set(a), Expr::Set(b))
            | (Expr::Set(a), Expr::List(b))
            | (Expr::List(a), Expr::Set(b))
            | (Expr::List(a), Expr::List(b)) => self.unordered(a, b, "set"),
            (Expr::Matrix(a), Expr::Matrix(b)) => {
                if a.len() != b.len() || a.iter().zip(b).any(|(x, y)| x.len() != y.len()) {
                    return Ok(None);
                }
                let fa: Vec<Expr> = a.iter().flatten().cloned().collect();
                let fb: Vec<Expr> = b.iter().flatten().cloned().collect();
                self.ordered(&fa, &fb, "matrix")
            }
            (Expr::Matrix(m), Expr::Tuple(t)) | (Expr::Tuple(t), Expr::Matrix(m)) => {
                match vector_entries(m) {
                    Some(v) => self.ordered(&v, t, "vector"),
                    None => Ok(None),
                }
            }
            (Expr::Set(a), x) | (Expr::List(a), x) if x.is_scalar() && !x.has_plus_minus() => {
                if a.len() == 1 {
                    self.equal(&a[0], x)
                } else {
                    Ok(None)
                }
            }
            (x, Expr::Set(a)) | (x, Expr::List(a)) if x.is_scalar() && !x.has_plus_minus() => {
                if a.len() == 1 {
                    self.equal(x, &a[0])
                } else {
                    Ok(None)
                }
            }
            (Expr::Based(gd, gb), Expr::Based(pd, pb)) => {
                Ok(based_equal(gd, gb, pd, pb).then_some("base"))
            }
            // the gold is written in base b (the question asked for base b): its digits without the subscript
            // are the same answer (`4210` for `4210_{5}`); the decimal value (`555`) is not
            (Expr::Based(gd, _), Expr::Int(n)) if !n.is_negative() => {
                Ok(based_equal(gd, "", &n.to_string(), "").then_some("base_digits"))
            }
            (Expr::Based(_, b), _) | (_, Expr::Based(_, b)) if b != "10" => Ok(None),
            _ if g.has_plus_minus() || p.has_plus_minus() => {
                let items = |e: &Expr| match e {
                    Expr::List(v) | Expr::Set(v) => v.clone(),
                    other => vec![other.clone()],
                };
                self.unordered(&items(g), &items(p), "plus_minus")
            }
            (Expr::List(a), _) if p.is_scalar() => self.unordered(a, &expand_pm(p), "plus_minus"),
            (_, Expr::List(b)) if g.is_scalar() => self.unordered(&expand_pm(g), b, "plus_minus"),
            _ if g.is_scalar() && p.is_scalar() => self.scalars(g, p),
            _ => Ok(None),
        }
    }

    fn relations(&self, go: &[Expr], gops: &[RelOp], po: &[Expr], pops: &[RelOp]) -> Cmp {
        if gops.len() == 1 && pops.len() == 1 && gops[0] == RelOp::Eq && pops[0] == RelOp::Eq {
            // same lone variable on the left: compare right sides
            if lone_var(&go[0]) && go[0] == po[0] {
                return self.equal(&go[1], &po[1]).map(|r| r.map(|_| "equation"));
            }
            return self.equations_proportional(&go[0], &go[1], &po[0], &po[1]);
        }
        if gops == pops && go.len() == po.len() {
            for (a, b) in go.iter().zip(po) {
                if self.equal(a, b)?.is_none() {
                    return Ok(None);
                }
            }
            return Ok(Some("relation"));
        }
        Ok(None)
    }

    /// `y = 2x + 3` vs `2x - y + 3 = 0`: (lhs − rhs) of one is a constant non-zero multiple of the other's.
    fn equations_proportional(&self, gl: &Expr, gr: &Expr, pl: &Expr, pr: &Expr) -> Cmp {
        let dg = Expr::Add(vec![gl.clone(), Expr::Neg(Box::new(gr.clone()))]);
        let dp = Expr::Add(vec![pl.clone(), Expr::Neg(Box::new(pr.clone()))]);
        let mut names = Vec::new();
        dg.vars(&mut names);
        dp.vars(&mut names);
        names.sort();
        let mut ratio: Option<Value> = None;
        let mut ok_points = 0;
        for k in 0..POINTS {
            let point = self.point(&names, k);
            let mut env_g = Env::new(&point, self.deadline);
            let mut env_p = Env::new(&point, self.deadline);
            let (vg, vp) = match (eval(&dg, &mut env_g), eval(&dp, &mut env_p)) {
                (Ok(a), Ok(b)) => (a, b),
                (Err(EvalError::Timeout), _) | (_, Err(EvalError::Timeout)) => {
                    return Err(EvalError::Timeout)
                }
                _ => continue,
            };
            let zero = Value::Exact(BigRational::from_integer(BigInt::from(0)));
            let g_zero = values_equal(&vg, &zero, self.rel_tol, true);
            let p_zero = values_equal(&vp, &zero, self.rel_tol, true);
            if g_zero != p_zero {
                return Ok(None);
            }
            if g_zero {
                continue;
            }
            let r = match (&vg, &vp) {
                (Value::Exact(a), Value::Exact(b)) => Value::Exact(a / b),
                _ => match vg.to_c().div(vp.to_c()) {
                    Some(c) => Value::Approx(c),
                    None => return Ok(None),
                },
            };
            match &ratio {
                None => ratio = Some(r),
                Some(r0) => {
                    if !values_equal(r0, &r, self.rel_tol, false) {
                        return Ok(None);
                    }
                }
            }
            ok_points += 1;
        }
        Ok((ok_points >= 2 || (ok_points >= 1 && names.is_empty())).then_some("equation"))
    }

    fn as_sets(&self, g: &Expr, p: &Expr) -> Cmp {
        let a = match to_set(g, self.deadline) {
            Ok(s) => s,
            Err(e) => return timeout_or_none(e),
        };
        let b = match to_set(p, self.deadline) {
            Ok(s) => s,
            Err(e) => return timeout_or_none(e),
        };
        Ok(sets_equal(&a, &b, self.rel_tol, self.interval_brackets).then_some("interval"))
    }

    fn ordered(&self, a: &[Expr], b: &[Expr], rule: &'static str) -> Cmp {
        if a.len() != b.len() {
            return Ok(None);
        }
        for (x, y) in a.iter().zip(b) {
            if self.equal(x, y)?.is_none() {
                return Ok(None);
            }
        }
        Ok(Some(rule))
    }

    /// Same elements in any order (± expanded), each matched once.
    fn unordered(&self, a: &[Expr], b: &[Expr], rule: &'static str) -> Cmp {
        let a: Vec<Expr> = a.iter().flat_map(expand_pm).collect();
        let b: Vec<Expr> = b.iter().flat_map(expand_pm).collect();
        if a.len() != b.len() || a.len() > 64 {
            return Ok(None);
        }
        let mut used = vec![false; b.len()];
        for x in &a {
            let mut found = false;
            for (j, y) in b.iter().enumerate() {
                if !used[j] && self.equal(x, y)?.is_some() {
                    used[j] = true;
                    found = true;
                    break;
                }
            }
            if !found {
                return Ok(None);
            }
        }
        Ok(Some(rule))
    }

    /// Scalars: percent forms, then values (exact, numeric) or random points (symbolic).
    fn scalars(&self, g: &Expr, p: &Expr) -> Cmp {
        if let Some(r) = self.values(g, p)? {
            return Ok(Some(r));
        }
        if self.percent {
            // `10\%` written for 10 or for 0.1: both accepted when one side carries the percent sign
            let strip = |e: &Expr| match e {
                Expr::Percent(inner) => Some(inner.as_ref().clone()),
                _ => None,
            };
            if let Some(gi) = strip(g) {
                if self.values(&gi, p)?.is_some() {
                    return Ok(Some("percent"));
                }
            }
            if let Some(pi) = strip(p) {
                if self.values(g, &pi)?.is_some() {
                    return Ok(Some("percent"));
                }
            }
        }
        Ok(None)
    }

    fn values(&self, g: &Expr, p: &Expr) -> Cmp {
        let mut names = Vec::new();
        g.vars(&mut names);
        p.vars(&mut names);
        names.sort();
        if names.is_empty() {
            let mut eg = Env::new(&[], self.deadline);
            let mut ep = Env::new(&[], self.deadline);
            let (vg, vp) = match (eval(g, &mut eg), eval(p, &mut ep)) {
                (Ok(a), Ok(b)) => (a, b),
                (Err(EvalError::Timeout), _) | (_, Err(EvalError::Timeout)) => {
                    return Err(EvalError::Timeout)
                }
                _ => return Ok(None),
            };
            let exact = self.exact_rationals && !eg.inexact && !ep.inexact;
            let rule = if exact && matches!((&vg, &vp), (Value::Exact(_), Value::Exact(_))) {
                "exact_value"
            } else {
                "numeric"
            };
            let equal = values_equal(&vg, &vp, self.rel_tol, exact)
                && (!self.exact_rationals || within_written_precision(g, p, &vg, &vp));
            return Ok(equal.then_some(rule));
        }
        // symbolic: equal at several seeded random points
        let mut agreed = 0;
        for k in 0..POINTS {
            let point = self.point(&names, k);
            let mut eg = Env::new(&point, self.deadline);
            let mut ep = Env::new(&point, self.deadline);
            match (eval(g, &mut eg), eval(p, &mut ep)) {
                (Ok(a), Ok(b)) => {
                    let exact = !eg.inexact && !ep.inexact;
                    if !values_equal(&a, &b, self.rel_tol, exact) {
                        return Ok(None);
                    }
                    agreed += 1;
                }
                (Err(EvalError::Timeout), _) | (_, Err(EvalError::Timeout)) => {
                    return Err(EvalError::Timeout)
                }
                (Ok(_), Err(_)) | (Err(_), Ok(_)) => continue,
                (Err(_), Err(_)) => continue,
            }
        }
        Ok((agreed >= 3).then_some("symbolic"))
    }

    /// The k-th random point: each variable a positive rational in (0, 8) with a small denominator.
    fn point(&self, names: &[String], k: usize) -> Vec<(String, BigRational)> {
        let mut rng = StdRng::seed_from_u64(self.seed.wrapping_add(k as u64 * 7919));
        names
            .iter()
            .map(|n| {
                let den: i64 = rng.gen_range(2..=13);
                let num: i64 = rng.gen_range(1..=8 * den - 1);
                (n.clone(), BigRational::new(num.into(), den.into()))
            })
            .collect()
    }
}

/// Entries of an n×1 or 1×n matrix.
fn vector_entries(m: &[Vec<Expr>]) -> Option<Vec<Expr>> {
    if m.len() == 1 {
        return Some(m[0].clone());
    }
    if m.iter().all(|r| r.len() == 1) {
        return Some(m.iter().map(|r| r[0].clone()).collect());
    }
    None
}

/// The unit of the last written digit of a bare decimal literal (`9999.857142857143` → 10⁻¹², `0.33` → 10⁻²,
/// `3.50` → 10⁻¹: trailing zeros claim nothing), or `None` for anything else.
fn decimal_unit(e: &Expr) -> Option<BigRational> {
    let r = match e {
        Expr::Dec(r) => r,
        Expr::Neg(inner) => return decimal_unit(inner),
        _ => return None,
    };
    let ten = BigInt::from(10);
    let mut unit = BigRational::from_integer(BigInt::from(1));
    let mut scaled = r.clone();
    for _ in 0..400 {
        if scaled.is_integer() {
            return Some(unit);
        }
        scaled *= BigRational::from_integer(ten.clone());
        unit /= BigRational::from_integer(ten.clone());
    }
    None
}

/// A decimal answer claims the precision it is written with: it equals a value only when the two differ by less
/// than one unit of its last digit (so rounding and truncation pass: `0.33333` and `1.7320` for `\frac13` and
/// `\sqrt3`, but `9999.857142857143` is not `10{,}000`). Where both sides are decimals the coarser one decides
/// (`0.33333` for a gold of `0.3333`). The relative tolerance still applies on top.
fn within_written_precision(g: &Expr, p: &Expr, vg: &Value, vp: &Value) -> bool {
    let unit = match (decimal_unit(g), decimal_unit(p)) {
        (None, None) => return true,
        (Some(a), None) | (None, Some(a)) => a,
        (Some(a), Some(b)) => a.max(b),
    };
    match (vg, vp) {
        (Value::Exact(x), Value::Exact(y)) => (x - y).abs() < unit,
        _ => {
            let diff = vg.to_c().sub(vp.to_c()).abs();
            unit.to_f64().is_none_or(|u| diff < u)
        }
    }
}

fn based_equal(gd: &str, gb: &str, pd: &str, pb: &str) -> bool {
    let g = gd.trim_start_matches('0');
    let p = pd.trim_start_matches('0');
    g.eq_ignore_ascii_case(p) && gb == pb
}

/// `a ± b` → [a + b, a − b] (recursively, at most 8 results).
pub(crate) fn expand_pm(e: &Expr) -> Vec<Expr> {
    if !e.has_plus_minus() {
        return vec![e.clone()];
    }
    let mut out = Vec::new();
    expand_into(e, &mut out);
    out.truncate(8);
    out
}

fn expand_into(e: &Expr, out: &mut Vec<Expr>) {
    match e {
        Expr::PlusMinus(a, b) => {
            for x in expand_pm(a) {
                for y in expand_pm(b) {
                    out.push(Expr::Add(vec![x.clone(), y.clone()]));
                    out.push(Expr::Add(vec![x.clone(), Expr::Neg(Box::new(y))]));
                }
            }
        }
        Expr::Neg(a) => out.extend(expand_pm(a).into_iter().map(|x| Expr::Neg(Box::new(x)))),
        Expr::Add(v) | Expr::Mul(v) => {
            // expand the first child that has ±
            let Some(i) = v.iter().position(Expr::has_plus_minus) else {
                out.push(e.clone());
                return;
            };
            for x in expand_pm(&v[i]) {
                let mut w = v.clone();
                w[i] = x;
                let rebuilt = if matches!(e, Expr::Add(_)) {
                    Expr::Add(w)
                } else {
                    Expr::Mul(w)
                };
                out.extend(expand_pm(&rebuilt));
            }
        }
        Expr::Div(a, b) => {
            for x in expand_pm(a) {
                for y in expand_pm(b) {
                    out.push(Expr::Div(Box::new(x.clone()), Box::new(y)));
                }
            }
        }
        other => out.push(other.clone()),
    }
}
