//! sglang.bench_serving 0.5.9's metric rules against a scripted server on 127.0.0.1 with known delays: ITL of
//! chunks carrying several tokens (native and `sglang-oai` with an accept length), reasoning output, and the
//! accept length read after the run (PD form).

use crate::common::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the scripted server sends.
#[derive(Clone)]
struct Script {
    /// Each POST is answered with these SSE `data:` payloads, one every `gap`, then `[DONE]`.
    events: Vec<String>,
    gap: Duration,
    /// `/get_server_info` before and after `posts_before_after` POSTs.
    info_before: serde_json::Value,
    info_after: serde_json::Value,
    posts_before_after: usize,
}

/// Starts the scripted server; returns its base URL.
async fn scripted(script: Script) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let posts = Arc::new(AtomicUsize::new(0));
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            let _ = sock.set_nodelay(true);
            tokio::spawn(serve(sock, script.clone(), posts.clone()));
        }
    });
    format!("http://{addr}")
}

/// One keep-alive connection: GETs answer JSON, POSTs the script.
async fn serve(mut sock: TcpStream, s: Script, posts: Arc<AtomicUsize>) {
    let mut buf = Vec::new();
    loop {
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let mut chunk = [0u8; 4096];
            match sock.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .map(|v| v.trim().parse().unwrap())
            .unwrap_or(0);
        while buf.len() < head_end + len {
            let mut chunk = [0u8; 4096];
            match sock.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        buf.drain(..head_end + len);
        if head.starts_with("post") {
            posts.fetch_add(1, Ordering::SeqCst);
            let mut out =
                b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
                    .to_vec();
            if sock.write_all(&out).await.is_err() {
                return;
            }
            for ev in s.events.iter().map(String::as_str).chain(["[DONE]"]) {
                tokio::time::sleep(s.gap).await;
                let payload = format!("data: {ev}\n\n");
                out = format!("{:x}\r\n{payload}\r\n", payload.len()).into_bytes();
                if sock.write_all(&out).await.is_err() {
                    return;
                }
            }
            if sock.write_all(b"0\r\n\r\n").await.is_err() {
                return;
            }
        } else {
            let body = if head.starts_with("get /get_server_info") {
                if posts.load(Ordering::SeqCst) >= s.posts_before_after {
                    s.info_after.clone()
                } else {
                    s.info_before.clone()
                }
            } else {
                serde_json::json!({"object": "list", "data": [{"id": "m"}]})
            }
            .to_string();
            let resp = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            if sock.write_all(resp.as_bytes()).await.is_err() {
                return;
            }
        }
    }
}

fn script(events: Vec<String>) -> Script {
    Script {
        events,
        gap: Duration::from_millis(100),
        info_before: serde_json::json!({}),
        info_after: serde_json::json!({}),
        posts_before_after: 0,
    }
}

async fn bench(backend: &str, url: &str, extra: &[&str]) -> serde_json::Value {
    let dir = tempdir();
    let out = dir.path().join("r.json");
    let mut a = vec![
        "--backend",
        backend,
        "--base-url",
        url,
        "--model",
        "m",
        "--dataset-name",
        "random",
        "--random-input-len",
        "16",
        "--random-output-len",
        "20",
        "--num-prompts",
        "2",
        "--output-file",
        out.to_str().unwrap(),
        "--disable-tqdm",
    ];
    a.extend_from_slice(extra);
    run_bench(bench_args(&a)).await
}

fn f(v: &serde_json::Value, k: &str) -> f64 {
    v[k].as_f64()
        .unwrap_or_else(|| panic!("{k} is not a number: {}", v[k]))
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-6 * a.abs().max(1.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_itl_is_split_over_the_tokens_of_each_chunk() {
    // 5 chunks of 4 tokens, 100 ms apart (SGLang's cumulative text and completion_tokens).
    let events = (1..=5)
        .map(|i| {
            serde_json::json!({"text": "word ".repeat(4 * i), "meta_info": {"prompt_tokens": 16,
                "completion_tokens": 4 * i, "finish_reason": if i == 5 { serde_json::json!({"type": "length"}) } else { serde_json::Value::Null }}})
            .to_string()
        })
        .collect();
    let url = scripted(script(events)).await;
    let r = bench("sglang", &url, &[]).await;
    assert_eq!(r["completed"], 2);
    assert_eq!(r["itl_rule"], "server_tokens");
    assert_eq!(r["total_output_tokens"], 40);
    // sglang: each 100 ms gap split over 4 tokens; servebench's per-chunk ITL keeps the gap.
    let (itl, chunk) = (f(&r, "mean_itl_ms"), f(&r, "mean_itl_chunk_ms"));
    assert!(close(itl * 4.0, chunk), "{itl} × 4 vs {chunk}");
    assert!((90.0..250.0).contains(&chunk), "per-chunk gap {chunk} ms");
    assert_eq!(r["itl_count"], 2 * 16, "4 gaps × 4 tokens per request");
    assert_eq!(r["accept_length"], serde_json::Value::Null);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reasoning_is_timed_under_its_own_keys() {
    // 3 reasoning chunks, then 2 answer chunks, 100 ms apart.
    let mut events: Vec<String> = (0..3)
        .map(|_| {
            serde_json::json!({"choices": [{"index": 0, "delta": {"reasoning_content": "think "}}]})
                .to_string()
        })
        .collect();
    events.push(
        serde_json::json!({"choices": [{"index": 0, "delta": {"content": "The answer"}}]})
            .to_string(),
    );
    events.push(serde_json::json!({"choices": [{"index": 0, "delta": {"content": " is 4."}, "finish_reason": "length"}],
        "usage": {"prompt_tokens": 20, "completion_tokens": 5}}).to_string());
    let url = scripted(script(events)).await;
    let r = bench("sglang-oai-chat", &url, &[]).await;
    assert_eq!(r["completed"], 2);
    let (ttft, ttft_any) = (f(&r, "mean_ttft_ms"), f(&r, "mean_ttft_any_ms"));
    // sglang's TTFT waits for the answer: three gaps after the first reasoning chunk.
    assert!(ttft - ttft_any > 250.0, "ttft {ttft} vs any {ttft_any}");
    assert!((90.0..250.0).contains(&ttft_any), "{ttft_any}");
    // sglang's ITL: one gap between the two answer chunks; servebench's per-chunk ITL: four gaps.
    assert_eq!(r["itl_count"], 2);
    assert!((90.0..250.0).contains(&f(&r, "mean_itl_ms")));
    assert!((90.0..250.0).contains(&f(&r, "mean_itl_chunk_ms")));
    // TPOT from sglang's TTFT: (E2E − TTFT) / 4.
    let tpot = f(&r, "mean_tpot_ms");
    let e2e = f(&r, "mean_e2e_latency_ms");
    assert!(close(tpot * 4.0, e2e - ttft), "{tpot} {e2e} {ttft}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accept_length_is_read_after_the_run_and_splits_oai_chunks() {
    let tok = servebench::tokenize::Tokenizer::builtin().unwrap();
    let texts = ["Hello", " big wide world", " of many words here", " end."];
    let counts: Vec<usize> = texts.iter().map(|t| tok.count(t).unwrap()).collect();
    let events = texts
        .iter()
        .map(|t| serde_json::json!({"choices": [{"index": 0, "text": t}]}).to_string())
        .collect();
    let decode = |a: f64| serde_json::json!({"decode": [{"internal_states": [{"avg_spec_accept_length": a}]}]});
    let url = scripted(Script {
        info_before: decode(1.0),
        info_after: decode(3.5),
        // The warm-up and both timed requests.
        posts_before_after: 3,
        ..script(events)
    })
    .await;
    let r = bench("sglang-oai", &url, &[]).await;
    assert_eq!(
        r["accept_length"], 3.5,
        "read after the run, PD form unwrapped"
    );
    assert_eq!(r["itl_rule"], "retokenized_chunks");
    let per_request: usize = counts[1..].iter().sum();
    assert_eq!(r["itl_count"], 2 * per_request);
    // The three gaps split over their chunks' tokens: the mean over tokens is Σgap / Σtokens per request.
    let itl = f(&r, "mean_itl_ms");
    let chunk = f(&r, "mean_itl_chunk_ms");
    assert!(
        close(itl * per_request as f64, chunk * 3.0),
        "split ITL {itl} ms vs per-chunk {chunk} ms ({counts:?} tokens)"
    );
    assert!(
        per_request > 3,
        "the chunks carry several tokens: {counts:?}"
    );
    // Without an accept length the same stream is timed per chunk.
    let url = scripted(script(
        texts
            .iter()
            .map(|t| serde_json::json!({"choices": [{"index": 0, "text": t}]}).to_string())
            .collect(),
    ))
    .await;
    let r = bench("sglang-oai", &url, &[]).await;
    assert_eq!(r["itl_rule"], "per_chunk");
    assert_eq!(r["itl_count"], 2 * 3);
    assert!(close(f(&r, "mean_itl_ms"), f(&r, "mean_itl_chunk_ms")));
}

/// Every key of a real sglang 0.5.9 result line (tests/fixtures/sglang/, produced against `servebench sim`)
/// is in servebench's result for the same flags, with a value of the same kind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_key_of_a_real_sglang_line_is_in_the_result() {
    let line = std::fs::read_to_string(
        root().join("tests/fixtures/sglang/bench_serving_0.5.9_result.jsonl"),
    )
    .unwrap()
    .replace(": Infinity", ": \"inf\"");
    let sglang: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&line).unwrap();
    let sim = start_sim("fast", |_| {}).await;
    let url = sim.base_url();
    let sharegpt = root().join("tests/fixtures/sharegpt/sharegpt_small.json");
    let dir = tempdir();
    let out = dir.path().join("r.json");
    let r = run_bench(bench_args(&[
        "--backend",
        "sglang",
        "--base-url",
        &url,
        "--dataset-name",
        "random",
        "--dataset-path",
        sharegpt.to_str().unwrap(),
        "--random-input-len",
        "64",
        "--random-output-len",
        "16",
        "--random-range-ratio",
        "0.5",
        "--num-prompts",
        "4",
        "--max-concurrency",
        "2",
        "--output-file",
        out.to_str().unwrap(),
        "--disable-tqdm",
    ]))
    .await;
    for (k, v) in &sglang {
        let ours = r
            .get(k)
            .unwrap_or_else(|| panic!("sglang's key {k} is missing"));
        let kind = |v: &serde_json::Value| match v {
            serde_json::Value::Number(_) => "number",
            serde_json::Value::Null => "null",
            serde_json::Value::String(_) => "string",
            serde_json::Value::Object(_) => "object",
            _ => "other",
        };
        assert!(
            kind(v) == kind(ours) || v.is_null() || ours.is_null(),
            "{k}: sglang {v}, servebench {ours}"
        );
    }
    assert_eq!(r["completed"], sglang["completed"]);
    assert_eq!(r["tag"], serde_json::Value::Null);
    sim.shutdown().await;
}

/// The deviation table of docs/metrics.md is machine-readable: the heading, the five columns, one row per
/// deviation with every cell filled, and the documented-only items of issue 10 present.
#[test]
fn the_deviation_table_is_machine_checkable() {
    let doc = std::fs::read_to_string(root().join("docs/metrics.md")).unwrap();
    let (_, after) = doc
        .split_once("\n## Deviations from sglang.bench_serving 0.5.9\n")
        .expect("the heading");
    let rows: Vec<Vec<&str>> = after
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .map(|l| l.trim_matches('|').split('|').map(str::trim).collect())
        .collect();
    assert_eq!(
        rows[0],
        [
            "key or behaviour",
            "servebench",
            "sglang 0.5.9",
            "why",
            "flag"
        ]
    );
    assert!(rows[1].iter().all(|c| c.chars().all(|ch| ch == '-')));
    for r in &rows[2..] {
        assert_eq!(r.len(), 5, "{r:?}");
        assert!(r.iter().all(|c| !c.is_empty()), "{r:?}");
    }
    let keys: Vec<&str> = rows[2..].iter().map(|r| r[0]).collect();
    for k in [
        "`duration`",
        "connection reuse and warm pool",
        "output tokens without usage",
        "chunk timestamps",
    ] {
        // A row's first cell may list more keys after its first (`duration`, `request_throughput`, …).
        assert!(
            keys.iter()
                .any(|x| *x == k || x.starts_with(&format!("{k},"))),
            "{k} missing from {keys:?}"
        );
    }
}
