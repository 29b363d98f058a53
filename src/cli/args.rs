//! Value parsers shared by the commands' flags: each refuses what cannot work (negative counts, length 0, a
//! timeout of 0, NaN, infinite or absurdly long times that would not fit a timer) with a message that says
//! what to give instead. clap prints it as `invalid value 'X' for '--flag <V>': MESSAGE` and exits with 2.
//! Times and rates follow `servebench_core::duration`, the one owner of those rules and messages.

use servebench_core::duration::{self, Lower};

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

/// Seconds, 0 included, at most `MAX_SECONDS` (the rule and the message are `servebench_core::duration`'s).
pub fn seconds(s: &str) -> Result<f64, String> {
    duration::parse_seconds(s, Lower::Zero)
}

/// Seconds above 0 (a timeout of 0 would fail every request), at most `MAX_SECONDS`.
pub fn positive_seconds(s: &str) -> Result<f64, String> {
    duration::parse_seconds(s, Lower::Positive)
}

/// Requests per second: `inf` (all at once) or at least one request per `MAX_SECONDS`.
pub fn rate(s: &str) -> Result<f64, String> {
    duration::parse_rate(s)
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
    fn times_and_rates_are_the_cores_rules() {
        assert_eq!(seconds("0"), Ok(0.0));
        assert_eq!(positive_seconds("2.5"), Ok(2.5));
        assert_eq!(
            positive_seconds("0"),
            duration::parse_seconds("0", Lower::Positive)
        );
        for bad in ["NaN", "nan", "inf", "1e300", "-1", "x"] {
            assert!(positive_seconds(bad).is_err(), "{bad}");
            assert!(seconds(bad).is_err(), "{bad}");
        }
        assert_eq!(rate("inf"), Ok(f64::INFINITY));
        for bad in ["0", "-2", "NaN", "1e-300", "-inf"] {
            assert!(rate(bad).is_err(), "{bad}");
        }
    }
}
