//! Process groups of launched servers: signalling a whole group, telling whether any member is still alive,
//! and a registry of the groups alive in this process so that a signal handler can stop them before exiting.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A launched process group that has not been stopped yet.
#[derive(Debug, Clone, Copy, PartialEq)]
struct LiveGroup {
    pgid: i32,
    grace: Duration,
}

static LIVE: Mutex<Vec<LiveGroup>> = Mutex::new(Vec::new());

fn live() -> std::sync::MutexGuard<'static, Vec<LiveGroup>> {
    // A panic while holding the lock leaves a valid Vec: keep using it.
    LIVE.lock().unwrap_or_else(|p| p.into_inner())
}

pub(crate) fn register(pgid: i32, grace: Duration) {
    live().push(LiveGroup { pgid, grace });
}

pub(crate) fn unregister(pgid: i32) {
    live().retain(|g| g.pgid != pgid);
}

/// The process groups launched by this process and not stopped yet.
pub fn launched_groups() -> Vec<i32> {
    live().iter().map(|g| g.pgid).collect()
}

/// Sends `sig` to every process of group `pgid`; false when the group has no process left.
#[cfg(unix)]
pub(crate) fn signal_group(pgid: i32, sig: nix::sys::signal::Signal) -> bool {
    use nix::unistd::Pid;
    pgid > 1 && nix::sys::signal::killpg(Pid::from_raw(pgid), sig).is_ok()
}

/// The processes of group `pgid` that are alive (zombies, which hold nothing, are left out).
#[cfg(target_os = "linux")]
pub fn group_members(pgid: i32) -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|s| stat_state_and_pgrp(&s))
                .is_some_and(|(state, pgrp)| pgrp == pgid && state != 'Z' && state != 'X')
        })
        .collect()
}

/// The processes of group `pgid` that are alive (without /proc: whether the group accepts a signal at all).
#[cfg(all(unix, not(target_os = "linux")))]
pub fn group_members(pgid: i32) -> Vec<i32> {
    use nix::unistd::Pid;
    if pgid > 1 && nix::sys::signal::killpg(Pid::from_raw(pgid), None).is_ok() {
        vec![pgid]
    } else {
        Vec::new()
    }
}

/// The processes among `pids` that hold a socket listening on TCP `port` (any address): `None` when that cannot
/// be told (no `/proc`, or no listening socket found at all), `Some(empty)` when someone else holds it.
#[cfg(target_os = "linux")]
pub fn listeners_among(port: u16, pids: &[i32]) -> Option<Vec<i32>> {
    let mut inodes = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        if let Ok(t) = std::fs::read_to_string(table) {
            inodes.extend(listening_inodes(&t, port));
        }
    }
    if inodes.is_empty() {
        return None;
    }
    let wanted: Vec<String> = inodes.iter().map(|i| format!("socket:[{i}]")).collect();
    let holds = |pid: i32| {
        std::fs::read_dir(format!("/proc/{pid}/fd")).is_ok_and(|d| {
            d.filter_map(|e| e.ok())
                .filter_map(|e| std::fs::read_link(e.path()).ok())
                .any(|l| wanted.iter().any(|w| l.as_os_str() == w.as_str()))
        })
    };
    Some(pids.iter().copied().filter(|p| holds(*p)).collect())
}

/// Inodes of the sockets in LISTEN state on `port` in a `/proc/net/tcp` table.
pub(crate) fn listening_inodes(table: &str, port: u16) -> Vec<u64> {
    table
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let local_port = u16::from_str_radix(f.get(1)?.rsplit(':').next()?, 16).ok()?;
            (local_port == port && *f.get(3)? == "0A").then(|| f.get(9)?.parse().ok())?
        })
        .collect()
}

/// State and process group from a `/proc/PID/stat` line (`pid (comm) S ppid pgrp …`; comm may hold spaces).
pub(crate) fn stat_state_and_pgrp(stat: &str) -> Option<(char, i32)> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut f = rest.split_whitespace();
    let state = f.next()?.chars().next()?;
    let _ppid = f.next()?;
    let pgrp = f.next()?.parse().ok()?;
    Some((state, pgrp))
}

/// Makes the command's process get SIGTERM when servebench dies, even by SIGKILL (Linux: `PR_SET_PDEATHSIG`,
/// kept across `exec`). A process started with `shell = true` passes it on only if the shell `exec`s.
#[cfg(target_os = "linux")]
pub(crate) fn stop_with_parent(cmd: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    let parent = std::process::id() as i32;
    // SAFETY: the closure runs between fork and exec and only makes two system calls (prctl, getppid), both
    // async-signal-safe; it allocates nothing on success.
    unsafe {
        cmd.pre_exec(move || {
            nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGTERM)
                .map_err(std::io::Error::from)?;
            // servebench died before the prctl took effect: do not start an orphan.
            if nix::unistd::getppid().as_raw() != parent {
                return Err(std::io::Error::from_raw_os_error(nix::libc::ESRCH));
            }
            Ok(())
        });
    }
}

/// Stops `pgid`: SIGTERM to the group, SIGKILL after `grace` if any member is left. `reap` is called while
/// waiting so that the caller can collect its own child (a zombie holds no resources but a pid).
#[cfg(unix)]
pub(crate) fn stop_group(pgid: i32, grace: Duration, mut reap: impl FnMut()) -> StopHow {
    use nix::sys::signal::Signal;
    if group_members(pgid).is_empty() {
        reap();
        return StopHow::AlreadyGone;
    }
    signal_group(pgid, Signal::SIGTERM);
    if wait_empty(pgid, grace, &mut reap) {
        return StopHow::Terminated;
    }
    signal_group(pgid, Signal::SIGKILL);
    wait_empty(pgid, Duration::from_secs(5), &mut reap);
    StopHow::Killed
}

fn wait_empty(pgid: i32, limit: Duration, reap: &mut impl FnMut()) -> bool {
    let t0 = Instant::now();
    loop {
        reap();
        if group_members(pgid).is_empty() {
            return true;
        }
        if t0.elapsed() >= limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// How a stop went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopHow {
    /// Nothing was left to stop.
    AlreadyGone,
    /// Every process ended after SIGTERM within the grace period.
    Terminated,
    /// Something outlived the grace period and got SIGKILL.
    Killed,
}

/// Stops every group this process launched and has not stopped yet (SIGTERM to all at once, then SIGKILL after
/// the longest grace period). For signal handlers that are about to exit.
#[cfg(unix)]
pub fn stop_all_launched() {
    use nix::sys::signal::Signal;
    let groups: Vec<LiveGroup> = std::mem::take(&mut *live());
    if groups.is_empty() {
        return;
    }
    for g in &groups {
        signal_group(g.pgid, Signal::SIGTERM);
    }
    let grace = groups.iter().map(|g| g.grace).max().unwrap_or_default();
    let t0 = Instant::now();
    while t0.elapsed() < grace && groups.iter().any(|g| !group_members(g.pgid).is_empty()) {
        std::thread::sleep(Duration::from_millis(25));
    }
    for g in &groups {
        if !group_members(g.pgid).is_empty() {
            signal_group(g.pgid, Signal::SIGKILL);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_with_spaces_in_the_name() {
        assert_eq!(
            stat_state_and_pgrp("1234 (python3 -m x) S 1 1234 1234 0 -1"),
            Some(('S', 1234))
        );
        assert_eq!(stat_state_and_pgrp("7 (a) b) Z 1 99 7"), Some(('Z', 99)));
        assert_eq!(stat_state_and_pgrp("garbage"), None);
    }

    #[test]
    fn listening_sockets_are_read_from_the_tcp_table() {
        let t = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:7530 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0
   1: 0100007F:7530 0100007F:9C40 01 00000000:00000000 00:00000000 00000000     0        0 4343 1 0
   2: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4444 1 0
";
        assert_eq!(listening_inodes(t, 30000), [4242]);
        assert_eq!(listening_inodes(t, 8080), [4444]);
        assert!(listening_inodes(t, 1).is_empty());
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_listener_of_a_port_is_found() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let me = std::process::id() as i32;
        assert_eq!(listeners_among(port, &[me, 1]), Some(vec![me]));
        drop(l);
        // Once closed, this process holds no listener there. (Tests running beside this one may start servers,
        // as child processes, that the kernel gives the freed port: then a listener exists that is not ours.)
        let after = listeners_among(port, &[me]);
        assert!(
            after.is_none() || after == Some(vec![]),
            "still listed as the listener: {after:?}"
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn own_group_is_seen() {
        let pgid = nix::unistd::getpgrp().as_raw();
        assert!(group_members(pgid).contains(&(std::process::id() as i32)));
        assert!(group_members(i32::MAX - 7).is_empty());
    }
}
