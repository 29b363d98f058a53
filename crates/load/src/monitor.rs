//! Is the client itself the bottleneck? Event-loop lag: with kernel receive timestamps, how long reads
//! find bytes waiting ([`ReadLag`]); without, how late the async runtime wakes a ticker ([`LagMonitor`]). CPU
//! time of the process is read from `/proc/self/stat` where available.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;
use tokio::time::Sleep;

/// Tick period of the lag probe.
pub const TICK: Duration = Duration::from_micros(TICK_US);
const TICK_US: u64 = 10_000;
/// p99 lag above this marks the client as saturated.
pub const SATURATED_P99_MS: f64 = 5.0;
/// More than this share of reads (%) taking bytes over 1 ms after they arrived marks the client as busy
/// (kernel timestamps only).
pub const LATE_READS_WARN_PCT: f64 = 1.0;
/// A single lag above this is a burst: the client was saturated for a moment (e.g. sending a wave of requests).
pub const BURST_MAX_MS: f64 = 20.0;

/// Where the event-loop lag samples came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LagSource {
    /// [`ReadLag`]: the arrival → read wait of a read every [`TICK`].
    Reads,
    /// The ticker: how late a [`TICK`] timer fired.
    #[default]
    Ticker,
}

impl LagSource {
    pub fn as_str(self) -> &'static str {
        match self {
            LagSource::Reads => "reads",
            LagSource::Ticker => "ticker",
        }
    }
}

/// Event-loop lag read off the reads themselves: the arrival → read wait (kernel timestamps) of the first
/// read after each [`TICK`], from all the connections that share it. What a late runtime delays is exactly
/// that wait, and sampling it costs a comparison a read; the ticker's timer instead ends the loop's wait for
/// I/O once a tick, and on paced streams (a burst of events every decode step, the loop idle in between) those
/// wake-ups cost about a fifteenth of the client's CPU.
#[derive(Debug)]
pub struct ReadLag {
    epoch: Instant,
    /// Microseconds after `epoch` from which the next read is sampled; `u64::MAX` while not sampling.
    due_us: AtomicU64,
    samples: Mutex<Vec<f64>>,
}

impl Default for ReadLag {
    fn default() -> Self {
        ReadLag {
            epoch: Instant::now(),
            due_us: AtomicU64::new(u64::MAX),
            samples: Mutex::new(Vec::new()),
        }
    }
}

impl ReadLag {
    /// Starts sampling (the samples of an earlier run are dropped); the next read is sampled.
    pub fn start(&self) {
        if let Ok(mut v) = self.samples.lock() {
            v.clear();
        }
        self.due_us.store(0, Relaxed);
    }

    /// A read at `now` took bytes that had waited `waited` since the kernel received them.
    #[inline]
    pub fn offer(&self, now: Instant, waited: Duration) {
        let due = self.due_us.load(Relaxed);
        if due == u64::MAX {
            return;
        }
        let at = u64::try_from(now.saturating_duration_since(self.epoch).as_micros())
            .unwrap_or(u64::MAX)
            .min(u64::MAX - 1);
        if at < due {
            return;
        }
        let next = at.saturating_add(TICK_US).min(u64::MAX - 1);
        // One read per tick wins the sample, whichever thread it runs on.
        if self
            .due_us
            .compare_exchange(due, next, Relaxed, Relaxed)
            .is_ok()
        {
            if let Ok(mut v) = self.samples.lock() {
                v.push(waited.as_secs_f64() * 1000.0);
            }
        }
    }

    /// Whether a read was sampled since [`ReadLag::start`].
    pub fn sampled(&self) -> bool {
        !matches!(self.due_us.load(Relaxed), 0 | u64::MAX)
    }

    /// Stops sampling and returns the samples (ms).
    pub fn stop(&self) -> Vec<f64> {
        self.due_us.store(u64::MAX, Relaxed);
        self.samples
            .lock()
            .map(|mut v| std::mem::take(&mut *v))
            .unwrap_or_default()
    }
}

/// A running lag probe: the ticker, until one of `reads` samples a read (from then on the reads' samples are
/// the lag, and the ticker stops: it would only wake the loop).
pub struct LagMonitor {
    samples: Arc<Mutex<Vec<f64>>>,
    reads: Vec<Arc<ReadLag>>,
    handle: JoinHandle<()>,
}

impl LagMonitor {
    /// Starts the ticker and the read samplers `reads` (none: the ticker alone).
    pub fn start(reads: Vec<Arc<ReadLag>>) -> LagMonitor {
        for r in &reads {
            r.start();
        }
        let samples = Arc::new(Mutex::new(Vec::with_capacity(4096)));
        let s = samples.clone();
        let watched = reads.clone();
        let handle = tokio::spawn(async move {
            let mut ticks = Ticks::new(Instant::now());
            loop {
                let late = ticks.next().await.as_secs_f64() * 1000.0;
                if watched.iter().any(|r| r.sampled()) {
                    return;
                }
                if let Ok(mut v) = s.lock() {
                    v.push(late);
                }
            }
        });
        LagMonitor {
            samples,
            reads,
            handle,
        }
    }

    /// Stops the probe and returns the lag samples (ms): the reads' where any read was sampled, else the
    /// ticker's.
    pub fn stop(self) -> (Vec<f64>, LagSource) {
        self.handle.abort();
        let from_reads: Vec<f64> = self.reads.iter().flat_map(|r| r.stop()).collect();
        if !from_reads.is_empty() {
            return (from_reads, LagSource::Reads);
        }
        let ticks = self
            .samples
            .lock()
            .map(|mut v| std::mem::take(&mut *v))
            .unwrap_or_default();
        (ticks, LagSource::Ticker)
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
        let m = LagMonitor::start(Vec::new());
        tokio::time::sleep(Duration::from_millis(35)).await;
        std::thread::sleep(Duration::from_millis(60)); // block the only worker thread
        tokio::time::sleep(Duration::from_millis(25)).await;
        let (lags, source) = m.stop();
        assert_eq!(source, LagSource::Ticker);
        assert!(!lags.is_empty());
        let max = lags.iter().cloned().fold(0.0, f64::max);
        assert!(max >= 40.0, "a 60 ms block must show as lag, max was {max}");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_stall_over_several_ticks_gives_one_late_sample_and_ticks_stay_a_tick_apart() {
        let m = LagMonitor::start(Vec::new());
        let t0 = Instant::now();
        tokio::time::sleep(Duration::from_millis(15)).await;
        std::thread::sleep(Duration::from_millis(55)); // five ticks missed
        tokio::time::sleep(Duration::from_millis(35)).await;
        let elapsed = t0.elapsed();
        let (lags, source) = m.stop();
        assert_eq!(source, LagSource::Ticker);
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
    fn reads_are_sampled_once_a_tick_while_started() {
        let lag = ReadLag::default();
        let t0 = Instant::now();
        let ms = |m: u64| Duration::from_millis(m);
        lag.offer(t0, ms(9)); // not started: ignored
        assert!(!lag.sampled());
        lag.start();
        assert!(!lag.sampled());
        lag.offer(t0 + ms(1), ms(2)); // the first read is sampled
        assert!(lag.sampled());
        lag.offer(t0 + ms(5), ms(7)); // within the tick: not
        lag.offer(t0 + ms(10), ms(7)); // 9 ms after the sample: not yet
        lag.offer(t0 + ms(11), Duration::from_micros(250)); // a tick after it
        lag.offer(t0 + ms(40), ms(3)); // after a quiet while: the next read
        lag.offer(t0 + ms(45), ms(3));
        let got = lag.stop();
        assert_eq!(got.len(), 3, "{got:?}");
        for (g, want) in got.iter().zip([2.0, 0.25, 3.0]) {
            assert!((g - want).abs() < 1e-9, "{got:?}");
        }
        lag.offer(t0 + ms(100), ms(4)); // stopped
        assert!(!lag.sampled());
        // Started again: the last run's samples are gone.
        lag.start();
        lag.offer(t0 + ms(101), ms(1));
        assert_eq!(lag.stop(), vec![1.0]);
    }

    #[test]
    fn one_read_of_many_threads_wins_each_tick() {
        let lag = Arc::new(ReadLag::default());
        lag.start();
        let t0 = Instant::now();
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let lag = lag.clone();
                std::thread::spawn(move || {
                    for tick in 0..200u64 {
                        for j in 0..5u64 {
                            lag.offer(t0 + TICK * tick as u32 + Duration::from_micros(j), TICK);
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        // Each tick's reads (0 to 4 µs after the tick) reach the next sample's due time (a tick after the last
        // sample): one sample a tick, whichever thread is ahead.
        assert_eq!(lag.stop().len(), 200);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn the_ticker_gives_way_to_sampled_reads() {
        let reads = Arc::new(ReadLag::default());
        let m = LagMonitor::start(vec![reads.clone()]);
        tokio::time::sleep(Duration::from_millis(35)).await;
        // No read yet: the ticker ticks.
        assert!(!m.samples.lock().unwrap().is_empty());
        reads.offer(Instant::now(), Duration::from_micros(120));
        tokio::time::sleep(Duration::from_millis(25)).await;
        assert!(
            m.handle.is_finished(),
            "the ticker stops once a read was sampled"
        );
        let (lags, source) = m.stop();
        assert_eq!(source, LagSource::Reads);
        assert_eq!(lags.len(), 1);
        assert!((lags[0] - 0.12).abs() < 1e-9, "{lags:?}");
        // Nothing read: the ticker's samples.
        let m = LagMonitor::start(vec![Arc::new(ReadLag::default())]);
        tokio::time::sleep(Duration::from_millis(25)).await;
        let (lags, source) = m.stop();
        assert_eq!(source, LagSource::Ticker);
        assert!(!lags.is_empty());
    }

    #[test]
    fn cpu_and_rss_are_readable_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(process_cpu_seconds().is_some());
            assert!(peak_rss_kib().unwrap() > 0);
        }
    }
}
