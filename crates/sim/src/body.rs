//! The streaming response body: turns engine chunks (or fixed-latency ticks) into SSE bytes and records when each
//! chunk is handed to the HTTP layer.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::Stream;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::{Instant, Sleep};

use crate::framing::{Finish, Framer, DONE};
use crate::metrics::FaultKind;
use crate::output::{OutputPlan, TextCursor};
use crate::scheduler::Emit;
use crate::state::{RunningGuard, TraceGuard};
use crate::trace::{now_ns, TraceStatus};

/// Most engine chunks written into one body frame when several are ready at once.
const MAX_CHUNKS_PER_FRAME: usize = 64;

/// Fixed-latency clock: first chunk at `next`, then one every `itl`; zero latencies tick on every poll.
pub(crate) struct FixedClock {
    next: Instant,
    itl: Duration,
    zero: bool,
    sleep: Option<Pin<Box<Sleep>>>,
    _permit: Option<OwnedSemaphorePermit>,
    _running: RunningGuard,
}

impl FixedClock {
    pub(crate) fn new(
        first: Instant,
        itl: Duration,
        permit: Option<OwnedSemaphorePermit>,
        running: RunningGuard,
    ) -> Self {
        let zero = itl.is_zero() && first <= Instant::now();
        FixedClock {
            next: first,
            itl,
            zero,
            sleep: None,
            _permit: permit,
            _running: running,
        }
    }

    /// When the first chunk is due and the gap between chunks.
    pub(crate) fn schedule(&self) -> (Instant, Duration) {
        (self.next, self.itl)
    }

    fn poll_tick(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.zero {
            return Poll::Ready(());
        }
        let next = self.next;
        let sleep = self
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(next)));
        if sleep.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        self.next += self.itl;
        if self.itl.is_zero() {
            self.zero = true;
        } else {
            sleep.as_mut().reset(self.next);
        }
        Poll::Ready(())
    }
}

/// Where a request's chunks come from.
pub(crate) enum Source {
    Engine(UnboundedReceiver<Emit>),
    Fixed(FixedClock),
}

/// Formats chunks and counts what was sent.
pub(crate) struct ChunkWriter {
    framer: Framer,
    cursor: TextCursor,
    plan_tokens: u32,
    finish: Finish,
    k: u32,
    sent_tokens: u32,
    sent_chunks: u32,
    role_pending: bool,
    include_usage: bool,
    malformed_at: Option<u32>,
    malformed_sent: bool,
    disconnect_after: Option<u32>,
    chunks_per_write: usize,
    arrival: Instant,
    content: String,
    reasoning: String,
    frame_tokens: Vec<u32>,
}

/// Per-request stream options.
pub(crate) struct StreamOptions {
    pub(crate) chat_role: bool,
    pub(crate) include_usage: bool,
    pub(crate) tokens_per_chunk: u32,
    pub(crate) malformed_at: Option<u32>,
    pub(crate) disconnect_after: Option<u32>,
    /// Zero-latency mode: chunks written per body frame.
    pub(crate) chunks_per_write: usize,
    pub(crate) arrival: Instant,
}

impl ChunkWriter {
    pub(crate) fn new(framer: Framer, plan: &OutputPlan, o: StreamOptions) -> Self {
        ChunkWriter {
            framer,
            cursor: TextCursor::new(plan),
            plan_tokens: plan.tokens,
            finish: plan.finish,
            k: o.tokens_per_chunk.max(1),
            sent_tokens: 0,
            sent_chunks: 0,
            role_pending: o.chat_role,
            include_usage: o.include_usage,
            malformed_at: o.malformed_at,
            malformed_sent: false,
            disconnect_after: o.disconnect_after,
            chunks_per_write: o.chunks_per_write.max(1),
            arrival: o.arrival,
            content: String::new(),
            reasoning: String::new(),
            frame_tokens: Vec::with_capacity(4),
        }
    }

    fn total_chunks(&self) -> u32 {
        self.plan_tokens.div_ceil(self.k)
    }

    fn finished(&self) -> bool {
        self.sent_tokens >= self.plan_tokens
    }

    fn at_disconnect(&self) -> bool {
        self.disconnect_after.is_some_and(|d| self.sent_chunks >= d)
    }

    /// Write the next chunk of `tokens` tokens (and, after the last one, the usage chunk and `[DONE]`).
    fn write(&mut self, out: &mut Vec<u8>, tokens: u32) {
        let tokens = tokens.min(self.plan_tokens - self.sent_tokens).max(1);
        self.content.clear();
        self.reasoning.clear();
        self.cursor
            .next(tokens, &mut self.content, &mut self.reasoning);
        let index = self.sent_chunks;
        self.sent_tokens += tokens;
        self.sent_chunks += 1;
        if self.role_pending {
            self.framer.role_chunk(out);
            self.role_pending = false;
        }
        if self.malformed_at == Some(index) {
            self.framer.malformed_chunk(out);
            self.malformed_sent = true;
        }
        let last = self.finished();
        let e2e = if last {
            self.arrival.elapsed().as_secs_f64()
        } else {
            0.0
        };
        self.framer.chunk(
            out,
            &self.content,
            &self.reasoning,
            self.sent_tokens,
            last.then_some(self.finish),
            e2e,
        );
        self.frame_tokens.push(tokens);
        let withhold_tail = self
            .disconnect_after
            .is_some_and(|d| d >= self.total_chunks());
        if last && !withhold_tail {
            if self.include_usage {
                self.framer.usage_chunk(out, self.sent_tokens);
            }
            out.extend_from_slice(DONE);
        }
    }
}

/// The SSE response body of one streaming request.
pub(crate) struct SseBody {
    src: Source,
    w: ChunkWriter,
    trace: TraceGuard,
    done: bool,
    malformed_counted: bool,
    disconnect_flushed: bool,
}

impl SseBody {
    pub(crate) fn new(src: Source, w: ChunkWriter, trace: TraceGuard) -> Self {
        SseBody {
            src,
            w,
            trace,
            done: false,
            malformed_counted: false,
            disconnect_flushed: false,
        }
    }
}

impl Stream for SseBody {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        if this.w.at_disconnect() {
            if !this.disconnect_flushed {
                // Return Pending once so that hyper flushes what was written before the connection breaks.
                this.disconnect_flushed = true;
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            this.done = true;
            this.trace.shared().metrics.fault(FaultKind::Disconnect);
            this.trace
                .publish(TraceStatus::DisconnectInjected, now_ns());
            return Poll::Ready(Some(Err(std::io::Error::other(
                "connection dropped by --disconnect-rate",
            ))));
        }
        let mut out = Vec::with_capacity(256);
        this.w.frame_tokens.clear();
        match &mut this.src {
            Source::Engine(rx) => loop {
                if this.w.frame_tokens.len() >= MAX_CHUNKS_PER_FRAME
                    || this.w.at_disconnect()
                    || this.w.finished()
                {
                    break;
                }
                match rx.poll_recv(cx) {
                    Poll::Ready(Some(e)) => {
                        if this.w.sent_chunks == 0 {
                            if let Some(t) = this.trace.get() {
                                t.prefill_start_ns = Some(e.prefill_start_ns);
                                t.prefill_end_ns = Some(e.step_end_ns);
                            }
                        }
                        this.w.write(&mut out, e.tokens);
                    }
                    Poll::Ready(None) => {
                        if this.w.frame_tokens.is_empty() {
                            // The engine stopped (server shutting down): end the response abruptly.
                            this.done = true;
                            return Poll::Ready(Some(Err(std::io::Error::other(
                                "simulated engine stopped",
                            ))));
                        }
                        break;
                    }
                    Poll::Pending => {
                        if this.w.frame_tokens.is_empty() {
                            return Poll::Pending;
                        }
                        break;
                    }
                }
            },
            Source::Fixed(clock) => {
                if clock.poll_tick(cx).is_pending() {
                    return Poll::Pending;
                }
                let k = this.w.k;
                this.w.write(&mut out, k);
                // Zero latency: up to `chunks_per_write` chunks go out in one write.
                while clock.zero
                    && this.w.frame_tokens.len() < this.w.chunks_per_write
                    && !this.w.finished()
                    && !this.w.at_disconnect()
                {
                    this.w.write(&mut out, k);
                }
            }
        }
        let enabled = this.trace.enabled;
        let t = if enabled { now_ns() } else { 0 };
        if let Some(tr) = this.trace.get() {
            if enabled {
                for &n in &this.w.frame_tokens {
                    tr.chunk(t, n);
                }
            } else {
                tr.completion_tokens = this.w.sent_tokens;
            }
        }
        if this.w.malformed_sent && !this.malformed_counted {
            this.malformed_counted = true;
            this.trace.shared().metrics.fault(FaultKind::Malformed);
        }
        if this.w.finished() && !this.w.at_disconnect() {
            let status = if this.w.malformed_sent {
                TraceStatus::MalformedInjected
            } else {
                TraceStatus::Ok
            };
            this.trace.publish(status, t);
            this.done = true;
        }
        Poll::Ready(Some(Ok(Bytes::from(out))))
    }
}
