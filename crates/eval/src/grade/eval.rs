//! Evaluation of scalar expressions: exact rational arithmetic where possible, complex f64 otherwise.

use std::time::Instant;

use num_bigint::BigInt;
use num_rational::BigRational;
use num_traits::{One, Signed, ToPrimitive, Zero};

use super::ast::{Expr, Func};
use super::number::{exact_root, Value, C};

/// Why a value could not be computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EvalError {
    /// Not a scalar, an unknown variable, a domain error, or a number too large.
    Undefined,
    /// The per-item time bound passed.
    Timeout,
}

type R = Result<Value, EvalError>;

/// Largest result (in bits) that exact arithmetic may build before falling back to f64.
const MAX_BITS: u64 = 20_000;

/// Evaluation context: variable values, deadline, and whether a decimal literal was met.
pub(crate) struct Env<'a> {
    pub vars: &'a [(String, BigRational)],
    pub deadline: Instant,
    /// Set when a decimal literal (or an irrational operation) made the result approximate.
    pub inexact: bool,
    steps: u32,
}

impl<'a> Env<'a> {
    pub fn new(vars: &'a [(String, BigRational)], deadline: Instant) -> Self {
        Env {
            vars,
            deadline,
            inexact: false,
            steps: 0,
        }
    }

    fn tick(&mut self) -> Result<(), EvalError> {
        self.steps += 1;
        if self.steps.is_multiple_of(64) && Instant::now() > self.deadline {
            return Err(EvalError::Timeout);
        }
        Ok(())
    }
}

pub(crate) fn eval(e: &Expr, env: &mut Env) -> R {
    env.tick()?;
    match e {
        Expr::Int(n) => Ok(Value::Exact(BigRational::from_integer(n.clone()))),
        Expr::Dec(r) => {
            env.inexact = true;
            Ok(Value::Exact(r.clone()))
        }
        Expr::Var(v) => env
            .vars
            .iter()
            .find(|(name, _)| name == v)
            .map(|(_, val)| Value::Exact(val.clone()))
            .ok_or(EvalError::Undefined),
        Expr::Pi => Ok(Value::Approx(C::real(std::f64::consts::PI))),
        Expr::E => Ok(Value::Approx(C::real(std::f64::consts::E))),
        Expr::I => Ok(Value::Approx(C { re: 0.0, im: 1.0 })),
        Expr::Neg(a) => Ok(match eval(a, env)? {
            Value::Exact(r) => Value::Exact(-r),
            Value::Approx(c) => Value::Approx(c.neg()),
        }),
        Expr::Add(terms) => {
            let mut acc = Value::Exact(BigRational::zero());
            for t in terms {
                let v = eval(t, env)?;
                acc = add(acc, v);
            }
            Ok(acc)
        }
        Expr::Mul(factors) => {
            let mut acc = Value::Exact(BigRational::one());
            for f in factors {
                let v = eval(f, env)?;
                acc = mul(acc, v)?;
            }
            Ok(acc)
        }
        Expr::Div(a, b) => {
            let x = eval(a, env)?;
            let y = eval(b, env)?;
            div(x, y)
        }
        Expr::Pow(a, b) => {
            let x = eval(a, env)?;
            let y = eval(b, env)?;
            pow(x, y)
        }
        Expr::Percent(a) => div(
            eval(a, env)?,
            Value::Exact(BigRational::from_integer(100.into())),
        ),
        Expr::Call(f, args) => call(*f, args, env),
        Expr::Based(digits, base) if base == "10" => {
            let n: BigInt = digits.parse().map_err(|_| EvalError::Undefined)?;
            Ok(Value::Exact(BigRational::from_integer(n)))
        }
        _ => Err(EvalError::Undefined),
    }
}

fn add(a: Value, b: Value) -> Value {
    match (a, b) {
        (Value::Exact(x), Value::Exact(y)) => Value::Exact(x + y),
        (x, y) => Value::Approx(x.to_c().add(y.to_c())),
    }
}

fn too_big(r: &BigRational) -> bool {
    r.numer().bits() + r.denom().bits() > MAX_BITS
}

fn mul(a: Value, b: Value) -> R {
    Ok(match (a, b) {
        (Value::Exact(x), Value::Exact(y)) => {
            let p = x * y;
            if too_big(&p) {
                Value::Approx(Value::Exact(p).to_c())
            } else {
                Value::Exact(p)
            }
        }
        (x, y) => Value::Approx(x.to_c().mul(y.to_c())),
    })
}

fn div(a: Value, b: Value) -> R {
    match (a, b) {
        (Value::Exact(x), Value::Exact(y)) => {
            if y.is_zero() {
                Err(EvalError::Undefined)
            } else {
                Ok(Value::Exact(x / y))
            }
        }
        (x, y) => x
            .to_c()
            .div(y.to_c())
            .map(Value::Approx)
            .ok_or(EvalError::Undefined),
    }
}

fn pow(a: Value, b: Value) -> R {
    if let (Value::Exact(x), Value::Exact(y)) = (&a, &b) {
        if y.is_integer() {
            if let Some(k) = y.numer().to_i64() {
                let bits = (x.numer().bits() + x.denom().bits()).max(1);
                if k.unsigned_abs().saturating_mul(bits) <= MAX_BITS {
                    if k < 0 && x.is_zero() {
                        return Err(EvalError::Undefined);
                    }
                    let p = num_traits::pow(x.clone(), k.unsigned_abs() as usize);
                    return Ok(Value::Exact(if k < 0 { p.recip() } else { p }));
                }
            }
        } else if let (Some(n), Some(d)) = (y.numer().to_i64(), y.denom().to_u32()) {
            // rational exponent: exact when the root is exact (`8^{2/3}` = 4)
            if d <= 64 && n.unsigned_abs() <= 64 {
                if let Some(root) = exact_root(x, d) {
                    return pow(
                        Value::Exact(root),
                        Value::Exact(BigRational::from_integer(n.into())),
                    );
                }
            }
        }
    }
    let r = a.to_c().pow(b.to_c()).ok_or(EvalError::Undefined)?;
    if r.is_finite() {
        Ok(Value::Approx(r))
    } else {
        Err(EvalError::Undefined)
    }
}

fn approx(v: &Value, f: impl Fn(C) -> Option<C>) -> R {
    let r = f(v.to_c()).ok_or(EvalError::Undefined)?;
    if r.is_finite() {
        Ok(Value::Approx(r))
    } else {
        Err(EvalError::Undefined)
    }
}

fn real_fn(v: &Value, f: impl Fn(f64) -> f64) -> R {
    let x = v.to_real().ok_or(EvalError::Undefined)?;
    let y = f(x);
    if y.is_finite() {
        Ok(Value::Approx(C::real(y)))
    } else {
        Err(EvalError::Undefined)
    }
}

fn call(f: Func, args: &[Expr], env: &mut Env) -> R {
    let mut vals = Vec::with_capacity(args.len());
    for a in args {
        vals.push(eval(a, env)?);
    }
    let x = vals.last().cloned().ok_or(EvalError::Undefined)?;
    match f {
        Func::Sqrt => match &x {
            Value::Exact(r) if !r.is_negative() => match exact_root(r, 2) {
                Some(s) => Ok(Value::Exact(s)),
                None => approx(&x, |c| Some(c.sqrt())),
            },
            _ => approx(&x, |c| Some(c.sqrt())),
        },
        Func::Root => {
            let n = vals.first().cloned().ok_or(EvalError::Undefined)?;
            if let (Value::Exact(k), Value::Exact(r)) = (&n, &x) {
                if let Some(k) = k.to_integer().to_u32().filter(|_| k.is_integer()) {
                    if let Some(s) = exact_root(r, k) {
                        return Ok(Value::Exact(s));
                    }
                    if r.is_negative() && k % 2 == 1 {
                        // real odd root of a negative number
                        let v = -(-super::number::rat_to_f64(r)).powf(1.0 / k as f64);
                        return Ok(Value::Approx(C::real(v)));
                    }
                }
            }
            let inv = div(Value::Exact(BigRational::one()), n)?;
            pow(x, inv)
        }
        Func::Sin => approx(&x, |c| Some(c.sin())),
        Func::Cos => approx(&x, |c| Some(c.cos())),
        Func::Tan => approx(&x, |c| c.sin().div(c.cos())),
        Func::Cot => approx(&x, |c| c.cos().div(c.sin())),
        Func::Sec => approx(&x, |c| C::real(1.0).div(c.cos())),
        Func::Csc => approx(&x, |c| C::real(1.0).div(c.sin())),
        Func::Asin => real_fn(&x, f64::asin),
        Func::Acos => real_fn(&x, f64::acos),
        Func::Atan => real_fn(&x, f64::atan),
        Func::Sinh => real_fn(&x, f64::sinh),
        Func::Cosh => real_fn(&x, f64::cosh),
        Func::Tanh => real_fn(&x, f64::tanh),
        Func::Ln => approx(&x, |c| c.ln()),
        Func::Log => {
            let b = vals.first().cloned().ok_or(EvalError::Undefined)?;
            // exact when x is an integer power of an integer base (log_2 8 = 3)
            if let (Value::Exact(bb), Value::Exact(xx)) = (&b, &x) {
                if let Some(k) = exact_log(bb, xx) {
                    return Ok(Value::Exact(BigRational::from_integer(k.into())));
                }
            }
            let lb = b.to_c().ln().ok_or(EvalError::Undefined)?;
            approx(&x, |c| c.ln()?.div(lb))
        }
        Func::Exp => approx(&x, |c| Some(c.exp())),
        Func::Abs => match x {
            Value::Exact(r) => Ok(Value::Exact(r.abs())),
            Value::Approx(c) => Ok(Value::Approx(C::real(c.abs()))),
        },
        Func::Floor => match x {
            Value::Exact(r) => Ok(Value::Exact(r.floor())),
            v => real_fn(&v, f64::floor),
        },
        Func::Ceil => match x {
            Value::Exact(r) => Ok(Value::Exact(r.ceil())),
            v => real_fn(&v, f64::ceil),
        },
        Func::Factorial => {
            let Value::Exact(r) = x else {
                return Err(EvalError::Undefined);
            };
            let n = r
                .is_integer()
                .then(|| r.to_integer().to_u64())
                .flatten()
                .ok_or(EvalError::Undefined)?;
            if n > 2000 {
                return Err(EvalError::Undefined);
            }
            let mut acc = BigInt::one();
            for k in 2..=n {
                acc *= k;
            }
            Ok(Value::Exact(BigRational::from_integer(acc)))
        }
        Func::Binom => {
            let (Some(Value::Exact(n)), Value::Exact(k)) = (vals.first(), &x) else {
                return Err(EvalError::Undefined);
            };
            let n = n
                .is_integer()
                .then(|| n.to_integer().to_i64())
                .flatten()
                .ok_or(EvalError::Undefined)?;
            let k = k
                .is_integer()
                .then(|| k.to_integer().to_i64())
                .flatten()
                .ok_or(EvalError::Undefined)?;
            if !(0..=n).contains(&k) || n > 5000 {
                return if k < 0 || (n >= 0 && k > n) {
                    Ok(Value::Exact(BigRational::zero()))
                } else {
                    Err(EvalError::Undefined)
                };
            }
            let mut acc = BigInt::one();
            for j in 0..k {
                acc = acc * (n - j) / (j + 1);
            }
            Ok(Value::Exact(BigRational::from_integer(acc)))
        }
    }
}

/// k with base^k = x for integer base ≥ 2 and integer x ≥ 1.
fn exact_log(base: &BigRational, x: &BigRational) -> Option<i64> {
    if !base.is_integer() || !x.is_integer() {
        return None;
    }
    let b = base.to_integer();
    let mut v = x.to_integer();
    if b <= BigInt::one() || v < BigInt::one() {
        return None;
    }
    let mut k = 0i64;
    while v > BigInt::one() {
        if (&v % &b) != BigInt::zero() {
            return None;
        }
        v /= &b;
        k += 1;
    }
    Some(k)
}

#[cfg(test)]
mod tests {
    use super::super::parser::{parse, Syntax};
    use super::*;

    fn ev(s: &str) -> Value {
        let e = parse(s, Syntax::SERVEBENCH).unwrap().expr;
        let far = Instant::now() + std::time::Duration::from_secs(5);
        eval(&e, &mut Env::new(&[], far)).unwrap()
    }

    fn q(n: i64, d: i64) -> Value {
        Value::Exact(BigRational::new(n.into(), d.into()))
    }

    #[test]
    fn values() {
        assert_eq!(ev("\\frac{14}{3}"), q(14, 3));
        assert_eq!(ev("14/3"), q(14, 3));
        assert_eq!(ev("2\\frac{1}{3}"), q(7, 3));
        assert_eq!(ev("\\sqrt{\\frac{4}{9}}"), q(2, 3));
        assert_eq!(ev("8^{2/3}"), q(4, 1));
        assert_eq!(ev("\\sqrt[3]{27}"), q(3, 1));
        assert_eq!(ev("\\binom{5}{2}"), q(10, 1));
        assert_eq!(ev("5!"), q(120, 1));
        assert_eq!(ev("\\log_2 8"), q(3, 1));
        assert_eq!(ev("10\\%"), q(1, 10));
        assert_eq!(ev("|-3|"), q(3, 1));
        let v = ev("3\\sqrt{13}").to_c().re;
        assert!((v - 117f64.sqrt()).abs() < 1e-9);
        let v = ev("\\sin(\\pi/6)").to_c().re;
        assert!((v - 0.5).abs() < 1e-12);
        let c = ev("(1+2i)(3-i)").to_c();
        assert!((c.re - 5.0).abs() < 1e-12 && (c.im - 5.0).abs() < 1e-12);
    }

    #[test]
    fn huge_powers_do_not_hang() {
        let e = parse("2^{10^{9}}", Syntax::SERVEBENCH).unwrap().expr;
        let far = Instant::now() + std::time::Duration::from_secs(5);
        assert!(eval(&e, &mut Env::new(&[], far)).is_err());
    }
}
