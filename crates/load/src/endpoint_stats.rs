//! Per-endpoint statistics of a run that used several endpoints, and the warning when one is much slower than
//! the others. Pooled statistics are computed over all records as for one endpoint; these are the same
//! computation ([`servebench_core::metrics::compute`]) over each endpoint's records, with the run's duration.

use serde_json::{json, Value};
use servebench_core::metrics::{compute, Metrics};
use servebench_core::record::{ItlRule, RequestRecord};
use servebench_core::stats::Summary;

/// An endpoint is compared with the others only when it and at least one other completed this many requests.
pub const SLOW_MIN_COMPLETED: u64 = 5;
/// "Much slower": its median TTFT or median TPOT is at least this many times the median of the other endpoints'.
pub const SLOW_FACTOR: f64 = 1.5;

/// One endpoint's share of a run.
#[derive(Debug, Clone)]
pub struct EndpointStats {
    /// Position in the run's endpoint list (0-based), as in each record's `endpoint`.
    pub index: usize,
    /// The endpoint's URL, credentials removed.
    pub url: String,
    pub metrics: Metrics,
}

impl EndpointStats {
    /// The entry of the result's `endpoints` list.
    pub fn to_json(&self) -> Value {
        let m = &self.metrics;
        let mut o = json!({
            "index": self.index,
            "url": self.url,
            "completed": m.completed,
            "failed": m.failed,
            "request_throughput": m.request_throughput,
            "output_throughput": m.output_throughput,
        });
        if let Some(obj) = o.as_object_mut() {
            for (name, s) in [
                ("ttft_ms", &m.ttft),
                ("tpot_ms", &m.tpot),
                ("itl_ms", &m.itl),
                ("e2e_latency_ms", &m.e2e),
            ] {
                obj.insert(format!("mean_{name}"), json!(s.mean));
                obj.insert(format!("median_{name}"), json!(s.median));
                obj.insert(format!("p99_{name}"), json!(s.p99));
            }
        }
        o
    }
}

/// Splits `records` by endpoint, computes each endpoint's metrics over the run's `duration_s`, and returns the
/// records again (all of them, by index). Records without an endpoint count as endpoint 0.
pub fn split(
    records: Vec<RequestRecord>,
    urls: &[String],
    duration_s: f64,
    rule: ItlRule,
) -> (Vec<RequestRecord>, Vec<EndpointStats>) {
    let n = urls.len().max(1);
    let mut groups: Vec<Vec<RequestRecord>> = (0..n).map(|_| Vec::new()).collect();
    for r in records {
        let i = (r.endpoint.unwrap_or(0) as usize).min(n - 1);
        groups[i].push(r);
    }
    let stats = groups
        .iter()
        .enumerate()
        .map(|(index, g)| EndpointStats {
            index,
            url: urls.get(index).cloned().unwrap_or_default(),
            metrics: compute(g, duration_s, rule),
        })
        .collect();
    let mut all: Vec<RequestRecord> = groups.into_iter().flatten().collect();
    all.sort_by_key(|r| r.index);
    (all, stats)
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    Summary::of(&mut v).median
}

/// One warning per endpoint that is much slower than the others (see [`SLOW_FACTOR`], [`SLOW_MIN_COMPLETED`]).
pub fn slow_endpoint_warnings(stats: &[EndpointStats]) -> Vec<String> {
    let eligible: Vec<&EndpointStats> = stats
        .iter()
        .filter(|s| s.metrics.completed >= SLOW_MIN_COMPLETED)
        .collect();
    let mut out = Vec::new();
    for s in &eligible {
        let mut why = Vec::new();
        for (name, get) in [
            (
                "TTFT",
                (|m: &Metrics| m.ttft.median) as fn(&Metrics) -> Option<f64>,
            ),
            ("TPOT", |m: &Metrics| m.tpot.median),
        ] {
            let others = eligible
                .iter()
                .filter(|o| o.index != s.index)
                .filter_map(|o| get(&o.metrics))
                .collect::<Vec<f64>>();
            let (Some(mine), Some(theirs)) = (get(&s.metrics), median(others)) else {
                continue;
            };
            if theirs > 0.0 && mine >= SLOW_FACTOR * theirs {
                why.push(format!(
                    "median {name} {mine:.1} ms vs {theirs:.1} ms ({:.1}x)",
                    mine / theirs
                ));
            }
        }
        if !why.is_empty() {
            out.push(format!(
                "endpoint {} ({}) is much slower than the others: {} (warned at {SLOW_FACTOR}x the other endpoints' median); its own numbers are under `endpoints`",
                s.index,
                s.url,
                why.join(", ")
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `n` successful records at `endpoint` with this TTFT and 11 output tokens over `e2e` ms.
    fn recs(endpoint: u32, n: usize, ttft: f64, e2e: f64, first_index: u64) -> Vec<RequestRecord> {
        (0..n)
            .map(|k| RequestRecord {
                index: first_index + k as u64,
                endpoint: Some(endpoint),
                ttft_ms: Some(ttft),
                e2e_ms: Some(e2e),
                chunk_ms: (0..11)
                    .map(|t| ttft + t as f64 * (e2e - ttft) / 10.0)
                    .collect(),
                output_tokens: Some(11),
                prompt_tokens: Some(4),
                generated_text: "x".repeat(11),
                ..Default::default()
            })
            .collect()
    }

    fn urls(n: usize) -> Vec<String> {
        (0..n)
            .map(|i| format!("http://127.0.0.1:{}", 9000 + i))
            .collect()
    }

    #[test]
    fn split_counts_sum_to_the_pool_and_records_come_back_in_order() {
        let mut all = recs(0, 6, 10.0, 110.0, 0);
        all.extend(recs(1, 4, 10.0, 110.0, 6));
        all.extend(recs(2, 5, 10.0, 110.0, 10));
        let mut failed = recs(1, 1, 10.0, 110.0, 15);
        failed[0].error = Some("boom".into());
        all.extend(failed);
        all.reverse();
        let (back, stats) = split(all, &urls(3), 2.0, ItlRule::PerChunk);
        assert_eq!(
            back.iter().map(|r| r.index).collect::<Vec<_>>(),
            (0..16).collect::<Vec<_>>()
        );
        let counts: Vec<(u64, u64)> = stats
            .iter()
            .map(|s| (s.metrics.completed, s.metrics.failed))
            .collect();
        assert_eq!(counts, vec![(6, 0), (4, 1), (5, 0)]);
        assert_eq!(stats[0].metrics.request_throughput, 3.0);
        let j = stats[1].to_json();
        assert_eq!(j["url"], "http://127.0.0.1:9001");
        assert_eq!(j["completed"], 4);
        assert_eq!(j["median_ttft_ms"], 10.0);
        assert_eq!(j["median_tpot_ms"], 10.0);
        assert_eq!(j["p99_e2e_latency_ms"], 110.0);
    }

    #[test]
    fn the_slow_endpoint_is_named_and_equal_ones_are_not() {
        let mut all = recs(0, 8, 10.0, 110.0, 0);
        all.extend(recs(1, 8, 11.0, 115.0, 8));
        all.extend(recs(2, 8, 40.0, 140.0, 16));
        let (_, stats) = split(all, &urls(3), 1.0, ItlRule::PerChunk);
        let w = slow_endpoint_warnings(&stats);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].starts_with("endpoint 2 (http://127.0.0.1:9002)"),
            "{}",
            w[0]
        );
        // TTFT 40 vs the others' median 10.5; TPOT 10 vs 10.2: only TTFT is named.
        assert!(
            w[0].contains("median TTFT 40.0 ms vs 10.5 ms (3.8x)"),
            "{}",
            w[0]
        );
        assert!(!w[0].contains("TPOT"), "{}", w[0]);

        let mut alike = recs(0, 8, 10.0, 110.0, 0);
        alike.extend(recs(1, 8, 14.0, 114.0, 8));
        let (_, stats) = split(alike, &urls(2), 1.0, ItlRule::PerChunk);
        assert!(slow_endpoint_warnings(&stats).is_empty());
    }

    #[test]
    fn too_few_requests_are_not_judged() {
        let mut all = recs(0, 8, 10.0, 110.0, 0);
        all.extend(recs(1, (SLOW_MIN_COMPLETED - 1) as usize, 90.0, 990.0, 8));
        let (_, stats) = split(all, &urls(2), 1.0, ItlRule::PerChunk);
        assert!(slow_endpoint_warnings(&stats).is_empty());
        let mut all = recs(0, 8, 10.0, 110.0, 0);
        all.extend(recs(1, SLOW_MIN_COMPLETED as usize, 90.0, 990.0, 8));
        let (_, stats) = split(all, &urls(2), 1.0, ItlRule::PerChunk);
        let w = slow_endpoint_warnings(&stats);
        assert_eq!(w.len(), 1);
        assert!(w[0].contains("TTFT") && w[0].contains("TPOT"), "{}", w[0]);
    }
}
