//! The open-file limit (`RLIMIT_NOFILE`): every connection in flight holds a file descriptor, so a run at high
//! concurrency under a common default soft limit (1024) would fail midway with "Too many open files". Before
//! any work the soft limit is raised toward the hard limit as far as the run needs; when the hard limit is too
//! low the run does not start.

/// Descriptors kept free for everything besides the connections (files, the runtime, the terminal).
pub const MARGIN: u64 = 128;

/// Descriptors a run needs: one per connection it may hold at once (twice that when the simulator runs in
/// the same process: it holds the other end), plus [`MARGIN`].
pub fn needed(connections: u64, simulator_in_process: bool) -> u64 {
    let per = if simulator_in_process { 2 } else { 1 };
    connections.saturating_mul(per).saturating_add(MARGIN)
}

#[derive(Debug, thiserror::Error)]
#[error(
    "{flag} {connections} needs about {needed} open files, but the hard limit of this process is {hard}: \
     raise it (`ulimit -n {needed}` as root, or `nofile` in /etc/security/limits.conf) or lower {flag}"
)]
pub struct OpenFilesError {
    pub flag: &'static str,
    pub connections: u64,
    pub needed: u64,
    pub hard: u64,
}

/// What [`ensure`] found and did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenFiles {
    /// The soft limit before.
    pub before: u64,
    /// The soft limit now.
    pub soft: u64,
    pub hard: u64,
}

/// The new soft limit for `needed` descriptors under (`soft`, `hard`): never lowered, never above `hard`.
pub fn target(needed: u64, soft: u64, hard: u64) -> u64 {
    soft.max(needed.min(hard))
}

/// Raises the soft limit to `needed` descriptors (for `connections` given by `flag`); an error when the hard
/// limit is below `needed`. On systems without `RLIMIT_NOFILE` support here, nothing is checked.
pub fn ensure(
    needed: u64,
    flag: &'static str,
    connections: u64,
) -> Result<OpenFiles, OpenFilesError> {
    let (soft, hard) = limits();
    let new = target(needed, soft, hard);
    if new > soft {
        set_soft(new, hard);
    }
    let (now, hard) = limits();
    if now < needed {
        return Err(OpenFilesError {
            flag,
            connections,
            needed,
            hard,
        });
    }
    Ok(OpenFiles {
        before: soft,
        soft: now,
        hard,
    })
}

#[cfg(target_os = "linux")]
fn limits() -> (u64, u64) {
    use nix::sys::resource::{getrlimit, Resource};
    getrlimit(Resource::RLIMIT_NOFILE).unwrap_or((u64::MAX, u64::MAX))
}

#[cfg(target_os = "linux")]
fn set_soft(soft: u64, hard: u64) {
    use nix::sys::resource::{setrlimit, Resource};
    if let Err(e) = setrlimit(Resource::RLIMIT_NOFILE, soft, hard) {
        tracing::warn!("cannot raise the open-file limit to {soft}: {e}");
    }
}

#[cfg(not(target_os = "linux"))]
fn limits() -> (u64, u64) {
    (u64::MAX, u64::MAX)
}

#[cfg(not(target_os = "linux"))]
fn set_soft(_soft: u64, _hard: u64) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_raises_toward_the_hard_limit_only() {
        assert_eq!(target(3128, 1024, 1_048_576), 3128);
        assert_eq!(target(3128, 1024, 2048), 2048);
        assert_eq!(target(500, 1024, 4096), 1024, "never lowered");
        assert_eq!(needed(1000, false), 1128);
        assert_eq!(needed(1000, true), 2128);
        assert_eq!(needed(u64::MAX, true), u64::MAX);
    }

    #[test]
    fn ensure_raises_the_soft_limit_of_this_process() {
        let (soft, hard) = limits();
        let want = (soft + 10).min(hard);
        let got = ensure(want, "--max-concurrency", want).unwrap();
        assert!(got.soft >= want, "{got:?}");
        if hard < u64::MAX {
            let e = ensure(hard + 1, "--max-concurrency", hard)
                .unwrap_err()
                .to_string();
            assert!(
                e.contains(&format!("hard limit of this process is {hard}")),
                "{e}"
            );
        }
    }
}
