//! `servebench bench`: one load test, with `python3 -m sglang.bench_serving`'s flags.

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use servebench_core::api::{request_body, Api, Backend, GenParams};
use servebench_core::metrics::{compute, Metrics};
use servebench_core::record::{RequestRecord, TokenSource};
use servebench_core::result::{result_json, RunInfo};
use servebench_load::client::{Client, ClientConfig, HttpClientKind, PreparedRequest};
use servebench_load::dataset::{
    self, CountMethod, PromptCounter, RandomSpec, RangeRule, SharegptSpec, WorkItem,
};
use servebench_load::runner::{self, RecordSink, RunConfig};
use servebench_tokenize::Tokenizer;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

use super::output::{self, print_bench_summary};
use super::secrets::{command_line_redacted, redact_secrets};

/// One load test (flags named and meant as in `python3 -m sglang.bench_serving`; prefixes such as
/// `--random-input` are accepted as argparse accepts them).
#[derive(Debug, Clone, clap::Args)]
#[command(
    infer_long_args = true,
    allow_negative_numbers = true,
    after_help = super::exit::HELP
)]
pub struct Args {
    /// sglang | sglang-native (native /generate); sglang-oai | vllm | openai | lmdeploy (/v1/completions);
    /// sglang-oai-chat | vllm-chat | openai-chat | lmdeploy-chat (/v1/chat/completions).
    #[arg(long, default_value = "sglang")]
    pub backend: String,
    /// Server URL, e.g. http://127.0.0.1:30000 (overrides --host/--port; default: from --host and --port).
    #[arg(long)]
    pub base_url: Option<String>,
    /// Server host, used with --port when --base-url is not given.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Default: 30000 (SGLang), 8000 (vllm backends), 23333 (lmdeploy).
    #[arg(long)]
    pub port: Option<u16>,
    /// Model name or path (default: the first model the server lists in /v1/models).
    #[arg(long)]
    pub model: Option<String>,
    /// Model name sent in requests when it differs from --model (default: --model).
    #[arg(long)]
    pub served_model_name: Option<String>,
    /// tokenizer.json file or a folder with one (default: --model when it is such a folder, else the built-in
    /// SmolLM2 tokenizer, with a warning).
    #[arg(long)]
    pub tokenizer: Option<PathBuf>,
    /// random | random-ids | sharegpt | custom.
    #[arg(long, default_value = "sharegpt")]
    pub dataset_name: String,
    /// ShareGPT JSON (sharegpt; text source for random) or JSONL (custom). Default: none (sharegpt and custom
    /// need it; random uses the built-in corpus).
    #[arg(long)]
    pub dataset_path: Option<PathBuf>,
    /// Requests to send (at least 1).
    #[arg(long, default_value_t = 1000, value_parser = super::args::at_least_one)]
    pub num_prompts: usize,
    /// Fixed output length for sharegpt (default: each conversation's own).
    #[arg(long)]
    pub sharegpt_output_len: Option<u64>,
    /// Skip sharegpt conversations longer than this (prompt + output; default: no limit).
    #[arg(long)]
    pub sharegpt_context_len: Option<u64>,
    /// Input tokens per request of random datasets (the most; see --random-range-ratio).
    #[arg(long, alias = "random-input", default_value_t = 1024, value_parser = super::args::length)]
    pub random_input_len: u64,
    /// Output tokens per request of random datasets (the most; see --random-range-ratio).
    #[arg(long, alias = "random-output", default_value_t = 1024, value_parser = super::args::length)]
    pub random_output_len: u64,
    /// Lengths ~ U[max(floor(L*r),1), L] (SGLang's rule; see --range-rule). The default 0.0 is SGLang's too: with
    /// it, --random-input-len 1024 averages about 512 tokens; pass 1 for exact lengths.
    #[arg(long, default_value_t = 0.0)]
    pub random_range_ratio: f64,
    /// sglang: U[L*r, L]; vllm: U[L*(1-r), L*(1+r)].
    #[arg(long, default_value = "sglang")]
    pub range_rule: String,
    /// Requests per second (Poisson arrivals; gamma with --burstiness); inf = all at once.
    #[arg(long, default_value = "inf", value_parser = super::args::rate)]
    pub request_rate: f64,
    /// Gamma shape of inter-arrival times (1 = Poisson; < 1 burstier).
    #[arg(long, default_value_t = 1.0, value_parser = super::args::positive)]
    pub burstiness: f64,
    /// Requests in flight at once, at least 1 (default: no limit, all at once with --request-rate inf).
    #[arg(long, value_parser = super::args::at_least_one)]
    pub max_concurrency: Option<usize>,
    /// Seed of the workload (prompt choice and lengths) and of arrival times.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Untimed requests before the run (first prompt, at most 32 output tokens).
    #[arg(long, default_value_t = 1)]
    pub warmup_requests: usize,
    /// Do not open the connection pool before a closed-loop run.
    #[arg(long)]
    pub no_warm_connections: bool,
    /// HTTP implementation for the timed requests: auto (native HTTP/1.1 on plain http:// without a proxy
    /// variable, reqwest otherwise), native, or reqwest (TLS, proxies).
    #[arg(long, default_value = "auto", value_name = "auto|native|reqwest")]
    pub http_client: String,
    /// Time chunks when the client's reads return instead of with the kernel's receive timestamps (the
    /// native client on Linux uses the kernel's by default, so the client's own delays never enter latencies).
    #[arg(long)]
    pub read_timestamps: bool,
    /// Send requests without streaming (TTFT is then the whole response time).
    #[arg(long)]
    pub disable_stream: bool,
    /// Omit `ignore_eos` (strict servers such as `transformers serve` answer 422 to it).
    #[arg(long)]
    pub disable_ignore_eos: bool,
    /// Do not ask for usage in streams (`stream_options`).
    #[arg(long)]
    pub disable_stream_usage: bool,
    /// JSON object merged into every request body (default: none).
    #[arg(long)]
    pub extra_request_body: Option<String>,
    /// Extra HTTP header K:V (repeatable; default: none).
    #[arg(long = "header", value_name = "K:V")]
    pub headers: Vec<String>,
    /// Bearer token (default: $OPENAI_API_KEY). Never written to any file.
    #[arg(long, env = "OPENAI_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// Result JSON, appended one object a line (default: {backend}_{MMDD}_{num_prompts}_{in}_{out}.jsonl).
    #[arg(long)]
    pub output_file: Option<PathBuf>,
    /// Also write per-request records to <output-file stem>.details.jsonl (and SGLang's detail arrays).
    #[arg(long)]
    pub output_details: bool,
    /// Where per-request records go (implies --output-details; default <output-file stem>.details.jsonl).
    #[arg(long)]
    pub details_file: Option<PathBuf>,
    /// Stop sending new requests after this many seconds (those in flight finish; default: no limit).
    #[arg(long, value_parser = super::args::positive_seconds)]
    pub duration: Option<f64>,
    /// No progress bar.
    #[arg(long)]
    pub disable_tqdm: bool,
    /// POST /flush_cache (SGLang) and /reset_prefix_cache (vLLM) before the timed run.
    #[arg(long)]
    pub flush_cache: bool,
    /// A label stored in the result (default: none).
    #[arg(long)]
    pub tag: Option<String>,
    /// Per-request timeout in seconds, > 0 (default: none).
    #[arg(long, value_parser = super::args::positive_seconds)]
    pub timeout: Option<f64>,
    /// Seconds to wait for requests in flight after Ctrl-C.
    #[arg(long, default_value_t = 5.0, value_parser = super::args::seconds)]
    pub grace: f64,
    /// Start the built-in simulated engine in this process and test it (optional preset name; default preset
    /// `default` when the flag is given without one; --base-url/--host/--port are then not used).
    #[arg(long, num_args = 0..=1, default_missing_value = "default", value_name = "PRESET")]
    pub sim: Option<String>,
    /// Print the result JSON on stdout instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Exit with code 3 when more than this share of requests failed (a fraction in [0, 1], e.g. 0.01).
    /// Default: only when every request failed. The result is written either way.
    #[arg(long, value_name = "FRACTION", value_parser = super::exit::parse_rate)]
    pub max_failure_rate: Option<f64>,
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
            rec.output_tokens_retokenized = retok;
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
        if let Some(e) = &self.write_error {
            eprintln!("warning: writing per-request records failed: {e}");
        }
    }
}

/// Warnings about the client's own delay, from its event-loop lag.
fn lag_warnings(lag: &servebench_core::stats::Summary) -> Vec<String> {
    use servebench_load::monitor::{BURST_MAX_MS, SATURATED_P99_MS};
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
struct ReadDelays {
    /// Over requests: each request's longest wait (ms).
    max: servebench_core::stats::Summary,
    /// Reads more than 1 ms late, of all reads with a kernel timestamp (%).
    late_pct: Option<f64>,
}

fn read_delays(records: &[RequestRecord]) -> ReadDelays {
    let timed = records.iter().filter(|r| !r.warmup);
    let mut v: Vec<f64> = timed.clone().filter_map(|r| r.read_delay_ms).collect();
    let reads: u64 = timed.clone().map(|r| r.timed_reads as u64).sum();
    let late: u64 = timed.map(|r| r.late_reads as u64).sum();
    ReadDelays {
        max: servebench_core::stats::Summary::of(&mut v),
        late_pct: (reads > 0).then(|| late as f64 * 100.0 / reads as f64),
    }
}

/// With kernel timestamps the client's own delay is measured exactly: the wait between a segment's arrival and
/// the read that took it. Chunk times do not include it, but a client that is often late also sends late. One
/// late read (a scheduler hiccup) is not saturation: the warning needs more than 1% of reads late.
fn read_delay_warnings(d: &ReadDelays) -> Vec<String> {
    use servebench_load::monitor::LATE_READS_WARN_PCT;
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

/// Counts every successful record's output with the tokenizer (`output_tokens_retokenized`), on all cores.
fn retokenize(tok: &Tokenizer, records: &mut [RequestRecord]) {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let chunk = records.len().div_ceil(threads).max(1);
    std::thread::scope(|s| {
        for part in records.chunks_mut(chunk) {
            s.spawn(move || {
                for r in part
                    .iter_mut()
                    .filter(|r| r.ok() && r.output_tokens_retokenized.is_none())
                {
                    r.output_tokens_retokenized = tok.count(&output_text(r)).ok().map(|n| n as u64);
                }
            });
        }
    });
}

/// What a bench run produced.
pub struct BenchOutcome {
    pub result: serde_json::Value,
    pub metrics: Metrics,
    pub output_file: PathBuf,
    pub details_file: Option<PathBuf>,
}

pub fn run(args: Args) -> Result<()> {
    preflight(&args)?;
    let rt = super::runtime()?;
    let stop_rx = super::stop_on_ctrl_c(
        &rt,
        "no new requests; waiting for those in flight, then writing the results",
    );
    let (json, max_failure_rate) = (args.json, args.max_failure_rate);
    let out = rt.block_on(execute(args, stop_rx.clone()))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&out.result)?);
    } else {
        print_bench_summary(&out.result, &out.metrics);
        println!("Results appended to {}", out.output_file.display());
        if let Some(d) = &out.details_file {
            println!("Per-request records in {}", d.display());
        }
    }
    let count = |k: &str| out.result[k].as_u64().unwrap_or(0);
    let (completed, failed) = (count("completed"), count("failed"));
    if *stop_rx.borrow() {
        return Err(super::exit::Interrupted(format!(
            "{completed} requests completed and {failed} failed before Ctrl-C; results written to {}",
            out.output_file.display()
        ))
        .into());
    }
    super::exit::check_failures("requests", completed, failed, max_failure_rate)
        .with_context(|| format!("results written to {}", out.output_file.display()))?;
    Ok(())
}

/// The result and details files, as `execute` will write them.
pub fn output_paths(a: &Args) -> (PathBuf, Option<PathBuf>) {
    let output_file = a
        .output_file
        .clone()
        .unwrap_or_else(|| default_output_file(a));
    let details_file = match &a.details_file {
        Some(p) => Some(p.clone()),
        None => a.output_details.then(|| details_path(&output_file)),
    };
    (output_file, details_file)
}

/// The flags `execute` would refuse, checked up front so that their errors are reported as bad input.
fn check_flags(a: &Args) -> Result<()> {
    Backend::parse(&a.backend)?;
    if a.num_prompts == 0 {
        bail!("--num-prompts must be at least 1");
    }
    if a.max_concurrency == Some(0) {
        bail!("--max-concurrency must be at least 1");
    }
    if !matches!(a.range_rule.as_str(), "sglang" | "vllm") {
        bail!("--range-rule {}: use sglang or vllm", a.range_rule);
    }
    let datasets = ["random", "random-ids", "sharegpt", "custom"];
    if !datasets.contains(&a.dataset_name.as_str()) {
        bail!(
            "--dataset-name {}: use random, random-ids, sharegpt or custom",
            a.dataset_name
        );
    }
    if a.dataset_path.is_none() {
        match a.dataset_name.as_str() {
            "sharegpt" => bail!("--dataset-name sharegpt needs --dataset-path with a ShareGPT JSON file (servebench downloads nothing); or use --dataset-name random"),
            "custom" => bail!("--dataset-name custom needs --dataset-path with a JSONL file ({{\"prompt\": ...}} or {{\"messages\": [...]}} per line)"),
            _ => {}
        }
    }
    parse_headers(&a.headers)?;
    if let Some(s) = &a.extra_request_body {
        serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(s)
            .with_context(|| format!("--extra-request-body is not a JSON object: {s}"))?;
    }
    HttpClientKind::parse(&a.http_client)?;
    Ok(())
}

/// Checks made before anything is sent: every output can be written, and the open-file limit allows the
/// connections the run may hold at once.
fn preflight(a: &Args) -> Result<()> {
    check_flags(a).map_err(super::exit::BadInput::from_err)?;
    let (output_file, details_file) = output_paths(a);
    for p in std::iter::once(&output_file).chain(details_file.as_ref()) {
        servebench_load::outpath::ensure_writable_file(p)?;
    }
    let n = a.num_prompts as u64;
    let connections = a.max_concurrency.map_or(n, |c| (c as u64).min(n));
    let need = servebench_load::nofile::needed(connections, a.sim.is_some());
    if let Err(e) = servebench_load::nofile::ensure(need, "--max-concurrency", connections) {
        if a.max_concurrency.is_some() {
            return Err(e.into());
        }
        // No concurrency limit asked for: run with what the system allows, and say so.
        eprintln!("warning: {e}");
    }
    Ok(())
}

fn default_output_file(a: &Args) -> PathBuf {
    let now = chrono::Local::now().format("%m%d");
    if a.dataset_name.starts_with("random") {
        PathBuf::from(format!(
            "{}_{}_{}_{}_{}.jsonl",
            a.backend, now, a.num_prompts, a.random_input_len, a.random_output_len
        ))
    } else {
        PathBuf::from(format!(
            "{}_{}_{}_{}.jsonl",
            a.backend, now, a.num_prompts, a.dataset_name
        ))
    }
}

/// `x.json` / `x.jsonl` → `x.details.jsonl`.
pub fn details_path(output: &Path) -> PathBuf {
    let stem = output
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "result".into());
    output.with_file_name(format!("{stem}.details.jsonl"))
}

fn load_tokenizer(a: &Args) -> Result<(Arc<Tokenizer>, Vec<String>)> {
    let mut warnings = Vec::new();
    let tok = if let Some(p) = &a.tokenizer {
        Tokenizer::from_path(p)?
    } else if let Some(dir) = a
        .model
        .as_deref()
        .map(Path::new)
        .filter(|p| p.join("tokenizer.json").exists())
    {
        Tokenizer::from_path(dir)?
    } else {
        if a.sim.is_none() {
            warnings.push(
                "no --tokenizer given: token counts use the built-in SmolLM2 tokenizer, not the served model's"
                    .to_string(),
            );
        }
        Tokenizer::builtin()?
    };
    Ok((Arc::new(tok), warnings))
}

fn build_workload(a: &Args, counter: &PromptCounter<'_>) -> Result<Vec<WorkItem>> {
    let rule = match a.range_rule.as_str() {
        "sglang" => RangeRule::Sglang,
        "vllm" => RangeRule::Vllm,
        other => bail!("--range-rule {other}: use sglang or vllm"),
    };
    if !(0.0..=1.0).contains(&a.random_range_ratio) && rule == RangeRule::Sglang {
        bail!(
            "--random-range-ratio {} must be in [0, 1] with SGLang's rule",
            a.random_range_ratio
        );
    }
    Ok(match a.dataset_name.as_str() {
        "random" | "random-ids" => {
            let text = servebench_load::corpus::corpus_text(
                a.dataset_path.as_deref(),
                (a.random_input_len as usize * 8).max(400_000),
            )?;
            dataset::random_workload(
                counter,
                &text,
                &RandomSpec {
                    num_prompts: a.num_prompts,
                    input_len: a.random_input_len,
                    output_len: a.random_output_len,
                    range_ratio: a.random_range_ratio,
                    rule,
                    seed: a.seed,
                    ids: a.dataset_name == "random-ids",
                },
            )?
        }
        "sharegpt" => {
            let Some(path) = &a.dataset_path else {
                bail!("--dataset-name sharegpt needs --dataset-path with a ShareGPT JSON file (servebench downloads nothing); or use --dataset-name random")
            };
            dataset::sharegpt_workload(
                counter,
                path,
                &SharegptSpec {
                    num_prompts: a.num_prompts,
                    fixed_output_len: a.sharegpt_output_len,
                    context_len: a.sharegpt_context_len,
                    seed: a.seed,
                },
            )?
        }
        "custom" => {
            let Some(path) = &a.dataset_path else {
                bail!("--dataset-name custom needs --dataset-path with a JSONL file ({{\"prompt\": ...}} or {{\"messages\": [...]}} per line, optional \"output_len\")")
            };
            dataset::custom_workload(
                counter,
                path,
                Some(a.num_prompts),
                a.sharegpt_output_len.or(Some(a.random_output_len)),
            )?
        }
        other => bail!("--dataset-name {other}: use random, random-ids, sharegpt or custom"),
    })
}

fn parse_headers(h: &[String]) -> Result<Vec<(String, String)>> {
    h.iter()
        .map(|kv| {
            let (k, v) = kv
                .split_once(':')
                .with_context(|| format!("--header '{kv}': expected K:V"))?;
            Ok((k.trim().to_string(), v.trim().to_string()))
        })
        .collect()
}

fn gen_params(
    a: &Args,
    extra: &serde_json::Map<String, serde_json::Value>,
    max: Option<u64>,
) -> GenParams {
    GenParams {
        max_tokens: max.map(|m| m.min(u32::MAX as u64) as u32),
        temperature: Some(0.0),
        ignore_eos: !a.disable_ignore_eos,
        stream: !a.disable_stream,
        include_usage: !a.disable_stream_usage,
        extra: extra.clone(),
        ..Default::default()
    }
}

fn prepare(
    api: Api,
    model: &str,
    items: &[WorkItem],
    a: &Args,
    extra: &serde_json::Map<String, serde_json::Value>,
    run_id: &str,
) -> Result<Vec<PreparedRequest>> {
    items
        .iter()
        .enumerate()
        .map(|(i, it)| {
            let body = request_body(api, model, &it.prompt, &gen_params(a, extra, it.output_len));
            Ok(PreparedRequest {
                index: i as u64,
                request_id: format!("{run_id}-{i}"),
                body: Bytes::from(serde_json::to_vec(&body)?),
                stream: !a.disable_stream,
                prompt_text: it.prompt.as_text().into_owned(),
                prompt_len_intended: it.prompt_len_intended,
                prompt_tokens: Some(it.prompt_tokens),
                output_len_intended: it.output_len,
            })
        })
        .collect()
}

/// Runs one bench and appends its result. Used by `bench` and `sweep`.
pub async fn execute(mut a: Args, stop: watch::Receiver<bool>) -> Result<BenchOutcome> {
    let backend = Backend::parse(&a.backend)?;
    if a.num_prompts == 0 {
        bail!("--num-prompts must be at least 1");
    }
    if a.max_concurrency == Some(0) {
        bail!("--max-concurrency must be at least 1");
    }
    // The simulator, in process.
    let sim = match &a.sim {
        Some(preset) => {
            let (tok, _) = load_tokenizer(&a)?;
            let mut cfg = servebench_sim::SimConfig::preset(preset)?;
            cfg.prompt_counter = Some(Arc::new(crate::sim_counter::TokenizerCounter(tok)));
            if let Some(m) = &a.model {
                cfg.model = m.clone();
            }
            let server = crate::sim_thread::SimThread::start(cfg, 1)?;
            a.base_url = Some(server.base_url().to_string());
            Some(server)
        }
        None => None,
    };
    let base_url = match &a.base_url {
        Some(u) => u.trim_end_matches('/').to_string(),
        None => format!(
            "http://{}:{}",
            a.host,
            a.port.unwrap_or_else(|| backend.default_port())
        ),
    };
    let extra: serde_json::Map<String, serde_json::Value> = match &a.extra_request_body {
        Some(s) => serde_json::from_str(s)
            .with_context(|| format!("--extra-request-body is not a JSON object: {s}"))?,
        None => Default::default(),
    };
    let mut cc = ClientConfig::new(&base_url, backend.clone());
    cc.api_key = a.api_key.clone().filter(|k| !k.is_empty());
    cc.headers = parse_headers(&a.headers)?;
    cc.timeout = a.timeout.map(Duration::from_secs_f64);
    cc.keep_text = true;
    cc.http_client = HttpClientKind::parse(&a.http_client)?;
    cc.kernel_timestamps = !a.read_timestamps;
    let client = Client::new(cc)?;

    let model = match (&a.served_model_name, &a.model) {
        (Some(s), _) => s.clone(),
        (None, Some(m)) => m.clone(),
        (None, None) => client
            .get_json("/v1/models")
            .await
            .and_then(|v| v["data"][0]["id"].as_str().map(str::to_string))
            .with_context(|| {
                format!("no --model given and {base_url}/v1/models lists none: pass --model, and check --base-url/--host/--port")
            })?,
    };

    let a2 = a.clone();
    let (tok, mut warnings, items, method) = tokio::task::spawn_blocking(move || -> Result<_> {
        let (tok, warnings) = load_tokenizer(&a2)?;
        let counter = PromptCounter {
            tok: &tok,
            api: backend.api,
        };
        let items = build_workload(&a2, &counter)?;
        let method = if a2.dataset_name == "random-ids" && backend.api != Api::Chat {
            CountMethod::TokenIds
        } else {
            counter.method()
        };
        Ok((tok.clone(), warnings, items, method))
    })
    .await??;
    if backend.api == Api::Chat && tok.chat_template.is_none() {
        warnings.push(
            "the tokenizer has no chat template: chat prompt tokens are counted without it".into(),
        );
    }

    let run_id = format!("sb{}", chrono::Local::now().format("%H%M%S%3f"));
    let requests = prepare(backend.api, &model, &items, &a, &extra, &run_id)?;
    let server_info = redact_secrets(
        if backend.api == Api::SglangGenerate || a.backend.starts_with("sglang") {
            client.get_json("/get_server_info").await
        } else {
            None
        }
        .or(client.get_json("/v1/models").await)
        .unwrap_or(serde_json::Value::Null),
    );

    // Warm-up.
    if a.warmup_requests > 0 {
        let first = &items[0];
        let warm_items: Vec<WorkItem> = (0..a.warmup_requests)
            .map(|_| WorkItem {
                output_len: Some(first.output_len.unwrap_or(32).min(32)),
                ..first.clone()
            })
            .collect();
        let mut warm = prepare(
            backend.api,
            &model,
            &warm_items,
            &a,
            &extra,
            &format!("{run_id}-warmup"),
        )?;
        for w in &mut warm {
            w.index = u64::MAX;
        }
        runner::warmup(&client, &warm).await?;
    }
    if a.flush_cache {
        for path in ["/flush_cache", "/reset_prefix_cache"] {
            let _ = client.http().post(format!("{base_url}{path}")).send().await;
        }
    }

    let (output_file, details_file) = output_paths(&a);
    let details = match &details_file {
        Some(p) => {
            if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("cannot create {}", dir.display()))?;
            }
            let f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .with_context(|| format!("cannot open {} for writing", p.display()))?;
            Some((p.clone(), std::io::BufWriter::new(f)))
        }
        None => None,
    };
    let progress = output::progress_bar(a.num_prompts as u64, a.disable_tqdm || a.json);
    let sink = BenchSink {
        tok: tok.clone(),
        details,
        progress,
        write_error: None,
    };
    let max_conc = a.max_concurrency;
    let run_cfg = RunConfig {
        max_concurrency: max_conc,
        request_rate: a.request_rate,
        burstiness: a.burstiness,
        seed: a.seed,
        warm_connections: if a.no_warm_connections {
            0
        } else {
            max_conc.unwrap_or(a.num_prompts).min(a.num_prompts)
        },
        grace: Duration::from_secs_f64(a.grace.max(0.0)),
        max_duration: a.duration.map(|d| Duration::from_secs_f64(d.max(0.0))),
    };
    let started_at = chrono::Local::now().to_rfc3339();
    let mut out = runner::run(&client, requests, &run_cfg, Box::new(sink), stop).await?;
    let tok2 = tok.clone();
    let mut records = std::mem::take(&mut out.records);
    let records = tokio::task::spawn_blocking(move || {
        retokenize(&tok2, &mut records);
        records
    })
    .await?;
    out.records = records;
    if let Some(s) = sim {
        s.stop();
    }

    let metrics = compute(&out.records, out.duration_s);
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
    if out.interrupted && !out.duration_limited {
        warnings.push(format!(
            "interrupted: {} of {} requests finished",
            out.records.len(),
            a.num_prompts
        ));
    }
    let simulated =
        a.sim.is_some() || server_info.get("simulated").and_then(|v| v.as_bool()) == Some(true);
    let accept_length = server_info
        .pointer("/internal_states/0/avg_spec_accept_length")
        .and_then(|v| v.as_f64());
    let info = RunInfo {
        backend: a.backend.clone(),
        dataset_name: a.dataset_name.clone(),
        request_rate: a.request_rate,
        burstiness: a.burstiness,
        max_concurrency: a.max_concurrency.map(|c| c as u64),
        num_prompts: a.num_prompts as u64,
        sharegpt_output_len: a.sharegpt_output_len,
        random_input_len: Some(a.random_input_len),
        random_output_len: Some(a.random_output_len),
        random_range_ratio: Some(a.random_range_ratio),
        seed: a.seed,
        model,
        base_url: base_url.clone(),
        tokenizer: tok.source.clone(),
        prompt_token_method: method.as_str().into(),
        server_info,
        simulated,
        accept_length,
        tag: a.tag.clone(),
        command_line: command_line_redacted(),
        started_at,
        interrupted: out.interrupted,
        warmup_requests: a.warmup_requests as u64,
        warmup_connections: out.warmup_connections,
        connect: out.connect,
        client_lag: out.client_lag,
        client_saturated: out.client_saturated
            || read_delay
                .late_pct
                .is_some_and(|p| p > servebench_load::monitor::LATE_READS_WARN_PCT),
        warnings,
    };
    let mut result = result_json(&info, &metrics);
    if let Some(obj) = result.as_object_mut() {
        obj.insert("client_cpu_s".into(), serde_json::json!(out.client_cpu_s));
        obj.insert(
            "http_client".into(),
            serde_json::json!(client.http_client_name()),
        );
        obj.insert(
            "timestamp_source".into(),
            serde_json::json!(client.timestamp_source()),
        );
        obj.insert(
            "p99_client_read_delay_ms".into(),
            serde_json::json!(read_delay.max.p99),
        );
        obj.insert(
            "max_client_read_delay_ms".into(),
            serde_json::json!(read_delay.max.max),
        );
        obj.insert(
            "client_late_reads_pct".into(),
            serde_json::json!(read_delay.late_pct),
        );
        obj.insert("not_finished".into(), serde_json::json!(out.not_finished));
        obj.insert("duration_limit_s".into(), serde_json::json!(a.duration));
        if let Some(d) = &details_file {
            obj.insert(
                "details_file".into(),
                serde_json::json!(d.display().to_string()),
            );
        }
        if a.output_details {
            output::add_sglang_details(obj, &out.records);
        }
    }
    output::append_result(&output_file, &result)?;
    Ok(BenchOutcome {
        result,
        metrics,
        output_file,
        details_file,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use servebench_core::stats::Summary;

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
}
