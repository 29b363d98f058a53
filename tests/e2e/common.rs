//! Helpers shared by the end-to-end tests.

use clap::Parser;
use servebench::cli::{Cli, Command};
use servebench::sim::{SimConfig, SimServer};
use std::path::PathBuf;
use std::sync::Arc;

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A fresh temporary folder.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}

/// Parses `servebench bench ARGS…` into its Args.
pub fn bench_args(args: &[&str]) -> servebench::cli::bench::Args {
    let mut argv = vec!["servebench", "bench"];
    argv.extend_from_slice(args);
    match Cli::try_parse_from(argv)
        .expect("valid bench flags")
        .command
    {
        Command::Bench(a) => *a,
        _ => unreachable!(),
    }
}

/// Starts the simulator with a preset, customised by `f`, counting prompt tokens with the built-in tokenizer.
pub async fn start_sim(preset: &str, f: impl FnOnce(&mut SimConfig)) -> SimServer {
    let mut cfg = SimConfig::preset(preset).expect("preset");
    let tok = Arc::new(servebench::tokenize::Tokenizer::builtin().expect("builtin tokenizer"));
    cfg.prompt_counter = Some(Arc::new(servebench::sim_counter::TokenizerCounter(tok)));
    f(&mut cfg);
    SimServer::start(cfg, "127.0.0.1:0".parse().unwrap())
        .await
        .expect("simulator starts")
}

/// Runs one bench; returns the result object.
pub async fn run_bench(args: servebench::cli::bench::Args) -> serde_json::Value {
    let (_tx, rx) = tokio::sync::watch::channel(false);
    servebench::cli::bench::execute(args, rx)
        .await
        .expect("bench runs")
        .result
}

pub fn read_lines(path: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .expect("file exists")
        .lines()
        .map(|l| serde_json::from_str(l).expect("strict JSON line"))
        .collect()
}

/// The servebench binary with no key, data folder or log level from the environment, and no stdin.
pub fn sb() -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_servebench"));
    c.env_remove("OPENAI_API_KEY")
        .env_remove("API_KEY")
        .env_remove("SERVEBENCH_DATA_DIR")
        .env_remove("RUST_LOG")
        .stdin(std::process::Stdio::null());
    c
}

/// Runs `cmd` to the end with its output captured; kills it and fails the test after `limit`.
pub fn run_limited(
    mut cmd: std::process::Command,
    limit: std::time::Duration,
) -> std::process::Output {
    let child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("servebench starts");
    wait_limited(child, limit)
}

/// Waits for `child`; kills it and fails the test after `limit`.
pub fn wait_limited(
    mut child: std::process::Child,
    limit: std::time::Duration,
) -> std::process::Output {
    let start = std::time::Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("servebench still running after {limit:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}

/// The exit code of a process that exited (not killed by a signal).
pub fn code(o: &std::process::Output) -> i32 {
    o.status.code().expect("exited, not killed by a signal")
}

/// What the process wrote to stderr.
pub fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A listener that counts connections and never answers: proves that nothing was sent.
pub fn counting_listener() -> (String, Arc<std::sync::atomic::AtomicUsize>) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", l.local_addr().expect("addr"));
    let n = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = n.clone();
    std::thread::spawn(move || {
        for s in l.incoming() {
            if s.is_ok() {
                seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        }
    });
    (url, n)
}
