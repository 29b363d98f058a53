//! `servebench run` launching its own server (`servebench sim` on a free port): the server measured is the one
//! launched, a taken port is refused, a dying server stops the run, and nothing launched survives any ending.

use crate::common::*;
use serde_json::Value;
use servebench::launch::group_members;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_servebench");

/// A loopback port nothing listens on (bound, then released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A plan that launches `servebench sim --model MODEL SIM_ARGS…` on `port` and sweeps it (and evals it on two
/// AIME24 items when `eval`).
fn plan(
    dir: &Path,
    name: &str,
    port: u16,
    model: &str,
    sim_args: &[&str],
    sweep: &str,
    eval: bool,
) -> PathBuf {
    let mut cmd: Vec<String> = [BIN, "sim", "--port", &port.to_string(), "--model", model]
        .iter()
        .map(|s| s.to_string())
        .collect();
    cmd.extend(sim_args.iter().map(|s| s.to_string()));
    let eval = if eval {
        format!(
            "[eval]\nargs = [\"--datasets\", \"aime24\", \"--data-dir\", {:?}, \"--limit\", \"2\", \"--max-tokens\", \"8\"]\n",
            root().join("data").display().to_string()
        )
    } else {
        String::new()
    };
    let text = format!(
        "output_dir = \"{name}-out\"\n\n[server]\ncommand = {cmd:?}\nready_timeout_s = 120\nstop_grace_s = 5\n\n\
         [target]\nbase_url = \"http://127.0.0.1:{port}\"\nbackend = \"sglang\"\n\n{eval}[sweep]\n{sweep}\n"
    );
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

const SMALL_SWEEP: &str =
    "axes = { input_output = [\"32:8\"], concurrency = [1, 2] }\nrun = { num_prompts = 4, file_pattern = \"tp{prompts}_c{conc}_in{in}_out{out}_ratio{ratio}.json\" }";

fn run_plan(plan: &Path, extra: &[&str]) -> Output {
    Command::new(BIN)
        .arg("run")
        .arg(plan)
        .args(extra)
        .current_dir(std::env::temp_dir())
        .env_remove("OPENAI_API_KEY")
        .output()
        .expect("servebench runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The measured server recorded in env.json.
fn env_server(out: &Path) -> Value {
    let v: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("env.json")).unwrap()).unwrap();
    v["server"].clone()
}

/// Every result line of the sweep.
fn sweep_results(out: &Path) -> Vec<Value> {
    let mut v = Vec::new();
    for e in std::fs::read_dir(out.join("perf")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "json") {
            v.extend(read_lines(&p));
        }
    }
    v
}

fn assert_gone(pid: u64) {
    let t0 = Instant::now();
    while !group_members(pid as i32).is_empty() {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "launched server group {pid} still has {:?}",
            group_members(pid as i32)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn two_runs_on_one_port_each_measure_their_own_server() {
    let dir = tempdir();
    let port = free_port();
    let mut pids = Vec::new();
    for (name, model) in [("a", "model-A"), ("b", "model-B")] {
        let p = plan(
            dir.path(),
            name,
            port,
            model,
            &["--preset", "fast"],
            SMALL_SWEEP,
            name == "a",
        );
        let o = run_plan(&p, &[]);
        assert!(
            o.status.success(),
            "{}\n{}",
            text(&o.stdout),
            text(&o.stderr)
        );
        let out = dir.path().join(format!("{name}-out"));
        let server = env_server(&out);
        assert_eq!(server["launched"], true);
        assert_eq!(server["models"], serde_json::json!([model]));
        assert_eq!(server["server_info"]["preset"], "fast");
        assert!(server["command"].as_str().unwrap().contains(model));
        let pid = server["pid"].as_u64().unwrap();
        assert_eq!(
            server["listener_pid"], pid,
            "the launched process holds the port"
        );
        let results = sweep_results(&out);
        assert_eq!(results.len(), 2);
        for r in &results {
            assert_eq!(
                r["measured_server"], server,
                "every sweep result names the launched server"
            );
            assert_eq!(r["model"], model);
        }
        if name == "a" {
            let rep: Value = serde_json::from_str(
                &std::fs::read_to_string(out.join("eval/aime24_report.json")).unwrap(),
            )
            .unwrap();
            let s = rep.to_string();
            assert!(
                s.contains("\"measured_server\"") && s.contains(&format!("\"pid\":{pid}")),
                "{s}"
            );
        }
        assert_gone(pid);
        pids.push(pid);
    }
    assert_ne!(pids[0], pids[1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taken_port_is_refused_before_any_request() {
    let occupant = start_sim("fast", |c| c.model = "the-occupant".into()).await;
    let port: u16 = occupant
        .base_url()
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let dir = tempdir();
    let p = plan(
        dir.path(),
        "t",
        port,
        "model-T",
        &["--preset", "fast"],
        SMALL_SWEEP,
        true,
    );
    let o = tokio::task::spawn_blocking({
        let p = p.clone();
        move || run_plan(&p, &[])
    })
    .await
    .unwrap();
    assert!(!o.status.success());
    let err = text(&o.stderr);
    assert!(
        err.contains("is taken")
            && err.contains("the-occupant")
            && err.contains("--use-running-server"),
        "{err}"
    );
    let out = dir.path().join("t-out");
    assert!(
        !out.join("perf").exists() && !out.join("eval").exists(),
        "nothing ran"
    );
    servebench::load::ensure_tls_provider();
    let metrics = reqwest::get(format!("{}/metrics", occupant.base_url()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let received: Vec<f64> = metrics
        .lines()
        .filter(|l| l.starts_with("servebench_sim_requests_received_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .collect();
    assert_eq!(
        received,
        [0.0],
        "no request reached the occupant:\n{metrics}"
    );

    // Asked for on purpose: the occupant is measured, and every result says so.
    let o = tokio::task::spawn_blocking(move || run_plan(&p, &["--use-running-server"]))
        .await
        .unwrap();
    assert!(
        o.status.success(),
        "{}\n{}",
        text(&o.stdout),
        text(&o.stderr)
    );
    let server = env_server(&out);
    assert_eq!(server["launched"], false);
    assert_eq!(server["models"], serde_json::json!(["the-occupant"]));
    assert!(server["note"].as_str().unwrap().contains("already running"));
    for r in sweep_results(&out) {
        assert_eq!(r["measured_server"]["launched"], false);
    }
    occupant.shutdown().await;
}

/// A run in the background, its stdout and stderr collected.
struct Background {
    child: Child,
    out: PathBuf,
}

impl Background {
    fn start(plan: &Path, out: PathBuf) -> Background {
        let child = Command::new(BIN)
            .arg("run")
            .arg(plan)
            .env_remove("OPENAI_API_KEY")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        Background { child, out }
    }

    /// The launched server's pid, once it is ready (env.json is written then).
    fn server_pid(&mut self) -> u64 {
        let t0 = Instant::now();
        loop {
            if let Ok(t) = std::fs::read_to_string(self.out.join("env.json")) {
                if let Some(p) = serde_json::from_str::<Value>(&t)
                    .ok()
                    .and_then(|v| v["server"]["pid"].as_u64())
                {
                    return p;
                }
            }
            if let Ok(Some(s)) = self.child.try_wait() {
                panic!("run ended early ({s}): {}", self.finish().2);
            }
            assert!(
                t0.elapsed() < Duration::from_secs(120),
                "server never ready"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until the sweep has sent requests (a details file exists).
    fn wait_for_requests(&self) {
        let t0 = Instant::now();
        loop {
            let started = std::fs::read_dir(self.out.join("perf"))
                .map(|d| {
                    d.filter_map(|e| e.ok())
                        .any(|e| e.path().to_string_lossy().ends_with(".details.jsonl"))
                })
                .unwrap_or(false);
            if started {
                return;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(60),
                "the sweep never started"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok);
    }

    /// Waits (at most 60 s) for the end: (status code or -signal, stdout, stderr).
    fn finish(&mut self) -> (i32, String, String) {
        let t0 = Instant::now();
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            if t0.elapsed() > Duration::from_secs(60) {
                let _ = self.child.kill();
                panic!("servebench run did not end");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let (mut o, mut e) = (String::new(), String::new());
        self.child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut o)
            .unwrap();
        self.child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut e)
            .unwrap();
        use std::os::unix::process::ExitStatusExt;
        (
            status
                .code()
                .unwrap_or_else(|| -status.signal().unwrap_or(0)),
            o,
            e,
        )
    }
}

/// A sweep that keeps a slow server busy for about a minute.
const LONG_SWEEP: &str =
    "axes = { input_output = [\"32:40\"], concurrency = [2] }\nrun = { num_prompts = 60 }";
const SLOW: &[&str] = &["--ttft-ms", "20", "--itl-ms", "50"];

#[test]
fn a_server_that_dies_mid_sweep_stops_the_run_with_its_exit_status() {
    let dir = tempdir();
    let p = plan(
        dir.path(),
        "d",
        free_port(),
        "model-D",
        SLOW,
        LONG_SWEEP,
        false,
    );
    let mut run = Background::start(&p, dir.path().join("d-out"));
    let pid = run.server_pid();
    run.wait_for_requests();
    let t0 = Instant::now();
    assert!(Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap()
        .success());
    let (code, out, err) = run.finish();
    assert_ne!(code, 0, "{out}\n{err}");
    assert!(
        t0.elapsed() < Duration::from_secs(20),
        "the run stopped at once"
    );
    assert!(
        err.contains(&format!("(pid {pid}) exited (killed by signal 9 SIGKILL)"))
            && err.contains("The run stopped"),
        "{err}"
    );
    assert!(
        err.contains("last lines of") && err.contains("servebench sim"),
        "the log's tail: {err}"
    );
    assert_gone(pid);
}

#[test]
fn an_error_during_the_run_stops_the_launched_server() {
    let dir = tempdir();
    let port = free_port();
    let p = plan(
        dir.path(),
        "e",
        port,
        "model-E",
        &["--preset", "fast"],
        SMALL_SWEEP,
        false,
    );
    // The eval's data folder does not exist: the eval fails after the server is up.
    let text_plan = std::fs::read_to_string(&p).unwrap().replace(
        "[sweep]",
        "[eval]\nargs = [\"--datasets\", \"aime24\", \"--data-dir\", \"no-such-folder\"]\n\n[sweep]",
    );
    std::fs::write(&p, text_plan).unwrap();
    let o = run_plan(&p, &[]);
    assert!(!o.status.success());
    let out = dir.path().join("e-out");
    let pid = env_server(&out)["pid"].as_u64().unwrap();
    assert!(
        text(&o.stderr).contains("no-such-folder"),
        "{}",
        text(&o.stderr)
    );
    assert_gone(pid);
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "the port is free again"
    );
}

#[test]
fn ctrl_c_lets_requests_finish_then_stops_the_server() {
    let dir = tempdir();
    let p = plan(
        dir.path(),
        "i",
        free_port(),
        "model-I",
        SLOW,
        LONG_SWEEP,
        false,
    );
    let mut run = Background::start(&p, dir.path().join("i-out"));
    let pid = run.server_pid();
    run.wait_for_requests();
    run.signal("-INT");
    let (_, out, err) = run.finish();
    assert!(
        err.contains("letting the requests in flight finish"),
        "{err}"
    );
    assert!(out.contains("interrupted during the sweep"), "{out}\n{err}");
    assert!(
        out.contains(&format!("server: stopped (pid {pid}")),
        "{out}"
    );
    // The requests in flight finished: the point's line holds them, none failed for lack of a server.
    let r = &sweep_results(&dir.path().join("i-out"))[0];
    assert_eq!(r["interrupted"], true);
    assert_eq!(r["failed"], 0, "{r}");
    assert!(r["completed"].as_u64().unwrap() >= 1);
    assert_gone(pid);
}

#[test]
fn a_second_ctrl_c_or_sigterm_stops_everything_at_once() {
    for (signals, code) in [(&["-INT", "-INT"][..], 130), (&["-TERM"][..], 143)] {
        let dir = tempdir();
        let p = plan(
            dir.path(),
            "s",
            free_port(),
            "model-S",
            SLOW,
            LONG_SWEEP,
            false,
        );
        let mut run = Background::start(&p, dir.path().join("s-out"));
        let pid = run.server_pid();
        run.wait_for_requests();
        let t0 = Instant::now();
        for s in signals {
            run.signal(s);
            std::thread::sleep(Duration::from_millis(200));
        }
        let (got, out, err) = run.finish();
        assert_eq!(got, code, "{signals:?}: {out}\n{err}");
        assert!(
            t0.elapsed() < Duration::from_secs(15),
            "{signals:?}: stopped at once"
        );
        assert!(err.contains("stopping the launched server now"), "{err}");
        assert_gone(pid);
    }
}

/// A TCP proxy to `upstream` that records, for every HTTP request passing through, its Bearer token ("" when none).
async fn recording_proxy(
    upstream: String,
) -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let (up, seen) = (upstream.clone(), seen2.clone());
            tokio::spawn(async move {
                let Ok(server) = tokio::net::TcpStream::connect(up).await else {
                    return;
                };
                let (mut cr, mut cw) = client.into_split();
                let (mut sr, mut sw) = server.into_split();
                tokio::spawn(async move { tokio::io::copy(&mut sr, &mut cw).await });
                let mut buf = vec![0u8; 1 << 16];
                while let Ok(n) = cr.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    let chunk = String::from_utf8_lossy(&buf[..n]).into_owned();
                    for head in chunk
                        .split("\r\n\r\n")
                        .filter(|h| h.contains(" HTTP/1.1\r\n"))
                    {
                        let token = head
                            .lines()
                            .find_map(|l| {
                                let (k, v) = l.split_once(':')?;
                                k.eq_ignore_ascii_case("authorization")
                                    .then(|| v.trim().trim_start_matches("Bearer ").to_string())
                            })
                            .unwrap_or_default();
                        seen.lock().unwrap().push(token);
                    }
                    if sw.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    (url, seen)
}

/// `--api-key` wins over the plan's `api_key_env`, which wins over $OPENAI_API_KEY, in the eval and the sweep.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_key_flag_wins_over_the_environment_in_every_request() {
    let sim = start_sim("fast", |_| {}).await;
    let upstream = sim.base_url().trim_start_matches("http://").to_string();
    let (url, seen) = recording_proxy(upstream).await;
    let dir = tempdir();
    let write_plan = |key_env: &str| {
        let p = dir.path().join("k.toml");
        std::fs::write(
            &p,
            format!(
                "output_dir = \"k-out\"\n{key_env}\n[target]\nbase_url = \"{url}\"\n[eval]\nargs = [\"--datasets\", \"aime24\", \
                 \"--data-dir\", {:?}, \"--limit\", \"2\", \"--max-tokens\", \"8\"]\n[sweep]\n{SMALL_SWEEP}\n",
                root().join("data").display().to_string()
            ),
        )
        .unwrap();
        p
    };
    for (key_env, flag, want) in [
        ("", Some("sk-FLAGKEY0001"), "sk-FLAGKEY0001"),
        ("api_key_env = \"MY_SERVER_KEY\"", None, "sk-PLANVARKEY02"),
        (
            "api_key_env = \"MY_SERVER_KEY\"",
            Some("sk-FLAGKEY0001"),
            "sk-FLAGKEY0001",
        ),
        ("", None, "sk-ENVKEY00003"),
    ] {
        let p = write_plan(key_env);
        let _ = std::fs::remove_dir_all(dir.path().join("k-out"));
        seen.lock().unwrap().clear();
        let o = tokio::task::spawn_blocking(move || {
            let mut c = Command::new(BIN);
            c.arg("run")
                .arg(&p)
                .env("OPENAI_API_KEY", "sk-ENVKEY00003")
                .env("MY_SERVER_KEY", "sk-PLANVARKEY02");
            if let Some(f) = flag {
                c.args(["--api-key", f]);
            }
            c.output().unwrap()
        })
        .await
        .unwrap();
        assert!(
            o.status.success(),
            "{}\n{}",
            text(&o.stdout),
            text(&o.stderr)
        );
        let seen = seen.lock().unwrap().clone();
        assert!(seen.len() > 10, "{seen:?}");
        assert!(
            seen.iter().all(|k| k == want),
            "{key_env} {flag:?}: every request carries {want}: {seen:?}"
        );
    }
    // `servebench sweep` alone: its --api-key, not the environment's, on every request.
    seen.lock().unwrap().clear();
    let out = dir.path().join("sweep-alone");
    let o = tokio::task::spawn_blocking(move || {
        Command::new(BIN)
            .args([
                "sweep",
                "--base-url",
                &url,
                "--input-output",
                "32:8",
                "--concurrency",
                "2,3",
            ])
            .args(["--api-key", "sk-FLAGKEY0001", "--no-report", "--output-dir"])
            .arg(&out)
            .env("OPENAI_API_KEY", "sk-ENVKEY00003")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        o.status.success(),
        "{}\n{}",
        text(&o.stdout),
        text(&o.stderr)
    );
    let seen = seen.lock().unwrap().clone();
    assert!(
        seen.len() >= 4 && seen.iter().all(|k| k == "sk-FLAGKEY0001"),
        "{seen:?}"
    );
    sim.shutdown().await;
}

/// Every file a run writes, and what it prints.
fn all_output(dir: &Path, o: &Output) -> Vec<(String, String)> {
    let mut v = vec![
        ("stdout".to_string(), text(&o.stdout)),
        ("stderr".to_string(), text(&o.stderr)),
    ];
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                v.push((
                    p.display().to_string(),
                    String::from_utf8_lossy(&std::fs::read(&p).unwrap()).into_owned(),
                ));
            }
        }
    }
    v
}

/// A key planted in every channel (flag, environment, the server's command and environment, eval flags, bench
/// headers, URL credentials) appears in no file, log or message of the run.
#[test]
fn planted_keys_appear_in_no_output() {
    let dir = tempdir();
    let port = free_port();
    let plan = format!(
        r#"output_dir = "out"
[server]
command = "SECRET_TOKEN=sk-PLANTCMD0001 exec {BIN} sim --port {port} --preset fast --model m"
shell = true
env = {{ HF_TOKEN = "hf_PLANTENV00000002" }}
stop_grace_s = 5
[target]
base_url = "http://user:PLANTURL0003@127.0.0.1:{port}"
[eval]
args = ["--datasets", "aime24", "--data-dir", {data:?}, "--limit", "2", "--max-tokens", "8", "--api-key", "sk-PLANTEVAL0004"]
[sweep]
axes = {{ input_output = ["32:8"], concurrency = [1] }}
run = {{ num_prompts = 2, extra_args = ["--header", "X-Api-Key: PLANTHDR0005", "--header=Authorization: Bearer PLANTHDR0006"] }}
"#,
        data = root().join("data").display().to_string()
    );
    let p = dir.path().join("secret.toml");
    std::fs::write(&p, plan).unwrap();
    let o = Command::new(BIN)
        .args(["run"])
        .arg(&p)
        .args(["--api-ke", "sk-PLANTFLAG0007"])
        .env("OPENAI_API_KEY", "sk-PLANTENV0008")
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{}\n{}",
        text(&o.stdout),
        text(&o.stderr)
    );
    let outputs = all_output(&dir.path().join("out"), &o);
    assert!(outputs.iter().any(|(f, _)| f.ends_with("server.log")));
    assert!(outputs.iter().any(|(f, _)| f.ends_with("plan.toml")));
    for (file, body) in &outputs {
        for k in [
            "PLANTCMD",
            "PLANTENV",
            "PLANTURL",
            "PLANTEVAL",
            "PLANTHDR",
            "PLANTFLAG",
        ] {
            assert!(!body.contains(k), "{k} in {file}:\n{body}");
        }
    }
    let env = env_server(&dir.path().join("out"));
    assert!(
        env["command"]
            .as_str()
            .unwrap()
            .contains("SECRET_TOKEN=<redacted>"),
        "{env}"
    );
    assert_eq!(
        env["base_url"],
        format!("http://<redacted>@127.0.0.1:{port}")
    );
}

#[test]
fn a_servebench_killed_with_sigkill_takes_its_server_along() {
    let dir = tempdir();
    let p = plan(
        dir.path(),
        "k",
        free_port(),
        "model-K",
        SLOW,
        LONG_SWEEP,
        false,
    );
    let mut run = Background::start(&p, dir.path().join("k-out"));
    let pid = run.server_pid();
    run.wait_for_requests();
    run.signal("-KILL");
    let (code, _, _) = run.finish();
    assert_eq!(code, -9);
    assert_gone(pid);
}

#[test]
fn run_help_and_dry_run() {
    let o = Command::new(BIN).args(["run", "--help"]).output().unwrap();
    assert!(
        text(&o.stdout).contains("docs/plans.md"),
        "{}",
        text(&o.stdout)
    );
    let dir = tempdir();
    let p = plan(
        dir.path(),
        "n",
        free_port(),
        "model-N",
        &["--api-key", "sk-DRYRUNKEY01"],
        SMALL_SWEEP,
        true,
    );
    let o = run_plan(&p, &["--dry-run"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    assert!(
        out.contains("server: launch ") && out.contains("--api-key <redacted>"),
        "{out}"
    );
    assert!(
        out.contains("eval: ") && out.contains("sweep [2/2]"),
        "{out}"
    );
    assert!(!out.contains("DRYRUNKEY"), "{out}");
    assert!(
        !dir.path().join("n-out").exists(),
        "a dry run touches nothing"
    );
}

#[test]
fn ctrl_c_while_waiting_for_readiness_stops_the_launch() {
    let dir = tempdir();
    let port = free_port();
    let p = dir.path().join("w.toml");
    std::fs::write(
        &p,
        format!(
            "output_dir = \"w-out\"\n[server]\ncommand = [\"sleep\", \"300\"]\nstop_grace_s = 5\n[target]\n\
             base_url = \"http://127.0.0.1:{port}\"\n[sweep]\n{SMALL_SWEEP}\n"
        ),
    )
    .unwrap();
    let mut run = Background::start(&p, dir.path().join("w-out"));
    let log = dir.path().join("w-out/server.log");
    let t0 = Instant::now();
    let pid: u64 = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if let Some(pid) = text.lines().find_map(|l| {
            l.strip_prefix("[servebench] pid ")?
                .split(' ')
                .next()?
                .parse()
                .ok()
        }) {
            break pid;
        }
        assert!(t0.elapsed() < Duration::from_secs(60), "never launched");
        std::thread::sleep(Duration::from_millis(50));
    };
    run.signal("-INT");
    let (code, _, err) = run.finish();
    assert_ne!(code, 0);
    assert!(
        err.contains("interrupted while waiting for the server"),
        "{err}"
    );
    assert_gone(pid);
}
