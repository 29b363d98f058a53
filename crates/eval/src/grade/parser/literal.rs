//! Literals and small constructors of the parser: numbers (exact), repeating decimals, mixed numbers, products.

use num_bigint::BigInt;
use num_rational::BigRational;
use num_traits::{One, Zero};

use super::super::ast::Expr;
use super::super::lexer::Tok;
use super::{PResult, ParseError};

pub(super) fn int(n: i64) -> Expr {
    Expr::Int(BigInt::from(n))
}

impl super::Parser {
    /// One letter: `e` and `i` are the constants, except in sympy mode (sympy 1.12's `parse_latex` makes them
    /// symbols).
    pub(super) fn letter(&self, c: char) -> Expr {
        match c {
            'e' if !self.syntax.sympy => Expr::E,
            'i' if !self.syntax.sympy => Expr::I,
            _ => Expr::Var(c.to_string()),
        }
    }
}

pub(super) fn sum(mut terms: Vec<Expr>) -> Expr {
    if terms.len() == 1 {
        terms.pop().unwrap_or(Expr::Int(BigInt::zero()))
    } else {
        Expr::Add(terms)
    }
}

pub(super) fn mul(a: Expr, b: Expr) -> Expr {
    match a {
        Expr::Mul(mut v) => {
            v.push(b);
            Expr::Mul(v)
        }
        a => Expr::Mul(vec![a, b]),
    }
}

/// `2\frac{1}{3}` = 2 + 1/3 when both parts are integer literals and the fraction is proper.
pub(super) fn mixed_number(whole: &Expr, frac: &Expr) -> Option<Expr> {
    let Expr::Int(w) = whole else { return None };
    let Expr::Div(n, d) = frac else { return None };
    let (Expr::Int(n), Expr::Int(d)) = (n.as_ref(), d.as_ref()) else {
        return None;
    };
    if n < d && !d.is_zero() && *n > BigInt::zero() {
        Some(Expr::Add(vec![whole.clone(), frac.clone()])).filter(|_| *w >= BigInt::zero())
    } else {
        None
    }
}

/// A numeric literal: integers stay `Int`; decimals and exponents become exact `Dec`.
pub(crate) fn number(s: &str) -> PResult<Expr> {
    let (mantissa, exp) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], s[i + 1..].parse::<i64>().map_err(|_| ParseError)?),
        None => (s, 0),
    };
    if exp.abs() > 400 {
        return Err(ParseError);
    }
    let (int_part, frac_part) = match mantissa.find('.') {
        Some(i) => (&mantissa[..i], &mantissa[i + 1..]),
        None => (mantissa, ""),
    };
    if !mantissa.contains('.') && exp == 0 {
        let n: BigInt = int_part.parse().map_err(|_| ParseError)?;
        return Ok(Expr::Int(n));
    }
    let digits = format!("{int_part}{frac_part}");
    let digits = if digits.is_empty() {
        "0".to_string()
    } else {
        digits
    };
    let n: BigInt = digits.parse().map_err(|_| ParseError)?;
    let scale = exp - frac_part.len() as i64;
    let ten = BigInt::from(10);
    let value = if scale >= 0 {
        BigRational::from_integer(n * num_traits::pow(ten, scale as usize))
    } else {
        BigRational::new(n, num_traits::pow(ten, (-scale) as usize))
    };
    Ok(Expr::Dec(value))
}

/// `0.1\overline{6}` = 1/6.
pub(super) fn repeating(n: &str, rep: &str) -> PResult<Expr> {
    let (int_part, frac_part) = match n.find('.') {
        Some(i) => (&n[..i], &n[i + 1..]),
        None => (n, ""),
    };
    let ten = BigInt::from(10);
    let whole: BigInt = if int_part.is_empty() {
        BigInt::zero()
    } else {
        int_part.parse().map_err(|_| ParseError)?
    };
    let fixed: BigInt = if frac_part.is_empty() {
        BigInt::zero()
    } else {
        frac_part.parse().map_err(|_| ParseError)?
    };
    let r: BigInt = rep.parse().map_err(|_| ParseError)?;
    let k = frac_part.len();
    let m = rep.len();
    if k + m > 200 {
        return Err(ParseError);
    }
    let pk = num_traits::pow(ten.clone(), k);
    let pm = num_traits::pow(ten, m);
    // value = whole + fixed/10^k + r / (10^k (10^m - 1))
    let v = BigRational::from_integer(whole)
        + BigRational::new(fixed, pk.clone())
        + BigRational::new(r, pk * (pm - BigInt::one()));
    Ok(Expr::Dec(v))
}

pub(super) fn tok_text(t: &Tok) -> String {
    match t {
        Tok::Num(s) | Tok::Word(s) => s.clone(),
        Tok::Cmd(c) => format!("\\{c}"),
        Tok::Sym(c) => c.to_string(),
        Tok::RowSep => "\\\\".into(),
    }
}
