//! `servebench eval`: accuracy of a served model on AIME24/25, MATH-500, GPQA-Diamond, GSM8K and custom sets,
//! through the OpenAI-compatible API. Writes per dataset `{dataset}_predictions.jsonl` (resumable),
//! `{dataset}_settings.json` and `{dataset}_report.json` into `--output-dir`, and prints evalscope's score table
//! with the protocol behind each number. Scores are fractions in [0, 1].
//!
//! Protocols (`docs/eval-protocols.md`): `--protocol reference` (default: evalscope 0.x for GPQA, Qwen2.5-Math for
//! AIME/MATH-500), `servebench`, or the `field-report` preset (reference protocols, max_tokens 20480, temperature
//! 0, the report's numbers printed next to the scores); `--gpqa-protocol` / `--math-protocol` pick one dataset
//! kind's protocol.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use serde_json::json;
use servebench_core::api::{Api, Backend};
use servebench_core::duration::{checked_seconds, Lower};
use servebench_eval::dataset::{self, DataSources, Dataset, DatasetSpec, GpqaShuffle, GraderKind};
use servebench_eval::grade::{GradeOptions, GraderMode};
use servebench_eval::predictions::{self, OutputFiles, Prediction, PredictionWriter, RunSettings};
use servebench_eval::prompt::PromptTemplate;
use servebench_eval::protocol::{Protocol, Protocols};
use servebench_eval::report::{self, Report, ReportContext};
use servebench_eval::runner::{self, Progress, RunConfig};
use servebench_load::client::{Client, ClientConfig};
use servebench_sim::{ReasoningMode, SimConfig, SimServer};
use tokio::sync::watch;

#[derive(Debug, Clone, clap::Args)]
#[command(after_help = super::exit::HELP, allow_negative_numbers = true)]
pub struct Args {
    /// Server to evaluate (OpenAI-compatible). Repeat the flag for several endpoints serving the same model
    /// (data-parallel replicas without a load balancer): samples are spread by --dispatch.
    #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:30000", action = clap::ArgAction::Append)]
    pub base_url: Vec<String>,
    /// How samples are spread over several --base-url endpoints: least-outstanding or round-robin.
    #[arg(
        long,
        default_value = "least-outstanding",
        value_name = "round-robin|least-outstanding"
    )]
    pub dispatch: String,
    /// API shape: openai-chat (the prompt is the one user message) or openai (completions, the prompt as raw text).
    #[arg(long, default_value = "openai-chat")]
    pub backend: String,
    /// Model name sent in requests (default: the first id of GET /v1/models).
    #[arg(long)]
    pub model: Option<String>,
    /// API key (sent as a Bearer token; never written to any file; default: $OPENAI_API_KEY).
    #[arg(long, env = "OPENAI_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// Datasets, comma-separated: aime24, aime25, math500, gsm8k, gpqa_diamond (default: none; give this
    /// and/or --custom).
    #[arg(long, value_delimiter = ',')]
    pub datasets: Vec<String>,
    /// Folder with the datasets: aime24/test.jsonl, math500/test.jsonl, …, gpqa_diamond.csv (default:
    /// $SERVEBENCH_DATA_DIR, else the Hugging Face cache).
    #[arg(long, env = "SERVEBENCH_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Explicit file (or folder) for a dataset: NAME=PATH, repeatable (e.g. gpqa_diamond=/secure/gpqa_diamond.csv;
    /// default: found under --data-dir). Unlike bench's --dataset-path, it names the dataset: eval takes several.
    #[arg(long = "dataset-path", value_name = "NAME=PATH")]
    pub dataset_paths: Vec<String>,
    /// A custom JSONL set (`question` or `problem`, `answer`, optional `id`): [NAME=]PATH, repeatable (default:
    /// none; NAME defaults to the file stem).
    #[arg(long = "custom", value_name = "[NAME=]PATH")]
    pub custom: Vec<String>,
    /// Grader of custom sets: math (equivalence), mcq (a letter A-D), exact (string equality).
    #[arg(long, default_value = "math", value_parser = ["math", "mcq", "exact"])]
    pub custom_grader: String,
    /// Fetch missing public datasets from the Hugging Face Hub into its local cache (needs network).
    #[arg(long)]
    pub download: bool,
    /// Protocols: reference (evalscope 0.x for GPQA, Qwen2.5-Math for AIME/MATH-500), servebench (its own rules),
    /// or field-report (reference protocols, max_tokens 20480, temperature 0, the report's numbers in the table).
    #[arg(long, default_value = "reference", value_parser = ["reference", "servebench", "field-report"])]
    pub protocol: String,
    /// GPQA's protocol (overrides --protocol for GPQA): evalscope-0, evalscope-1 or servebench (default: from
    /// --protocol, evalscope-0 for reference and field-report).
    #[arg(long, value_parser = ["evalscope-0", "evalscope-1", "servebench"])]
    pub gpqa_protocol: Option<String>,
    /// AIME's and MATH-500's protocol (overrides --protocol for them): qwen2.5-math or servebench (default: from
    /// --protocol, qwen2.5-math for reference and field-report).
    #[arg(long, value_parser = ["qwen2.5-math", "servebench"])]
    pub math_protocol: Option<String>,
    /// Leave failed and empty completions out of the scores (default: they count as wrong, as the reference
    /// tools count them). The table says so when set.
    #[arg(long)]
    pub exclude_errors: bool,
    /// max_tokens of each request (default: not sent, the server's limit applies; field-report: 20480).
    #[arg(long)]
    pub max_tokens: Option<u32>,
    /// Sampling temperature (default 0; the field-report preset requires 0).
    #[arg(long, allow_negative_numbers = true)]
    pub temperature: Option<f64>,
    /// top_p (default: not sent).
    #[arg(long)]
    pub top_p: Option<f64>,
    /// Sampling seed sent with requests; with temperature > 0 sample s gets SEED + s (default: not sent).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Samples per question (n > 1 reports avg@n, pass@k and maj@n).
    #[arg(long, default_value_t = 1)]
    pub n: u32,
    /// Requests in flight at once (bench and sweep call this --max-concurrency).
    #[arg(long, default_value_t = 32, value_parser = super::args::at_least_one)]
    pub concurrency: usize,
    /// Per-request timeout in seconds, > 0 (reasoning runs take minutes).
    #[arg(long, default_value_t = 10_800.0, value_parser = super::args::positive_seconds)]
    pub timeout: f64,
    /// Re-sends of a failed request (connection errors, timeouts, HTTP 408/429/5xx), with exponential backoff.
    #[arg(long, default_value_t = 3)]
    pub retries: u32,
    /// Delay before the first re-send, seconds (doubles each time, at most 60).
    #[arg(long, default_value_t = 2.0, value_parser = super::args::seconds)]
    pub retry_backoff: f64,
    /// Only the first N questions of each dataset (default: all).
    #[arg(long, value_parser = super::args::at_least_one)]
    pub limit: Option<usize>,
    /// Folder of the predictions, settings and reports (one set per dataset).
    #[arg(long, default_value = "eval-results")]
    pub output_dir: PathBuf,
    /// Math prompt under the servebench protocol: deepseek-math (Qwen2.5-Math's, the default) or boxed (problem +
    /// boxed instruction). qwen2.5-math always uses deepseek-math; GPQA uses its protocol's prompt.
    #[arg(long, value_parser = ["deepseek-math", "boxed"])]
    pub prompt_template: Option<String>,
    /// GPQA option order under the servebench protocol: seeded (deterministic per-question shuffle, the default) or
    /// none (correct answer is (A)). The evalscope protocols use evalscope's order.
    #[arg(long, value_parser = ["seeded", "none"])]
    pub gpqa_shuffle: Option<String>,
    /// Math equivalence rules under the servebench protocol: servebench (the default) or qwen (Qwen2.5-Math's
    /// math_equal). qwen2.5-math always grades with qwen.
    #[arg(long, value_parser = ["servebench", "qwen"])]
    pub grader: Option<String>,
    /// Resume from the predictions already in --output-dir (the default).
    #[arg(long, conflicts_with = "fresh")]
    pub resume: bool,
    /// Move existing predictions aside (NAME.bak-TIME) and start over.
    #[arg(long)]
    pub fresh: bool,
    /// Send requests without streaming.
    #[arg(long)]
    pub disable_stream: bool,
    /// Print the reports as JSON on stdout (no table, no progress bar).
    #[arg(long)]
    pub json: bool,
    /// Evaluate the built-in simulator in answer-key mode (started in process; default preset `fast` when the
    /// flag is given without one: eval needs no realistic timing, unlike bench's default `default`).
    #[arg(
        long,
        value_name = "PRESET",
        num_args = 0..=1,
        default_missing_value = "fast",
        conflicts_with = "base_url"
    )]
    pub sim: Option<String>,
    /// Simulator: share of questions answered with the gold answer.
    #[arg(long, default_value_t = 0.9)]
    pub sim_accuracy: f64,
    /// Simulator: where reasoning goes: inline (<think> in the content), field (reasoning_content) or none.
    #[arg(long, default_value = "inline", value_parser = ["inline", "field", "none"])]
    pub sim_reasoning: String,
    /// Which server is measured (JSON, set by `servebench run`): stored in each report's settings.
    #[arg(long, hide = true, value_parser = super::bench::parse_json_object)]
    pub measured_server: Option<serde_json::Value>,
    /// Simulator: seed of its answers.
    #[arg(long, default_value_t = 0)]
    pub sim_seed: u64,
    /// Exit with code 3 when more than this share of samples failed (a fraction in [0, 1], e.g. 0.01).
    /// Default: only when every sample failed. Reports are written either way.
    #[arg(long, value_name = "FRACTION", value_parser = super::exit::parse_rate)]
    pub max_failure_rate: Option<f64>,
    /// Accuracy under load: run the eval at concurrency 1 and at N (temperature 0) into OUTPUT_DIR/c1 and
    /// OUTPUT_DIR/cN, then report the share of answers that changed and the paired accuracy difference
    /// (default: off).
    #[arg(long, value_name = "N")]
    pub under_load: Option<usize>,
    /// Simulator: share of answers that flip when the engine is busy (see `servebench sim --load-flip-rate`).
    #[arg(long, default_value_t = 0.0)]
    pub sim_load_flip_rate: f64,
}

/// What an eval produced.
#[derive(Debug, Clone)]
pub struct EvalOutcome {
    pub reports: Vec<Report>,
    /// Report file of each dataset, in the order of `reports`.
    pub report_files: Vec<PathBuf>,
    /// Stopped early (Ctrl-C): the predictions so far are kept; rerunning resumes.
    pub interrupted: bool,
    /// Re-sends after failures, over all datasets.
    pub retries: u64,
}

pub fn run(args: Args) -> Result<()> {
    if let Some(n) = args.under_load {
        return super::load_sensitivity::run(args, n);
    }
    let rt = super::runtime()?;
    let stop_rx = super::stop_on_ctrl_c(
        &rt,
        "stopping; finished samples are saved (rerun the same command to resume)",
    );
    let (json, max_failure_rate) = (args.json, args.max_failure_rate);
    let out = rt.block_on(execute(args, stop_rx))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&out.reports)?);
    } else {
        println!("{}", report::table(&out.reports));
        for (r, f) in out.reports.iter().zip(&out.report_files) {
            for line in report::notes(r, &f.display().to_string()) {
                println!("{line}");
            }
        }
        if out.reports.iter().any(|r| r.field_report_score.is_some()) {
            println!("Report column: the field report's numbers for DeepSeek-R1 FP8 (same protocols, max_tokens {FIELD_REPORT_MAX_TOKENS}, temperature 0).");
        }
        if out.reports.iter().any(|r| r.simulated) {
            println!("Scores are fractions (1.0 = 100%). SIMULATED: answers came from servebench's simulator.");
        } else {
            println!("Scores are fractions (1.0 = 100%), ± one standard error.");
        }
        for f in &out.report_files {
            println!("Report: {}", f.display());
        }
    }
    if out.interrupted {
        return Err(super::exit::Interrupted("rerun the same command to finish".into()).into());
    }
    let ok = out.reports.iter().map(|r| r.samples as u64).sum();
    let failed = out.reports.iter().map(|r| r.errors as u64).sum();
    super::exit::check_failures("samples", ok, failed, max_failure_rate)?;
    Ok(())
}

/// Checks made before anything is sent: the output folder can be written, and the open-file limit allows
/// `--concurrency` connections.
fn preflight(a: &Args) -> Result<()> {
    servebench_load::outpath::ensure_writable_dir(&a.output_dir)?;
    let conns = a.concurrency as u64;
    let need = servebench_load::nofile::needed(conns, a.sim.is_some());
    servebench_load::nofile::ensure(need, "--concurrency", conns)?;
    Ok(())
}

/// Parsed and checked settings.
struct Plan {
    specs: Vec<DatasetSpec>,
    sources: DataSources,
    template: PromptTemplate,
    shuffle: GpqaShuffle,
    grade: GradeOptions,
    backend: Backend,
    protocols: Protocols,
    /// The field-report preset: its max_tokens and temperature, and the report's numbers in the table.
    field_report: bool,
    max_tokens: Option<u32>,
    temperature: f64,
    /// `--timeout` (total per request) and `--retry-backoff`, checked.
    timeout: Duration,
    backoff: Duration,
}

/// max_tokens of the field report's runs.
pub const FIELD_REPORT_MAX_TOKENS: u32 = 20_480;

/// The protocols and preset settings the flags ask for; refuses flags that contradict them.
fn protocols(a: &Args) -> Result<(Protocols, bool, Option<u32>, f64)> {
    let field_report = a.protocol == "field-report";
    let mut p = if a.protocol == "servebench" {
        Protocols::SERVEBENCH
    } else {
        Protocols::REFERENCE
    };
    if let Some(g) = &a.gpqa_protocol {
        p.gpqa = Protocol::parse(g)?;
    }
    if let Some(m) = &a.math_protocol {
        p.math = Protocol::parse(m)?;
    }
    p.validate()?;
    let mut max_tokens = a.max_tokens;
    let mut temperature = a.temperature.unwrap_or(0.0);
    if field_report {
        if p != Protocols::REFERENCE {
            bail!("--protocol field-report uses the reference protocols (GPQA evalscope-0, math qwen2.5-math): drop --gpqa-protocol/--math-protocol, or use --protocol reference");
        }
        if a.max_tokens.is_some_and(|m| m != FIELD_REPORT_MAX_TOKENS) || temperature != 0.0 {
            bail!("--protocol field-report sends max_tokens {FIELD_REPORT_MAX_TOKENS} and temperature 0 as the report did: drop --max-tokens/--temperature, or use --protocol reference");
        }
        max_tokens = Some(FIELD_REPORT_MAX_TOKENS);
        temperature = 0.0;
    }
    if p.math == Protocol::Qwen25Math {
        if a.grader.as_deref() == Some("servebench") {
            bail!("--grader servebench: the qwen2.5-math protocol grades with Qwen's math_equal; add --math-protocol servebench to use servebench's grader");
        }
        if a.prompt_template.as_deref() == Some("boxed") {
            bail!("--prompt-template boxed: the qwen2.5-math protocol sends the deepseek-math prompt; add --math-protocol servebench to use another template");
        }
    }
    if a.gpqa_shuffle.is_some()
        && p.gpqa != Protocol::Servebench
        && a.datasets
            .iter()
            .any(|d| dataset::Builtin::parse(d) == Some(dataset::Builtin::GpqaDiamond))
    {
        bail!("--gpqa-shuffle applies to the servebench protocol; {} orders options as evalscope does (add --gpqa-protocol servebench)", p.gpqa.as_str());
    }
    Ok((p, field_report, max_tokens, temperature))
}

/// Checks the flags as a run would, without loading anything (for plans checked before they run).
pub fn check(a: &Args) -> Result<()> {
    plan(a).map(|_| ())
}

fn plan(a: &Args) -> Result<Plan> {
    let backend = Backend::parse(&a.backend)?;
    if backend.api == Api::SglangGenerate {
        bail!(
            "--backend {}: eval speaks the OpenAI API; use openai-chat (default) or openai",
            a.backend
        );
    }
    if a.n == 0 {
        bail!("--n must be at least 1");
    }
    if a.concurrency == 0 {
        bail!("--concurrency must be at least 1");
    }
    if a.temperature.is_some_and(|t| !(t.is_finite() && t >= 0.0)) {
        bail!("--temperature must be a number >= 0");
    }
    let (protocols, field_report, max_tokens, temperature) = protocols(a)?;
    if a.top_p.is_some_and(|p| !(p > 0.0 && p <= 1.0)) {
        bail!("--top-p must be in (0, 1]");
    }
    if a.sim.is_none() {
        for u in &a.base_url {
            servebench_load::preflight::check_base_url(u)?;
        }
    }
    let timeout = checked_seconds("--timeout", a.timeout, Lower::Positive)?;
    let backoff = checked_seconds("--retry-backoff", a.retry_backoff, Lower::Zero)?;
    if a.limit == Some(0) {
        bail!("--limit must be at least 1");
    }
    let mut specs = Vec::new();
    for name in a
        .datasets
        .iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
    {
        let b = dataset::Builtin::parse(name).ok_or_else(|| {
            anyhow!("unknown dataset '{name}': use aime24, aime25, math500, gsm8k, gpqa_diamond, or --custom FILE")
        })?;
        if !specs.contains(&DatasetSpec::Builtin(b)) {
            specs.push(DatasetSpec::Builtin(b));
        }
    }
    let grader = GraderKind::parse_custom(&a.custom_grader)?;
    for c in &a.custom {
        let (name, path) = match c.split_once('=') {
            Some((n, p)) if !n.is_empty() && !n.contains(['/', '\\']) => {
                (n.to_string(), PathBuf::from(p))
            }
            _ => {
                let p = PathBuf::from(c);
                let stem = p
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .unwrap_or("custom")
                    .to_string();
                (stem, p)
            }
        };
        if dataset::Builtin::parse(&name).is_some() || specs.iter().any(|s| s.name() == name) {
            bail!("--custom {c}: the name '{name}' is already used; name it explicitly with NAME=PATH");
        }
        specs.push(DatasetSpec::Custom { name, path, grader });
    }
    if specs.is_empty() {
        bail!("no dataset: pass --datasets (aime24,aime25,math500,gsm8k,gpqa_diamond) and/or --custom FILE");
    }
    let mut paths = BTreeMap::new();
    for p in &a.dataset_paths {
        let (name, path) = p
            .split_once('=')
            .ok_or_else(|| anyhow!("--dataset-path {p}: expected NAME=PATH"))?;
        let b = dataset::Builtin::parse(name).ok_or_else(|| {
            anyhow!("--dataset-path {p}: unknown dataset '{name}' (custom sets use --custom)")
        })?;
        paths.insert(b.name().to_string(), PathBuf::from(path));
    }
    let mode = if a.grader.as_deref() == Some("qwen") {
        GraderMode::Qwen
    } else {
        GraderMode::Servebench
    };
    Ok(Plan {
        specs,
        timeout,
        backoff,
        sources: DataSources {
            data_dir: a.data_dir.clone(),
            paths,
            download: a.download,
            hf_cache: None,
        },
        template: PromptTemplate::parse(a.prompt_template.as_deref().unwrap_or("deepseek-math"))?,
        shuffle: GpqaShuffle::parse(a.gpqa_shuffle.as_deref().unwrap_or("seeded"))?,
        grade: GradeOptions {
            mode,
            ..GradeOptions::default()
        },
        backend,
        protocols,
        field_report,
        max_tokens,
        temperature,
    })
}

/// Progress bar of one dataset with the accuracy so far.
/// Re-sends announced one by one; later ones are only counted (a dead server would otherwise print one line
/// per re-send of every sample).
const RETRIES_SHOWN: u64 = 20;

struct Bar {
    bar: Option<indicatif::ProgressBar>,
    /// Re-sends announced so far.
    retries_shown: AtomicU64,
    correct: AtomicU64,
    valid: AtomicU64,
    errors: AtomicU64,
}

impl Bar {
    fn new(quiet: bool) -> Bar {
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let pb = indicatif::ProgressBar::new(0);
            pb.set_style(
                indicatif::ProgressStyle::with_template(
                    "{prefix:>12} [{elapsed_precise}] {bar:30} {pos}/{len} {msg} (ETA {eta})",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            pb
        });
        Bar {
            bar,
            retries_shown: AtomicU64::new(0),
            correct: AtomicU64::new(0),
            valid: AtomicU64::new(0),
            errors: AtomicU64::new(0),
        }
    }

    fn message(&self) -> String {
        let v = self.valid.load(Ordering::Relaxed);
        let c = self.correct.load(Ordering::Relaxed);
        let e = self.errors.load(Ordering::Relaxed);
        let acc = if v > 0 {
            format!("acc {:.1}%", 100.0 * c as f64 / v as f64)
        } else {
            "acc -".into()
        };
        if e > 0 {
            format!("{acc}, {e} errors")
        } else {
            acc
        }
    }
}

impl Progress for Bar {
    fn begin(&self, dataset: &str, total: u64, done: u64, correct: u64) {
        self.valid.store(done, Ordering::Relaxed);
        self.correct.store(correct, Ordering::Relaxed);
        if let Some(b) = &self.bar {
            b.set_prefix(dataset.to_string());
            b.set_length(total);
            b.set_position(done);
            b.set_message(self.message());
        }
    }

    fn sample(&self, p: &Prediction) {
        if p.is_error() {
            self.errors.fetch_add(1, Ordering::Relaxed);
        } else {
            self.valid.fetch_add(1, Ordering::Relaxed);
            if p.correct {
                self.correct.fetch_add(1, Ordering::Relaxed);
            }
        }
        if let Some(b) = &self.bar {
            b.inc(1);
            b.set_message(self.message());
        }
    }

    fn retry(&self, n: &runner::RetryNotice) {
        let shown = self.retries_shown.fetch_add(1, Ordering::Relaxed);
        let line = match shown {
            0..RETRIES_SHOWN => format!("retry: {n}"),
            RETRIES_SHOWN => {
                format!("retry: {n} (further retries are not shown; the summary counts them)")
            }
            _ => return,
        };
        match &self.bar {
            Some(b) => b.println(line),
            None => eprintln!("{line}"),
        }
    }

    fn end(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
            eprintln!(
                "{}: {}/{} samples, {}",
                b.prefix(),
                b.position(),
                b.length().unwrap_or(0),
                self.message()
            );
        }
    }
}

/// The simulator's answer key on disk: a private folder (0700) of private files (0600) under the temporary
/// folder, removed when this is dropped. The simulator reads it once at start, so [`execute`] drops it right
/// after: the key (for GPQA every question with its correct answer) exists on disk only while the simulator
/// starts, before any request, and is never readable by other users.
struct SimKey {
    dir: PathBuf,
    files: Vec<PathBuf>,
}

impl Drop for SimKey {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A folder only the owner can enter; fails if the name exists already.
fn private_dir(dir: &Path) -> std::io::Result<()> {
    let mut b = std::fs::DirBuilder::new();
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    b.create(dir)
}

/// Writes `text` to a new file only the owner can read.
fn private_file(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    o.open(path)?.write_all(text.as_bytes())
}

/// The answer key of the loaded items as text (so the simulator answers exactly what is asked, including GPQA
/// options as cleaned and shuffled here): the file name's extension and its contents, per dataset.
fn sim_key_text(ds: &Dataset) -> Result<(&'static str, String)> {
    let gpqa = ds.items.iter().any(|i| i.choices.is_some());
    let mut text = String::new();
    if gpqa {
        let q = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
        text.push_str("Question,Correct Answer\n");
        for item in &ds.items {
            let k = item
                .gold
                .bytes()
                .next()
                .map_or(0, |b| b.saturating_sub(b'A') as usize)
                .min(3);
            let correct = item.choices.as_ref().map_or("", |c| c[k].as_str());
            text.push_str(&format!("{},{}\n", q(&item.question), q(correct)));
        }
        return Ok(("csv", text));
    }
    for item in &ds.items {
        text.push_str(&serde_json::to_string(
            &json!({"question": item.question, "answer": item.gold}),
        )?);
        text.push('\n');
    }
    Ok(("jsonl", text))
}

/// Writes the answer key of `datasets` into a new private folder `dir`.
fn write_sim_key(datasets: &[Dataset], dir: &Path) -> Result<SimKey> {
    private_dir(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut key = SimKey {
        dir: dir.to_path_buf(),
        files: Vec::new(),
    };
    for ds in datasets {
        let (ext, text) = sim_key_text(ds)?;
        let path = dir.join(format!("{}.{ext}", ds.name));
        private_file(&path, &text).with_context(|| format!("cannot write {}", path.display()))?;
        key.files.push(path);
    }
    Ok(key)
}

/// Runs the eval. Used by `servebench eval` and the end-to-end tests.
pub async fn execute(a: Args, stop: watch::Receiver<bool>) -> Result<EvalOutcome> {
    let p = plan(&a).map_err(super::exit::BadInput::from_err)?;
    preflight(&a)?;
    // Datasets first: a missing file fails before any request.
    let (specs, sources, shuffle) = (p.specs.clone(), p.sources.clone(), p.shuffle);
    let protocols = p.protocols;
    let datasets: Vec<Dataset> = tokio::task::spawn_blocking(move || {
        specs
            .iter()
            .map(|s| dataset::load(s, &sources, &protocols, shuffle))
            .collect::<Result<Vec<_>, _>>()
    })
    .await??;

    // The simulator, in process, answering from the loaded items.
    let key_dir = std::env::temp_dir().join(format!(
        "servebench-eval-key-{}-{}",
        std::process::id(),
        unique()
    ));
    let sim = match &a.sim {
        Some(preset) => {
            let mut cfg = SimConfig::preset(preset)?;
            cfg.accuracy = a.sim_accuracy;
            cfg.seed = a.sim_seed;
            cfg.load_flip_rate = a.sim_load_flip_rate;
            cfg.reasoning = ReasoningMode::parse(&a.sim_reasoning)?;
            let key = write_sim_key(&datasets, &key_dir)?;
            cfg.answer_key_files = key.files.clone();
            let server = SimServer::start(cfg, "127.0.0.1:0".parse()?).await;
            // The simulator has read the key (or failed): it leaves the disk now, on every path.
            drop(key);
            Some(server?)
        }
        None => None,
    };
    let urls = sim
        .as_ref()
        .map_or(a.base_url.clone(), |s| vec![s.base_url()]);
    let result = evaluate(&a, &p, &datasets, &urls, stop).await;
    if let Some(s) = sim {
        s.shutdown().await;
    }
    result
}

/// The prompt recorded in the settings file: GPQA's by protocol, else the math template actually sent.
fn prompt_template_name(ds: &Dataset, template: PromptTemplate) -> String {
    let gpqa = ds.items.iter().any(|i| i.choices.is_some());
    match (gpqa, ds.protocol) {
        (true, Protocol::Evalscope1) => "gpqa-evalscope-1".into(),
        (true, _) => "gpqa-evalscope".into(),
        (false, Protocol::Qwen25Math) => PromptTemplate::DeepseekMath.as_str().into(),
        (false, _) => template.as_str().into(),
    }
}

/// The GPQA option order recorded in the settings file (`None` for other sets).
fn gpqa_order_name(ds: &Dataset, shuffle: GpqaShuffle) -> Option<String> {
    if !ds.items.iter().any(|i| i.choices.is_some()) {
        return None;
    }
    Some(match ds.protocol {
        Protocol::Evalscope0 => GpqaShuffle::Evalscope0.as_str().into(),
        Protocol::Evalscope1 => GpqaShuffle::Evalscope1.as_str().into(),
        _ => shuffle.as_str().into(),
    })
}

fn unique() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos() as u64)
}

/// One client per endpoint (each its own connection pool). With several, every endpoint must answer
/// `/v1/models` before any work starts, and none may be given twice; the error names the endpoint.
async fn endpoint_clients(a: &Args, p: &Plan, urls: &[String]) -> Result<Vec<Client>> {
    let redact = super::secrets::redact_url;
    if urls.is_empty() {
        bail!("no --base-url to evaluate");
    }
    let mut clients = Vec::new();
    for (i, u) in urls.iter().enumerate() {
        let u = u.trim_end_matches('/');
        if u.contains(',') {
            bail!(
                "--base-url {}: one URL per flag; repeat --base-url for each endpoint",
                redact(u)
            );
        }
        if urls[..i].iter().any(|v| v.trim_end_matches('/') == u) {
            bail!(
                "--base-url {} is given twice: give each endpoint once",
                redact(u)
            );
        }
        let mut ccfg = ClientConfig::new(u, p.backend.clone());
        ccfg.api_key = a.api_key.clone().filter(|k| !k.is_empty());
        // The client's other limits keep their defaults.
        ccfg.timeouts.total = p.timeout;
        clients.push(Client::new(ccfg)?);
    }
    let https: Vec<_> = clients.iter().map(Client::http).collect();
    servebench_load::preflight::probe_other_endpoints(&https, urls, a.api_key.as_deref()).await?;
    Ok(clients)
}

async fn evaluate(
    a: &Args,
    p: &Plan,
    datasets: &[Dataset],
    urls: &[String],
    mut stop: watch::Receiver<bool>,
) -> Result<EvalOutcome> {
    let dispatch = servebench_load::dispatch::Dispatch::parse(&a.dispatch)?;
    let clients = endpoint_clients(a, p, urls).await?;
    let client = &clients[0];
    let base_url = urls[0].as_str();
    // The server answers (refused, TLS to a plain port, … each said as such), and the model it lists.
    let probe =
        servebench_load::preflight::probe(client.http(), base_url, a.api_key.as_deref()).await?;
    let model = servebench_load::preflight::model_of(a.model.as_deref(), &probe, base_url)?;
    let simulated = a.sim.is_some()
        || client
            .get_json("/get_server_info")
            .await
            .is_some_and(|v| v["simulated"] == json!(true));
    let quiet = a.json;
    if !quiet {
        let at: Vec<String> = urls.iter().map(|u| super::secrets::redact_url(u)).collect();
        eprintln!(
            "eval: model {model} at {}{}{}",
            at.join(", "),
            if urls.len() > 1 {
                format!(
                    " ({} endpoints, {} dispatch)",
                    urls.len(),
                    dispatch.as_str()
                )
            } else {
                String::new()
            },
            if simulated { " (SIMULATED)" } else { "" }
        );
        for ds in datasets {
            eprintln!("{}: protocol {}", ds.name, ds.protocol.as_str());
        }
        if p.max_tokens.is_none() {
            eprintln!(
                "warning: --max-tokens not set: max_tokens is not sent and the server's own limit applies, so \
                 answers may be cut at another length than in the runs you compare with (the field report used {FIELD_REPORT_MAX_TOKENS})"
            );
        }
        if a.n > 1 && p.temperature == 0.0 {
            eprintln!("warning: --n {} with --temperature 0: the samples of a question will be (nearly) identical", a.n);
        }
    }
    let cfg = RunConfig {
        model: model.clone(),
        api: p.backend.api,
        template: p.template,
        max_tokens: p.max_tokens,
        temperature: p.temperature,
        top_p: a.top_p,
        seed: a.seed,
        n: a.n,
        concurrency: a.concurrency,
        retries: a.retries,
        backoff: p.backoff,
        stream: !a.disable_stream,
        grade: p.grade.clone(),
        limit: a.limit,
    };
    std::fs::create_dir_all(&a.output_dir)
        .with_context(|| format!("cannot create {}", a.output_dir.display()))?;
    let mut out = EvalOutcome {
        reports: Vec::new(),
        report_files: Vec::new(),
        interrupted: false,
        retries: 0,
    };
    for ds in datasets {
        if *stop.borrow() {
            out.interrupted = true;
            break;
        }
        let files = OutputFiles::new(&a.output_dir, &ds.name);
        let settings = RunSettings {
            dataset: ds.name.clone(),
            model: model.clone(),
            api: match p.backend.api {
                Api::Chat => "chat".into(),
                _ => "completions".into(),
            },
            prompt_template: prompt_template_name(ds, p.template),
            max_tokens: p.max_tokens,
            temperature: p.temperature,
            top_p: a.top_p,
            seed: a.seed,
            grader: ds.grader.as_str().into(),
            grader_mode: match ds.protocol.grade_options(&p.grade).mode {
                GraderMode::Qwen => "qwen".into(),
                GraderMode::Servebench => "servebench".into(),
            },
            gpqa_shuffle: gpqa_order_name(ds, p.shuffle),
            data_sha256: ds.source_sha256.clone(),
            protocol: ds.protocol.as_str().into(),
        };
        let prepared = predictions::prepare(&files, &settings, a.fresh)?;
        for m in &prepared.moved {
            eprintln!("{}: moved the old file aside to {}", ds.name, m.display());
        }
        if let Some(line) = prepared.log.torn_line {
            eprintln!(
                "{}: ignored a damaged last line ({}:{line}, a run killed mid-write); it will be redone",
                ds.name,
                files.predictions.display()
            );
        }
        let finished = prepared.log.finished();
        let jobs = runner::plan(ds, &cfg, &finished);
        let items = cfg.item_count(ds);
        let total = items as u64 * u64::from(a.n);
        let selected: std::collections::HashSet<&str> =
            ds.items[..items].iter().map(|i| i.id.as_str()).collect();
        let done_rows: Vec<&Prediction> = prepared
            .log
            .rows
            .iter()
            .filter(|r| !r.is_error() && r.sample < a.n && selected.contains(r.id.as_str()))
            .collect();
        let bar = Bar::new(quiet);
        bar.begin(
            &ds.name,
            total,
            done_rows.len() as u64,
            done_rows.iter().filter(|r| r.correct).count() as u64,
        );
        let mut writer = PredictionWriter::open(&files.predictions, &prepared.log)?;
        if !jobs.is_empty() {
            tokio::select! {
                r = runner::run_on(&clients, dispatch, ds, &cfg, jobs, &mut writer, &bar) => {
                    out.retries += r?.retries;
                }
                _ = stop.wait_for(|s| *s) => {
                    out.interrupted = true;
                }
            }
        }
        bar.end();
        drop(writer);
        let log = predictions::read_log(&files.predictions)?;
        let run_settings = json!({
            "run": serde_json::to_value(&settings)?,
            "protocol": ds.protocol.as_str(),
            "protocol_preset": a.protocol,
            "exclude_errors": a.exclude_errors,
            "n": a.n,
            "limit": a.limit,
            "concurrency": a.concurrency,
            "retries": a.retries,
            "timeout_s": a.timeout,
            "stream": !a.disable_stream,
            "backend": a.backend,
            "base_url": super::secrets::redact_url(base_url),
            "measured_server": a.measured_server,
        });
        let mut run_settings = run_settings;
        if urls.len() > 1 {
            run_settings["base_urls"] =
                urls.iter().map(|u| super::secrets::redact_url(u)).collect();
            run_settings["dispatch"] = dispatch.as_str().into();
        }
        let ctx = ReportContext {
            model: &model,
            n: a.n,
            items,
            simulated,
            settings: run_settings,
            grade: &p.grade,
            predictions_file: files.predictions.display().to_string(),
            exclude_errors: a.exclude_errors,
            field_report: p.field_report,
        };
        let rep = report::build(ds, &log.rows, &ctx);
        let text = serde_json::to_string_pretty(&rep)?;
        std::fs::write(&files.report, text + "\n")
            .with_context(|| format!("cannot write {}", files.report.display()))?;
        out.reports.push(rep);
        out.report_files.push(files.report.clone());
        if out.interrupted {
            break;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn args(extra: &[&str]) -> Args {
        let mut argv = vec!["servebench", "eval"];
        argv.extend_from_slice(extra);
        match Cli::try_parse_from(argv).expect("valid flags").command {
            Command::Eval(a) => *a,
            _ => unreachable!(),
        }
    }

    #[test]
    fn flags_parse_into_a_plan() {
        let a = args(&[
            "--datasets",
            "gpqa_diamond,aime24,math500",
            "--data-dir",
            "/data",
            "--dataset-path",
            "gpqa_diamond=/secure/g.csv",
            "--custom",
            "mine=/tmp/set.jsonl",
            "--custom-grader",
            "exact",
            "--max-tokens",
            "20480",
            "--n",
            "8",
            "--temperature",
            "0.6",
            "--top-p",
            "0.95",
            "--prompt-template",
            "boxed",
            "--gpqa-shuffle",
            "none",
            "--grader",
            "qwen",
            "--protocol",
            "servebench",
        ]);
        let p = plan(&a).unwrap();
        assert_eq!(p.protocols, Protocols::SERVEBENCH);
        assert_eq!((p.max_tokens, p.temperature), (Some(20480), 0.6));
        let names: Vec<String> = p.specs.iter().map(DatasetSpec::name).collect();
        assert_eq!(names, ["gpqa_diamond", "aime24", "math500", "mine"]);
        assert_eq!(
            p.sources.paths["gpqa_diamond"],
            PathBuf::from("/secure/g.csv")
        );
        assert_eq!(p.template, PromptTemplate::Boxed);
        assert_eq!(p.shuffle, GpqaShuffle::None);
        assert_eq!(p.grade.mode, GraderMode::Qwen);
        assert!(matches!(
            &p.specs[3],
            DatasetSpec::Custom {
                grader: GraderKind::Exact,
                ..
            }
        ));
        assert_eq!(
            args(&["--datasets", "math500", "--sim"]).sim.as_deref(),
            Some("fast")
        );
    }

    #[test]
    fn protocol_flags_and_the_field_report_preset() {
        let p = plan(&args(&["--datasets", "gpqa_diamond,aime24"])).unwrap();
        assert_eq!(p.protocols, Protocols::REFERENCE);
        assert_eq!(
            (p.max_tokens, p.temperature, p.field_report),
            (None, 0.0, false)
        );
        let p = plan(&args(&[
            "--datasets",
            "gpqa_diamond",
            "--gpqa-protocol",
            "evalscope-1",
        ]))
        .unwrap();
        assert_eq!(
            (p.protocols.gpqa, p.protocols.math),
            (Protocol::Evalscope1, Protocol::Qwen25Math)
        );
        let p = plan(&args(&[
            "--datasets",
            "aime24",
            "--protocol",
            "field-report",
        ]))
        .unwrap();
        assert_eq!(
            (p.max_tokens, p.temperature, p.field_report),
            (Some(FIELD_REPORT_MAX_TOKENS), 0.0, true)
        );
        let err = |flags: &[&str]| plan(&args(flags)).err().unwrap().to_string();
        let e = err(&[
            "--datasets",
            "aime24",
            "--protocol",
            "field-report",
            "--max-tokens",
            "4096",
        ]);
        assert!(e.contains("max_tokens 20480"), "{e}");
        let e = err(&[
            "--datasets",
            "aime24",
            "--protocol",
            "field-report",
            "--temperature",
            "0.6",
        ]);
        assert!(e.contains("temperature 0"), "{e}");
        let e = err(&[
            "--datasets",
            "gpqa_diamond",
            "--protocol",
            "field-report",
            "--gpqa-protocol",
            "evalscope-1",
        ]);
        assert!(e.contains("reference protocols"), "{e}");
        let e = err(&["--datasets", "aime24", "--grader", "servebench"]);
        assert!(e.contains("--math-protocol servebench"), "{e}");
        let e = err(&["--datasets", "aime24", "--prompt-template", "boxed"]);
        assert!(e.contains("deepseek-math"), "{e}");
        let e = err(&["--datasets", "gpqa_diamond", "--gpqa-shuffle", "none"]);
        assert!(e.contains("--gpqa-protocol servebench"), "{e}");
        assert!(plan(&args(&[
            "--datasets",
            "aime24",
            "--math-protocol",
            "servebench",
            "--grader",
            "servebench"
        ]))
        .is_ok());
    }

    #[test]
    fn bad_flags_are_explained() {
        let e = plan(&args(&["--datasets", "mmlu"]))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("unknown dataset 'mmlu'"), "{e}");
        let e = plan(&args(&[])).err().unwrap().to_string();
        assert!(e.contains("no dataset"), "{e}");
        let e = plan(&args(&["--datasets", "aime24", "--n", "0"]))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("--n"), "{e}");
        let e = plan(&args(&["--datasets", "aime24", "--backend", "sglang"]))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("OpenAI API"), "{e}");
        let e = plan(&args(&["--datasets", "aime24", "--dataset-path", "x"]))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("NAME=PATH"), "{e}");
        let e = plan(&args(&["--custom", "aime24=/x.jsonl"]))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("already used"), "{e}");
    }

    #[cfg(unix)]
    #[test]
    fn sim_key_is_private_and_removed_when_dropped() {
        use std::os::unix::fs::PermissionsExt;
        let item = |q: &str, choices: Option<[String; 4]>, gold: &str| dataset::Item {
            id: q.into(),
            question: q.into(),
            choices,
            gold: gold.into(),
        };
        let ds = |name: &str, items| Dataset {
            name: name.into(),
            source: PathBuf::from("x"),
            source_sha256: String::new(),
            grader: GraderKind::Math,
            protocol: servebench_eval::protocol::Protocol::Servebench,
            items,
        };
        let four = || Some(["w".to_string(), "x".into(), "y".into(), "z".into()]);
        let sets = [
            ds("math", vec![item("1+1?", None, "2")]),
            ds("gpqa", vec![item("Which?", four(), "C")]),
        ];
        let base = tempfile::tempdir().unwrap();
        let dir = base.path().join("key");
        let key = write_sim_key(&sets, &dir).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(key.files.len(), 2);
        for f in &key.files {
            assert_eq!(mode(f), 0o600, "{}", f.display());
        }
        let gpqa = std::fs::read_to_string(&key.files[1]).unwrap();
        assert_eq!(gpqa, "Question,Correct Answer\n\"Which?\",\"y\"\n");
        // An existing folder is never reused (another user could have made it).
        assert!(write_sim_key(&sets, &dir).is_err());
        drop(key);
        assert!(!dir.exists());
    }
}
