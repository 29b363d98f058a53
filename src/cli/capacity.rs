//! `servebench capacity`: the highest concurrency (or request rate) whose runs meet an SLO, by bracketing
//! then bisecting; maps flags to `servebench_load::capacity::CapacityConfig` and prints the answer.

use anyhow::{bail, Context, Result};
use servebench_core::capacity::SearchConfig;
use servebench_load::capacity::{
    run_capacity, run_grid, CapacityConfig, CapacityOutcome, LoadAxis, PromptsPerRun, RunReport,
};
use std::path::PathBuf;
use std::time::Duration;

/// Capacity under an SLO: every `servebench bench` flag sets the runs; `--slo` is required.
#[derive(Debug, Clone, clap::Args)]
#[group(id = "capacity_args")]
pub struct Args {
    /// concurrency (closed loop) or rate (open loop: --request-rate is searched).
    #[arg(long, default_value = "concurrency", value_name = "concurrency|rate")]
    pub search: String,
    /// The first load tried.
    #[arg(long, default_value_t = 1.0)]
    pub start: f64,
    /// The largest load ever tried.
    #[arg(long, default_value_t = 1024.0)]
    pub max_load: f64,
    /// Bracketing multiplies the load by this factor.
    #[arg(long, default_value_t = 2.0)]
    pub growth: f64,
    /// Bisection stops when the bracket is narrower than this share of its lower end (concurrency: or 1 apart).
    #[arg(long, default_value_t = 0.1)]
    pub resolution: f64,
    /// Extra runs of a load whose SLO decision is within noise (95% Wilson interval holds the target).
    #[arg(long, default_value_t = 1)]
    pub max_repeats: u32,
    /// Bracketing stops (saturation) when doubling the load raised output throughput by less than this share.
    #[arg(long, default_value_t = 0.05)]
    pub min_gain: f64,
    /// Prompts per run: this many times the load (for a rate: seconds of arrivals) ...
    #[arg(long, default_value_t = 4.0)]
    pub prompts_per_load: f64,
    /// ... and at least this many.
    #[arg(long, default_value_t = 16)]
    pub min_prompts: usize,
    /// Accelerators of the deployment: GPU time = run duration x GPUs.
    #[arg(long, default_value_t = 1)]
    pub gpus: u32,
    /// Where every run's result and capacity.json go.
    #[arg(long, default_value = "capacity-results")]
    pub output_dir: PathBuf,
    /// The server's Prometheus endpoint (default: BASE_URL/metrics); queueing there stops bracketing.
    #[arg(long)]
    pub metrics_url: Option<String>,
    /// Do not scrape /metrics.
    #[arg(long)]
    pub no_metrics: bool,
    /// Seconds between /metrics scrapes.
    #[arg(long, default_value_t = 1.0)]
    pub metrics_interval: f64,
    /// Run every load of this list instead of searching ("1,2,4,8,16"): the full grid, for comparison.
    #[arg(long, value_name = "LOADS")]
    pub grid: Option<String>,
    /// Measure again even where a run's file is already there.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub bench: super::bench::Args,
}

/// The search's configuration from the flags (`base_url`: where the runs go, e.g. an in-process simulator).
pub fn config_of(a: &Args, base_url: Option<&str>) -> Result<CapacityConfig> {
    let axis = match a.search.as_str() {
        "concurrency" => LoadAxis::Concurrency,
        "rate" | "request-rate" => LoadAxis::RequestRate,
        other => bail!("--search {other:?}: use concurrency or rate"),
    };
    let mut bench = super::bench::config_of(&a.bench, base_url)?;
    let Some(slo) = bench.slo else {
        bail!("capacity needs --slo, e.g. --slo ttft_ms=2000,tpot_ms=100");
    };
    bench.progress = false;
    let metrics_url = (!a.no_metrics).then(|| {
        a.metrics_url
            .clone()
            .unwrap_or_else(|| format!("{}/metrics", bench.base_url))
    });
    let metrics_interval = servebench_load::bench::seconds(
        "--metrics-interval",
        a.metrics_interval,
        servebench_core::duration::Lower::Positive,
    )?;
    let cfg = CapacityConfig {
        bench,
        slo,
        axis,
        search: SearchConfig {
            start: a.start,
            max: a.max_load,
            integer: axis == LoadAxis::Concurrency,
            growth: a.growth,
            resolution: a.resolution,
            target: slo.attainment,
            max_repeats: a.max_repeats,
            min_gain: a.min_gain,
        },
        prompts: PromptsPerRun {
            per_load: a.prompts_per_load,
            min: a.min_prompts,
        },
        gpus: a.gpus,
        output_dir: a.output_dir.clone(),
        metrics_url,
        metrics_interval: metrics_interval.max(Duration::from_millis(10)),
        force: a.force,
    };
    cfg.validate()?;
    Ok(cfg)
}

/// Runs the search (starting the in-process simulator for `--sim`).
pub async fn execute(
    a: &Args,
    stop: tokio::sync::watch::Receiver<bool>,
    progress: impl FnMut(&RunReport),
) -> Result<CapacityOutcome> {
    config_of(a, Some("http://127.0.0.1:1"))?;
    if let Some(list) = &a.grid {
        grid_of(list)?;
    }
    let sim = match &a.bench.sim {
        Some(preset) => Some(super::bench::start_sim(
            preset,
            a.bench.tokenizer.as_deref(),
            a.bench.model.as_deref(),
        )?),
        None => None,
    };
    let cfg = config_of(a, sim.as_ref().map(|s| s.base_url()))?;
    let out = match &a.grid {
        Some(list) => run_grid(&cfg, &grid_of(list)?, stop, progress).await,
        None => run_capacity(&cfg, stop, progress).await,
    };
    if let Some(s) = sim {
        s.stop();
    }
    out.with_context(|| format!("capacity search into {}", cfg.output_dir.display()))
}

fn grid_of(list: &str) -> Result<Vec<f64>> {
    list.split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(|x| {
            x.parse::<f64>()
                .ok()
                .filter(|v| v.is_finite() && *v > 0.0)
                .with_context(|| format!("--grid: {x:?} is not a load above 0"))
        })
        .collect()
}

fn show_load(v: Option<f64>) -> String {
    v.map(|x| format!("{x}")).unwrap_or_else(|| "–".into())
}

pub fn run(a: Args) -> Result<()> {
    let rt = super::runtime()?;
    let stop = super::stop_on_ctrl_c(
        &rt,
        "finishing the current run's requests in flight, then stopping (rerun to resume)",
    );
    let json = a.bench.json;
    let out = rt.block_on(execute(&a, stop, |r| {
        if !json {
            println!(
                "load {} (run {}): {}/{} good ({:.4}), {:.1} out tok/s, {:.1} s{}{}",
                r.load,
                r.run,
                r.good,
                r.requests,
                r.attainment,
                r.output_throughput,
                r.duration_s,
                r.server_max_queued
                    .map(|q| format!(", server queue up to {q}"))
                    .unwrap_or_default(),
                if r.reused { " (done earlier)" } else { "" }
            );
        }
    }))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    let c = &out.capacity;
    println!(
        "\nSLO {} for {}% of requests",
        out.slo,
        out.slo_attainment_target * 100.0
    );
    for p in &c.points {
        println!(
            "  load {:>8}: {:>5}/{:<5} good = {:.4} [{:.4}, {:.4}] over {} run(s): {}{}",
            p.load,
            p.good,
            p.requests,
            p.attainment,
            p.low,
            p.high,
            p.runs,
            if p.meets { "meets" } else { "fails" },
            if p.within_noise {
                " (within noise)"
            } else {
                ""
            }
        );
    }
    println!(
        "{}: capacity {} (first failing: {}), stopped: {:?}; {} runs, {:.1} GPU-seconds ({} GPU(s))",
        out.mode,
        show_load(c.capacity),
        show_load(c.first_failing),
        c.stopped,
        c.runs,
        c.gpu_seconds,
        out.gpus
    );
    if out.interrupted {
        println!("interrupted: rerun the same command to resume");
    }
    println!("written: {}", out.file.display());
    Ok(())
}
