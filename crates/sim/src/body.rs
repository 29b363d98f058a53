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

/// Zero-latency mode: a body frame takes no further chunk once it holds this many bytes (it always holds at least
/// one), so that `chunks_per_write` bounds the number of events, and this their bytes (large events go one per frame).
pub(crate) const MAX_FRAME_BYTES: usize = 16 * 1024;

/// Bytes reserved for a frame's first chunk before any chunk size is known, and for the tail events (usage,
/// `[DONE]`) after the last one.
const CHUNK_BYTES_GUESS: usize = 256;

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
    text_suffix: Option<&'static str>,
    big_first: bool,
    content: String,
    reasoning: String,
    frame_tokens: Vec<u32>,
    /// Bytes of the last chunk written (to size the next frame's buffer).
    last_chunk_bytes: usize,
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
    /// Appended to every chunk's answer text (the UTF-8 faults).
    pub(crate) text_suffix: Option<&'static str>,
    /// The first chunk carries [`BIG_EVENT_BYTES`] more text (the `big_event` fault).
    pub(crate) big_first: bool,
}

/// Extra text of the first event with the `big_event` fault: 10 MB.
pub(crate) const BIG_EVENT_BYTES: usize = 10 << 20;

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
            text_suffix: o.text_suffix,
            big_first: o.big_first,
            content: String::new(),
            reasoning: String::new(),
            frame_tokens: Vec::with_capacity(4),
            last_chunk_bytes: CHUNK_BYTES_GUESS,
        }
    }

    /// Capacity for a frame of up to `chunks` chunks: one allocation per frame, no regrowth copies.
    fn frame_capacity(&self, chunks: usize) -> usize {
        let left = self.total_chunks().saturating_sub(self.sent_chunks) as usize;
        let n = chunks.min(left).max(1);
        // Chunks differ by a few bytes (word lengths): a little slack per chunk avoids a regrowth copy.
        let per_chunk = self.last_chunk_bytes + 16;
        (n * per_chunk).min(MAX_FRAME_BYTES + per_chunk) + 2 * CHUNK_BYTES_GUESS
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
        if !self.content.is_empty() {
            if let Some(t) = self.text_suffix {
                self.content.push_str(t);
            }
        }
        if self.big_first && index == 0 {
            let words = " the".repeat(BIG_EVENT_BYTES / 4);
            self.content.push_str(&words);
        }
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
        let start = out.len();
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
        self.last_chunk_bytes = out.len() - start;
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
        this.w.frame_tokens.clear();
        // Zero latency: room for the whole frame at once (no regrowth copies); otherwise one chunk.
        let capacity = match &this.src {
            Source::Fixed(clock) if clock.zero => this.w.frame_capacity(this.w.chunks_per_write),
            _ => CHUNK_BYTES_GUESS,
        };
        let mut out = Vec::with_capacity(capacity);
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
                // Zero latency: up to `chunks_per_write` chunks (and about MAX_FRAME_BYTES) go out in one frame.
                while clock.zero
                    && this.w.frame_tokens.len() < this.w.chunks_per_write
                    && out.len() < MAX_FRAME_BYTES
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
                if tr.chunk_ns.is_empty() {
                    tr.reserve_chunks(this.w.total_chunks() as usize);
                }
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicU64;
    use std::sync::Arc;
    use std::task::Waker;

    use super::*;
    use crate::config::SimConfig;
    use crate::framing::Api;
    use crate::metrics::Metrics;
    use crate::prompt::HeuristicCounter;
    use crate::state::Shared;
    use crate::trace::{RequestTrace, TraceStore};

    fn shared() -> Arc<Shared> {
        Arc::new(Shared {
            cfg: SimConfig::preset("firehose").unwrap(),
            traces: TraceStore::new(16, 1 << 20),
            metrics: Arc::new(Metrics::default()),
            key: None,
            engine: None,
            permits: None,
            counter: Arc::new(HeuristicCounter),
            next_id: AtomicU64::new(1),
            started_unix: 0,
        })
    }

    struct Case {
        api: Api,
        tokens: u32,
        tokens_per_chunk: u32,
        chunks_per_write: usize,
        itl: Duration,
    }

    fn body(s: &Arc<Shared>, c: &Case) -> SseBody {
        let plan = OutputPlan {
            tokens: c.tokens,
            finish: Finish::Length,
            max_tokens: c.tokens,
            script: Vec::new(),
            filler_seed: 42,
            verdict: None,
        };
        let framer = Framer::new(c.api, "sim-7", 1_700_000_000, "m", 5, c.tokens);
        let w = ChunkWriter::new(
            framer,
            &plan,
            StreamOptions {
                chat_role: c.api == Api::Chat,
                include_usage: true,
                tokens_per_chunk: c.tokens_per_chunk,
                malformed_at: None,
                disconnect_after: None,
                chunks_per_write: c.chunks_per_write,
                arrival: Instant::now(),
                text_suffix: None,
                big_first: false,
            },
        );
        let clock = FixedClock::new(Instant::now(), c.itl, None, RunningGuard::new(s.clone()));
        let trace = RequestTrace::new("r".into(), "sim-7".into(), c.api.name(), true, 1);
        SseBody::new(Source::Fixed(clock), w, TraceGuard::new(s.clone(), trace))
    }

    /// Every frame of a zero-latency body (it never returns Pending).
    fn frames(c: &Case) -> (Vec<Bytes>, RequestTrace) {
        let s = shared();
        let mut b = body(&s, c);
        let mut cx = Context::from_waker(Waker::noop());
        let mut out = Vec::new();
        loop {
            match Pin::new(&mut b).poll_next(&mut cx) {
                Poll::Ready(Some(Ok(f))) => out.push(f),
                Poll::Ready(None) => break,
                other => panic!("unexpected {other:?}"),
            }
        }
        drop(b);
        let t = s.traces.get("r").unwrap();
        (out, t)
    }

    /// The body as text, with `/generate`'s wall-clock `e2e_latency` value (the only varying byte) blanked.
    fn stable(bytes: Vec<u8>) -> String {
        let s = String::from_utf8(bytes).unwrap();
        match s.find("\"e2e_latency\":") {
            Some(i) => {
                let v = i + "\"e2e_latency\":".len();
                let end = v + s[v..].find('}').unwrap();
                format!("{}#{}", &s[..v], &s[end..])
            }
            None => s,
        }
    }

    fn events(frame: &[u8]) -> usize {
        frame.windows(2).filter(|w| w == b"\n\n").count()
    }

    #[test]
    fn batched_frames_are_the_single_chunk_bytes_concatenated() {
        for api in [Api::Completions, Api::Chat, Api::Generate] {
            for (tokens, k) in [(10, 1), (256, 1), (11, 3)] {
                let case = |cpw| Case {
                    api,
                    tokens,
                    tokens_per_chunk: k,
                    chunks_per_write: cpw,
                    itl: Duration::ZERO,
                };
                let (single, _) = frames(&case(1));
                let chunks = tokens.div_ceil(k) as usize;
                assert_eq!(single.len(), chunks, "{api:?}: one frame per chunk");
                let whole = stable(single.concat());
                for cpw in [4, 64] {
                    let (batched, _) = frames(&case(cpw));
                    assert_eq!(
                        stable(batched.concat()),
                        whole,
                        "{api:?} {tokens}/{k} cpw {cpw}"
                    );
                    // frames of `cpw` chunks, unless MAX_FRAME_BYTES stops them first (/generate's cumulative text)
                    if api != Api::Generate {
                        assert_eq!(batched.len(), chunks.div_ceil(cpw), "{api:?} {cpw}");
                    }
                    assert!(batched.len() < single.len());
                    for f in &batched {
                        // the chat role event, then up to `cpw` chunks, then the usage event and [DONE]
                        assert!(events(f) <= cpw + 3, "{api:?}: {} events", events(f));
                        assert!(
                            f.len() < MAX_FRAME_BYTES + 2048,
                            "{api:?}: {} bytes",
                            f.len()
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn large_events_go_one_per_frame() {
        // ~4.8 bytes per filler token: 4,000-token chunks are ~19 kB events, above MAX_FRAME_BYTES
        let (f, t) = frames(&Case {
            api: Api::Completions,
            tokens: 20_000,
            tokens_per_chunk: 4_000,
            chunks_per_write: 64,
            itl: Duration::ZERO,
        });
        assert_eq!(f.len(), 5);
        assert_eq!(t.chunk_tokens, vec![4_000; 5]);
        assert!(f[..4].iter().all(|x| events(x) == 1));
    }

    #[test]
    fn every_batched_chunk_gets_its_frames_trace_time() {
        let (f, t) = frames(&Case {
            api: Api::Completions,
            tokens: 100,
            tokens_per_chunk: 3,
            chunks_per_write: 8,
            itl: Duration::ZERO,
        });
        assert_eq!(f.len(), 5); // 34 chunks: 8+8+8+8+2
        assert_eq!(t.status, TraceStatus::Ok);
        assert_eq!(t.completion_tokens, 100);
        assert_eq!(t.chunk_tokens.len(), 34);
        assert_eq!(t.chunk_tokens[..33], [3; 33]);
        assert_eq!(t.chunk_tokens[33], 1);
        assert_eq!(t.chunk_ns.len(), 34);
        assert_eq!(t.first_token_ns, Some(t.chunk_ns[0]));
        for (i, &ns) in t.chunk_ns.iter().enumerate() {
            assert!(ns > 0);
            assert_eq!(
                ns,
                t.chunk_ns[i - i % 8],
                "chunk {i} shares its frame's time"
            );
        }
        assert!(t.chunk_ns.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(t.end_ns, Some(t.chunk_ns[33]));
    }

    #[tokio::test]
    async fn nonzero_latency_writes_one_chunk_per_frame() {
        let s = shared();
        let mut b = body(
            &s,
            &Case {
                api: Api::Completions,
                tokens: 6,
                tokens_per_chunk: 1,
                chunks_per_write: 64,
                itl: Duration::from_millis(1),
            },
        );
        let mut n = 0;
        while let Some(f) = futures_util::StreamExt::next(&mut b).await {
            let f = f.unwrap();
            n += 1;
            // the last frame also carries the usage event and [DONE]
            assert_eq!(events(&f), if n == 6 { 3 } else { 1 }, "frame {n}");
        }
        assert_eq!(n, 6);
        drop(b);
        let t = s.traces.get("r").unwrap();
        assert_eq!(t.chunk_ns.len(), 6);
        assert!(t.chunk_ns.windows(2).all(|w| w[0] < w[1]));
    }
}
