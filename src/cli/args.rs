//! Value parsers shared by the commands' flags: each refuses what cannot work (negative counts, length 0, a
//! timeout of 0, NaN, infinite or absurdly long times that would not fit a timer) with a message that says
//! what to give instead. clap prints it as `invalid value 'X' for '--flag <V>': MESSAGE` and exits with 2.

/// The longest time a flag may give, in seconds (about 31 years): longer values would overflow timers.
pub const MAX_SECONDS: f64 = 1e9;

fn whole(s: &str) -> Result<u64, String> {
    let t = s.trim();
    if t.starts_with('-') {
        return Err(format!("{t} is negative: give a whole number"));
    }
    t.parse::<u64>()
        .map_err(|_| format!("'{t}' is not a whole number"))
}

/// A count of at least 1 (`--num-prompts`, `--max-concurrency`, …).
pub fn at_least_one(s: &str) -> Result<usize, String> {
    match whole(s)? {
        0 => Err("0: give at least 1".into()),
        n => usize::try_from(n).map_err(|_| format!("{n} is too large")),
    }
}

/// A token length of at least 1.
pub fn length(s: &str) -> Result<u64, String> {
    match whole(s)? {
        0 => Err("length 0: a request needs at least 1 token".into()),
        n => Ok(n),
    }
}

fn number(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let v: f64 = t.parse().map_err(|_| format!("'{t}' is not a number"))?;
    if v.is_nan() {
        return Err("NaN is not a number: give a number".into());
    }
    Ok(v)
}

/// Seconds, 0 included, at most [`MAX_SECONDS`].
pub fn seconds(s: &str) -> Result<f64, String> {
    let v = number(s)?;
    if v < 0.0 {
        return Err(format!("{v} is negative: give seconds >= 0"));
    }
    if v > MAX_SECONDS {
        return Err(format!("{s} seconds is too long: at most {MAX_SECONDS:e}"));
    }
    Ok(v)
}

/// Seconds above 0 (a timeout of 0 would fail every request), at most [`MAX_SECONDS`].
pub fn positive_seconds(s: &str) -> Result<f64, String> {
    let v = seconds(s)?;
    if v == 0.0 {
        return Err("0 seconds: give a time above 0 (or leave the flag out)".into());
    }
    Ok(v)
}

/// A finite number above 0.
pub fn positive(s: &str) -> Result<f64, String> {
    let v = number(s)?;
    if !(v.is_finite() && v > 0.0) {
        return Err(format!("{s}: give a finite number above 0"));
    }
    Ok(v)
}

/// Requests per second: `inf` (all at once) or at least one request per [`MAX_SECONDS`].
pub fn rate(s: &str) -> Result<f64, String> {
    let v = number(s)?;
    if v == f64::INFINITY {
        return Ok(v);
    }
    if !(v.is_finite() && v >= 1.0 / MAX_SECONDS) {
        return Err(format!(
            "{s}: give requests per second above 0 (at least {:e}), or inf",
            1.0 / MAX_SECONDS
        ));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_lengths() {
        assert_eq!(at_least_one("8"), Ok(8));
        assert_eq!(
            at_least_one("-3").unwrap_err(),
            "-3 is negative: give a whole number"
        );
        assert_eq!(at_least_one("0").unwrap_err(), "0: give at least 1");
        assert!(at_least_one("1.5")
            .unwrap_err()
            .contains("not a whole number"));
        assert!(at_least_one("18446744073709551616").is_err());
        assert_eq!(length("1"), Ok(1));
        assert!(length("0").unwrap_err().contains("at least 1 token"));
    }

    #[test]
    fn times_and_rates() {
        assert_eq!(seconds("0"), Ok(0.0));
        assert_eq!(positive_seconds("2.5"), Ok(2.5));
        assert!(positive_seconds("0").unwrap_err().contains("above 0"));
        for bad in ["NaN", "nan", "inf", "1e300", "-1", "x"] {
            assert!(positive_seconds(bad).is_err(), "{bad}");
            assert!(seconds(bad).is_err(), "{bad}");
        }
        assert_eq!(rate("inf"), Ok(f64::INFINITY));
        assert_eq!(rate("4"), Ok(4.0));
        for bad in ["0", "-2", "NaN", "1e-300", "-inf"] {
            assert!(rate(bad).is_err(), "{bad}");
        }
        assert_eq!(positive("0.5"), Ok(0.5));
        assert!(positive("0").is_err() && positive("inf").is_err());
    }
}
