//! The continuous-batching scheduler as a pure state machine (no clocks, no channels).
//!
//! Requests wait in a FCFS queue until they fit: at most `max_running` sequences run at once, and a sequence is
//! admitted only while `prompt + output` tokens fit in the KV capacity (the output length is planned when the
//! request arrives, so the reservation is exact and nothing is ever preempted; the queue head blocks the ones behind
//! it, as in a FCFS engine). Each step gives up to `chunked_prefill_size` prompt tokens to the running sequences
//! that still prefill (in admission order) and one decode position to every sequence that already decodes; its cost
//! comes from [`TimingModel`]. When the step ends, a sequence whose prefill completed in it emits its first chunk,
//! and every decoding sequence emits its next chunk. A chunk carries `tokens_per_chunk` tokens (fewer for the last
//! one), as with speculative decoding or a server that streams several tokens at a time.
//!
//! [`simulate`] drives the same machine in virtual time; the server drives it with real timers.

use std::collections::VecDeque;
use std::time::Duration;

use crate::timing::TimingModel;

/// Static parameters of the engine.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EngineParams {
    pub max_running: usize,
    pub kv_capacity_tokens: u64,
    pub chunked_prefill_size: u32,
    pub tokens_per_chunk: u32,
    pub timing: TimingModel,
}

/// What a sequence does in the planned step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Idle,
    Prefill(u32),
    Decode,
}

#[derive(Debug)]
pub(crate) struct Seq<T> {
    pub(crate) payload: T,
    prompt: u32,
    output: u32,
    prefilled: u32,
    generated: u32,
    role: Role,
    prefill_start_ns: Option<u64>,
}

impl<T> Seq<T> {
    fn reservation(&self) -> u64 {
        u64::from(self.prompt) + u64::from(self.output)
    }
}

/// One output chunk of one sequence, produced at the end of a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Emission {
    /// Tokens generated so far, including this chunk.
    pub(crate) upto: u32,
    /// Tokens in this chunk.
    pub(crate) tokens: u32,
    /// The first chunk (its step completed the prefill).
    pub(crate) first: bool,
    /// The last chunk (the sequence is finished and leaves the batch).
    pub(crate) last: bool,
    /// When the sequence's first prefill step started (as given to [`EngineCore::plan`]).
    pub(crate) prefill_start_ns: u64,
}

/// The shape and cost of a planned step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepPlan {
    pub cost: Duration,
    pub prefill_tokens: u64,
    pub decode_batch: u64,
    pub decode_context_tokens: u64,
}

/// The scheduler state. `T` is whatever the driver attaches to a sequence (a channel, an index).
#[derive(Debug)]
pub(crate) struct EngineCore<T> {
    params: EngineParams,
    waiting: VecDeque<Seq<T>>,
    running: Vec<Seq<T>>,
    kv_reserved: u64,
}

impl<T> EngineCore<T> {
    pub(crate) fn new(params: EngineParams) -> Self {
        EngineCore {
            params,
            waiting: VecDeque::new(),
            running: Vec::new(),
            kv_reserved: 0,
        }
    }

    /// Queue a request of `prompt` input tokens that will generate `output` tokens (both at least 1).
    pub(crate) fn submit(&mut self, payload: T, prompt: u32, output: u32) {
        self.waiting.push_back(Seq {
            payload,
            prompt: prompt.max(1),
            output: output.max(1),
            prefilled: 0,
            generated: 0,
            role: Role::Idle,
            prefill_start_ns: None,
        });
    }

    /// Move queued requests into the batch while they fit. Queued requests for which `alive` is false (the client
    /// went away) are dropped.
    pub(crate) fn admit(&mut self, mut alive: impl FnMut(&T) -> bool) {
        while let Some(head) = self.waiting.front() {
            if !alive(&head.payload) {
                self.waiting.pop_front();
                continue;
            }
            if self.running.len() >= self.params.max_running
                || self.kv_reserved + head.reservation() > self.params.kv_capacity_tokens
            {
                break;
            }
            if let Some(seq) = self.waiting.pop_front() {
                self.kv_reserved += seq.reservation();
                self.running.push(seq);
            }
        }
    }

    /// Plan the next step over the running sequences; `None` when nothing runs. `now_ns` is recorded as the prefill
    /// start of sequences that get their first prefill chunk in this step.
    pub(crate) fn plan(&mut self, now_ns: u64) -> Option<StepPlan> {
        if self.running.is_empty() {
            return None;
        }
        let mut budget = self.params.chunked_prefill_size.max(1);
        let mut prefill_tokens = 0u64;
        let mut batch = 0u64;
        let mut context = 0u64;
        for seq in &mut self.running {
            if seq.prefilled < seq.prompt {
                if budget == 0 {
                    seq.role = Role::Idle;
                    continue;
                }
                let take = budget.min(seq.prompt - seq.prefilled);
                budget -= take;
                prefill_tokens += u64::from(take);
                seq.role = Role::Prefill(take);
                seq.prefill_start_ns.get_or_insert(now_ns);
            } else {
                seq.role = Role::Decode;
                batch += 1;
                context += u64::from(seq.prompt) + u64::from(seq.generated);
            }
        }
        let cost = self.params.timing.step_cost(prefill_tokens, batch, context);
        Some(StepPlan {
            cost,
            prefill_tokens,
            decode_batch: batch,
            decode_context_tokens: context,
        })
    }

    /// Finish the planned step: emit one chunk for every sequence that completed its prefill or decoded. `emit`
    /// returns false when the receiver is gone; such sequences are aborted. Returns the number of sequences that
    /// left the batch.
    pub(crate) fn complete(&mut self, mut emit: impl FnMut(&mut T, Emission) -> bool) -> usize {
        let k = self.params.tokens_per_chunk.max(1);
        let before = self.running.len();
        let mut freed = 0u64;
        self.running.retain_mut(|seq| {
            let first = match seq.role {
                Role::Idle => return true,
                Role::Prefill(n) => {
                    seq.prefilled += n;
                    if seq.prefilled < seq.prompt {
                        seq.role = Role::Idle;
                        return true;
                    }
                    true
                }
                Role::Decode => false,
            };
            seq.role = Role::Idle;
            let tokens = k.min(seq.output - seq.generated);
            seq.generated += tokens;
            let last = seq.generated >= seq.output;
            let e = Emission {
                upto: seq.generated,
                tokens,
                first,
                last,
                prefill_start_ns: seq.prefill_start_ns.unwrap_or(0),
            };
            let delivered = emit(&mut seq.payload, e);
            if last || !delivered {
                freed += seq.reservation();
                false
            } else {
                true
            }
        });
        self.kv_reserved -= freed;
        before - self.running.len()
    }

    pub(crate) fn running_len(&self) -> usize {
        self.running.len()
    }

    pub(crate) fn waiting_len(&self) -> usize {
        self.waiting.len()
    }

    pub(crate) fn is_idle(&self) -> bool {
        self.running.is_empty() && self.waiting.is_empty()
    }

    /// KV tokens reserved by running sequences (prompt + planned output each).
    #[cfg(test)]
    pub(crate) fn kv_reserved(&self) -> u64 {
        self.kv_reserved
    }

    /// KV tokens actually filled (prompt tokens prefilled + tokens generated).
    pub(crate) fn kv_used(&self) -> u64 {
        self.running
            .iter()
            .map(|s| u64::from(s.prefilled) + u64::from(s.generated))
            .sum()
    }
}

/// A request for [`simulate`]: arrival time and lengths.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VirtualRequest {
    pub arrival_ns: u64,
    pub prompt_tokens: u32,
    pub output_tokens: u32,
}

/// When each chunk of a request was produced in virtual time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VirtualTimeline {
    pub prefill_start_ns: u64,
    /// (time, tokens so far) for every chunk.
    pub chunks: Vec<(u64, u32)>,
}

impl VirtualTimeline {
    pub fn first_chunk_ns(&self) -> Option<u64> {
        self.chunks.first().map(|c| c.0)
    }
    pub fn last_chunk_ns(&self) -> Option<u64> {
        self.chunks.last().map(|c| c.0)
    }
}

/// Run the scheduler in virtual time over requests arriving at given times (the same loop as the server: an idle
/// engine starts a step when a request arrives; requests arriving during a step join at the next one).
pub fn simulate(params: EngineParams, requests: &[VirtualRequest]) -> Vec<VirtualTimeline> {
    let mut order: Vec<usize> = (0..requests.len()).collect();
    order.sort_by_key(|&i| (requests[i].arrival_ns, i));
    let mut next = 0usize;
    let mut out = vec![VirtualTimeline::default(); requests.len()];
    let mut core: EngineCore<usize> = EngineCore::new(params);
    let mut now = 0u64;
    let mut done = 0usize;
    while done < requests.len() {
        while next < order.len() && requests[order[next]].arrival_ns <= now {
            let r = &requests[order[next]];
            core.submit(order[next], r.prompt_tokens, r.output_tokens);
            next += 1;
        }
        core.admit(|_| true);
        let Some(plan) = core.plan(now) else {
            match order.get(next) {
                Some(&i) => {
                    now = now.max(requests[i].arrival_ns);
                    continue;
                }
                None => break,
            }
        };
        now += plan.cost.as_nanos() as u64;
        done += core.complete(|&mut i, e| {
            out[i].prefill_start_ns = e.prefill_start_ns;
            out[i].chunks.push((now, e.upto));
            true
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(max_running: usize, kv: u64, chunk: u32, k: u32) -> EngineParams {
        EngineParams {
            max_running,
            kv_capacity_tokens: kv,
            chunked_prefill_size: chunk,
            tokens_per_chunk: k,
            timing: TimingModel {
                prefill_us_per_token: 10.0,
                decode_base_ms: 5.0,
                decode_per_seq_us: 100.0,
                decode_per_ctx_token_ns: 10.0,
            },
        }
    }

    fn req(arrival_ms: u64, prompt: u32, output: u32) -> VirtualRequest {
        VirtualRequest {
            arrival_ns: arrival_ms * 1_000_000,
            prompt_tokens: prompt,
            output_tokens: output,
        }
    }

    #[test]
    fn lone_request_ttft_is_the_prefill_cost_and_tpot_the_decode_step() {
        let p = params(8, 1_000_000, 8192, 1);
        let t = &simulate(p, &[req(0, 1000, 3)])[0];
        // prefill: 1000 x 10 us = 10 ms
        assert_eq!(t.prefill_start_ns, 0);
        assert_eq!(t.chunks[0], (10_000_000, 1));
        // decode step with context 1001: 5 ms + 0.1 ms + 10.01 us
        assert_eq!(t.chunks[1], (10_000_000 + 5_110_010, 2));
        // context 1002
        assert_eq!(t.chunks[2], (10_000_000 + 5_110_010 + 5_110_020, 3));
        assert_eq!(t.chunks.len(), 3);
    }

    #[test]
    fn chunked_prefill_spreads_a_long_prompt_over_steps() {
        let p = params(8, 1_000_000, 256, 1);
        let t = &simulate(p, &[req(0, 1000, 1)])[0];
        // 4 prefill steps (256+256+256+232 tokens): the total prefill cost is unchanged
        assert_eq!(t.chunks, vec![(10_000_000, 1)]);
    }

    #[test]
    fn mixed_step_charges_prefill_and_decode() {
        let p = params(8, 1_000_000, 8192, 1);
        // A arrives at 0 (prompt 100, 1 ms prefill); B arrives at 0.5 ms and joins the second step, which mixes
        // B's prefill (200 tokens: 2 ms) with A's first decode (5 ms + 0.1 ms + 101 x 10 ns).
        let reqs = [
            req(0, 100, 2),
            VirtualRequest {
                arrival_ns: 500_000,
                prompt_tokens: 200,
                output_tokens: 1,
            },
        ];
        let t = simulate(p, &reqs);
        assert_eq!(t[0].chunks[0], (1_000_000, 1));
        let second = 1_000_000 + 2_000_000 + 5_101_010;
        assert_eq!(t[0].chunks[1], (second, 2));
        assert_eq!(t[1].prefill_start_ns, 1_000_000);
        assert_eq!(t[1].chunks[0], (second, 1));
    }

    #[test]
    fn requests_beyond_max_running_wait_for_a_slot() {
        let p = params(2, 1_000_000, 8192, 1);
        let reqs = [
            req(0, 100, 5),
            req(0, 100, 5),
            req(0, 100, 5),
            req(0, 100, 5),
        ];
        let t = simulate(p, &reqs);
        let end01 = t[0]
            .last_chunk_ns()
            .unwrap()
            .max(t[1].last_chunk_ns().unwrap());
        // The third and fourth start prefill only after both of the first two finished (they finish together).
        assert!(t[2].prefill_start_ns >= end01, "{t:?}");
        assert!(t[3].prefill_start_ns >= end01);
        assert!(t[2].first_chunk_ns().unwrap() > end01);
        assert!(t[0].first_chunk_ns().unwrap() < t[2].first_chunk_ns().unwrap());
        for tl in &t {
            assert_eq!(tl.chunks.len(), 5);
        }
    }

    #[test]
    fn kv_capacity_limits_admission() {
        // capacity 250: one request of 100 + 100 fits, a second one does not until the first finishes.
        let p = params(8, 250, 8192, 1);
        let t = simulate(p, &[req(0, 100, 100), req(0, 100, 100)]);
        assert!(t[1].prefill_start_ns >= t[0].last_chunk_ns().unwrap());
    }

    #[test]
    fn tokens_per_chunk_groups_tokens() {
        let p = params(8, 1_000_000, 8192, 4);
        let t = &simulate(p, &[req(0, 10, 10)])[0];
        let uptos: Vec<u32> = t.chunks.iter().map(|c| c.1).collect();
        assert_eq!(uptos, vec![4, 8, 10]);
    }

    #[test]
    fn core_reports_queue_and_kv_state_and_aborts() {
        let p = params(1, 1_000, 8192, 1);
        let mut core: EngineCore<u32> = EngineCore::new(p);
        core.submit(1, 10, 5);
        core.submit(2, 10, 5);
        core.admit(|_| true);
        assert_eq!(
            (core.running_len(), core.waiting_len(), core.kv_reserved()),
            (1, 1, 15)
        );
        core.plan(0).unwrap();
        assert_eq!(core.complete(|_, _| true), 0);
        assert_eq!(core.kv_used(), 11);
        let plan = core.plan(1).unwrap();
        assert_eq!(
            (
                plan.prefill_tokens,
                plan.decode_batch,
                plan.decode_context_tokens
            ),
            (0, 1, 11)
        );
        // The receiver is gone: the sequence is aborted and its reservation freed.
        assert_eq!(core.complete(|_, _| false), 1);
        assert_eq!(core.kv_reserved(), 0);
        // A dead queued request is dropped at admission.
        core.admit(|&id| id != 2);
        assert!(core.is_idle());
    }
}
