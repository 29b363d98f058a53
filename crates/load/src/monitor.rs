//! Is the client itself the bottleneck? A ticker measures how late the async runtime wakes it up (event-loop
//! lag); CPU time of the process is read from `/proc/self/stat` where available.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

/// Tick period of the lag probe.
pub const TICK: Duration = Duration::from_millis(10);
/// p99 lag above this marks the client as saturated.
pub const SATURATED_P99_MS: f64 = 5.0;
/// More than this share of reads (%) taking bytes over 1 ms after they arrived marks the client as busy
/// (kernel timestamps only).
pub const LATE_READS_WARN_PCT: f64 = 1.0;
/// A single lag above this is a burst: the client was saturated for a moment (e.g. sending a wave of requests).
pub const BURST_MAX_MS: f64 = 20.0;

/// A running lag probe.
pub struct LagMonitor {
    samples: Arc<Mutex<Vec<f64>>>,
    handle: JoinHandle<()>,
}

impl LagMonitor {
    pub fn start() -> LagMonitor {
        let samples = Arc::new(Mutex::new(Vec::with_capacity(4096)));
        let s = samples.clone();
        let handle = tokio::spawn(async move {
            loop {
                let t = Instant::now();
                tokio::time::sleep(TICK).await;
                let late = t.elapsed().saturating_sub(TICK).as_secs_f64() * 1000.0;
                if let Ok(mut v) = s.lock() {
                    v.push(late);
                }
            }
        });
        LagMonitor { samples, handle }
    }

    /// Stops the probe and returns the lag samples (ms).
    pub fn stop(self) -> Vec<f64> {
        self.handle.abort();
        self.samples
            .lock()
            .map(|mut v| std::mem::take(&mut *v))
            .unwrap_or_default()
    }
}

/// CPU seconds (user + system) used by this process so far, where the OS tells (Linux).
pub fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0) // USER_HZ is 100 on Linux
}

/// Peak resident set size of this process in KiB (Linux `VmHWM`).
pub fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn blocked_loop_shows_lag() {
        let m = LagMonitor::start();
        tokio::time::sleep(Duration::from_millis(35)).await;
        std::thread::sleep(Duration::from_millis(60)); // block the only worker thread
        tokio::time::sleep(Duration::from_millis(25)).await;
        let lags = m.stop();
        assert!(!lags.is_empty());
        let max = lags.iter().cloned().fold(0.0, f64::max);
        assert!(max >= 40.0, "a 60 ms block must show as lag, max was {max}");
    }

    #[test]
    fn cpu_and_rss_are_readable_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(process_cpu_seconds().is_some());
            assert!(peak_rss_kib().unwrap() > 0);
        }
    }
}
