//! The result JSON of a run: every key `sglang.bench_serving --output-file` writes, in its order, then
//! servebench's own. Strict JSON: NaN → `null`, ±infinity → the strings `"inf"` / `"-inf"`.

use crate::metrics::Metrics;
use crate::record::{ItlRule, RequestRecord};
use crate::stats::Summary;
use serde_json::{json, Map, Value};

/// A float as strict JSON.
pub fn num(x: f64) -> Value {
    if x.is_nan() {
        Value::Null
    } else if x.is_infinite() {
        Value::String(if x > 0.0 { "inf" } else { "-inf" }.into())
    } else {
        json!(x)
    }
}

fn opt(x: Option<f64>) -> Value {
    x.map(num).unwrap_or(Value::Null)
}

/// The run's settings that go into the result (arguments as SGLang names them, plus ours).
#[derive(Debug, Clone, Default)]
pub struct RunInfo {
    pub backend: String,
    pub dataset_name: String,
    pub request_rate: f64,
    pub burstiness: f64,
    pub max_concurrency: Option<u64>,
    pub num_prompts: u64,
    pub sharegpt_output_len: Option<u64>,
    pub random_input_len: Option<u64>,
    pub random_output_len: Option<u64>,
    pub random_range_ratio: Option<f64>,
    pub seed: u64,
    pub model: String,
    pub base_url: String,
    pub tokenizer: String,
    /// How prompt tokens were counted ("tokenizer", "chat_template", "approximate").
    pub prompt_token_method: String,
    pub server_info: Value,
    pub simulated: bool,
    pub accept_length: Option<f64>,
    pub tag: Option<String>,
    pub command_line: String,
    pub started_at: String,
    pub interrupted: bool,
    pub warmup_requests: u64,
    pub warmup_connections: u64,
    pub connect: Summary,
    /// Event-loop lag of the client, sampled during the run.
    pub client_lag: Summary,
    pub client_saturated: bool,
    pub warnings: Vec<String>,
    /// Facts about the client side of the run.
    pub client: ClientFacts,
    /// Requests never sent or cut off by a stop.
    pub not_finished: u64,
    /// `--duration` in seconds, when set.
    pub duration_limit_s: Option<f64>,
    /// Where the per-request records went.
    pub details_file: Option<String>,
    /// The server's tensor-parallel size, when known (sweep plans).
    pub tensor_parallel: Option<u32>,
}

/// The client's side of a run: its CPU time, HTTP implementation, timestamp source and read delays.
#[derive(Debug, Clone, Default)]
pub struct ClientFacts {
    pub cpu_s: Option<f64>,
    /// "native" or "reqwest".
    pub http_client: String,
    /// "kernel" or "read".
    pub timestamp_source: String,
    /// Where `client_lag` came from: "reads" (the wait of a kernel-timestamped read every 10 ms) or "ticker"
    /// (how late a 10 ms timer fired).
    pub lag_source: String,
    pub p99_read_delay_ms: Option<f64>,
    pub max_read_delay_ms: Option<f64>,
    pub late_reads_pct: Option<f64>,
}

/// sglang's accept length from `/get_server_info` (read after the run): the PD form `{"decode": [info, …]}`
/// is unwrapped to its first decode server, then `internal_states[0].avg_spec_accept_length`.
pub fn accept_length(server_info: &Value) -> Option<f64> {
    let info = match server_info.get("decode") {
        Some(d) => d.get(0)?,
        None => server_info,
    };
    info.get("internal_states")?
        .get(0)?
        .get("avg_spec_accept_length")?
        .as_f64()
}

/// sglang's `--output-details` arrays (seconds, in request order; zeros for failures), with sglang's TTFT
/// (first answer chunk) and the ITLs its client keeps under `rule`.
pub fn add_sglang_details(obj: &mut Map<String, Value>, records: &[RequestRecord], rule: ItlRule) {
    let recs: Vec<&RequestRecord> = records.iter().filter(|r| !r.warmup).collect();
    let col =
        |f: &dyn Fn(&RequestRecord) -> Value| Value::Array(recs.iter().map(|r| f(r)).collect());
    obj.insert(
        "input_lens".into(),
        col(&|r| json!(r.prompt_tokens.unwrap_or(0))),
    );
    obj.insert(
        "output_lens".into(),
        col(&|r| {
            json!(if r.ok() {
                r.output_tokens.unwrap_or(0)
            } else {
                0
            })
        }),
    );
    obj.insert(
        "ttfts".into(),
        col(&|r| json!(r.answer_ttft_ms().unwrap_or(0.0) / 1000.0)),
    );
    obj.insert(
        "itls".into(),
        col(&|r| {
            let (_, raw) = r.sglang_itl_ms(rule);
            json!(raw.iter().map(|x| x / 1000.0).collect::<Vec<_>>())
        }),
    );
    obj.insert("generated_texts".into(), col(&|r| json!(r.generated_text)));
    obj.insert(
        "errors".into(),
        col(&|r| json!(r.error.clone().unwrap_or_default())),
    );
}

/// sglang's keys of one latency (mean, median, std, p99 / p95…) in its order. `zero_when_empty`: sglang
/// writes 0.0 for TTFT, TPOT and ITL with no values (`np.mean(x or 0)`); for E2E it writes NaN (here null).
fn put_summary(
    obj: &mut Map<String, Value>,
    name: &str,
    s: &Summary,
    sglang_keys: &[&str],
    zero_when_empty: bool,
) {
    for k in sglang_keys {
        let v = match *k {
            "mean" => s.mean,
            "median" => s.median,
            "std" => s.std,
            "p90" => s.p90,
            "p95" => s.p95,
            "p99" => s.p99,
            "max" => s.max,
            _ => None,
        };
        let v = if zero_when_empty && s.count == 0 {
            Some(0.0)
        } else {
            v
        };
        obj.insert(format!("{k}_{name}"), opt(v));
    }
}

fn put_extra(obj: &mut Map<String, Value>, name: &str, s: &Summary) {
    for (k, v) in [
        ("mean", s.mean),
        ("median", s.median),
        ("std", s.std),
        ("min", s.min),
        ("max", s.max),
        ("p90", s.p90),
        ("p95", s.p95),
        ("p99", s.p99),
        ("p999", s.p999),
    ] {
        let key = format!("{k}_{name}");
        obj.entry(key).or_insert_with(|| opt(v));
    }
}

/// Builds the result object.
pub fn result_json(info: &RunInfo, m: &Metrics) -> Value {
    let mut o = Map::new();
    // --- SGLang's keys, in its order ---
    o.insert("tag".into(), json!(info.tag));
    o.insert("backend".into(), json!(info.backend));
    o.insert("dataset_name".into(), json!(info.dataset_name));
    o.insert("request_rate".into(), num(info.request_rate));
    o.insert("max_concurrency".into(), json!(info.max_concurrency));
    o.insert(
        "sharegpt_output_len".into(),
        json!(info.sharegpt_output_len),
    );
    o.insert("random_input_len".into(), json!(info.random_input_len));
    o.insert("random_output_len".into(), json!(info.random_output_len));
    o.insert("random_range_ratio".into(), opt(info.random_range_ratio));
    o.insert("server_info".into(), info.server_info.clone());
    o.insert("duration".into(), num(m.duration_s));
    o.insert("completed".into(), json!(m.completed));
    o.insert("total_input_tokens".into(), json!(m.total_input));
    o.insert("total_input_text_tokens".into(), json!(m.total_input_text));
    o.insert(
        "total_input_vision_tokens".into(),
        json!(m.total_input_vision),
    );
    o.insert("total_output_tokens".into(), json!(m.total_output));
    o.insert(
        "total_output_tokens_retokenized".into(),
        json!(m.total_output_retokenized),
    );
    o.insert("request_throughput".into(), num(m.request_throughput));
    o.insert("input_throughput".into(), num(m.input_throughput));
    o.insert("output_throughput".into(), num(m.output_throughput));
    o.insert("total_throughput".into(), num(m.total_throughput));
    put_summary(
        &mut o,
        "e2e_latency_ms",
        &m.e2e,
        &["mean", "median", "std", "p90", "p99"],
        false,
    );
    put_summary(
        &mut o,
        "ttft_ms",
        &m.ttft,
        &["mean", "median", "std", "p99"],
        true,
    );
    put_summary(
        &mut o,
        "tpot_ms",
        &m.tpot,
        &["mean", "median", "std", "p99"],
        true,
    );
    put_summary(
        &mut o,
        "itl_ms",
        &m.itl,
        &["mean", "median", "std", "p95", "p99"],
        true,
    );
    o.insert("concurrency".into(), num(m.concurrency));
    o.insert("accept_length".into(), opt(info.accept_length));
    o.insert(
        "max_output_tokens_per_s".into(),
        num(m.max_output_tokens_per_s),
    );
    o.insert(
        "max_concurrent_requests".into(),
        json!(m.max_concurrent_requests),
    );
    // --- servebench's own ---
    o.insert("tool".into(), json!("servebench"));
    o.insert("tool_version".into(), json!(env!("CARGO_PKG_VERSION")));
    o.insert("num_prompts".into(), json!(info.num_prompts));
    o.insert("failed".into(), json!(m.failed));
    o.insert("burstiness".into(), num(info.burstiness));
    o.insert("seed".into(), json!(info.seed));
    o.insert("model".into(), json!(info.model));
    o.insert("base_url".into(), json!(info.base_url));
    o.insert("tokenizer".into(), json!(info.tokenizer));
    o.insert(
        "prompt_token_method".into(),
        json!(info.prompt_token_method),
    );
    o.insert("simulated".into(), json!(info.simulated));
    o.insert("started_at".into(), json!(info.started_at));
    o.insert("command_line".into(), json!(info.command_line));
    o.insert("interrupted".into(), json!(info.interrupted));
    o.insert(
        "output_throughput_retokenized".into(),
        num(m.output_throughput_retokenized),
    );
    for (name, s) in [
        ("e2e_latency_ms", &m.e2e),
        ("ttft_ms", &m.ttft),
        ("tpot_ms", &m.tpot),
        ("itl_ms", &m.itl),
        ("ttft_any_ms", &m.ttft_any),
        ("itl_chunk_ms", &m.itl_chunk),
        ("itl_per_token_ms", &m.itl_per_token),
        ("client_queue_ms", &m.client_queue),
        ("send_lag_ms", &m.send_lag),
        ("ttft_from_scheduled_ms", &m.ttft_from_scheduled),
        ("e2e_from_scheduled_ms", &m.e2e_from_scheduled),
        ("per_request_output_throughput", &m.per_request_output_tps),
        ("connect_ms", &info.connect),
        ("client_lag_ms", &info.client_lag),
    ] {
        put_extra(&mut o, name, s);
    }
    o.insert("itl_count".into(), json!(m.itl.count));
    o.insert("itl_rule".into(), json!(m.itl_rule.as_str()));
    o.insert("warmup_requests".into(), json!(info.warmup_requests));
    o.insert("warmup_connections".into(), json!(info.warmup_connections));
    o.insert("client_saturated".into(), json!(info.client_saturated));
    o.insert("retries".into(), json!(m.retries));
    o.insert("output_token_sources".into(), json!(m.output_token_sources));
    o.insert(
        "prompt_token_mismatches".into(),
        json!(m.prompt_token_mismatches),
    );
    o.insert(
        "prompt_token_mean_diff".into(),
        opt(m.prompt_token_mean_diff),
    );
    o.insert(
        "output_len_mismatches".into(),
        json!(m.output_len_mismatches),
    );
    o.insert("finish_reasons".into(), json!(m.finish_reasons));
    o.insert("failure_reasons".into(), json!(m.failure_reasons));
    o.insert("warnings".into(), json!(info.warnings));
    let c = &info.client;
    o.insert("client_cpu_s".into(), opt(c.cpu_s));
    o.insert("http_client".into(), json!(c.http_client));
    o.insert("timestamp_source".into(), json!(c.timestamp_source));
    o.insert("client_lag_source".into(), json!(c.lag_source));
    o.insert("p99_client_read_delay_ms".into(), opt(c.p99_read_delay_ms));
    o.insert("max_client_read_delay_ms".into(), opt(c.max_read_delay_ms));
    o.insert("client_late_reads_pct".into(), opt(c.late_reads_pct));
    o.insert("not_finished".into(), json!(info.not_finished));
    o.insert("duration_limit_s".into(), opt(info.duration_limit_s));
    if let Some(d) = &info.details_file {
        o.insert("details_file".into(), json!(d));
    }
    if let Some(tp) = info.tensor_parallel {
        o.insert("tp".into(), json!(tp));
    }
    Value::Object(o)
}

/// Every key `sglang.bench_serving` 0.5.9 writes to `--output-file`, in its order: the keys of a real result
/// line (`tests/fixtures/sglang/bench_serving_0.5.9_result.jsonl`; a test checks this list against it).
pub const SGLANG_RESULT_KEYS: &[&str] = &[
    "tag",
    "backend",
    "dataset_name",
    "request_rate",
    "max_concurrency",
    "sharegpt_output_len",
    "random_input_len",
    "random_output_len",
    "random_range_ratio",
    "server_info",
    "duration",
    "completed",
    "total_input_tokens",
    "total_input_text_tokens",
    "total_input_vision_tokens",
    "total_output_tokens",
    "total_output_tokens_retokenized",
    "request_throughput",
    "input_throughput",
    "output_throughput",
    "total_throughput",
    "mean_e2e_latency_ms",
    "median_e2e_latency_ms",
    "std_e2e_latency_ms",
    "p90_e2e_latency_ms",
    "p99_e2e_latency_ms",
    "mean_ttft_ms",
    "median_ttft_ms",
    "std_ttft_ms",
    "p99_ttft_ms",
    "mean_tpot_ms",
    "median_tpot_ms",
    "std_tpot_ms",
    "p99_tpot_ms",
    "mean_itl_ms",
    "median_itl_ms",
    "std_itl_ms",
    "p95_itl_ms",
    "p99_itl_ms",
    "concurrency",
    "accept_length",
    "max_output_tokens_per_s",
    "max_concurrent_requests",
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::compute;
    use crate::record::RequestRecord;

    #[test]
    fn accept_length_is_read_as_sglang_reads_it() {
        let plain = json!({"internal_states": [{"avg_spec_accept_length": 3.5}]});
        assert_eq!(accept_length(&plain), Some(3.5));
        let pd = json!({"prefill": [{"internal_states": [{}]}],
                        "decode": [{"internal_states": [{"avg_spec_accept_length": 2.25}]}]});
        assert_eq!(accept_length(&pd), Some(2.25));
        assert_eq!(accept_length(&json!({"internal_states": []})), None);
        assert_eq!(accept_length(&Value::Null), None);
    }

    #[test]
    fn empty_lists_are_zero_where_sglang_writes_zero() {
        // Every request failed: sglang writes 0.0 for TTFT/TPOT/ITL (`np.mean(x or 0)`), NaN for E2E.
        let failed = RequestRecord {
            error: Some("HTTP 500".into()),
            ..Default::default()
        };
        let v = result_json(
            &RunInfo::default(),
            &compute(&[failed], 1.0, crate::record::ItlRule::PerChunk),
        );
        for k in [
            "mean_ttft_ms",
            "p99_ttft_ms",
            "median_tpot_ms",
            "mean_itl_ms",
            "p95_itl_ms",
        ] {
            assert_eq!(v[k], json!(0.0), "{k}");
        }
        assert_eq!(v["mean_e2e_latency_ms"], Value::Null);
        assert_eq!(v["max_output_tokens_per_s"], json!(0.0));
        assert_eq!(v["max_concurrent_requests"], json!(0));
        assert_eq!(v["total_input_vision_tokens"], json!(0));
    }

    #[test]
    fn sglang_keys_are_those_of_a_real_sglang_line_in_its_order() {
        let line = include_str!("../../../tests/fixtures/sglang/bench_serving_0.5.9_result.jsonl");
        // sglang writes Python's non-standard `Infinity` for an infinite request rate.
        let line = line.replace(": Infinity", ": \"inf\"");
        let v: Map<String, Value> = serde_json::from_str(&line).unwrap();
        let keys: Vec<&str> = v.keys().map(String::as_str).collect();
        assert_eq!(keys, SGLANG_RESULT_KEYS);
        // servebench's result starts with the same keys in the same order.
        let r = RequestRecord {
            prompt_tokens: Some(4),
            output_tokens: Some(2),
            ttft_ms: Some(1.0),
            e2e_ms: Some(2.0),
            chunk_ms: vec![1.0, 2.0],
            ..Default::default()
        };
        let ours = result_json(
            &RunInfo::default(),
            &compute(&[r], 1.0, crate::record::ItlRule::PerChunk),
        );
        let ours: Vec<&str> = ours
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(&ours[..keys.len()], &keys[..]);
    }

    #[test]
    fn strict_json_numbers() {
        assert_eq!(num(f64::INFINITY), json!("inf"));
        assert_eq!(num(f64::NAN), Value::Null);
        assert_eq!(num(1.5), json!(1.5));
    }

    #[test]
    fn result_has_every_sglang_key_and_is_strict() {
        let info = RunInfo {
            backend: "sglang".into(),
            request_rate: f64::INFINITY,
            ..Default::default()
        };
        let r = RequestRecord {
            prompt_tokens: Some(4),
            output_tokens: Some(2),
            ttft_ms: Some(1.0),
            e2e_ms: Some(2.0),
            chunk_ms: vec![1.0, 2.0],
            ..Default::default()
        };
        let v = result_json(&info, &compute(&[r], 1.0, crate::record::ItlRule::PerChunk));
        let obj = v.as_object().unwrap();
        for k in SGLANG_RESULT_KEYS {
            assert!(obj.contains_key(*k), "missing {k}");
        }
        let keys: Vec<&String> = obj.keys().collect();
        assert_eq!(keys[0], "tag", "sglang's first key, always written");
        assert_eq!(v["tag"], Value::Null);
        assert_eq!(keys[1], "backend");
        assert_eq!(v["request_rate"], "inf");
        assert_eq!(v["p999_ttft_ms"], 1.0);
        let text = serde_json::to_string(&v).unwrap();
        assert!(!text.contains("NaN") && !text.contains("Infinity"));
    }
}
