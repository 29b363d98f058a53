//! The plan of `servebench run` (documented key by key in `docs/plans.md`): an output folder, an optional server
//! to launch, the target, an optional eval and an optional sweep. Every relative path in a plan is relative to
//! the plan file's folder, so a plan runs the same from any working folder.
//!
//! ```toml
//! output_dir = "runs/dsr1-fp8"
//! label = "DeepSeek-R1 FP8"
//!
//! [server]                          # optional: servebench launches it, waits until ready, stops it at the end
//! command = ["python3", "-m", "sglang.launch_server", "--model-path", "/models/DeepSeek-R1", "--port", "30000"]
//! ready_timeout_s = 1800
//!
//! [target]
//! base_url = "http://127.0.0.1:30000"
//! tokenizer = "/models/DeepSeek-R1"
//!
//! [eval]
//! args = ["--datasets", "gpqa_diamond,aime24,math500", "--data-dir", "data", "--max-tokens", "20480"]
//!
//! [sweep]
//! axes = { input_output = ["3500:1500"], concurrency = [1, 4, 8], range_ratio = [0.7] }
//! ```

use crate::launch::{LaunchCommand, ServerSpec};
use crate::sweep_plan::{Axes, DatasetSpec, Plan, PlanError, RunSpec, Target};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

/// The launch command: one string (split into words, or given to `sh -c` with `shell = true`) or an array.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum CommandSpec {
    Line(String),
    Argv(Vec<String>),
}

/// `[server]`: the server servebench launches.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ServerPlan {
    pub command: CommandSpec,
    /// Run `command` (a string) with `sh -c`.
    #[serde(default)]
    pub shell: bool,
    /// Added to servebench's environment.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Working folder of the command (default: the plan's folder).
    pub cwd: Option<PathBuf>,
    #[serde(default = "default_ready")]
    pub ready_timeout_s: f64,
    #[serde(default = "default_grace")]
    pub stop_grace_s: f64,
    /// The server's output (default: `<output_dir>/server.log`).
    pub log: Option<PathBuf>,
    /// When something already answers at the target address: measure it (and say so) instead of refusing.
    #[serde(default)]
    pub reuse_running: bool,
}

impl ServerPlan {
    /// Resolves `cwd` (default: `plan_dir`) and `log` (default: `default_log`) against the plan's folder.
    pub fn resolve_paths(&mut self, plan_dir: &Path, default_log: PathBuf) {
        self.cwd = Some(
            self.cwd
                .as_deref()
                .map_or(plan_dir.to_path_buf(), |c| rebase(plan_dir, c)),
        );
        self.log = Some(match &self.log {
            Some(l) => rebase(plan_dir, l),
            None => default_log,
        });
    }

    /// The launch spec of this server answering at `base_url` (checked: command, address, durations).
    pub fn spec(
        &self,
        base_url: &str,
        api_key: Option<&str>,
        default_log: &Path,
    ) -> Result<ServerSpec, PlanError> {
        let command = match &self.command {
            CommandSpec::Line(l) => LaunchCommand::from_line(l, self.shell),
            CommandSpec::Argv(v) => LaunchCommand::argv(v.clone()),
        }
        .map_err(|e| PlanError::Invalid(e.to_string()))?;
        crate::launch::probe::host_port(base_url)
            .map_err(|e| PlanError::Invalid(format!("[target] base_url: {e}")))?;
        Ok(ServerSpec {
            command,
            env: self.env.clone(),
            cwd: self.cwd.clone(),
            base_url: base_url.to_string(),
            ready_timeout: seconds("[server] ready_timeout_s", self.ready_timeout_s)?,
            stop_grace: seconds("[server] stop_grace_s", self.stop_grace_s)?,
            log_path: self
                .log
                .clone()
                .unwrap_or_else(|| default_log.to_path_buf()),
            api_key: api_key.map(str::to_string),
        })
    }
}

fn default_ready() -> f64 {
    1800.0
}
fn default_grace() -> f64 {
    30.0
}

/// `[eval]`: `servebench eval` flags (target and output folder are filled in).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EvalPlan {
    #[serde(default)]
    pub args: Vec<String>,
}

/// `[sweep]`: the `[dataset]`, `[axes]` and `[run]` tables of a sweep plan.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SweepPlan {
    #[serde(default)]
    pub dataset: DatasetSpec,
    pub axes: Axes,
    #[serde(default)]
    pub run: RunSpec,
}

/// A `servebench run` plan, paths resolved against the plan's folder.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Workflow {
    pub output_dir: PathBuf,
    pub label: Option<String>,
    /// Environment variable holding the API key (default: OPENAI_API_KEY; `--api-key` wins over both).
    pub api_key_env: Option<String>,
    pub server: Option<ServerPlan>,
    #[serde(default)]
    pub target: Target,
    pub eval: Option<EvalPlan>,
    pub sweep: Option<SweepPlan>,
    /// The plan file's folder (every relative path was resolved against it).
    #[serde(skip)]
    pub plan_dir: PathBuf,
}

/// Bench flags that take a path (relative ones in `[sweep.run] extra_args` are resolved against the plan).
pub const BENCH_PATH_FLAGS: &[&str] = &[
    "--dataset-path",
    "--tokenizer",
    "--output-file",
    "--details-file",
];

impl Workflow {
    /// Reads and checks a plan file; relative paths become relative to its folder.
    pub fn from_file(path: &Path) -> Result<Workflow, PlanError> {
        let text = std::fs::read_to_string(path).map_err(|source| PlanError::Io {
            path: path.display().to_string(),
            source,
        })?;
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        Workflow::from_toml(&text, dir).map_err(|e| match e {
            PlanError::Parse { message, .. } => PlanError::Parse {
                path: path.display().to_string(),
                message,
            },
            PlanError::Invalid(m) => PlanError::Invalid(format!("{}: {m}", path.display())),
            other => other,
        })
    }

    /// Parses plan text whose relative paths are relative to `plan_dir`.
    pub fn from_toml(text: &str, plan_dir: &Path) -> Result<Workflow, PlanError> {
        let mut w: Workflow = toml::from_str(text).map_err(|e| PlanError::Parse {
            path: "<plan>".into(),
            message: e.to_string(),
        })?;
        w.plan_dir = normalize(plan_dir);
        w.check()?;
        w.resolve_paths();
        Ok(w)
    }

    fn check(&self) -> Result<(), PlanError> {
        let bad = |m: String| Err(PlanError::Invalid(m));
        if self.eval.is_none() && self.sweep.is_none() {
            return bad("nothing to do: add an [eval] and/or a [sweep] table".into());
        }
        match (&self.target.base_url, &self.target.sim, &self.server) {
            (None, None, _) => {
                return bad("[target] needs base_url (a server) or sim (a simulator preset)".into())
            }
            (Some(_), Some(_), _) => {
                return bad("[target]: give base_url or sim, not both".into())
            }
            (None, Some(_), Some(_)) => {
                return bad("[server] launches a server, but [target] sim = … measures the in-process simulator: \
                            set [target] base_url to where the launched server answers"
                    .into())
            }
            _ => {}
        }
        if let Some(s) = &self.server {
            seconds("[server] ready_timeout_s", s.ready_timeout_s)?;
            seconds("[server] stop_grace_s", s.stop_grace_s)?;
            if let CommandSpec::Line(_) = s.command {
            } else if s.shell {
                return bad("[server] shell = true needs command as one string".into());
            }
        }
        if let Some(k) = &self.api_key_env {
            if k.is_empty() || k.contains(['=', '\0']) {
                return bad(format!(
                    "api_key_env {k:?}: the name of an environment variable"
                ));
            }
        }
        Ok(())
    }

    fn resolve_paths(&mut self) {
        let dir = self.plan_dir.clone();
        let rel = |p: &Path| rebase(&dir, p);
        self.output_dir = rel(&self.output_dir);
        if let Some(t) = &self.target.tokenizer {
            self.target.tokenizer = Some(rel(t));
        }
        let default_log = self.output_dir.join("server.log");
        if let Some(s) = &mut self.server {
            s.resolve_paths(&dir, default_log);
        }
        if let Some(s) = &mut self.sweep {
            if let Some(p) = &s.dataset.path {
                s.dataset.path = Some(rel(p));
            }
            s.run.extra_args = rebase_flag_paths(&dir, &s.run.extra_args, BENCH_PATH_FLAGS);
        }
    }

    /// The launch spec of `[server]`, if any (`api_key` is sent on readiness probes).
    pub fn server_spec(&self, api_key: Option<&str>) -> Result<Option<ServerSpec>, PlanError> {
        let Some(s) = &self.server else {
            return Ok(None);
        };
        let base_url = self.target.base_url.as_deref().ok_or_else(|| {
            PlanError::Invalid(
                "[server] needs [target] base_url: where the launched server answers".into(),
            )
        })?;
        let default_log = self.output_dir.join("server.log");
        s.spec(base_url, api_key, &default_log).map(Some)
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

    /// The eval flags, with the target and `<output_dir>/eval` filled in (paths in `args` are resolved when the
    /// flags are parsed: see [`Workflow::rebase`]).
    pub fn eval_argv(&self, fresh: bool) -> Option<Vec<String>> {
        let e = self.eval.as_ref()?;
        let mut v: Vec<String> = vec!["servebench".into(), "eval".into()];
        match (&self.target.sim, &self.target.base_url) {
            (Some(_), _) => v.push("--sim".into()),
            (None, Some(u)) => {
                for u in std::iter::once(u).chain(&self.target.more_base_urls) {
                    v.push("--base-url".into());
                    v.push(u.clone());
                }
                if let Some(d) = &self.target.dispatch {
                    v.push("--dispatch".into());
                    v.push(d.clone());
                }
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

    /// A path from the plan, resolved against the plan's folder (absolute paths unchanged).
    pub fn rebase(&self, p: &Path) -> PathBuf {
        rebase(&self.plan_dir, p)
    }
}

/// Seconds from a plan as a Duration: finite, > 0, at most 30 days (`servebench_core::duration`'s rule and
/// message).
fn seconds(what: &str, s: f64) -> Result<Duration, PlanError> {
    servebench_core::duration::checked_seconds_max(
        what,
        s,
        servebench_core::duration::Lower::Positive,
        30.0 * 86_400.0,
    )
    .map_err(|e| PlanError::Invalid(e.to_string()))
}

/// `p` relative to `dir` unless absolute.
pub fn rebase(dir: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        normalize(&dir.join(p))
    }
}

/// The values of `flags` (`--flag VALUE` or `--flag=VALUE`) in `args` resolved against `dir`.
pub fn rebase_flag_paths(dir: &Path, args: &[String], flags: &[&str]) -> Vec<String> {
    let mut out = Vec::with_capacity(args.len());
    let mut next_is_path = false;
    for a in args {
        if next_is_path {
            next_is_path = false;
            out.push(rebase(dir, Path::new(a)).display().to_string());
            continue;
        }
        match a.split_once('=') {
            Some((f, v)) if flags.contains(&f) => {
                out.push(format!("{f}={}", rebase(dir, Path::new(v)).display()));
            }
            _ => {
                next_is_path = flags.contains(&a.as_str());
                out.push(a.clone());
            }
        }
    }
    out
}

/// `a/b/../c` → `a/c` (lexically; nothing is resolved on disk).
pub fn normalize(p: &Path) -> PathBuf {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(text: &str) -> Result<Workflow, PlanError> {
        Workflow::from_toml(text, Path::new("/plans/x"))
    }

    #[test]
    fn plan_fills_in_target_and_folders() {
        let w = plan(
            "output_dir = \"out\"\n[target]\nsim = \"fast\"\n[eval]\nargs = [\"--datasets\", \"math500\"]\n[sweep]\naxes = { input_output = [\"64:8\"], concurrency = [1, 2] }\n",
        )
        .unwrap();
        assert_eq!(w.output_dir, PathBuf::from("/plans/x/out"));
        let argv = w.eval_argv(false).unwrap().join(" ");
        assert!(
            argv.contains("--sim")
                && argv.contains("/plans/x/out/eval")
                && argv.ends_with("--datasets math500"),
            "{argv}"
        );
        let p = w.sweep_plan().unwrap();
        assert_eq!(p.run.output_dir, PathBuf::from("/plans/x/out/perf"));
        assert_eq!(p.points().unwrap().len(), 2);
        assert_eq!(
            normalize(Path::new("examples/../demo-run")),
            PathBuf::from("demo-run")
        );
        assert_eq!(normalize(Path::new("../x/./y")), PathBuf::from("../x/y"));
        let e = plan("output_dir = \"out\"\n[target]\nsim = \"fast\"\n").unwrap_err();
        assert!(e.to_string().contains("nothing to do"), "{e}");
    }

    #[test]
    fn every_path_is_relative_to_the_plan() {
        let w = plan(
            r#"output_dir = "../runs/a"
[server]
command = ["./serve.sh", "--port", "1"]
log = "logs/s.log"
[target]
base_url = "http://127.0.0.1:1"
tokenizer = "tok"
[sweep]
dataset = { name = "sharegpt", path = "data/sg.json" }
axes = { input_output = ["64:8"], concurrency = [1] }
run = { extra_args = ["--tokenizer=t2", "--dataset-path", "/abs/x", "--disable-ignore-eos"] }
"#,
        )
        .unwrap();
        assert_eq!(w.output_dir, PathBuf::from("/plans/runs/a"));
        let s = w.server.as_ref().unwrap();
        assert_eq!(s.cwd.as_deref(), Some(Path::new("/plans/x")));
        assert_eq!(s.log.as_deref(), Some(Path::new("/plans/x/logs/s.log")));
        assert_eq!(
            w.target.tokenizer.as_deref(),
            Some(Path::new("/plans/x/tok"))
        );
        let sw = w.sweep.as_ref().unwrap();
        assert_eq!(
            sw.dataset.path.as_deref(),
            Some(Path::new("/plans/x/data/sg.json"))
        );
        assert_eq!(
            sw.run.extra_args,
            [
                "--tokenizer=/plans/x/t2",
                "--dataset-path",
                "/abs/x",
                "--disable-ignore-eos"
            ]
        );
        let spec = w.server_spec(None).unwrap().unwrap();
        assert_eq!(spec.stop_grace, Duration::from_secs(30));
        assert_eq!(spec.ready_timeout, Duration::from_secs(1800));
    }

    #[test]
    fn bad_plans_are_refused_with_the_reason() {
        let base = "output_dir = \"o\"\n[eval]\nargs = []\n";
        for (extra, want) in [
            ("[target]\nbase_ur = \"x\"\n", "base_ur"),
            ("colour = 1\n[target]\nsim = \"fast\"\n", "colour"),
            ("[target]\nsim = \"fast\"\n[server]\ncommand = \"x\"\n", "base_url"),
            (
                "[target]\nbase_url = \"http://127.0.0.1:1\"\n[server]\ncommand = \"x\"\nready_timeout_s = 1e300\n",
                "ready_timeout_s",
            ),
            (
                "[target]\nbase_url = \"http://127.0.0.1:1\"\n[server]\ncommand = \"x\"\nstop_grace_s = -1\n",
                "stop_grace_s",
            ),
            ("[target]\nbase_url = \"http://127.0.0.1:1\"\n[server]\ncommand = \"x\"\nport = 3\n", "port"),
        ] {
            let text = format!("{base}{extra}");
            let e = plan(&text).unwrap_err().to_string();
            assert!(e.contains(want), "{extra}: {e}");
        }
        let w = plan(&format!(
            "{base}[target]\nbase_url = \"http://127.0.0.1:1\"\n[server]\ncommand = \"serve | tee\"\n"
        ))
        .unwrap();
        let e = w.server_spec(None).unwrap_err().to_string();
        assert!(e.contains("shell = true"), "{e}");
    }
}
