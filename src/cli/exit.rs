//! servebench's exit codes and the errors that carry them (documented in `docs/reliability.md`, "Exit codes",
//! and at the end of `servebench --help`).
//!
//! | code | meaning |
//! |---|---|
//! | 0 | all good |
//! | 1 | the work could not be done (server unreachable, a file could not be written, …) |
//! | 2 | bad input: a flag, plan, dataset, tokenizer or output path is wrong; nothing was sent |
//! | 3 | the run finished but every request/sample failed, or more than `--max-failure-rate` of them |
//! | 130 | interrupted (Ctrl-C); what finished is saved |

pub const SUCCESS: u8 = 0;
pub const ERROR: u8 = 1;
pub const BAD_INPUT: u8 = 2;
pub const FAILURES: u8 = 3;
pub const INTERRUPTED: u8 = 130;

/// The exit-code table for `--help`.
pub const HELP: &str =
    "Exit codes: 0 all good; 1 the work could not be done (e.g. server unreachable); \
2 bad input (flags, plan, paths; nothing sent); 3 every request/sample failed, or more than \
--max-failure-rate of them; 130 interrupted (Ctrl-C; finished work is saved).";

/// A flag, plan or path is wrong: exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadInput(pub String);

impl BadInput {
    /// Wraps any error as bad input, keeping its message (causes included, each once: [`message`]).
    pub fn from_err(e: impl Into<anyhow::Error>) -> anyhow::Error {
        anyhow::Error::new(BadInput(message(&e.into())))
    }
}

/// The text of `err` and its causes, `outer: cause: …`, leaving out each cause whose text the message already
/// holds. Many errors name their source in their own text (`cannot read X: No such file or directory (os
/// error 2)`) and also return it as `source()`, so anyhow's `{:#}` would print the OS error twice. Every
/// error the binary prints goes through here.
pub fn message(err: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if text.is_empty() || out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

/// The run finished, but too many requests or samples failed: exit code 3.
#[derive(Debug, thiserror::Error)]
#[error("{failed} of {total} {what} failed{limit}")]
pub struct TooManyFailures {
    pub what: &'static str,
    pub failed: u64,
    pub total: u64,
    limit: String,
}

/// The user stopped the run (Ctrl-C): exit code 130. What finished was saved before this is returned.
#[derive(Debug, thiserror::Error)]
#[error("interrupted: {0}")]
pub struct Interrupted(pub String);

/// `Err` when `failed` of `ok + failed` is too many: all of them (the default), or a share above `max_rate`
/// (a fraction in [0, 1]). Nothing run is not a failure.
pub fn check_failures(
    what: &'static str,
    ok: u64,
    failed: u64,
    max_rate: Option<f64>,
) -> Result<(), TooManyFailures> {
    let total = ok + failed;
    if total == 0 || failed == 0 {
        return Ok(());
    }
    let too_many = match max_rate {
        Some(r) => failed as f64 / total as f64 > r,
        None => ok == 0,
    };
    if !too_many {
        return Ok(());
    }
    Err(TooManyFailures {
        what,
        failed,
        total,
        limit: match max_rate {
            Some(r) => format!(", above --max-failure-rate {r}"),
            None => String::new(),
        },
    })
}

/// Parses `--max-failure-rate`: a fraction in [0, 1].
pub fn parse_rate(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("'{s}' is not a number: give a fraction in [0, 1], e.g. 0.01"))?;
    if !(0.0..=1.0).contains(&v) {
        return Err(format!(
            "{s} is outside [0, 1]: give the largest tolerated share of failures, e.g. 0.01 for 1%"
        ));
    }
    Ok(v)
}

/// The exit code for an error: the first typed cause in its chain decides.
pub fn code_of(err: &anyhow::Error) -> u8 {
    for cause in err.chain() {
        if cause.is::<Interrupted>() {
            return INTERRUPTED;
        }
        if cause.is::<TooManyFailures>() {
            return FAILURES;
        }
        if is_bad_input(cause) {
            return BAD_INPUT;
        }
    }
    ERROR
}

/// Errors of the libraries that mean the input is wrong (not the server or the machine).
fn is_bad_input(cause: &(dyn std::error::Error + 'static)) -> bool {
    use servebench_core::CoreError;
    use servebench_eval::error::EvalError;
    use servebench_load::LoadError;
    use servebench_tokenize::TokenizeError;
    if cause.is::<BadInput>()
        || cause.is::<crate::sweep_plan::PlanError>()
        || cause.is::<servebench_load::outpath::OutputPathError>()
        || cause.is::<servebench_load::nofile::OpenFilesError>()
        || cause.is::<servebench_load::preflight::LocalError>()
        || cause.is::<TokenizeError>()
        || cause.is::<clap::Error>()
    {
        return true;
    }
    if let Some(e) = cause.downcast_ref::<CoreError>() {
        return matches!(e, CoreError::UnknownBackend(_));
    }
    if let Some(e) = cause.downcast_ref::<servebench_load::preflight::ServerError>() {
        return e.is_bad_input();
    }
    if let Some(e) = cause.downcast_ref::<LoadError>() {
        return match e {
            LoadError::Server(s) => s.is_bad_input(),
            _ => matches!(
                e,
                LoadError::Config(_) | LoadError::Dataset { .. } | LoadError::Tokenize(_)
            ),
        };
    }
    if let Some(e) = cause.downcast_ref::<EvalError>() {
        return matches!(
            e,
            EvalError::Config(_)
                | EvalError::Data { .. }
                | EvalError::Missing { .. }
                | EvalError::SettingsMismatch { .. }
        );
    }
    if let Some(e) = cause.downcast_ref::<servebench_sim::SimError>() {
        return matches!(e, servebench_sim::SimError::Config(_));
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_fail_only_when_all_failed_by_default() {
        assert!(check_failures("requests", 10, 0, None).is_ok());
        assert!(check_failures("requests", 1, 99, None).is_ok());
        assert!(check_failures("requests", 0, 0, None).is_ok());
        let e = check_failures("requests", 0, 5, None).unwrap_err();
        assert_eq!(e.to_string(), "5 of 5 requests failed");
    }

    #[test]
    fn failures_above_the_rate_fail() {
        assert!(check_failures("samples", 99, 1, Some(0.01)).is_ok());
        let e = check_failures("samples", 98, 2, Some(0.01)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "2 of 100 samples failed, above --max-failure-rate 0.01"
        );
        assert!(check_failures("samples", 99, 1, Some(0.0)).is_err());
        assert!(check_failures("samples", 0, 3, Some(1.0)).is_ok());
    }

    #[test]
    fn rate_is_a_fraction() {
        assert_eq!(parse_rate("0.05"), Ok(0.05));
        assert!(parse_rate("5%").unwrap_err().contains("not a number"));
        assert!(parse_rate("1.5").unwrap_err().contains("outside [0, 1]"));
        assert!(parse_rate("-0.1").is_err());
        assert!(parse_rate("NaN").is_err());
    }

    #[test]
    fn a_cause_named_in_the_message_is_printed_once() {
        let os = || std::io::Error::from_raw_os_error(2);
        // thiserror's `#[error("cannot read {path}: {source}")]` with the source also returned by source().
        #[derive(Debug, thiserror::Error)]
        #[error("cannot read plan x.toml: {source}")]
        struct Read {
            source: std::io::Error,
        }
        let e = anyhow::Error::new(Read { source: os() }).context("sweep");
        assert_eq!(
            format!("{e:#}").matches("os error 2").count(),
            2,
            "anyhow repeats it"
        );
        assert_eq!(
            message(&e),
            "sweep: cannot read plan x.toml: No such file or directory (os error 2)"
        );
        // A cause not named above is kept.
        let e = anyhow::Error::new(os()).context("cannot open r.jsonl");
        assert_eq!(
            message(&e),
            "cannot open r.jsonl: No such file or directory (os error 2)"
        );
        let bad = BadInput::from_err(anyhow::Error::new(Read { source: os() }));
        assert_eq!(bad.to_string().matches("os error 2").count(), 1);
    }

    #[test]
    fn codes_follow_the_first_typed_cause() {
        let plain = anyhow::anyhow!("connection refused");
        assert_eq!(code_of(&plain), ERROR);
        let bad = anyhow::Error::new(BadInput("--x".into())).context("bench");
        assert_eq!(code_of(&bad), BAD_INPUT);
        let fail = anyhow::Error::new(check_failures("requests", 0, 1, None).unwrap_err());
        assert_eq!(code_of(&fail), FAILURES);
        let int = anyhow::Error::new(Interrupted("3 of 10 requests finished".into()));
        assert_eq!(code_of(&int), INTERRUPTED);
        let tok = anyhow::Error::new(servebench_tokenize::TokenizeError::NoTokenizerInFolder(
            "/x".into(),
        ));
        assert_eq!(code_of(&tok), BAD_INPUT);
        let warm = anyhow::Error::new(servebench_load::LoadError::Warmup("500".into()));
        assert_eq!(code_of(&warm), ERROR);
    }
}
