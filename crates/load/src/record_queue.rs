//! Finished requests' records, from the request tasks to the record sink's thread, in batches.
//!
//! A paced run finishes a request every millisecond or so; a channel that wakes the sink's thread for each
//! record costs a futex call on each side and two context switches on the client's core per request (the
//! issue-15 case: ~2,000 futex calls a run). Here the sink's thread wakes when [`BATCH`] records wait, when
//! `flush_every` has passed, or when the queue is closed: records still reach the result files within
//! `flush_every` of their request's end.

use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// Records that wake the sink's thread at once.
pub(crate) const BATCH: usize = 64;

pub(crate) struct RecordQueue<T> {
    state: Mutex<State<T>>,
    ready: Condvar,
    flush_every: Duration,
}

struct State<T> {
    items: Vec<T>,
    closed: bool,
}

impl<T> RecordQueue<T> {
    pub(crate) fn new(flush_every: Duration) -> RecordQueue<T> {
        RecordQueue {
            state: Mutex::new(State {
                items: Vec::with_capacity(BATCH),
                closed: false,
            }),
            ready: Condvar::new(),
            flush_every,
        }
    }

    /// A panic elsewhere while the lock was held leaves consistent state (a push or a swap): go on.
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds an item; wakes the taker when it fills a batch (the return value says whether it did).
    pub(crate) fn push(&self, item: T) -> bool {
        let mut s = self.lock();
        s.items.push(item);
        let full = s.items.len() == BATCH;
        drop(s);
        if full {
            self.ready.notify_one();
        }
        full
    }

    /// Ends the queue: the taker gets what is left, then None.
    pub(crate) fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_all();
    }

    /// The items waiting, once a batch is full, `flush_every` has passed with some waiting, or the queue is
    /// closed; None once it is closed and empty.
    pub(crate) fn take(&self) -> Option<Vec<T>> {
        let mut s = self.lock();
        loop {
            if s.items.len() >= BATCH || (s.closed && !s.items.is_empty()) {
                return Some(std::mem::replace(&mut s.items, Vec::with_capacity(BATCH)));
            }
            if s.closed {
                return None;
            }
            let (next, waited) = self
                .ready
                .wait_timeout(s, self.flush_every)
                .unwrap_or_else(PoisonError::into_inner);
            s = next;
            if waited.timed_out() && !s.items.is_empty() {
                return Some(std::mem::replace(&mut s.items, Vec::with_capacity(BATCH)));
            }
        }
    }
}

/// Closes the queue when dropped: the sink's thread ends on every way out of the run (an early return or a
/// panic included), as a channel's receiver does when its senders are gone.
pub(crate) struct CloseOnDrop<T>(pub(crate) Arc<RecordQueue<T>>);

impl<T> Drop for CloseOnDrop<T> {
    fn drop(&mut self) {
        self.0.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    /// Takes until the end, from another thread; gives each batch.
    fn taker<T: Send + 'static>(
        q: &Arc<RecordQueue<T>>,
    ) -> std::thread::JoinHandle<Vec<(Vec<T>, Instant)>> {
        let q = q.clone();
        std::thread::spawn(move || {
            let mut got = Vec::new();
            while let Some(batch) = q.take() {
                got.push((batch, Instant::now()));
            }
            got
        })
    }

    #[test]
    fn only_a_full_batch_wakes_the_taker() {
        let q = RecordQueue::new(Duration::from_secs(3600));
        for i in 0..BATCH - 1 {
            assert!(!q.push(i), "item {i} woke the taker");
        }
        assert!(q.push(BATCH - 1));
        assert!(!q.push(BATCH));
        assert_eq!(q.take(), Some((0..=BATCH).collect()), "all that waits");
        assert!(!q.push(7));
        q.close();
        assert_eq!(q.take(), Some(vec![7]), "what is left, once closed");
        assert_eq!(q.take(), None);
    }

    #[test]
    fn a_full_batch_arrives_at_once_and_a_partial_one_after_the_flush_interval() {
        let q = Arc::new(RecordQueue::new(Duration::from_millis(300)));
        let t = taker(&q);
        std::thread::sleep(Duration::from_millis(20));
        let start = Instant::now();
        for i in 0..BATCH {
            q.push(i);
        }
        std::thread::sleep(Duration::from_millis(100));
        for i in BATCH..BATCH + 3 {
            q.push(i);
        }
        std::thread::sleep(Duration::from_millis(900));
        q.close();
        let got = t.join().unwrap();
        assert_eq!(
            got.len(),
            2,
            "{:?}",
            got.iter().map(|g| g.0.len()).collect::<Vec<_>>()
        );
        assert_eq!(got[0].0, (0..BATCH).collect::<Vec<_>>());
        assert!(
            got[0].1 - start < Duration::from_millis(250),
            "the full batch waited"
        );
        assert_eq!(got[1].0, (BATCH..BATCH + 3).collect::<Vec<_>>());
        let late = got[1].1 - start;
        assert!(
            late < Duration::from_millis(850),
            "the partial batch waited {late:?}"
        );
        assert!(
            late > Duration::from_millis(150),
            "the partial batch did not wait: {late:?}"
        );
    }

    #[test]
    fn every_item_reaches_the_taker_from_many_threads_and_the_guard_ends_it() {
        let q = Arc::new(RecordQueue::new(Duration::from_millis(5)));
        let t = taker(&q);
        {
            let _close = CloseOnDrop(q.clone());
            std::thread::scope(|s| {
                for k in 0..4 {
                    let q = &q;
                    s.spawn(move || {
                        for i in 0..1000 {
                            q.push(k * 1000 + i);
                        }
                    });
                }
            });
        }
        let mut all: Vec<usize> = t.join().unwrap().into_iter().flat_map(|g| g.0).collect();
        all.sort_unstable();
        assert_eq!(all, (0..4000).collect::<Vec<_>>());
    }
}
