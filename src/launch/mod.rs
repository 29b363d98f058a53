//! Launching the server to measure, making sure the server measured is the one launched, and leaving nothing
//! behind.
//!
//! - Before launching, the target address must be free: if anything answers there, [`LaunchedServer::launch`]
//!   refuses with an error naming it ([`LaunchError::AddressTaken`]); [`attach`] measures a running server
//!   instead, and its [`ServerIdentity`] says it was not launched.
//! - The command runs without a shell (unless [`LaunchCommand::Shell`]) in its own process group, with its
//!   output copied into its log (secrets scrubbed).
//! - Ready = the launched process (or a member of its group) is alive and the endpoint answers on `/health` or
//!   `/v1/models`. [`LaunchedServer::exited`] resolves when the whole group is gone, with the exit status and the
//!   last lines of the log, so that a run can stop at once when its server dies.
//! - [`LaunchedServer::stop`] (also on drop, also on a panic) sends SIGTERM to the group, then SIGKILL after the
//!   grace period. [`stop_all_launched`] does the same from a signal handler that is about to exit.
//!
//! A study launches several deployments in turn: one [`ServerSpec`] each, launch, measure, stop, next.

mod group;
mod log;
pub mod probe;

#[cfg(unix)]
pub use group::stop_all_launched;
pub use group::{group_members, launched_groups, StopHow};

use crate::secrets::{redact_url, Redactor};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How to start the server.
#[derive(Debug, Clone, PartialEq)]
pub enum LaunchCommand {
    /// Program and arguments, run directly (no shell).
    Argv(Vec<String>),
    /// A shell command line, run by `sh -c` (only when the plan says `shell = true`).
    Shell(String),
}

impl LaunchCommand {
    /// A command written as one string: a shell line when `shell`, else split into words as a shell would
    /// (quotes and backslashes, nothing expanded); shell syntax without `shell` is refused.
    pub fn from_line(line: &str, shell: bool) -> Result<LaunchCommand, LaunchError> {
        if line.trim().is_empty() {
            return Err(LaunchError::BadCommand("the command is empty".into()));
        }
        if shell {
            return Ok(LaunchCommand::Shell(line.to_string()));
        }
        if let Some(c) = unquoted_shell_syntax(line) {
            return Err(LaunchError::BadCommand(format!(
                "{:?} needs a shell ({c:?} outside quotes): set `shell = true`, or write the command as an \
                 array of arguments (and environment variables under [server.env])",
                crate::secrets::redact_command(line)
            )));
        }
        let words: Vec<String> = crate::secrets::shell_word_spans(line)
            .into_iter()
            .map(|w| w.text)
            .collect();
        LaunchCommand::argv(words)
    }

    /// A command as program and arguments.
    pub fn argv(words: Vec<String>) -> Result<LaunchCommand, LaunchError> {
        match words.first() {
            None => Err(LaunchError::BadCommand("the command is empty".into())),
            Some(p) if p.contains('=') && !p.contains('/') => Err(LaunchError::BadCommand(format!(
                "the command starts with an assignment ({}): put environment variables under [server.env] \
                 (or set `shell = true`)",
                crate::secrets::redact_command(p)
            ))),
            Some(_) => Ok(LaunchCommand::Argv(words)),
        }
    }

    /// The command as one line with every secret hidden (for logs, results and messages).
    pub fn redacted(&self) -> String {
        match self {
            LaunchCommand::Argv(v) => Redactor::new()
                .argv(v)
                .iter()
                .map(|w| quote_word(w))
                .collect::<Vec<_>>()
                .join(" "),
            LaunchCommand::Shell(s) => format!("sh -c {}", quote_word(&Redactor::new().command(s))),
        }
    }

    fn program(&self) -> &str {
        match self {
            LaunchCommand::Argv(v) => v.first().map_or("", String::as_str),
            LaunchCommand::Shell(_) => "sh",
        }
    }
}

/// The first shell metacharacter outside quotes, if any.
fn unquoted_shell_syntax(line: &str) -> Option<char> {
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for c in line.chars() {
        if escaped {
            escaped = false;
            continue;
        }
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some('"'), '\\') => escaped = true,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '\\') => escaped = true,
            (None, '|' | '&' | ';' | '<' | '>' | '$' | '`' | '(' | ')' | '*' | '?' | '~' | '#') => {
                return Some(c)
            }
            (None, _) => {}
        }
    }
    None
}

/// A word as a shell would need it written.
fn quote_word(w: &str) -> String {
    if !w.is_empty()
        && w.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=,@+%<>".contains(c))
    {
        w.to_string()
    } else {
        format!("'{}'", w.replace('\'', r"'\''"))
    }
}

/// Everything needed to launch one server and to know when it is ready.
#[derive(Debug, Clone)]
pub struct ServerSpec {
    pub command: LaunchCommand,
    /// Added to servebench's own environment.
    pub env: BTreeMap<String, String>,
    /// Working folder of the command (default: servebench's).
    pub cwd: Option<PathBuf>,
    /// Where the server will answer, e.g. `http://127.0.0.1:30000`.
    pub base_url: String,
    /// Longest wait for the server to answer.
    pub ready_timeout: Duration,
    /// Time between SIGTERM and SIGKILL when stopping.
    pub stop_grace: Duration,
    /// The server's stdout and stderr (secrets scrubbed).
    pub log_path: PathBuf,
    /// Sent as a Bearer token on readiness and identity probes.
    pub api_key: Option<String>,
}

/// Why a launch did not give a ready server.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("{0}")]
    BadUrl(String),
    #[error("server command: {0}")]
    BadCommand(String),
    #[error(
        "the address of {base_url} is taken: {occupant}. servebench would measure that server instead of the one \
         it launches: stop it (or choose another port), or pass --use-running-server (plan: \
         `reuse_running = true`) to measure it on purpose"
    )]
    AddressTaken { base_url: String, occupant: String },
    #[error("cannot create the server log {path}: {source}")]
    Log {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot start the server command ({program}): {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error(
        "something answers at {base_url} but the launched server does not hold that port ({occupant}): the \
         launched one was stopped. Check the port in the server command against [target] base_url, and what else \
         runs on this machine"
    )]
    NotOurs { base_url: String, occupant: String },
    #[error("the server exited before it was ready: {0}")]
    ExitedBeforeReady(ServerExit),
    #[error(
        "the server at {base_url} was not ready after {secs:.0} s (no 2xx from /health or /v1/models); it was \
         stopped. Raise ready_timeout_s if it loads slowly; {tail}"
    )]
    NotReady {
        base_url: String,
        secs: f64,
        tail: String,
    },
}

/// How a launched server ended on its own.
#[derive(Debug, Clone)]
pub struct ServerExit {
    /// "exit status: 3", "signal: 9 (SIGKILL)", or "unknown" when the status was already collected.
    pub status: String,
    pub pid: u32,
    pub log_path: PathBuf,
    pub tail: Vec<String>,
}

impl std::fmt::Display for ServerExit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the launched server (pid {}) exited ({}); {}",
            self.pid,
            self.status,
            log::format_tail(&self.log_path, &self.tail)
        )
    }
}

/// Which server was measured: recorded in every result of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerIdentity {
    /// True when servebench launched it (false: it was already running).
    pub launched: bool,
    /// Where it answered (credentials hidden).
    pub base_url: String,
    /// The launch command (secrets hidden).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// The launched process (the process group has the same id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// When it was launched (RFC 3339, local time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    /// The process of the launched group seen holding the listening socket (Linux), checked when it got ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listener_pid: Option<u32>,
    /// Model ids from `/v1/models`.
    pub models: Vec<String>,
    /// `/get_server_info` (secrets hidden), null when the server has none.
    pub server_info: Value,
    /// A remark for the reader, e.g. that a running server was measured on purpose.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl ServerIdentity {
    /// One line for the terminal: "pid 123, models [\"m\"], preset fast".
    pub fn summary(&self) -> String {
        let mut s = match self.pid {
            Some(p) => format!("launched pid {p}"),
            None => "not launched by servebench".to_string(),
        };
        if !self.models.is_empty() {
            s.push_str(&format!(", models {:?}", self.models));
        }
        for k in ["engine", "version", "preset"] {
            if let Some(v) = self.server_info.get(k).and_then(Value::as_str) {
                s.push_str(&format!(", {k} {v}"));
            }
        }
        s
    }
}

/// Measures a server servebench did not launch: who answers at `base_url`, recorded with `note`.
pub async fn attach(base_url: &str, api_key: Option<&str>, note: Option<String>) -> ServerIdentity {
    let http = probe::http_client();
    let (models, server_info) = probe::self_description(&http, base_url, api_key).await;
    ServerIdentity {
        launched: false,
        base_url: redact_url(base_url),
        command: None,
        pid: None,
        started_at: None,
        listener_pid: None,
        models,
        server_info,
        note,
    }
}

/// Why a running server was measured instead of the plan's own.
pub const REUSED_NOTE: &str =
    "a server was already running at this address and was measured as asked \
     (--use-running-server / reuse_running); the plan's [server] command was not launched";

/// The server a run measures: launched from `spec`, or, with `reuse_running` and something already answering at
/// its address, that server (recorded as not launched, with [`REUSED_NOTE`]).
pub async fn launch_or_reuse(
    spec: &ServerSpec,
    reuse_running: bool,
) -> Result<(Option<LaunchedServer>, ServerIdentity), LaunchError> {
    let base_url = spec.base_url.trim_end_matches('/');
    if reuse_running && probe::listening(base_url).await? {
        let id = attach(base_url, spec.api_key.as_deref(), Some(REUSED_NOTE.into())).await;
        return Ok((None, id));
    }
    let s = LaunchedServer::launch(spec).await?;
    let id = s.identity().clone();
    Ok((Some(s), id))
}

/// A server started by servebench. Stopped (the whole process group) by [`LaunchedServer::stop`] or on drop.
pub struct LaunchedServer {
    child: Child,
    pid: u32,
    status: Option<ExitStatus>,
    started_at: String,
    log_path: PathBuf,
    log: log::LogPump,
    grace: Duration,
    identity: ServerIdentity,
    stopped: bool,
}

impl LaunchedServer {
    /// Checks that nothing answers at the spec's address, launches the command and waits until it is ready.
    /// On any error nothing launched is left running.
    ///
    /// On Linux the launched process also gets SIGTERM when the thread that launched it ends
    /// (`PR_SET_PDEATHSIG`), so that even a servebench killed with SIGKILL does not leave it behind: launch from a
    /// thread that lives as long as the server should (the runtime's `block_on` or a worker thread, not
    /// `spawn_blocking`).
    pub async fn launch(spec: &ServerSpec) -> Result<LaunchedServer, LaunchError> {
        let base_url = spec.base_url.trim_end_matches('/').to_string();
        if probe::listening(&base_url).await? {
            let occupant = probe::describe_occupant(&base_url, spec.api_key.as_deref()).await;
            return Err(LaunchError::AddressTaken {
                base_url: redact_url(&base_url),
                occupant,
            });
        }
        let mut server = LaunchedServer::spawn(spec, &base_url)?;
        server.wait_ready(spec, &base_url).await?;
        let http = probe::http_client();
        let (models, server_info) =
            probe::self_description(&http, &base_url, spec.api_key.as_deref()).await;
        server.identity.models = models;
        server.identity.server_info = server_info;
        Ok(server)
    }

    fn spawn(spec: &ServerSpec, base_url: &str) -> Result<LaunchedServer, LaunchError> {
        let mut redactor = Redactor::new();
        let shown = match &spec.command {
            LaunchCommand::Argv(v) => {
                redactor.argv(v);
                spec.command.redacted()
            }
            LaunchCommand::Shell(s) => {
                redactor.command(s);
                spec.command.redacted()
            }
        };
        for (k, v) in &spec.env {
            if crate::secrets::is_secret_name(k) {
                redactor.add_secret(v);
            }
        }
        if let Some(k) = &spec.api_key {
            redactor.add_secret(k);
        }
        let log =
            log::LogPump::create(&spec.log_path, redactor).map_err(|source| LaunchError::Log {
                path: spec.log_path.clone(),
                source,
            })?;
        log.note(&format!("launching: {shown}"));
        let mut cmd = match &spec.command {
            LaunchCommand::Argv(v) => {
                let mut c = Command::new(&v[0]);
                c.args(&v[1..]);
                c
            }
            LaunchCommand::Shell(s) => {
                let mut c = Command::new("sh");
                c.arg("-c").arg(s);
                c
            }
        };
        cmd.envs(&spec.env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(d) = &spec.cwd {
            cmd.current_dir(d);
        }
        #[cfg(unix)]
        {
            use std::os::unix::process::CommandExt;
            cmd.process_group(0);
        }
        #[cfg(target_os = "linux")]
        group::stop_with_parent(&mut cmd);
        let mut child = cmd.spawn().map_err(|source| LaunchError::Spawn {
            program: spec.command.program().to_string(),
            source,
        })?;
        let pid = child.id();
        group::register(pid as i32, spec.stop_grace);
        log.note(&format!("pid {pid} (also its process group)"));
        if let Some(out) = child.stdout.take() {
            log.pump(out);
        }
        if let Some(err) = child.stderr.take() {
            log.pump(err);
        }
        let started_at = chrono::Local::now().to_rfc3339();
        Ok(LaunchedServer {
            child,
            pid,
            status: None,
            started_at: started_at.clone(),
            log_path: spec.log_path.clone(),
            log,
            grace: spec.stop_grace,
            identity: ServerIdentity {
                launched: true,
                base_url: redact_url(base_url),
                command: Some(shown),
                pid: Some(pid),
                started_at: Some(started_at),
                listener_pid: None,
                models: Vec::new(),
                server_info: Value::Null,
                note: None,
            },
            stopped: false,
        })
    }

    async fn wait_ready(&mut self, spec: &ServerSpec, base_url: &str) -> Result<(), LaunchError> {
        let http = probe::http_client();
        let t0 = Instant::now();
        loop {
            if let Some(exit) = self.exit_if_exited() {
                self.stop();
                return Err(LaunchError::ExitedBeforeReady(exit));
            }
            if probe::answers(&http, base_url, spec.api_key.as_deref()).await {
                // Still ours: the group is alive after the answer, and holds the listening socket.
                if let Some(exit) = self.exit_if_exited() {
                    self.stop();
                    return Err(LaunchError::ExitedBeforeReady(exit));
                }
                match self.listener(base_url) {
                    Some(Some(pid)) => self.identity.listener_pid = Some(pid),
                    Some(None) => {
                        self.stop();
                        return Err(LaunchError::NotOurs {
                            base_url: redact_url(base_url),
                            occupant: probe::describe_occupant(base_url, spec.api_key.as_deref())
                                .await,
                        });
                    }
                    None => {}
                }
                return Ok(());
            }
            let waited = t0.elapsed();
            if waited >= spec.ready_timeout {
                self.stop();
                return Err(LaunchError::NotReady {
                    base_url: redact_url(base_url),
                    secs: waited.as_secs_f64(),
                    tail: log::format_tail(&self.log_path, &self.log.tail()),
                });
            }
            let left = spec.ready_timeout - waited;
            tokio::time::sleep(left.min(Duration::from_millis(300))).await;
        }
    }

    /// Which process of the launched group listens at the address: `Some(Some(pid))`, `Some(None)` when another
    /// process does, `None` when that cannot be told.
    fn listener(&self, base_url: &str) -> Option<Option<u32>> {
        #[cfg(target_os = "linux")]
        {
            let (host, port) = probe::host_port(base_url).ok()?;
            // Only a server on this machine has its socket in this machine's tables.
            let local = host == "localhost"
                || host
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback() || ip.is_unspecified());
            if !local {
                return None;
            }
            let members = group_members(self.pid as i32);
            let holders = group::listeners_among(port, &members)?;
            Some(holders.iter().min().map(|p| *p as u32))
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = base_url;
            None
        }
    }

    /// The launched process's id (also its process group's).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// When it was launched (RFC 3339).
    pub fn started_at(&self) -> &str {
        &self.started_at
    }

    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// Which server this is: launch command, pid, start time and what it says about itself.
    pub fn identity(&self) -> &ServerIdentity {
        &self.identity
    }

    /// Collects the launched process's status if it has exited.
    fn reap(&mut self) {
        if self.status.is_none() {
            if let Ok(Some(s)) = self.child.try_wait() {
                self.status = Some(s);
            }
        }
    }

    /// `Some` once the launched process and every member of its group are gone.
    pub fn exit_if_exited(&mut self) -> Option<ServerExit> {
        self.reap();
        self.status?;
        if !group_members(self.pid as i32).is_empty() {
            return None;
        }
        // Let the log threads copy what the server wrote last.
        std::thread::sleep(Duration::from_millis(50));
        Some(ServerExit {
            status: self.status.map_or("unknown".into(), describe_status),
            pid: self.pid,
            log_path: self.log_path.clone(),
            tail: self.log.tail(),
        })
    }

    /// Resolves when the server has exited on its own (never, once stopped).
    pub async fn exited(&mut self) -> ServerExit {
        loop {
            if !self.stopped {
                if let Some(e) = self.exit_if_exited() {
                    return e;
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Stops the whole process group: SIGTERM, then SIGKILL after the grace period. Idempotent.
    pub fn stop(&mut self) -> StopHow {
        if self.stopped {
            return StopHow::AlreadyGone;
        }
        self.stopped = true;
        let pgid = self.pid as i32;
        #[cfg(unix)]
        let how = {
            let child = &mut self.child;
            let status = &mut self.status;
            group::stop_group(pgid, self.grace, || {
                if status.is_none() {
                    if let Ok(Some(s)) = child.try_wait() {
                        *status = Some(s);
                    }
                }
            })
        };
        #[cfg(not(unix))]
        let how = {
            let _ = self.child.kill();
            StopHow::Killed
        };
        if self.status.is_none() {
            self.status = self.child.wait().ok();
        }
        group::unregister(pgid);
        self.log.note(&format!("stopped ({how:?})"));
        how
    }
}

impl Drop for LaunchedServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// "exit status: 3" / "signal: 9 (SIGKILL)".
fn describe_status(s: ExitStatus) -> String {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(sig) = s.signal() {
            let name = nix::sys::signal::Signal::try_from(sig)
                .map(|s| s.as_str().to_string())
                .unwrap_or_default();
            return format!("killed by signal {sig} {name}")
                .trim_end()
                .to_string();
        }
    }
    match s.code() {
        Some(c) => format!("exit status {c}"),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests;
