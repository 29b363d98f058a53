//! A request raced against its watchdog, where the watchdog is polled only when its own timer woke the task.
//!
//! `tokio::select!` polls every branch on every wake-up: a streamed answer wakes its task once per chunk, so
//! a watchdog branch would cost one timer poll (deadline check, waker registration) per chunk for a timer that
//! almost never fires. [`guarded`] polls `work` on every wake-up and `guard` only on the first poll and when
//! `guard` itself asked to be woken. The result is the same as a biased `select!` of the two.

use futures_util::task::AtomicWaker;
use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

/// The waker `guard` is polled with: notes that the guard asked to be polled, then wakes the task.
struct GuardWake {
    fired: AtomicBool,
    task: AtomicWaker,
}

impl Wake for GuardWake {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.fired.store(true, Ordering::Release);
        self.task.wake();
    }
}

/// `work`'s output, or `guard`'s when `guard` finishes first (`work` is polled first on every wake-up).
pub(crate) async fn guarded<T>(work: impl Future<Output = T>, guard: impl Future<Output = T>) -> T {
    let mut work = pin!(work);
    let mut guard = pin!(guard);
    let wake = Arc::new(GuardWake {
        // The first poll polls the guard: it sets its timer then.
        fired: AtomicBool::new(true),
        task: AtomicWaker::new(),
    });
    let guard_waker = Waker::from(wake.clone());
    std::future::poll_fn(move |cx| {
        if let Poll::Ready(v) = work.as_mut().poll(cx) {
            return Poll::Ready(v);
        }
        // Registered before the flag is read: a guard wake-up after the read wakes this task again.
        wake.task.register(cx.waker());
        if wake.fired.swap(false, Ordering::AcqRel) {
            let mut gcx = Context::from_waker(&guard_waker);
            if let Poll::Ready(v) = guard.as_mut().poll(&mut gcx) {
                return Poll::Ready(v);
            }
        }
        Poll::Pending
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    /// A guard that counts its polls and finishes with 0 after `after`.
    async fn counting_guard(polls: &AtomicUsize, after: Duration) -> u32 {
        let sleep = tokio::time::sleep(after);
        let mut sleep = pin!(sleep);
        std::future::poll_fn(|cx| {
            polls.fetch_add(1, Ordering::Relaxed);
            sleep.as_mut().poll(cx).map(|_| 0)
        })
        .await
    }

    /// Work that wakes its task `n` times (one yield each), then gives 1.
    async fn busy_work(n: usize) -> u32 {
        for _ in 0..n {
            tokio::task::yield_now().await;
        }
        1
    }

    #[tokio::test(flavor = "current_thread")]
    async fn work_wake_ups_do_not_poll_the_guard() {
        let polls = AtomicUsize::new(0);
        let v = guarded(
            busy_work(1000),
            counting_guard(&polls, Duration::from_secs(60)),
        )
        .await;
        assert_eq!(v, 1);
        // Once, on the first poll (a select! would have polled it ~1,000 times).
        assert_eq!(polls.load(Ordering::Relaxed), 1);
    }

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn the_guard_wins_when_its_timer_fires_first() {
        let polls = AtomicUsize::new(0);
        let work = async {
            tokio::time::sleep(Duration::from_secs(10)).await;
            1
        };
        let v = guarded(work, counting_guard(&polls, Duration::from_millis(50))).await;
        assert_eq!(v, 0);
        assert_eq!(polls.load(Ordering::Relaxed), 2);
    }

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn work_ready_at_the_same_time_wins() {
        let polls = AtomicUsize::new(0);
        let work = async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            1
        };
        let v = guarded(work, counting_guard(&polls, Duration::from_millis(50))).await;
        assert_eq!(v, 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_guard_that_re_arms_is_polled_again() {
        // The watchdog's pattern: wake, find the deadline moved, sleep again; then fire.
        let polls = AtomicUsize::new(0);
        let guard = async {
            polls.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(20)).await;
            polls.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(20)).await;
            0
        };
        let work = async {
            tokio::time::sleep(Duration::from_secs(30)).await;
            1
        };
        let v = tokio::time::timeout(Duration::from_secs(10), guarded(work, guard))
            .await
            .expect("the guard fires within 10 s");
        assert_eq!(v, 0);
        assert_eq!(polls.load(Ordering::Relaxed), 2);
    }
}
