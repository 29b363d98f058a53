//! One benchmark run, read from a result object written by servebench, `sglang.bench_serving`
//! (`--output-file`) or `vllm bench serve` (`--save-result`), mapped onto one shape.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::lenient_json::as_f64;

/// Which tool wrote a result object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SourceTool {
    Servebench,
    Sglang,
    Vllm,
    /// Has result keys but none of the tools' markers.
    Unknown,
}

impl SourceTool {
    pub fn as_str(self) -> &'static str {
        match self {
            SourceTool::Servebench => "servebench",
            SourceTool::Sglang => "sglang.bench_serving",
            SourceTool::Vllm => "vllm bench serve",
            SourceTool::Unknown => "unknown",
        }
    }
}

/// Summary statistics of one latency metric, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Dist {
    pub mean: Option<f64>,
    pub median: Option<f64>,
    pub std: Option<f64>,
    pub p90: Option<f64>,
    pub p95: Option<f64>,
    pub p99: Option<f64>,
    pub p999: Option<f64>,
}

/// Per-request samples embedded in a result object (`--output-details` in SGLang,
/// `--save-detailed` in vLLM), in milliseconds; failed requests left out.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EmbeddedSamples {
    pub ttft_ms: Vec<f64>,
    pub e2e_ms: Vec<f64>,
}

/// One run: every field optional because each tool writes a different subset.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunSummary {
    pub tool: Option<SourceTool>,
    /// File the run was read from and the 1-based line where its object starts.
    pub file: PathBuf,
    pub line: usize,
    /// How many runs the file holds (appended runs share a file).
    pub runs_in_file: usize,
    pub simulated: bool,
    pub backend: Option<String>,
    pub model: Option<String>,
    pub dataset_name: Option<String>,
    /// Tensor parallel size, from the result's own `tp`/`tp_size`/`tensor_parallel_size` key (never from a file
    /// name: in the seed's `tp{N}_…` names N is the prompt count).
    pub tp: Option<f64>,
    pub request_rate: Option<f64>,
    /// Configured concurrency limit (`--max-concurrency`).
    pub max_concurrency: Option<f64>,
    pub num_prompts: Option<f64>,
    pub random_input_len: Option<f64>,
    pub random_output_len: Option<f64>,
    pub random_range_ratio: Option<f64>,
    pub duration: Option<f64>,
    pub completed: Option<f64>,
    pub failed: Option<f64>,
    pub total_input_tokens: Option<f64>,
    pub total_output_tokens: Option<f64>,
    pub total_output_tokens_retokenized: Option<f64>,
    pub request_throughput: Option<f64>,
    pub input_throughput: Option<f64>,
    pub output_throughput: Option<f64>,
    /// Input + output tokens per second (SGLang's `total_throughput`, vLLM's
    /// `total_token_throughput`).
    pub total_throughput: Option<f64>,
    /// Measured concurrency: Σ E2E / duration (`concurrency` in SGLang/servebench files).
    pub measured_concurrency: Option<f64>,
    pub e2e: Dist,
    pub ttft: Dist,
    pub tpot: Dist,
    pub itl: Dist,
    pub embedded: Option<EmbeddedSamples>,
    /// The SLO the run was judged against (`slo`, its limits) and what it achieved.
    pub slo: Option<String>,
    pub slo_attainment: Option<f64>,
    pub slo_attainment_target: Option<f64>,
    pub slo_good_requests: Option<f64>,
    /// Good requests per second (vLLM's goodput).
    pub goodput: Option<f64>,
    pub slo_met: Option<bool>,
    /// Per-request records file (`*.details.jsonl`) attached by [`crate::collect`].
    pub details: Option<PathBuf>,
    /// The command of the server measured (`measured_server.command`, written by `servebench run`).
    pub server: Option<String>,
    /// Warnings the benchmark recorded in its result (servebench's `warnings`), and a note when
    /// the run was interrupted.
    pub warnings: Vec<String>,
}

/// Keys whose presence marks an object as a benchmark result.
const RESULT_KEYS: &[&str] = &[
    "request_throughput",
    "output_throughput",
    "mean_ttft_ms",
    "median_ttft_ms",
];

/// True when the object carries serving-benchmark results.
pub fn is_result_object(obj: &Map<String, Value>) -> bool {
    RESULT_KEYS.iter().any(|k| obj.contains_key(*k))
}

/// Numbers parsed from a sweep point file name such as `tp8_in3500_out1500_ratio0.7.json`
/// (and vLLM's `…-concurrency64-…` names); used only where the object lacks the field.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct NameHints {
    /// `tp{N}`: the seed's loop names each point by its prompt count, which is also its concurrency (its collector
    /// reads N as both `prompt_num` and `concurrency`); N is not the tensor-parallel size.
    pub prompt_num: Option<f64>,
    pub input_len: Option<f64>,
    pub output_len: Option<f64>,
    pub ratio: Option<f64>,
    pub concurrency: Option<f64>,
}

impl NameHints {
    pub fn from_path(path: &Path) -> Self {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let stem = name
            .strip_suffix(".jsonl")
            .or_else(|| name.strip_suffix(".json"))
            .unwrap_or(name);
        let mut hints = NameHints::default();
        for token in stem.split(['_', '-']) {
            let number = |prefix: &str| -> Option<f64> {
                let rest = token.strip_prefix(prefix)?;
                if rest.is_empty() || !rest.starts_with(|c: char| c.is_ascii_digit()) {
                    return None;
                }
                rest.parse::<f64>().ok().filter(|v| v.is_finite())
            };
            if let Some(v) = number("tp") {
                hints.prompt_num = Some(v);
            } else if let Some(v) = number("in") {
                hints.input_len = Some(v);
            } else if let Some(v) = number("out") {
                hints.output_len = Some(v);
            } else if let Some(v) = number("ratio") {
                hints.ratio = Some(v);
            } else if let Some(v) = number("concurrency") {
                hints.concurrency = Some(v);
            }
        }
        hints
    }
}

fn detect_tool(obj: &Map<String, Value>) -> SourceTool {
    let tool = obj.get("tool").and_then(Value::as_str).unwrap_or("");
    if tool.eq_ignore_ascii_case("servebench") {
        SourceTool::Servebench
    } else if obj.contains_key("total_token_throughput")
        || obj.contains_key("endpoint_type")
        || obj.contains_key("mean_e2el_ms")
        || obj.contains_key("model_id")
    {
        SourceTool::Vllm
    } else if obj.contains_key("total_output_tokens_retokenized")
        || obj.contains_key("mean_e2e_latency_ms")
        || obj.contains_key("accept_length")
    {
        SourceTool::Sglang
    } else {
        SourceTool::Unknown
    }
}

struct Fields<'a>(&'a Map<String, Value>);

impl Fields<'_> {
    /// The first of `keys` that holds a number.
    fn num(&self, keys: &[&str]) -> Option<f64> {
        keys.iter().find_map(|k| self.0.get(*k).and_then(as_f64))
    }

    fn text(&self, keys: &[&str]) -> Option<String> {
        keys.iter().find_map(|k| match self.0.get(*k) {
            Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
            _ => None,
        })
    }

    /// Statistics of one metric; `names` are the metric's spellings (`e2e_latency`, `e2el`).
    fn dist(&self, names: &[&str]) -> Dist {
        let get = |stat: &[&str]| -> Option<f64> {
            names.iter().find_map(|name| {
                stat.iter()
                    .find_map(|s| self.num(&[format!("{s}_{name}_ms").as_str()]))
            })
        };
        Dist {
            mean: get(&["mean"]),
            median: get(&["median", "p50"]),
            std: get(&["std"]),
            p90: get(&["p90"]),
            p95: get(&["p95"]),
            p99: get(&["p99"]),
            p999: get(&["p999", "p99.9"]),
        }
    }
}

/// Per-request samples embedded in the object, if any: `ttfts` in seconds, plus
/// `latencies` (vLLM) in seconds; entries of failed requests (non-empty `errors`) dropped.
fn embedded_samples(obj: &Map<String, Value>) -> Option<EmbeddedSamples> {
    let ttfts = obj.get("ttfts")?.as_array()?;
    let errors = obj.get("errors").and_then(Value::as_array);
    let failed = |i: usize| -> bool {
        errors
            .and_then(|e| e.get(i))
            .map(|e| match e {
                Value::String(s) => !s.is_empty(),
                Value::Null => false,
                _ => true,
            })
            .unwrap_or(false)
    };
    let seconds_to_ms = |list: &Vec<Value>| -> Vec<f64> {
        list.iter()
            .enumerate()
            .filter(|(i, _)| !failed(*i))
            .filter_map(|(_, v)| as_f64(v))
            .filter(|v| v.is_finite())
            .map(|v| v * 1000.0)
            .collect()
    };
    let ttft_ms = seconds_to_ms(ttfts);
    let e2e_ms = obj
        .get("latencies")
        .and_then(Value::as_array)
        .map(seconds_to_ms)
        .unwrap_or_default();
    if ttft_ms.is_empty() && e2e_ms.is_empty() {
        return None;
    }
    Some(EmbeddedSamples { ttft_ms, e2e_ms })
}

impl RunSummary {
    /// Maps a result object onto a run; `None` when the object has no result keys.
    pub fn from_object(obj: &Map<String, Value>, file: &Path, line: usize) -> Option<Self> {
        if !is_result_object(obj) {
            return None;
        }
        let f = Fields(obj);
        let hints = NameHints::from_path(file);
        let tool = detect_tool(obj);
        let duration = f.num(&["duration", "benchmark_duration"]);
        let total_input_tokens = f.num(&["total_input_tokens", "total_input"]);
        let total_output_tokens = f.num(&["total_output_tokens", "total_output"]);
        let input_throughput = f
            .num(&["input_throughput"])
            .or_else(|| per_second(total_input_tokens, duration));
        let output_throughput = f
            .num(&["output_throughput"])
            .or_else(|| per_second(total_output_tokens, duration));
        let total_throughput = match (input_throughput, output_throughput) {
            (Some(i), Some(o)) => Some(i + o),
            _ => f.num(&["total_throughput", "total_token_throughput"]),
        };
        let completed = f.num(&["completed"]);
        let simulated = match obj.get("simulated") {
            Some(Value::Bool(b)) => *b,
            _ => false,
        };
        Some(RunSummary {
            tool: Some(tool),
            file: file.to_path_buf(),
            line,
            runs_in_file: 1,
            simulated,
            backend: f.text(&["backend", "endpoint_type"]),
            model: f.text(&["model", "model_id", "served_model_name"]),
            dataset_name: f.text(&["dataset_name"]),
            tp: f.num(&["tp", "tp_size", "tensor_parallel_size"]),
            request_rate: f.num(&["request_rate"]),
            max_concurrency: f
                .num(&["max_concurrency"])
                .or(hints.concurrency)
                .or(hints.prompt_num),
            num_prompts: f.num(&["num_prompts"]).or(hints.prompt_num),
            random_input_len: f.num(&["random_input_len"]).or(hints.input_len),
            random_output_len: f.num(&["random_output_len"]).or(hints.output_len),
            random_range_ratio: f.num(&["random_range_ratio"]).or(hints.ratio),
            duration,
            completed,
            failed: f.num(&["failed"]),
            total_input_tokens,
            total_output_tokens,
            total_output_tokens_retokenized: f.num(&[
                "total_output_tokens_retokenized",
                "total_output_retokenized",
            ]),
            request_throughput: f
                .num(&["request_throughput"])
                .or_else(|| per_second(completed, duration)),
            input_throughput,
            output_throughput,
            total_throughput,
            measured_concurrency: f.num(&["measured_concurrency", "concurrency"]),
            e2e: f.dist(&["e2e_latency", "e2el", "e2e"]),
            ttft: f.dist(&["ttft"]),
            tpot: f.dist(&["tpot"]),
            itl: f.dist(&["itl"]),
            slo: f.text(&["slo"]),
            slo_attainment: f.num(&["slo_attainment"]),
            slo_attainment_target: f.num(&["slo_attainment_target"]),
            slo_good_requests: f.num(&["slo_good_requests"]),
            goodput: f.num(&["goodput", "request_goodput"]),
            slo_met: obj.get("slo_met").and_then(Value::as_bool),
            embedded: embedded_samples(obj),
            details: named_details(obj, file),
            server: obj
                .get("measured_server")
                .and_then(|m| m.get("command"))
                .and_then(Value::as_str)
                .map(str::to_string),
            warnings: run_warnings(obj),
        })
    }

    /// Number of prompts sent: completed + failed when both are known, else `num_prompts`,
    /// else `completed`.
    pub fn prompt_num(&self) -> Option<f64> {
        match (self.completed, self.failed) {
            (Some(c), Some(f)) => Some(c + f),
            _ => self.num_prompts.or(self.completed),
        }
    }

    /// The (input len, output len, range ratio) setting, the key of one curve in the charts.
    pub fn setting(&self) -> Setting {
        Setting {
            input_len: self.random_input_len,
            output_len: self.random_output_len,
            ratio: self.random_range_ratio,
        }
    }

    /// Short name of this point, unique among the runs of one collection: the file stem,
    /// plus `@c{max_concurrency}` (or `@line{N}`) when the file holds several runs.
    pub fn point_name(&self) -> String {
        let stem = file_stem(&self.file);
        if self.runs_in_file <= 1 {
            return stem;
        }
        match self.max_concurrency {
            Some(c) if c.is_finite() => format!("{stem}@c{}", crate::numfmt::plain(c)),
            _ => format!("{stem}@line{}", self.line),
        }
    }

    /// The output tokens per second one user sees: 1000 / median TPOT.
    pub fn per_user_tok_s(&self) -> Option<f64> {
        self.tpot
            .median
            .filter(|t| *t > 0.0 && t.is_finite())
            .map(|t| 1000.0 / t)
    }
}

/// The per-request records file a result names (servebench's `details_file`), if it exists
/// as written or, when the folder was moved, under the same name next to the result.
fn named_details(obj: &Map<String, Value>, file: &Path) -> Option<PathBuf> {
    let named = PathBuf::from(obj.get("details_file")?.as_str()?);
    if named.is_file() {
        return Some(named);
    }
    let beside = file.parent()?.join(named.file_name()?);
    beside.is_file().then_some(beside)
}

fn run_warnings(obj: &Map<String, Value>) -> Vec<String> {
    let mut out: Vec<String> = obj
        .get("warnings")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    if matches!(obj.get("interrupted"), Some(Value::Bool(true))) {
        out.push("the run was interrupted before all requests finished".to_string());
    }
    out
}

/// A file's name without `.json`/`.jsonl`.
pub fn file_stem(path: &Path) -> String {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    name.strip_suffix(".jsonl")
        .or_else(|| name.strip_suffix(".json"))
        .unwrap_or(name)
        .to_string()
}

fn per_second(count: Option<f64>, duration: Option<f64>) -> Option<f64> {
    match (count, duration) {
        (Some(c), Some(d)) if d > 0.0 && d.is_finite() => Some(c / d),
        _ => None,
    }
}

/// The workload setting shared by the points of one curve.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Setting {
    pub input_len: Option<f64>,
    pub output_len: Option<f64>,
    pub ratio: Option<f64>,
}

impl Setting {
    /// A legend label such as `in 3500 / out 1500, ratio 0.7`.
    pub fn label(&self) -> String {
        let n = |v: Option<f64>| v.map(crate::numfmt::plain).unwrap_or_else(|| "?".into());
        let mut s = format!("in {} / out {}", n(self.input_len), n(self.output_len));
        if let Some(r) = self.ratio {
            s.push_str(&format!(", ratio {}", crate::numfmt::plain(r)));
        }
        s
    }

    pub(crate) fn sort_key(&self) -> [OrdF64; 3] {
        [
            OrdF64(self.input_len),
            OrdF64(self.output_len),
            OrdF64(self.ratio),
        ]
    }
}

/// Total order on optional numbers for sorting: numbers ascending, missing last.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct OrdF64(pub Option<f64>);

impl Eq for OrdF64 {}

impl PartialOrd for OrdF64 {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for OrdF64 {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        use std::cmp::Ordering;
        match (self.0, other.0) {
            (Some(a), Some(b)) => a.total_cmp(&b),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => Ordering::Equal,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lenient_json::parse_values;

    fn obj(text: &str) -> Map<String, Value> {
        let parsed = parse_values(text);
        assert!(parsed.problems.is_empty(), "{:?}", parsed.problems);
        parsed.values[0].value.as_object().unwrap().clone()
    }

    #[test]
    fn name_hints_from_sweep_file_names() {
        let h = NameHints::from_path(Path::new("/x/tp8_in3500_out1500_ratio0.7.json"));
        assert_eq!(h.prompt_num, Some(8.0));
        assert_eq!(h.input_len, Some(3500.0));
        assert_eq!(h.output_len, Some(1500.0));
        assert_eq!(h.ratio, Some(0.7));
        assert_eq!(h.concurrency, None);
        let v = NameHints::from_path(Path::new(
            "vllm-infqps-concurrency64-Qwen3-8B-20250101-120000.json",
        ));
        assert_eq!(v.concurrency, Some(64.0));
        assert_eq!(v.input_len, None);
        // Words that merely start with a prefix are not numbers.
        let w = NameHints::from_path(Path::new("input_output_tpx.json"));
        assert_eq!(w, NameHints::default());
    }

    #[test]
    fn sglang_object_maps_fields() {
        let o = obj(
            r#"{"backend": "sglang", "dataset_name": "random", "request_rate": Infinity, "max_concurrency": 8,
            "sharegpt_output_len": null, "random_input_len": 1024, "random_output_len": 256, "random_range_ratio": 0.5,
            "duration": 20.0, "completed": 100, "total_input_tokens": 80000, "total_output_tokens": 20000,
            "total_output_tokens_retokenized": 19990, "request_throughput": 5.0, "input_throughput": 4000.0,
            "output_throughput": 1000.0, "mean_e2e_latency_ms": 1500.0, "median_e2e_latency_ms": 1400.0,
            "std_e2e_latency_ms": 100.0, "p99_e2e_latency_ms": 1900.0, "mean_ttft_ms": 50.0, "median_ttft_ms": 45.0,
            "std_ttft_ms": 5.0, "p99_ttft_ms": NaN, "mean_tpot_ms": 5.5, "median_tpot_ms": 5.4, "std_tpot_ms": 0.2,
            "p99_tpot_ms": 6.1, "mean_itl_ms": 5.5, "median_itl_ms": 5.3, "std_itl_ms": 1.0, "p95_itl_ms": 7.0,
            "p99_itl_ms": 9.0, "concurrency": 7.5, "accept_length": null}"#,
        );
        let r = RunSummary::from_object(&o, Path::new("a.jsonl"), 1).unwrap();
        assert_eq!(r.tool, Some(SourceTool::Sglang));
        assert_eq!(r.request_rate, Some(f64::INFINITY));
        assert_eq!(r.max_concurrency, Some(8.0));
        assert_eq!(r.measured_concurrency, Some(7.5));
        assert_eq!(r.total_throughput, Some(5000.0));
        assert_eq!(r.ttft.p99, None);
        assert_eq!(r.itl.p95, Some(7.0));
        assert_eq!(r.e2e.std, Some(100.0));
        assert_eq!(r.prompt_num(), Some(100.0));
        assert!(!r.simulated);
        assert_eq!(r.total_output_tokens_retokenized, Some(19990.0));
    }

    #[test]
    fn seed_file_name_number_is_the_prompt_count_not_the_tp_size() {
        // The seed's loop writes tp{P}_… with P = prompts = concurrency; a result without those keys takes them
        // from the name, and the tp column stays empty unless the result itself says its TP size.
        let o = obj(r#"{"backend": "sglang", "duration": 10.0, "output_throughput": 5.0}"#);
        let r =
            RunSummary::from_object(&o, Path::new("tp64_in5600_out1400_ratio0.8.json"), 1).unwrap();
        assert_eq!(r.tp, None);
        assert_eq!(r.prompt_num(), Some(64.0));
        assert_eq!(r.max_concurrency, Some(64.0));
        let o = obj(
            r#"{"max_concurrency": 8, "tp": 8, "completed": 32, "failed": 0, "output_throughput": 1.0}"#,
        );
        let r =
            RunSummary::from_object(&o, Path::new("tp32_in5600_out1400_ratio0.8.json"), 1).unwrap();
        assert_eq!(r.tp, Some(8.0));
        assert_eq!(r.prompt_num(), Some(32.0));
        assert_eq!(r.max_concurrency, Some(8.0));
    }

    #[test]
    fn vllm_object_maps_fields_and_derives_input_throughput() {
        let o = obj(
            r#"{"date": "20250101-120000", "endpoint_type": "vllm", "backend": "vllm", "label": null,
            "model_id": "Qwen/Qwen3-8B", "tokenizer_id": "Qwen/Qwen3-8B", "num_prompts": 64, "request_rate": "inf",
            "burstiness": 1.0, "max_concurrency": 16, "duration": 32.0, "completed": 63, "failed": 1,
            "total_input_tokens": 64000, "total_output_tokens": 16000, "request_throughput": 1.96875,
            "request_goodput": null, "output_throughput": 500.0, "total_token_throughput": 2500.0,
            "max_output_tokens_per_s": 700.0, "max_concurrent_requests": 16, "mean_ttft_ms": 120.0,
            "median_ttft_ms": 110.0, "std_ttft_ms": 20.0, "p99_ttft_ms": 200.0, "mean_tpot_ms": 30.0,
            "median_tpot_ms": 29.0, "std_tpot_ms": 2.0, "p99_tpot_ms": 35.0, "mean_itl_ms": 30.0,
            "median_itl_ms": 28.0, "std_itl_ms": 5.0, "p99_itl_ms": 60.0, "mean_e2el_ms": 7600.0,
            "median_e2el_ms": 7500.0, "std_e2el_ms": 300.0, "p99_e2el_ms": 8200.0, "p99.9_ttft_ms": 250.0}"#,
        );
        let r =
            RunSummary::from_object(&o, Path::new("tp1_in1000_out250_ratio1.0.json"), 1).unwrap();
        assert_eq!(r.tool, Some(SourceTool::Vllm));
        assert_eq!(r.input_throughput, Some(2000.0));
        assert_eq!(r.total_throughput, Some(2500.0));
        assert_eq!(r.e2e.median, Some(7500.0));
        assert_eq!(r.ttft.p999, Some(250.0));
        assert_eq!(r.random_input_len, Some(1000.0));
        assert_eq!(r.random_output_len, Some(250.0));
        assert_eq!(r.random_range_ratio, Some(1.0));
        assert_eq!(r.prompt_num(), Some(64.0));
        assert_eq!(r.model.as_deref(), Some("Qwen/Qwen3-8B"));
        assert_eq!(r.measured_concurrency, None);
    }

    #[test]
    fn servebench_object_is_recognised_and_simulated() {
        let o = obj(
            r#"{"tool": "servebench", "simulated": true, "max_concurrency": 4, "request_rate": "inf",
            "random_input_len": 100, "random_output_len": 10, "random_range_ratio": 1.0, "completed": 9, "failed": 1,
            "duration": 2.0, "request_throughput": 4.5, "input_throughput": 450.0, "output_throughput": 45.0,
            "median_ttft_ms": 10.0, "p90_ttft_ms": 12.0, "p999_ttft_ms": 19.0, "concurrency": 3.9}"#,
        );
        let r = RunSummary::from_object(&o, Path::new("x.json"), 3).unwrap();
        assert_eq!(r.tool, Some(SourceTool::Servebench));
        assert!(r.simulated);
        assert_eq!(r.prompt_num(), Some(10.0));
        assert_eq!(r.ttft.p90, Some(12.0));
        assert_eq!(r.ttft.p999, Some(19.0));
        assert_eq!(r.request_rate, Some(f64::INFINITY));
        assert_eq!(r.line, 3);
    }

    #[test]
    fn details_file_key_and_warnings_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let result = dir.path().join("r.json");
        std::fs::write(dir.path().join("custom.details.jsonl"), "{}\n").unwrap();
        // Written on another machine: the absolute path is gone, the file sits next to the result.
        let o = obj(
            r#"{"output_throughput": 1, "details_file": "/elsewhere/custom.details.jsonl",
            "warnings": ["client saturated"], "interrupted": true}"#,
        );
        let r = RunSummary::from_object(&o, &result, 1).unwrap();
        assert_eq!(r.details, Some(dir.path().join("custom.details.jsonl")));
        assert_eq!(
            r.warnings,
            vec![
                "client saturated".to_string(),
                "the run was interrupted before all requests finished".to_string()
            ]
        );
        let o = obj(r#"{"output_throughput": 1, "details_file": "/elsewhere/none.details.jsonl"}"#);
        assert_eq!(
            RunSummary::from_object(&o, &result, 1).unwrap().details,
            None
        );
    }

    #[test]
    fn objects_without_result_keys_are_not_runs() {
        let o = obj(r#"{"index": 0, "ttft_ms": 12.0, "e2e_ms": 50.0, "error": null}"#);
        assert!(RunSummary::from_object(&o, Path::new("x.json"), 1).is_none());
    }

    #[test]
    fn embedded_details_drop_failed_requests() {
        let o = obj(
            r#"{"output_throughput": 1.0, "ttfts": [0.1, 0.0, 0.3], "latencies": [1.0, 0.0, 2.0],
            "errors": ["", "boom", ""]}"#,
        );
        let r = RunSummary::from_object(&o, Path::new("x.json"), 1).unwrap();
        let e = r.embedded.unwrap();
        assert_eq!(e.ttft_ms, vec![100.0, 300.0]);
        assert_eq!(e.e2e_ms, vec![1000.0, 2000.0]);
    }

    #[test]
    fn point_names_and_settings() {
        let mut r = RunSummary {
            file: PathBuf::from("/r/tp1_in100_out10_ratio0.5.json"),
            line: 2,
            runs_in_file: 3,
            max_concurrency: Some(16.0),
            random_input_len: Some(100.0),
            random_output_len: Some(10.0),
            random_range_ratio: Some(0.5),
            ..Default::default()
        };
        assert_eq!(r.point_name(), "tp1_in100_out10_ratio0.5@c16");
        assert_eq!(r.setting().label(), "in 100 / out 10, ratio 0.5");
        r.runs_in_file = 1;
        assert_eq!(r.point_name(), "tp1_in100_out10_ratio0.5");
        r.tpot.median = Some(20.0);
        assert_eq!(r.per_user_tok_s(), Some(50.0));
    }
}
