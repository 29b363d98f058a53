//! The decision report of a study: `study.md`, `study.html` (self-contained) and `study.json` in the study
//! folder. The verdict sentence comes first ([`servebench_report::decision::decide`], each deployment against
//! the first), then the evidence: capacity under the SLO and cost per deployment, accuracy with 95% intervals,
//! the paired accuracy comparisons, throughput and latency at matching points, and the server's own metrics next
//! to the client's TTFT at the point where the SLO broke.
//!
//! Capacity: a swept concurrency meets the SLO when every point run at it (every length and ratio) has at least
//! the SLO's attainment of good requests (from the per-request records); the capacity is the highest concurrency
//! such that it and every lower swept one meet the SLO, and `first_failing` the next swept one above it.
//!
//! All text from files and plans reaches the HTML through [`servebench_report::html`]'s escaping (`escape`,
//! `table`, `figure`, `Page`).

use crate::server_metrics;
use serde::Serialize;
use servebench_core::record::RequestRecord;
use servebench_core::slo::Slo;
use servebench_report::charts::{self, ChartImage, LineChart, Series, XScale};
use servebench_report::compare::accuracy::compare_evals;
use servebench_report::compare::{accuracy_table, detail_table, match_points, ratio_table};
use servebench_report::decision::{decide, dollars, Decision, DecisionRules, DeploymentEvidence};
use servebench_report::html::{self, Cell, Page};
use servebench_report::perf_charts::{write_perf_charts, Variant};
use servebench_report::tables::Table;
use servebench_report::{Collection, ReportError, RunSummary};
use std::path::{Path, PathBuf};

/// One deployment's folder and prices.
#[derive(Debug, Clone)]
pub struct DeploymentInput {
    pub name: String,
    pub dir: PathBuf,
    pub gpus: Option<u32>,
    pub price_per_gpu_hour: Option<f64>,
}

/// What the report is made from.
#[derive(Debug, Clone)]
pub struct StudyInput {
    pub title: String,
    pub out_dir: PathBuf,
    /// The first is the baseline the others are compared with.
    pub deployments: Vec<DeploymentInput>,
    pub slo: Option<Slo>,
    pub rules: DecisionRules,
}

#[derive(Debug, thiserror::Error)]
pub enum StudyReportError {
    #[error(transparent)]
    Report(#[from] ReportError),
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
}

/// What was written.
#[derive(Debug, Clone, Serialize)]
pub struct StudyOutput {
    /// One verdict per deployment after the first (against the first); empty without `[slo]`.
    pub decisions: Vec<Decision>,
    pub evidence: Vec<DeploymentEvidence>,
    pub files: Vec<PathBuf>,
    pub notes: Vec<String>,
}

/// A swept concurrency and whether every point at it met the SLO.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LevelOutcome {
    pub concurrency: f64,
    pub meets: bool,
}

/// (capacity, first_failing) from per-point outcomes (several points may share a concurrency: all must meet).
pub fn capacity_of(points: &[LevelOutcome]) -> (Option<f64>, Option<f64>) {
    let mut levels: Vec<LevelOutcome> = Vec::new();
    for p in points {
        match levels.iter_mut().find(|l| l.concurrency == p.concurrency) {
            Some(l) => l.meets &= p.meets,
            None => levels.push(*p),
        }
    }
    levels.sort_by(|a, b| a.concurrency.total_cmp(&b.concurrency));
    let mut capacity = None;
    for l in &levels {
        if !l.meets {
            return (capacity, Some(l.concurrency));
        }
        capacity = Some(l.concurrency);
    }
    (capacity, None)
}

/// The per-request records of a run (lines that do not parse are skipped).
fn records(run: &RunSummary) -> Option<Vec<RequestRecord>> {
    let text = std::fs::read_to_string(run.details.as_ref()?).ok()?;
    Some(
        text.lines()
            .filter_map(|l| serde_json::from_str::<RequestRecord>(l).ok())
            .collect(),
    )
}

/// What the client said about itself in the result object a run was read from.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct ClientLoad {
    /// The result's `client_saturated` flag (event-loop lag p99 above 5 ms, or more than 1% of reads late).
    flagged: bool,
    /// The client's own delay: the larger of its event-loop lag p99 and its p99 read delay (ms).
    delay_ms: f64,
    /// Client CPU-seconds per second of the run.
    cpu_share: Option<f64>,
}

/// A client that used this much of a core per second of the run was busy doing its own work: its saturation
/// counts at a deciding point whatever the margin (it may also have sent less load than asked for).
const CPU_BOUND_SHARE: f64 = 0.9;

fn client_load(run: &RunSummary) -> ClientLoad {
    let Ok(text) = std::fs::read_to_string(&run.file) else {
        return ClientLoad::default();
    };
    let parsed = servebench_report::lenient_json::parse_values(&text);
    let Some(v) = parsed.values.iter().find(|v| v.line == run.line) else {
        return ClientLoad::default();
    };
    let num = |k: &str| v.value[k].as_f64().filter(|x| x.is_finite() && *x >= 0.0);
    let delay_ms = [num("p99_client_lag_ms"), num("p99_client_read_delay_ms")]
        .into_iter()
        .flatten()
        .fold(0.0, f64::max);
    let cpu_share = match (num("client_cpu_s"), num("duration")) {
        (Some(cpu), Some(d)) if d > 0.0 => Some(cpu / d),
        _ => None,
    };
    ClientLoad {
        flagged: v.value["client_saturated"] == serde_json::json!(true),
        delay_ms,
        cpu_share,
    }
}

/// `slo` with every limit moved by the client's delay `d` (ms) in direction `sign` (+1 looser, −1 tighter).
/// TTFT and end-to-end latency move by `d`; TPOT by `d` spread over the fewest output tokens after the first
/// (a late read shifts one token's time, and TPOT averages it over the others).
fn slo_moved(slo: &Slo, d: f64, tokens_after_first: f64, sign: f64) -> Slo {
    let mv = |l: Option<f64>, by: f64| l.map(|x| (x + sign * by).max(0.0));
    Slo {
        ttft_ms: mv(slo.ttft_ms, d),
        tpot_ms: mv(slo.tpot_ms, d / tokens_after_first.max(1.0)),
        e2e_ms: mv(slo.e2e_ms, d),
        attainment: slo.attainment,
    }
}

/// Could the client's own delay have changed this run's SLO outcome? True when the outcome differs with every
/// limit loosened by the delay and with every limit tightened by it (the run is within the delay of the line),
/// or when the client was CPU-bound.
fn client_could_decide(recs: &[RequestRecord], duration: f64, slo: &Slo, load: ClientLoad) -> bool {
    if load.cpu_share.is_some_and(|c| c >= CPU_BOUND_SHARE) {
        return true;
    }
    let fewest = recs
        .iter()
        .filter(|r| !r.warmup && r.ok())
        .filter_map(|r| r.output_tokens)
        .min()
        .unwrap_or(2);
    let after_first = fewest.saturating_sub(1) as f64;
    let loose = slo_moved(slo, load.delay_ms, after_first, 1.0);
    let tight = slo_moved(slo, load.delay_ms, after_first, -1.0);
    loose.evaluate(recs, duration).meets != tight.evaluate(recs, duration).meets
}

/// One run's SLO outcome and whether the client may have decided it.
struct RunOutcome {
    concurrency: f64,
    meets: bool,
    flagged: bool,
    client_could_decide: bool,
}

fn run_outcome(
    d: &DeploymentInput,
    r: &RunSummary,
    c: f64,
    slo: &Slo,
    notes: &mut Vec<String>,
) -> RunOutcome {
    let load = client_load(r);
    let duration = r.duration.unwrap_or(0.0);
    let (meets, could) = match records(r) {
        Some(recs) if !recs.is_empty() => (
            slo.evaluate(&recs, duration).meets,
            load.flagged && client_could_decide(&recs, duration, slo, load),
        ),
        _ => {
            notes.push(format!(
                "{}: {} has no per-request records: counted as not meeting the SLO",
                d.name,
                r.file.display()
            ));
            (false, load.flagged)
        }
    };
    RunOutcome {
        concurrency: c,
        meets,
        flagged: load.flagged,
        client_could_decide: could,
    }
}

/// Concurrencies where the client was flagged: those that decide the capacity bracket and where it could have
/// changed the outcome (first), and the others (second).
fn saturation_split(
    outcomes: &[RunOutcome],
    capacity: Option<f64>,
    first_failing: Option<f64>,
) -> (Vec<f64>, Vec<f64>) {
    let (mut deciding, mut busy) = (Vec::new(), Vec::new());
    for o in outcomes.iter().filter(|o| o.flagged) {
        let decides = Some(o.concurrency) == capacity || Some(o.concurrency) == first_failing;
        let list = if decides && o.client_could_decide {
            &mut deciding
        } else {
            &mut busy
        };
        list.push(o.concurrency);
    }
    for l in [&mut deciding, &mut busy] {
        l.sort_by(f64::total_cmp);
        l.dedup();
    }
    busy.retain(|c| !deciding.contains(c));
    (deciding, busy)
}

/// Output tokens and correct samples of every eval of a deployment (`None` when a dataset has no predictions
/// or a row no token count: a partial count would understate the cost).
fn eval_tokens(
    d: &DeploymentInput,
    col: &Collection,
    notes: &mut Vec<String>,
) -> (Option<u64>, Option<u64>) {
    if col.evals.is_empty() {
        return (None, None);
    }
    let (mut tokens, mut correct) = (0u64, 0u64);
    for e in &col.evals {
        let Some(p) = &e.predictions else {
            notes.push(format!(
                "{}: {} has no predictions file: no cost per correct answer",
                d.name,
                e.name()
            ));
            return (None, None);
        };
        let s = match servebench_report::eval_files::read_predictions(p, &mut Vec::new()) {
            Ok(s) => s,
            Err(e) => {
                notes.push(format!("{}: {e}: no cost per correct answer", d.name));
                return (None, None);
            }
        };
        if s.rows_without_tokens > 0 {
            notes.push(format!(
                "{}: {} rows of {} have no completion_tokens: no cost per correct answer",
                d.name,
                s.rows_without_tokens,
                p.display()
            ));
            return (None, None);
        }
        tokens = tokens.saturating_add(s.completion_tokens);
        correct = correct.saturating_add(s.correct_samples());
    }
    (Some(tokens), Some(correct))
}

/// One deployment's evidence for the decision.
fn evidence(
    d: &DeploymentInput,
    col: &Collection,
    slo: Option<&Slo>,
    notes: &mut Vec<String>,
) -> DeploymentEvidence {
    let runs = &col.runs;
    let outcomes: Vec<RunOutcome> = match slo {
        Some(slo) => runs
            .iter()
            .filter_map(|r| Some(run_outcome(d, r, r.max_concurrency?, slo, notes)))
            .collect(),
        None => Vec::new(),
    };
    let levels: Vec<LevelOutcome> = outcomes
        .iter()
        .map(|o| LevelOutcome {
            concurrency: o.concurrency,
            meets: o.meets,
        })
        .collect();
    let (capacity, first_failing) = capacity_of(&levels);
    let (client_saturated_at, client_busy_at) =
        saturation_split(&outcomes, capacity, first_failing);
    if !client_busy_at.is_empty() {
        let at: Vec<String> = client_busy_at.iter().map(|c| opt(Some(*c), 0)).collect();
        notes.push(format!(
            "{}: the client was flagged as saturated at concurrency {}, but not where it could change the verdict \
             (those points do not decide the capacity, or their SLO outcome holds with every latency moved by the \
             client's own delay); see each point's warnings",
            d.name,
            at.join(", ")
        ));
    }
    let at_cap: Vec<f64> = runs
        .iter()
        .filter(|r| capacity.is_some() && r.max_concurrency == capacity)
        .filter_map(|r| r.output_throughput)
        .collect();
    let (ok, failed) = runs.iter().fold((0.0, 0.0), |(o, f), r| {
        (o + r.completed.unwrap_or(0.0), f + r.failed.unwrap_or(0.0))
    });
    let (eval_output_tokens, eval_correct) = eval_tokens(d, col, notes);
    DeploymentEvidence {
        name: d.name.clone(),
        capacity,
        first_failing,
        output_tok_s_at_capacity: (!at_cap.is_empty())
            .then(|| at_cap.iter().sum::<f64>() / at_cap.len() as f64),
        gpus: d.gpus,
        price_per_gpu_hour: d.price_per_gpu_hour,
        client_saturated_at,
        client_busy_at,
        failure_rate: if ok + failed > 0.0 {
            failed / (ok + failed)
        } else {
            0.0
        },
        eval_output_tokens,
        eval_correct,
    }
}

fn collect_dir(d: &DeploymentInput, notes: &mut Vec<String>) -> Collection {
    match servebench_report::collect(std::slice::from_ref(&d.dir)) {
        Ok(c) => {
            notes.extend(c.notes.iter().map(|n| format!("{}: {n}", d.name)));
            c
        }
        Err(e) => {
            notes.push(format!("{}: {e}", d.name));
            Collection::default()
        }
    }
}

fn opt(v: Option<f64>, dec: usize) -> String {
    v.map(|x| format!("{x:.dec$}"))
        .unwrap_or_else(|| "–".into())
}

/// Where the client saturated: at deciding points (counted), elsewhere (reported only), or nowhere.
fn saturation_cell(e: &DeploymentEvidence) -> String {
    let list = |v: &[f64]| {
        v.iter()
            .map(|c| opt(Some(*c), 0))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match (
        e.client_saturated_at.is_empty(),
        e.client_busy_at.is_empty(),
    ) {
        (true, true) => "no".into(),
        (false, true) => format!("at {} (decides)", list(&e.client_saturated_at)),
        (true, false) => format!("busy at {} (decides nothing)", list(&e.client_busy_at)),
        (false, false) => format!(
            "at {} (decides); busy at {} (decides nothing)",
            list(&e.client_saturated_at),
            list(&e.client_busy_at)
        ),
    }
}

/// Capacity, throughput and cost per deployment.
fn capacity_table(ev: &[DeploymentEvidence]) -> Table {
    let rows = ev
        .iter()
        .map(|e| {
            vec![
                Cell::text(&e.name),
                Cell::num(e.gpus.map(|g| g.to_string()).unwrap_or_else(|| "–".into())),
                Cell::num(opt(e.price_per_gpu_hour, 2)),
                Cell::num(opt(e.capacity, 0)),
                Cell::num(opt(e.first_failing, 0)),
                Cell::num(opt(e.output_tok_s_at_capacity, 1)),
                Cell::num(opt(e.cost_per_million_tokens(), 2)),
                Cell::num(opt(e.output_tokens_per_correct(), 1)),
                Cell::num(
                    e.cost_per_correct_answer()
                        .map(dollars)
                        .unwrap_or_else(|| "–".into()),
                ),
                Cell::text(saturation_cell(e)),
                Cell::num(format!("{:.2}%", e.failure_rate * 100.0)),
            ]
        })
        .collect();
    Table {
        headers: vec![
            "Deployment",
            "GPUs",
            "$/GPU-hour",
            "Capacity (conc.)",
            "First failing",
            "Output tok/s at capacity",
            "$ per M output tokens",
            "Eval output tokens per correct answer",
            "$ per correct answer",
            "Client saturated",
            "Failed requests",
        ],
        rows,
    }
}

/// Accuracy per deployment and dataset, with the 95% interval score ± 1.96 · stderr.
fn accuracy_per_deployment(names: &[String], cols: &[Collection]) -> Table {
    let mut rows = Vec::new();
    for (name, c) in names.iter().zip(cols) {
        for e in &c.evals {
            let Some(r) = &e.report else { continue };
            let score = r.score.map(|s| s * 100.0);
            let half = r.stderr.map(|s| 1.96 * s * 100.0);
            let ci = match (score, half) {
                (Some(s), Some(h)) => format!("[{:.1}, {:.1}]", s - h, s + h),
                _ => "–".into(),
            };
            rows.push(vec![
                Cell::text(name),
                Cell::text(e.name()),
                Cell::text(r.metric.clone().unwrap_or_default()),
                Cell::num(opt(r.num, 0)),
                Cell::num(opt(score, 1)),
                Cell::num(ci),
            ]);
        }
    }
    Table {
        headers: vec![
            "Deployment",
            "Dataset",
            "Metric",
            "Items",
            "Score (%)",
            "95% CI",
        ],
        rows,
    }
}

/// The run at which to show the server's state for one setting: the first failing concurrency, else the
/// highest.
fn telling_runs(runs: &[RunSummary], first_failing: Option<f64>) -> Vec<&RunSummary> {
    let mut settings: Vec<servebench_report::Setting> = Vec::new();
    for r in runs {
        if !settings.contains(&r.setting()) {
            settings.push(r.setting());
        }
    }
    settings
        .iter()
        .filter_map(|s| {
            let of: Vec<&RunSummary> = runs.iter().filter(|r| r.setting() == *s).collect();
            of.iter()
                .find(|r| first_failing.is_some() && r.max_concurrency == first_failing)
                .or_else(|| {
                    of.iter().max_by(|a, b| {
                        a.max_concurrency
                            .unwrap_or(0.0)
                            .total_cmp(&b.max_concurrency.unwrap_or(0.0))
                    })
                })
                .copied()
        })
        .collect()
}

fn chart_name(parts: &[String]) -> String {
    parts
        .join("_")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Server state (running, queued, KV usage) and the client's TTFT over one point, side by side.
fn server_charts(
    name: &str,
    run: &RunSummary,
    dir: &Path,
    notes: &mut Vec<String>,
) -> Result<Vec<ChartImage>, ReportError> {
    let Some(details) = &run.details else {
        return Ok(Vec::new());
    };
    let path = server_metrics::file_for(details);
    if !path.is_file() {
        return Ok(Vec::new());
    }
    let m = match server_metrics::read(&path) {
        Ok(m) => m,
        Err(e) => {
            notes.push(format!("{name}: {e}"));
            return Ok(Vec::new());
        }
    };
    let conc = opt(run.max_concurrency, 0);
    let what = format!("{} at concurrency {conc}", run.setting().label());
    let pick = |f: fn(&servebench_load::prometheus::ServerSample) -> Option<f64>, scale: f64| {
        m.series
            .samples
            .iter()
            .filter_map(|s| f(s).map(|v| (s.t_s, v * scale)))
            .collect::<Vec<_>>()
    };
    let series = |label: &str, color: usize, points: Vec<(f64, f64)>| Series {
        label: label.into(),
        color,
        dashed: false,
        points,
        point_labels: Vec::new(),
    };
    let server = LineChart {
        title: format!("{name}: server during {what}"),
        subtitle: format!(
            "{}/metrics every {} s",
            m.series.url.trim_end_matches("/metrics"),
            m.series.interval_s
        ),
        x_desc: "seconds from the point's start".into(),
        y_desc: "requests · KV-cache usage (%)".into(),
        x_scale: XScale::Linear,
        series: vec![
            series("running requests", 0, pick(|s| s.running, 1.0)),
            series("queued requests", 1, pick(|s| s.queued, 1.0)),
            series("KV-cache usage (%)", 2, pick(|s| s.kv_usage, 100.0)),
        ],
    };
    let mut ttft: Vec<(f64, f64)> = records(run)
        .unwrap_or_default()
        .iter()
        .filter(|r| !r.warmup)
        .filter_map(|r| {
            let t = (r.send_unix_ns as f64 / 1e6 - m.started_unix_ms) / 1000.0;
            r.ttft_ms.map(|v| (t, v / 1000.0))
        })
        .collect();
    ttft.sort_by(|a, b| a.0.total_cmp(&b.0));
    let client = LineChart {
        title: format!("{name}: client TTFT during {what}"),
        subtitle: "each request's TTFT at the time it was sent".into(),
        x_desc: "seconds from the point's start".into(),
        y_desc: "TTFT (s)".into(),
        x_scale: XScale::Linear,
        series: vec![series("TTFT", 3, ttft)],
    };
    let stem = chart_name(&[
        name.to_string(),
        opt(run.setting().input_len, 0),
        opt(run.setting().output_len, 0),
        run.setting()
            .ratio
            .map(|r| r.to_string())
            .unwrap_or_default(),
        format!("c{conc}"),
    ]);
    let mut out = Vec::new();
    for (kind, chart) in [("server", server), ("ttft", client)] {
        if chart.has_points() {
            let n = format!("{kind}_{stem}");
            out.push(charts::render(dir, &n, &chart.title.clone(), &chart)?);
        }
    }
    Ok(out)
}

/// Writes `study.md`, `study.html` and `study.json` into `input.out_dir`.
pub fn write_study_report(input: &StudyInput) -> Result<StudyOutput, StudyReportError> {
    let out = &input.out_dir;
    let write_err = |p: &Path, source| StudyReportError::Write {
        path: p.display().to_string(),
        source,
    };
    std::fs::create_dir_all(out).map_err(|e| write_err(out, e))?;
    let mut notes = Vec::new();
    let names: Vec<String> = input.deployments.iter().map(|d| d.name.clone()).collect();
    let cols: Vec<Collection> = input
        .deployments
        .iter()
        .map(|d| collect_dir(d, &mut notes))
        .collect();
    let ev: Vec<DeploymentEvidence> = input
        .deployments
        .iter()
        .zip(&cols)
        .map(|(d, c)| evidence(d, c, input.slo.as_ref(), &mut notes))
        .collect();
    let slo_text = input.slo.map(|s| s.describe());
    // Each deployment against the first.
    let mut pairs = Vec::new();
    for i in 1..cols.len() {
        let (la, lb) = (names[0].as_str(), names[i].as_str());
        let acc = compare_evals(&cols[0].evals, &cols[i].evals, la, lb, &mut notes)?;
        let points = match_points(&cols[0].runs, &cols[i].runs, la, lb, &mut notes);
        let decision = slo_text
            .as_deref()
            .map(|slo| decide(&ev[0], &ev[i], &acc, slo, &input.rules));
        pairs.push((i, acc, points, decision));
    }
    let charts_dir = out.join("charts");
    let variants: Vec<Variant> = names
        .iter()
        .zip(&cols)
        .map(|(n, c)| Variant {
            label: n,
            runs: &c.runs,
        })
        .collect();
    let mut images = if cols.iter().any(|c| !c.runs.is_empty()) {
        write_perf_charts(&variants, &charts_dir, &mut notes)?
    } else {
        Vec::new()
    };
    let mut server_images = Vec::new();
    for ((name, c), e) in names.iter().zip(&cols).zip(&ev) {
        for run in telling_runs(&c.runs, e.first_failing) {
            server_images.extend(server_charts(name, run, &charts_dir, &mut notes)?);
        }
    }
    let verdicts: Vec<String> = match &slo_text {
        Some(_) => pairs
            .iter()
            .filter_map(|(_, _, _, d)| d.as_ref().map(|d| d.sentence.clone()))
            .collect(),
        None => vec![
            "No verdict: the plan has no [slo], so there is no capacity to compare (add [slo] with ttft_ms, tpot_ms or e2e_ms)."
                .into(),
        ],
    };
    let tables = Tables {
        capacity: capacity_table(&ev),
        accuracy: accuracy_per_deployment(&names, &cols),
        pairs: pairs
            .iter()
            .map(|(i, acc, points, _)| {
                (
                    format!("{} vs {}", names[*i], names[0]),
                    accuracy_table(acc),
                    ratio_table(points),
                    detail_table(points),
                )
            })
            .collect(),
    };
    let meta = vec![
        format!("Deployments: {}", names.join(", ")),
        format!("SLO: {}", slo_text.clone().unwrap_or_else(|| "none".into())),
    ];
    let md = markdown(
        input,
        &verdicts,
        &meta,
        &tables,
        &images,
        &server_images,
        &notes,
    );
    let md_path = out.join("study.md");
    std::fs::write(&md_path, md).map_err(|e| write_err(&md_path, e))?;
    let page = html_page(
        input,
        &verdicts,
        meta,
        &tables,
        &images,
        &server_images,
        &notes,
    );
    let html_path = out.join("study.html");
    std::fs::write(&html_path, page).map_err(|e| write_err(&html_path, e))?;
    let decisions: Vec<Decision> = pairs.into_iter().filter_map(|p| p.3).collect();
    let mut files = vec![md_path, html_path];
    images.append(&mut server_images);
    files.extend(
        images
            .iter()
            .flat_map(|c| [c.svg_path.clone(), c.png_path.clone()]),
    );
    let result = StudyOutput {
        decisions,
        evidence: ev,
        files,
        notes,
    };
    let json_path = out.join("study.json");
    let text =
        serde_json::to_string_pretty(&result).map_err(|e| write_err(&json_path, e.into()))?;
    std::fs::write(&json_path, text).map_err(|e| write_err(&json_path, e))?;
    Ok(result)
}

struct Tables {
    capacity: Table,
    accuracy: Table,
    /// (title, accuracy comparison, B/A ratios, both values).
    pairs: Vec<(String, Table, Table, Table)>,
}

const CAPACITY_LEAD: &str = "Capacity: the highest swept concurrency at which every point (each length and ratio) \
    met the SLO, with every lower one meeting it too; first failing: the next swept one. Cost: GPUs × price per \
    GPU-hour over the output tokens per second at capacity. Cost per correct answer: the output tokens the \
    accuracy eval spent (wrong answers included) per correct answer × that cost per output token. Client \
    saturated: points where the client flagged itself (event-loop lag or late reads); it counts against the \
    verdict only at the capacity or first failing concurrency, and only where moving every latency by the \
    client's own delay would change that point's SLO outcome (or the client was CPU-bound).";

fn markdown(
    input: &StudyInput,
    verdicts: &[String],
    meta: &[String],
    t: &Tables,
    images: &[ChartImage],
    server_images: &[ChartImage],
    notes: &[String],
) -> String {
    let mut md = format!("# {}\n\n", input.title);
    for v in verdicts {
        md.push_str(&format!("**{v}**\n\n"));
    }
    for m in meta {
        md.push_str(&format!("{m}  \n"));
    }
    md.push_str(&format!(
        "\n## Capacity and cost\n\n{CAPACITY_LEAD}\n\n{}\n## Accuracy\n\n{}\n",
        t.capacity.markdown(),
        t.accuracy.markdown()
    ));
    for (title, acc, ratios, detail) in &t.pairs {
        md.push_str(&format!(
            "## {title}\n\n### Accuracy, paired\n\n{}\n### Throughput and latency at matching points (ratio to the first)\n\n{}\n<details><summary>Both values</summary>\n\n{}\n</details>\n\n",
            acc.markdown(),
            ratios.markdown(),
            detail.markdown()
        ));
    }
    for (heading, list) in [
        ("Performance charts", images),
        ("Server metrics during load", server_images),
    ] {
        if !list.is_empty() {
            md.push_str(&format!("## {heading}\n\n"));
            for c in list {
                md.push_str(&format!("![{}](charts/{}.png)\n\n", c.title, c.name));
            }
        }
    }
    if !notes.is_empty() {
        md.push_str("## Notes\n\n");
        for n in notes {
            md.push_str(&format!("- {n}\n"));
        }
    }
    md
}

fn html_page(
    input: &StudyInput,
    verdicts: &[String],
    meta: Vec<String>,
    t: &Tables,
    images: &[ChartImage],
    server_images: &[ChartImage],
    notes: &[String],
) -> String {
    let mut sections = Vec::new();
    let mut v = String::from("<ul class=\"statements\" id=\"verdict\">\n");
    for s in verdicts {
        v.push_str(&format!("<li><strong>{}</strong></li>\n", html::escape(s)));
    }
    v.push_str("</ul>\n");
    sections.push(("decision".to_string(), "Decision".to_string(), v));
    sections.push((
        "capacity".into(),
        "Capacity and cost".into(),
        format!(
            "<p class=\"lead\">{}</p>\n{}",
            html::escape(CAPACITY_LEAD),
            t.capacity.html("capacity-table")
        ),
    ));
    sections.push((
        "accuracy".into(),
        "Accuracy".into(),
        t.accuracy.html("accuracy-table"),
    ));
    for (i, (title, acc, ratios, detail)) in t.pairs.iter().enumerate() {
        sections.push((
            format!("pair-{i}"),
            title.clone(),
            format!(
                "<h3>Accuracy, paired</h3>\n{}<h3>Throughput and latency at matching points (ratio to the first)</h3>\n{}<details><summary>Both values</summary>\n{}</details>\n",
                acc.html(&format!("pair-{i}-accuracy")),
                ratios.html(&format!("pair-{i}-ratios")),
                detail.html(&format!("pair-{i}-detail"))
            ),
        ));
    }
    for (id, heading, list) in [
        ("perf-charts", "Performance charts", images),
        ("server-charts", "Server metrics during load", server_images),
    ] {
        if !list.is_empty() {
            let mut h = String::from("<div class=\"charts\">\n");
            for c in list {
                h.push_str(&html::figure(c, "charts"));
            }
            h.push_str("</div>\n");
            sections.push((id.into(), heading.into(), h));
        }
    }
    if !notes.is_empty() {
        sections.push(("notes".into(), "Notes".into(), html::list(notes)));
    }
    Page {
        title: input.title.clone(),
        meta,
        badge: None,
        sections,
    }
    .render()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A request with TTFT `ttft` ms and 32 output tokens over `e2e` ms.
    fn rec(ttft: f64, e2e: f64) -> RequestRecord {
        RequestRecord {
            ttft_ms: Some(ttft),
            e2e_ms: Some(e2e),
            output_tokens: Some(32),
            ..Default::default()
        }
    }

    const SLO: Slo = Slo {
        ttft_ms: Some(1000.0),
        tpot_ms: Some(60.0),
        e2e_ms: None,
        attainment: 0.99,
    };

    fn busy(delay_ms: f64, cpu_share: f64) -> ClientLoad {
        ClientLoad {
            flagged: true,
            delay_ms,
            cpu_share: Some(cpu_share),
        }
    }

    #[test]
    fn a_client_decides_a_point_only_within_its_delay_of_the_slo_or_when_cpu_bound() {
        // Far from the line either way: a 20 ms client delay cannot change the outcome.
        let far_fail = [rec(300.0, 900.0), rec(1640.0, 2300.0)];
        let far_meet = [rec(235.0, 640.0), rec(880.0, 1300.0)];
        for recs in [&far_fail[..], &far_meet[..]] {
            assert!(!client_could_decide(recs, 5.0, &SLO, busy(20.0, 0.05)));
        }
        // TTFT 1010 ms fails by 10 ms: a client 20 ms late may have made it fail; 985 ms meets by 15 ms.
        assert!(client_could_decide(
            &[rec(300.0, 900.0), rec(1010.0, 1800.0)],
            5.0,
            &SLO,
            busy(20.0, 0.05)
        ));
        assert!(client_could_decide(
            &[rec(985.0, 1600.0)],
            5.0,
            &SLO,
            busy(20.0, 0.05)
        ));
        // TPOT: 20 ms over 31 tokens moves TPOT by 0.65 ms; (1000 + 31 × 60.5 − 1000) / 31 = 60.5 fails by 0.5.
        assert!(client_could_decide(
            &[rec(100.0, 100.0 + 31.0 * 60.5)],
            5.0,
            &SLO,
            busy(20.0, 0.05)
        ));
        assert!(!client_could_decide(
            &[rec(100.0, 100.0 + 31.0 * 62.0)],
            5.0,
            &SLO,
            busy(20.0, 0.05)
        ));
        // A CPU-bound client (0.95 CPU-seconds per second) counts whatever the margin: it may have under-driven.
        assert!(client_could_decide(&far_meet, 5.0, &SLO, busy(20.0, 0.95)));
    }

    #[test]
    fn the_client_load_comes_from_the_result_line_of_the_run() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c64.json");
        std::fs::write(
            &file,
            "{\"duration\": 4.0, \"client_saturated\": false}\n\
             {\"duration\": 5.0, \"client_saturated\": true, \"p99_client_lag_ms\": 22.8, \
             \"p99_client_read_delay_ms\": 26.3, \"client_cpu_s\": 0.5}\n",
        )
        .unwrap();
        let run = |line| RunSummary {
            file: file.clone(),
            line,
            ..Default::default()
        };
        assert_eq!(
            client_load(&run(2)),
            ClientLoad {
                flagged: true,
                delay_ms: 26.3,
                cpu_share: Some(0.1)
            }
        );
        assert_eq!(
            client_load(&run(1)),
            ClientLoad {
                flagged: false,
                delay_ms: 0.0,
                cpu_share: None
            }
        );
    }

    fn outcome(concurrency: f64, meets: bool, flagged: bool, could: bool) -> RunOutcome {
        RunOutcome {
            concurrency,
            meets,
            flagged,
            client_could_decide: could,
        }
    }

    #[test]
    fn saturation_counts_only_at_the_capacity_and_first_failing_points() {
        // The quickstart on a busy machine: flagged everywhere, never within its delay of the SLO.
        let all = [
            outcome(1.0, true, true, false),
            outcome(4.0, true, true, false),
            outcome(16.0, true, true, false),
            outcome(64.0, false, true, false),
        ];
        assert_eq!(
            saturation_split(&all, Some(16.0), Some(64.0)),
            (vec![], vec![1.0, 4.0, 16.0, 64.0])
        );
        // A saturated client whose delay could flip the first failing point (64) and a lower point (4).
        let real = [
            outcome(1.0, true, false, false),
            outcome(4.0, true, true, true),
            outcome(16.0, true, false, false),
            outcome(64.0, false, true, true),
        ];
        assert_eq!(
            saturation_split(&real, Some(16.0), Some(64.0)),
            (vec![64.0], vec![4.0])
        );
        // Two settings at one concurrency: one that decides makes the level count once.
        let two = [
            outcome(8.0, true, true, true),
            outcome(8.0, true, true, false),
        ];
        assert_eq!(saturation_split(&two, Some(8.0), None), (vec![8.0], vec![]));
    }

    fn l(concurrency: f64, meets: bool) -> LevelOutcome {
        LevelOutcome { concurrency, meets }
    }

    #[test]
    fn capacity_is_the_top_of_the_unbroken_run_of_met_levels() {
        assert_eq!(
            capacity_of(&[
                l(8.0, true),
                l(1.0, true),
                l(4.0, true),
                l(16.0, false),
                l(32.0, false)
            ]),
            (Some(8.0), Some(16.0))
        );
        // Every point at a level must meet: one failing setting fails the level.
        assert_eq!(
            capacity_of(&[l(1.0, true), l(4.0, true), l(4.0, false), l(8.0, true)]),
            (Some(1.0), Some(4.0))
        );
        assert_eq!(
            capacity_of(&[l(1.0, false), l(2.0, true)]),
            (None, Some(1.0))
        );
        assert_eq!(
            capacity_of(&[l(1.0, true), l(2.0, true)]),
            (Some(2.0), None)
        );
        assert_eq!(capacity_of(&[]), (None, None));
    }
}
