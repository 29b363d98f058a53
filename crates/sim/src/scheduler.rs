//! The engine task: drives [`EngineCore`] with real time.
//!
//! One task runs steps back to back while anything runs. Each step's end is an absolute deadline (the previous
//! deadline plus the step cost), so timer lateness never accumulates; when the loop falls behind by more than
//! max(step cost, [`MAX_LAG`]) (a starved CPU), the schedule restarts from now instead of bursting to catch up.
//! An idle engine starts its next step when a request arrives. Tokio timers have 1 ms resolution: a step may end up
//! to ~1 ms late unless `timer_spin_us` makes the task busy-wait (yielding) for the last stretch.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};
use tokio::time::Instant;

use crate::engine::{EngineCore, EngineParams};
use crate::metrics::Metrics;
use crate::trace::now_ns;

/// Lag beyond which the schedule is restarted from now.
pub(crate) const MAX_LAG: Duration = Duration::from_millis(5);

/// A request handed to the engine.
#[derive(Debug)]
pub(crate) struct Submit {
    pub(crate) prompt_tokens: u32,
    pub(crate) output_tokens: u32,
    pub(crate) tx: UnboundedSender<Emit>,
}

/// One chunk produced by the engine for a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Emit {
    pub(crate) upto: u32,
    pub(crate) tokens: u32,
    pub(crate) prefill_start_ns: u64,
    /// When the step that produced this chunk ended (for the first chunk: the end of prefill).
    pub(crate) step_end_ns: u64,
}

async fn wait_until(deadline: Instant, spin: Duration) {
    if spin.is_zero() {
        tokio::time::sleep_until(deadline).await;
        return;
    }
    if let Some(early) = deadline.checked_sub(spin) {
        if early > Instant::now() {
            tokio::time::sleep_until(early).await;
        }
    }
    while Instant::now() < deadline {
        tokio::task::yield_now().await;
    }
}

/// Run the engine until every sender of `rx` is gone.
pub(crate) async fn run(
    params: EngineParams,
    spin: Duration,
    mut rx: UnboundedReceiver<Submit>,
    metrics: Arc<Metrics>,
) {
    let mut core: EngineCore<UnboundedSender<Emit>> = EngineCore::new(params);
    let mut anchor: Option<Instant> = None;
    loop {
        if core.is_idle() {
            metrics.running.store(0, Relaxed);
            metrics.waiting.store(0, Relaxed);
            metrics.kv_used_tokens.store(0, Relaxed);
            let Some(s) = rx.recv().await else { return };
            core.submit(s.tx, s.prompt_tokens, s.output_tokens);
            anchor = None;
        }
        while let Ok(s) = rx.try_recv() {
            core.submit(s.tx, s.prompt_tokens, s.output_tokens);
        }
        core.admit(|tx| !tx.is_closed());
        let start = anchor.unwrap_or_else(Instant::now);
        let Some(plan) = core.plan(now_ns()) else {
            continue;
        };
        metrics.running.store(core.running_len() as u64, Relaxed);
        metrics.waiting.store(core.waiting_len() as u64, Relaxed);
        metrics.kv_used_tokens.store(core.kv_used(), Relaxed);
        let deadline = start + plan.cost;
        if plan.cost.is_zero() {
            tokio::task::yield_now().await;
        } else {
            wait_until(deadline, spin).await;
        }
        let end_ns = now_ns();
        core.complete(|tx, e| {
            tx.send(Emit {
                upto: e.upto,
                tokens: e.tokens,
                prefill_start_ns: e.prefill_start_ns,
                step_end_ns: end_ns,
            })
            .is_ok()
        });
        metrics.steps.fetch_add(1, Relaxed);
        let now = Instant::now();
        anchor = if now > deadline + plan.cost.max(MAX_LAG) {
            Some(now)
        } else {
            Some(deadline)
        };
    }
}
