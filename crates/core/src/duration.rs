//! The one owner of the rules for numbers of seconds and rates given by a user (flags, plan files): finite, in
//! range, in seconds, turned into a [`Duration`] once, with one message format everywhere:
//! `NAME VALUE: REASON; use EXPECTED` (e.g. `--timeout 0: ends at once; use a number of seconds above 0, at
//! most 1e9`). `Duration::from_secs_f64` panics on NaN, negative, infinite and huge values; nothing in
//! servebench calls it on user input. The flag parsers (`src/cli/args.rs`), `Timeouts::from_secs`, the bench
//! configuration and the plan readers all call the functions here.

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

/// A seconds value (or a rate) that cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}", self.text())]
pub struct BadSeconds {
    /// The setting, as the user wrote it (e.g. `--timeout`, `[server] ready_timeout_s`); empty in the flag
    /// parsers, where clap names the flag and the value itself (the message is then `REASON; use EXPECTED`).
    pub name: String,
    /// The value as given (or as [`show`] writes it).
    pub value: String,
    /// What is wrong with it (`is negative`, `is too long`, …).
    pub reason: String,
    /// What to pass instead.
    pub expected: String,
}

impl BadSeconds {
    fn text(&self) -> String {
        if self.name.is_empty() {
            // A flag parser's message: clap shows the flag and the value before it.
            return format!("{}; use {}", self.reason, self.expected);
        }
        format!(
            "{} {}: {}; use {}",
            self.name, self.value, self.reason, self.expected
        )
    }
}

/// Which values a setting accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lower {
    /// 0 is allowed (e.g. a pause, a grace period).
    Zero,
    /// Strictly positive (e.g. a timeout, a duration).
    Positive,
}

/// What a setting of seconds accepts, in words.
fn expected_seconds(lower: Lower, max: f64) -> String {
    let low = match lower {
        Lower::Zero => "a number of seconds from 0",
        Lower::Positive => "a number of seconds above 0",
    };
    format!("{low}, at most {}", show_max(max))
}

/// `1e9`, or `2592000 (30 days)` for a whole number of days.
fn show_max(max: f64) -> String {
    let days = max / 86_400.0;
    if max < 1e8 && days >= 1.0 && days.fract() == 0.0 {
        format!("{} ({} days)", show(max), days)
    } else {
        format!("{max:e}")
    }
}

/// Why `secs` is not a usable number of seconds, if it is not.
fn seconds_problem(secs: f64, lower: Lower, max: f64) -> Option<&'static str> {
    if secs.is_nan() {
        Some("not a number")
    } else if secs < 0.0 {
        Some("is negative")
    } else if secs == 0.0 && lower == Lower::Positive {
        Some("is 0 (it would end at once)")
    } else if secs > max {
        Some("is too long")
    } else {
        None
    }
}

/// `secs` seconds as a `Duration`: finite, ≥ 0 (or > 0 with [`Lower::Positive`]) and at most [`MAX_SECONDS`].
pub fn checked_seconds(name: &str, secs: f64, lower: Lower) -> Result<Duration, BadSeconds> {
    checked_seconds_max(name, secs, lower, MAX_SECONDS)
}

/// As [`checked_seconds`], with a smaller upper bound `max` (at most [`MAX_SECONDS`]) for settings where a
/// longer time is certainly a mistake.
pub fn checked_seconds_max(
    name: &str,
    secs: f64,
    lower: Lower,
    max: f64,
) -> Result<Duration, BadSeconds> {
    let max = max.min(MAX_SECONDS);
    let bad = |reason: &str| BadSeconds {
        name: name.to_string(),
        value: show(secs),
        reason: reason.to_string(),
        expected: expected_seconds(lower, max),
    };
    if let Some(reason) = seconds_problem(secs, lower, max) {
        return Err(bad(reason));
    }
    Duration::try_from_secs_f64(secs).map_err(|_| bad("is too long"))
}

/// A number as typed (`2.5`, `1e300`, `inf`, `NaN`): the parse itself, before any range check.
fn parse_number(text: &str, expected: impl FnOnce() -> String) -> Result<f64, BadSeconds> {
    let t = text.trim();
    t.parse::<f64>().map_err(|_| BadSeconds {
        name: String::new(),
        value: t.to_string(),
        reason: "not a number".into(),
        expected: expected(),
    })
}

/// A flag value in seconds, checked as [`checked_seconds`] (for clap value parsers: the message leaves the
/// flag's name to clap).
pub fn parse_seconds(text: &str, lower: Lower) -> Result<f64, String> {
    let v =
        parse_number(text, || expected_seconds(lower, MAX_SECONDS)).map_err(|e| e.to_string())?;
    checked_seconds("", v, lower)
        .map(|_| v)
        .map_err(|e| e.to_string())
}

fn expected_rate(allow_inf: bool) -> String {
    format!(
        "a number of requests per second from {:e}{}",
        1.0 / MAX_SECONDS,
        if allow_inf {
            ", or inf (all at once)"
        } else {
            ""
        }
    )
}

/// A rate in events per second: finite and > 0, or +infinity when `allow_inf`; no smaller than one event in
/// [`MAX_SECONDS`] (a smaller rate would schedule the second event past any timer).
pub fn checked_rate(name: &str, rate: f64, allow_inf: bool) -> Result<f64, BadSeconds> {
    let min = 1.0 / MAX_SECONDS;
    if (allow_inf && rate == f64::INFINITY) || (rate.is_finite() && rate >= min) {
        return Ok(rate);
    }
    let reason = if rate.is_nan() {
        "not a number"
    } else if rate < 0.0 {
        "is negative"
    } else if rate == f64::INFINITY {
        "is infinite"
    } else {
        "is too small"
    };
    Err(BadSeconds {
        name: name.to_string(),
        value: show(rate),
        reason: reason.into(),
        expected: expected_rate(allow_inf),
    })
}

/// A flag value in requests per second, checked as [`checked_rate`] with `inf` allowed.
pub fn parse_rate(text: &str) -> Result<f64, String> {
    let v = parse_number(text, || expected_rate(true)).map_err(|e| e.to_string())?;
    checked_rate("", v, true).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_that_panics_from_secs_f64_is_an_error() {
        for (v, reason) in [
            (f64::NAN, "not a number"),
            (f64::INFINITY, "is too long"),
            (f64::NEG_INFINITY, "is negative"),
            (-1.0, "is negative"),
            (1e300, "is too long"),
            (1e10, "is too long"),
        ] {
            let e = checked_seconds("--timeout", v, Lower::Zero).unwrap_err();
            assert_eq!(
                e.to_string(),
                format!(
                    "--timeout {}: {reason}; use a number of seconds from 0, at most 1e9",
                    show(v)
                )
            );
        }
        assert_eq!(
            checked_seconds("--grace", 0.0, Lower::Positive)
                .unwrap_err()
                .to_string(),
            "--grace 0: is 0 (it would end at once); use a number of seconds above 0, at most 1e9"
        );
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
    fn a_smaller_bound_is_named_in_days() {
        assert_eq!(
            checked_seconds_max("ready_timeout_s", 1e300, Lower::Positive, 30.0 * 86_400.0)
                .unwrap_err()
                .to_string(),
            "ready_timeout_s 1e300: is too long; use a number of seconds above 0, at most 2592000 (30 days)"
        );
        assert_eq!(
            checked_seconds_max("t", 60.0, Lower::Positive, 86_400.0).unwrap(),
            Duration::from_secs(60)
        );
        // A bound above MAX_SECONDS is MAX_SECONDS.
        assert!(checked_seconds_max("t", 2e9, Lower::Zero, 1e12).is_err());
    }

    #[test]
    fn flag_text_is_parsed_then_checked_by_the_same_rule() {
        assert_eq!(parse_seconds(" 2.5 ", Lower::Positive), Ok(2.5));
        assert_eq!(parse_seconds("0", Lower::Zero), Ok(0.0));
        assert_eq!(
            parse_seconds("0", Lower::Positive).unwrap_err(),
            "is 0 (it would end at once); use a number of seconds above 0, at most 1e9"
        );
        assert_eq!(
            parse_seconds("x", Lower::Zero).unwrap_err(),
            "not a number; use a number of seconds from 0, at most 1e9"
        );
        for (bad, reason) in [
            ("NaN", "not a number"),
            ("nan", "not a number"),
            ("inf", "is too long"),
            ("1e300", "is too long"),
            ("-1", "is negative"),
        ] {
            let e = parse_seconds(bad, Lower::Positive).unwrap_err();
            assert!(e.contains(reason), "{bad}: {e}");
        }
        assert_eq!(parse_rate("inf"), Ok(f64::INFINITY));
        assert_eq!(parse_rate("4"), Ok(4.0));
        assert_eq!(
            parse_rate("0").unwrap_err(),
            "is too small; use a number of requests per second from 1e-9, or inf (all at once)"
        );
        for bad in ["-2", "NaN", "1e-300", "-inf", "fast"] {
            assert!(parse_rate(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn rates_are_finite_and_not_vanishing() {
        assert_eq!(
            checked_rate("--request-rate", f64::INFINITY, true),
            Ok(f64::INFINITY)
        );
        assert_eq!(
            checked_rate("--request-rate", f64::INFINITY, false)
                .unwrap_err()
                .to_string(),
            "--request-rate inf: is infinite; use a number of requests per second from 1e-9"
        );
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
