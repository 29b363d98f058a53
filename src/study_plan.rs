//! The plan of a study (`servebench run STUDY.toml`, documented key by key in `docs/plans.md`): several
//! deployments measured in turn with one shared `[eval]` and `[sweep]`, and an optional `[slo]` for the
//! decision. A plan with `[[deployment]]` tables is a study; one without is a single run ([`crate::run_plan`]).
//!
//! Each deployment becomes a run plan ([`Workflow`]) writing into `<output_dir>/<name>`, so every check and
//! every path rule of a run plan applies to it unchanged.
//!
//! ```toml
//! output_dir = "runs/fp8-vs-int8"
//!
//! [[deployment]]
//! name = "FP8"
//! base_url = "http://127.0.0.1:30000"
//! server = { command = ["python3", "-m", "sglang.launch_server", "--port", "30000"] }
//! gpus = 8
//! price_per_gpu_hour = 2.0
//!
//! [[deployment]]
//! name = "INT8"
//! base_url = "http://127.0.0.1:30000"
//! server = { command = ["python3", "-m", "sglang.launch_server", "--port", "30000"] }
//!
//! [eval]
//! args = ["--datasets", "math500", "--data-dir", "data"]
//!
//! [sweep]
//! axes = { input_output = ["3500:1500"], concurrency = [1, 8, 32] }
//!
//! [slo]
//! ttft_ms = 2000
//! ```

use crate::run_plan::Workflow;
use crate::sweep_plan::PlanError;
use serde::Deserialize;
use servebench_core::slo::{Slo, DEFAULT_ATTAINMENT};
use std::path::{Path, PathBuf};

/// The word in a `[deployment.server] command` replaced by the path of the running servebench binary (so a
/// plan can launch `servebench sim` without servebench on `PATH`).
pub const SELF_WORD: &str = "{servebench}";

/// File written last into a deployment's folder: its presence means the deployment is finished.
pub const DONE_MARKER: &str = "deployment_done.json";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StudyFile {
    output_dir: PathBuf,
    label: Option<String>,
    api_key_env: Option<String>,
    deployment: Vec<DeploymentFile>,
    eval: Option<toml::Value>,
    sweep: Option<toml::Value>,
    slo: Option<SloPlan>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DeploymentFile {
    name: String,
    server: Option<toml::Value>,
    base_url: Option<String>,
    backend: Option<String>,
    model: Option<String>,
    tokenizer: Option<String>,
    gpus: Option<u32>,
    price_per_gpu_hour: Option<f64>,
}

/// `[slo]`: per-request limits (at least one) met by at least `attainment` of the requests.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SloPlan {
    pub ttft_ms: Option<f64>,
    pub tpot_ms: Option<f64>,
    pub e2e_ms: Option<f64>,
    #[serde(default = "default_attainment")]
    pub attainment: f64,
}

fn default_attainment() -> f64 {
    DEFAULT_ATTAINMENT
}

/// One deployment: its run plan and what the decision needs beyond it.
#[derive(Debug, Clone)]
pub struct Deployment {
    pub name: String,
    pub gpus: Option<u32>,
    pub price_per_gpu_hour: Option<f64>,
    /// The deployment as a run plan, writing into `<study output_dir>/<name>`.
    pub workflow: Workflow,
}

impl Deployment {
    /// The deployment's folder.
    pub fn dir(&self) -> &Path {
        &self.workflow.output_dir
    }
}

/// A checked study plan, paths resolved against the plan's folder.
#[derive(Debug, Clone)]
pub struct Study {
    pub output_dir: PathBuf,
    pub label: Option<String>,
    pub deployments: Vec<Deployment>,
    pub slo: Option<Slo>,
    pub plan_dir: PathBuf,
}

/// True when the plan text has `[[deployment]]` tables (a study), false for a single-run plan. Text that is not
/// TOML is not a study (the run plan's parser reports the error).
pub fn is_study(text: &str) -> bool {
    toml::from_str::<toml::Table>(text).is_ok_and(|t| t.contains_key("deployment"))
}

impl Study {
    /// Reads and checks a study plan; `servebench` is the path put in place of [`SELF_WORD`].
    pub fn from_file(path: &Path, servebench: &Path) -> Result<Study, PlanError> {
        let text = std::fs::read_to_string(path).map_err(|source| PlanError::Io {
            path: path.display().to_string(),
            source,
        })?;
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        Study::from_toml(&text, dir, servebench).map_err(|e| match e {
            PlanError::Parse { message, .. } => PlanError::Parse {
                path: path.display().to_string(),
                message,
            },
            PlanError::Invalid(m) => PlanError::Invalid(format!("{}: {m}", path.display())),
            other => other,
        })
    }

    /// Parses study text whose relative paths are relative to `plan_dir`.
    pub fn from_toml(text: &str, plan_dir: &Path, servebench: &Path) -> Result<Study, PlanError> {
        let f: StudyFile = toml::from_str(text).map_err(|e| PlanError::Parse {
            path: "<plan>".into(),
            message: e.to_string(),
        })?;
        let bad = |m: String| PlanError::Invalid(m);
        if f.deployment.is_empty() {
            return Err(bad("a study needs at least one [[deployment]]".into()));
        }
        let slo = f.slo.map(slo_of).transpose()?;
        let mut deployments: Vec<Deployment> = Vec::new();
        for d in f.deployment {
            check_name(&d.name)?;
            if deployments.iter().any(|o| o.name == d.name) {
                return Err(bad(format!(
                    "two deployments are named {:?}: give each its own name (it names its folder)",
                    d.name
                )));
            }
            if let Some(p) = d.price_per_gpu_hour {
                if !(p.is_finite() && p >= 0.0) {
                    return Err(bad(format!(
                        "deployment {}: price_per_gpu_hour = {p}: give dollars, 0 or more",
                        d.name
                    )));
                }
            }
            if d.gpus == Some(0) {
                return Err(bad(format!(
                    "deployment {}: gpus = 0: give the number of GPUs it uses (1 or more)",
                    d.name
                )));
            }
            let table = workflow_table(
                &f.output_dir,
                &f.label,
                &f.api_key_env,
                &d,
                &f.eval,
                &f.sweep,
                servebench,
            )?;
            let text = toml::to_string(&table).map_err(|e| bad(e.to_string()))?;
            let workflow = Workflow::from_toml(&text, plan_dir).map_err(|e| match e {
                PlanError::Parse { message, .. } => {
                    bad(format!("deployment {}: {message}", d.name))
                }
                PlanError::Invalid(m) => bad(format!("deployment {}: {m}", d.name)),
                other => other,
            })?;
            deployments.push(Deployment {
                name: d.name,
                gpus: d.gpus,
                price_per_gpu_hour: d.price_per_gpu_hour,
                workflow,
            });
        }
        Ok(Study {
            output_dir: crate::run_plan::rebase(
                &crate::run_plan::normalize(plan_dir),
                &f.output_dir,
            ),
            label: f.label,
            deployments,
            slo,
            plan_dir: crate::run_plan::normalize(plan_dir),
        })
    }
}

fn slo_of(s: SloPlan) -> Result<Slo, PlanError> {
    let slo = Slo {
        ttft_ms: s.ttft_ms,
        tpot_ms: s.tpot_ms,
        e2e_ms: s.e2e_ms,
        attainment: s.attainment,
    };
    slo.validate()
        .map_err(|e| PlanError::Invalid(format!("[slo]: {e}")))?;
    Ok(slo)
}

/// A deployment name names its folder: letters, digits, `.`, `_`, `-`; not `.` or `..`.
fn check_name(name: &str) -> Result<(), PlanError> {
    let ok = !name.is_empty()
        && name != "."
        && name != ".."
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(PlanError::Invalid(format!(
            "deployment name {name:?}: use 1 to 64 letters, digits, '.', '_' or '-' (it names the deployment's folder)"
        )))
    }
}

/// The run plan of one deployment, as a TOML table for [`Workflow::from_toml`].
fn workflow_table(
    output_dir: &Path,
    label: &Option<String>,
    api_key_env: &Option<String>,
    d: &DeploymentFile,
    eval: &Option<toml::Value>,
    sweep: &Option<toml::Value>,
    servebench: &Path,
) -> Result<toml::Table, PlanError> {
    let mut t = toml::Table::new();
    let s = |v: &str| toml::Value::String(v.to_string());
    t.insert(
        "output_dir".into(),
        s(&output_dir.join(&d.name).display().to_string()),
    );
    let title = match label {
        Some(l) => format!("{l}: {}", d.name),
        None => d.name.clone(),
    };
    t.insert("label".into(), s(&title));
    if let Some(k) = api_key_env {
        t.insert("api_key_env".into(), s(k));
    }
    if let Some(server) = &d.server {
        t.insert("server".into(), with_self(server.clone(), servebench));
    }
    let mut target = toml::Table::new();
    for (k, v) in [
        ("base_url", &d.base_url),
        ("backend", &d.backend),
        ("model", &d.model),
        ("tokenizer", &d.tokenizer),
    ] {
        if let Some(v) = v {
            target.insert(k.into(), s(v));
        }
    }
    if d.base_url.is_none() {
        return Err(PlanError::Invalid(format!(
            "deployment {}: needs base_url (where its server answers, launched by [deployment.server] or already running)",
            d.name
        )));
    }
    t.insert("target".into(), toml::Value::Table(target));
    if let Some(e) = eval {
        t.insert("eval".into(), e.clone());
    }
    if let Some(sw) = sweep {
        t.insert("sweep".into(), sw.clone());
    }
    Ok(t)
}

/// `[server]` with every command word equal to [`SELF_WORD`] replaced by `servebench` (in an argument array, or
/// as a word of a command string).
fn with_self(mut server: toml::Value, servebench: &Path) -> toml::Value {
    let me = servebench.display().to_string();
    if let Some(cmd) = server.get_mut("command") {
        match cmd {
            toml::Value::String(line) => {
                let words: Vec<&str> = line.split(' ').collect();
                if words.contains(&SELF_WORD) {
                    let quoted = shell_quote(&me);
                    *line = words
                        .iter()
                        .map(|w| if *w == SELF_WORD { quoted.as_str() } else { w })
                        .collect::<Vec<_>>()
                        .join(" ");
                }
            }
            toml::Value::Array(words) => {
                for w in words.iter_mut() {
                    if w.as_str() == Some(SELF_WORD) {
                        *w = toml::Value::String(me.clone());
                    }
                }
            }
            _ => {}
        }
    }
    server
}

fn shell_quote(s: &str) -> String {
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+:".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: &str = "/opt/sb/servebench";

    fn study(text: &str) -> Result<Study, PlanError> {
        Study::from_toml(text, Path::new("/plans/x"), Path::new(ME))
    }

    const TWO: &str = r#"output_dir = "study"
label = "A vs B"
[[deployment]]
name = "A"
base_url = "http://127.0.0.1:30001"
model = "m"
gpus = 8
price_per_gpu_hour = 2.5
[deployment.server]
command = ["{servebench}", "sim", "--port", "30001"]
stop_grace_s = 5
[[deployment]]
name = "B"
base_url = "http://127.0.0.1:30002"
tokenizer = "tok"
server = { command = "{servebench} sim --port 30002" }
[eval]
args = ["--datasets", "math500", "--data-dir", "data"]
[sweep]
axes = { input_output = ["64:8"], concurrency = [1, 2] }
[slo]
ttft_ms = 2000
"#;

    #[test]
    fn each_deployment_is_a_run_plan_in_its_own_folder() {
        assert!(is_study(TWO));
        assert!(!is_study("output_dir = \"x\"\n[target]\nsim = \"fast\"\n"));
        let s = study(TWO).unwrap();
        assert_eq!(s.output_dir, PathBuf::from("/plans/x/study"));
        assert_eq!(s.deployments.len(), 2);
        let a = &s.deployments[0];
        assert_eq!((a.gpus, a.price_per_gpu_hour), (Some(8), Some(2.5)));
        assert_eq!(a.dir(), Path::new("/plans/x/study/A"));
        assert_eq!(a.workflow.label.as_deref(), Some("A vs B: A"));
        let spec = a.workflow.server_spec(None).unwrap().unwrap();
        assert_eq!(spec.command.redacted(), format!("{ME} sim --port 30001"));
        assert_eq!(spec.log_path, PathBuf::from("/plans/x/study/A/server.log"));
        assert_eq!(spec.stop_grace.as_secs(), 5);
        assert_eq!(a.workflow.target.model.as_deref(), Some("m"));
        let b = &s.deployments[1];
        let spec = b.workflow.server_spec(None).unwrap().unwrap();
        assert_eq!(spec.command.redacted(), format!("{ME} sim --port 30002"));
        assert_eq!(
            b.workflow.target.tokenizer.as_deref(),
            Some(Path::new("/plans/x/tok"))
        );
        assert_eq!(
            b.workflow.sweep_plan().unwrap().run.output_dir,
            PathBuf::from("/plans/x/study/B/perf")
        );
        let argv = b.workflow.eval_argv(false).unwrap().join(" ");
        assert!(
            argv.contains("--output-dir /plans/x/study/B/eval"),
            "{argv}"
        );
        let slo = s.slo.unwrap();
        assert_eq!((slo.ttft_ms, slo.attainment), (Some(2000.0), 0.99));
    }

    #[test]
    fn the_servebench_word_survives_a_path_with_spaces() {
        let s =
            Study::from_toml(TWO, Path::new("/p"), Path::new("/opt/my tools/servebench")).unwrap();
        for d in &s.deployments {
            let spec = d.workflow.server_spec(None).unwrap().unwrap();
            let argv = spec.command.redacted();
            assert!(
                argv.contains("servebench") && argv.contains("sim --port"),
                "{argv}"
            );
        }
        let b = s.deployments[1].workflow.server.as_ref().unwrap();
        assert_eq!(
            b.command,
            crate::run_plan::CommandSpec::Line(
                "'/opt/my tools/servebench' sim --port 30002".into()
            )
        );
        let a = s.deployments[0].workflow.server.as_ref().unwrap();
        assert_eq!(
            a.command,
            crate::run_plan::CommandSpec::Argv(
                ["/opt/my tools/servebench", "sim", "--port", "30001"]
                    .map(String::from)
                    .to_vec()
            )
        );
    }

    #[test]
    fn bad_studies_are_refused_with_the_reason() {
        for (from, to, want) in [
            (
                "name = \"B\"",
                "name = \"A\"",
                "two deployments are named \"A\"",
            ),
            ("name = \"B\"", "name = \"../B\"", "deployment name"),
            ("gpus = 8", "gpus = 0", "gpus = 0"),
            (
                "price_per_gpu_hour = 2.5",
                "price_per_gpu_hour = -1.0",
                "price_per_gpu_hour",
            ),
            (
                "ttft_ms = 2000",
                "ttft_ms = 2000\nattainment = 1.5",
                "attainment",
            ),
            ("ttft_ms = 2000", "ttft = 2000", "ttft"),
            (
                "tokenizer = \"tok\"",
                "tokenizer = \"tok\"\ncolour = 1",
                "colour",
            ),
            (
                "base_url = \"http://127.0.0.1:30002\"\n",
                "",
                "deployment B: needs base_url",
            ),
            (
                "stop_grace_s = 5",
                "stop_grace_s = -5",
                "deployment A: [server] stop_grace_s",
            ),
            (
                "[\"--datasets\", \"math500\", \"--data-dir\", \"data\"]",
                "1",
                "deployment A",
            ),
        ] {
            assert!(TWO.contains(from), "{from}");
            let text = TWO.replacen(from, to, 1);
            let e = study(&text).unwrap_err().to_string();
            assert!(e.contains(want), "{to}: {e}");
        }
        let e = study("output_dir = \"s\"\ndeployment = []\n[eval]\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("at least one [[deployment]]"), "{e}");
    }
}
