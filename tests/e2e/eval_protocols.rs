//! `servebench eval` protocols end to end: the reference protocols (evalscope GPQA 0.x/1.x, qwen2.5-math), the
//! field-report preset, and errored samples (failed or empty completions) counted as wrong.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use clap::Parser;
use serde_json::Value;
use servebench::cli::eval::{execute, Args, EvalOutcome};
use servebench::cli::{Cli, Command};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

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

fn gpqa_csv() -> PathBuf {
    root().join("tests/fixtures/eval/gpqa_synthetic.csv")
}

async fn gpqa_run(protocol: &str, out: &std::path::Path) -> EvalOutcome {
    let path_flag = format!("gpqa_diamond={}", gpqa_csv().display());
    run_eval(&[
        "--sim",
        "--sim-accuracy",
        "1.0",
        "--datasets",
        "gpqa_diamond",
        "--dataset-path",
        &path_flag,
        "--gpqa-protocol",
        protocol,
        "--max-tokens",
        "256",
        "--output-dir",
        out.to_str().unwrap(),
        "--json",
    ])
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gpqa_reference_protocols_have_their_prompts_orders_and_names() {
    let out = tempdir();
    let v0 = gpqa_run("evalscope-0", &out.path().join("v0")).await;
    let v1 = gpqa_run("evalscope-1", &out.path().join("v1")).await;
    for (r, name) in [(&v0, "evalscope-0"), (&v1, "evalscope-1")] {
        let rep = &r.reports[0];
        assert_eq!(rep.protocol, name);
        assert_eq!((rep.num, rep.score), (40, Some(1.0)), "{name}");
        let t = servebench::eval::report::table(&r.reports);
        assert!(t.contains(name), "{t}");
    }
    let rows0 = read_lines(&out.path().join("v0/gpqa_diamond_predictions.jsonl"));
    let rows1 = read_lines(&out.path().join("v1/gpqa_diamond_predictions.jsonl"));
    assert!(rows0.iter().all(|r| r["protocol"] == "evalscope-0"));
    let first = |rows: &[Value]| -> String {
        let r = rows
            .iter()
            .find(|r| r["id"] == "syn001")
            .expect("row syn001");
        r["prompt"].as_str().unwrap().to_string()
    };
    let (p0, p1) = (first(&rows0), first(&rows1));
    assert!(
        p0.starts_with("What is the correct answer to this question:(Synthetic item 1,"),
        "{p0}"
    );
    assert!(
        p1.starts_with(
            "Answer the following multiple choice question. The last line of your response"
        ),
        "{p1}"
    );
    // evalscope 0.x: row k of the file gets the k-th shuffle after random.seed(42); the first row's order is
    // Python's first shuffle, [incorrect 3, incorrect 2, correct, incorrect 1], so its gold is C.
    let by_id = |rows: &[Value]| -> HashMap<String, String> {
        rows.iter()
            .map(|r| {
                (
                    r["id"].as_str().unwrap().into(),
                    r["gold"].as_str().unwrap().into(),
                )
            })
            .collect()
    };
    let (g0, g1) = (by_id(&rows0), by_id(&rows1));
    assert_eq!(g0["syn001"], "C");
    assert!(p0.contains("\n(C) Property 1-true\n"), "{p0}");
    // The two versions order options differently (about 3 in 4 golds differ by chance; far from all equal).
    let same = g0.iter().filter(|(k, v)| g1[*k] == **v).count();
    assert!(same < 30, "{same} of 40 golds equal");
    let settings: Value = serde_json::from_str(
        &std::fs::read_to_string(out.path().join("v1/gpqa_diamond_settings.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(settings["protocol"], "evalscope-1");
    assert_eq!(settings["gpqa_shuffle"], "evalscope-1");
    assert_eq!(settings["prompt_template"], "gpqa-evalscope-1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn field_report_preset_sends_its_settings_and_prints_the_reports_numbers() {
    let out = tempdir();
    let r = run_eval(&[
        "--sim",
        "--datasets",
        "aime24",
        "--data-dir",
        root().join("data").to_str().unwrap(),
        "--protocol",
        "field-report",
        "--sim-accuracy",
        "1.0",
        "--output-dir",
        out.path().to_str().unwrap(),
        "--json",
    ])
    .await;
    let rep = &r.reports[0];
    assert_eq!(rep.protocol, "qwen2.5-math");
    assert_eq!(rep.field_report_score, Some(0.833));
    assert_eq!(rep.settings["run"]["max_tokens"], 20480);
    assert_eq!(rep.settings["run"]["temperature"], 0.0);
    assert_eq!(rep.settings["run"]["grader_mode"], "qwen");
    let t = servebench::eval::report::table(&r.reports);
    assert!(t.contains("Report") && t.contains("0.8330"), "{t}");
}

/// A scripted OpenAI-compatible server that answers AIME 2024 questions with the gold in `\boxed{}` — except
/// that questions whose index is in `empty` get an empty completion and those in `fail` an HTTP 500.
struct Scripted {
    url: String,
    requests: Arc<AtomicUsize>,
}

async fn scripted(empty: Vec<usize>, fail: Vec<usize>) -> Scripted {
    let text = std::fs::read_to_string(root().join("data/aime24/test.jsonl")).unwrap();
    let key: Vec<(String, String)> = text
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (
                v["problem"].as_str().unwrap().trim().to_string(),
                v["answer"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let requests = Arc::new(AtomicUsize::new(0));
    let (key, empty, fail) = (Arc::new(key), Arc::new(empty), Arc::new(fail));
    let count = requests.clone();
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            let (key, empty, fail, count) =
                (key.clone(), empty.clone(), fail.clone(), count.clone());
            tokio::spawn(async move {
                let _ = serve(sock, &key, &empty, &fail, &count).await;
            });
        }
    });
    Scripted { url, requests }
}

/// One request per connection (answered with `Connection: close`).
async fn serve(
    mut sock: TcpStream,
    key: &[(String, String)],
    empty: &[usize],
    fail: &[usize],
    count: &AtomicUsize,
) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let body = loop {
        let n = sock.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        if buf.len() >= end + 4 + len {
            break buf[end + 4..end + 4 + len].to_vec();
        }
    };
    let req: Value = serde_json::from_slice(&body).unwrap_or_default();
    if req.get("messages").is_some() {
        count.fetch_add(1, Ordering::SeqCst);
    }
    let prompt = req["messages"][0]["content"].as_str().unwrap_or("");
    let idx = key.iter().position(|(q, _)| prompt.contains(q.as_str()));
    let stream = req["stream"] == true;
    let reply = match idx {
        Some(i) if fail.contains(&i) => {
            let b = r#"{"error":{"message":"scripted failure"}}"#;
            format!(
                "HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{b}",
                b.len()
            )
        }
        _ => {
            let content = match idx {
                Some(i) if !empty.contains(&i) => format!("So \\boxed{{{}}}.", key[i].1),
                _ => String::new(),
            };
            if stream {
                let mut events = String::new();
                if !content.is_empty() {
                    let c = serde_json::json!({"choices": [{"index": 0, "delta": {"content": content}, "finish_reason": null}]});
                    events.push_str(&format!("data: {c}\n\n"));
                }
                let end = serde_json::json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]});
                events.push_str(&format!("data: {end}\n\ndata: [DONE]\n\n"));
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{events}",
                    events.len()
                )
            } else {
                let b = serde_json::json!({"choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}]}).to_string();
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{b}",
                    b.len()
                )
            }
        }
    };
    sock.write_all(reply.as_bytes()).await?;
    sock.shutdown().await
}

async fn aime_against(url: &str, out: &std::path::Path, extra: &[&str]) -> EvalOutcome {
    let data = root().join("data");
    let mut argv = vec![
        "--base-url",
        url,
        "--model",
        "scripted",
        "--datasets",
        "aime24",
        "--data-dir",
        data.to_str().unwrap(),
        "--retries",
        "1",
        "--retry-backoff",
        "0",
        "--output-dir",
        out.to_str().unwrap(),
        "--json",
    ];
    argv.extend_from_slice(extra);
    run_eval(&argv).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_and_empty_completions_score_lower_never_higher() {
    let out = tempdir();
    let healthy = scripted(vec![], vec![]).await;
    let ok = aime_against(&healthy.url, &out.path().join("healthy"), &[]).await;
    assert_eq!((ok.reports[0].num, ok.reports[0].score), (30, Some(1.0)));
    assert!(ok.reports[0].errored_items.is_empty());

    // 4 questions come back empty (streamed: re-sent once, then recorded), 2 fail with HTTP 500.
    let broken = scripted(vec![0, 5, 10, 15], vec![3, 20]).await;
    let bad = aime_against(&broken.url, &out.path().join("broken"), &[]).await;
    let rep = &bad.reports[0];
    assert_eq!(rep.num, 30, "errored items stay in the denominator");
    assert!(
        (rep.score.unwrap() - 24.0 / 30.0).abs() < 1e-12,
        "{:?}",
        rep.score
    );
    assert!(rep.score < ok.reports[0].score);
    assert_eq!(rep.errors, 6);
    let mut reasons: Vec<&str> = rep
        .errored_items
        .iter()
        .map(|e| e.reason.as_str())
        .collect();
    reasons.sort_unstable();
    assert_eq!(
        reasons
            .iter()
            .filter(|r| r.contains("without any generated text"))
            .count(),
        4,
        "{reasons:?}"
    );
    assert_eq!(
        reasons.iter().filter(|r| r.contains("HTTP 500")).count(),
        2,
        "{reasons:?}"
    );
    // Every errored sample was re-sent once (--retries 1) and the row says so.
    let rows = read_lines(&out.path().join("broken/aime24_predictions.jsonl"));
    assert!(rows
        .iter()
        .filter(|r| !r["error"].is_null())
        .all(|r| r["attempts"] == 2));
    assert!(rows
        .iter()
        .filter(|r| r["error"].is_null())
        .all(|r| r["attempts"] == 1));
    assert_eq!(broken.requests.load(Ordering::SeqCst), 30 + 6);

    // A non-streamed empty completion is not an error of the client, but it is errored for the score.
    let ns = aime_against(
        &broken.url,
        &out.path().join("nostream"),
        &["--disable-stream"],
    )
    .await;
    let rep = &ns.reports[0];
    assert!((rep.score.unwrap() - 24.0 / 30.0).abs() < 1e-12);
    assert_eq!(
        rep.errored_items
            .iter()
            .filter(|e| e.reason == "empty completion")
            .count(),
        4
    );

    // Excluding them is explicit, and the table says so.
    let ex = aime_against(
        &broken.url,
        &out.path().join("excluded"),
        &["--exclude-errors"],
    )
    .await;
    let rep = &ex.reports[0];
    assert_eq!(
        (rep.num, rep.score, rep.errors_excluded),
        (24, Some(1.0), true)
    );
    let t = servebench::eval::report::table(&ex.reports);
    assert!(t.contains("accuracy (errors excluded)"), "{t}");
}
