//! The parsed form of an answer.

use num_bigint::BigInt;
use num_rational::BigRational;

/// Functions of one argument (more for `Log` with a base, `Root` with an index, `Binom`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Func {
    Sqrt,
    /// `\sqrt[n]{x}`: args (n, x).
    Root,
    Sin,
    Cos,
    Tan,
    Cot,
    Sec,
    Csc,
    Asin,
    Acos,
    Atan,
    Sinh,
    Cosh,
    Tanh,
    /// Natural logarithm.
    Ln,
    /// `\log x` (base 10 unless `\log_b`): args (base, x).
    Log,
    Exp,
    Abs,
    Floor,
    Ceil,
    Factorial,
    /// `\binom{n}{k}`: args (n, k).
    Binom,
}

/// Relation operators of equations and inequalities.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RelOp {
    Eq,
    Lt,
    Le,
    Gt,
    Ge,
    Ne,
    In,
    To,
    Approx,
}

/// Set operators between intervals and sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SetOp {
    Union,
    Intersect,
    Minus,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Expr {
    /// An exact number written without a decimal point (integers, from fractions of integers).
    Int(BigInt),
    /// A decimal literal, kept exactly; `approx` marks that it was written with a decimal point or exponent.
    Dec(BigRational),
    /// A named variable (`x`, `a_1`, `\alpha`, `x'`).
    Var(String),
    Pi,
    E,
    I,
    Infinity,
    Neg(Box<Expr>),
    Add(Vec<Expr>),
    Mul(Vec<Expr>),
    Div(Box<Expr>, Box<Expr>),
    Pow(Box<Expr>, Box<Expr>),
    Call(Func, Vec<Expr>),
    /// `a ± b` (`sign` false for `∓`).
    PlusMinus(Box<Expr>, Box<Expr>),
    /// `52_8`: digits in a base (base as written).
    Based(String, String),
    /// `x%`.
    Percent(Box<Expr>),
    /// `(a, b, …)`, also an open interval when compared with one.
    Tuple(Vec<Expr>),
    /// `[a, b)` and friends: (left closed, low, high, right closed).
    Interval(bool, Box<Expr>, Box<Expr>, bool),
    /// `\{a, b\}`.
    Set(Vec<Expr>),
    /// A bare comma list at top level (`1, -2`): the solutions of a problem, order insignificant.
    List(Vec<Expr>),
    Matrix(Vec<Vec<Expr>>),
    SetOp(SetOp, Box<Expr>, Box<Expr>),
    /// A chain `a op b op c`.
    Rel(Vec<Expr>, Vec<RelOp>),
    /// `\mathbb{R}` and friends, the empty set.
    Reals,
    EmptySet,
}

impl Expr {
    /// True when no variable occurs.
    pub(crate) fn vars(&self, out: &mut Vec<String>) {
        match self {
            Expr::Var(v) => {
                if !out.contains(v) {
                    out.push(v.clone());
                }
            }
            Expr::Neg(a) | Expr::Percent(a) => a.vars(out),
            Expr::Add(v)
            | Expr::Mul(v)
            | Expr::Tuple(v)
            | Expr::Set(v)
            | Expr::List(v)
            | Expr::Call(_, v) => v.iter().for_each(|e| e.vars(out)),
            Expr::Div(a, b)
            | Expr::Pow(a, b)
            | Expr::PlusMinus(a, b)
            | Expr::Interval(_, a, b, _)
            | Expr::SetOp(_, a, b) => {
                a.vars(out);
                b.vars(out);
            }
            Expr::Matrix(rows) => rows.iter().flatten().for_each(|e| e.vars(out)),
            Expr::Rel(v, _) => v.iter().for_each(|e| e.vars(out)),
            Expr::Int(_)
            | Expr::Dec(_)
            | Expr::Pi
            | Expr::E
            | Expr::I
            | Expr::Infinity
            | Expr::Based(..)
            | Expr::Reals
            | Expr::EmptySet => {}
        }
    }

    pub(crate) fn is_scalar(&self) -> bool {
        !matches!(
            self,
            Expr::Tuple(_)
                | Expr::Interval(..)
                | Expr::Set(_)
                | Expr::List(_)
                | Expr::Matrix(_)
                | Expr::SetOp(..)
                | Expr::Rel(..)
                | Expr::Reals
                | Expr::EmptySet
        )
    }

    /// True when `±` occurs outside a structure.
    pub(crate) fn has_plus_minus(&self) -> bool {
        match self {
            Expr::PlusMinus(..) => true,
            Expr::Neg(a) | Expr::Percent(a) => a.has_plus_minus(),
            Expr::Add(v) | Expr::Mul(v) | Expr::Call(_, v) => v.iter().any(Expr::has_plus_minus),
            Expr::Div(a, b) | Expr::Pow(a, b) => a.has_plus_minus() || b.has_plus_minus(),
            _ => false,
        }
    }
}
