//! Which endpoint a request goes to when several `--base-url`s (data-parallel replicas behind no load balancer)
//! serve one run. The choice is made when the request is sent (after its concurrency permit) and costs a few
//! atomic operations per endpoint: no allocation, no lock.
//!
//! - [`Dispatch::RoundRobin`]: request k (in send order) goes to endpoint k mod n; exact equal counts.
//! - [`Dispatch::LeastOutstanding`] (the default): the endpoint with the fewest requests in flight; ties go to the
//!   first such endpoint after the one picked last, so equal replicas share requests as round-robin would, while a
//!   slow replica (its requests stay in flight longer) gets fewer.

use crate::LoadError;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// How requests are spread over endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Dispatch {
    RoundRobin,
    #[default]
    LeastOutstanding,
}

impl Dispatch {
    pub fn parse(s: &str) -> Result<Self, LoadError> {
        match s {
            "round-robin" => Ok(Dispatch::RoundRobin),
            "least-outstanding" => Ok(Dispatch::LeastOutstanding),
            other => Err(LoadError::Config(format!(
                "--dispatch {other}: use round-robin or least-outstanding"
            ))),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Dispatch::RoundRobin => "round-robin",
            Dispatch::LeastOutstanding => "least-outstanding",
        }
    }
}

/// Picks endpoints and counts the requests in flight at each.
#[derive(Debug)]
pub struct Dispatcher {
    rule: Dispatch,
    next: AtomicUsize,
    outstanding: Box<[AtomicUsize]>,
}

/// One request's endpoint; the endpoint's in-flight count drops when the ticket is dropped.
#[derive(Debug)]
pub struct Ticket {
    owner: Arc<Dispatcher>,
    index: usize,
}

impl Ticket {
    /// The endpoint's position in the list given to the run (0-based).
    pub fn index(&self) -> usize {
        self.index
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.owner.outstanding[self.index].fetch_sub(1, Ordering::Relaxed);
    }
}

impl Dispatcher {
    /// A dispatcher over `endpoints` endpoints (at least one).
    pub fn new(rule: Dispatch, endpoints: usize) -> Arc<Dispatcher> {
        Arc::new(Dispatcher {
            rule,
            next: AtomicUsize::new(0),
            outstanding: (0..endpoints.max(1)).map(|_| AtomicUsize::new(0)).collect(),
        })
    }

    pub fn endpoints(&self) -> usize {
        self.outstanding.len()
    }

    /// The endpoint of the next request; it counts as in flight there until the ticket is dropped.
    pub fn pick(self: &Arc<Self>) -> Ticket {
        let n = self.outstanding.len();
        let index = match self.rule {
            Dispatch::RoundRobin => self.next.fetch_add(1, Ordering::Relaxed) % n,
            Dispatch::LeastOutstanding => {
                // The scan starts after the last endpoint picked, so ties rotate.
                let start = self.next.load(Ordering::Relaxed) % n;
                let mut best = start;
                let mut least = self.outstanding[start].load(Ordering::Relaxed);
                for k in 1..n {
                    let i = (start + k) % n;
                    let v = self.outstanding[i].load(Ordering::Relaxed);
                    if v < least {
                        (best, least) = (i, v);
                    }
                }
                self.next.store(best + 1, Ordering::Relaxed);
                best
            }
        };
        self.outstanding[index].fetch_add(1, Ordering::Relaxed);
        Ticket {
            owner: self.clone(),
            index,
        }
    }

    /// Requests in flight at endpoint `i`.
    pub fn outstanding(&self, i: usize) -> usize {
        self.outstanding[i].load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_bad_names_say_what_to_use() {
        for d in [Dispatch::RoundRobin, Dispatch::LeastOutstanding] {
            assert_eq!(Dispatch::parse(d.as_str()).unwrap(), d);
        }
        let e = Dispatch::parse("random").unwrap_err().to_string();
        assert!(e.contains("round-robin or least-outstanding"), "{e}");
        assert_eq!(Dispatch::default(), Dispatch::LeastOutstanding);
    }

    #[test]
    fn round_robin_cycles_whatever_is_in_flight() {
        let d = Dispatcher::new(Dispatch::RoundRobin, 3);
        let tickets: Vec<Ticket> = (0..7).map(|_| d.pick()).collect();
        let got: Vec<usize> = tickets.iter().map(Ticket::index).collect();
        assert_eq!(got, vec![0, 1, 2, 0, 1, 2, 0]);
        assert_eq!(
            (d.outstanding(0), d.outstanding(1), d.outstanding(2)),
            (3, 2, 2)
        );
        drop(tickets);
        assert_eq!(
            (d.outstanding(0), d.outstanding(1), d.outstanding(2)),
            (0, 0, 0)
        );
    }

    #[test]
    fn least_outstanding_avoids_the_busy_endpoint() {
        let d = Dispatcher::new(Dispatch::LeastOutstanding, 3);
        // Endpoint 1 holds three requests that do not finish (a slow replica).
        let mut held = Vec::new();
        while d.outstanding(1) < 3 {
            held.push(d.pick());
        }
        let (stuck, done): (Vec<Ticket>, Vec<Ticket>) =
            held.into_iter().partition(|t| t.index() == 1);
        drop(done);
        assert_eq!(d.outstanding(1), 3);
        // The others finish at once: every new request goes to 0 or 2, alternating.
        let mut counts = [0usize; 3];
        for _ in 0..100 {
            let t = d.pick();
            counts[t.index()] += 1;
        }
        assert_eq!(counts, [50, 0, 50]);
        drop(stuck);
        assert_eq!(d.outstanding(1), 0);
    }

    #[test]
    fn least_outstanding_ties_rotate_like_round_robin() {
        let d = Dispatcher::new(Dispatch::LeastOutstanding, 2);
        // One at a time (concurrency 1): all endpoints idle at each pick.
        let got: Vec<usize> = (0..6).map(|_| d.pick().index()).collect();
        assert_eq!(got, vec![0, 1, 0, 1, 0, 1]);
        // All at once: they stay balanced.
        let held: Vec<Ticket> = (0..10).map(|_| d.pick()).collect();
        assert_eq!((d.outstanding(0), d.outstanding(1)), (5, 5));
        drop(held);
    }

    #[test]
    fn one_endpoint_always_gets_everything() {
        for rule in [Dispatch::RoundRobin, Dispatch::LeastOutstanding] {
            let d = Dispatcher::new(rule, 1);
            assert!((0..5).map(|_| d.pick().index()).all(|i| i == 0));
            assert_eq!(d.endpoints(), 1);
        }
    }
}
