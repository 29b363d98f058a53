//! From per-request records to the aggregate numbers of a run (DESIGN.md "Definitions").

use crate::record::{ItlRule, RequestRecord, TokenSource};
use crate::stats::Summary;
use std::collections::BTreeMap;

/// Aggregates of one run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Metrics {
    pub completed: u64,
    pub failed: u64,
    /// Σ prompt tokens (client tokenizer) over successful requests.
    pub total_input: u64,
    /// Of which text (sglang's `total_input_text_tokens`; every prompt is text here).
    pub total_input_text: u64,
    /// Of which image tokens (sglang's `total_input_vision_tokens`; always 0: no image datasets).
    pub total_input_vision: u64,
    /// Σ output tokens (server usage where given, else tokenizer) over successful requests.
    pub total_output: u64,
    pub total_output_retokenized: u64,
    pub duration_s: f64,
    pub request_throughput: f64,
    pub input_throughput: f64,
    pub output_throughput: f64,
    pub output_throughput_retokenized: f64,
    pub total_throughput: f64,
    /// sglang's TTFT: send → first chunk with answer text (reasoning is not timed).
    pub ttft: Summary,
    /// Send → first chunk with answer or reasoning text.
    pub ttft_any: Summary,
    /// (E2E − sglang's TTFT) / (output tokens − 1).
    pub tpot: Summary,
    /// sglang's ITL under [`Metrics::itl_rule`].
    pub itl: Summary,
    /// servebench's per-chunk ITL: gaps between chunks carrying answer or reasoning text.
    pub itl_chunk: Summary,
    pub itl_per_token: Summary,
    /// The rule `itl` followed.
    pub itl_rule: ItlRule,
    /// sglang's peak output tokens in one second of the run (tokens placed at TTFT + its ITLs, 1 s buckets).
    pub max_output_tokens_per_s: f64,
    /// sglang's peak number of requests running in one second of the run.
    pub max_concurrent_requests: u64,
    pub e2e: Summary,
    /// Waiting for a concurrency permit.
    pub client_queue: Summary,
    /// Open loop: actual send − scheduled send.
    pub send_lag: Summary,
    /// Open loop: TTFT and E2E measured from the scheduled send (coordinated omission corrected).
    pub ttft_from_scheduled: Summary,
    pub e2e_from_scheduled: Summary,
    /// Σ E2E / duration (SGLang's `concurrency`).
    pub concurrency: f64,
    /// Output tokens per second of a single request (output_tokens / E2E), per request.
    pub per_request_output_tps: Summary,
    /// How many successful requests had their output count from each source.
    pub output_token_sources: BTreeMap<&'static str, u64>,
    /// Successful requests whose server-reported prompt tokens differ from the client's count.
    pub prompt_token_mismatches: u64,
    /// Mean of (server prompt tokens − client prompt tokens) over requests where both are known.
    pub prompt_token_mean_diff: Option<f64>,
    /// Successful requests whose output length differs from the intended one.
    pub output_len_mismatches: u64,
    pub retries: u64,
    /// Failures by stable reason code ([`crate::record::FailureCode`]); the messages stay in the records.
    pub failure_reasons: BTreeMap<String, u64>,
    /// The first failure's message per reason code (for the printed summary).
    pub failure_examples: BTreeMap<String, String>,
    /// Finish reasons of successful requests.
    pub finish_reasons: BTreeMap<String, u64>,
}

fn source_name(s: TokenSource) -> &'static str {
    match s {
        TokenSource::Usage => "usage",
        TokenSource::Tokenizer => "tokenizer",
        TokenSource::None => "none",
    }
}

/// sglang's per-second peaks: each successful request's tokens placed at send + TTFT + its raw ITLs, counted
/// in 1 s buckets from the earliest send (`max_output_tokens_per_s`); each request counted in every second
/// from its send to its end (`max_concurrent_requests`). Times: (send_ms, ttft_ms, e2e_ms, raw itl).
fn per_second_peaks(reqs: &[(f64, f64, f64, Vec<f64>)]) -> (f64, u64) {
    let Some(min_start) = reqs.iter().map(|r| r.0).min_by(f64::total_cmp) else {
        return (0.0, 0);
    };
    let max_end = reqs
        .iter()
        .map(|r| r.0 + r.2)
        .max_by(f64::total_cmp)
        .unwrap_or(min_start);
    let secs = ((max_end - min_start) / 1000.0).ceil().max(0.0) as usize + 1;
    if secs > 10_000_000 {
        return (0.0, 0);
    }
    let (mut tokens, mut running) = (vec![0u64; secs], vec![0u64; secs]);
    let bucket = |t_ms: f64| ((t_ms - min_start) / 1000.0) as i64;
    for (send, ttft, e2e, raw) in reqs {
        let mut t = send + ttft;
        for time in std::iter::once(0.0).chain(raw.iter().copied()) {
            t += time;
            let b = bucket(t);
            if (0..secs as i64).contains(&b) {
                tokens[b as usize] += 1;
            }
        }
        let (s, e) = (bucket(*send).max(0), bucket(send + e2e));
        for sec in s..(e + 1).min(secs as i64) {
            running[sec as usize] += 1;
        }
    }
    (
        tokens.iter().copied().max().unwrap_or(0) as f64,
        running.iter().copied().max().unwrap_or(0),
    )
}

/// Computes the run's aggregates with sglang's ITL rule `rule`. Failed requests are counted and never enter
/// latency statistics. Warm-up records are ignored. `duration_s` is first send → last completion.
pub fn compute(records: &[RequestRecord], duration_s: f64, rule: ItlRule) -> Metrics {
    let mut m = Metrics {
        duration_s,
        itl_rule: rule,
        ..Default::default()
    };
    let (mut ttft, mut tpot, mut itl, mut itl_tok, mut e2e) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut ttft_any, mut itl_chunk, mut peaks) = (Vec::new(), Vec::new(), Vec::new());
    let (mut queue, mut lag, mut ttft_s, mut e2e_s, mut tps) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut diffs = Vec::new();
    for r in records.iter().filter(|r| !r.warmup) {
        m.retries += r.retries as u64;
        if let Some(code) = r.failure_code() {
            m.failed += 1;
            *m.failure_reasons
                .entry(code.as_str().to_string())
                .or_insert(0) += 1;
            m.failure_examples
                .entry(code.as_str().to_string())
                .or_insert_with(|| {
                    let msg = r.error.as_deref().unwrap_or_default();
                    msg.lines()
                        .next()
                        .unwrap_or_default()
                        .chars()
                        .take(200)
                        .collect()
                });
            continue;
        }
        m.completed += 1;
        m.total_input += r.prompt_tokens.unwrap_or(0);
        m.total_output += r.output_tokens.unwrap_or(0);
        m.total_output_retokenized += r.output_tokens_retokenized.unwrap_or(0);
        *m.output_token_sources
            .entry(source_name(r.output_tokens_source))
            .or_insert(0) += 1;
        if let Some(f) = &r.finish_reason {
            *m.finish_reasons.entry(f.clone()).or_insert(0) += 1;
        }
        if let (Some(s), Some(c)) = (r.prompt_tokens_server, r.prompt_tokens) {
            diffs.push(s as f64 - c as f64);
            if s != c {
                m.prompt_token_mismatches += 1;
            }
        }
        if let (Some(o), Some(i)) = (r.output_tokens, r.output_len_intended) {
            if o != i {
                m.output_len_mismatches += 1;
            }
        }
        if let Some(t) = r.ttft_ms {
            ttft_any.push(t);
            ttft_s.push(t + (r.send_ms - r.scheduled_ms));
        }
        // sglang keeps TTFT 0 for a request that never sent answer text.
        let answer_ttft = r.answer_ttft_ms().unwrap_or(0.0);
        ttft.push(answer_ttft);
        if let Some(t) = r.tpot_ms() {
            tpot.push(t);
        }
        let (sg_itl, raw) = r.sglang_itl_ms(rule);
        itl.extend(sg_itl);
        peaks.push((r.send_ms, answer_ttft, r.e2e_ms.unwrap_or(0.0), raw));
        itl_chunk.extend(r.itl_ms());
        itl_tok.extend(r.itl_per_token_ms());
        if let Some(e) = r.e2e_ms {
            e2e.push(e);
            e2e_s.push(e + (r.send_ms - r.scheduled_ms));
            if e > 0.0 {
                if let Some(o) = r.output_tokens {
                    tps.push(o as f64 / (e / 1000.0));
                }
            }
        }
        queue.push(r.queue_ms);
        lag.push(r.send_ms - r.scheduled_ms);
    }
    if duration_s > 0.0 {
        m.request_throughput = m.completed as f64 / duration_s;
        m.input_throughput = m.total_input as f64 / duration_s;
        m.output_throughput = m.total_output as f64 / duration_s;
        m.output_throughput_retokenized = m.total_output_retokenized as f64 / duration_s;
        m.total_throughput = (m.total_input + m.total_output) as f64 / duration_s;
        // A fold from +0.0: `sum()` of nothing is -0.0, which the result JSON would show as `-0.0`.
        m.concurrency = e2e.iter().fold(0.0, |a, b| a + b) / 1000.0 / duration_s;
    }
    m.prompt_token_mean_diff = crate::stats::mean(&diffs);
    m.total_input_text = m.total_input;
    (m.max_output_tokens_per_s, m.max_concurrent_requests) = per_second_peaks(&peaks);
    m.ttft = Summary::of(&mut ttft);
    m.ttft_any = Summary::of(&mut ttft_any);
    // The three inter-token lists have one value per chunk and are often the same list (one token a chunk):
    // a list equal bit for bit to the chunk gaps has their summary, without sorting it again.
    let (itl_is_chunk, tok_is_chunk) =
        (same_bits(&itl, &itl_chunk), same_bits(&itl_tok, &itl_chunk));
    m.itl_chunk = Summary::of(&mut itl_chunk);
    m.tpot = Summary::of(&mut tpot);
    m.itl = if itl_is_chunk {
        m.itl_chunk
    } else {
        Summary::of(&mut itl)
    };
    m.itl_per_token = if tok_is_chunk {
        m.itl_chunk
    } else {
        Summary::of(&mut itl_tok)
    };
    m.e2e = Summary::of(&mut e2e);
    m.client_queue = Summary::of(&mut queue);
    m.send_lag = Summary::of(&mut lag);
    m.ttft_from_scheduled = Summary::of(&mut ttft_s);
    m.e2e_from_scheduled = Summary::of(&mut e2e_s);
    m.per_request_output_tps = Summary::of(&mut tps);
    m
}

/// Whether two lists hold the same values bit for bit, in the same order ([`Summary::of`] gives them the same
/// summary).
fn same_bits(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(ttft: f64, e2e: f64, out: u64, chunks: Vec<f64>) -> RequestRecord {
        RequestRecord {
            prompt_tokens: Some(100),
            output_tokens: Some(out),
            output_tokens_retokenized: Some(out),
            output_tokens_source: TokenSource::Usage,
            ttft_ms: Some(ttft),
            e2e_ms: Some(e2e),
            chunk_ms: chunks,
            ..Default::default()
        }
    }

    #[test]
    fn aggregates_like_sglang() {
        let records = vec![
            rec(100.0, 300.0, 3, vec![100.0, 200.0, 300.0]),
            rec(200.0, 600.0, 5, vec![200.0, 300.0, 400.0, 500.0, 600.0]),
            RequestRecord {
                error: Some("HTTP 500: boom (after 12 ms)".into()),
                error_code: Some(crate::record::FailureCode::Http5xx),
                ..Default::default()
            },
            RequestRecord {
                error: Some("HTTP 503: busy (after 40 ms)".into()),
                error_code: Some(crate::record::FailureCode::Http5xx),
                ..Default::default()
            },
        ];
        let m = compute(&records, 2.0, ItlRule::PerChunk);
        assert_eq!((m.completed, m.failed), (2, 2));
        assert_eq!(m.total_input, 200);
        assert_eq!(m.total_output, 8);
        assert_eq!(m.request_throughput, 1.0);
        assert_eq!(m.output_throughput, 4.0);
        assert_eq!(m.total_throughput, 104.0);
        assert_eq!(m.ttft.mean, Some(150.0));
        assert_eq!(m.ttft.median, Some(150.0));
        assert_eq!(m.ttft.std, Some(50.0));
        assert_eq!(m.tpot.mean, Some(100.0)); // (300-100)/2 and (600-200)/4
        assert_eq!(m.itl.count, 6);
        assert_eq!(m.itl.mean, Some(100.0));
        assert!((m.concurrency - 0.45).abs() < 1e-12); // (0.3 + 0.6) / 2
                                                       // One cause, one reason: messages and times are not part of the key.
        assert_eq!(m.failure_reasons.len(), 1, "{:?}", m.failure_reasons);
        assert_eq!(m.failure_reasons.get("http_5xx"), Some(&2));
        assert_eq!(
            m.failure_examples.get("http_5xx").map(String::as_str),
            Some("HTTP 500: boom (after 12 ms)")
        );
        assert_eq!(m.output_token_sources.get("usage"), Some(&2));
    }

    /// Each inter-token summary is its own list's, whether the lists differ (chunks of several tokens) or are
    /// the same list (one token a chunk, where the chunk gaps' summary is reused).
    #[test]
    fn the_inter_token_summaries_are_those_of_their_own_lists() {
        let multi = RequestRecord {
            chunk_tokens: vec![1, 3, 1, 2, 1],
            ..rec(10.0, 95.0, 8, vec![10.0, 40.0, 47.0, 75.0, 95.0])
        };
        let single = rec(5.0, 35.0, 4, vec![5.0, 12.0, 20.0, 35.0]);
        let own = |records: &[RequestRecord], rule| {
            let (mut itl, mut chunk, mut tok) = (Vec::new(), Vec::new(), Vec::new());
            for r in records {
                itl.extend(r.sglang_itl_ms(rule).0);
                chunk.extend(r.itl_ms());
                tok.extend(r.itl_per_token_ms());
            }
            let (itl, chunk, tok) = (
                Summary::of(&mut itl),
                Summary::of(&mut chunk),
                Summary::of(&mut tok),
            );
            (itl, chunk, tok)
        };
        for (records, rule) in [
            (vec![multi.clone(), single.clone()], ItlRule::ServerTokens),
            (vec![multi], ItlRule::PerChunk),
            (vec![single], ItlRule::PerChunk),
        ] {
            let m = compute(&records, 1.0, rule);
            let (itl, chunk, tok) = own(&records, rule);
            assert_eq!((m.itl, m.itl_chunk, m.itl_per_token), (itl, chunk, tok));
        }
        let m = compute(
            &[rec(5.0, 35.0, 4, vec![5.0, 12.0, 20.0, 35.0])],
            1.0,
            ItlRule::PerChunk,
        );
        assert_eq!(m.itl, m.itl_chunk);
        assert_eq!((m.itl.count, m.itl.max), (3, Some(15.0)));
        let m = compute(
            &[RequestRecord {
                chunk_tokens: vec![1, 3, 1, 2, 1],
                ..rec(10.0, 95.0, 8, vec![10.0, 40.0, 47.0, 75.0, 95.0])
            }],
            1.0,
            ItlRule::ServerTokens,
        );
        assert_ne!(m.itl, m.itl_chunk);
        assert_eq!((m.itl_per_token.count, m.itl_chunk.count), (7, 4));
    }

    #[test]
    fn coordinated_omission_view() {
        let r = RequestRecord {
            scheduled_ms: 0.0,
            send_ms: 50.0,
            ..rec(10.0, 20.0, 2, vec![10.0, 20.0])
        };
        let m = compute(&[r], 1.0, ItlRule::PerChunk);
        assert_eq!(m.ttft.mean, Some(10.0));
        assert_eq!(m.ttft_from_scheduled.mean, Some(60.0));
        assert_eq!(m.send_lag.max, Some(50.0));
    }

    #[test]
    fn per_second_peaks_as_sglang_counts_them() {
        // Request A: sent at 0, first token at 0.5 s, then 4 tokens 0.3 s apart (0.8, 1.1, 1.4, 1.7), ends 1.7 s.
        // Request B: sent at 1.2 s, first token at 1.3 s, one more at 2.5 s, ends 2.5 s.
        let a = RequestRecord {
            send_ms: 0.0,
            ..rec(500.0, 1700.0, 5, vec![500.0, 800.0, 1100.0, 1400.0, 1700.0])
        };
        let b = RequestRecord {
            send_ms: 1200.0,
            ..rec(100.0, 1300.0, 2, vec![100.0, 1300.0])
        };
        let m = compute(&[a, b], 2.5, ItlRule::PerChunk);
        // Second 0: 0.5, 0.8; second 1: 1.1, 1.4, 1.7 (A) + 1.3 (B); second 2: 2.5 (B).
        assert_eq!(m.max_output_tokens_per_s, 4.0);
        // Second 1: A (0..=1) and B (1..=2).
        assert_eq!(m.max_concurrent_requests, 2);
        let empty = compute(&[], 1.0, ItlRule::PerChunk);
        assert_eq!(
            (empty.max_output_tokens_per_s, empty.max_concurrent_requests),
            (0.0, 0)
        );
    }

    #[test]
    fn warmup_records_are_ignored() {
        let mut r = rec(1.0, 2.0, 2, vec![1.0, 2.0]);
        r.warmup = true;
        let m = compute(&[r], 1.0, ItlRule::PerChunk);
        assert_eq!(m.completed, 0);
    }

    #[test]
    fn nothing_succeeded_gives_zero_not_negative_zero() {
        let failed = RequestRecord {
            error: Some("HTTP 500: boom".into()),
            ..Default::default()
        };
        let m = compute(&[failed.clone(), failed], 1.5, ItlRule::PerChunk);
        assert_eq!((m.completed, m.failed), (0, 2));
        assert!(
            m.concurrency == 0.0 && m.concurrency.is_sign_positive(),
            "{}",
            m.concurrency
        );
    }
}
