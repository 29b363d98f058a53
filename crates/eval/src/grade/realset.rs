//! Subsets of the real line: intervals, unions, finite sets, `\mathbb{R}`, set differences and inequalities in
//! one normal form (sorted, merged pieces), so `(0,9) \cup (9,36)` equals `(0,36) \setminus \{9\}`.

use std::cmp::Ordering;
use std::time::Instant;

use super::ast::{Expr, RelOp, SetOp};
use super::eval::{eval, Env, EvalError};
use super::number::{values_equal, Value};

/// One end of a piece: a finite value or ±∞.
#[derive(Debug, Clone)]
pub(crate) enum End {
    NegInf,
    PosInf,
    At(Value, f64),
}

impl End {
    fn key(&self) -> f64 {
        match self {
            End::NegInf => f64::NEG_INFINITY,
            End::PosInf => f64::INFINITY,
            End::At(_, f) => *f,
        }
    }
}

/// A piece `lo..hi` with closedness flags; a single point has lo = hi, both closed.
#[derive(Debug, Clone)]
pub(crate) struct Piece {
    pub lo: End,
    pub lo_closed: bool,
    pub hi: End,
    pub hi_closed: bool,
}

/// A normalised set: disjoint pieces in increasing order.
#[derive(Debug, Clone, Default)]
pub(crate) struct RealSet {
    pub pieces: Vec<Piece>,
}

/// Does this expression look like a subset of the real line (not a plain tuple)?
pub(crate) fn is_set_like(e: &Expr) -> bool {
    match e {
        Expr::Interval(..) | Expr::SetOp(..) | Expr::Reals | Expr::EmptySet => true,
        Expr::Rel(operands, ops) => inequality_var(operands, ops).is_some(),
        _ => false,
    }
}

/// The variable of `x < 3`, `2 \le x < 5`, `x \ne 1` (a lone variable against bounds without it).
fn inequality_var(operands: &[Expr], ops: &[RelOp]) -> Option<usize> {
    if ops
        .iter()
        .any(|o| matches!(o, RelOp::Eq | RelOp::In | RelOp::To | RelOp::Approx))
    {
        return None;
    }
    let vars: Vec<usize> = operands
        .iter()
        .enumerate()
        .filter(|(_, e)| matches!(e, Expr::Var(_)))
        .map(|(i, _)| i)
        .collect();
    if vars.len() != 1 {
        return None;
    }
    let idx = vars[0];
    let mut names = Vec::new();
    for (i, o) in operands.iter().enumerate() {
        if i != idx {
            o.vars(&mut names);
        }
    }
    names.is_empty().then_some(idx)
}

fn end_of(e: &Expr, deadline: Instant, neg_ok: bool) -> Result<End, EvalError> {
    match e {
        Expr::Infinity => return Ok(End::PosInf),
        Expr::Neg(inner) if matches!(inner.as_ref(), Expr::Infinity) && neg_ok => {
            return Ok(End::NegInf)
        }
        Expr::Add(v) if v.len() == 1 => return end_of(&v[0], deadline, neg_ok),
        _ => {}
    }
    let mut env = Env::new(&[], deadline);
    let v = eval(e, &mut env)?;
    let f = v.to_real().ok_or(EvalError::Undefined)?;
    Ok(End::At(v, f))
}

fn point(v: Value, f: f64) -> Piece {
    Piece {
        lo: End::At(v.clone(), f),
        lo_closed: true,
        hi: End::At(v, f),
        hi_closed: true,
    }
}

/// Converts a set-like expression (or a 2-tuple read as an open interval, or a finite set) into a `RealSet`.
pub(crate) fn to_set(e: &Expr, deadline: Instant) -> Result<RealSet, EvalError> {
    let pieces = match e {
        Expr::Interval(lc, lo, hi, rc) => vec![Piece {
            lo: end_of(lo, deadline, true)?,
            lo_closed: *lc,
            hi: end_of(hi, deadline, true)?,
            hi_closed: *rc,
        }],
        Expr::Tuple(items) if items.len() == 2 => {
            vec![Piece {
                lo: end_of(&items[0], deadline, true)?,
                lo_closed: false,
                hi: end_of(&items[1], deadline, true)?,
                hi_closed: false,
            }]
        }
        Expr::Reals => vec![Piece {
            lo: End::NegInf,
            lo_closed: false,
            hi: End::PosInf,
            hi_closed: false,
        }],
        Expr::EmptySet => vec![],
        Expr::Set(items) | Expr::List(items) => {
            let mut v = Vec::new();
            for it in items {
                match end_of(it, deadline, false)? {
                    End::At(val, f) => v.push(point(val, f)),
                    _ => return Err(EvalError::Undefined),
                }
            }
            v
        }
        Expr::SetOp(op, a, b) => {
            let x = to_set(a, deadline)?;
            let y = to_set(b, deadline)?;
            return Ok(match op {
                SetOp::Union => union(x, y),
                SetOp::Minus => minus(x, y)?,
                SetOp::Intersect => intersect(x, y),
            });
        }
        Expr::Rel(operands, ops) => return inequality(operands, ops, deadline),
        _ => {
            // a single number is the set containing it
            match end_of(e, deadline, false)? {
                End::At(val, f) => vec![point(val, f)],
                _ => return Err(EvalError::Undefined),
            }
        }
    };
    Ok(normalise(pieces))
}

fn inequality(operands: &[Expr], ops: &[RelOp], deadline: Instant) -> Result<RealSet, EvalError> {
    let idx = inequality_var(operands, ops).ok_or(EvalError::Undefined)?;
    let full = Piece {
        lo: End::NegInf,
        lo_closed: false,
        hi: End::PosInf,
        hi_closed: false,
    };
    let mut set = RealSet { pieces: vec![full] };
    // each adjacent comparison involving the variable restricts the set
    for (k, op) in ops.iter().enumerate() {
        let (left, right) = (k, k + 1);
        let (bound, var_on_left) = if left == idx {
            (&operands[right], true)
        } else if right == idx {
            (&operands[left], false)
        } else {
            continue;
        };
        let b = end_of(bound, deadline, true)?;
        // normalise to "x OP b"
        let op = if var_on_left { *op } else { flip(*op) };
        let half = match op {
            RelOp::Lt => vec![Piece {
                lo: End::NegInf,
                lo_closed: false,
                hi: b,
                hi_closed: false,
            }],
            RelOp::Le => vec![Piece {
                lo: End::NegInf,
                lo_closed: false,
                hi: b,
                hi_closed: true,
            }],
            RelOp::Gt => vec![Piece {
                lo: b,
                lo_closed: false,
                hi: End::PosInf,
                hi_closed: false,
            }],
            RelOp::Ge => vec![Piece {
                lo: b,
                lo_closed: true,
                hi: End::PosInf,
                hi_closed: false,
            }],
            RelOp::Ne => vec![
                Piece {
                    lo: End::NegInf,
                    lo_closed: false,
                    hi: b.clone(),
                    hi_closed: false,
                },
                Piece {
                    lo: b,
                    lo_closed: false,
                    hi: End::PosInf,
                    hi_closed: false,
                },
            ],
            _ => return Err(EvalError::Undefined),
        };
        set = intersect(set, normalise(half));
    }
    Ok(set)
}

fn flip(op: RelOp) -> RelOp {
    match op {
        RelOp::Lt => RelOp::Gt,
        RelOp::Gt => RelOp::Lt,
        RelOp::Le => RelOp::Ge,
        RelOp::Ge => RelOp::Le,
        o => o,
    }
}

fn cmp_end(a: &End, b: &End) -> Ordering {
    a.key().partial_cmp(&b.key()).unwrap_or(Ordering::Equal)
}

fn same_point(a: &End, b: &End) -> bool {
    match (a, b) {
        (End::At(x, _), End::At(y, _)) => values_equal(x, y, 1e-12, false),
        (End::NegInf, End::NegInf) | (End::PosInf, End::PosInf) => true,
        _ => false,
    }
}

/// Sorts pieces, drops empty ones and merges overlapping or touching ones.
fn normalise(mut pieces: Vec<Piece>) -> RealSet {
    pieces.retain(|p| match cmp_end(&p.lo, &p.hi) {
        Ordering::Less => true,
        Ordering::Equal => p.lo_closed && p.hi_closed && same_point(&p.lo, &p.hi),
        Ordering::Greater => false,
    });
    pieces.sort_by(|a, b| cmp_end(&a.lo, &b.lo).then_with(|| b.lo_closed.cmp(&a.lo_closed)));
    let mut out: Vec<Piece> = Vec::new();
    for p in pieces {
        if let Some(last) = out.last_mut() {
            let order = cmp_end(&p.lo, &last.hi);
            let touches = order == Ordering::Less
                || (same_point(&p.lo, &last.hi) && (p.lo_closed || last.hi_closed));
            if touches {
                match cmp_end(&p.hi, &last.hi) {
                    Ordering::Greater => {
                        last.hi = p.hi;
                        last.hi_closed = p.hi_closed;
                    }
                    Ordering::Equal if same_point(&p.hi, &last.hi) => last.hi_closed |= p.hi_closed,
                    _ => {}
                }
                continue;
            }
        }
        out.push(p);
    }
    RealSet { pieces: out }
}

fn union(a: RealSet, b: RealSet) -> RealSet {
    let mut v = a.pieces;
    v.extend(b.pieces);
    normalise(v)
}

fn intersect(a: RealSet, b: RealSet) -> RealSet {
    let mut out = Vec::new();
    for p in &a.pieces {
        for q in &b.pieces {
            let (lo, lo_closed) = match cmp_end(&p.lo, &q.lo) {
                Ordering::Greater => (p.lo.clone(), p.lo_closed),
                Ordering::Less => (q.lo.clone(), q.lo_closed),
                Ordering::Equal => (p.lo.clone(), p.lo_closed && q.lo_closed),
            };
            let (hi, hi_closed) = match cmp_end(&p.hi, &q.hi) {
                Ordering::Less => (p.hi.clone(), p.hi_closed),
                Ordering::Greater => (q.hi.clone(), q.hi_closed),
                Ordering::Equal => (p.hi.clone(), p.hi_closed && q.hi_closed),
            };
            out.push(Piece {
                lo,
                lo_closed,
                hi,
                hi_closed,
            });
        }
    }
    normalise(out)
}

/// `A \setminus B` for B a finite set of points or intervals.
fn minus(a: RealSet, b: RealSet) -> Result<RealSet, EvalError> {
    // complement of b, intersected with a
    let mut comp = Vec::new();
    let mut lo = End::NegInf;
    let mut lo_closed = false;
    for q in &b.pieces {
        comp.push(Piece {
            lo: lo.clone(),
            lo_closed,
            hi: q.lo.clone(),
            hi_closed: !q.lo_closed,
        });
        lo = q.hi.clone();
        lo_closed = !q.hi_closed;
    }
    comp.push(Piece {
        lo,
        lo_closed,
        hi: End::PosInf,
        hi_closed: false,
    });
    Ok(intersect(a, normalise(comp)))
}

/// Equal as sets: same pieces, endpoints equal within `rel_tol`, and (when `brackets`) the same closedness.
pub(crate) fn sets_equal(a: &RealSet, b: &RealSet, rel_tol: f64, brackets: bool) -> bool {
    a.pieces.len() == b.pieces.len()
        && a.pieces.iter().zip(&b.pieces).all(|(p, q)| {
            ends_equal(&p.lo, &q.lo, rel_tol)
                && ends_equal(&p.hi, &q.hi, rel_tol)
                && (!brackets || (p.lo_closed == q.lo_closed && p.hi_closed == q.hi_closed))
        })
}

fn ends_equal(a: &End, b: &End, rel_tol: f64) -> bool {
    match (a, b) {
        (End::At(x, _), End::At(y, _)) => values_equal(x, y, rel_tol, false),
        (End::NegInf, End::NegInf) | (End::PosInf, End::PosInf) => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::super::parser::{parse, Syntax};
    use super::*;

    fn set(s: &str) -> RealSet {
        let e = parse(&super::super::clean::clean(s), Syntax::SERVEBENCH)
            .unwrap()
            .expr;
        to_set(&e, Instant::now() + std::time::Duration::from_secs(5)).unwrap()
    }

    fn eq(a: &str, b: &str) -> bool {
        sets_equal(&set(a), &set(b), 1e-4, true)
    }

    #[test]
    fn set_algebra() {
        assert!(eq("(0,9) \\cup (9,36)", "(0, 36) \\setminus \\{9\\}"));
        assert!(eq("(-\\infty, 3]", "x \\le 3"));
        assert!(eq("[2,5)", "2 \\le x < 5"));
        assert!(eq("(-\\infty,1) \\cup (1, \\infty)", "x \\ne 1"));
        assert!(eq("(-\\infty,\\infty)", "\\mathbb{R}"));
        assert!(eq("[0,1] \\cup [1,2]", "[0,2]"));
        assert!(!eq("[0,1) \\cup (1,2]", "[0,2]"));
        assert!(!eq("(-\\infty, 0]", "(-\\infty, 0)"));
        assert!(!eq(
            "(-\\infty, 2) \\cup (3, \\infty)",
            "(-\\infty, 2] \\cup [3, \\infty)"
        ));
        assert!(eq("[1,3] \\cap [2,4]", "[2,3]"));
    }
}
