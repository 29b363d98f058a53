//! `servebench report DIR…`: collect results on disk into summary.csv, summary.md, charts and a
//! self-contained report.html.

use std::path::PathBuf;

use anyhow::Context as _;
use servebench_report::{collect_with, write_report, DuplicatePolicy, ReportOptions, SortKey};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Folders to read, recursively: result files (*.json, *.jsonl) from servebench,
    /// `sglang.bench_serving` or `vllm bench serve`, per-request records (*.details.jsonl) and
    /// eval outputs ({dataset}_report.json, {dataset}_predictions.jsonl).
    #[arg(required = true, value_name = "DIR")]
    pub dirs: Vec<PathBuf>,
    /// Folder to write into (default: the first DIR). Several DIRs are merged into one report (e.g. the
    /// shards of one plan, `--shard`).
    #[arg(long, visible_alias = "output", value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// The same point (lengths, ratio, rate, concurrency, prompts, model, server) in more than one result file:
    /// `warn` keeps every row and says so, `error` refuses, `newest` keeps the most recently written file's.
    #[arg(long, default_value = "warn", value_name = "POLICY", value_parser = parse_duplicates)]
    pub on_duplicate: DuplicatePolicy,
    /// Row order: `concurrency` (then input len, output len, ratio), `setting` (one block per
    /// input/output/ratio setting) or `file`.
    #[arg(long, default_value = "concurrency", value_parser = parse_sort)]
    pub sort: SortKey,
    /// Draw the per-request TTFT/E2E distributions of this point (repeatable): a point name as
    /// listed in the report (`tp1_in3500_out1500_ratio0.7@c64`), a result file's stem or path.
    /// Default: every run with a *.details.jsonl file (up to 12).
    #[arg(long, value_name = "NAME")]
    pub point: Vec<String>,
    /// Title of the HTML report (default: "servebench report").
    #[arg(long)]
    pub title: Option<String>,
    /// Print what was written as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

fn parse_sort(s: &str) -> Result<SortKey, String> {
    s.parse()
}

fn parse_duplicates(s: &str) -> Result<DuplicatePolicy, String> {
    s.parse()
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let out_dir = args
        .out
        .clone()
        .or_else(|| args.dirs.first().cloned())
        .context("give at least one DIR")?;
    let collection = collect_with(&args.dirs, args.on_duplicate)?;
    let opts = ReportOptions {
        out_dir: out_dir.clone(),
        sort: args.sort,
        points: args.point.clone(),
        title: args.title.clone(),
    };
    let written = write_report(&collection, &opts)
        .with_context(|| format!("writing the report into {}", out_dir.display()))?;
    if args.json {
        let v = serde_json::json!({
            "out_dir": out_dir.display().to_string(),
            "runs": written.runs.len(),
            "eval_sets": collection.evals.len(),
            "files": written.files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>(),
            "notes": written.notes,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    for note in &written.notes {
        eprintln!("note: {note}");
    }
    println!(
        "{} runs, {} eval sets → {}",
        written.runs.len(),
        collection.evals.len(),
        out_dir.display()
    );
    for f in &written.files {
        let shown = f.strip_prefix(&out_dir).unwrap_or(f);
        println!("  {}", shown.display());
    }
    Ok(())
}
