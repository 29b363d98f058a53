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
