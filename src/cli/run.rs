//! `servebench run PLAN.toml`: the whole workflow in one folder — optionally launch the server and wait until
//! it is ready, record the machine, run the accuracy evals, run the load sweep, write the report.
//!
//! ```toml
//! output_dir = "runs/dsr1-fp8"
//! label = "DeepSeek-R1 FP8"
//!
//! [server]                          # optional: servebench starts it and stops it at the end
//! command = "python3 -m sglang.launch_server --model-path /models/DeepSeek-R1 --tp 8 --port 30000"
//! ready_timeout_s = 1800
//! log = "server.log"                # inside output_dir
//!
//! [target]                          # as in a sweep plan: base_url or sim, backend, model, tokenizer
//! base_url = "http://127.0.0.1:30000"
//! backend = "sglang"
//! tokenizer = "/models/DeepSeek-R1"
//!
//! [eval]                            # optional: `servebench eval` flags (target and output folder are filled in)
//! args = ["--datasets", "gpqa_diamond,aime24,math500", "--data-dir", "/data", "--max-tokens", "20480"]
//!
//! [sweep]                           # optional: the [dataset], [axes] and [run] tables of a sweep plan
//! axes = { input_output = ["3500:1500", "3000:400"], concurrency = [1, 4, 8, 16, 32, 64], range_ratio = [0.7, 0.8] }
//! run = { tp = 8 }
//! ```

use crate::sweep_plan::{DatasetSpec, Plan, RunSpec, Target};
use anyhow::{bail, Context, Result};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// The whole workflow from one plan: launch the server, capture the machine, eval, sweep, report.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Workflow plan (TOML).
    pub plan: PathBuf,
    /// Re-run sweep points and evals from scratch (default: resume).
    #[arg(long)]
    pub fresh: bool,
    /// Bearer token (default: $OPENAI_API_KEY). Never written to any file.
    #[arg(long, env = "OPENAI_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSpec {
    pub command: String,
    #[serde(default = "default_ready")]
    pub ready_timeout_s: f64,
    #[serde(default = "default_log")]
    pub log: String,
}

fn default_ready() -> f64 {
    1800.0
}
fn default_log() -> String {
    "server.log".into()
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvalSpec {
    #[serde(default)]
    pub args: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepSpec {
    #[serde(default)]
    pub dataset: DatasetSpec,
    pub axes: crate::sweep_plan::Axes,
    #[serde(default)]
    pub run: RunSpec,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Workflow {
    pub output_dir: PathBuf,
    pub label: Option<String>,
    pub server: Option<ServerSpec>,
    #[serde(default)]
    pub target: Target,
    pub eval: Option<EvalSpec>,
    pub sweep: Option<SweepSpec>,
}

impl Workflow {
    pub fn from_file(path: &Path) -> Result<Workflow> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read plan {}", path.display()))?;
        let mut w: Workflow =
            toml::from_str(&text).with_context(|| format!("plan {}", path.display()))?;
        if w.eval.is_none() && w.sweep.is_none() {
            bail!(
                "plan {}: nothing to do: add an [eval] and/or a [sweep] table",
                path.display()
            );
        }
        if w.target.base_url.is_none() && w.target.sim.is_none() {
            bail!(
                "plan {}: [target] needs base_url (a server) or sim (a simulator preset)",
                path.display()
            );
        }
        // Relative paths in the plan are relative to the plan's folder.
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            if w.output_dir.is_relative() {
                w.output_dir = normalize(&dir.join(&w.output_dir));
            }
        }
        Ok(w)
    }

    /// The sweep plan, writing into `<output_dir>/perf`.
    pub fn sweep_plan(&self) -> Option<Plan> {
        self.sweep.as_ref().map(|s| {
            let mut run = s.run.clone();
            run.output_dir = self.output_dir.join("perf");
            Plan {
                target: self.target.clone(),
                dataset: s.dataset.clone(),
                axes: s.axes.clone(),
                run,
            }
        })
    }

    /// The eval flags, with the target and `<output_dir>/eval` filled in.
    pub fn eval_argv(&self, fresh: bool) -> Option<Vec<String>> {
        let e = self.eval.as_ref()?;
        let mut v: Vec<String> = vec!["servebench".into(), "eval".into()];
        match (&self.target.sim, &self.target.base_url) {
            (Some(_), _) => v.push("--sim".into()),
            (None, Some(u)) => {
                v.push("--base-url".into());
                v.push(u.clone());
            }
            (None, None) => {}
        }
        if let Some(m) = &self.target.model {
            v.push("--model".into());
            v.push(m.clone());
        }
        v.push("--output-dir".into());
        v.push(self.output_dir.join("eval").display().to_string());
        if fresh {
            v.push("--fresh".into());
        }
        v.extend(e.args.iter().cloned());
        Some(v)
    }
}

/// `a/b/../c` → `a/c` (lexically; nothing is resolved on disk).
fn normalize(p: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::ParentDir
                if matches!(out.components().next_back(), Some(Component::Normal(_))) =>
            {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    if out.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        out
    }
}

/// A server process started by servebench, stopped when dropped.
struct Server {
    child: Child,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn launch(spec: &ServerSpec, out: &Path) -> Result<Server> {
    let log_path = out.join(&spec.log);
    let log = std::fs::File::create(&log_path)
        .with_context(|| format!("cannot create {}", log_path.display()))?;
    let err = log.try_clone()?;
    let child = Command::new("sh")
        .arg("-c")
        .arg(&spec.command)
        .stdout(Stdio::from(log))
        .stderr(Stdio::from(err))
        .spawn()
        .with_context(|| format!("cannot start the server command: {}", spec.command))?;
    println!(
        "server: started (pid {}), log in {}",
        child.id(),
        log_path.display()
    );
    Ok(Server { child })
}

async fn wait_ready(
    base_url: &str,
    server: &mut Option<Server>,
    timeout: Duration,
    log: &Path,
) -> Result<()> {
    servebench_load::ensure_tls_provider();
    let http = reqwest::Client::new();
    let t0 = Instant::now();
    loop {
        for path in ["/health", "/v1/models"] {
            if let Ok(r) = http
                .get(format!("{base_url}{path}"))
                .timeout(Duration::from_secs(5))
                .send()
                .await
            {
                if r.status().is_success() {
                    println!("server: ready after {:.0} s", t0.elapsed().as_secs_f64());
                    return Ok(());
                }
            }
        }
        if let Some(s) = server {
            if let Ok(Some(status)) = s.child.try_wait() {
                bail!(
                    "the server command exited ({status}) before it was ready: see {}",
                    log.display()
                );
            }
        }
        if t0.elapsed() > timeout {
            bail!("the server at {base_url} was not ready after {:.0} s (no 200 from /health or /v1/models)", timeout.as_secs_f64());
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

pub fn run(a: Args) -> Result<()> {
    let w = Workflow::from_file(&a.plan).map_err(super::exit::BadInput::from_err)?;
    std::fs::create_dir_all(&w.output_dir)
        .with_context(|| format!("cannot create {}", w.output_dir.display()))?;
    std::fs::copy(&a.plan, w.output_dir.join("plan.toml")).ok();
    std::fs::write(
        w.output_dir.join("env.json"),
        serde_json::to_string_pretty(&super::env::collect())?,
    )?;
    let rt = super::runtime()?;
    let stop_rx = super::stop_on_ctrl_c(
        &rt,
        "stopping after the requests in flight; rerun the same command to resume",
    );
    rt.block_on(workflow(&w, &a, stop_rx))
}

async fn workflow(w: &Workflow, a: &Args, stop: watch::Receiver<bool>) -> Result<()> {
    // Exit codes (see `exit`): decided at the end, after the report is written.
    let mut outcome = Vec::new();
    let mut interrupted = false;
    let mut server = match &w.server {
        Some(spec) => Some(launch(spec, &w.output_dir)?),
        None => None,
    };
    if let (Some(spec), Some(url)) = (&w.server, &w.target.base_url) {
        let log = w.output_dir.join(&spec.log);
        wait_ready(
            url.trim_end_matches('/'),
            &mut server,
            Duration::from_secs_f64(spec.ready_timeout_s),
            &log,
        )
        .await?;
    }
    if let Some(argv) = w.eval_argv(a.fresh) {
        println!("== eval");
        let args = match <super::Cli as clap::Parser>::try_parse_from(&argv) {
            Ok(super::Cli {
                command: super::Command::Eval(e),
                ..
            }) => {
                let mut e = *e;
                if e.api_key.is_none() {
                    e.api_key = a.api_key.clone();
                }
                e
            }
            Ok(_) => unreachable!("eval argv parses to eval"),
            Err(e) => {
                return Err(super::exit::BadInput::from_err(format!(
                    "[eval] args are not valid `servebench eval` flags: {e}"
                )))
            }
        };
        let out = super::eval::execute(args, stop.clone()).await?;
        for r in &out.reports {
            println!(
                "{}: {} = {:.4} ± {:.4} ({} items)",
                r.dataset,
                r.metric,
                r.score.unwrap_or(f64::NAN),
                r.stderr.unwrap_or(f64::NAN),
                r.num
            );
        }
        if out.interrupted {
            return Err(super::exit::Interrupted("during eval: rerun to resume".into()).into());
        }
        let ok = out.reports.iter().map(|r| r.samples as u64).sum();
        let failed = out.reports.iter().map(|r| r.errors as u64).sum();
        outcome.push(super::exit::check_failures(
            "eval samples",
            ok,
            failed,
            None,
        ));
    }
    if let Some(plan) = w.sweep_plan() {
        println!("== sweep");
        let points = plan.points()?;
        let s = super::sweep::sweep(&plan, &points, a.fresh, a.api_key.as_deref(), stop.clone())
            .await?;
        println!(
            "sweep: {} run, {} done earlier, {} skipped, {} failed",
            s.run, s.done, s.skipped, s.failed
        );
        interrupted = s.interrupted;
        outcome.push(super::exit::check_failures(
            "sweep requests",
            s.requests_ok,
            s.requests_failed,
            None,
        ));
    }
    drop(server);
    println!("== report");
    let collection = servebench_report::collect(std::slice::from_ref(&w.output_dir))?;
    let opts = servebench_report::ReportOptions {
        out_dir: w.output_dir.clone(),
        title: w.label.clone(),
        ..Default::default()
    };
    let written = servebench_report::write_report(&collection, &opts)?;
    for note in &written.notes {
        eprintln!("note: {note}");
    }
    println!(
        "everything is in {} (report.html, summary.csv)",
        w.output_dir.display()
    );
    if interrupted {
        return Err(super::exit::Interrupted("during the sweep: rerun to resume".into()).into());
    }
    outcome.into_iter().collect::<Result<Vec<()>, _>>()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_fills_in_target_and_folders() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("w.toml");
        std::fs::write(
            &p,
            "output_dir = \"out\"\n[target]\nsim = \"fast\"\n[eval]\nargs = [\"--datasets\", \"math500\"]\n[sweep]\naxes = { input_output = [\"64:8\"], concurrency = [1, 2] }\n",
        )
        .unwrap();
        let w = Workflow::from_file(&p).unwrap();
        assert_eq!(w.output_dir, dir.path().join("out"));
        let argv = w.eval_argv(false).unwrap().join(" ");
        assert!(
            argv.contains("--sim")
                && argv.contains("out/eval")
                && argv.ends_with("--datasets math500"),
            "{argv}"
        );
        let plan = w.sweep_plan().unwrap();
        assert_eq!(plan.run.output_dir, dir.path().join("out/perf"));
        assert_eq!(plan.points().unwrap().len(), 2);
        assert_eq!(
            normalize(Path::new("examples/../demo-run")),
            PathBuf::from("demo-run")
        );
        assert_eq!(normalize(Path::new("../x/./y")), PathBuf::from("../x/y"));
        std::fs::write(&p, "output_dir = \"out\"\n[target]\nsim = \"fast\"\n").unwrap();
        assert!(Workflow::from_file(&p)
            .unwrap_err()
            .to_string()
            .contains("nothing to do"));
    }
}
