//! State shared by every connection and handler, and the guard that publishes a request's trace.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::Semaphore;

use crate::answer_key::AnswerKey;
use crate::config::SimConfig;
use crate::metrics::Metrics;
use crate::prompt::PromptCounter;
use crate::scheduler::Submit;
use crate::trace::{now_ns, RequestTrace, TraceStatus, TraceStore};

pub(crate) struct Shared {
    pub(crate) cfg: SimConfig,
    pub(crate) traces: TraceStore,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) key: Option<AnswerKey>,
    /// The batch engine's intake; `None` with fixed latencies.
    pub(crate) engine: Option<UnboundedSender<Submit>>,
    /// Fixed-latency mode's limit on concurrently running requests (`None`: unlimited).
    pub(crate) permits: Option<Arc<Semaphore>>,
    pub(crate) counter: Arc<dyn PromptCounter>,
    pub(crate) next_id: AtomicU64,
    pub(crate) started_unix: u64,
}

impl Shared {
    pub(crate) fn next_request_no(&self) -> u64 {
        self.next_id.fetch_add(1, Relaxed)
    }
}

/// The sim-assigned number of an HTTP request (`x-sim-request-id: sim-N`), stored in request extensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SimRequestNo(pub(crate) u64);

pub(crate) fn sim_id(no: u64) -> String {
    format!("sim-{no}")
}

/// Owns a request's trace until it is published; a request dropped before its end (the client went away) is
/// published as `client_gone`.
pub(crate) struct TraceGuard {
    shared: Arc<Shared>,
    trace: Option<RequestTrace>,
    /// Whether chunk times are recorded at all (tracing enabled).
    pub(crate) enabled: bool,
    /// Other generation requests in flight (arrived, not yet ended) when this one arrived.
    pub(crate) others_in_flight: u64,
}

impl TraceGuard {
    pub(crate) fn new(shared: Arc<Shared>, trace: RequestTrace) -> Self {
        let enabled = shared.traces.enabled();
        let others_in_flight = shared.metrics.in_flight.fetch_add(1, Relaxed);
        TraceGuard {
            shared,
            trace: Some(trace),
            enabled,
            others_in_flight,
        }
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// The trace being built (`None` once published).
    pub(crate) fn get(&mut self) -> Option<&mut RequestTrace> {
        self.trace.as_mut()
    }

    /// Publish with `status`, ending at `end_ns`.
    pub(crate) fn publish(&mut self, status: TraceStatus, end_ns: u64) {
        if let Some(mut t) = self.trace.take() {
            self.shared.metrics.in_flight.fetch_sub(1, Relaxed);
            t.status = status;
            t.end_ns = Some(end_ns);
            if status == TraceStatus::Ok || status == TraceStatus::MalformedInjected {
                let stop = t.finish_reason.as_deref() == Some("stop");
                self.shared
                    .metrics
                    .finished(t.prompt_tokens, t.completion_tokens, stop);
            } else {
                t.finish_reason = None;
            }
            if status == TraceStatus::Rejected {
                self.shared.metrics.rejected.fetch_add(1, Relaxed);
            }
            self.shared.traces.push(t);
        }
    }
}

impl Drop for TraceGuard {
    fn drop(&mut self) {
        if self.trace.is_some() {
            self.shared.metrics.aborted.fetch_add(1, Relaxed);
            self.publish(TraceStatus::ClientGone, now_ns());
        }
    }
}

/// Counts a fixed-latency request as running while it lives.
pub(crate) struct RunningGuard(pub(crate) Arc<Shared>);

impl RunningGuard {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        shared.metrics.running.fetch_add(1, Relaxed);
        RunningGuard(shared)
    }
}

impl Drop for RunningGuard {
    fn drop(&mut self) {
        self.0.metrics.running.fetch_sub(1, Relaxed);
    }
}
