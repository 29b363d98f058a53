//! One benchmark run as a library call: a [`BenchConfig`] (validated once by [`BenchConfig::validate`]) in, a
//! [`BenchOutcome`] out. The pipeline: tokenizer → workload → request bodies → warm-up → timed run (records
//! completed on the sink's thread, per-request records streamed to the details file) → re-tokenized output
//! counts → server facts (`/get_server_info` after the run, as sglang reads them) → metrics → the result object
//! (schema: `servebench_core::result`) appended to the result file.
//!
//! `servebench bench`, `sweep` and `run` all call [`run_bench`]; the CLI only maps flags to a [`BenchConfig`]
//! and prints.

use crate::client::{Client, ClientConfig, HttpClientKind, PreparedRequest, Timeouts};
use crate::dataset::{
    self, CountMethod, CustomSpec, PromptCounter, PromptRule, RandomSpec, RangeRule, SharegptSpec,
    WorkItem,
};
use crate::dispatch::Dispatch;
use crate::runner::{self, RecordSink, RunConfig};
use crate::LoadError;
use bytes::Bytes;
use serde_json::{Map, Value};
use servebench_core::api::{request_body, Api, Backend, GenParams};
use servebench_core::duration::{checked_rate, checked_seconds, Lower};
use servebench_core::metrics::{compute, Metrics};
use servebench_core::pyrandom::NumpyLegacy;
use servebench_core::record::{ItlRule, RequestRecord, TokenSource};
use servebench_core::result::{result_json, ClientFacts, RunInfo};
use servebench_core::slo::Slo;
use servebench_core::stats::Summary;
use servebench_tokenize::Tokenizer;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// The workload's dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatasetName {
    Random,
    RandomIds,
    Sharegpt,
    Custom,
}

impl DatasetName {
    pub fn parse(s: &str) -> Result<Self, LoadError> {
        match s {
            "random" => Ok(DatasetName::Random),
            "random-ids" => Ok(DatasetName::RandomIds),
            "sharegpt" => Ok(DatasetName::Sharegpt),
            "custom" => Ok(DatasetName::Custom),
            other => Err(LoadError::Config(format!(
                "--dataset-name {other}: use random, random-ids, sharegpt or custom"
            ))),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            DatasetName::Random => "random",
            DatasetName::RandomIds => "random-ids",
            DatasetName::Sharegpt => "sharegpt",
            DatasetName::Custom => "custom",
        }
    }
}

/// What the requests send (sglang's dataset flags).
#[derive(Debug, Clone)]
pub struct WorkloadConfig {
    pub dataset: DatasetName,
    /// ShareGPT JSON (sharegpt; text source for random) or JSONL (custom).
    pub dataset_path: Option<PathBuf>,
    pub num_prompts: usize,
    pub sharegpt_output_len: Option<u64>,
    pub sharegpt_context_len: Option<u64>,
    pub random_input_len: u64,
    pub random_output_len: u64,
    pub random_range_ratio: f64,
    pub range_rule: RangeRule,
    /// How random prompt text is made (servebench's exact text, or sglang's decoded ids).
    pub prompt_rule: PromptRule,
    pub seed: u64,
}

impl Default for WorkloadConfig {
    fn default() -> Self {
        WorkloadConfig {
            dataset: DatasetName::Random,
            dataset_path: None,
            num_prompts: 1000,
            sharegpt_output_len: None,
            sharegpt_context_len: None,
            random_input_len: 1024,
            random_output_len: 1024,
            random_range_ratio: 0.0,
            range_rule: RangeRule::Sglang,
            prompt_rule: PromptRule::Exact,
            seed: 1,
        }
    }
}

/// Everything one run needs. Build it with [`BenchConfig::new`] and set fields; [`run_bench`] validates it.
#[derive(Debug, Clone)]
pub struct BenchConfig {
    /// The backend as the user named it (written to the result; `sglang*` names read `/get_server_info`).
    pub backend_name: String,
    pub backend: Backend,
    /// `http://host:port`, no trailing slash: the first (or only) endpoint.
    pub base_url: String,
    /// More endpoints serving the same model (data-parallel replicas behind no load balancer), after
    /// `base_url`; empty for one endpoint. See `docs/endpoints.md`.
    pub more_base_urls: Vec<String>,
    /// How requests are spread over the endpoints (only matters with `more_base_urls`).
    pub dispatch: Dispatch,
    /// Model name (default: the first model `/v1/models` lists).
    pub model: Option<String>,
    /// Model name sent in requests when it differs from `model`.
    pub served_model_name: Option<String>,
    /// tokenizer.json or a folder with one (default: `model` when it is such a folder, else the built-in).
    pub tokenizer: Option<PathBuf>,
    /// Warn when the built-in tokenizer stands in for the served model's (off for the simulator).
    pub warn_builtin_tokenizer: bool,
    pub workload: WorkloadConfig,
    /// Requests per second (infinity: all at once).
    pub request_rate: f64,
    pub burstiness: f64,
    pub max_concurrency: Option<usize>,
    /// Untimed requests before the run (first prompt, at most 32 output tokens).
    pub warmup_requests: usize,
    /// Open the connection pool before a closed-loop run.
    pub warm_connections: bool,
    pub http_client: HttpClientKind,
    /// Native client on Linux: chunk times from the kernel's receive timestamps.
    pub kernel_timestamps: bool,
    /// A new connection per request, closed after it (as sglang.bench_serving); no warm pool, no reuse.
    pub connection_per_request: bool,
    pub stream: bool,
    pub ignore_eos: bool,
    /// Ask for usage in streams (`stream_options`).
    pub stream_usage: bool,
    /// Merged into every request body.
    pub extra_request_body: Map<String, Value>,
    pub headers: Vec<(String, String)>,
    pub api_key: Option<String>,
    /// The result file (one object a line, appended); none: nothing written.
    pub output_file: Option<PathBuf>,
    /// Add sglang's detail arrays (`input_lens`, `itls`, …) to the result.
    pub output_details: bool,
    /// Per-request records, one JSON object a line (appended).
    pub details_file: Option<PathBuf>,
    /// Stop sending after this long (those in flight finish).
    pub duration: Option<Duration>,
    /// POST /flush_cache and /reset_prefix_cache before the timed run.
    pub flush_cache: bool,
    /// A label stored in the result (`tag`, sglang's key).
    pub tag: Option<String>,
    /// Per-request time limits (connect, first token, idle gap, total), each with a default.
    pub timeouts: Timeouts,
    /// How long requests in flight may finish after a stop.
    pub grace: Duration,
    /// A progress bar on a terminal.
    pub progress: bool,
    /// The server is servebench's simulator.
    pub simulated: bool,
    /// The server's tensor-parallel size, when known (sweep plans): written as `tp`.
    pub tensor_parallel: Option<u32>,
    /// The command line as written to the result (already redacted by the caller).
    pub command_line: String,
    /// Applied to server facts (`server_info`) before they enter the result: hides secrets.
    pub redact: fn(Value) -> Value,
    /// Which server is measured (set by `servebench run`: launch command, PID, start time, its own
    /// identification), stored in the result as `measured_server`.
    pub measured_server: Option<Value>,
    /// Judge every request against this SLO: the result gets `slo`, `slo_attainment`, `goodput`, … keys.
    pub slo: Option<Slo>,
}

/// `http://user:key@host/` → `http://host/`: credentials in a base URL never reach a result or a message.
pub fn url_without_credentials(u: &str) -> String {
    match url::Url::parse(u) {
        Ok(mut parsed) if !parsed.username().is_empty() || parsed.password().is_some() => {
            let _ = parsed.set_username("");
            let _ = parsed.set_password(None);
            parsed.as_str().trim_end_matches('/').to_string()
        }
        _ => u.to_string(),
    }
}

fn no_redaction(v: Value) -> Value {
    v
}

impl BenchConfig {
    /// sglang's defaults for everything but the target.
    pub fn new(base_url: &str, backend_name: &str) -> Result<Self, LoadError> {
        let backend = Backend::parse(backend_name).map_err(|e| LoadError::Config(e.to_string()))?;
        Ok(BenchConfig {
            backend_name: backend_name.to_string(),
            backend,
            base_url: base_url.trim_end_matches('/').to_string(),
            more_base_urls: Vec::new(),
            dispatch: Dispatch::default(),
            model: None,
            served_model_name: None,
            tokenizer: None,
            warn_builtin_tokenizer: true,
            workload: WorkloadConfig::default(),
            request_rate: f64::INFINITY,
            burstiness: 1.0,
            max_concurrency: None,
            warmup_requests: 1,
            warm_connections: true,
            http_client: HttpClientKind::Auto,
            kernel_timestamps: true,
            connection_per_request: false,
            stream: true,
            ignore_eos: true,
            stream_usage: true,
            extra_request_body: Map::new(),
            headers: Vec::new(),
            api_key: None,
            output_file: None,
            output_details: false,
            details_file: None,
            duration: None,
            flush_cache: false,
            tag: None,
            timeouts: Timeouts::default(),
            grace: Duration::from_secs(5),
            progress: false,
            simulated: false,
            tensor_parallel: None,
            command_line: String::new(),
            redact: no_redaction,
            measured_server: None,
            slo: None,
        })
    }

    /// Every endpoint, `base_url` first, without trailing slashes.
    pub fn endpoints(&self) -> Vec<String> {
        std::iter::once(&self.base_url)
            .chain(&self.more_base_urls)
            .map(|u| u.trim_end_matches('/').to_string())
            .collect()
    }

    /// Checks every setting before anything is sent; the message says what to pass instead.
    pub fn validate(&self) -> Result<(), LoadError> {
        for u in std::iter::once(&self.base_url).chain(&self.more_base_urls) {
            crate::preflight::check_base_url(u)?;
        }
        let w = &self.workload;
        let urls = self.endpoints();
        for (i, u) in urls.iter().enumerate() {
            if urls[..i].contains(u) {
                return Err(cfg(format!(
                    "--base-url {} is given twice: give each endpoint once",
                    url_without_credentials(u)
                )));
            }
        }
        if w.num_prompts == 0 {
            return Err(cfg("--num-prompts must be at least 1"));
        }
        if let Some(c) = self.max_concurrency {
            if c == 0 || c > tokio::sync::Semaphore::MAX_PERMITS {
                return Err(cfg(format!(
                    "--max-concurrency {c}: use 1 to {} (more requests in flight than any client can open)",
                    tokio::sync::Semaphore::MAX_PERMITS
                )));
            }
        }
        checked_rate("--request-rate", self.request_rate, true).map_err(bad)?;
        if !(self.burstiness.is_finite() && self.burstiness > 0.0) {
            return Err(cfg(format!(
                "--burstiness {}: use a finite number above 0 (1 = Poisson arrivals)",
                servebench_core::duration::show(self.burstiness)
            )));
        }
        if !w.random_range_ratio.is_finite()
            || w.random_range_ratio < 0.0
            || (w.range_rule == RangeRule::Sglang && w.random_range_ratio > 1.0)
        {
            return Err(cfg(format!(
                "--random-range-ratio {}: use a number in [0, 1] (with --range-rule vllm: 0 or more)",
                servebench_core::duration::show(w.random_range_ratio)
            )));
        }
        // The same rule as for the flags (`servebench_core::duration`), for configurations built in code.
        let t = &self.timeouts;
        let times = [
            ("--timeout", Some(t.total), Lower::Positive),
            ("--connect-timeout", Some(t.connect), Lower::Positive),
            ("--ttft-timeout", Some(t.ttft), Lower::Positive),
            ("--idle-timeout", Some(t.idle), Lower::Positive),
            ("--duration", self.duration, Lower::Positive),
            ("--grace", Some(self.grace), Lower::Zero),
        ];
        for (name, d, lower) in times {
            if let Some(d) = d {
                seconds(name, d.as_secs_f64(), lower)?;
            }
        }
        if let Some(slo) = &self.slo {
            slo.validate().map_err(|e| cfg(format!("--slo: {e}")))?;
        }
        if w.dataset == DatasetName::Sharegpt && w.dataset_path.is_none() {
            return Err(cfg("--dataset-name sharegpt needs --dataset-path with a ShareGPT JSON file (servebench downloads nothing); or use --dataset-name random"));
        }
        if w.dataset == DatasetName::Custom && w.dataset_path.is_none() {
            return Err(cfg("--dataset-name custom needs --dataset-path with a JSONL file ({\"prompt\": ...} or {\"messages\": [...]} per line, optional \"output_len\")"));
        }
        Ok(())
    }
}

fn cfg(msg: impl Into<String>) -> LoadError {
    LoadError::Config(msg.into())
}

fn bad(e: servebench_core::duration::BadSeconds) -> LoadError {
    LoadError::Config(e.to_string())
}

/// Seconds from a flag or plan value as a `Duration` (finite, in range; see `servebench_core::duration`).
pub fn seconds(name: &str, secs: f64, lower: Lower) -> Result<Duration, LoadError> {
    checked_seconds(name, secs, lower).map_err(bad)
}

/// What a run produced.
#[derive(Debug, Clone)]
pub struct BenchOutcome {
    /// The result object, as appended to the result file.
    pub result: Value,
    pub metrics: Metrics,
    /// The per-request records, by index.
    pub records: Vec<RequestRecord>,
    pub output_file: Option<PathBuf>,
    pub details_file: Option<PathBuf>,
}

/// The record sink of a bench run: counts output tokens with the tokenizer, writes details, shows progress.
struct BenchSink {
    tok: Arc<Tokenizer>,
    details: Option<(PathBuf, std::io::BufWriter<std::fs::File>)>,
    progress: Option<indicatif::ProgressBar>,
    write_error: Option<String>,
}

impl RecordSink for BenchSink {
    fn record(&mut self, rec: &mut RequestRecord) {
        // Only when the server sent no usage: the count is the record's output length. Re-counting every
        // output for `total_output_tokens_retokenized` happens after the timed run (it costs CPU).
        if rec.ok() && rec.output_tokens.is_none() {
            let retok = self.tok.count(&output_text(rec)).ok().map(|n| n as u64);
            // sglang's retokenized count is of the answer text only (`reasoning_content` is not counted).
            rec.output_tokens_retokenized = if rec.reasoning_text.is_empty() {
                retok
            } else {
                self.tok.count(&rec.generated_text).ok().map(|n| n as u64)
            };
            rec.output_tokens = retok;
            rec.output_tokens_source = if retok.is_some() {
                TokenSource::Tokenizer
            } else {
                TokenSource::None
            };
        }
        if let Some((path, w)) = &mut self.details {
            let res = serde_json::to_writer(&mut *w, &*rec)
                .map_err(std::io::Error::from)
                .and_then(|_| w.write_all(b"\n"))
                .and_then(|_| w.flush());
            if let Err(e) = res {
                if self.write_error.is_none() {
                    self.write_error = Some(format!("{}: {e}", path.display()));
                }
            }
        }
        if let Some(pb) = &self.progress {
            pb.inc(1);
        }
    }

    fn finish(&mut self) {
        if let Some(pb) = &self.progress {
            pb.finish_and_clear();
        }
    }
}

/// A progress bar on a terminal (stderr), none in logs.
fn progress_bar(total: u64) -> Option<indicatif::ProgressBar> {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let pb = indicatif::ProgressBar::new(total);
    pb.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} requests ({per_sec}, ETA {eta})",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    Some(pb)
}

/// Warnings about the client's own delay, from its event-loop lag.
pub fn lag_warnings(lag: &Summary) -> Vec<String> {
    use crate::monitor::{BURST_MAX_MS, SATURATED_P99_MS};
    let (p99, max) = (lag.p99.unwrap_or(0.0), lag.max.unwrap_or(0.0));
    if p99 > SATURATED_P99_MS {
        vec![format!(
            "the client itself was saturated (event-loop lag p99 {p99:.1} ms): latencies include client delay; use fewer concurrent requests per client or more cores"
        )]
    } else if max > BURST_MAX_MS {
        vec![format!(
            "the client was briefly saturated (event-loop lag up to {max:.0} ms, e.g. while sending a wave of requests): latencies measured in that moment include up to that much client delay"
        )]
    } else {
        Vec::new()
    }
}

/// The client's read delay (kernel arrival → read): each request's longest wait, and the share of late reads.
pub struct ReadDelays {
    /// Over requests: each request's longest wait (ms).
    pub max: Summary,
    /// Reads more than 1 ms late, of all reads with a kernel timestamp (%).
    pub late_pct: Option<f64>,
}

pub fn read_delays(records: &[RequestRecord]) -> ReadDelays {
    let timed = records.iter().filter(|r| !r.warmup);
    let mut v: Vec<f64> = timed.clone().filter_map(|r| r.read_delay_ms).collect();
    let reads: u64 = timed.clone().map(|r| r.timed_reads as u64).sum();
    let late: u64 = timed.map(|r| r.late_reads as u64).sum();
    ReadDelays {
        max: Summary::of(&mut v),
        late_pct: (reads > 0).then(|| late as f64 * 100.0 / reads as f64),
    }
}

/// With kernel timestamps the client's own delay is measured exactly: the wait between a segment's arrival and
/// the read that took it. Chunk times do not include it, but a client that is often late also sends late. One
/// late read (a scheduler hiccup) is not saturation: the warning needs more than 1% of reads late.
pub fn read_delay_warnings(d: &ReadDelays) -> Vec<String> {
    use crate::monitor::LATE_READS_WARN_PCT;
    match (d.late_pct, d.max.max) {
        (Some(pct), Some(max)) if pct > LATE_READS_WARN_PCT => vec![format!(
            "the client itself was busy: {pct:.1}% of its reads came more than 1 ms after the data arrived (up to {max:.1} ms). Chunk times are the kernel's receive times and do not include that wait, but requests may have gone out later than planned; use fewer concurrent requests per client or more cores"
        )],
        _ => Vec::new(),
    }
}

/// Reasoning + answer text of a record (what the server counted as output).
fn output_text(rec: &RequestRecord) -> std::borrow::Cow<'_, str> {
    if rec.reasoning_text.is_empty() {
        std::borrow::Cow::Borrowed(rec.generated_text.as_str())
    } else {
        std::borrow::Cow::Owned(format!("{}{}", rec.reasoning_text, rec.generated_text))
    }
}

/// Counts every successful record's answer text with the tokenizer (`output_tokens_retokenized`: sglang
/// retokenizes `generated_text`, which for chat is `delta.content` only), on all cores;
/// with `chunks`, also each chunk's answer text (`chunk_tokens`, sglang's split for `sglang-oai(-chat)` with an
/// accept length).
fn retokenize(tok: &Tokenizer, records: &mut [RequestRecord], chunks: bool) {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let chunk = records.len().div_ceil(threads).max(1);
    std::thread::scope(|s| {
        for part in records.chunks_mut(chunk) {
            s.spawn(move || {
                for r in part.iter_mut().filter(|r| r.ok()) {
                    if r.output_tokens_retokenized.is_none() {
                        r.output_tokens_retokenized =
                            tok.count(&r.generated_text).ok().map(|n| n as u64);
                    }
                    if chunks {
                        r.chunk_tokens = (0..r.chunk_ms.len())
                            .map(|i| tok.count(r.chunk_answer_text(i)).unwrap_or(0) as u32)
                            .collect();
                    }
                }
            });
        }
    });
}

/// `x.json` / `x.jsonl` → `x.details.jsonl`.
pub fn details_path(output: &Path) -> PathBuf {
    let stem = output
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "result".into());
    output.with_file_name(format!("{stem}.details.jsonl"))
}

/// The tokenizer: `tokenizer`, else `model` when it is a folder with a tokenizer.json, else the built-in one.
fn load_tokenizer(c: &BenchConfig) -> Result<(Arc<Tokenizer>, Vec<String>), LoadError> {
    let mut warnings = Vec::new();
    let tok = if let Some(p) = &c.tokenizer {
        servebench_tokenize::shared(p)?
    } else if let Some(dir) = c
        .model
        .as_deref()
        .map(Path::new)
        .filter(|p| p.join("tokenizer.json").exists())
    {
        servebench_tokenize::shared(dir)?
    } else {
        if c.warn_builtin_tokenizer {
            warnings.push(
                "no --tokenizer given: token counts use the built-in SmolLM2 tokenizer, not the served model's"
                    .to_string(),
            );
        }
        servebench_tokenize::shared_builtin()?
    };
    tracing::debug!(from_cache = tok.model_from_cache(), "tokenizer loaded");
    Ok((tok, warnings))
}

/// The workload's items, and NumPy's legacy generator as sglang's would be after drawing it (arrival gaps
/// continue that stream; `random`/`random-ids` draw lengths from it, ShareGPT and custom draw nothing); `notes`
/// gets the warnings about it (a custom dataset repeated to fill `--num-prompts`).
fn build_workload(
    w: &WorkloadConfig,
    counter: &PromptCounter<'_>,
    notes: &mut Vec<String>,
) -> Result<(Vec<WorkItem>, Option<NumpyLegacy>), LoadError> {
    let path = || {
        w.dataset_path.as_deref().ok_or_else(|| {
            cfg(format!(
                "--dataset-name {} needs --dataset-path",
                w.dataset.as_str()
            ))
        })
    };
    match w.dataset {
        DatasetName::Random | DatasetName::RandomIds => {
            let text = if w.prompt_rule == PromptRule::Exact && w.dataset == DatasetName::Random {
                crate::corpus::corpus_text(
                    w.dataset_path.as_deref(),
                    (w.random_input_len as usize).saturating_mul(8).max(400_000),
                )?
            } else {
                String::new()
            };
            dataset::random_workload_with_draws(
                counter,
                &text,
                &RandomSpec {
                    num_prompts: w.num_prompts,
                    input_len: w.random_input_len,
                    output_len: w.random_output_len,
                    range_ratio: w.random_range_ratio,
                    rule: w.range_rule,
                    seed: w.seed,
                    ids: w.dataset == DatasetName::RandomIds,
                    prompt_rule: w.prompt_rule,
                    dataset_path: w.dataset_path.clone(),
                },
            )
            .map(|(items, draws)| (items, Some(draws.np)))
        }
        DatasetName::Sharegpt => dataset::sharegpt_workload(
            counter,
            path()?,
            &SharegptSpec {
                num_prompts: w.num_prompts,
                fixed_output_len: w.sharegpt_output_len,
                context_len: w.sharegpt_context_len,
                seed: w.seed,
            },
        )
        .map(|items| (items, None)),
        DatasetName::Custom => {
            let (items, rows) = dataset::custom_workload_rows(
                counter,
                path()?,
                &CustomSpec {
                    num_prompts: Some(w.num_prompts),
                    default_output_len: w.sharegpt_output_len.or(Some(w.random_output_len)),
                    fixed_output_len: w.sharegpt_output_len,
                    context_len: w.sharegpt_context_len,
                    seed: w.seed,
                },
            )?;
            if rows < items.len() {
                notes.push(repeat_warning(path()?, rows, items.len()));
            }
            Ok((items, None))
        }
    }
}

/// Said once (in the result's warnings) when a custom dataset has fewer rows than `--num-prompts`.
pub fn repeat_warning(path: &Path, rows: usize, n: usize) -> String {
    format!(
        "the custom dataset {} has {rows} prompts; they were repeated in order to send {n} (--num-prompts). \
         sglang.bench_serving sends only the rows a file has",
        path.display()
    )
}

fn gen_params(c: &BenchConfig, max: Option<u64>) -> GenParams {
    GenParams {
        max_tokens: max.map(|m| m.min(u32::MAX as u64) as u32),
        max_completion_tokens: c.backend.sends_max_completion_tokens(),
        temperature: Some(0.0),
        ignore_eos: c.ignore_eos,
        stream: c.stream,
        include_usage: c.stream_usage,
        extra: c.extra_request_body.clone(),
        ..Default::default()
    }
}

fn prepare(
    c: &BenchConfig,
    model: &str,
    items: &[WorkItem],
    run_id: &str,
) -> Result<Vec<PreparedRequest>, LoadError> {
    items
        .iter()
        .enumerate()
        .map(|(i, it)| {
            let body = request_body(
                c.backend.api,
                model,
                &it.prompt,
                &gen_params(c, it.output_len),
            );
            Ok(PreparedRequest {
                index: i as u64,
                request_id: format!("{run_id}-{i}"),
                body: Bytes::from(
                    serde_json::to_vec(&body).map_err(|e| cfg(format!("request body: {e}")))?,
                ),
                stream: c.stream,
                prompt_text: it.prompt.as_text().into_owned(),
                prompt_len_intended: it.prompt_len_intended,
                prompt_tokens: Some(it.prompt_tokens),
                output_len_intended: it.output_len,
            })
        })
        .collect()
}

fn open_details(p: &Path) -> Result<(PathBuf, std::io::BufWriter<std::fs::File>), LoadError> {
    let write_err = |source| LoadError::Write {
        path: p.display().to_string(),
        source,
    };
    if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(write_err)?;
    }
    let f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(p)
        .map_err(write_err)?;
    Ok((p.to_path_buf(), std::io::BufWriter::new(f)))
}

/// Appends one result object as a line (creating folders), flushed. A line torn by a kill must not swallow
/// the next result: the new one starts on a fresh line.
pub fn append_result(path: &Path, result: &Value) -> Result<(), LoadError> {
    let write_err = |source| LoadError::Write {
        path: path.display().to_string(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(write_err)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(write_err)?;
    let torn = std::fs::read(path)
        .ok()
        .is_some_and(|b| !b.is_empty() && b.last() != Some(&b'\n'));
    let mut line = Vec::new();
    if torn {
        line.push(b'\n');
    }
    line.extend(serde_json::to_vec(result).map_err(|e| write_err(e.into()))?);
    line.push(b'\n');
    f.write_all(&line)
        .and_then(|_| f.flush())
        .map_err(write_err)
}

/// The model to name in requests: `served_model_name`, `model`, or the first one the server lists; the
/// server's `/v1/models` is asked either way, so an unreachable server is named as such before any work.
async fn resolve_model(c: &BenchConfig, client: &Client) -> Result<String, LoadError> {
    let key = c.api_key.as_deref();
    let probe = crate::preflight::probe(client.http(), &c.base_url, key).await?;
    let given = c.served_model_name.as_deref().or(c.model.as_deref());
    Ok(crate::preflight::model_of(given, &probe, &c.base_url)?)
}

/// Server facts: sglang's `/get_server_info` for sglang backends, else `/v1/models`.
async fn server_info(c: &BenchConfig, client: &Client) -> Value {
    let sglang = c.backend.api == Api::SglangGenerate || c.backend_name.starts_with("sglang");
    let info = if sglang {
        client.get_json("/get_server_info").await
    } else {
        None
    };
    (c.redact)(
        match info {
            Some(v) => Some(v),
            None => client.get_json("/v1/models").await,
        }
        .unwrap_or(Value::Null),
    )
}

/// Untimed warm-up requests: the first prompt, at most 32 output tokens.
async fn warm_up(
    c: &BenchConfig,
    client: &Client,
    model: &str,
    first: &WorkItem,
    run_id: &str,
) -> Result<(), LoadError> {
    if c.warmup_requests == 0 {
        return Ok(());
    }
    let warm_items: Vec<WorkItem> = (0..c.warmup_requests)
        .map(|_| WorkItem {
            output_len: Some(first.output_len.unwrap_or(32).min(32)),
            ..first.clone()
        })
        .collect();
    let mut warm = prepare(c, model, &warm_items, &format!("{run_id}-warmup"))?;
    for w in &mut warm {
        w.index = u64::MAX;
    }
    runner::warmup(client, &warm).await
}

/// Warm-up on every endpoint (each gets `warmup_requests`); a failure names the endpoint when there are several.
async fn warm_up_all(
    c: &BenchConfig,
    clients: &[Client],
    urls: &[String],
    model: &str,
    first: &WorkItem,
    run_id: &str,
) -> Result<(), LoadError> {
    for (i, client) in clients.iter().enumerate() {
        match warm_up(c, client, model, first, run_id).await {
            Err(LoadError::Warmup(e)) if clients.len() > 1 => {
                return Err(LoadError::Warmup(format!(
                    "endpoint {i} ({}): {e}",
                    url_without_credentials(&urls[i])
                )))
            }
            r => r?,
        }
    }
    Ok(())
}

/// Runs one benchmark: validates `c`, sends the workload, and appends the result to `c.output_file`.
/// `stop` (e.g. Ctrl-C) stops sending; requests in flight get `c.grace` to finish.
pub async fn run_bench(
    c: &BenchConfig,
    stop: watch::Receiver<bool>,
) -> Result<BenchOutcome, LoadError> {
    c.validate()?;
    let urls = c.endpoints();
    let clients = urls
        .iter()
        .map(|u| {
            let mut cc = ClientConfig::new(u, c.backend.clone());
            cc.api_key = c.api_key.clone().filter(|k| !k.is_empty());
            cc.headers = c.headers.clone();
            cc.timeouts = c.timeouts;
            cc.keep_text = true;
            cc.http_client = c.http_client;
            cc.kernel_timestamps = c.kernel_timestamps;
            cc.connection_per_request = c.connection_per_request;
            Client::new(cc)
        })
        .collect::<Result<Vec<Client>, LoadError>>()?;
    let client = &clients[0];
    let https: Vec<&reqwest::Client> = clients.iter().map(Client::http).collect();
    crate::preflight::probe_other_endpoints(&https, &urls, c.api_key.as_deref()).await?;
    let model = resolve_model(c, client).await?;

    let c2 = c.clone();
    let api = c.backend.api;
    let (tok, mut warnings, (items, arrival_draws), method) =
        tokio::task::spawn_blocking(move || {
            let (tok, mut warnings) = load_tokenizer(&c2)?;
            let counter = PromptCounter { tok: &tok, api };
            let items = build_workload(&c2.workload, &counter, &mut warnings)?;
            let method = CountMethod::of(
                c2.workload.dataset.as_str(),
                c2.workload.prompt_rule,
                &counter,
            );
            Ok::<_, LoadError>((tok.clone(), warnings, items, method))
        })
        .await
        .map_err(|e| cfg(format!("workload preparation failed: {e}")))??;
    if items.is_empty() {
        return Err(cfg(
            "the workload is empty: the dataset has no usable prompts",
        ));
    }
    if api == Api::Chat && tok.chat_template.is_none() {
        warnings.push(
            "the tokenizer has no chat template: chat prompt tokens are counted without it".into(),
        );
    }

    let run_id = format!("sb{}", chrono::Local::now().format("%H%M%S%3f"));
    let requests = prepare(c, &model, &items, &run_id)?;
    warm_up_all(c, &clients, &urls, &model, &items[0], &run_id).await?;
    if c.flush_cache {
        for (client, url) in clients.iter().zip(&urls) {
            for path in ["/flush_cache", "/reset_prefix_cache"] {
                let _ = client.http().post(format!("{url}{path}")).send().await;
            }
        }
    }

    let details = c.details_file.as_deref().map(open_details).transpose()?;
    let sink = BenchSink {
        tok: tok.clone(),
        details,
        progress: if c.progress {
            progress_bar(items.len() as u64)
        } else {
            None
        },
        write_error: None,
    };
    let n = requests.len();
    let run_cfg = RunConfig {
        max_concurrency: c.max_concurrency,
        request_rate: c.request_rate,
        burstiness: c.burstiness,
        seed: c.workload.seed,
        arrival_draws,
        warm_connections: if c.warm_connections && !c.connection_per_request {
            c.max_concurrency.unwrap_or(n).min(n)
        } else {
            0
        },
        grace: c.grace,
        max_duration: c.duration,
    };
    let started_at = chrono::Local::now().to_rfc3339();
    let mut out = runner::run_on(
        &clients,
        c.dispatch,
        requests,
        &run_cfg,
        Box::new(sink),
        stop,
    )
    .await?;
    // sglang reads the server's facts (accept length included) after the run.
    let server_info = server_info(c, client).await;
    let accept_length = servebench_core::result::accept_length(&server_info);
    let itl_rule = ItlRule::for_run(&c.backend_name, api == Api::SglangGenerate, accept_length);
    let tok2 = tok.clone();
    let mut records = std::mem::take(&mut out.records);
    out.records = tokio::task::spawn_blocking(move || {
        retokenize(&tok2, &mut records, itl_rule == ItlRule::RetokenizedChunks);
        records
    })
    .await
    .map_err(|e| cfg(format!("re-tokenizing outputs failed: {e}")))?;

    let metrics = compute(&out.records, out.duration_s, itl_rule);
    let per_endpoint = if clients.len() > 1 {
        let shown: Vec<String> = urls.iter().map(|u| url_without_credentials(u)).collect();
        let (records, stats) = crate::endpoint_stats::split(
            std::mem::take(&mut out.records),
            &shown,
            out.duration_s,
            itl_rule,
        );
        out.records = records;
        warnings.extend(crate::endpoint_stats::slow_endpoint_warnings(&stats));
        Some(stats)
    } else {
        None
    };
    let read_delay = read_delays(&out.records);
    if read_delay.late_pct.is_some() {
        // Kernel timestamps: the late-read share measures the client's own delay exactly (and latencies do not
        // include it); the coarse event-loop lag would only repeat it, wrongly saying latencies include it.
        warnings.extend(read_delay_warnings(&read_delay));
    } else {
        warnings.extend(lag_warnings(&out.client_lag));
    }
    if metrics.output_token_sources.contains_key("tokenizer") {
        warnings
            .push("the server sent no usage: output tokens were counted with the tokenizer".into());
    }
    if out.ended_in_flight > 0 {
        warnings.push(format!(
            "{} requests still in flight {:.1}s after sending stopped (--grace) were ended and count as not finished",
            out.ended_in_flight,
            c.grace.as_secs_f64()
        ));
    }
    if out.interrupted && !out.duration_limited {
        warnings.push(format!(
            "interrupted: {} of {} requests finished",
            out.records.len(),
            n
        ));
    }
    let simulated =
        c.simulated || server_info.get("simulated").and_then(|v| v.as_bool()) == Some(true);
    let w = &c.workload;
    let info = RunInfo {
        backend: c.backend_name.clone(),
        dataset_name: w.dataset.as_str().into(),
        request_rate: c.request_rate,
        burstiness: c.burstiness,
        max_concurrency: c.max_concurrency.map(|c| c as u64),
        num_prompts: w.num_prompts as u64,
        sharegpt_output_len: w.sharegpt_output_len,
        random_input_len: Some(w.random_input_len),
        random_output_len: Some(w.random_output_len),
        random_range_ratio: Some(w.random_range_ratio),
        seed: w.seed,
        model,
        base_url: url_without_credentials(&c.base_url),
        tokenizer: tok.source.clone(),
        prompt_token_method: method.as_str().into(),
        server_info,
        simulated,
        accept_length,
        tag: c.tag.clone(),
        command_line: c.command_line.clone(),
        started_at,
        interrupted: out.interrupted,
        warmup_requests: c.warmup_requests as u64,
        warmup_connections: out.warmup_connections,
        connect: out.connect,
        client_lag: out.client_lag,
        client_saturated: out.client_saturated
            || read_delay
                .late_pct
                .is_some_and(|p| p > crate::monitor::LATE_READS_WARN_PCT),
        warnings,
        client: ClientFacts {
            cpu_s: out.client_cpu_s,
            http_client: client.http_client_name().into(),
            timestamp_source: client.timestamp_source().into(),
            lag_source: out.client_lag_source.as_str().into(),
            p99_read_delay_ms: read_delay.max.p99,
            max_read_delay_ms: read_delay.max.max,
            late_reads_pct: read_delay.late_pct,
        },
        not_finished: out.not_finished,
        duration_limit_s: c.duration.map(|d| d.as_secs_f64()),
        details_file: c.details_file.as_ref().map(|d| d.display().to_string()),
        tensor_parallel: c.tensor_parallel,
    };
    let mut result = result_json(&info, &metrics);
    if let (Some(m), Some(obj)) = (&c.measured_server, result.as_object_mut()) {
        obj.insert("measured_server".into(), m.clone());
    }
    if let (Some(stats), Some(obj)) = (&per_endpoint, result.as_object_mut()) {
        obj.insert("dispatch".into(), c.dispatch.as_str().into());
        obj.insert(
            "endpoints".into(),
            stats.iter().map(|s| s.to_json()).collect(),
        );
    }
    if let (Some(slo), Some(obj)) = (&c.slo, result.as_object_mut()) {
        obj.extend(slo.result_keys(&slo.evaluate(&out.records, out.duration_s)));
    }
    if c.output_details {
        if let Some(obj) = result.as_object_mut() {
            servebench_core::result::add_sglang_details(obj, &out.records, itl_rule);
        }
    }
    if let Some(f) = &c.output_file {
        append_result(f, &result)?;
    }
    Ok(BenchOutcome {
        result,
        metrics,
        records: out.records,
        output_file: c.output_file.clone(),
        details_file: c.details_file.clone(),
    })
}

#[cfg(test)]
mod url_tests {
    #[test]
    fn credentials_leave_base_urls() {
        use super::url_without_credentials as strip;
        assert_eq!(
            strip("http://user:sk-1@127.0.0.1:8000"),
            "http://127.0.0.1:8000"
        );
        assert_eq!(strip("http://127.0.0.1:8000"), "http://127.0.0.1:8000");
        assert_eq!(strip("not a url"), "not a url");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_delay_warning_fires_only_for_a_busy_client() {
        // (longest wait ms, reads, late reads) per request.
        let recs = |v: &[(f64, u32, u32)]| -> Vec<RequestRecord> {
            v.iter()
                .map(|&(d, reads, late)| RequestRecord {
                    read_delay_ms: Some(d),
                    timed_reads: reads,
                    late_reads: late,
                    ..Default::default()
                })
                .collect()
        };
        let calm = read_delays(&recs(&[(0.01, 100, 0), (0.2, 100, 0), (0.4, 100, 0)]));
        assert_eq!(calm.max.max, Some(0.4));
        assert_eq!(calm.late_pct, Some(0.0));
        assert!(read_delay_warnings(&calm).is_empty());
        // One hiccup in 800 reads: not saturation.
        let hiccup = read_delays(&recs(&[(1.6, 400, 1), (0.3, 400, 0)]));
        assert!(read_delay_warnings(&hiccup).is_empty());
        let busy = read_delays(&recs(&[(2.5, 100, 10), (7.5, 100, 30)]));
        assert_eq!(busy.late_pct, Some(20.0));
        let w = read_delay_warnings(&busy);
        assert_eq!(w.len(), 1);
        assert!(
            w[0].contains("20.0% of its reads") && w[0].contains("up to 7.5 ms"),
            "{}",
            w[0]
        );
        // Without kernel timestamps there is nothing to judge.
        let none = read_delays(&[RequestRecord::default()]);
        assert_eq!(none.late_pct, None);
        assert!(read_delay_warnings(&none).is_empty());
    }

    #[test]
    fn lag_warnings_tell_saturation_from_a_burst() {
        let s = |p99: f64, max: f64| Summary {
            p99: Some(p99),
            max: Some(max),
            ..Default::default()
        };
        assert!(lag_warnings(&s(1.0, 3.0)).is_empty());
        assert!(lag_warnings(&s(9.0, 30.0))[0].contains("itself was saturated"));
        assert!(lag_warnings(&s(1.0, 45.0))[0].contains("briefly saturated"));
    }

    #[test]
    fn details_file_sits_next_to_the_result() {
        assert_eq!(
            details_path(Path::new("out/r.json")),
            PathBuf::from("out/r.details.jsonl")
        );
        assert_eq!(
            details_path(Path::new("r.jsonl")),
            PathBuf::from("r.details.jsonl")
        );
    }

    #[test]
    fn append_after_a_torn_line_starts_a_new_line() {
        let dir = std::env::temp_dir().join(format!("sb-append-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("r.json");
        std::fs::write(&p, "{\"completed\": 1}\n{\"comp").unwrap();
        append_result(&p, &serde_json::json!({"completed": 2})).unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[2], "{\"completed\":2}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn validation_names_the_setting_and_what_to_pass() {
        let base = BenchConfig::new("http://127.0.0.1:1", "sglang").unwrap();
        let err = |f: &dyn Fn(&mut BenchConfig)| {
            let mut c = base.clone();
            f(&mut c);
            c.validate().unwrap_err().to_string()
        };
        assert!(err(&|c| c.max_concurrency = Some(usize::MAX)).contains("--max-concurrency"));
        assert!(err(&|c| c.max_concurrency = Some(0)).contains("--max-concurrency"));
        assert!(err(&|c| c.request_rate = 1e-300).contains("--request-rate"));
        assert!(err(&|c| c.request_rate = f64::NAN).contains("--request-rate"));
        assert!(err(&|c| c.burstiness = f64::INFINITY).contains("--burstiness"));
        assert!(err(&|c| c.workload.random_range_ratio = f64::NAN).contains("--random-range-ratio"));
        assert!(err(&|c| c.workload.num_prompts = 0).contains("--num-prompts"));
        assert!(err(&|c| c.timeouts.total = Duration::ZERO).contains("--timeout 0"));
        assert!(err(&|c| c.workload.dataset = DatasetName::Sharegpt).contains("--dataset-path"));
        base.validate().unwrap();
        assert!(seconds("--grace", f64::INFINITY, Lower::Zero)
            .unwrap_err()
            .to_string()
            .contains("--grace inf"));
    }
}
