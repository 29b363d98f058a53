//! Numbers: exact rationals (BigRational) when the arithmetic allows, complex f64 otherwise.

use num_bigint::BigInt;
use num_rational::BigRational;
use num_traits::{Signed, ToPrimitive, Zero};

/// A complex number in f64.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct C {
    pub re: f64,
    pub im: f64,
}

impl C {
    pub fn real(re: f64) -> C {
        C { re, im: 0.0 }
    }
    pub fn add(self, o: C) -> C {
        C {
            re: self.re + o.re,
            im: self.im + o.im,
        }
    }
    pub fn sub(self, o: C) -> C {
        C {
            re: self.re - o.re,
            im: self.im - o.im,
        }
    }
    pub fn mul(self, o: C) -> C {
        C {
            re: self.re * o.re - self.im * o.im,
            im: self.re * o.im + self.im * o.re,
        }
    }
    pub fn div(self, o: C) -> Option<C> {
        let d = o.re * o.re + o.im * o.im;
        if d == 0.0 || !d.is_finite() {
            return None;
        }
        Some(C {
            re: (self.re * o.re + self.im * o.im) / d,
            im: (self.im * o.re - self.re * o.im) / d,
        })
    }
    pub fn neg(self) -> C {
        C {
            re: -self.re,
            im: -self.im,
        }
    }
    pub fn abs(self) -> f64 {
        self.re.hypot(self.im)
    }
    pub fn is_finite(self) -> bool {
        self.re.is_finite() && self.im.is_finite()
    }
    pub fn ln(self) -> Option<C> {
        let r = self.abs();
        if r == 0.0 {
            return None;
        }
        Some(C {
            re: r.ln(),
            im: self.im.atan2(self.re),
        })
    }
    pub fn exp(self) -> C {
        let m = self.re.exp();
        C {
            re: m * self.im.cos(),
            im: m * self.im.sin(),
        }
    }
    pub fn pow(self, e: C) -> Option<C> {
        if self.re == 0.0 && self.im == 0.0 {
            return if e.re > 0.0 && e.im == 0.0 {
                Some(C::real(0.0))
            } else {
                None
            };
        }
        if self.im == 0.0 && e.im == 0.0 && (self.re > 0.0 || e.re.fract() == 0.0) {
            return Some(C::real(self.re.powf(e.re)));
        }
        Some(e.mul(self.ln()?).exp())
    }
    pub fn sqrt(self) -> C {
        if self.im == 0.0 && self.re >= 0.0 {
            return C::real(self.re.sqrt());
        }
        let r = self.abs();
        let re = ((r + self.re) / 2.0).sqrt();
        let im = ((r - self.re) / 2.0)
            .sqrt()
            .copysign(if self.im == 0.0 { 1.0 } else { self.im });
        C { re, im }
    }
    pub fn sin(self) -> C {
        C {
            re: self.re.sin() * self.im.cosh(),
            im: self.re.cos() * self.im.sinh(),
        }
    }
    pub fn cos(self) -> C {
        C {
            re: self.re.cos() * self.im.cosh(),
            im: -self.re.sin() * self.im.sinh(),
        }
    }
}

/// An evaluated scalar.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Exact(BigRational),
    Approx(C),
}

impl Value {
    pub fn to_c(&self) -> C {
        match self {
            Value::Exact(r) => C::real(rat_to_f64(r)),
            Value::Approx(c) => *c,
        }
    }

    /// The real value when the imaginary part is negligible.
    pub fn to_real(&self) -> Option<f64> {
        let c = self.to_c();
        (c.im.abs() <= 1e-12 * c.re.abs().max(1.0) && c.re.is_finite()).then_some(c.re)
    }
}

/// f64 of a rational, also for numerators and denominators beyond f64's range.
pub(crate) fn rat_to_f64(r: &BigRational) -> f64 {
    if let (Some(n), Some(d)) = (r.numer().to_f64(), r.denom().to_f64()) {
        if n.is_finite() && d.is_finite() && d != 0.0 {
            return n / d;
        }
    }
    let nb = r.numer().bits() as i64;
    let db = r.denom().bits() as i64;
    let shift = nb - db - 60;
    let scaled = if shift > 0 {
        BigRational::new(r.numer().clone(), r.denom().clone() << (shift as usize))
    } else {
        BigRational::new(r.numer().clone() << ((-shift) as usize), r.denom().clone())
    };
    let base = scaled.to_integer().to_f64().unwrap_or(f64::NAN);
    base * 2f64.powi(shift.clamp(-2000, 2000) as i32)
}

/// Exact rational `k`-th root when it exists (`8^(1/3)` = 2, `4/9^(1/2)` = 2/3).
pub(crate) fn exact_root(r: &BigRational, k: u32) -> Option<BigRational> {
    if k == 0 || r.is_negative() && k.is_multiple_of(2) {
        return None;
    }
    let n = int_root(&r.numer().abs(), k)?;
    let d = int_root(r.denom(), k)?;
    let n = if r.is_negative() { -n } else { n };
    Some(BigRational::new(n, d))
}

fn int_root(n: &BigInt, k: u32) -> Option<BigInt> {
    if n.is_zero() {
        return Some(BigInt::zero());
    }
    if n.bits() > 4096 {
        return None;
    }
    let root = n.nth_root(k);
    (num_traits::pow(root.clone(), k as usize) == *n).then_some(root)
}

/// Are two values equal: exactly when both are exact and `exact` is asked, else within the relative tolerance.
pub(crate) fn values_equal(a: &Value, b: &Value, rel_tol: f64, exact: bool) -> bool {
    if let (Value::Exact(x), Value::Exact(y)) = (a, b) {
        if exact {
            return x == y;
        }
        if x == y {
            return true;
        }
        // |x - y| <= tol * max(|x|, |y|), in exact arithmetic so huge numbers compare correctly
        let diff = (x - y).abs();
        let scale = if x.abs() > y.abs() { x.abs() } else { y.abs() };
        let tol = BigRational::new(
            BigInt::from((rel_tol * 1e12).round() as i64),
            BigInt::from(1_000_000_000_000i64),
        );
        return diff <= tol * scale;
    }
    let (x, y) = (a.to_c(), b.to_c());
    if !x.is_finite() || !y.is_finite() {
        return false;
    }
    let diff = x.sub(y).abs();
    diff <= rel_tol * x.abs().max(y.abs()) || diff <= 1e-12
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(n: i64, d: i64) -> BigRational {
        BigRational::new(n.into(), d.into())
    }

    #[test]
    fn roots_and_tolerance() {
        assert_eq!(exact_root(&q(8, 27), 3), Some(q(2, 3)));
        assert_eq!(exact_root(&q(2, 1), 2), None);
        assert_eq!(exact_root(&q(-8, 1), 3), Some(q(-2, 1)));
        assert!(values_equal(
            &Value::Exact(q(1, 3)),
            &Value::Exact(q(33333, 100000)),
            1e-4,
            false
        ));
        assert!(!values_equal(
            &Value::Exact(q(1, 3)),
            &Value::Exact(q(333, 1000)),
            1e-4,
            false
        ));
        assert!(!values_equal(
            &Value::Exact(q(11111111100, 1)),
            &Value::Exact(q(11111111101, 1)),
            1e-4,
            true
        ));
        assert!(values_equal(
            &Value::Approx(C::real(1e-17)),
            &Value::Exact(q(0, 1)),
            1e-4,
            false
        ));
        let big = BigRational::from_integer(BigInt::from(10).pow(400));
        assert!((rat_to_f64(&(big.clone() / (big * BigInt::from(4)))) - 0.25).abs() < 1e-12);
        let s = C { re: -4.0, im: 0.0 }.sqrt();
        assert!((s.im - 2.0).abs() < 1e-12 && s.re.abs() < 1e-12);
    }
}
