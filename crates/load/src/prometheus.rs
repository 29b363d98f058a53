//! The server's own metrics during a run: Prometheus `/metrics` scraped every second, reduced to the
//! gauges that explain latency (running and queued requests, KV-cache usage, prefix-cache hit rate,
//! generation throughput), whichever engine names them.
//!
//! Names read (the first present wins; label sets are summed, e.g. one series per data-parallel rank):
//!
//! | gauge | SGLang | vLLM |
//! |---|---|---|
//! | `running` | `sglang:num_running_reqs` | `vllm:num_requests_running` |
//! | `queued` | `sglang:num_queue_reqs` | `vllm:num_requests_waiting` |
//! | `kv_usage` (0–1) | `sglang:token_usage` | `vllm:kv_cache_usage_perc`, `vllm:gpu_cache_usage_perc` |
//! | `cache_hit_rate` (0–1) | `sglang:cache_hit_rate` | Δ`vllm:prefix_cache_hits_total` / Δ`vllm:prefix_cache_queries_total` |
//! | `gen_throughput` (tok/s) | `sglang:gen_throughput` | Δ`vllm:generation_tokens_total` / Δt |
//!
//! Rates from counters are taken between consecutive scrapes, so the first sample has none.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// One metric family's samples: `name` → summed value over its label sets.
pub type Families = BTreeMap<String, f64>;

/// Parses the Prometheus text exposition format into sums per metric name. Comments, blank lines
/// and lines that do not parse are skipped (a scrape must never stop a run); `NaN` values are
/// dropped; `+Inf`/`-Inf` are kept.
pub fn parse(text: &str) -> Families {
    let mut out = Families::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some((name, value)) = parse_sample(line) {
            *out.entry(name.to_string()).or_insert(0.0) += value;
        }
    }
    out
}

/// `name{labels} value [timestamp]` → (name, value).
fn parse_sample(line: &str) -> Option<(&str, f64)> {
    let name_end = line.find(|c: char| c == '{' || c.is_whitespace())?;
    let name = &line[..name_end];
    let rest = &line[name_end..];
    let rest = if rest.starts_with('{') {
        &rest[label_end(rest)? + 1..]
    } else {
        rest
    };
    let value = rest.split_whitespace().next()?;
    let v = match value {
        "+Inf" | "Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        other => other.parse::<f64>().ok()?,
    };
    if name.is_empty() || v.is_nan() {
        return None;
    }
    Some((name, v))
}

/// Index of the `}` closing a label set that starts at 0, skipping quoted values with escapes.
fn label_end(s: &str) -> Option<usize> {
    let mut in_quotes = false;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if in_quotes => escaped = true,
            '"' => in_quotes = !in_quotes,
            '}' if !in_quotes => return Some(i),
            _ => {}
        }
    }
    None
}

/// The gauges of one scrape; `None` where the server does not publish it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ServerSample {
    /// Seconds since the scraper started.
    pub t_s: f64,
    pub running: Option<f64>,
    pub queued: Option<f64>,
    pub kv_usage: Option<f64>,
    pub cache_hit_rate: Option<f64>,
    pub gen_throughput: Option<f64>,
}

/// Which engine's names the server used (the first scrape decides).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dialect {
    Sglang,
    Vllm,
    Unknown,
}

impl Dialect {
    pub fn of(f: &Families) -> Dialect {
        if f.keys().any(|k| k.starts_with("sglang:")) {
            Dialect::Sglang
        } else if f.keys().any(|k| k.starts_with("vllm:")) {
            Dialect::Vllm
        } else {
            Dialect::Unknown
        }
    }
}

/// Reduces consecutive scrapes to [`ServerSample`]s (counters become rates between scrapes).
#[derive(Debug, Default)]
pub struct Reducer {
    prev: Option<(f64, Families)>,
}

impl Reducer {
    pub fn sample(&mut self, t_s: f64, f: Families) -> ServerSample {
        let get = |names: &[&str]| names.iter().find_map(|n| f.get(*n).copied());
        let dialect = Dialect::of(&f);
        let rate = |num: &str, den: Option<&str>| -> Option<f64> {
            let (pt, pf) = self.prev.as_ref()?;
            let dn = f.get(num)? - pf.get(num)?;
            match den {
                Some(d) => {
                    let dd = f.get(d)? - pf.get(d)?;
                    (dd > 0.0).then(|| dn / dd)
                }
                None => (t_s > *pt).then(|| dn / (t_s - pt)),
            }
        };
        let (cache_hit_rate, gen_throughput) = match dialect {
            Dialect::Vllm => (
                rate(
                    "vllm:prefix_cache_hits_total",
                    Some("vllm:prefix_cache_queries_total"),
                ),
                rate("vllm:generation_tokens_total", None),
            ),
            _ => (
                get(&["sglang:cache_hit_rate"]),
                get(&["sglang:gen_throughput"]),
            ),
        };
        let s = ServerSample {
            t_s,
            running: get(&["sglang:num_running_reqs", "vllm:num_requests_running"]),
            queued: get(&["sglang:num_queue_reqs", "vllm:num_requests_waiting"]),
            kv_usage: get(&[
                "sglang:token_usage",
                "vllm:kv_cache_usage_perc",
                "vllm:gpu_cache_usage_perc",
            ]),
            cache_hit_rate,
            gen_throughput,
        };
        self.prev = Some((t_s, f));
        s
    }
}

/// The series a scrape loop collected, with what went wrong (a scrape failure never stops a run).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServerSeries {
    pub url: String,
    pub interval_s: f64,
    pub dialect: Option<Dialect>,
    pub samples: Vec<ServerSample>,
    pub failed_scrapes: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

impl ServerSeries {
    /// The largest queue seen (None when the server publishes no queue gauge).
    pub fn max_queued(&self) -> Option<f64> {
        self.samples
            .iter()
            .filter_map(|s| s.queued)
            .reduce(f64::max)
    }
}

/// Scrapes `metrics_url` every `interval` until `stop` turns true (or its sender is dropped).
pub async fn scrape(
    client: reqwest::Client,
    metrics_url: String,
    interval: Duration,
    mut stop: watch::Receiver<bool>,
) -> ServerSeries {
    let start = Instant::now();
    let mut series = ServerSeries {
        url: metrics_url.clone(),
        interval_s: interval.as_secs_f64(),
        ..Default::default()
    };
    let mut reducer = Reducer::default();
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            changed = stop.changed() => {
                if changed.is_err() || *stop.borrow() { break; }
                continue;
            }
        }
        if *stop.borrow() {
            break;
        }
        match fetch(&client, &metrics_url, interval).await {
            Ok(text) => {
                let families = parse(&text);
                series.dialect.get_or_insert(Dialect::of(&families));
                series
                    .samples
                    .push(reducer.sample(start.elapsed().as_secs_f64(), families));
            }
            Err(e) => {
                series.failed_scrapes += 1;
                series.last_error = Some(e);
            }
        }
    }
    series
}

async fn fetch(client: &reqwest::Client, url: &str, timeout: Duration) -> Result<String, String> {
    let resp = client
        .get(url)
        .timeout(timeout.max(Duration::from_millis(500)))
        .send()
        .await
        .map_err(|e| format!("GET {url}: {e}"))?;
    if !resp.status().is_success() {
        return Err(format!("GET {url}: HTTP {}", resp.status().as_u16()));
    }
    resp.text().await.map_err(|e| format!("GET {url}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SGLANG: &str = r#"# HELP sglang:num_running_reqs The number of running requests.
# TYPE sglang:num_running_reqs gauge
sglang:num_running_reqs{model_name="m",engine_type="unified",tp_rank="0"} 30.0
sglang:num_running_reqs{model_name="m",engine_type="unified",tp_rank="1"} 2.0
sglang:num_queue_reqs{model_name="m"} 96.0
sglang:token_usage{model_name="m"} 0.5
sglang:cache_hit_rate{model_name="m"} 0.25
sglang:gen_throughput{model_name="m"} 1234.5
sglang:time_to_first_token_seconds_bucket{le="+Inf",model_name="m"} 7.0
weird{a="x}\"y"} 3 1700000000
broken line
nan_metric NaN
"#;

    #[test]
    fn parses_sglang_families_and_labels() {
        let f = parse(SGLANG);
        assert_eq!(f["sglang:num_running_reqs"], 32.0);
        assert_eq!(f["weird"], 3.0);
        assert!(!f.contains_key("nan_metric") && !f.contains_key("broken"));
        assert_eq!(Dialect::of(&f), Dialect::Sglang);
        let s = Reducer::default().sample(1.0, f);
        assert_eq!(
            (
                s.running,
                s.queued,
                s.kv_usage,
                s.cache_hit_rate,
                s.gen_throughput
            ),
            (Some(32.0), Some(96.0), Some(0.5), Some(0.25), Some(1234.5))
        );
    }

    #[test]
    fn vllm_counters_become_rates() {
        let scrape = |gen: f64, hits: f64, queries: f64| {
            parse(&format!(
                "vllm:num_requests_running{{model_name=\"m\"}} 4\nvllm:num_requests_waiting{{model_name=\"m\"}} 0\n\
                 vllm:kv_cache_usage_perc{{model_name=\"m\"}} 0.1\nvllm:generation_tokens_total{{model_name=\"m\"}} {gen}\n\
                 vllm:prefix_cache_hits_total{{model_name=\"m\"}} {hits}\nvllm:prefix_cache_queries_total{{model_name=\"m\"}} {queries}\n"
            ))
        };
        let mut r = Reducer::default();
        let first = r.sample(0.0, scrape(100.0, 0.0, 0.0));
        assert_eq!((first.gen_throughput, first.cache_hit_rate), (None, None));
        let second = r.sample(2.0, scrape(300.0, 30.0, 120.0));
        assert_eq!(second.gen_throughput, Some(100.0));
        assert_eq!(second.cache_hit_rate, Some(0.25));
        assert_eq!(
            (second.running, second.queued, second.kv_usage),
            (Some(4.0), Some(0.0), Some(0.1))
        );
    }

    /// Real scrapes of vLLM 0.32.0 (CPU build) under load and just after (tests/fixtures/vllm_metrics/README.md).
    const VLLM_UNDER_LOAD: &str =
        include_str!("../../../tests/fixtures/vllm_metrics/under_load.prom");
    const VLLM_AFTER_LOAD: &str =
        include_str!("../../../tests/fixtures/vllm_metrics/after_load.prom");

    #[test]
    fn real_vllm_scrapes_give_every_gauge() {
        let (a, b) = (parse(VLLM_UNDER_LOAD), parse(VLLM_AFTER_LOAD));
        for name in [
            "vllm:num_requests_running",
            "vllm:num_requests_waiting",
            "vllm:kv_cache_usage_perc",
            "vllm:prefix_cache_hits_total",
            "vllm:prefix_cache_queries_total",
            "vllm:generation_tokens_total",
        ] {
            assert!(a.contains_key(name) && b.contains_key(name), "{name}");
        }
        // The pre-V1 name is gone from this version (read only as a fallback).
        assert!(!a.contains_key("vllm:gpu_cache_usage_perc"));
        // A family whose name extends a mapped one is its own family, not summed into it.
        assert!(a.contains_key("vllm:num_requests_waiting_by_reason"));
        assert_eq!(Dialect::of(&a), Dialect::Vllm);
        let mut r = Reducer::default();
        let first = r.sample(0.0, a);
        assert_eq!(
            (first.running, first.queued, first.kv_usage),
            (Some(4.0), Some(12.0), Some(0.005502063273727598))
        );
        assert_eq!((first.cache_hit_rate, first.gen_throughput), (None, None));
        // Counters between the scrapes: 12428 − 10445 generated tokens, 512 − 256 hits of 14052 − 11580 queries.
        let second = r.sample(10.0, b);
        assert_eq!(
            (second.running, second.queued, second.kv_usage),
            (Some(0.0), Some(0.0), Some(0.0))
        );
        assert_eq!(second.gen_throughput, Some((12428.0 - 10445.0) / 10.0));
        assert_eq!(second.cache_hit_rate, Some(256.0 / 2472.0));
    }

    #[test]
    fn unknown_servers_give_empty_samples() {
        let s = Reducer::default().sample(0.0, parse("up 1\n"));
        assert_eq!(s.running, None);
        assert_eq!(Dialect::of(&parse("up 1\n")), Dialect::Unknown);
    }
}
