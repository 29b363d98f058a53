//! `servebench sweep`: a matrix of load tests from a plan (or flags), resumable, then the report.

use crate::sweep_plan::{Plan, Point, PromptsSpec, Rate, StopRule};
use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
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
    /// Server URL, e.g. http://127.0.0.1:30000 (default: the plan's [target] base_url).
    #[arg(long)]
    pub base_url: Option<String>,
    /// Sweep the in-process simulator (optional preset name; default preset `default` when the flag is given
    /// without one; replaces the plan's target).
    #[arg(long, num_args = 0..=1, default_missing_value = "default", value_name = "PRESET")]
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
    #[arg(long, value_parser = super::args::seconds)]
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
    /// Re-run points that already have results.
    #[arg(long)]
    pub force: bool,
    /// Print the points and exit.
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
    if a.base_url.is_some() {
        plan.target.base_url = a.base_url.clone();
        plan.target.sim = None;
    }
    if a.sim.is_some() {
        plan.target.sim = a.sim.clone();
        plan.target.base_url = None;
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
    Ok(plan)
}

/// The bench flags of one point.
pub fn bench_argv(plan: &Plan, p: &Point, base_url: &str) -> Vec<String> {
    let mut v: Vec<String> = vec!["servebench".into(), "bench".into()];
    let mut push = |k: &str, val: String| {
        v.push(k.into());
        v.push(val);
    };
    push("--backend", plan.target.backend.clone());
    push("--base-url", base_url.to_string());
    if let Some(m) = &plan.target.model {
        push("--model", m.clone());
    }
    if let Some(t) = &plan.target.tokenizer {
        push("--tokenizer", t.display().to_string());
    }
    push("--dataset-name", plan.dataset.name.clone());
    if let Some(d) = &plan.dataset.path {
        push("--dataset-path", d.display().to_string());
    }
    push("--random-input-len", p.input_len.to_string());
    push("--random-output-len", p.output_len.to_string());
    push("--random-range-ratio", p.range_ratio.to_string());
    push("--num-prompts", p.num_prompts.to_string());
    push("--max-concurrency", p.concurrency.to_string());
    push(
        "--request-rate",
        if p.request_rate.is_finite() {
            p.request_rate.to_string()
        } else {
            "inf".into()
        },
    );
    push("--seed", plan.dataset.seed.to_string());
    push("--warmup-requests", plan.run.warmup_requests.to_string());
    push("--output-file", p.file.display().to_string());
    if plan.run.output_details {
        push("--details-file", p.details_file.display().to_string());
    }
    if let Some(d) = p.duration_s {
        push("--duration", d.to_string());
    }
    if plan.run.flush_cache {
        v.push("--flush-cache".into());
    }
    v.push("--disable-tqdm".into());
    v.extend(plan.run.extra_args.iter().cloned());
    v
}

/// The result that finishes `p` in its file, if any (see [`Point::finished_by`]).
pub fn finished_result(p: &Point) -> Option<Value> {
    let text = std::fs::read_to_string(&p.file).ok()?;
    text.lines().rev().find_map(|l| {
        let v: Value = serde_json::from_str(l).ok()?;
        p.finished_by(&v).then_some(v)
    })
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
    let points = plan.points()?;
    if a.dry_run {
        for (i, p) in points.iter().enumerate() {
            println!(
                "[{}/{}] {} → {} ({} prompts)",
                i + 1,
                points.len(),
                p.label(),
                p.file.display(),
                p.num_prompts
            );
        }
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
    if !a.no_report {
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
    let sim = match &plan.target.sim {
        Some(preset) => {
            let mut cfg = servebench_sim::SimConfig::preset(preset)?;
            let tok = match &plan.target.tokenizer {
                Some(t) => servebench_tokenize::Tokenizer::from_path(t)?,
                None => servebench_tokenize::Tokenizer::builtin()?,
            };
            cfg.prompt_counter = Some(std::sync::Arc::new(crate::sim_counter::TokenizerCounter(
                std::sync::Arc::new(tok),
            )));
            if let Some(m) = &plan.target.model {
                cfg.model = m.clone();
            }
            Some(crate::sim_thread::SimThread::start(cfg, 1)?)
        }
        None => None,
    };
    let base_url = match (&sim, &plan.target.base_url) {
        (Some(s), _) => s.base_url().to_string(),
        (None, Some(u)) => u.trim_end_matches('/').to_string(),
        (None, None) => bail!("[target] needs base_url or sim"),
    };
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
            if let Some(r) = finished_result(p) {
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
        if plan.run.pause_s > 0.0 && s.run > 0 {
            tokio::time::sleep(Duration::from_secs_f64(plan.run.pause_s)).await;
        }
        if plan.run.health_check && !healthy(&base_url, api_key).await {
            let e = format!(
                "server at {base_url} not healthy (no 200 from /health or /v1/models within 60 s)"
            );
            println!("{tag}: FAILED: {e}");
            log_failure(&plan.run.output_dir, p, &e);
            s.failed += 1;
            s.requests_failed += p.num_prompts as u64;
            continue;
        }
        let _ = std::fs::remove_file(&p.details_file);
        let argv = bench_argv(plan, p, &base_url);
        let args = match <super::Cli as clap::Parser>::try_parse_from(&argv) {
            Ok(super::Cli {
                command: super::Command::Bench(b),
                ..
            }) => {
                let mut b = *b;
                if b.api_key.is_none() {
                    b.api_key = api_key.map(str::to_string);
                }
                b
            }
            Ok(_) => unreachable!("bench argv parses to bench"),
            Err(e) => bail!("plan extra_args or values are not valid bench flags: {e}"),
        };
        match super::bench::execute(args, stop.clone()).await {
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
                let e = format!("{e:#}");
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
    fn argv_carries_the_point() {
        let plan = Plan::from_toml(
            "[target]\nsim=\"fast\"\n[axes]\ninput_output=[\"64:8\"]\nconcurrency=[2]\nrange_ratio=[0.5]\n[run]\nextra_args=[\"--disable-ignore-eos\"]\n",
        )
        .unwrap();
        let p = &plan.points().unwrap()[0];
        let v = bench_argv(&plan, p, "http://x");
        let s = v.join(" ");
        assert!(
            s.contains("--random-input-len 64 --random-output-len 8 --random-range-ratio 0.5"),
            "{s}"
        );
        assert!(
            s.contains("--max-concurrency 2") && s.contains("--num-prompts 2"),
            "{s}"
        );
        assert!(s.ends_with("--disable-ignore-eos"), "{s}");
    }
}
