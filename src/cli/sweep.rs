//! `servebench sweep`: a matrix of load tests from a plan (or flags), resumable, then the report.

use crate::server_metrics;
use crate::sweep_plan::{Plan, Point, PromptsSpec, Rate, StopRule};
use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use servebench_load::bench::{run_bench, BenchConfig, DatasetName};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::watch;

/// A matrix of load tests (lengths × concurrencies × ratios), resumable; flags override the plan.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = super::exit::HELP, allow_negative_numbers = true)]
pub struct Args {
    /// Plan file (TOML). Without one, the flags below describe the sweep.
    pub plan: Option<PathBuf>,
    /// Input:output lengths, comma-separated ("3500:1500,3000:400"). Default: the plan's [axes] input_output.
    #[arg(long)]
    pub input_output: Option<String>,
    /// Concurrencies, comma-separated ("1,4,8,16"). Default: the plan's [axes] concurrency.
    #[arg(long)]
    pub concurrency: Option<String>,
    /// Range ratios, comma-separated ("0.7,0.8"). Default: the plan's, else 1.0 (exact lengths; bench's
    /// default is SGLang's 0.0).
    #[arg(long)]
    pub range_ratio: Option<String>,
    /// Request rates, comma-separated ("inf" or numbers). Default: the plan's, else inf.
    #[arg(long)]
    pub request_rate: Option<String>,
    /// Server URL, e.g. http://127.0.0.1:30000 (default: the plan's [target] base_url). Repeat the flag for
    /// several endpoints serving the same model (replaces the plan's base_url and more_base_urls).
    #[arg(long, value_name = "URL", action = clap::ArgAction::Append)]
    pub base_url: Vec<String>,
    /// How requests are spread over several endpoints: least-outstanding or round-robin (default: the plan's
    /// [target] dispatch, else least-outstanding).
    #[arg(long, value_name = "round-robin|least-outstanding")]
    pub dispatch: Option<String>,
    /// Sweep the in-process simulator (optional preset name; default preset `default` when the flag is given
    /// without one; replaces the plan's target; cannot be given with --base-url).
    #[arg(
        long,
        num_args = 0..=1,
        default_missing_value = "default",
        value_name = "PRESET",
        conflicts_with = "base_url"
    )]
    pub sim: Option<String>,
    /// As bench's --backend (default: the plan's, else sglang).
    #[arg(long)]
    pub backend: Option<String>,
    /// Model name (default: the plan's, else the first model the server lists).
    #[arg(long)]
    pub model: Option<String>,
    /// tokenizer.json file or a folder with one (default: the plan's, else the built-in SmolLM2 tokenizer).
    #[arg(long)]
    pub tokenizer: Option<PathBuf>,
    /// random | random-ids | sharegpt | custom (default: the plan's, else random).
    #[arg(long)]
    pub dataset_name: Option<String>,
    /// Dataset or text-source file, as bench's --dataset-path (default: the plan's, else none).
    #[arg(long)]
    pub dataset_path: Option<PathBuf>,
    /// Prompts per point: "concurrency", N, "4x" or "60s" (default: the plan's, else "concurrency").
    #[arg(long)]
    pub num_prompts: Option<String>,
    /// Folder of the point files and the report (default: the plan's, else sweep-results).
    #[arg(long)]
    pub output_dir: Option<PathBuf>,
    /// Tensor-parallel size, used in file names tp{N}_… (default: the plan's, else 1).
    #[arg(long)]
    pub tp: Option<u32>,
    /// Concurrency order: ascending | descending | as-listed (default: the plan's, else ascending).
    #[arg(long)]
    pub order: Option<String>,
    /// Seconds to pause between points (default: the plan's, else 0).
    #[arg(long, allow_negative_numbers = true, value_parser = super::args::seconds)]
    pub pause: Option<f64>,
    /// POST /flush_cache (SGLang) and /reset_prefix_cache (vLLM) before each point.
    #[arg(long)]
    pub flush_cache: bool,
    /// Do not wait for /health or /v1/models to answer 200 before each point.
    #[arg(long)]
    pub no_health_check: bool,
    /// Stop a series when throughput gains less than GAIN% while p99 TTFT grows more than FACTOR× ("5,2";
    /// default: the plan's, else never).
    #[arg(long, value_name = "GAIN,FACTOR")]
    pub stop_rule: Option<String>,
    /// Per-request latency limits in ms ("ttft_ms=2000,tpot_ms=100"): every point gets SLO attainment and
    /// goodput (default: the plan's [run.slo], else none).
    #[arg(long, value_name = "SPEC")]
    pub slo: Option<String>,
    /// The share of requests that must meet the SLO (default: the plan's, else 0.99).
    #[arg(long, value_name = "SHARE")]
    pub slo_attainment: Option<f64>,
    /// Re-run points that already have results.
    #[arg(long)]
    pub force: bool,
    /// Run one shard of the points: I/N with I the 0-based index (0 to N-1), or auto/N to read I from
    /// $JOB_COMPLETION_INDEX (Kubernetes Indexed Jobs). Point k (plan order) goes to shard k mod N (whole series
    /// with a stop rule). Shards may share one output folder; the report is left to `servebench report`.
    /// Default: the whole plan.
    #[arg(long, value_name = "I/N", value_parser = crate::shard::parse_flag)]
    pub shard: Option<crate::shard::Shard>,
    /// Print the points (of the shard, with --shard) and exit.
    #[arg(long)]
    pub dry_run: bool,
    /// Do not write summary.csv, charts and report.html at the end.
    #[arg(long)]
    pub no_report: bool,
    /// Bearer token (default: $OPENAI_API_KEY). Never written to any file.
    #[arg(long, env = "OPENAI_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// Exit with code 3 when more than this share of the sweep's requests failed (a fraction in [0, 1];
    /// a point that could not run counts all its requests as failed). Default: only when every request
    /// failed. Results and the report are written either way.
    #[arg(long, value_name = "FRACTION", value_parser = super::exit::parse_rate)]
    pub max_failure_rate: Option<f64>,
}

fn list<T: std::str::FromStr>(s: &str, what: &str) -> Result<Vec<T>> {
    s.split(',')
        .map(|x| x.trim())
        .filter(|x| !x.is_empty())
        .map(|x| {
            x.parse::<T>()
                .map_err(|_| anyhow::anyhow!("--{what}: cannot read {x:?}"))
        })
        .collect()
}

/// The plan from the file (if any) with the flags applied.
pub fn plan_of(a: &Args) -> Result<Plan> {
    let mut plan = match &a.plan {
        Some(p) => Plan::from_file(p)?,
        None => Plan::default(),
    };
    if let Some(s) = &a.input_output {
        plan.axes.input_output = s
            .split(',')
            .map(|x| x.trim().to_string())
            .filter(|x| !x.is_empty())
            .collect();
    }
    if let Some(s) = &a.concurrency {
        plan.axes.concurrency = list(s, "concurrency")?;
    }
    if let Some(s) = &a.range_ratio {
        plan.axes.range_ratio = list(s, "range-ratio")?;
    }
    if let Some(s) = &a.request_rate {
        plan.axes.request_rate = s
            .split(',')
            .map(|x| match x.trim() {
                "inf" => Ok(Rate::Text("inf".into())),
                n => n
                    .parse()
                    .map(Rate::Num)
                    .map_err(|_| anyhow::anyhow!("--request-rate: cannot read {n:?}")),
            })
            .collect::<Result<_>>()?;
    }
    if let Some((first, more)) = a.base_url.split_first() {
        plan.target.base_url = Some(first.clone());
        plan.target.more_base_urls = more.to_vec();
        plan.target.sim = None;
    }
    if a.sim.is_some() {
        plan.target.sim = a.sim.clone();
        plan.target.base_url = None;
        plan.target.more_base_urls.clear();
    }
    if a.dispatch.is_some() {
        plan.target.dispatch = a.dispatch.clone();
    }
    macro_rules! set {
        ($flag:expr, $field:expr) => {
            if let Some(v) = &$flag {
                $field = v.clone().into();
            }
        };
    }
    set!(a.backend, plan.target.backend);
    if a.model.is_some() {
        plan.target.model = a.model.clone();
    }
    if a.tokenizer.is_some() {
        plan.target.tokenizer = a.tokenizer.clone();
    }
    set!(a.dataset_name, plan.dataset.name);
    if a.dataset_path.is_some() {
        plan.dataset.path = a.dataset_path.clone();
    }
    if let Some(n) = &a.num_prompts {
        plan.run.num_prompts = PromptsSpec::Text(n.clone());
    }
    set!(a.output_dir, plan.run.output_dir);
    if let Some(tp) = a.tp {
        plan.run.tp = tp;
    }
    set!(a.order, plan.run.order);
    if let Some(p) = a.pause {
        plan.run.pause_s = p;
    }
    plan.run.flush_cache |= a.flush_cache;
    if a.no_health_check {
        plan.run.health_check = false;
    }
    if let Some(s) = &a.stop_rule {
        let v: Vec<f64> = list(s, "stop-rule")?;
        if v.len() != 2 {
            bail!("--stop-rule takes GAIN,FACTOR (e.g. 5,2)");
        }
        plan.run.stop_rule = Some(StopRule {
            min_throughput_gain_pct: v[0],
            ttft_p99_factor: v[1],
        });
    }
    let target = a
        .slo_attainment
        .or(plan.run.slo.map(|s| s.attainment))
        .unwrap_or(servebench_core::slo::DEFAULT_ATTAINMENT);
    if let Some(spec) = &a.slo {
        plan.run.slo = super::bench::slo_of(Some(spec), target)?;
    } else if let Some(slo) = &mut plan.run.slo {
        slo.attainment = target;
    } else if a.slo_attainment.is_some() {
        bail!("--slo-attainment needs --slo (or a [run.slo] table in the plan)");
    }
    Ok(plan)
}

/// The bench configuration shared by every point: the plan's `extra_args` read as `servebench bench` flags
/// (checked once, before the first point), the target, the dataset and the run settings. The point's own
/// values are set by [`point_config`].
pub fn base_config(plan: &Plan, base_url: &str, api_key: Option<&str>) -> Result<BenchConfig> {
    let mut argv: Vec<String> = vec!["servebench".into(), "bench".into()];
    argv.extend(plan.run.extra_args.iter().cloned());
    let args = match <super::Cli as clap::Parser>::try_parse_from(&argv) {
        Ok(super::Cli {
            command: super::Command::Bench(b),
            ..
        }) => *b,
        Ok(_) => bail!("[run] extra_args must be `servebench bench` flags"),
        Err(e) => bail!("[run] extra_args are not valid `servebench bench` flags: {e}"),
    };
    let mut c = super::bench::config_of(&args, Some(base_url))?;
    if plan.target.sim.is_none() {
        c.more_base_urls = plan
            .target
            .more_base_urls
            .iter()
            .map(|u| u.trim_end_matches('/').to_string())
            .collect();
    }
    if let Some(d) = &plan.target.dispatch {
        c.dispatch = servebench_load::dispatch::Dispatch::parse(d)
            .with_context(|| "[target] dispatch".to_string())?;
    }
    c.backend = servebench_core::api::Backend::parse(&plan.target.backend)?;
    c.backend_name = plan.target.backend.clone();
    c.model = plan.target.model.clone();
    c.tokenizer = plan.target.tokenizer.clone();
    c.warn_builtin_tokenizer = plan.target.sim.is_none();
    c.simulated = plan.target.sim.is_some();
    c.workload.dataset = DatasetName::parse(&plan.dataset.name)?;
    c.workload.dataset_path = plan.dataset.path.clone();
    c.workload.seed = plan.dataset.seed;
    c.warmup_requests = plan.run.warmup_requests;
    c.flush_cache |= plan.run.flush_cache;
    c.progress = false;
    c.tensor_parallel = Some(plan.run.tp);
    if plan.run.slo.is_some() {
        c.slo = plan.run.slo;
    }
    // The sweep's --api-key (itself defaulting to $OPENAI_API_KEY) wins over the environment seen by bench.
    if let Some(k) = api_key {
        c.api_key = Some(k.to_string());
    }
    // The point file is written by the sweep (one JSON object per file).
    c.output_file = None;
    c.output_details = false;
    c.validate()?;
    Ok(c)
}

/// The configuration of one point.
pub fn point_config(base: &BenchConfig, plan: &Plan, p: &Point) -> BenchConfig {
    let mut c = base.clone();
    c.workload.random_input_len = p.input_len;
    c.workload.random_output_len = p.output_len;
    c.workload.random_range_ratio = p.range_ratio;
    c.workload.num_prompts = p.num_prompts;
    c.max_concurrency = Some(p.concurrency);
    c.request_rate = p.request_rate;
    c.details_file = plan.run.output_details.then(|| p.details_file.clone());
    c.duration = p.duration;
    c
}

/// Writes a point's result as the seed's layout expects: the file holds exactly one JSON object (replaced
/// whole, through a temporary file, so a kill leaves either the old or the new result).
pub fn write_point(path: &Path, result: &Value) -> Result<()> {
    let tmp = path.with_extension("json.tmp");
    let mut text = serde_json::to_vec(result)?;
    text.push(b'\n');
    std::fs::write(&tmp, &text).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// The result that finishes `p` in its file, if any (see [`Point::finished_by`]).
pub fn finished_result(p: &Point) -> Option<Value> {
    let text = std::fs::read_to_string(&p.file).ok()?;
    text.lines().rev().find_map(|l| {
        let v: Value = serde_json::from_str(l).ok()?;
        p.finished_by(&v).then_some(v)
    })
}

/// A finished point counts as done only when it was judged against the plan's SLO (or the plan has none).
pub fn judged_alike(plan: &Plan, r: &Value) -> bool {
    match &plan.run.slo {
        None => true,
        Some(slo) => {
            r["slo"].as_str() == Some(slo.spec().as_str())
                && r["slo_attainment_target"].as_f64() == Some(slo.attainment)
        }
    }
}

/// True when the stop rule says the series is past its knee.
pub fn saturated(rule: &StopRule, prev: &Value, cur: &Value) -> bool {
    let (Some(t0), Some(t1)) = (
        prev["output_throughput"].as_f64(),
        cur["output_throughput"].as_f64(),
    ) else {
        return false;
    };
    let (Some(l0), Some(l1)) = (prev["p99_ttft_ms"].as_f64(), cur["p99_ttft_ms"].as_f64()) else {
        return false;
    };
    t0 > 0.0
        && l0 > 0.0
        && (t1 - t0) / t0 * 100.0 < rule.min_throughput_gain_pct
        && l1 > rule.ttft_p99_factor * l0
}

/// The first endpoint that is not healthy (every endpoint is checked, in order), if any.
async fn first_unhealthy(urls: &[String], api_key: Option<&str>) -> Option<String> {
    for u in urls {
        if !healthy(u, api_key).await {
            return Some(u.clone());
        }
    }
    None
}

async fn healthy(base_url: &str, api_key: Option<&str>) -> bool {
    servebench_load::ensure_tls_provider();
    let http = reqwest::Client::new();
    for _ in 0..60 {
        for path in ["/health", "/v1/models"] {
            let mut req = http
                .get(format!("{base_url}{path}"))
                .timeout(Duration::from_secs(5));
            if let Some(k) = api_key {
                req = req.bearer_auth(k);
            }
            if let Ok(r) = req.send().await {
                if r.status().is_success() {
                    return true;
                }
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    false
}

fn log_failure(dir: &Path, p: &Point, err: &str) {
    let line = json!({"point": p.label(), "file": p.file.display().to_string(), "concurrency": p.concurrency,
                      "error": err, "time": chrono::Local::now().to_rfc3339()});
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("sweep_failures.jsonl"))
    {
        let _ = writeln!(f, "{line}");
    }
}

pub fn run(a: Args) -> Result<()> {
    let plan = plan_of(&a).map_err(super::exit::BadInput::from_err)?;
    let all = plan.points()?;
    let shard = a.shard.unwrap_or(crate::shard::Shard::ALL);
    let points = plan.shard_points(&all, shard);
    if !shard.is_all() {
        println!(
            "shard {shard}: {} of the plan's {} points",
            points.len(),
            all.len()
        );
    }
    if a.dry_run {
        for (i, p) in points.iter().enumerate() {
            // Sharded: also the point's 0-based place k in the whole plan (the k of the rule "k mod N").
            let whole = if shard.is_all() {
                String::new()
            } else {
                let k = all.iter().position(|q| q.file == p.file).unwrap_or(0);
                format!(" (plan point k={k} of {})", all.len())
            };
            println!(
                "[{}/{}]{whole} {} → {} ({} prompts)",
                i + 1,
                points.len(),
                p.label(),
                p.file.display(),
                p.num_prompts
            );
        }
        return Ok(());
    }
    if points.is_empty() {
        println!("shard {shard}: nothing to run (more shards than points)");
        return Ok(());
    }
    preflight(&plan, &points)?;
    std::fs::create_dir_all(&plan.run.output_dir)
        .with_context(|| format!("cannot create {}", plan.run.output_dir.display()))?;
    let rt = super::runtime()?;
    let stop_rx = super::stop_on_ctrl_c(&rt, "finishing the current point's requests in flight, then stopping the sweep (rerun to resume)");
    let summary = rt.block_on(sweep(
        &plan,
        &points,
        a.force,
        a.api_key.as_deref(),
        stop_rx,
    ))?;
    println!(
        "sweep: {} points run ({} with every request failed), {} already done, {} skipped by the stop rule, {} failed",
        summary.run, summary.all_failed, summary.done, summary.skipped, summary.failed
    );
    if !shard.is_all() {
        // Other shards may be writing into the same folder: the report is written once, after all of them.
        println!(
            "report: not written by a shard; when every shard is done: servebench report {} [OTHER SHARD FOLDERS…]",
            plan.run.output_dir.display()
        );
    } else if !a.no_report {
        let out = plan.run.output_dir.clone();
        let collection = servebench_report::collect(std::slice::from_ref(&out))?;
        let opts = servebench_report::ReportOptions {
            out_dir: out.clone(),
            ..Default::default()
        };
        let written = servebench_report::write_report(&collection, &opts)?;
        for note in &written.notes {
            eprintln!("note: {note}");
        }
        println!("report: {}", out.join("report.html").display());
    }
    if summary.interrupted {
        return Err(super::exit::Interrupted("rerun the same command to resume".into()).into());
    }
    super::exit::check_failures(
        "requests",
        summary.requests_ok,
        summary.requests_failed,
        a.max_failure_rate,
    )?;
    Ok(())
}

/// Checks made before anything is sent: the output folder and every point's files can be written, and the
/// open-file limit allows the largest concurrency.
fn preflight(plan: &Plan, points: &[Point]) -> Result<()> {
    use servebench_load::outpath::ensure_writable_file;
    servebench_load::outpath::ensure_writable_dir(&plan.run.output_dir)?;
    for p in points {
        ensure_writable_file(&p.file)?;
        if plan.run.output_details {
            ensure_writable_file(&p.details_file)?;
        }
    }
    let conns = points
        .iter()
        .map(|p| p.concurrency.min(p.num_prompts) as u64)
        .max()
        .unwrap_or(0);
    let need = servebench_load::nofile::needed(conns, plan.target.sim.is_some());
    servebench_load::nofile::ensure(need, "the largest concurrency", conns)?;
    Ok(())
}

/// A client for the server's `/metrics` when it answers at the start of the sweep; otherwise says once that no
/// server-side series will be recorded.
async fn metrics_client(base_url: &str, api_key: Option<&str>) -> Option<reqwest::Client> {
    let found = match server_metrics::client(api_key) {
        Ok(c) => server_metrics::probe(&c, base_url).await.map(|_| c),
        Err(e) => Err(e),
    };
    match found {
        Ok(c) => {
            println!(
                "server metrics: scraping {}/metrics every {} s during each point",
                crate::secrets::redact_url(base_url),
                server_metrics::INTERVAL.as_secs()
            );
            Some(c)
        }
        Err(e) => {
            println!(
                "server metrics: the server has none ({}); no server-side series are recorded",
                crate::secrets::redact_url(&e)
            );
            None
        }
    }
}

#[derive(Debug, Default)]
pub struct SweepSummary {
    pub run: usize,
    /// Points run whose every request failed (also in `run`: they are done, with their failures).
    pub all_failed: usize,
    /// Requests of the points run now: completed, and failed (with every request of a point that could not
    /// run).
    pub requests_ok: u64,
    pub requests_failed: u64,
    pub done: usize,
    pub skipped: usize,
    pub failed: usize,
    pub interrupted: bool,
}

/// Runs the points (skipping finished ones unless `force`).
pub async fn sweep(
    plan: &Plan,
    points: &[Point],
    force: bool,
    api_key: Option<&str>,
    stop: watch::Receiver<bool>,
) -> Result<SweepSummary> {
    // The plan's bench flags are checked before anything starts.
    base_config(plan, "http://127.0.0.1:1", api_key)?;
    let sim = match &plan.target.sim {
        Some(preset) => Some(super::bench::start_sim(
            preset,
            plan.target.tokenizer.as_deref(),
            plan.target.model.as_deref(),
        )?),
        None => None,
    };
    let base_url = match (&sim, &plan.target.base_url) {
        (Some(s), _) => s.base_url().to_string(),
        (None, Some(u)) => u.trim_end_matches('/').to_string(),
        (None, None) => bail!("[target] needs base_url or sim"),
    };
    let base = base_config(plan, &base_url, api_key)?;
    let to_run = |p: &Point| {
        force
            || finished_result(p)
                .filter(|r| judged_alike(plan, r))
                .is_none()
    };
    if sim.is_none() && points.iter().any(to_run) {
        // A server that is not there at all (refused, TLS to a plain port, …) is said at once, before the
        // first point, instead of after the health check's minute per point.
        servebench_load::ensure_tls_provider();
        let http = reqwest::Client::new();
        servebench_load::preflight::probe(&http, &base_url, base.api_key.as_deref()).await?;
    }
    let metrics = metrics_client(&base_url, base.api_key.as_deref()).await;
    let pause = plan.pause()?;
    let mut s = SweepSummary::default();
    let mut prev: Option<(usize, Value)> = None;
    let mut saturated_groups = std::collections::HashSet::new();
    let total = points.len();
    for (i, p) in points.iter().enumerate() {
        if *stop.borrow() {
            s.interrupted = true;
            break;
        }
        let tag = format!("[{}/{}] {}", i + 1, total, p.label());
        if !force {
            if let Some(r) = finished_result(p).filter(|r| judged_alike(plan, r)) {
                println!("{tag}: done earlier ({})", p.file.display());
                s.done += 1;
                prev = Some((p.group, r));
                continue;
            }
        }
        if saturated_groups.contains(&p.group) {
            println!("{tag}: skipped (the series saturated at a lower concurrency)");
            s.skipped += 1;
            continue;
        }
        if !pause.is_zero() && s.run > 0 {
            tokio::time::sleep(pause).await;
        }
        let sick = match plan.run.health_check {
            true => first_unhealthy(&base.endpoints(), api_key).await,
            false => None,
        };
        if let Some(url) = sick {
            let e = format!(
                "server at {} not healthy (no 200 from /health or /v1/models within 60 s)",
                crate::secrets::redact_url(&url)
            );
            println!("{tag}: FAILED: {e}");
            log_failure(&plan.run.output_dir, p, &e);
            s.failed += 1;
            s.requests_failed += p.num_prompts as u64;
            continue;
        }
        let _ = std::fs::remove_file(&p.details_file);
        let config = point_config(&base, plan, p);
        let scrape = metrics
            .as_ref()
            .map(|c| server_metrics::PointScrape::start(c, &base_url));
        let outcome = run_bench(&config, stop.clone()).await;
        if let Some(scrape) = scrape {
            let m = scrape.finish(p.label(), &p.file).await;
            let path = server_metrics::file_for(&p.details_file);
            if let Err(e) = server_metrics::write(&path, &m) {
                eprintln!("{tag}: warning: cannot write {}: {e}", path.display());
            }
        }
        let outcome = match outcome {
            Ok(out) => write_point(&p.file, &out.result).map(|_| out),
            Err(e) => Err(e.into()),
        };
        match outcome {
            Ok(out) => {
                s.run += 1;
                let r = &out.result;
                let (ok, failed) = (
                    r["completed"].as_u64().unwrap_or(0),
                    r["failed"].as_u64().unwrap_or(0),
                );
                s.requests_ok += ok;
                s.requests_failed += failed;
                if ok == 0 && failed > 0 {
                    s.all_failed += 1;
                }
                println!(
                    "{tag}: {} ok, {} failed, {:.1} out tok/s, TTFT p50 {:.1} ms, TPOT p50 {:.2} ms",
                    r["completed"], r["failed"],
                    r["output_throughput"].as_f64().unwrap_or(0.0),
                    r["median_ttft_ms"].as_f64().unwrap_or(f64::NAN),
                    r["median_tpot_ms"].as_f64().unwrap_or(f64::NAN),
                );
                if r["interrupted"] == json!(true) && r["duration_limit_s"].is_null() {
                    s.interrupted = true;
                    break;
                }
                if let (Some(rule), Some((g, pr))) = (&plan.run.stop_rule, &prev) {
                    if *g == p.group && saturated(rule, pr, r) {
                        println!("{tag}: saturated (stop rule); higher concurrencies of this series are skipped");
                        saturated_groups.insert(p.group);
                    }
                }
                prev = Some((p.group, out.result));
            }
            Err(e) => {
                let e = super::exit::message(&e);
                println!("{tag}: FAILED: {e}");
                log_failure(&plan.run.output_dir, p, &e);
                s.failed += 1;
                s.requests_failed += p.num_prompts as u64;
            }
        }
    }
    if let Some(sim) = sim {
        sim.stop();
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_rule_needs_both_flat_throughput_and_exploding_ttft() {
        let rule = StopRule {
            min_throughput_gain_pct: 5.0,
            ttft_p99_factor: 2.0,
        };
        let a = json!({"output_throughput": 1000.0, "p99_ttft_ms": 100.0});
        assert!(saturated(
            &rule,
            &a,
            &json!({"output_throughput": 1020.0, "p99_ttft_ms": 250.0})
        ));
        assert!(!saturated(
            &rule,
            &a,
            &json!({"output_throughput": 1200.0, "p99_ttft_ms": 250.0})
        ));
        assert!(!saturated(
            &rule,
            &a,
            &json!({"output_throughput": 1020.0, "p99_ttft_ms": 150.0})
        ));
    }

    #[test]
    fn a_point_is_done_once_its_file_holds_a_finished_result_even_all_failed() {
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "[target]\nsim=\"fast\"\n[axes]\ninput_output=[\"64:8\"]\nconcurrency=[2]\nrange_ratio=[0.5]\n[run]\noutput_dir={:?}\n",
            dir.path().display().to_string()
        );
        let plan = Plan::from_toml(&text).unwrap();
        let p = &plan.points().unwrap()[0];
        assert!(p.file.ends_with("tp2_in64_out8_ratio0.5.json"));
        assert!(finished_result(p).is_none());
        let mut r = json!({"max_concurrency": 2, "random_input_len": 64, "random_output_len": 8,
            "random_range_ratio": 0.5, "request_rate": "inf", "interrupted": true, "completed": 1, "failed": 0});
        write_point(&p.file, &r).unwrap();
        assert!(finished_result(p).is_none(), "interrupted: run again");
        r["interrupted"] = json!(false);
        r["completed"] = json!(0);
        r["failed"] = json!(2);
        write_point(&p.file, &r).unwrap();
        assert_eq!(
            finished_result(p),
            Some(r.clone()),
            "all failed: done, with its failures"
        );
        let text = std::fs::read_to_string(&p.file).unwrap();
        assert_eq!(text.lines().count(), 1, "one object, replaced whole");
        assert!(!p.file.with_extension("json.tmp").exists());
    }

    #[test]
    fn the_point_sets_its_own_values_and_extra_args_the_rest() {
        let plan = Plan::from_toml(
            "[target]\nsim=\"fast\"\n[axes]\ninput_output=[\"64:8\"]\nconcurrency=[2]\nrange_ratio=[0.5]\n[run]\ntp=4\nextra_args=[\"--disable-ignore-eos\", \"--timeout\", \"30\"]\n",
        )
        .unwrap();
        let p = &plan.points().unwrap()[0];
        let base = base_config(&plan, "http://x:1", Some("k")).unwrap();
        let c = point_config(&base, &plan, p);
        assert_eq!(
            (c.workload.random_input_len, c.workload.random_output_len),
            (64, 8)
        );
        assert_eq!(c.workload.random_range_ratio, 0.5);
        assert_eq!((c.max_concurrency, c.workload.num_prompts), (Some(2), 2));
        assert!(!c.ignore_eos);
        assert_eq!(c.timeouts.total, Duration::from_secs(30));
        assert_eq!(c.api_key.as_deref(), Some("k"));
        assert_eq!(c.tensor_parallel, Some(4));
        assert!(c.simulated);
        let bad = Plan::from_toml(
            "[target]\nsim=\"fast\"\n[axes]\ninput_output=[\"64:8\"]\nconcurrency=[2]\n[run]\nextra_args=[\"--timeout\", \"inf\"]\n",
        )
        .unwrap();
        let e = base_config(&bad, "http://x:1", None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("--timeout inf"), "{e}");
    }
}
