//! `servebench eval` against the simulator in answer-key mode (in process, 127.0.0.1:0).

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use clap::Parser;
use serde_json::Value;
use servebench::cli::eval::{execute, Args, EvalOutcome};
use servebench::cli::{Cli, Command};
use servebench::sim::{ReasoningMode, SimConfig, SimServer};

use crate::common::{read_lines, root, tempdir};

fn eval_args(args: &[&str]) -> Args {
    let mut argv = vec!["servebench", "eval"];
    argv.extend_from_slice(args);
    match Cli::try_parse_from(argv).expect("valid eval flags").command {
        Command::Eval(a) => *a,
        _ => unreachable!(),
    }
}

async fn run_eval(args: &[&str]) -> EvalOutcome {
    let (_tx, rx) = tokio::sync::watch::channel(false);
    execute(eval_args(args), rx).await.expect("eval runs")
}

fn data(rel: &str) -> PathBuf {
    root().join(rel)
}

/// The answer-key simulator (fast preset) on the given files.
async fn sim(files: &[PathBuf], f: impl FnOnce(&mut SimConfig)) -> SimServer {
    let mut cfg = SimConfig::preset("fast").expect("preset");
    cfg.answer_key_files = files.to_vec();
    f(&mut cfg);
    SimServer::start(cfg, "127.0.0.1:0".parse().unwrap())
        .await
        .expect("simulator starts")
}

fn keys(rows: &[Value]) -> Vec<(String, u64)> {
    rows.iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap().to_string(),
                r["sample"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn assert_unique(rows: &[Value]) {
    let k = keys(rows);
    let set: HashSet<_> = k.iter().collect();
    assert_eq!(set.len(), k.len(), "duplicate (id, sample) rows");
}

const FIELDS: [&str; 17] = [
    "dataset",
    "id",
    "sample",
    "prompt",
    "response",
    "reasoning",
    "extracted",
    "gold",
    "correct",
    "rule",
    "finish_reason",
    "prompt_tokens",
    "completion_tokens",
    "latency_ms",
    "error",
    "protocol",
    "attempts",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn math500_subset_at_full_accuracy_scores_one() {
    let s = sim(&[data("data/math500/test.jsonl")], |c| c.accuracy = 1.0).await;
    let out = tempdir();
    let o = out.path().to_str().unwrap();
    let r = run_eval(&[
        "--base-url",
        &s.base_url(),
        "--datasets",
        "math500",
        "--data-dir",
        data("data").to_str().unwrap(),
        "--limit",
        "50",
        "--concurrency",
        "64",
        "--output-dir",
        o,
        "--json",
    ])
    .await;
    let rep = &r.reports[0];
    assert_eq!(
        (rep.dataset.as_str(), rep.metric.as_str(), rep.num, rep.n),
        ("math500", "accuracy", 50, 1)
    );
    assert_eq!(rep.score, Some(1.0));
    assert_eq!(rep.stderr, Some(0.0));
    assert!(rep.simulated, "the simulator says so in /get_server_info");
    assert!(rep.wrong_items.is_empty());
    assert_eq!(rep.model, "servebench-sim");
    let rows = read_lines(&out.path().join("math500_predictions.jsonl"));
    assert_eq!(rows.len(), 50);
    assert_unique(&rows);
    let keys: Vec<&str> = rows[0]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, FIELDS);
    assert!(rows
        .iter()
        .all(|r| r["correct"] == true && r["error"].is_null()));
    assert!(rows[0]["prompt"].as_str().unwrap().starts_with("User: "));
    assert!(rows[0]["prompt"]
        .as_str()
        .unwrap()
        .ends_with("within \\boxed{}.\n\nAssistant:"));
    assert!(rows
        .iter()
        .all(|r| r["completion_tokens"].as_u64().unwrap() > 0));
    let file: Value =
        serde_json::from_str(&std::fs::read_to_string(&r.report_files[0]).unwrap()).unwrap();
    assert_eq!(file["score"], 1.0);
    assert_eq!(file["simulated"], true);
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn math500_at_90_percent_lists_every_wrong_item() {
    let s = sim(&[data("data/math500/test.jsonl")], |c| {
        c.accuracy = 0.9;
        c.seed = 3;
    })
    .await;
    let out = tempdir();
    let r = run_eval(&[
        "--base-url",
        &s.base_url(),
        "--datasets",
        "math500",
        "--data-dir",
        data("data").to_str().unwrap(),
        "--concurrency",
        "128",
        "--protocol",
        "servebench",
        "--output-dir",
        out.path().to_str().unwrap(),
        "--json",
    ])
    .await;
    let rep = &r.reports[0];
    assert_eq!(rep.num, 500);
    let score = rep.score.unwrap();
    // Binomial sampling noise: sd = sqrt(0.9 * 0.1 / 500) = 0.0134; allow 4 sd.
    assert!((score - 0.9).abs() < 0.054, "score {score}");
    // Standard error with ddof 1, as evalscope and lm-eval: √(p(1−p)/(N−1)).
    let se = rep.stderr.unwrap();
    assert!((se - (score * (1.0 - score) / 499.0).sqrt()).abs() < 1e-12);
    assert_eq!(rep.protocol, "servebench");
    let rows = read_lines(&out.path().join("math500_predictions.jsonl"));
    assert_eq!(rows.len(), 500);
    // The grader agrees with the simulator on every item: correct exactly when the gold was boxed.
    for row in &rows {
        let gold = row["gold"].as_str().unwrap();
        let gave_gold = row["response"]
            .as_str()
            .unwrap()
            .contains(&format!("\\boxed{{{gold}}}."));
        assert_eq!(row["correct"].as_bool().unwrap(), gave_gold, "{row}");
    }
    let wrong: HashSet<&str> = rows
        .iter()
        .filter(|r| r["correct"] == false)
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    let listed: HashSet<&str> = rep.wrong_items.iter().map(|w| w.id.as_str()).collect();
    assert_eq!(wrong, listed, "every wrong item is listed in the report");
    assert!((score - (500 - wrong.len()) as f64 / 500.0).abs() < 1e-12);
    assert!(
        rep.no_answer > 0 && rep.no_answer < wrong.len(),
        "some misses have no boxed answer"
    );
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readme_demo_runs_the_simulator_in_process() {
    let out = tempdir();
    let r = run_eval(&[
        "--sim",
        "--datasets",
        "math500",
        "--data-dir",
        data("data").to_str().unwrap(),
        "--limit",
        "40",
        "--concurrency",
        "64",
        "--sim-accuracy",
        "0.5",
        "--output-dir",
        out.path().to_str().unwrap(),
        "--json",
    ])
    .await;
    let rep = &r.reports[0];
    assert!(rep.simulated);
    assert_eq!(rep.num, 40);
    let score = rep.score.unwrap();
    assert!(score > 0.2 && score < 0.8, "{score}");
    assert_eq!(rep.wrong_items.len(), 40 - (score * 40.0).round() as usize);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gpqa_synthetic_set_with_seeded_and_no_shuffle() {
    let out = tempdir();
    let csv = data("tests/fixtures/eval/gpqa_synthetic.csv");
    let path_flag = format!("gpqa_diamond={}", csv.display());
    let o = out.path().join("seeded");
    let r = run_eval(&[
        "--gpqa-protocol",
        "servebench",
        "--sim",
        "--sim-accuracy",
        "1.0",
        "--datasets",
        "gpqa_diamond",
        "--dataset-path",
        &path_flag,
        "--output-dir",
        o.to_str().unwrap(),
        "--json",
    ])
    .await;
    assert_eq!(r.reports[0].num, 40);
    assert_eq!(r.reports[0].score, Some(1.0));
    let rows = read_lines(&o.join("gpqa_diamond_predictions.jsonl"));
    let golds: HashSet<&str> = rows.iter().map(|r| r["gold"].as_str().unwrap()).collect();
    assert!(
        golds.len() >= 3,
        "seeded shuffle spreads the correct letter: {golds:?}"
    );
    let p = rows[0]["prompt"].as_str().unwrap();
    assert!(
        p.starts_with("What is the correct answer to this question:(Synthetic item "),
        "{p}"
    );
    assert!(
        p.contains("\nChoices:\n(A) ")
            && p.ends_with(
                "\n\nPlease reason step by step, and put your final answer within \\boxed{}."
            )
    );
    assert!(rows.iter().all(|r| r["extracted"] == r["gold"]));
    // The same questions get the same letters on a second run (deterministic shuffle).
    let o2 = out.path().join("again");
    run_eval(&[
        "--gpqa-protocol",
        "servebench",
        "--sim",
        "--sim-accuracy",
        "1.0",
        "--datasets",
        "gpqa_diamond",
        "--dataset-path",
        &path_flag,
        "--output-dir",
        o2.to_str().unwrap(),
        "--json",
    ])
    .await;
    let again = read_lines(&o2.join("gpqa_diamond_predictions.jsonl"));
    let by_id = |rows: &[Value]| -> std::collections::BTreeMap<String, String> {
        rows.iter()
            .map(|r| {
                (
                    r["id"].as_str().unwrap().to_string(),
                    r["gold"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    assert_eq!(by_id(&rows), by_id(&again));
    // --gpqa-shuffle none: always (A); a wrong simulator answer (next letter) is graded wrong.
    let o3 = out.path().join("none");
    let r = run_eval(&[
        "--gpqa-protocol",
        "servebench",
        "--sim",
        "--sim-accuracy",
        "0.5",
        "--datasets",
        "gpqa_diamond",
        "--dataset-path",
        &path_flag,
        "--gpqa-shuffle",
        "none",
        "--output-dir",
        o3.to_str().unwrap(),
        "--json",
    ])
    .await;
    let rows = read_lines(&o3.join("gpqa_diamond_predictions.jsonl"));
    assert!(rows.iter().all(|r| r["gold"] == "A"));
    let correct = rows.iter().filter(|r| r["correct"] == true).count();
    assert!(correct > 5 && correct < 35, "{correct}");
    assert_eq!(r.reports[0].wrong_items.len(), 40 - correct);
    assert!(r.reports[0]
        .wrong_items
        .iter()
        .all(|w| w.extracted.as_deref() != Some("A")));
}

async fn reasoning_run(mode: ReasoningMode, out: &Path) -> Vec<Value> {
    let s = sim(&[data("data/aime24/test.jsonl")], |c| {
        c.accuracy = 1.0;
        c.reasoning = mode;
    })
    .await;
    let r = run_eval(&[
        "--base-url",
        &s.base_url(),
        "--datasets",
        "aime24",
        "--data-dir",
        data("data").to_str().unwrap(),
        "--output-dir",
        out.to_str().unwrap(),
        "--json",
    ])
    .await;
    assert_eq!(r.reports[0].num, 30);
    assert_eq!(r.reports[0].score, Some(1.0), "{mode:?}");
    s.shutdown().await;
    read_lines(&out.join("aime24_predictions.jsonl"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reasoning_inline_field_and_none() {
    let out = tempdir();
    let inline = reasoning_run(ReasoningMode::Inline, &out.path().join("inline")).await;
    for r in &inline {
        assert!(r["response"].as_str().unwrap().starts_with("<think>"));
        assert!(r["reasoning"].as_str().unwrap().starts_with("Let me think"));
    }
    // AIME golds keep their leading zeros ("025") and the answer is graded as the number.
    assert!(inline
        .iter()
        .any(|r| r["gold"] == "025" && r["correct"] == true));
    let field = reasoning_run(ReasoningMode::Field, &out.path().join("field")).await;
    for r in &field {
        assert!(!r["response"].as_str().unwrap().contains("<think>"));
        assert!(
            r["reasoning"].as_str().unwrap().starts_with("Let me think"),
            "{r}"
        );
    }
    let none = reasoning_run(ReasoningMode::None, &out.path().join("none")).await;
    assert!(none.iter().all(|r| r["reasoning"].is_null()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_run_resumes_without_duplicates() {
    // Long scripted reasoning and low concurrency: the run takes long enough to be killed midway.
    let s = sim(&[data("data/math500/test.jsonl")], |c| {
        c.accuracy = 0.8;
        c.reasoning_tokens = 400;
    })
    .await;
    let out = tempdir();
    let base = s.base_url();
    let data_dir = data("data");
    let argv: Vec<String> = [
        "--base-url",
        &base,
        "--datasets",
        "math500",
        "--data-dir",
        data_dir.to_str().unwrap(),
        "--limit",
        "40",
        "--concurrency",
        "4",
        "--output-dir",
        out.path().to_str().unwrap(),
        "--json",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let preds = out.path().join("math500_predictions.jsonl");
    let first = {
        let argv = argv.clone();
        tokio::spawn(async move {
            let refs: Vec<&str> = argv.iter().map(String::as_str).collect();
            run_eval(&refs).await
        })
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let n = std::fs::read_to_string(&preds)
            .map(|t| t.lines().count())
            .unwrap_or(0);
        if n >= 6 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no progress");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    first.abort();
    let _ = first.await;
    let partial = read_lines(&preds);
    assert!(
        partial.len() >= 6 && partial.len() < 40,
        "killed midway: {} rows",
        partial.len()
    );
    // A kill during a write leaves half a line.
    {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&preds)
            .unwrap();
        f.write_all(br#"{"dataset":"math500","id":"test/pre"#)
            .unwrap();
    }
    let refs: Vec<&str> = argv.iter().map(String::as_str).collect();
    let r = run_eval(&refs).await;
    let rows = read_lines(&preds);
    assert_eq!(rows.len(), 40);
    assert_unique(&rows);
    // Finished samples were kept, not redone.
    for (a, b) in partial.iter().zip(&rows) {
        assert_eq!(a, b);
    }
    let rep = &r.reports[0];
    assert_eq!((rep.num, rep.pending), (40, 0));
    let correct = rows.iter().filter(|r| r["correct"] == true).count();
    assert!((rep.score.unwrap() - correct as f64 / 40.0).abs() < 1e-12);
    // Other settings on the same files are refused.
    let mut hot = argv.clone();
    hot.extend(["--temperature".to_string(), "0.7".to_string()]);
    let (_tx, rx) = tokio::sync::watch::channel(false);
    let refs: Vec<&str> = hot.iter().map(String::as_str).collect();
    let e = execute(eval_args(&refs), rx)
        .await
        .expect_err("refused")
        .to_string();
    assert!(
        e.contains("different settings") && e.contains("temperature"),
        "{e}"
    );
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_errors_are_retried_then_counted_wrong() {
    let s = sim(&[data("data/aime24/test.jsonl")], |c| {
        c.accuracy = 1.0;
        c.faults.fail_rate = 0.5;
    })
    .await;
    let out = tempdir();
    let (base, data_dir) = (s.base_url(), data("data"));
    let argv = [
        "--base-url",
        &base,
        "--datasets",
        "aime24",
        "--data-dir",
        data_dir.to_str().unwrap(),
        "--retries",
        "1",
        "--retry-backoff",
        "0",
        "--output-dir",
        out.path().to_str().unwrap(),
        "--json",
    ];
    let r = run_eval(&argv).await;
    let rep = &r.reports[0];
    assert!(r.retries > 0, "failed requests were re-sent");
    // P(a question fails twice) = 0.25: some do, with 30 questions.
    assert!(rep.errors > 0, "some requests failed after their retry");
    assert_eq!(rep.errored_items.len(), rep.errors);
    assert_eq!(rep.num, 30);
    assert_eq!(
        rep.score,
        Some((30 - rep.errors) as f64 / 30.0),
        "errors are counted wrong, not excluded"
    );
    let rows = read_lines(&out.path().join("aime24_predictions.jsonl"));
    let errs: Vec<&Value> = rows.iter().filter(|r| !r["error"].is_null()).collect();
    assert_eq!(errs.len(), rep.errors);
    assert!(errs
        .iter()
        .all(|r| r["error"].as_str().unwrap().contains("HTTP 500") && r["correct"] == false));
    // A rerun retries the failed samples only; the file never holds an (id, sample) twice.
    let r2 = run_eval(&argv).await;
    let rows2 = read_lines(&out.path().join("aime24_predictions.jsonl"));
    assert_eq!(rows2.len(), 30);
    assert_unique(&rows2);
    let rep2 = &r2.reports[0];
    assert_eq!(rep2.num, 30);
    assert!(rep2.score >= rep.score, "retried items can only turn right");
    // Only the failed samples were sent again: the successful rows are unchanged.
    for ok in rows.iter().filter(|r| r["error"].is_null()) {
        assert!(rows2.contains(ok), "{ok}");
    }
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_samples_report_pass_at_k_and_majority() {
    let s = sim(&[data("data/aime24/test.jsonl")], |c| c.accuracy = 0.5).await;
    let out = tempdir();
    let r = run_eval(&[
        "--base-url",
        &s.base_url(),
        "--datasets",
        "aime24",
        "--data-dir",
        data("data").to_str().unwrap(),
        "--n",
        "4",
        "--temperature",
        "0.6",
        "--top-p",
        "0.95",
        "--seed",
        "11",
        "--concurrency",
        "64",
        "--output-dir",
        out.path().to_str().unwrap(),
        "--json",
    ])
    .await;
    let rep = &r.reports[0];
    assert_eq!((rep.metric.as_str(), rep.n, rep.num), ("avg@4", 4, 30));
    let keys: Vec<&str> = rep.pass_at_k.keys().map(String::as_str).collect();
    assert_eq!(keys, ["pass@1", "pass@2", "pass@4"]);
    assert!((rep.pass_at_k["pass@1"] - rep.score.unwrap()).abs() < 1e-12);
    assert!(
        rep.pass_at_k["pass@4"] >= rep.pass_at_k["pass@2"]
            && rep.pass_at_k["pass@2"] >= rep.score.unwrap()
    );
    assert!(rep.maj_at_n.is_some() && rep.spread.is_some());
    let rows = read_lines(&out.path().join("aime24_predictions.jsonl"));
    assert_eq!(rows.len(), 120);
    assert_unique(&rows);
    // Per-sample seeds make the simulator's draws differ between samples of a question.
    let mut by_item: std::collections::HashMap<&str, HashSet<bool>> = Default::default();
    for r in &rows {
        by_item
            .entry(r["id"].as_str().unwrap())
            .or_default()
            .insert(r["correct"].as_bool().unwrap());
    }
    let mixed = by_item.values().filter(|v| v.len() == 2).count();
    assert!(mixed > 5, "{mixed} items with both right and wrong samples");
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_data_offline_says_where_to_put_it() {
    let empty = tempdir();
    let (_tx, rx) = tokio::sync::watch::channel(false);
    let e = execute(
        eval_args(&[
            "--datasets",
            "gsm8k",
            "--data-dir",
            empty.path().to_str().unwrap(),
            "--base-url",
            "http://127.0.0.1:9",
        ]),
        rx,
    )
    .await
    .expect_err("no data")
    .to_string();
    assert!(e.contains("gsm8k: no data file found"), "{e}");
    assert!(
        e.contains(&format!("{}/gsm8k/test.jsonl", empty.path().display())),
        "{e}"
    );
}
