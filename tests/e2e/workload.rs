//! The workload as sglang.bench_serving 0.5.9 draws it, and its drop-in details, through the CLI: the same
//! `--seed` gives sglang's lengths and text (`--prompt-rule sglang`), ShareGPT and sglang's custom JSONL choose
//! sglang's conversations, `--header K=V …`, `API_KEY`, `max_completion_tokens`, `--range-rule vllm`.

use crate::common::*;
use assert_cmd::Command;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

fn fixture_case(pred: impl Fn(&Value) -> bool) -> Value {
    let p = root().join("tests/compat/fixtures/sglang_workload.json");
    let f: Value = serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
    f["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| pred(c))
        .expect("fixture case")
        .clone()
}

fn sha(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn sum(rows: &Value, key: &str) -> u64 {
    rows.as_array()
        .unwrap()
        .iter()
        .map(|r| r[key].as_u64().unwrap())
        .sum()
}

/// Per-request records ordered by request index.
fn details_by_index(path: &std::path::Path) -> Vec<Value> {
    let mut d = read_lines(path);
    d.sort_by_key(|r| r["index"].as_u64().unwrap());
    d
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prompt_rule_sglang_sends_sglangs_text_for_the_same_seed() {
    let case = fixture_case(|c| {
        c["dataset"] == "random"
            && c["tokenizer"] == "smollm2"
            && c["seed"] == 1
            && c["input_len"] == 1024
    });
    let sim = start_sim("fast", |_| {}).await;
    let dir = tempdir();
    let out = dir.path().join("r.json");
    let sharegpt = root().join("tests/fixtures/sharegpt/sharegpt_small.json");
    let args = bench_args(&[
        "--backend",
        "sglang-oai",
        "--base-url",
        &sim.base_url(),
        "--dataset-name",
        "random",
        "--dataset-path",
        sharegpt.to_str().unwrap(),
        "--prompt-rule",
        "sglang",
        "--random-input-len",
        "1024",
        "--random-output-len",
        "128",
        "--random-range-ratio",
        "0.25",
        "--num-prompts",
        "12",
        "--seed",
        "1",
        "--output-file",
        out.to_str().unwrap(),
        "--output-details",
        "--disable-tqdm",
    ]);
    let r = run_bench(args).await;
    let rows = &case["rows"];
    assert_eq!(r["completed"], 12);
    assert_eq!(r["prompt_token_method"], "requested");
    assert_eq!(r["total_input_tokens"], sum(rows, "prompt_len"));
    assert_eq!(r["total_output_tokens"], sum(rows, "output_len"));
    let details = details_by_index(&dir.path().join("r.details.jsonl"));
    for (d, row) in details.iter().zip(rows.as_array().unwrap()) {
        assert_eq!(sha(d["prompt"].as_str().unwrap()), row["prompt_sha256"]);
        assert_eq!(d["output_tokens"], row["output_len"]);
    }
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sharegpt_and_sglang_custom_choose_sglangs_conversations() {
    let sim = start_sim("fast", |_| {}).await;
    let dir = tempdir();
    for (dataset, path, n, extra) in [
        (
            "sharegpt",
            "tests/fixtures/sharegpt/sharegpt_small.json",
            30,
            vec![],
        ),
        (
            "custom",
            "tests/compat/fixtures/custom_conversations.jsonl",
            10,
            vec![
                "--sharegpt-output-len",
                "32",
                "--sharegpt-context-len",
                "600",
            ],
        ),
    ] {
        let case = fixture_case(|c| {
            c["dataset"] == dataset
                && c["tokenizer"] == "smollm2"
                && c["seed"] == 42
                && c["num_prompts"] == n
        });
        let out = dir.path().join(format!("{dataset}.json"));
        let (path, n) = (root().join(path), n.to_string());
        let mut a = vec![
            "--backend",
            "sglang",
            "--base-url",
            &sim.base_url().to_string(),
            "--dataset-name",
            dataset,
            "--dataset-path",
            path.to_str().unwrap(),
            "--num-prompts",
            &n,
            "--seed",
            "42",
            "--output-file",
            out.to_str().unwrap(),
            "--output-details",
            "--disable-tqdm",
        ]
        .into_iter()
        .map(str::to_string)
        .collect::<Vec<_>>();
        a.extend(extra.iter().map(|s| s.to_string()));
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        let r = run_bench(bench_args(&a)).await;
        let rows = &case["rows"];
        assert_eq!(
            r["total_input_tokens"],
            sum(rows, "prompt_len"),
            "{dataset}"
        );
        assert_eq!(
            r["total_output_tokens"],
            sum(rows, "output_len"),
            "{dataset}"
        );
        let details = details_by_index(&dir.path().join(format!("{dataset}.details.jsonl")));
        for (d, row) in details.iter().zip(rows.as_array().unwrap()) {
            assert_eq!(
                sha(d["prompt"].as_str().unwrap()),
                row["prompt_sha256"],
                "{dataset}"
            );
        }
    }
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vllm_range_rule_draws_around_the_length() {
    let sim = start_sim("fast", |_| {}).await;
    let dir = tempdir();
    let out = dir.path().join("r.json");
    let args = bench_args(&[
        "--backend",
        "sglang",
        "--base-url",
        &sim.base_url(),
        "--dataset-name",
        "random",
        "--random-input-len",
        "100",
        "--random-output-len",
        "10",
        "--random-range-ratio",
        "0.5",
        "--range-rule",
        "vllm",
        "--num-prompts",
        "40",
        "--output-file",
        out.to_str().unwrap(),
        "--output-details",
        "--disable-tqdm",
    ]);
    run_bench(args).await;
    let details = read_lines(&dir.path().join("r.details.jsonl"));
    let ins: Vec<u64> = details
        .iter()
        .map(|d| d["prompt_tokens"].as_u64().unwrap())
        .collect();
    let outs: Vec<u64> = details
        .iter()
        .map(|d| d["output_tokens"].as_u64().unwrap())
        .collect();
    // vLLM: [floor(100 * 0.5), ceil(100 * 1.5)] and [5, 15]; sglang's rule would never exceed 100 / 10.
    assert!(ins.iter().all(|&l| (50..=150).contains(&l)), "{ins:?}");
    assert!(outs.iter().all(|&l| (5..=15).contains(&l)), "{outs:?}");
    assert!(ins.iter().any(|&l| l > 100) && outs.iter().any(|&l| l > 10));
    sim.shutdown().await;
}

/// What a capture server saw: each POST's head (lower-case header names) and JSON body.
type Seen = Arc<Mutex<Vec<(Vec<(String, String)>, Value)>>>;

/// A loopback server that records POSTs and answers each with a one-token chat completion (no stream);
/// other requests get 404. Runs until the test process ends.
fn capture_server() -> (u16, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen: Seen = Arc::default();
    let seen2 = seen.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { return };
            let seen = seen2.clone();
            std::thread::spawn(move || serve_connection(conn, seen));
        }
    });
    (port, seen)
}

fn serve_connection(conn: std::net::TcpStream, seen: Seen) {
    let mut w = conn.try_clone().unwrap();
    let mut r = BufReader::new(conn);
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let post = line.starts_with("POST");
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            if r.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
            }
        }
        let len: usize = headers
            .iter()
            .find(|(k, _)| k == "content-length")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; len];
        if r.read_exact(&mut body).is_err() {
            return;
        }
        let reply = if post {
            let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            seen.lock().unwrap().push((headers, v));
            r#"{"id":"x","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"length"}],"usage":{"prompt_tokens":5,"completion_tokens":1}}"#
        } else {
            ""
        };
        let status = if post { "200 OK" } else { "404 Not Found" };
        let head = format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            reply.len()
        );
        if w.write_all(head.as_bytes()).is_err() || w.write_all(reply.as_bytes()).is_err() {
            return;
        }
    }
}

fn header<'a>(h: &'a [(String, String)], k: &str) -> Option<&'a str> {
    h.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
}

/// Runs the binary against the capture server with a clean key environment plus `env`.
fn bench_binary(port: u16, dir: &std::path::Path, env: &[(&str, &str)], extra: &[&str]) {
    let port = port.to_string();
    let out = dir.join(format!("r{}.json", extra.len()));
    let mut cmd = Command::cargo_bin("servebench").unwrap();
    cmd.env_remove("OPENAI_API_KEY").env_remove("API_KEY");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.args([
        "bench",
        "--backend",
        "vllm-chat",
        "--host",
        "127.0.0.1",
        "--port",
        &port,
        "--model",
        "m",
        "--dataset-name",
        "random",
        "--random-input-len",
        "16",
        "--random-output-len",
        "4",
        "--random-range-ratio",
        "1",
        "--num-prompts",
        "2",
        "--warmup-requests",
        "0",
        "--disable-stream",
        "--disable-tqdm",
        "--output-file",
    ])
    .arg(&out)
    .args(extra)
    .assert()
    .success();
}

#[test]
fn headers_api_key_and_max_completion_tokens_as_sglang_sends_them() {
    let (port, seen) = capture_server();
    let dir = tempdir();
    // $API_KEY is sent as the whole Authorization value; `--header K=V K=V` as sglang takes it.
    bench_binary(
        port,
        dir.path(),
        &[("API_KEY", "tok-123")],
        &["--header", "X-A=1", "X-B=two=2"],
    );
    {
        let s = seen.lock().unwrap();
        assert_eq!(s.len(), 2);
        for (h, body) in s.iter() {
            assert_eq!(header(h, "authorization"), Some("tok-123"));
            assert_eq!(header(h, "x-a"), Some("1"));
            assert_eq!(header(h, "x-b"), Some("two=2"));
            // sglang's chat backends: max_completion_tokens, no max_tokens.
            assert_eq!(body["max_completion_tokens"], 4);
            assert!(body.get("max_tokens").is_none(), "{body}");
        }
    }
    seen.lock().unwrap().clear();
    // $OPENAI_API_KEY goes before $API_KEY, as a Bearer token; --api-key before both.
    bench_binary(
        port,
        dir.path(),
        &[("API_KEY", "tok-123"), ("OPENAI_API_KEY", "sk-env")],
        &[],
    );
    bench_binary(
        port,
        dir.path(),
        &[("API_KEY", "tok-123"), ("OPENAI_API_KEY", "sk-env")],
        &["--api-key", "sk-flag"],
    );
    let s = seen.lock().unwrap();
    let auth: Vec<&str> = s
        .iter()
        .map(|(h, _)| header(h, "authorization").unwrap())
        .collect();
    assert_eq!(
        auth,
        [
            "Bearer sk-env",
            "Bearer sk-env",
            "Bearer sk-flag",
            "Bearer sk-flag"
        ]
    );
}
