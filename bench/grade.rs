//! Grading speed and agreement on the 1,000 real MATH-500 answer pairs (tests/fixtures/grading/).
//!
//! Run: `cargo bench -p servebench-eval --bench grade` (release build, one thread). Prints a table: for servebench's
//! default rules and `--grader qwen`, the number of pairs judged equal, agreement with math-verify's verdicts
//! (tests/fixtures/grading/math_verify_verdicts.jsonl) and with the real Qwen2.5-Math's
//! (tests/fixtures/grading/qwen_verdicts_fixture_pairs.jsonl), and the median wall time of grading all pairs
//! (extraction included) over several runs; math-verify's own time comes from
//! tests/fixtures/grading/math_verify_timing.json, written by tests/compat/math_verify.sh on the machine that ran it.

use std::path::PathBuf;
use std::time::Instant;

use serde_json::Value;
use servebench_eval::grade::{grade_prediction, GradeOptions, GraderMode};

const RUNS: usize = 9;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/grading")
}

/// (gold, prediction) pairs, math-verify's verdict on each, and the real Qwen2.5-Math's (`math_equal` against a
/// once-stripped gold, tests/fixtures/grading/qwen_verdicts_fixture_pairs.jsonl).
type Fixtures = (Vec<(String, String)>, Vec<bool>, Vec<bool>);

fn load() -> Result<Fixtures, String> {
    let mut pairs = Vec::new();
    for name in ["math500_gpt_answers.json", "math500_qwen3_answers.json"] {
        let path = fixtures().join(name);
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let recs: Vec<Value> =
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        for r in recs {
            let gold = r["answer"].as_str().unwrap_or_default().to_string();
            let pred = r["prediction"].as_str().unwrap_or_default().to_string();
            pairs.push((gold, pred));
        }
    }
    let path = fixtures().join("math_verify_verdicts.jsonl");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mv: Vec<bool> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["file"] != "unit_pairs.jsonl")
        .map(|v| v["math_verify"].as_bool().unwrap_or(false))
        .collect();
    let path = fixtures().join("qwen_verdicts_fixture_pairs.jsonl");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let qwen: Vec<bool> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .map(|v| v["qwen_equal"].as_bool().unwrap_or(false))
        .collect();
    Ok((pairs, mv, qwen))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    v[v.len() / 2]
}

fn main() {
    let (pairs, mv, qwen) = match load() {
        Ok(x) => x,
        Err(e) => {
            eprintln!("cannot load the grading fixtures: {e}");
            std::process::exit(1);
        }
    };
    println!(
        "grading {} real MATH-500 answer pairs, {RUNS} runs each, one thread\n",
        pairs.len()
    );
    println!(
        "| grader | equal | agree with math-verify | disagree | agree with Qwen2.5-Math | median time (ms) | per pair (µs) |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for (name, mode) in [
        ("servebench", GraderMode::Servebench),
        ("servebench --grader qwen", GraderMode::Qwen),
    ] {
        let opts = GradeOptions {
            mode,
            ..GradeOptions::default()
        };
        // warm-up (also builds the Qwen mode's patterns once)
        let verdicts: Vec<bool> = pairs
            .iter()
            .map(|(g, p)| grade_prediction(p, g, &opts).1.equal)
            .collect();
        let mut times = Vec::with_capacity(RUNS);
        for _ in 0..RUNS {
            let t = Instant::now();
            let mut n = 0usize;
            for (g, p) in &pairs {
                n += usize::from(grade_prediction(p, g, &opts).1.equal);
            }
            times.push(t.elapsed().as_secs_f64());
            std::hint::black_box(n);
        }
        let equal = verdicts.iter().filter(|v| **v).count();
        let agree = verdicts.iter().zip(&mv).filter(|(a, b)| a == b).count();
        let agree_qwen = verdicts.iter().zip(&qwen).filter(|(a, b)| a == b).count();
        let med = median(times);
        println!(
            "| {name} | {equal} | {agree} | {} | {agree_qwen} | {:.1} | {:.1} |",
            pairs.len() - agree,
            med * 1e3,
            med * 1e6 / pairs.len() as f64
        );
    }
    let timing_path = fixtures().join("math_verify_timing.json");
    match std::fs::read_to_string(&timing_path)
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
    {
        Some(t) => {
            let secs = t["seconds_median"].as_f64().unwrap_or(f64::NAN);
            let equal = mv.iter().filter(|v| **v).count();
            println!(
                "| math-verify {} (Python {}, from {}) | {equal} | {} | 0 | | {:.1} | {:.1} |",
                t["version"].as_str().unwrap_or("?"),
                t["python"].as_str().unwrap_or("?"),
                timing_path
                    .file_name()
                    .and_then(|f| f.to_str())
                    .unwrap_or("timing file"),
                mv.len(),
                secs * 1e3,
                secs * 1e6 / mv.len().max(1) as f64
            );
        }
        None => {
            println!("| math-verify | (run tests/compat/math_verify.sh for its timing) | | | | | |")
        }
    }
}
