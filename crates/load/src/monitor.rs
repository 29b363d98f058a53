//! Is the client itself the bottleneck? A ticker measures how late the async runtime wakes it up (event-loop
//! lag); CPU time of the process is read from `/proc/self/stat` where available.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;
use tokio::time::Sleep;

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
            let mut ticks = Ticks::new(Instant::now());
            loop {
                let late = ticks.next().await.as_secs_f64() * 1000.0;
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

/// The probe's ticks, one `TICK` apart; each gives how late the runtime woke it. After a stall that outlasted
/// the next tick the ticks start again from then, as one sleep after another would: a stalled loop gives one late
/// sample, not one per tick it missed.
///
/// Two timers take turns, one tick apart. tokio wakes its event loop whenever a timer becomes the earliest one
/// (so that the loop's wait ends in time): one sleep set again after it fired is always the earliest (the
/// requests' watchdogs are minutes away), so each tick cost two wake-ups of the loop. Setting a timer two ticks
/// on while the other one is still pending and earlier wakes nothing: one wake-up per tick.
struct Ticks {
    sleeps: [Pin<Box<Sleep>>; 2],
    due: [Instant; 2],
    /// Which timer fires next (the one due first).
    next: usize,
    /// Both timers are registered (a sleep registers on its first poll).
    armed: bool,
}

impl Ticks {
    fn new(now: Instant) -> Ticks {
        let due = [now + TICK, now + 2 * TICK];
        Ticks {
            sleeps: due.map(|d| Box::pin(tokio::time::sleep_until(d.into()))),
            due,
            next: 0,
            armed: false,
        }
    }

    /// Waits for the next tick; returns how late it came.
    async fn next(&mut self) -> Duration {
        let (i, other) = (self.next, 1 - self.next);
        if !self.armed {
            self.armed = true;
            let later = &mut self.sleeps[other];
            // Registers it (its result is read when it is awaited).
            std::future::poll_fn(|cx| {
                let _ = later.as_mut().poll(cx);
                Poll::Ready(())
            })
            .await;
        }
        self.sleeps[i].as_mut().await;
        let now = Instant::now();
        let late = now.saturating_duration_since(self.due[i]);
        if now >= self.due[other] {
            self.due[other] = now + TICK;
            self.sleeps[other].as_mut().reset(self.due[other].into());
        }
        self.due[i] = self.due[other] + TICK;
        self.sleeps[i].as_mut().reset(self.due[i].into());
        self.next = other;
        late
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

    #[tokio::test(flavor = "current_thread")]
    async fn a_stall_over_several_ticks_gives_one_late_sample_and_ticks_stay_a_tick_apart() {
        let m = LagMonitor::start();
        let t0 = Instant::now();
        tokio::time::sleep(Duration::from_millis(15)).await;
        std::thread::sleep(Duration::from_millis(55)); // five ticks missed
        tokio::time::sleep(Duration::from_millis(35)).await;
        let elapsed = t0.elapsed();
        let lags = m.stop();
        let late: Vec<&f64> = lags.iter().filter(|&&l| l > 20.0).collect();
        assert_eq!(late.len(), 1, "one late sample for one stall: {lags:?}");
        // Ticks never come closer than one apart: at most one per TICK of run time.
        let most = (elapsed.as_secs_f64() / TICK.as_secs_f64()).floor() as usize;
        assert!(
            (3..=most).contains(&lags.len()),
            "{} samples in {elapsed:?}: {lags:?}",
            lags.len()
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn the_timer_set_again_is_never_the_earliest() {
        // The rule that spares the event loop a wake-up per tick: when a tick fires and its timer is set again,
        // the other timer is pending and due first; after a stall too.
        let mut t = Ticks::new(Instant::now());
        for round in 0..12 {
            if round == 6 {
                std::thread::sleep(Duration::from_millis(35));
            }
            t.next().await;
            let (next, reset) = (t.next, 1 - t.next);
            assert!(t.due[next] < t.due[reset], "round {round}");
            assert_eq!(t.due[reset] - t.due[next], TICK, "round {round}");
            assert!(t.due[next] > Instant::now() - TICK, "round {round}");
        }
    }

    #[test]
    fn cpu_and_rss_are_readable_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(process_cpu_seconds().is_some());
            assert!(peak_rss_kib().unwrap() > 0);
        }
    }
}
