//! Seconds given by a user (flags, plan files) turned into a [`Duration`] once, checked: finite, in range,
//! with a message that names the setting and says what to pass. `Duration::from_secs_f64` panics on NaN,
//! negative, infinite and huge values; nothing in servebench calls it on user input.

use std::time::Duration;

/// A number as a user would write it: `1e300`, `0.5`, `inf`, `NaN` (not 300 digits).
pub fn show(x: f64) -> String {
    let a = x.abs();
    if x.is_finite() && a != 0.0 && !(1e-4..1e16).contains(&a) {
        format!("{x:e}")
    } else {
        format!("{x}")
    }
}

/// The longest duration a setting may ask for (about 31.7 years): far beyond any benchmark, far below what
/// `Duration` and tokio timers can hold.
pub const MAX_SECONDS: f64 = 1e9;

/// A seconds value that cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{name} {value}: {expected}")]
pub struct BadSeconds {
    /// The setting, as the user wrote it (e.g. `--timeout`, `[server] ready_timeout_s`).
    pub name: String,
    pub value: String,
    /// What to pass instead.
    pub expected: String,
}

/// Which values a setting accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lower {
    /// 0 is allowed (e.g. a pause, a grace period).
    Zero,
    /// Strictly positive (e.g. a timeout, a duration).
    Positive,
}

/// `secs` seconds as a `Duration`: finite, ≥ 0 (or > 0 with [`Lower::Positive`]) and at most [`MAX_SECONDS`].
pub fn checked_seconds(name: &str, secs: f64, lower: Lower) -> Result<Duration, BadSeconds> {
    let bad = || {
        let low = match lower {
            Lower::Zero => "a number of seconds from 0",
            Lower::Positive => "a number of seconds above 0",
        };
        BadSeconds {
            name: name.to_string(),
            value: show(secs),
            expected: format!("use {low} up to {MAX_SECONDS:e} (finite)"),
        }
    };
    let ok_low = match lower {
        Lower::Zero => secs >= 0.0,
        Lower::Positive => secs > 0.0,
    };
    if !secs.is_finite() || !ok_low || secs > MAX_SECONDS {
        return Err(bad());
    }
    Duration::try_from_secs_f64(secs).map_err(|_| bad())
}

/// A rate in events per second: finite and > 0, or +infinity when `allow_inf`; no smaller than one event in
/// [`MAX_SECONDS`] (a smaller rate would schedule the second event past any timer).
pub fn checked_rate(name: &str, rate: f64, allow_inf: bool) -> Result<f64, BadSeconds> {
    let min = 1.0 / MAX_SECONDS;
    if (allow_inf && rate == f64::INFINITY) || (rate.is_finite() && rate >= min) {
        return Ok(rate);
    }
    Err(BadSeconds {
        name: name.to_string(),
        value: show(rate),
        expected: format!(
            "use a number of requests per second from {min:e}{}",
            if allow_inf {
                ", or inf (all at once)"
            } else {
                ""
            }
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_that_panics_from_secs_f64_is_an_error() {
        for v in [
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            -1.0,
            1e300,
            1e10,
        ] {
            let e = checked_seconds("--timeout", v, Lower::Zero).unwrap_err();
            assert!(e.to_string().starts_with("--timeout "), "{e}");
            assert!(e.to_string().contains("up to 1e9"), "{e}");
        }
        assert!(checked_seconds("--grace", 0.0, Lower::Positive).is_err());
        assert_eq!(
            checked_seconds("--grace", 0.0, Lower::Zero).unwrap(),
            Duration::ZERO
        );
        assert_eq!(
            checked_seconds("--timeout", 2.5, Lower::Positive).unwrap(),
            Duration::from_millis(2500)
        );
        assert_eq!(
            checked_seconds("x", MAX_SECONDS, Lower::Positive).unwrap(),
            Duration::from_secs(1_000_000_000)
        );
    }

    #[test]
    fn rates_are_finite_and_not_vanishing() {
        assert_eq!(
            checked_rate("--request-rate", f64::INFINITY, true),
            Ok(f64::INFINITY)
        );
        assert!(checked_rate("--request-rate", f64::INFINITY, false).is_err());
        for v in [f64::NAN, 0.0, -1.0, 1e-300, f64::NEG_INFINITY] {
            let e = checked_rate("--request-rate", v, true).unwrap_err();
            assert!(e.to_string().contains("or inf"), "{e}");
        }
        assert_eq!(checked_rate("--request-rate", 0.5, true), Ok(0.5));
        assert_eq!(show(1e300), "1e300");
        assert_eq!(show(1e-300), "1e-300");
        assert_eq!(show(2.5), "2.5");
        assert_eq!(show(f64::NAN), "NaN");
    }
}
