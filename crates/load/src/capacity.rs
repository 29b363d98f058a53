//! `servebench capacity` as a library: the highest load (closed-loop concurrency or open-loop request
//! rate) whose runs meet an SLO, found by [`servebench_core::capacity::CapacitySearch`] (bracket, then
//! bisect, repeat a decision within noise) with one [`run_bench`] per proposed load.
//!
//! Each run's result goes to its own file in the output folder (`c{C}_run{K}.json` or
//! `r{RATE}_run{K}.json`, one JSON object, per-request records next to it), so a rerun with the same SLO
//! reuses what is there (resumable). While a run lasts, the server's `/metrics` is scraped; a queue seen
//! there (`sglang:num_queue_reqs`, `vllm:num_requests_waiting` above 0) is passed to the search as
//! queueing, which stops bracketing. `capacity.json` states the capacity, its bracket, the stop reason,
//! every point decided and the GPU time spent (run duration × GPUs).

use crate::bench::{run_bench, BenchConfig};
use crate::prometheus::scrape;
use crate::LoadError;
use serde::Serialize;
use serde_json::{json, Value};
use servebench_core::capacity::{Capacity, CapacitySearch, Observation, SearchConfig};
use servebench_core::slo::Slo;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::watch;

/// Which load is searched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LoadAxis {
    /// Closed loop: `max_concurrency`, requests sent as fast as permits allow.
    Concurrency,
    /// Open loop: `request_rate` (requests/s), the configured concurrency limit (if any) kept.
    RequestRate,
}

/// How many prompts one run sends: `max(min, ceil(per_load × load))` (for a rate: per_load seconds of
/// arrivals).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PromptsPerRun {
    pub per_load: f64,
    pub min: usize,
}

impl PromptsPerRun {
    pub fn at(&self, load: f64) -> usize {
        let n = (self.per_load * load).ceil();
        if (0.0..1e9).contains(&n) {
            (n as usize).max(self.min).max(1)
        } else {
            self.min.max(1)
        }
    }
}

/// The whole search, configured.
#[derive(Debug, Clone)]
pub struct CapacityConfig {
    /// Every run's settings; the load, prompt count, output files and SLO are set per run.
    pub bench: BenchConfig,
    pub slo: Slo,
    pub axis: LoadAxis,
    pub search: SearchConfig,
    pub prompts: PromptsPerRun,
    /// Accelerators the deployment uses: GPU time = run duration × gpus.
    pub gpus: u32,
    pub output_dir: PathBuf,
    /// `/metrics` scraped during each run (None: no queue signal).
    pub metrics_url: Option<String>,
    pub metrics_interval: Duration,
    /// Measure again even where a finished run's file is there.
    pub force: bool,
}

/// One run of the search.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub load: f64,
    /// 1 for the first run at this load, 2 for its repeat, …
    pub run: u32,
    pub file: PathBuf,
    pub reused: bool,
    pub requests: u64,
    pub good: u64,
    pub attainment: f64,
    pub output_throughput: f64,
    pub duration_s: f64,
    pub gpu_seconds: f64,
    pub server_max_queued: Option<f64>,
}

/// What the search found.
#[derive(Debug, Clone, Serialize)]
pub struct CapacityOutcome {
    /// `search` (bracket and bisect) or `grid` (every listed load, for comparison).
    pub mode: &'static str,
    pub axis: LoadAxis,
    pub slo: String,
    pub slo_attainment_target: f64,
    pub gpus: u32,
    #[serde(flatten)]
    pub capacity: Capacity,
    pub run_log: Vec<RunReport>,
    /// The search stopped early (Ctrl-C); a rerun resumes.
    pub interrupted: bool,
    pub file: PathBuf,
}

impl CapacityConfig {
    pub fn validate(&self) -> Result<(), LoadError> {
        self.slo
            .validate()
            .map_err(|e| LoadError::Config(format!("--slo: {e}")))?;
        let mut search = self.search;
        search.target = self.slo.attainment;
        search.integer = self.axis == LoadAxis::Concurrency;
        search
            .validate()
            .map_err(|e| LoadError::Config(e.to_string()))?;
        if self.gpus == 0 {
            return Err(LoadError::Config("--gpus 0: use 1 or more".into()));
        }
        if !(self.prompts.per_load.is_finite() && self.prompts.per_load >= 0.0) {
            return Err(LoadError::Config(
                "prompts per load must be a finite number ≥ 0 (e.g. 4x)".into(),
            ));
        }
        if self.prompts.per_load == 0.0 && self.prompts.min == 0 {
            return Err(LoadError::Config(
                "every run needs prompts: give a per-load factor or a minimum".into(),
            ));
        }
        Ok(())
    }

    fn run_file(&self, load: f64, run: u32) -> PathBuf {
        let name = match self.axis {
            LoadAxis::Concurrency => format!("c{}_run{run}.json", load as u64),
            LoadAxis::RequestRate => format!("r{}_run{run}.json", rate_name(load)),
        };
        self.output_dir.join(name)
    }

    /// The bench configuration of one run.
    pub fn run_config(&self, load: f64, run: u32) -> BenchConfig {
        let mut c = self.bench.clone();
        match self.axis {
            LoadAxis::Concurrency => c.max_concurrency = Some(load as usize),
            LoadAxis::RequestRate => c.request_rate = load,
        }
        c.workload.num_prompts = self.prompts.at(load);
        c.slo = Some(self.slo);
        c.output_file = None;
        c.output_details = false;
        c.details_file = Some(crate::bench::details_path(&self.run_file(load, run)));
        c
    }
}

/// A rate as a file-name part: `2.5` → `2.5`, `0.125` → `0.125`.
fn rate_name(r: f64) -> String {
    let s = format!("{r:.6}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// The observation a finished run's result gives (None when the result is not one of this search).
fn observation(cfg: &CapacityConfig, load: f64, r: &Value) -> Option<(Observation, RunReport)> {
    if r["interrupted"] == json!(true)
        || r["slo"].as_str() != Some(cfg.slo.spec().as_str())
        || r["slo_attainment_target"].as_f64() != Some(cfg.slo.attainment)
    {
        return None;
    }
    let same_load = match cfg.axis {
        LoadAxis::Concurrency => r["max_concurrency"].as_f64() == Some(load),
        LoadAxis::RequestRate => r["request_rate"]
            .as_f64()
            .is_some_and(|x| (x - load).abs() <= 1e-9 * load.max(1.0)),
    };
    if !same_load {
        return None;
    }
    let requests = r["slo_requests"].as_u64()?;
    let good = r["slo_good_requests"].as_u64()?;
    let duration_s = r["duration"].as_f64()?;
    let output_throughput = r["output_throughput"].as_f64().unwrap_or(0.0);
    let queued = r["server_max_queued"].as_f64();
    let gpu_seconds = duration_s * f64::from(cfg.gpus);
    let o = Observation {
        load,
        requests,
        good,
        throughput: output_throughput,
        queued: queued.is_some_and(|q| q > 0.0),
        gpu_seconds,
    };
    let report = RunReport {
        load,
        run: 0,
        file: PathBuf::new(),
        reused: false,
        requests,
        good,
        attainment: r["slo_attainment"].as_f64().unwrap_or(0.0),
        output_throughput,
        duration_s,
        gpu_seconds,
        server_max_queued: queued,
    };
    Some((o, report))
}

fn read_result(path: &Path) -> Option<Value> {
    let text = std::fs::read_to_string(path).ok()?;
    serde_json::from_str(text.trim()).ok()
}

/// Writes one JSON value whole (through a temporary file).
fn write_json(path: &Path, v: &Value) -> Result<(), LoadError> {
    let err = |source| LoadError::Write {
        path: path.display().to_string(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    let tmp = path.with_extension("json.tmp");
    let text = serde_json::to_string_pretty(v).unwrap_or_else(|_| "{}".into());
    std::fs::write(&tmp, text + "\n").map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)
}

/// One run at `load`, with `/metrics` scraped while it lasts; the result gets `server_max_queued`.
async fn measure(
    cfg: &CapacityConfig,
    load: f64,
    run: u32,
    stop: watch::Receiver<bool>,
) -> Result<Value, LoadError> {
    let c = cfg.run_config(load, run);
    let _ = std::fs::remove_file(c.details_file.as_deref().unwrap_or(Path::new("")));
    let (scrape_stop, scrape_rx) = watch::channel(false);
    let scraper = cfg.metrics_url.clone().map(|url| {
        crate::ensure_tls_provider();
        tokio::spawn(scrape(
            reqwest::Client::new(),
            url,
            cfg.metrics_interval,
            scrape_rx,
        ))
    });
    let outcome = run_bench(&c, stop).await;
    let _ = scrape_stop.send(true);
    let series = match scraper {
        Some(h) => h.await.ok(),
        None => None,
    };
    let mut result = outcome?.result;
    if let Some(obj) = result.as_object_mut() {
        let q = series.as_ref().and_then(|s| s.max_queued());
        obj.insert("server_max_queued".into(), json!(q));
        obj.insert("capacity_run".into(), json!(run));
    }
    write_json(&cfg.run_file(load, run), &result)?;
    Ok(result)
}

/// One run at `load` (its `run`-th), reusing a finished file of the same SLO unless `force`; `None` when
/// the run was interrupted.
async fn one_run(
    cfg: &CapacityConfig,
    load: f64,
    run: u32,
    stop: &watch::Receiver<bool>,
) -> Result<Option<(Observation, RunReport)>, LoadError> {
    let file = cfg.run_file(load, run);
    let earlier = (!cfg.force)
        .then(|| read_result(&file))
        .flatten()
        .and_then(|r| observation(cfg, load, &r));
    let (obs, mut report, reused) = match earlier {
        Some((o, r)) => (o, r, true),
        None => {
            let result = measure(cfg, load, run, stop.clone()).await?;
            if result["interrupted"] == json!(true) {
                return Ok(None);
            }
            let (o, r) = observation(cfg, load, &result).ok_or_else(|| {
                LoadError::Config(format!(
                    "the run at {load} gave no SLO counts ({})",
                    file.display()
                ))
            })?;
            (o, r, false)
        }
    };
    report.run = run;
    report.file = file;
    report.reused = reused;
    Ok(Some((obs, report)))
}

/// Every load of `grid` once (the full sweep a capacity search replaces), decided by the same rule:
/// the capacity is the highest load meeting the SLO below the first that fails.
pub async fn run_grid(
    cfg: &CapacityConfig,
    grid: &[f64],
    stop: watch::Receiver<bool>,
    mut progress: impl FnMut(&RunReport),
) -> Result<CapacityOutcome, LoadError> {
    cfg.validate()?;
    cfg.bench.validate()?;
    let whole = cfg.axis == LoadAxis::RequestRate || grid.iter().all(|l| l.fract() == 0.0);
    if grid.is_empty() || !whole || grid.iter().any(|l| !(l.is_finite() && *l > 0.0)) {
        return Err(LoadError::Config(
            "--grid: list loads above 0 (whole numbers for concurrency), e.g. 1,2,4,8".into(),
        ));
    }
    let mut search_cfg = cfg.search;
    search_cfg.target = cfg.slo.attainment;
    search_cfg.integer = cfg.axis == LoadAxis::Concurrency;
    search_cfg.start = search_cfg
        .start
        .min(grid.iter().copied().fold(f64::INFINITY, f64::min));
    let mut search =
        CapacitySearch::new(search_cfg).map_err(|e| LoadError::Config(e.to_string()))?;
    let mut log = Vec::new();
    let mut interrupted = false;
    for &load in grid {
        if *stop.borrow() {
            interrupted = true;
            break;
        }
        let Some((obs, report)) = one_run(cfg, load, 1, &stop).await? else {
            interrupted = true;
            break;
        };
        search.record(obs);
        progress(&report);
        log.push(report);
    }
    let mut capacity = search.finish();
    capacity.stopped = if capacity.first_failing.is_some() {
        servebench_core::capacity::StopReason::Converged
    } else {
        servebench_core::capacity::StopReason::MaxReached
    };
    let outcome = CapacityOutcome {
        mode: "grid",
        axis: cfg.axis,
        slo: cfg.slo.spec(),
        slo_attainment_target: cfg.slo.attainment,
        gpus: cfg.gpus,
        capacity,
        run_log: log,
        interrupted,
        file: cfg.output_dir.join("capacity.json"),
    };
    let v = serde_json::to_value(&outcome).map_err(|e| LoadError::Config(e.to_string()))?;
    write_json(&outcome.file, &v)?;
    Ok(outcome)
}

/// Runs the search; `progress` is called after every run.
pub async fn run_capacity(
    cfg: &CapacityConfig,
    stop: watch::Receiver<bool>,
    mut progress: impl FnMut(&RunReport),
) -> Result<CapacityOutcome, LoadError> {
    cfg.validate()?;
    cfg.bench.validate()?;
    let mut search_cfg = cfg.search;
    search_cfg.target = cfg.slo.attainment;
    search_cfg.integer = cfg.axis == LoadAxis::Concurrency;
    let mut search =
        CapacitySearch::new(search_cfg).map_err(|e| LoadError::Config(e.to_string()))?;
    let mut log: Vec<RunReport> = Vec::new();
    let mut interrupted = false;
    while let Some(load) = search.next_load() {
        if *stop.borrow() {
            interrupted = true;
            break;
        }
        let run = 1 + log.iter().filter(|r| r.load == load).count() as u32;
        let Some((obs, report)) = one_run(cfg, load, run, &stop).await? else {
            interrupted = true;
            break;
        };
        search.record(obs);
        progress(&report);
        log.push(report);
    }
    let outcome = CapacityOutcome {
        mode: "search",
        axis: cfg.axis,
        slo: cfg.slo.spec(),
        slo_attainment_target: cfg.slo.attainment,
        gpus: cfg.gpus,
        capacity: search.finish(),
        run_log: log,
        interrupted,
        file: cfg.output_dir.join("capacity.json"),
    };
    let v = serde_json::to_value(&outcome).map_err(|e| LoadError::Config(e.to_string()))?;
    write_json(&outcome.file, &v)?;
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(axis: LoadAxis) -> CapacityConfig {
        CapacityConfig {
            bench: BenchConfig::new("http://127.0.0.1:1", "sglang").unwrap(),
            slo: Slo::parse("ttft_ms=100", 0.9).unwrap(),
            axis,
            search: SearchConfig::default(),
            prompts: PromptsPerRun {
                per_load: 4.0,
                min: 10,
            },
            gpus: 8,
            output_dir: PathBuf::from("out"),
            metrics_url: None,
            metrics_interval: Duration::from_millis(200),
            force: false,
        }
    }

    #[test]
    fn prompts_scale_with_the_load_above_a_minimum() {
        let p = PromptsPerRun {
            per_load: 4.0,
            min: 10,
        };
        assert_eq!(p.at(1.0), 10);
        assert_eq!(p.at(8.0), 32);
        assert_eq!(p.at(2.1), 10);
        assert_eq!(p.at(f64::INFINITY), 10);
    }

    #[test]
    fn a_run_sets_its_load_prompts_and_files() {
        let c = cfg(LoadAxis::Concurrency).run_config(16.0, 2);
        assert_eq!(c.max_concurrency, Some(16));
        assert_eq!(c.workload.num_prompts, 64);
        assert_eq!(c.slo.unwrap().ttft_ms, Some(100.0));
        assert_eq!(
            c.details_file.unwrap(),
            PathBuf::from("out/c16_run2.details.jsonl")
        );
        let r = cfg(LoadAxis::RequestRate).run_config(2.5, 1);
        assert_eq!(r.request_rate, 2.5);
        assert_eq!(r.max_concurrency, None);
        assert_eq!(
            cfg(LoadAxis::RequestRate).run_file(2.5, 1),
            PathBuf::from("out/r2.5_run1.json")
        );
    }

    #[test]
    fn a_result_counts_only_for_the_same_slo_and_load() {
        let c = cfg(LoadAxis::Concurrency);
        let r = json!({"max_concurrency": 8, "slo": "ttft_ms=100", "slo_attainment_target": 0.9,
            "slo_requests": 32, "slo_good_requests": 30, "slo_attainment": 0.9375, "duration": 2.0,
            "output_throughput": 100.0, "server_max_queued": 3.0});
        let (o, rep) = observation(&c, 8.0, &r).unwrap();
        assert_eq!((o.requests, o.good, o.queued), (32, 30, true));
        assert_eq!(o.gpu_seconds, 16.0);
        assert_eq!(rep.server_max_queued, Some(3.0));
        assert!(observation(&c, 16.0, &r).is_none());
        let mut other = r.clone();
        other["slo"] = json!("ttft_ms=200");
        assert!(observation(&c, 8.0, &other).is_none());
        let mut cut = r.clone();
        cut["interrupted"] = json!(true);
        assert!(observation(&c, 8.0, &cut).is_none());
    }

    #[test]
    fn bad_settings_are_refused() {
        let mut c = cfg(LoadAxis::Concurrency);
        c.gpus = 0;
        assert!(c.validate().unwrap_err().to_string().contains("--gpus"));
        let mut c = cfg(LoadAxis::Concurrency);
        c.search.start = 1.5;
        assert!(c.validate().is_err());
        cfg(LoadAxis::RequestRate).validate().unwrap();
    }
}
