//! Command-line surface: one module per command, each with its clap `Args` and a `run` function.

pub mod args;
pub mod bench;
pub mod capacity;
pub mod compare;
pub mod env;
pub mod eval;
pub mod exit;
pub mod grade;
pub mod load_sensitivity;
pub mod output;
pub mod report;
pub mod run;
pub mod secrets;
pub mod sim;
pub mod study;
pub mod sweep;

use clap::{Parser, Subcommand};

/// Measure an LLM serving deployment: accuracy and performance through its API.
#[derive(Debug, Parser)]
#[command(
    name = "servebench",
    version,
    about,
    propagate_version = true,
    after_help = exit::HELP
)]
pub struct Cli {
    /// More log output on stderr (-v info, -vv debug).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// One load test (flags as in `python3 -m sglang.bench_serving`).
    Bench(Box<bench::Args>),
    /// Run the simulated engine as an HTTP server (OpenAI API + SGLang /generate).
    Sim(Box<sim::Args>),
    /// Accuracy on named datasets through the serving API.
    Eval(Box<eval::Args>),
    /// Decide whether a predicted math answer equals the gold answer.
    Grade(Box<grade::Args>),
    /// A matrix of load tests (lengths x concurrencies x ratios), resumable.
    Sweep(Box<sweep::Args>),
    /// The highest concurrency or request rate meeting an SLO (bracket, then bisect), with its GPU time.
    Capacity(Box<capacity::Args>),
    /// Collect results on disk into summary.csv, charts and report.html.
    Report(Box<report::Args>),
    /// Two runs side by side: performance at equal load, accuracy with significance.
    Compare(Box<compare::Args>),
    /// The whole workflow from one plan: launch the server, capture the machine, eval, sweep, report.
    Run(Box<run::Args>),
    /// Machine facts: CPU, memory, GPUs, driver.
    Env(Box<env::Args>),
}

pub fn dispatch(cmd: Command) -> anyhow::Result<()> {
    match cmd {
        Command::Bench(a) => bench::run(*a),
        Command::Sim(a) => sim::run(*a),
        Command::Eval(a) => eval::run(*a),
        Command::Grade(a) => grade::run(*a),
        Command::Sweep(a) => sweep::run(*a),
        Command::Capacity(a) => capacity::run(*a),
        Command::Report(a) => report::run(*a),
        Command::Compare(a) => compare::run(*a),
        Command::Run(a) => run::run(*a),
        Command::Env(a) => env::run(*a),
    }
}

/// Logs go to stderr; `RUST_LOG` overrides the level chosen by `-v`.
pub fn init_logging(verbose: u8) {
    let level = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// A stop signal for long commands: the first Ctrl-C prints `message` and flips the channel (the command stops
/// sending and keeps what finished); a second Ctrl-C exits at once.
pub fn stop_on_ctrl_c(
    rt: &tokio::runtime::Runtime,
    message: &'static str,
) -> tokio::sync::watch::Receiver<bool> {
    let (tx, rx) = tokio::sync::watch::channel(false);
    rt.spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("\nCtrl-C: {message} (Ctrl-C again to quit now)");
            let _ = tx.send(true);
            if tokio::signal::ctrl_c().await.is_ok() {
                std::process::exit(130);
            }
        }
    });
    rx
}

/// The tokio runtime of the async commands: multi-threaded, except where the process may run on one CPU
/// only (`taskset -c 1`, a one-CPU container). There a multi-threaded runtime would still run its one worker
/// beside the thread that drives the command, and every hand-over between the two (a finished request freeing
/// a concurrency slot, a new request spawned) would be a futex wake-up and a context switch on the same core.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
    runtime_for(cpus)
}

fn runtime_for(cpus: usize) -> anyhow::Result<tokio::runtime::Runtime> {
    let mut builder = if cpus == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    Ok(builder.enable_all().build()?)
}

#[cfg(test)]
mod runtime_tests {
    use tokio::runtime::RuntimeFlavor;

    #[test]
    fn one_cpu_gets_a_current_thread_runtime_and_more_a_multi_threaded_one() {
        let flavor = |cpus| super::runtime_for(cpus).unwrap().handle().runtime_flavor();
        assert_eq!(flavor(1), RuntimeFlavor::CurrentThread);
        assert_eq!(flavor(2), RuntimeFlavor::MultiThread);
        assert_eq!(flavor(16), RuntimeFlavor::MultiThread);
    }
}

#[cfg(test)]
mod help_tests {
    use super::Cli;
    use clap::CommandFactory;

    /// Every flag of the user-facing commands says what it does, and its default: clap's `[default: …]`, or
    /// the word "default" in the text for flags whose absence means something.
    #[test]
    fn every_flag_has_a_description_and_its_default() {
        let cmd = Cli::command();
        let mut missing = Vec::new();
        for sub in ["bench", "sweep", "eval", "run", "sim", "report", "compare"] {
            let sc = cmd.find_subcommand(sub).expect("subcommand");
            for arg in sc.get_arguments() {
                let id = arg.get_id().as_str();
                if matches!(id, "help" | "version") || arg.is_hide_set() {
                    continue;
                }
                let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
                if help.trim().is_empty() {
                    missing.push(format!("{sub} {id}: no description"));
                    continue;
                }
                let takes_value = arg.get_action().takes_values();
                let positional = arg.is_positional();
                if takes_value
                    && !positional
                    && arg.get_default_values().is_empty()
                    && !help.to_lowercase().contains("default")
                {
                    missing.push(format!("{sub} {id}: no default named"));
                }
            }
        }
        assert!(missing.is_empty(), "{}", missing.join("\n"));
    }
}
