//! `servebench compare A B`: two result folders side by side — performance at matching load
//! points (B/A with better/worse), accuracy with a paired significance test.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use servebench_report::{collect, compare, CompareOptions};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Baseline folder (results and/or eval outputs), e.g. the FP8 run.
    #[arg(value_name = "A")]
    pub a: PathBuf,
    /// Candidate folder, e.g. the INT8 run; ratios read B/A.
    #[arg(value_name = "B")]
    pub b: PathBuf,
    /// Folder to write compare.csv, compare.md, compare.html and charts into
    /// (default: ./compare_<label-b>_vs_<label-a>).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Name of A in tables and statements (default: A's folder name).
    #[arg(long, value_name = "NAME")]
    pub label_a: Option<String>,
    /// Name of B (default: B's folder name).
    #[arg(long, value_name = "NAME")]
    pub label_b: Option<String>,
    /// Print the results as JSON on stdout instead of tables.
    #[arg(long)]
    pub json: bool,
}

fn folder_name(p: &Path) -> Option<String> {
    let abs = std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    abs.file_name().map(|n| n.to_string_lossy().into_owned())
}

fn safe(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let (mut la, mut lb) = (
        args.label_a
            .clone()
            .or_else(|| folder_name(&args.a))
            .unwrap_or_else(|| "A".into()),
        args.label_b
            .clone()
            .or_else(|| folder_name(&args.b))
            .unwrap_or_else(|| "B".into()),
    );
    if la == lb && args.label_a.is_none() && args.label_b.is_none() {
        (la, lb) = ("A".into(), "B".into());
    }
    let out_dir = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("compare_{}_vs_{}", safe(&lb), safe(&la))));
    let a = collect(std::slice::from_ref(&args.a))
        .with_context(|| format!("reading A ({})", args.a.display()))?;
    let b = collect(std::slice::from_ref(&args.b))
        .with_context(|| format!("reading B ({})", args.b.display()))?;
    let opts = CompareOptions {
        out_dir: out_dir.clone(),
        label_a: la.clone(),
        label_b: lb.clone(),
    };
    let result = compare(&a, &b, &opts)?;
    if args.json {
        let points: Vec<serde_json::Value> = result
            .points
            .iter()
            .map(|p| {
                serde_json::json!({
                    "random_input_len": p.setting.input_len,
                    "random_output_len": p.setting.output_len,
                    "random_range_ratio": p.setting.ratio,
                    "max_concurrency": p.concurrency,
                    "metrics": p.metrics.iter().map(|m| serde_json::json!({
                        "metric": m.metric, "unit": m.unit, "a": m.a, "b": m.b,
                        "ratio_b_over_a": m.ratio, "direction": m.direction.as_str(),
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        let accuracy: Vec<serde_json::Value> = result
            .accuracy
            .iter()
            .map(|c| {
                serde_json::json!({
                    "dataset": c.dataset, "paired_items": c.items, "score_a": c.score_a,
                    "score_b": c.score_b, "diff_points": c.diff,
                    "ci95_points": c.ci.map(|(lo, hi)| [lo, hi]), "test": c.test, "p_value": c.p,
                    "significant": c.significant(), "statement": c.statement(&la, &lb),
                })
            })
            .collect();
        let v = serde_json::json!({
            "label_a": la, "label_b": lb, "out_dir": out_dir.display().to_string(),
            "accuracy": accuracy, "points": points,
            "files": result.files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>(),
            "notes": result.notes,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    for note in &result.notes {
        eprintln!("note: {note}");
    }
    print!("{}", result.text);
    println!(
        "\nwritten to {}: compare.csv, compare.md, compare.html",
        out_dir.display()
    );
    Ok(())
}
