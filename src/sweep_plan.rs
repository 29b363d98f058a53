//! A sweep plan: the target, the dataset settings and the axes of a matrix of load tests, read from TOML
//! (or built from flags) and validated before anything runs.
//!
//! ```toml
//! [target]
//! base_url = "http://127.0.0.1:30000"   # or: sim = "default" (in-process simulator)
//! backend = "sglang"
//! model = "deepseek-ai/DeepSeek-R1"
//! tokenizer = "/models/DeepSeek-R1"
//!
//! [dataset]
//! name = "random"                        # random | random-ids | sharegpt | custom
//! path = "/data/ShareGPT_V3_unfiltered_cleaned_split.json"
//! seed = 1
//!
//! [axes]
//! input_output = ["3500:1500", "3000:400"]
//! concurrency = [1, 4, 8, 16, 32, 64, 80, 128, 256, 350, 512]
//! range_ratio = [0.7, 0.8]
//! request_rate = ["inf"]                 # optional; numbers or "inf"
//!
//! [run]
//! num_prompts = "concurrency"            # "concurrency" | an integer | "4x" (× concurrency) | "60s" (duration)
//! output_dir = "sweep-fp8"
//! file_pattern = "tp{prompts}_in{in}_out{out}_ratio{ratio}.json"   # the seed's; also {tp}, {conc}, {rate}
//! tp = 8                                 # tensor-parallel size: in the result (`tp`) and {tp}
//! order = "ascending"                    # ascending | descending | as-listed (concurrency order)
//! pause_s = 0                          # seconds between points
//! flush_cache = false
//! health_check = true
//! warmup_requests = 1
//! extra_args = ["--disable-ignore-eos"]  # any other `servebench bench` flags
//!
//! [run.stop_rule]                        # optional: skip higher concurrencies once the server saturates
//! min_throughput_gain_pct = 5.0
//! ttft_p99_factor = 2.0
//!
//! [run.slo]                              # optional: judge every point (slo, slo_attainment, goodput, slo_met)
//! ttft_ms = 2000                         # any of ttft_ms, tpot_ms, e2e_ms (per-request limits, ms)
//! tpot_ms = 100
//! attainment = 0.99                      # share of good requests a point needs to meet the SLO
//! ```

use serde::Deserialize;
use servebench_core::duration::{checked_seconds, Lower};
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("cannot read plan {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("plan {path}: {message}")]
    Parse { path: String, message: String },
    #[error("plan: {0}")]
    Invalid(String),
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Target {
    pub base_url: Option<String>,
    /// Further endpoints serving the same model as `base_url` (data-parallel replicas without a load balancer):
    /// requests are spread over all of them (see `docs/endpoints.md`). `base_url` stays the one launched,
    /// attached to and scraped for `/metrics`.
    #[serde(default)]
    pub more_base_urls: Vec<String>,
    /// How requests are spread over the endpoints: least-outstanding (the default) or round-robin.
    pub dispatch: Option<String>,
    pub sim: Option<String>,
    #[serde(default = "default_backend")]
    pub backend: String,
    pub model: Option<String>,
    pub tokenizer: Option<PathBuf>,
}

impl Default for Target {
    fn default() -> Self {
        Target {
            base_url: None,
            more_base_urls: Vec::new(),
            dispatch: None,
            sim: None,
            backend: default_backend(),
            model: None,
            tokenizer: None,
        }
    }
}

fn default_backend() -> String {
    "sglang".into()
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DatasetSpec {
    #[serde(default = "default_dataset")]
    pub name: String,
    pub path: Option<PathBuf>,
    #[serde(default = "default_seed")]
    pub seed: u64,
}

impl Default for DatasetSpec {
    fn default() -> Self {
        DatasetSpec {
            name: default_dataset(),
            path: None,
            seed: default_seed(),
        }
    }
}

fn default_dataset() -> String {
    "random".into()
}
fn default_seed() -> u64 {
    1
}

/// A number or "inf".
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum Rate {
    Num(f64),
    Text(String),
}

impl Rate {
    fn value(&self) -> Result<f64, PlanError> {
        match self {
            Rate::Num(x) if *x > 0.0 => Ok(*x),
            Rate::Text(s) if s == "inf" => Ok(f64::INFINITY),
            other => Err(PlanError::Invalid(format!(
                "request_rate {other:?}: a positive number or \"inf\""
            ))),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Axes {
    pub input_output: Vec<String>,
    pub concurrency: Vec<usize>,
    #[serde(default)]
    pub range_ratio: Vec<f64>,
    #[serde(default)]
    pub request_rate: Vec<Rate>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StopRule {
    #[serde(default = "default_gain")]
    pub min_throughput_gain_pct: f64,
    #[serde(default = "default_factor")]
    pub ttft_p99_factor: f64,
}

fn default_gain() -> f64 {
    5.0
}
fn default_factor() -> f64 {
    2.0
}

/// A number or a string ("concurrency", "4x", "60s").
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum PromptsSpec {
    Fixed(usize),
    Text(String),
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RunSpec {
    #[serde(default = "default_prompts")]
    pub num_prompts: PromptsSpec,
    /// With a duration: the most prompts prepared per point (default 10 × concurrency, at least 100).
    pub max_prompts: Option<usize>,
    #[serde(default = "default_out")]
    pub output_dir: PathBuf,
    #[serde(default = "default_pattern")]
    pub file_pattern: String,
    #[serde(default = "default_tp")]
    pub tp: u32,
    #[serde(default = "default_order")]
    pub order: String,
    #[serde(default)]
    pub pause_s: f64,
    #[serde(default)]
    pub flush_cache: bool,
    #[serde(default = "default_true")]
    pub health_check: bool,
    #[serde(default = "default_warmup")]
    pub warmup_requests: usize,
    #[serde(default = "default_true")]
    pub output_details: bool,
    #[serde(default)]
    pub extra_args: Vec<String>,
    pub stop_rule: Option<StopRule>,
    /// Judge every point against this SLO (`[run.slo]`; `--slo` on the command line).
    pub slo: Option<servebench_core::slo::Slo>,
}

impl Default for RunSpec {
    fn default() -> Self {
        RunSpec {
            num_prompts: default_prompts(),
            max_prompts: None,
            output_dir: default_out(),
            file_pattern: default_pattern(),
            tp: default_tp(),
            order: default_order(),
            pause_s: 0.0,
            flush_cache: false,
            health_check: true,
            warmup_requests: default_warmup(),
            output_details: true,
            extra_args: Vec::new(),
            stop_rule: None,
            slo: None,
        }
    }
}

fn default_prompts() -> PromptsSpec {
    PromptsSpec::Text("concurrency".into())
}
fn default_out() -> PathBuf {
    PathBuf::from("sweep-results")
}
/// The seed's layout: `tp{P}_…` where P is the prompt count (equal to the concurrency in the seed's loop),
/// one JSON object per file.
pub const DEFAULT_FILE_PATTERN: &str = "tp{prompts}_in{in}_out{out}_ratio{ratio}.json";

fn default_pattern() -> String {
    DEFAULT_FILE_PATTERN.into()
}
fn default_tp() -> u32 {
    1
}
fn default_order() -> String {
    "ascending".into()
}
fn default_true() -> bool {
    true
}
fn default_warmup() -> usize {
    1
}

/// The plan as written.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    #[serde(default)]
    pub target: Target,
    #[serde(default)]
    pub dataset: DatasetSpec,
    pub axes: Axes,
    #[serde(default)]
    pub run: RunSpec,
}

/// How many prompts a point sends.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Prompts {
    Fixed(usize),
    TimesConcurrency(f64),
    Duration { seconds: Duration },
}

/// One point of the matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub input_len: u64,
    pub output_len: u64,
    pub range_ratio: f64,
    pub request_rate: f64,
    pub concurrency: usize,
    pub num_prompts: usize,
    /// Stop sending after this long (`num_prompts = "60s"`).
    pub duration: Option<Duration>,
    /// The result file: one JSON object, this point's alone.
    pub file: PathBuf,
    /// Its per-request records.
    pub details_file: PathBuf,
    /// Points of one (lengths, ratio, rate) series share a group (the stop rule works within a group).
    pub group: usize,
}

impl Point {
    pub fn label(&self) -> String {
        format!(
            "in {} out {} ratio {} conc {}{}",
            self.input_len,
            self.output_len,
            self.range_ratio,
            self.concurrency,
            if self.request_rate.is_finite() {
                format!(" rate {}", self.request_rate)
            } else {
                String::new()
            }
        )
    }
}

pub fn parse_prompts(spec: &PromptsSpec) -> Result<Prompts, PlanError> {
    let bad = |s: &str| {
        PlanError::Invalid(format!(
            "num_prompts {s:?}: use \"concurrency\", an integer, \"4x\" (a multiple of concurrency) or \"60s\" (a duration)"
        ))
    };
    match spec {
        PromptsSpec::Fixed(0) => Err(bad("0")),
        PromptsSpec::Fixed(n) => Ok(Prompts::Fixed(*n)),
        PromptsSpec::Text(s) => {
            let s = s.trim();
            if s == "concurrency" {
                Ok(Prompts::TimesConcurrency(1.0))
            } else if let Some(x) = s.strip_suffix('x') {
                let f: f64 = x.parse().map_err(|_| bad(s))?;
                if !(f.is_finite() && f > 0.0 && f <= 1e6) {
                    return Err(bad(s));
                }
                Ok(Prompts::TimesConcurrency(f))
            } else if let Some(x) = s.strip_suffix('s') {
                let f: f64 = x.parse().map_err(|_| bad(s))?;
                let seconds = checked_seconds("num_prompts", f, Lower::Positive)
                    .map_err(|e| PlanError::Invalid(format!("{e} (as \"{s}\")")))?;
                Ok(Prompts::Duration { seconds })
            } else {
                s.parse::<usize>()
                    .ok()
                    .filter(|n| *n > 0)
                    .map(Prompts::Fixed)
                    .ok_or_else(|| bad(s))
            }
        }
    }
}

fn parse_io(s: &str) -> Result<(u64, u64), PlanError> {
    let (i, o) = s
        .split_once(':')
        .or_else(|| s.split_once(' '))
        .ok_or_else(|| {
            PlanError::Invalid(format!(
                "input_output {s:?}: expected \"IN:OUT\", e.g. \"3500:1500\""
            ))
        })?;
    let p = |x: &str| {
        x.trim()
            .parse::<u64>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| {
                PlanError::Invalid(format!(
                    "input_output {s:?}: lengths must be positive integers"
                ))
            })
    };
    Ok((p(i)?, p(o)?))
}

/// A ratio as written in file names: 0.7 → "0.7", 1 → "1.0" (Python's str(float)).
pub fn ratio_str(r: f64) -> String {
    if r.fract() == 0.0 {
        format!("{r:.1}")
    } else {
        format!("{r}")
    }
}

impl Plan {
    pub fn from_file(path: &Path) -> Result<Plan, PlanError> {
        let text = std::fs::read_to_string(path).map_err(|source| PlanError::Io {
            path: path.display().to_string(),
            source,
        })?;
        let mut plan = Plan::from_toml(&text).map_err(|e| match e {
            PlanError::Parse { message, .. } => PlanError::Parse {
                path: path.display().to_string(),
                message,
            },
            other => other,
        })?;
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        plan.rebase_paths(dir);
        Ok(plan)
    }

    /// Makes the plan's relative paths (output_dir, dataset path, tokenizer, path flags in extra_args) relative
    /// to `dir`, the plan file's folder.
    pub fn rebase_paths(&mut self, dir: &Path) {
        use crate::run_plan::{rebase, rebase_flag_paths};
        self.run.output_dir = rebase(dir, &self.run.output_dir);
        if let Some(p) = &self.dataset.path {
            self.dataset.path = Some(rebase(dir, p));
        }
        if let Some(t) = &self.target.tokenizer {
            self.target.tokenizer = Some(rebase(dir, t));
        }
        self.run.extra_args =
            rebase_flag_paths(dir, &self.run.extra_args, crate::run_plan::BENCH_PATH_FLAGS);
    }

    pub fn from_toml(text: &str) -> Result<Plan, PlanError> {
        toml::from_str(text).map_err(|e| PlanError::Parse {
            path: "<plan>".into(),
            message: e.to_string(),
        })
    }

    /// Checks the plan and expands the matrix into points, in run order.
    pub fn points(&self) -> Result<Vec<Point>, PlanError> {
        if self.target.base_url.is_none() && self.target.sim.is_none() {
            return Err(PlanError::Invalid(
                "[target] needs base_url (a running server) or sim (a simulator preset)".into(),
            ));
        }
        if !self.target.more_base_urls.is_empty() && self.target.base_url.is_none() {
            return Err(PlanError::Invalid(
                "[target] more_base_urls needs base_url (the first endpoint), and no sim".into(),
            ));
        }
        servebench_core::api::Backend::parse(&self.target.backend)
            .map_err(|e| PlanError::Invalid(format!("[target] backend: {e}")))?;
        if let Some(slo) = &self.run.slo {
            slo.validate()
                .map_err(|e| PlanError::Invalid(format!("[run.slo]: {e}")))?;
        }
        if self.axes.input_output.is_empty() || self.axes.concurrency.is_empty() {
            return Err(PlanError::Invalid(
                "[axes] needs at least one input_output and one concurrency".into(),
            ));
        }
        let max = tokio::sync::Semaphore::MAX_PERMITS;
        if let Some(c) = self.axes.concurrency.iter().find(|&&c| c == 0 || c > max) {
            return Err(PlanError::Invalid(format!(
                "concurrency {c}: use values from 1 to {max}"
            )));
        }
        let prompts = parse_prompts(&self.run.num_prompts)?;
        self.pause()?;
        let ratios = if self.axes.range_ratio.is_empty() {
            vec![1.0]
        } else {
            self.axes.range_ratio.clone()
        };
        for r in &ratios {
            if !(0.0..=1.0).contains(r) {
                return Err(PlanError::Invalid(format!(
                    "range_ratio {r} must be in [0, 1]"
                )));
            }
        }
        let rates: Vec<f64> = if self.axes.request_rate.is_empty() {
            vec![f64::INFINITY]
        } else {
            self.axes
                .request_rate
                .iter()
                .map(Rate::value)
                .collect::<Result<_, _>>()?
        };
        let mut concs = self.axes.concurrency.clone();
        match self.run.order.as_str() {
            "ascending" => concs.sort_unstable(),
            "descending" => {
                concs.sort_unstable();
                concs.reverse()
            }
            "as-listed" => {}
            other => {
                return Err(PlanError::Invalid(format!(
                    "order {other:?}: use ascending, descending or as-listed"
                )))
            }
        }
        for p in ["{in}", "{out}"] {
            if !self.run.file_pattern.contains(p) {
                return Err(PlanError::Invalid(format!(
                    "file_pattern {:?} must contain {p}",
                    self.run.file_pattern
                )));
            }
        }
        let mut points = Vec::new();
        let mut group = 0;
        for io in &self.axes.input_output {
            let (input_len, output_len) = parse_io(io)?;
            for &ratio in &ratios {
                for &rate in &rates {
                    for &c in &concs {
                        let (num_prompts, duration_s) = match prompts {
                            Prompts::Fixed(n) => (n, None),
                            Prompts::TimesConcurrency(f) => {
                                (((c as f64) * f).ceil().clamp(1.0, 1e12) as usize, None)
                            }
                            Prompts::Duration { seconds } => (
                                self.run
                                    .max_prompts
                                    .unwrap_or(c.saturating_mul(10).max(100)),
                                Some(seconds),
                            ),
                        };
                        let rate_s = if rate.is_finite() {
                            format!("{rate}")
                        } else {
                            "inf".into()
                        };
                        let name = self
                            .run
                            .file_pattern
                            .replace("{tp}", &self.run.tp.to_string())
                            .replace("{prompts}", &num_prompts.to_string())
                            .replace("{in}", &input_len.to_string())
                            .replace("{out}", &output_len.to_string())
                            .replace("{ratio}", &ratio_str(ratio))
                            .replace("{conc}", &c.to_string())
                            .replace("{rate}", &rate_s);
                        let file = self.run.output_dir.join(&name);
                        let stem = Path::new(&name)
                            .file_stem()
                            .map(|s| s.to_string_lossy().into_owned())
                            .unwrap_or(name.clone());
                        let details_file = self.run.output_dir.join(format!(
                            "{stem}_c{c}{}.details.jsonl",
                            if rate.is_finite() {
                                format!("_r{rate_s}")
                            } else {
                                String::new()
                            }
                        ));
                        points.push(Point {
                            input_len,
                            output_len,
                            range_ratio: ratio,
                            request_rate: rate,
                            concurrency: c,
                            num_prompts,
                            duration: duration_s,
                            file,
                            details_file,
                            group,
                        });
                    }
                    group += 1;
                }
            }
        }
        let mut seen = std::collections::HashMap::new();
        for p in &points {
            if let Some(other) = seen.insert(p.file.clone(), p.label()) {
                return Err(PlanError::Invalid(format!(
                    "file_pattern {:?} gives two points the same file {} ({other}; {}): each file holds one point's result; add {{conc}}, {{prompts}} or {{rate}} to the pattern",
                    self.run.file_pattern,
                    p.file.display(),
                    p.label()
                )));
            }
        }
        Ok(points)
    }

    /// The points of one shard (`--shard I/N`, [`crate::shard`]), in run order: point k of the whole plan goes
    /// to shard k mod N. With a stop rule, which compares each point with the previous one of its series, whole
    /// series are dealt instead (series g goes to shard g mod N), so a series never spans two shards.
    pub fn shard_points(&self, points: &[Point], shard: crate::shard::Shard) -> Vec<Point> {
        if self.run.stop_rule.is_some() {
            points
                .iter()
                .filter(|p| shard.owns(p.group))
                .cloned()
                .collect()
        } else {
            shard.select(points)
        }
    }

    /// The pause between points, checked.
    pub fn pause(&self) -> Result<Duration, PlanError> {
        checked_seconds("pause_s (--pause)", self.run.pause_s, Lower::Zero)
            .map_err(|e| PlanError::Invalid(e.to_string()))
    }
}

impl Point {
    /// Whether a result line (one object of the point's file) finishes this point: same lengths, ratio, rate
    /// and `max_concurrency`, not interrupted by the user, and at least one request ended — completed or
    /// failed. A point where every request failed is done, with its failures: a rerun does not run it again
    /// (and does not append a second line); `--force` does.
    pub fn finished_by(&self, v: &serde_json::Value) -> bool {
        let close = |a: Option<f64>, b: f64| a.is_some_and(|a| (a - b).abs() < 1e-9);
        let rate_same = match v["request_rate"].as_f64() {
            Some(r) => (r - self.request_rate).abs() < 1e-9,
            // "inf" (a string) or null.
            None => !self.request_rate.is_finite(),
        };
        let ended = v["completed"].as_u64().unwrap_or(0) + v["failed"].as_u64().unwrap_or(0);
        v["max_concurrency"].as_u64() == Some(self.concurrency as u64)
            && v["random_input_len"].as_u64() == Some(self.input_len)
            && v["random_output_len"].as_u64() == Some(self.output_len)
            && close(v["random_range_ratio"].as_f64(), self.range_ratio)
            && rate_same
            && v["interrupted"] != serde_json::Value::Bool(true)
            && ended > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED_PLAN: &str = r#"
[target]
base_url = "http://127.0.0.1:30000"
backend = "sglang"
[dataset]
name = "random"
[axes]
input_output = ["3500:1500", "3000:400"]
concurrency = [512, 1, 4, 8, 16, 32, 64, 80, 128, 256, 350]
range_ratio = [0.7, 0.8]
[run]
tp = 8
output_dir = "out"
"#;

    #[test]
    fn the_seed_matrix_has_44_points_in_order() {
        let plan = Plan::from_toml(SEED_PLAN).unwrap();
        let pts = plan.points().unwrap();
        assert_eq!(pts.len(), 44);
        assert_eq!(pts[0].concurrency, 1);
        assert_eq!(pts[10].concurrency, 512);
        assert_eq!(
            pts[0].num_prompts, 1,
            "num_prompts tied to concurrency like the seed"
        );
        assert_eq!(pts[10].num_prompts, 512);
        // The seed's layout: tp{P} with P = the prompt count = the concurrency.
        assert_eq!(
            pts[0].file,
            PathBuf::from("out/tp1_in3500_out1500_ratio0.7.json")
        );
        assert_eq!(
            pts[10].file,
            PathBuf::from("out/tp512_in3500_out1500_ratio0.7.json")
        );
        assert_eq!(
            pts[11].file,
            PathBuf::from("out/tp1_in3500_out1500_ratio0.8.json")
        );
        assert_eq!(
            pts[0].details_file,
            PathBuf::from("out/tp1_in3500_out1500_ratio0.7_c1.details.jsonl")
        );
        assert_eq!(pts[43].input_len, 3000);
        assert_eq!(pts.iter().map(|p| p.group).max(), Some(3));
    }

    #[test]
    fn shards_split_the_seed_matrix_without_overlap() {
        use crate::shard::Shard;
        let mut plan = Plan::from_toml(SEED_PLAN).unwrap();
        let pts = plan.points().unwrap();
        let files = |v: &[Point]| v.iter().map(|p| p.file.clone()).collect::<Vec<_>>();
        for with_stop_rule in [false, true] {
            plan.run.stop_rule = with_stop_rule.then_some(StopRule {
                min_throughput_gain_pct: 5.0,
                ttft_p99_factor: 2.0,
            });
            for n in [1, 3, 5, 44, 50] {
                let mut all = Vec::new();
                for i in 0..n {
                    let part = plan.shard_points(&pts, Shard { index: i, count: n });
                    if with_stop_rule {
                        // A series is never split: every point of a group sits in one shard.
                        for p in &part {
                            assert_eq!(p.group % n, i);
                        }
                    }
                    all.extend(files(&part));
                }
                assert_eq!(all.len(), 44, "n={n}: each point once");
                let mut sorted = all.clone();
                sorted.sort();
                sorted.dedup();
                assert_eq!(sorted.len(), 44, "n={n}: no point twice");
            }
        }
        // Without a stop rule, point k goes to shard k mod N.
        plan.run.stop_rule = None;
        let second = plan.shard_points(&pts, Shard { index: 1, count: 4 });
        assert_eq!(second.len(), 11);
        assert_eq!(second[0], pts[1]);
        assert_eq!(second[1], pts[5]);
    }

    #[test]
    fn prompt_specs() {
        assert_eq!(
            parse_prompts(&PromptsSpec::Fixed(7)).unwrap(),
            Prompts::Fixed(7)
        );
        assert_eq!(
            parse_prompts(&PromptsSpec::Text("4x".into())).unwrap(),
            Prompts::TimesConcurrency(4.0)
        );
        assert_eq!(
            parse_prompts(&PromptsSpec::Text("60s".into())).unwrap(),
            Prompts::Duration {
                seconds: Duration::from_secs(60)
            }
        );
        assert!(parse_prompts(&PromptsSpec::Text("lots".into())).is_err());
        assert!(parse_prompts(&PromptsSpec::Fixed(0)).is_err());
    }

    #[test]
    fn paths_in_a_plan_file_are_relative_to_it() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("plan.toml");
        std::fs::write(
            &p,
            "[target]\nsim=\"fast\"\ntokenizer=\"tok\"\n[dataset]\npath=\"/abs/sg.json\"\n[axes]\ninput_output=[\"1:1\"]\nconcurrency=[1]\n[run]\noutput_dir=\"../out\"\nextra_args=[\"--details-file\", \"d.jsonl\"]\n",
        )
        .unwrap();
        let plan = Plan::from_file(&p).unwrap();
        let parent = dir.path().parent().unwrap();
        assert_eq!(plan.run.output_dir, parent.join("out"));
        assert_eq!(plan.target.tokenizer, Some(dir.path().join("tok")));
        assert_eq!(plan.dataset.path, Some(PathBuf::from("/abs/sg.json")));
        assert_eq!(
            plan.run.extra_args[1],
            dir.path().join("d.jsonl").display().to_string()
        );
    }

    #[test]
    fn bad_plans_say_what_is_wrong() {
        let e = Plan::from_toml("[axes]\ninput_output=[\"1:1\"]\nconcurrency=[1]\n")
            .unwrap()
            .points()
            .unwrap_err();
        assert!(e.to_string().contains("base_url"), "{e}");
        let e = Plan::from_toml(
            "[target]\nsim=\"fast\"\n[axes]\ninput_output=[\"10\"]\nconcurrency=[1]\n",
        )
        .unwrap()
        .points()
        .unwrap_err();
        assert!(e.to_string().contains("IN:OUT"), "{e}");
        // A fixed prompt count gives every concurrency the same tp{prompts} file: refused, with the fix.
        let e = Plan::from_toml(
            "[target]\nsim=\"fast\"\n[axes]\ninput_output=[\"1:1\"]\nconcurrency=[1, 2]\n[run]\nnum_prompts=8\n",
        )
        .unwrap()
        .points()
        .unwrap_err();
        assert!(e.to_string().contains("add {conc}"), "{e}");
        // The tensor-parallel size stays available to custom patterns.
        let pts = Plan::from_toml(
            "[target]\nsim=\"fast\"\n[axes]\ninput_output=[\"1:1\"]\nconcurrency=[1, 2]\n[run]\ntp=8\nnum_prompts=8\nfile_pattern=\"tp{tp}_c{conc}_in{in}_out{out}.json\"\n",
        )
        .unwrap()
        .points()
        .unwrap();
        assert_eq!(
            pts[1].file,
            PathBuf::from("sweep-results/tp8_c2_in1_out1.json")
        );
        for bad in [
            "[run]\npause_s=1e300\n",
            "[run]\nnum_prompts=\"1e300s\"\n",
            "[run]\nnum_prompts=\"infs\"\n",
        ] {
            let text = format!(
                "[target]\nsim=\"fast\"\n[axes]\ninput_output=[\"1:1\"]\nconcurrency=[1]\n{bad}"
            );
            let e = Plan::from_toml(&text).unwrap().points().unwrap_err();
            assert!(e.to_string().contains("at most 1e9"), "{bad}: {e}");
        }
        let e = Plan::from_toml("[target]\nsim=\"fast\"\n[axes]\ninput_output=[\"1:1\"]\nconcurrency=[9223372036854775807]\n")
            .unwrap()
            .points()
            .unwrap_err();
        assert!(
            e.to_string().contains("concurrency 9223372036854775807"),
            "{e}"
        );
        let e = Plan::from_toml("[target]\nbase_ur=\"x\"\n").unwrap_err();
        assert!(e.to_string().contains("base_ur"), "{e}");
        assert_eq!(ratio_str(1.0), "1.0");
        assert_eq!(ratio_str(0.75), "0.75");
    }

    #[test]
    fn a_point_is_done_once_even_when_every_request_failed() {
        let plan = Plan::from_toml(SEED_PLAN).unwrap();
        let p = plan
            .points()
            .unwrap()
            .into_iter()
            .find(|p| p.concurrency == 8 && p.input_len == 3500 && p.range_ratio == 0.7)
            .unwrap();
        let line = |completed: u64, failed: u64, interrupted: bool| {
            serde_json::json!({"max_concurrency": 8, "random_input_len": 3500, "random_output_len": 1500,
                "random_range_ratio": 0.7, "request_rate": "inf", "completed": completed, "failed": failed,
                "interrupted": interrupted})
        };
        assert!(p.finished_by(&line(8, 0, false)));
        assert!(p.finished_by(&line(0, 8, false)), "all failed is done");
        assert!(p.finished_by(&line(3, 5, false)));
        assert!(!p.finished_by(&line(0, 0, false)), "nothing ended");
        assert!(!p.finished_by(&line(2, 0, true)), "stopped by the user");
        let mut other = line(8, 0, false);
        other["max_concurrency"] = serde_json::json!(16);
        assert!(!p.finished_by(&other));
        let mut rated = line(8, 0, false);
        rated["request_rate"] = serde_json::json!(4.0);
        assert!(!p.finished_by(&rated));
    }
}
