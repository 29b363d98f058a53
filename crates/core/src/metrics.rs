//! From per-request records to the aggregate numbers of a run (DESIGN.md "Definitions").

use crate::record::{RequestRecord, TokenSource};
use crate::stats::Summary;
use std::collections::BTreeMap;

/// Aggregates of one run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Metrics {
    pub completed: u64,
    pub failed: u64,
    /// Σ prompt tokens (client tokenizer) over successful requests.
    pub total_input: u64,
    /// Σ output tokens (server usage where given, else tokenizer) over successful requests.
    pub total_output: u64,
    pub total_output_retokenized: u64,
    pub duration_s: f64,
    pub request_throughput: f64,
    pub input_throughput: f64,
    pub output_throughput: f64,
    pub output_throughput_retokenized: f64,
    pub total_throughput: f64,
    pub ttft: Summary,
    pub tpot: Summary,
    pub itl: Summary,
    pub itl_per_token: Summary,
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

/// Computes the run's aggregates. Failed requests are counted and never enter latency statistics.
/// Warm-up records are ignored. `duration_s` is first send → last completion.
pub fn compute(records: &[RequestRecord], duration_s: f64) -> Metrics {
    let mut m = Metrics {
        duration_s,
        ..Default::default()
    };
    let (mut ttft, mut tpot, mut itl, mut itl_tok, mut e2e) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
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
            ttft.push(t);
            ttft_s.push(t + (r.send_ms - r.scheduled_ms));
        }
        if let Some(t) = r.tpot_ms() {
            tpot.push(t);
        }
        itl.extend(r.itl_ms());
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
        m.concurrency = e2e.iter().sum::<f64>() / 1000.0 / duration_s;
    }
    m.prompt_token_mean_diff = crate::stats::mean(&diffs);
    m.ttft = Summary::of(&mut ttft);
    m.tpot = Summary::of(&mut tpot);
    m.itl = Summary::of(&mut itl);
    m.itl_per_token = Summary::of(&mut itl_tok);
    m.e2e = Summary::of(&mut e2e);
    m.client_queue = Summary::of(&mut queue);
    m.send_lag = Summary::of(&mut lag);
    m.ttft_from_scheduled = Summary::of(&mut ttft_s);
    m.e2e_from_scheduled = Summary::of(&mut e2e_s);
    m.per_request_output_tps = Summary::of(&mut tps);
    m
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
        let m = compute(&records, 2.0);
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

    #[test]
    fn coordinated_omission_view() {
        let r = RequestRecord {
            scheduled_ms: 0.0,
            send_ms: 50.0,
            ..rec(10.0, 20.0, 2, vec![10.0, 20.0])
        };
        let m = compute(&[r], 1.0);
        assert_eq!(m.ttft.mean, Some(10.0));
        assert_eq!(m.ttft_from_scheduled.mean, Some(60.0));
        assert_eq!(m.send_lag.max, Some(50.0));
    }

    #[test]
    fn warmup_records_are_ignored() {
        let mut r = rec(1.0, 2.0, 2, vec![1.0, 2.0]);
        r.warmup = true;
        let m = compute(&[r], 1.0);
        assert_eq!(m.completed, 0);
    }
}
