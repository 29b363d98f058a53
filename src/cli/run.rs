//! `servebench run PLAN.toml`: the whole workflow in one folder — optionally launch the server and wait until
//! it is ready, record the machine and the server measured, run the accuracy evals, run the load sweep, stop the
//! server, write the report. The plan format is in `docs/plans.md` (parsed by [`crate::run_plan`]); the server
//! lifecycle in [`crate::launch`].

use crate::launch::{self, LaunchedServer, ServerIdentity, ServerSpec};
use crate::run_plan::Workflow;
use crate::secrets::Redactor;
use crate::sweep_plan::{Plan, Point};
use anyhow::{anyhow, bail, Context, Result};
use serde_json::json;
use std::path::PathBuf;
use tokio::sync::watch;

/// The whole workflow from one plan: launch the server, capture the machine, eval, sweep, report.
#[derive(Debug, Clone, clap::Args)]
#[command(
    infer_long_args = true,
    after_help = "The plan (TOML) is documented key by key, with every default, in docs/plans.md; \
                  examples/demo.toml runs against the built-in simulator. A plan with [[deployment]] tables is a \
                  study: each deployment is launched and measured in turn, then study.md/study.html give the \
                  verdict (examples/quickstart.toml). Relative paths in a plan are relative to the plan file."
)]
pub struct Args {
    /// Workflow plan (TOML; keys and defaults: docs/plans.md). Relative paths in it are relative to its folder.
    pub plan: PathBuf,
    /// Re-run sweep points and evals from scratch (default: resume).
    #[arg(long)]
    pub fresh: bool,
    /// Bearer token sent to the server. Wins over the plan's api_key_env and over $OPENAI_API_KEY (the default).
    /// Never written to any file.
    #[arg(long)]
    pub api_key: Option<String>,
    /// When a server already answers at [target] base_url, measure it instead of refusing to launch [server]
    /// (every result then records that servebench did not launch it). Same as `reuse_running = true`.
    #[arg(long)]
    pub use_running_server: bool,
    /// Check the plan and print what would run (launch command, eval flags, sweep points); touch nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Study plans only: run one shard of the deployments, I/N with I the 0-based index (0 to N-1), or auto/N
    /// to read I from $JOB_COMPLETION_INDEX (Kubernetes Indexed Jobs). Deployment k (plan order) goes to shard
    /// k mod N. The decision report is written by a run without --shard once every deployment is done.
    /// Default: every deployment.
    #[arg(long, value_name = "I/N", value_parser = crate::shard::parse_flag)]
    pub shard: Option<crate::shard::Shard>,
}

/// A plan checked and turned into the work to do, before anything runs.
pub(crate) struct Prepared {
    w: Workflow,
    server: Option<ServerSpec>,
    reuse_running: bool,
    /// For readiness and identity probes, and every request.
    pub(crate) api_key: Option<String>,
    eval: Option<super::eval::Args>,
    sweep: Option<(Plan, Vec<Point>, Option<String>)>,
    /// Re-run from scratch.
    fresh: bool,
}

/// Parses `servebench SUBCOMMAND …`; also says whether `--api-key` was on the command line (not from the
/// environment).
fn parse_command(argv: &[String]) -> Result<(super::Command, clap::ArgMatches), clap::Error> {
    use clap::{CommandFactory, FromArgMatches};
    let m = super::Cli::command().try_get_matches_from(argv)?;
    let cli = super::Cli::from_arg_matches(&m)?;
    let sub = m.subcommand().map(|(_, s)| s.clone()).unwrap_or_default();
    Ok((cli.command, sub))
}

fn from_command_line(m: &clap::ArgMatches, id: &str) -> bool {
    m.value_source(id) == Some(clap::parser::ValueSource::CommandLine)
}

/// The API key: `--api-key`, else the variable the plan names in `api_key_env`, else `fallback` (a key in the
/// plan's own flags), else $OPENAI_API_KEY.
fn api_key(a: &Args, w: &Workflow) -> Result<Option<String>> {
    if let Some(k) = &a.api_key {
        return Ok(Some(k.clone()));
    }
    if let Some(name) = &w.api_key_env {
        return match std::env::var(name) {
            Ok(k) if !k.is_empty() => Ok(Some(k)),
            _ => bail!("the plan's api_key_env names ${name}, which is not set: export it or pass --api-key"),
        };
    }
    Ok(None)
}

fn env_key() -> Option<String> {
    std::env::var("OPENAI_API_KEY")
        .ok()
        .filter(|k| !k.is_empty())
}

fn prepare(a: &Args) -> Result<Prepared> {
    prepare_workflow(Workflow::from_file(&a.plan)?, a)
}

/// A run plan checked and turned into the work to do (also each deployment of a study).
pub(crate) fn prepare_workflow(w: Workflow, a: &Args) -> Result<Prepared> {
    let chosen = api_key(a, &w)?;
    let server = w.server_spec(chosen.as_deref().or(env_key().as_deref()))?;
    let reuse_running = a.use_running_server || w.server.as_ref().is_some_and(|s| s.reuse_running);
    let eval = match w.eval_argv(a.fresh) {
        Some(argv) => Some(prepare_eval(&w, &argv, chosen.as_deref())?),
        None => None,
    };
    let sweep = match w.sweep_plan() {
        Some(plan) => Some(prepare_sweep(plan, chosen.as_deref())?),
        None => None,
    };
    Ok(Prepared {
        api_key: chosen.or_else(env_key),
        w,
        server,
        reuse_running,
        eval,
        sweep,
        fresh: a.fresh,
    })
}

/// The eval flags parsed and checked, their paths made relative to the plan, the key chosen.
fn prepare_eval(w: &Workflow, argv: &[String], chosen: Option<&str>) -> Result<super::eval::Args> {
    let (cmd, m) = parse_command(argv)
        .map_err(|e| anyhow!("[eval] args are not valid `servebench eval` flags: {e}"))?;
    let super::Command::Eval(e) = cmd else {
        bail!("[eval] args: expected eval flags");
    };
    let mut e = *e;
    if from_command_line(&m, "data_dir") {
        e.data_dir = e.data_dir.map(|d| w.rebase(&d));
    }
    let rebase_value = |v: &str| w.rebase(v.as_ref()).display().to_string();
    e.dataset_paths = e
        .dataset_paths
        .iter()
        .map(|p| match p.split_once('=') {
            Some((n, path)) => format!("{n}={}", rebase_value(path)),
            None => p.clone(),
        })
        .collect();
    e.custom = e
        .custom
        .iter()
        .map(|c| match c.split_once('=') {
            Some((n, path)) if !n.is_empty() && !n.contains(['/', '\\']) => {
                format!("{n}={}", rebase_value(path))
            }
            _ => rebase_value(c),
        })
        .collect();
    super::eval::check(&e).context("[eval] args")?;
    // --api-key, or the plan's own key, wins over $OPENAI_API_KEY.
    let plan_key = from_command_line(&m, "api_key")
        .then(|| e.api_key.clone())
        .flatten();
    e.api_key = chosen.map(str::to_string).or(plan_key).or_else(env_key);
    Ok(e)
}

/// The sweep's points, its bench flags checked on the first point, the key chosen (`None`: the one in the
/// plan's extra_args).
fn prepare_sweep(plan: Plan, chosen: Option<&str>) -> Result<(Plan, Vec<Point>, Option<String>)> {
    let points = plan.points()?;
    let url = plan
        .target
        .base_url
        .as_deref()
        .unwrap_or("http://127.0.0.1:1");
    // The same check the sweep makes before its first point: every bench flag and value, the key resolved
    // (the chosen one wins; else a key in extra_args; else the environment, as bench reads it).
    let base = super::sweep::base_config(&plan, url, chosen).map_err(|e| {
        anyhow!(
            "[sweep] values or run.extra_args are not valid `servebench bench` flags: {}",
            super::exit::message(&e)
        )
    })?;
    // Every request of the sweep (its health checks too) carries the key the bench resolved.
    Ok((plan, points, base.api_key))
}

pub(crate) fn dry_run(p: &Prepared) {
    let w = &p.w;
    println!("output folder: {}", w.output_dir.display());
    match &p.server {
        Some(s) => {
            println!("server: launch {}", s.command.redacted());
            println!(
                "  in {}, log {}, ready within {:.0} s at {}, stop grace {:.0} s{}",
                s.cwd.as_deref().unwrap_or(w.plan_dir.as_path()).display(),
                s.log_path.display(),
                s.ready_timeout.as_secs_f64(),
                crate::secrets::redact_url(&s.base_url),
                s.stop_grace.as_secs_f64(),
                if p.reuse_running {
                    "; a server already running there is measured instead"
                } else {
                    ""
                }
            );
            for k in s.env.keys() {
                println!("  env {k}");
            }
        }
        None => match (&w.target.base_url, &w.target.sim) {
            (Some(u), _) => println!(
                "server: the one running at {}",
                crate::secrets::redact_url(u)
            ),
            (None, Some(preset)) => {
                println!("server: the built-in simulator in process (preset {preset})")
            }
            (None, None) => {}
        },
    }
    if let Some(argv) = w.eval_argv(false) {
        println!("eval: {}", Redactor::new().argv(&argv).join(" "));
    }
    if let Some((_, points, _)) = &p.sweep {
        for (i, pt) in points.iter().enumerate() {
            println!(
                "sweep [{}/{}] {} → {} ({} prompts)",
                i + 1,
                points.len(),
                pt.label(),
                pt.file.display(),
                pt.num_prompts
            );
        }
    }
}

pub fn run(a: Args) -> Result<()> {
    if let Ok(text) = std::fs::read_to_string(&a.plan) {
        if crate::study_plan::is_study(&text) {
            return super::study::run(a);
        }
    }
    if a.shard.is_some() {
        return Err(super::exit::BadInput(
            "--shard splits the deployments of a study plan ([[deployment]] tables); this plan is a single run: \
             to split a load sweep over machines use `servebench sweep PLAN.toml --shard I/N`"
                .into(),
        )
        .into());
    }
    let p = prepare(&a).map_err(super::exit::BadInput::from_err)?;
    if a.dry_run {
        dry_run(&p);
        return Ok(());
    }
    let out = &p.w.output_dir;
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    // The plan, as run, without its secrets.
    let text = std::fs::read_to_string(&a.plan)
        .with_context(|| format!("cannot read {}", a.plan.display()))?;
    let mut redactor = Redactor::new();
    if let Some(k) = &p.api_key {
        redactor.add_secret(k);
    }
    std::fs::write(out.join("plan.toml"), redactor.plan_text(&text))
        .with_context(|| format!("cannot write {}", out.join("plan.toml").display()))?;
    let rt = super::runtime()?;
    let stop_rx = stop_on_signals(&rt);
    let end = rt.block_on(execute(p, stop_rx))?;
    if !end.finished {
        return Err(super::exit::Interrupted(
            "the run was interrupted: rerun the same command to resume".into(),
        )
        .into());
    }
    end.failures?;
    Ok(())
}

/// The server to measure: launched (and ready), or the one already there, or the in-process simulator.
async fn start_server(
    p: &Prepared,
    mut stop: watch::Receiver<bool>,
) -> Result<(Option<LaunchedServer>, ServerIdentity)> {
    if let Some(spec) = &p.server {
        println!(
            "server: {} {} (log {})",
            if p.reuse_running {
                "launching (unless one already runs there)"
            } else {
                "launching"
            },
            spec.command.redacted(),
            spec.log_path.display()
        );
        let t0 = std::time::Instant::now();
        // Ctrl-C while waiting: the launch is dropped, which stops what it started.
        let (s, id) = tokio::select! {
            s = launch::launch_or_reuse(spec, p.reuse_running) => s?,
            _ = stop.wait_for(|s| *s) => bail!("interrupted while waiting for the server to be ready; it was stopped"),
        };
        match &s {
            Some(_) => println!(
                "server: ready after {:.0} s: {}",
                t0.elapsed().as_secs_f64(),
                id.summary()
            ),
            None => eprintln!("server: NOTE {}: {}", launch::REUSED_NOTE, id.summary()),
        }
        return Ok((s, id));
    }
    let t = &p.w.target;
    if let Some(url) = &t.base_url {
        let note =
            "not launched by servebench: the server running at [target] base_url".to_string();
        let id = launch::attach(url.trim_end_matches('/'), p.api_key.as_deref(), Some(note)).await;
        println!("server: {}", id.summary());
        return Ok((None, id));
    }
    let preset = t.sim.clone().unwrap_or_default();
    Ok((
        None,
        ServerIdentity {
            launched: false,
            base_url: "in-process".into(),
            command: None,
            pid: None,
            started_at: None,
            listener_pid: None,
            models: t.model.iter().cloned().collect(),
            server_info: json!({"simulated": true, "preset": preset}),
            note: Some("the built-in simulator, started in process by each step".into()),
        },
    ))
}

/// Launch, env, eval, sweep, stop, report. True when everything finished (false: interrupted, rerun to
/// resume).
/// How one run ended: finished (report written) or interrupted, and the failure check of its eval and sweep
/// (exit code 3 when everything failed).
pub(crate) struct RunEnd {
    pub finished: bool,
    pub failures: Result<(), super::exit::TooManyFailures>,
}

pub(crate) async fn execute(mut p: Prepared, stop: watch::Receiver<bool>) -> Result<RunEnd> {
    let (mut server, identity) = start_server(&p, stop.clone()).await?;
    let mut env = super::env::collect();
    let identity_json = serde_json::to_value(&identity)?;
    if let Some(o) = env.as_object_mut() {
        o.insert("server".into(), identity_json.clone());
    }
    std::fs::write(
        p.w.output_dir.join("env.json"),
        serde_json::to_string_pretty(&env)?,
    )?;
    if let Some(e) = &mut p.eval {
        e.measured_server = Some(identity_json.clone());
    }
    if let Some((plan, _, _)) = &mut p.sweep {
        plan.run.extra_args.push("--measured-server".into());
        plan.run.extra_args.push(identity_json.to_string());
    }
    let gone = |e: launch::ServerExit| {
        anyhow!(
            "{e}\nThe run stopped: the server it measured is gone. What finished is kept; fix the server and \
             rerun the same command to resume"
        )
    };
    let outcome = match server.as_mut() {
        Some(s) => {
            let r = tokio::select! {
                r = steps(&p, stop) => r,
                e = s.exited() => Err(gone(e)),
            };
            // Requests to a dead server fail fast: the steps may end before the watch sees the exit.
            match s.exit_if_exited() {
                Some(e) => Err(gone(e)),
                None => r,
            }
        }
        None => steps(&p, stop).await,
    };
    if let Some(mut s) = server {
        let how = s.stop();
        println!("server: stopped (pid {}, {how:?})", s.pid());
    }
    let outcome = outcome?;
    if outcome.interrupted.is_some() {
        return Ok(RunEnd {
            finished: false,
            failures: Ok(()),
        });
    }
    println!("== report");
    let collection = servebench_report::collect(std::slice::from_ref(&p.w.output_dir))?;
    let opts = servebench_report::ReportOptions {
        out_dir: p.w.output_dir.clone(),
        title: p.w.label.clone(),
        ..Default::default()
    };
    let written = servebench_report::write_report(&collection, &opts)?;
    for note in &written.notes {
        eprintln!("note: {note}");
    }
    println!(
        "everything is in {} (report.html, summary.csv)",
        p.w.output_dir.display()
    );
    // Exit codes (see `exit`): decided by the caller, after the report is written.
    let failures = outcome
        .failures
        .into_iter()
        .collect::<Result<Vec<()>, _>>()
        .map(|_| ());
    Ok(RunEnd {
        finished: true,
        failures,
    })
}

/// What the steps did: where they were interrupted, and each step's failure check.
#[derive(Default)]
struct StepsOutcome {
    interrupted: Option<&'static str>,
    failures: Vec<Result<(), super::exit::TooManyFailures>>,
}

/// Eval, then sweep.
async fn steps(p: &Prepared, stop: watch::Receiver<bool>) -> Result<StepsOutcome> {
    let mut o = StepsOutcome::default();
    if let Some(args) = &p.eval {
        println!("== eval");
        let out = super::eval::execute(args.clone(), stop.clone()).await?;
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
            println!("interrupted during eval: rerun to resume");
            o.interrupted = Some("interrupted during eval");
            return Ok(o);
        }
        let ok = out.reports.iter().map(|r| r.samples as u64).sum();
        let failed = out.reports.iter().map(|r| r.errors as u64).sum();
        o.failures.push(super::exit::check_failures(
            "eval samples",
            ok,
            failed,
            None,
        ));
    }
    if let Some((plan, points, key)) = &p.sweep {
        println!("== sweep");
        let s = super::sweep::sweep(plan, points, p.fresh, key.as_deref(), stop.clone()).await?;
        println!(
            "sweep: {} run, {} done earlier, {} skipped, {} failed",
            s.run, s.done, s.skipped, s.failed
        );
        if s.interrupted {
            println!("interrupted during the sweep: rerun to resume");
            o.interrupted = Some("interrupted during the sweep");
            return Ok(o);
        }
        o.failures.push(super::exit::check_failures(
            "sweep requests",
            s.requests_ok,
            s.requests_failed,
            None,
        ));
    }
    Ok(o)
}

/// Ctrl-C, SIGTERM and SIGHUP for a run that may have launched a server. The first Ctrl-C lets the requests in
/// flight finish (the launched server stays up for them, then is stopped); a second Ctrl-C, SIGTERM or SIGHUP
/// stops every launched server at once (SIGTERM to its group, SIGKILL after the grace period) and exits.
pub fn stop_on_signals(rt: &tokio::runtime::Runtime) -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    rt.spawn(async move {
        #[cfg(unix)]
        let (mut term, mut hup) = {
            use tokio::signal::unix::{signal, SignalKind};
            match (signal(SignalKind::terminate()), signal(SignalKind::hangup())) {
                (Ok(t), Ok(h)) => (t, h),
                _ => {
                    eprintln!("warning: cannot listen for SIGTERM/SIGHUP");
                    return;
                }
            }
        };
        let mut presses = 0;
        loop {
            #[cfg(unix)]
            let code = tokio::select! {
                r = tokio::signal::ctrl_c() => if r.is_ok() { 130 } else { return },
                _ = term.recv() => 143,
                _ = hup.recv() => 129,
            };
            #[cfg(not(unix))]
            let code = if tokio::signal::ctrl_c().await.is_ok() { 130 } else { return };
            if code == 130 && presses == 0 {
                presses += 1;
                eprintln!(
                    "\nCtrl-C: letting the requests in flight finish, then stopping the launched server; what \
                     finished is kept (rerun the same command to resume). Ctrl-C again stops everything now."
                );
                let _ = tx.send(true);
                continue;
            }
            let why = match code {
                143 => "SIGTERM",
                129 => "SIGHUP",
                _ => "Ctrl-C again",
            };
            eprintln!("\n{why}: stopping the launched server now and exiting");
            #[cfg(unix)]
            let _ = tokio::task::spawn_blocking(launch::stop_all_launched).await;
            std::process::exit(code);
        }
    });
    rx
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(plan: &std::path::Path) -> Args {
        Args {
            plan: plan.to_path_buf(),
            fresh: false,
            api_key: None,
            use_running_server: false,
            dry_run: false,
            shard: None,
        }
    }

    #[test]
    fn plans_are_checked_before_anything_runs() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("w.toml");
        let head = "output_dir = \"out\"\n[target]\nsim = \"fast\"\n";
        for (body, want) in [
            ("[eval]\nargs = [\"--datasets\", \"mmlu\"]\n", "unknown dataset"),
            ("[eval]\nargs = [\"--no-such-flag\"]\n", "[eval] args"),
            (
                "[sweep]\naxes = { input_output = [\"64:8\"], concurrency = [1] }\nrun = { extra_args = [\"--bogus\"] }\n",
                "extra_args",
            ),
            ("[sweep]\naxes = { input_output = [\"64\"], concurrency = [1] }\n", "IN:OUT"),
        ] {
            std::fs::write(&p, format!("{head}{body}")).unwrap();
            let e = format!("{:#}", prepare(&args(&p)).err().unwrap());
            assert!(e.contains(want), "{body}: {e}");
        }
        assert!(!dir.path().join("out").exists(), "nothing was created");
    }

    #[test]
    fn eval_paths_are_relative_to_the_plan() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("w.toml");
        std::fs::write(
            &p,
            "output_dir = \"out\"\n[target]\nsim = \"fast\"\n[eval]\nargs = [\"--datasets\", \"math500\", \"--data-dir\", \"data\", \"--custom\", \"mine=sets/m.jsonl\", \"--dataset-path\", \"aime24=/abs/a.jsonl\"]\n",
        )
        .unwrap();
        let e = prepare(&args(&p)).unwrap().eval.unwrap();
        assert_eq!(e.data_dir, Some(dir.path().join("data")));
        assert_eq!(
            e.custom,
            [format!(
                "mine={}",
                dir.path().join("sets/m.jsonl").display()
            )]
        );
        assert_eq!(e.dataset_paths, ["aime24=/abs/a.jsonl"]);
        assert_eq!(e.output_dir, dir.path().join("out/eval"));
    }
}
