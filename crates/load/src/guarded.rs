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

/// What a guarded request's work, its guard and the guard's waker share, in one allocation of one cache line:
/// the guard's flag and the task's waker, and the caller's `state` (the client keeps its watchdog's progress
/// here, which the work writes on every chunk). A paced stream's every wake-up reads the flag; with the state
/// beside it, that read costs no cache line of its own among hundreds of streams.
#[repr(align(64))]
pub(crate) struct GuardCell<S> {
    fired: AtomicBool,
    task: AtomicWaker,
    pub(crate) state: S,
}

impl<S> GuardCell<S> {
    pub(crate) fn new(state: S) -> Arc<Self> {
        Arc::new(GuardCell {
            // The first poll polls the guard: it sets its timer then.
            fired: AtomicBool::new(true),
            task: AtomicWaker::new(),
            state,
        })
    }
}

/// The waker `guard` is polled with: notes that the guard asked to be polled, then wakes the task.
impl<S: Send + Sync + 'static> Wake for GuardCell<S> {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.fired.store(true, Ordering::Release);
        self.task.wake();
    }
}

/// `work`'s output, or `guard`'s when `guard` finishes first (`work` is polled first on every wake-up).
/// `cell` serves one call at a time; each call starts by polling the guard (it sets its timer then).
pub(crate) async fn guarded<S: Send + Sync + 'static, T>(
    cell: Arc<GuardCell<S>>,
    work: impl Future<Output = T>,
    guard: impl Future<Output = T>,
) -> T {
    let mut work = pin!(work);
    let mut guard = pin!(guard);
    cell.fired.store(true, Ordering::Release);
    let guard_waker = Waker::from(cell.clone());
    // The task waker `cell.task` holds, as far as this task knows: it stays there until a guard wake-up takes
    // it, and a guard wake-up sets `fired` before it takes it. So a poll that finds `fired` unset, with the waker
    // it registered before, has nothing to register: a streamed answer's wake-ups cost no atomic
    // read-modify-write here (each one would wait for the CPU's pending stores).
    let mut registered: Option<Waker> = None;
    std::future::poll_fn(move |cx| {
        if let Poll::Ready(v) = work.as_mut().poll(cx) {
            return Poll::Ready(v);
        }
        let fired = cell.fired.load(Ordering::Acquire);
        if fired || !registered.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            // Registered before the flag is taken: a guard wake-up after the swap wakes this task again.
            cell.task.register(cx.waker());
            registered = Some(cx.waker().clone());
        }
        if fired && cell.fired.swap(false, Ordering::AcqRel) {
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
            GuardCell::new(()),
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
        let v = guarded(
            GuardCell::new(()),
            work,
            counting_guard(&polls, Duration::from_millis(50)),
        )
        .await;
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
        let v = guarded(
            GuardCell::new(()),
            work,
            counting_guard(&polls, Duration::from_millis(50)),
        )
        .await;
        assert_eq!(v, 1);
    }

    /// A cell used again (one call after another) starts its next call by polling the guard, as a new one does.
    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn a_cell_used_again_polls_its_guard_first() {
        let cell = GuardCell::new(());
        let polls = AtomicUsize::new(0);
        let v = guarded(
            cell.clone(),
            busy_work(3),
            counting_guard(&polls, Duration::from_secs(60)),
        )
        .await;
        assert_eq!((v, polls.load(Ordering::Relaxed)), (1, 1));
        let work = async {
            tokio::time::sleep(Duration::from_secs(10)).await;
            1
        };
        let v = guarded(
            cell,
            work,
            counting_guard(&polls, Duration::from_millis(50)),
        )
        .await;
        assert_eq!((v, polls.load(Ordering::Relaxed)), (0, 3));
    }

    /// `guarded` in a task of its own, awaited for at most 3 s from the test's task: a wake-up of the test's
    /// own timer never reaches it, so a lost guard wake-up shows as `None`.
    async fn in_own_task(
        work: impl Future<Output = u32> + Send + 'static,
        guard: impl Future<Output = u32> + Send + 'static,
    ) -> Option<u32> {
        let task = tokio::spawn(guarded(GuardCell::new(()), work, guard));
        tokio::time::timeout(Duration::from_secs(3), task)
            .await
            .ok()
            .map(|r| r.expect("the guarded task does not panic"))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_guard_that_re_arms_is_polled_again() {
        // The watchdog's pattern: wake, find the deadline moved, sleep again; then fire.
        let polls = Arc::new(AtomicUsize::new(0));
        let p = polls.clone();
        let guard = async move {
            p.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(20)).await;
            p.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(20)).await;
            0
        };
        let work = async {
            tokio::time::sleep(Duration::from_secs(30)).await;
            1
        };
        assert_eq!(in_own_task(work, guard).await, Some(0), "the guard fires");
        assert_eq!(polls.load(Ordering::Relaxed), 2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_guard_re_arming_while_work_wakes_the_task_fires_after_the_work_stalls() {
        // Work wake-ups register nothing; the guard's first wake-up takes the registered waker, so the poll that
        // sees it must register again, or the guard's next timer would wake nobody once the work stalls.
        let guard = async {
            tokio::time::sleep(Duration::from_millis(15)).await;
            tokio::time::sleep(Duration::from_millis(120)).await;
            0
        };
        // Wakes its task every millisecond for 50 ms, then stalls.
        let work = async {
            for _ in 0..50 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            tokio::time::sleep(Duration::from_secs(30)).await;
            1
        };
        assert_eq!(in_own_task(work, guard).await, Some(0), "the guard fires");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_guard_firing_after_the_work_stalled_wakes_the_task() {
        // Work wakes the task a few times (same waker), then waits forever; only the guard can end it.
        let work = async {
            for _ in 0..5 {
                tokio::task::yield_now().await;
            }
            std::future::pending::<u32>().await
        };
        let guard = async {
            tokio::time::sleep(Duration::from_millis(30)).await;
            7
        };
        assert_eq!(in_own_task(work, guard).await, Some(7), "the guard fires");
    }
}
