//! `servebench bench`: one load test, with `python3 -m sglang.bench_serving`'s flags. The flags map to a
//! [`BenchConfig`]; the work is [`servebench_load::bench::run_bench`].

use anyhow::{Context, Result};
use servebench_core::api::Backend;
use servebench_core::duration::Lower;
use servebench_load::bench::{seconds, BenchConfig, DatasetName, WorkloadConfig};
use servebench_load::client::{HttpClientKind, Timeouts};
use servebench_load::dataset::{PromptRule, RangeRule};
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::watch;

pub use servebench_load::bench::{details_path, BenchOutcome};

use super::output::print_bench_summary;
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
    /// Repeat the flag for several endpoints serving the same model (data-parallel replicas without a load
    /// balancer): requests are spread by --dispatch, the result keeps pooled numbers and adds `endpoints`.
    #[arg(long, value_name = "URL", action = clap::ArgAction::Append)]
    pub base_url: Vec<String>,
    /// How requests are spread over several --base-url endpoints: least-outstanding (to the endpoint with the
    /// fewest requests in flight) or round-robin (in turn).
    #[arg(
        long,
        default_value = "least-outstanding",
        value_name = "round-robin|least-outstanding"
    )]
    pub dispatch: String,
    /// Server host, used with --port when --base-url is not given.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Default as sglang.bench_serving: 8000 (vllm), 23333 (lmdeploy), 30000 for every other backend (the
    /// -chat ones included).
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
    #[arg(long, allow_negative_numbers = true, default_value_t = 0.0)]
    pub random_range_ratio: f64,
    /// sglang: U[max(int(L*r),1), L] minus the tokenizer's special tokens; vllm: U[floor(L'*(1-r)), ceil(L'*(1+r))]
    /// with L' = L minus the special tokens (vLLM's rule, r < 1).
    #[arg(long, default_value = "sglang")]
    pub range_rule: String,
    /// How random prompt text is made: exact (servebench's: real text re-tokenizing to exactly the drawn length)
    /// or sglang (sglang's own text: ShareGPT ids cut or repeated, then decoded; needs --dataset-path).
    #[arg(long, default_value = "exact", value_name = "exact|sglang")]
    pub prompt_rule: String,
    /// Requests per second (Poisson arrivals; gamma with --burstiness); inf = all at once.
    #[arg(long, allow_negative_numbers = true, default_value = "inf")]
    pub request_rate: f64,
    /// Gamma shape of inter-arrival times (1 = Poisson; < 1 burstier).
    #[arg(long, allow_negative_numbers = true, default_value_t = 1.0)]
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
    /// Open a new connection for every request and close it after, as sglang.bench_serving does: TTFT and
    /// E2E then include the connect (no warm pool, no keep-alive reuse).
    #[arg(long)]
    pub connection_per_request: bool,
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
    /// Extra HTTP headers as sglang takes them, `--header K=V [K=V ...]` (K:V also accepted; repeatable;
    /// default: none).
    #[arg(long = "header", value_name = "K=V", num_args = 1..)]
    pub headers: Vec<String>,
    /// Bearer token. Default as sglang: $OPENAI_API_KEY (sent as `Bearer KEY`), else $API_KEY (sent as the
    /// whole Authorization value). Never written to any file.
    #[arg(long)]
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
    /// Stop sending new requests after this many seconds; requests in flight get --grace seconds to finish,
    /// then they are ended and counted as not finished (default: no limit).
    #[arg(long, allow_negative_numbers = true)]
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
    /// Total time limit of one request, in seconds (sglang's is 6 h); over it the request fails with
    /// `timeout_total`.
    #[arg(
        long,
        allow_negative_numbers = true,
        default_value_t = 21600.0,
        value_name = "SECS"
    )]
    pub timeout: f64,
    /// Time limit to open a connection, in seconds (failure code `timeout_connect`).
    #[arg(
        long,
        allow_negative_numbers = true,
        default_value_t = 30.0,
        value_name = "SECS"
    )]
    pub connect_timeout: f64,
    /// Time limit from send to the first token of a streamed answer, in seconds, queueing included (failure code
    /// `timeout_ttft`). Raise it for overload runs where requests wait longer in the server's queue.
    #[arg(
        long,
        allow_negative_numbers = true,
        default_value_t = 1800.0,
        value_name = "SECS"
    )]
    pub ttft_timeout: f64,
    /// Longest gap without a byte from the server after the first token, in seconds (failure code
    /// `timeout_idle`): a stalled stream ends here.
    #[arg(
        long,
        allow_negative_numbers = true,
        default_value_t = 300.0,
        value_name = "SECS"
    )]
    pub idle_timeout: f64,
    /// Seconds to wait for requests in flight after Ctrl-C or the end of --duration; then they are ended.
    #[arg(long, allow_negative_numbers = true, default_value_t = 5.0)]
    pub grace: f64,
    /// Start the built-in simulated engine in this process and test it (optional preset name; default preset
    /// `default` when the flag is given without one). It is the server, so --base-url/--host/--port cannot be
    /// given with it.
    #[arg(
        long,
        num_args = 0..=1,
        default_missing_value = "default",
        value_name = "PRESET",
        conflicts_with_all = ["base_url", "host", "port"]
    )]
    pub sim: Option<String>,
    /// Per-request latency limits in ms, e.g. "ttft_ms=2000,tpot_ms=100,e2e_ms=60000" (vLLM's
    /// "ttft:2000 tpot:100 e2el:60000" reads the same): the result gets SLO attainment and goodput (default: none).
    #[arg(long, value_name = "SPEC")]
    pub slo: Option<String>,
    /// The share of requests that must meet --slo for the run to meet it.
    #[arg(long, default_value_t = servebench_core::slo::DEFAULT_ATTAINMENT, value_name = "SHARE")]
    pub slo_attainment: f64,
    /// Print the result JSON on stdout instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Which server is measured (JSON, set by `servebench run`): stored in the result as `measured_server`.
    #[arg(long, hide = true, value_parser = parse_json_object)]
    pub measured_server: Option<serde_json::Value>,
    /// Exit with code 3 when more than this share of requests failed (a fraction in [0, 1], e.g. 0.01).
    /// Default: only when every request failed. The result is written either way.
    #[arg(long, value_name = "FRACTION", value_parser = super::exit::parse_rate)]
    pub max_failure_rate: Option<f64>,
}

/// The SLO of `--slo SPEC` and `--slo-attainment` (none without a spec).
pub fn slo_of(spec: Option<&str>, attainment: f64) -> Result<Option<servebench_core::slo::Slo>> {
    spec.map(|s| {
        servebench_core::slo::Slo::parse(s, attainment)
            .with_context(|| format!("--slo {s:?} / --slo-attainment {attainment}"))
    })
    .transpose()
}

/// A JSON object given as a flag value.
pub fn parse_json_object(s: &str) -> std::result::Result<serde_json::Value, String> {
    match serde_json::from_str::<serde_json::Value>(s) {
        Ok(v) if v.is_object() => Ok(v),
        _ => Err("expected a JSON object".into()),
    }
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

/// `--header` values: sglang's `K=V` (split at the first `=`) or servebench's `K:V` (at the first `:`);
/// whichever separator comes first, since neither can be part of a header name.
fn parse_headers(h: &[String]) -> Result<Vec<(String, String)>> {
    h.iter()
        .map(|kv| {
            let at = kv
                .find(['=', ':'])
                .with_context(|| format!("--header '{kv}': expected K=V (or K:V)"))?;
            let (k, v) = (kv[..at].trim(), kv[at + 1..].trim());
            if k.is_empty() || v.is_empty() {
                anyhow::bail!(
                    "--header '{kv}': both the name and the value must be non-empty (K=V)"
                );
            }
            Ok((k.to_string(), v.to_string()))
        })
        .collect()
}

/// How requests authenticate, as sglang.bench_serving reads its environment.
#[derive(Debug, PartialEq, Eq)]
enum Auth {
    None,
    /// `Authorization: Bearer KEY` (--api-key, else $OPENAI_API_KEY).
    Bearer(String),
    /// `Authorization: VALUE` as given ($API_KEY when $OPENAI_API_KEY is unset or empty).
    Raw(String),
}

/// `--api-key` always wins; then sglang's order: a non-empty `OPENAI_API_KEY` as a Bearer token, else a
/// non-empty `API_KEY` as the whole Authorization value.
fn resolve_auth(flag: Option<&str>, env: impl Fn(&str) -> Option<String>) -> Auth {
    let non_empty = |v: Option<String>| v.filter(|k| !k.is_empty());
    if let Some(k) = flag.filter(|k| !k.is_empty()) {
        return Auth::Bearer(k.to_string());
    }
    if let Some(k) = non_empty(env("OPENAI_API_KEY")) {
        return Auth::Bearer(k);
    }
    match non_empty(env("API_KEY")) {
        Some(k) => Auth::Raw(k),
        None => Auth::None,
    }
}

/// The run's configuration from the flags, every number and duration checked (`BenchConfig::validate` checks
/// the rest, as `run_bench` does before anything is sent). `base_url` overrides --base-url/--host/--port (the in-process simulator's address).
pub fn config_of(a: &Args, base_url: Option<&str>) -> Result<BenchConfig> {
    let backend = Backend::parse(&a.backend)?;
    let urls: Vec<String> = match base_url {
        Some(u) => vec![u.to_string()],
        None if a.base_url.is_empty() => vec![format!(
            "http://{}:{}",
            a.host,
            a.port.unwrap_or_else(|| backend.default_port())
        )],
        None => a.base_url.clone(),
    };
    if let Some(u) = urls.iter().find(|u| u.contains(',')) {
        anyhow::bail!(
            "--base-url {}: one URL per flag; repeat --base-url for each endpoint",
            crate::secrets::redact_url(u)
        );
    }
    let mut c = BenchConfig::new(&urls[0], &a.backend)?;
    c.more_base_urls = urls[1..]
        .iter()
        .map(|u| u.trim_end_matches('/').to_string())
        .collect();
    c.dispatch = servebench_load::dispatch::Dispatch::parse(&a.dispatch)?;
    c.model = a.model.clone();
    c.served_model_name = a.served_model_name.clone();
    c.tokenizer = a.tokenizer.clone();
    c.warn_builtin_tokenizer = a.sim.is_none();
    c.workload = WorkloadConfig {
        dataset: DatasetName::parse(&a.dataset_name)?,
        dataset_path: a.dataset_path.clone(),
        num_prompts: a.num_prompts,
        sharegpt_output_len: a.sharegpt_output_len,
        sharegpt_context_len: a.sharegpt_context_len,
        random_input_len: a.random_input_len,
        random_output_len: a.random_output_len,
        random_range_ratio: a.random_range_ratio,
        range_rule: match a.range_rule.as_str() {
            "sglang" => RangeRule::Sglang,
            "vllm" => RangeRule::Vllm,
            other => anyhow::bail!("--range-rule {other}: use sglang or vllm"),
        },
        prompt_rule: PromptRule::parse(&a.prompt_rule)?,
        seed: a.seed,
    };
    c.request_rate = a.request_rate;
    c.burstiness = a.burstiness;
    c.max_concurrency = a.max_concurrency;
    c.warmup_requests = a.warmup_requests;
    c.warm_connections = !a.no_warm_connections;
    c.connection_per_request = a.connection_per_request;
    c.http_client = HttpClientKind::parse(&a.http_client)?;
    c.kernel_timestamps = !a.read_timestamps;
    c.stream = !a.disable_stream;
    c.ignore_eos = !a.disable_ignore_eos;
    c.stream_usage = !a.disable_stream_usage;
    c.extra_request_body = match &a.extra_request_body {
        Some(s) => serde_json::from_str(s)
            .with_context(|| format!("--extra-request-body is not a JSON object: {s}"))?,
        None => Default::default(),
    };
    match resolve_auth(a.api_key.as_deref(), |k| std::env::var(k).ok()) {
        Auth::None => {}
        Auth::Bearer(k) => c.api_key = Some(k),
        // Before the --header values, so that an Authorization header given there wins, as in sglang.
        Auth::Raw(v) => c.headers.push(("Authorization".into(), v)),
    }
    c.headers.extend(parse_headers(&a.headers)?);
    let output_file = a
        .output_file
        .clone()
        .unwrap_or_else(|| default_output_file(a));
    c.details_file = match &a.details_file {
        Some(p) => Some(p.clone()),
        None => a.output_details.then(|| details_path(&output_file)),
    };
    c.output_file = Some(output_file);
    c.output_details = a.output_details;
    c.duration = a
        .duration
        .map(|d| seconds("--duration", d, Lower::Positive))
        .transpose()?;
    c.flush_cache = a.flush_cache;
    c.tag = a.tag.clone();
    c.timeouts = Timeouts::from_secs(a.connect_timeout, a.ttft_timeout, a.idle_timeout, a.timeout)?;
    c.grace = seconds("--grace", a.grace, Lower::Zero)?;
    c.progress = !(a.disable_tqdm || a.json);
    c.simulated = a.sim.is_some();
    c.command_line = command_line_redacted();
    c.redact = redact_secrets;
    c.measured_server = a.measured_server.clone();
    c.slo = slo_of(a.slo.as_deref(), a.slo_attainment)?;
    Ok(c)
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
    let written = out
        .output_file
        .as_ref()
        .map_or_else(|| "stdout".to_string(), |f| f.display().to_string());
    if json {
        println!("{}", serde_json::to_string_pretty(&out.result)?);
    } else {
        print_bench_summary(&out.result, &out.metrics);
        println!("Results appended to {written}");
        if let Some(d) = &out.details_file {
            println!("Per-request records in {}", d.display());
        }
    }
    let count = |k: &str| out.result[k].as_u64().unwrap_or(0);
    let (completed, failed) = (count("completed"), count("failed"));
    if *stop_rx.borrow() {
        return Err(super::exit::Interrupted(format!(
            "{completed} requests completed and {failed} failed before Ctrl-C; results written to {written}"
        ))
        .into());
    }
    super::exit::check_failures("requests", completed, failed, max_failure_rate)
        .with_context(|| format!("results written to {written}"))?;
    Ok(())
}

/// Checks made before anything is sent, reported as bad input (exit 2): the library's
/// [`servebench_load::preflight::local`] on the configuration the flags give (every value, the URL's shape,
/// outputs writable, open files); its warnings are printed.
fn preflight(a: &Args) -> Result<()> {
    // With --sim the address is the simulator's, known only once it runs.
    let placeholder = a.sim.as_ref().map(|_| "http://127.0.0.1:1");
    let c = config_of(a, placeholder).map_err(super::exit::BadInput::from_err)?;
    for w in servebench_load::preflight::local(&c)? {
        eprintln!("warning: {w}");
    }
    Ok(())
}

/// Runs one bench from its flags (starting the in-process simulator for `--sim`) and appends its result.
pub async fn execute(a: Args, stop: watch::Receiver<bool>) -> Result<BenchOutcome> {
    // Every flag is checked before the simulator starts or anything is sent.
    config_of(&a, Some("http://127.0.0.1:1"))?.validate()?;
    let sim = match &a.sim {
        Some(preset) => Some(start_sim(
            preset,
            a.tokenizer.as_deref(),
            a.model.as_deref(),
        )?),
        None => None,
    };
    let config = config_of(&a, sim.as_ref().map(|s| s.base_url()))?;
    let out = servebench_load::bench::run_bench(&config, stop).await;
    if let Some(s) = sim {
        s.stop();
    }
    Ok(out?)
}

/// The simulator in this process (its own runtime), counting prompt tokens with the run's tokenizer.
pub fn start_sim(
    preset: &str,
    tokenizer: Option<&std::path::Path>,
    model: Option<&str>,
) -> Result<crate::sim_thread::SimThread> {
    let tok = match tokenizer {
        Some(t) => servebench_tokenize::Tokenizer::from_path(t)?,
        None => match model
            .map(std::path::Path::new)
            .filter(|p| p.join("tokenizer.json").exists())
        {
            Some(dir) => servebench_tokenize::Tokenizer::from_path(dir)?,
            None => servebench_tokenize::Tokenizer::builtin()?,
        },
    };
    let mut cfg = servebench_sim::SimConfig::preset(preset)?;
    cfg.prompt_counter = Some(Arc::new(crate::sim_counter::TokenizerCounter::new(tok)?));
    if let Some(m) = model {
        cfg.model = m.to_string();
    }
    crate::sim_thread::SimThread::start(cfg, 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Args {
        let mut argv = vec!["servebench", "bench"];
        argv.extend_from_slice(v);
        match <super::super::Cli as clap::Parser>::try_parse_from(argv)
            .unwrap()
            .command
        {
            super::super::Command::Bench(a) => *a,
            _ => unreachable!(),
        }
    }

    #[test]
    fn headers_as_sglang_and_as_before() {
        let h = |v: &[&str]| parse_headers(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(
            h(&["X-A=1", "X-B: two", "X-C=a=b:c", "X-D:e=f"]).unwrap(),
            vec![
                ("X-A".into(), "1".into()),
                ("X-B".into(), "two".into()),
                ("X-C".into(), "a=b:c".into()),
                ("X-D".into(), "e=f".into()),
            ]
        );
        assert!(h(&["nothing"]).unwrap_err().to_string().contains("K=V"));
        assert!(h(&["X-A="]).is_err());
    }

    #[test]
    fn api_key_precedence_as_sglang_with_the_flag_first() {
        let env = |o: Option<&str>, a: Option<&str>| {
            let (o, a) = (o.map(str::to_string), a.map(str::to_string));
            move |k: &str| match k {
                "OPENAI_API_KEY" => o.clone(),
                "API_KEY" => a.clone(),
                _ => None,
            }
        };
        assert_eq!(resolve_auth(None, env(None, None)), Auth::None);
        assert_eq!(
            resolve_auth(None, env(None, Some("tok"))),
            Auth::Raw("tok".into())
        );
        assert_eq!(
            resolve_auth(None, env(Some(""), Some("tok"))),
            Auth::Raw("tok".into())
        );
        assert_eq!(
            resolve_auth(None, env(Some("sk"), Some("tok"))),
            Auth::Bearer("sk".into())
        );
        assert_eq!(
            resolve_auth(Some("flag"), env(Some("sk"), Some("tok"))),
            Auth::Bearer("flag".into())
        );
    }

    #[test]
    fn flags_map_to_the_config() {
        let c = config_of(
            &args(&[
                "--backend",
                "vllm",
                "--dataset-name",
                "random",
                "--max-concurrency",
                "8",
                "--timeout",
                "2.5",
                "--tag",
                "fp8",
            ]),
            None,
        )
        .unwrap();
        assert_eq!(c.base_url, "http://127.0.0.1:8000");
        assert_eq!(c.max_concurrency, Some(8));
        assert_eq!(c.timeouts.total, std::time::Duration::from_millis(2500));
        assert_eq!(c.tag.as_deref(), Some("fp8"));
        assert_eq!(c.workload.dataset, DatasetName::Random);
    }
}
