//! The simulator over real HTTP on 127.0.0.1:0 (fast presets; assertions on values and orderings, not on speed).

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{json, Value};
use servebench_sim::{
    FaultConfig, FixedLatency, ReasoningMode, RequestTrace, SimConfig, SimServer, TraceStatus,
};

fn fast() -> SimConfig {
    SimConfig::preset("fast").unwrap()
}

async fn start(cfg: SimConfig) -> SimServer {
    // reqwest is built without a default TLS provider in this workspace (plain HTTP is all these tests use).
    let _ = rustls::crypto::ring::default_provider().install_default();
    SimServer::start(cfg, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Split an SSE body into its `data:` payloads, checking the framing: every event is one `data: …` line followed by
/// a blank line, and the stream ends with `[DONE]`.
fn sse_payloads(body: &str) -> Vec<String> {
    assert!(
        body.ends_with("\n\n"),
        "stream does not end with a blank line: {body:?}"
    );
    let events: Vec<&str> = body[..body.len() - 2].split("\n\n").collect();
    let mut out = Vec::new();
    for e in events {
        assert!(!e.contains('\n'), "multi-line event: {e:?}");
        let payload = e
            .strip_prefix("data: ")
            .unwrap_or_else(|| panic!("event without `data: `: {e:?}"));
        out.push(payload.to_string());
    }
    assert_eq!(
        out.last().map(String::as_str),
        Some("[DONE]"),
        "no [DONE] at the end"
    );
    out
}

fn json_events(payloads: &[String]) -> Vec<Value> {
    payloads[..payloads.len() - 1]
        .iter()
        .map(|p| serde_json::from_str(p).unwrap())
        .collect()
}

async fn post(
    server: &SimServer,
    path: &str,
    body: Value,
    request_id: Option<&str>,
) -> reqwest::Response {
    let mut rb = reqwest::Client::new()
        .post(format!("{}{path}", server.base_url()))
        .json(&body);
    if let Some(id) = request_id {
        rb = rb.header("x-request-id", id);
    }
    rb.send().await.unwrap()
}

async fn get_json(server: &SimServer, path: &str) -> Value {
    reqwest::get(format!("{}{path}", server.base_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn word_count(text: &str) -> usize {
    text.split(' ').filter(|w| !w.is_empty()).count()
}

fn check_trace_times(t: &RequestTrace) {
    let ps = t.prefill_start_ns.expect("prefill start");
    let pe = t.prefill_end_ns.expect("prefill end");
    let first = t.first_token_ns.expect("first token");
    assert!(t.arrival_ns <= ps && ps <= pe && pe <= first, "{t:?}");
    assert!(t.chunk_ns.windows(2).all(|w| w[0] <= w[1]), "{t:?}");
    assert_eq!(t.chunk_ns[0], first);
    assert!(t.end_ns.unwrap() >= *t.chunk_ns.last().unwrap());
}

#[tokio::test]
async fn completions_stream_with_usage_and_trace() {
    let server = start(fast()).await;
    let resp = post(
        &server,
        "/v1/completions",
        json!({"model": "my-model", "prompt": "Hello world, this is a test.", "max_tokens": 20, "ignore_eos": true,
               "stream": true, "stream_options": {"include_usage": true}}),
        Some("req-a"),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    assert_eq!(resp.headers()["x-request-id"], "req-a");
    let sim_id = resp.headers()["x-sim-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(sim_id.starts_with("sim-"));
    let events = json_events(&sse_payloads(&resp.text().await.unwrap()));
    let (usage, chunks) = events.split_last().unwrap();
    assert_eq!(chunks.len(), 20);
    let text: String = chunks
        .iter()
        .map(|c| c["choices"][0]["text"].as_str().unwrap())
        .collect();
    assert_eq!(word_count(&text), 20);
    for c in &chunks[..19] {
        assert_eq!(c["choices"][0]["finish_reason"], Value::Null);
        assert_eq!(c["object"], "text_completion");
        assert_eq!(c["model"], "my-model");
    }
    assert_eq!(chunks[19]["choices"][0]["finish_reason"], "length");
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(
        usage["usage"],
        json!({"prompt_tokens": 8, "total_tokens": 28, "completion_tokens": 20})
    );

    let t = server.trace("req-a").unwrap();
    assert_eq!(t.sim_id, sim_id);
    assert_eq!(
        (t.status, t.endpoint.as_str(), t.stream),
        (TraceStatus::Ok, "completions", true)
    );
    assert_eq!((t.prompt_tokens, t.completion_tokens), (8, 20));
    assert_eq!(t.chunk_ns.len(), 20);
    assert_eq!(t.finish_reason.as_deref(), Some("length"));
    check_trace_times(&t);
    // The same trace over HTTP, by client id and by sim id.
    let by_http: RequestTrace =
        serde_json::from_value(get_json(&server, "/sim/trace?id=req-a").await).unwrap();
    assert_eq!(by_http, t);
    let by_sim: RequestTrace =
        serde_json::from_value(get_json(&server, &format!("/sim/trace?id={sim_id}")).await)
            .unwrap();
    assert_eq!(by_sim, t);
    server.shutdown().await;
}

#[tokio::test]
async fn chat_stream_role_content_finish_and_usage() {
    let server = start(fast()).await;
    let resp = post(
        &server,
        "/v1/chat/completions",
        json!({"messages": [{"role": "user", "content": "Say something."}], "max_completion_tokens": 12,
               "min_tokens": 12, "stream": true, "stream_options": {"include_usage": true}}),
        None,
    )
    .await;
    let events = json_events(&sse_payloads(&resp.text().await.unwrap()));
    assert_eq!(
        events[0]["choices"][0]["delta"],
        json!({"role": "assistant", "content": ""})
    );
    let content: Vec<&Value> = events[1..events.len() - 1].iter().collect();
    assert_eq!(content.len(), 12);
    for c in &content {
        assert_eq!(c["object"], "chat.completion.chunk");
        assert_eq!(c["model"], "servebench-sim");
        assert!(c["choices"][0]["delta"]["content"]
            .as_str()
            .unwrap()
            .starts_with(' '));
    }
    assert_eq!(content[11]["choices"][0]["finish_reason"], "length");
    let usage = &events[events.len() - 1]["usage"];
    assert_eq!(usage["completion_tokens"], 12);
    // "Say something." = 3 + 4 per message + 3 for the reply
    assert_eq!(usage["prompt_tokens"], 10);
    server.shutdown().await;
}

#[tokio::test]
async fn non_streaming_responses_of_all_apis() {
    let server = start(fast()).await;
    let c: Value = post(
        &server,
        "/v1/completions",
        json!({"prompt": [1, 2, 3], "max_tokens": 9, "ignore_eos": true}),
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(word_count(c["choices"][0]["text"].as_str().unwrap()), 9);
    assert_eq!(
        c["usage"],
        json!({"prompt_tokens": 3, "total_tokens": 12, "completion_tokens": 9})
    );
    assert!(c["id"].as_str().unwrap().starts_with("cmpl-sim-"));

    let h: Value = post(
        &server,
        "/v1/chat/completions",
        json!({"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 5, "ignore_eos": true}),
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(h["object"], "chat.completion");
    assert_eq!(h["choices"][0]["message"]["role"], "assistant");
    assert_eq!(
        word_count(h["choices"][0]["message"]["content"].as_str().unwrap()),
        5
    );
    assert_eq!(h["choices"][0]["finish_reason"], "length");
    assert_eq!(h["usage"]["completion_tokens"], 5);

    let g: Value = post(
        &server,
        "/generate",
        json!({"text": "a b c d", "sampling_params": {"max_new_tokens": 7, "ignore_eos": true}}),
        Some("gen-1"),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(word_count(g["text"].as_str().unwrap()), 7);
    assert_eq!(g["meta_info"]["prompt_tokens"], 4);
    assert_eq!(g["meta_info"]["completion_tokens"], 7);
    assert_eq!(
        g["meta_info"]["finish_reason"],
        json!({"type": "length", "length": 7})
    );
    assert!(g["meta_info"]["e2e_latency"].as_f64().unwrap() > 0.0);
    let t = server.trace("gen-1").unwrap();
    assert!(!t.stream);
    assert_eq!((t.chunk_tokens.clone(), t.completion_tokens), (vec![7], 7));
    check_trace_times(&t);
    server.shutdown().await;
}

#[tokio::test]
async fn generate_stream_text_is_cumulative() {
    let server = start(fast()).await;
    let resp = post(
        &server,
        "/generate",
        json!({"input_ids": [5, 6, 7, 8, 9], "rid": "rid-7", "stream": true,
               "sampling_params": {"max_new_tokens": 10, "ignore_eos": true}}),
        None,
    )
    .await;
    let events = json_events(&sse_payloads(&resp.text().await.unwrap()));
    assert_eq!(events.len(), 10);
    let mut prev = String::new();
    for (i, e) in events.iter().enumerate() {
        let text = e["text"].as_str().unwrap();
        assert!(
            text.starts_with(&prev) && text.len() > prev.len(),
            "not cumulative at {i}"
        );
        assert_eq!(word_count(text), i + 1);
        assert_eq!(e["meta_info"]["completion_tokens"], i + 1);
        assert_eq!(e["meta_info"]["prompt_tokens"], 5);
        assert_eq!(e["meta_info"]["id"], "rid-7");
        prev = text.to_string();
    }
    assert_eq!(events[8]["meta_info"]["finish_reason"], Value::Null);
    assert_eq!(events[9]["meta_info"]["finish_reason"]["type"], "length");
    // Without x-request-id, /generate's rid keys the trace.
    assert_eq!(server.trace("rid-7").unwrap().completion_tokens, 10);
    server.shutdown().await;
}

#[tokio::test]
async fn tokens_per_chunk_groups_tokens_and_traces_match() {
    let server = start(SimConfig {
        tokens_per_chunk: 4,
        ..fast()
    })
    .await;
    let resp = post(
        &server,
        "/v1/completions",
        json!({"prompt": "x", "max_tokens": 10, "ignore_eos": true, "stream": true,
               "stream_options": {"include_usage": true}}),
        Some("k4"),
    )
    .await;
    let events = json_events(&sse_payloads(&resp.text().await.unwrap()));
    let words: Vec<usize> = events[..events.len() - 1]
        .iter()
        .map(|e| word_count(e["choices"][0]["text"].as_str().unwrap()))
        .collect();
    assert_eq!(words, vec![4, 4, 2]);
    assert_eq!(events[3]["usage"]["completion_tokens"], 10);
    let t = server.trace("k4").unwrap();
    assert_eq!(t.chunk_tokens, vec![4, 4, 2]);
    assert_eq!(t.chunk_ns.len(), 10usize.div_ceil(4));
    server.shutdown().await;
}

#[tokio::test]
async fn requests_beyond_max_running_queue_until_slots_free() {
    let cfg = SimConfig {
        max_running: 2,
        prefill_us_per_token: 20.0,
        decode_base_ms: 5.0,
        decode_per_seq_us: 0.0,
        ..fast()
    };
    let server = start(cfg).await;
    let url = format!("{}/v1/completions", server.base_url());
    let client = reqwest::Client::new();
    let mut tasks = Vec::new();
    for i in 0..4 {
        let (client, url) = (client.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            let body = json!({"prompt": vec![1; 100], "max_tokens": 5, "ignore_eos": true, "stream": true});
            let r = client.post(url).header("x-request-id", format!("q{i}")).json(&body).send().await.unwrap();
            r.text().await.unwrap()
        }));
    }
    for t in tasks {
        sse_payloads(&t.await.unwrap());
    }
    let mut traces: Vec<RequestTrace> = (0..4)
        .map(|i| server.trace(&format!("q{i}")).unwrap())
        .collect();
    traces.sort_by_key(|t| t.prefill_start_ns.unwrap());
    let (early, late) = traces.split_at(2);
    let mut early_prefill_ends: Vec<u64> =
        early.iter().map(|t| t.prefill_end_ns.unwrap()).collect();
    early_prefill_ends.sort_unstable();
    // A queued request starts only when a running one has finished: 4 decode steps of at least 5 ms after its
    // prefill (minus 2 ms for timer lateness in the recorded prefill end). The third waits for one, the fourth for
    // both.
    let four_steps = 4 * 5_000_000 - 2_000_000;
    assert!(
        late[0].prefill_start_ns.unwrap() >= early_prefill_ends[0] + four_steps,
        "{traces:?}"
    );
    assert!(
        late[1].prefill_start_ns.unwrap() >= early_prefill_ends[1] + four_steps,
        "{traces:?}"
    );
    // the metrics saw the steps and requests
    let m = reqwest::get(format!("{}/metrics", server.base_url()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        m.contains("vllm:generation_tokens_total{model_name=\"servebench-sim\"} 20\n"),
        "{m}"
    );
    assert!(m.contains("vllm:prompt_tokens_total{model_name=\"servebench-sim\"} 400\n"));
    assert!(m.contains(
        "vllm:request_success_total{model_name=\"servebench-sim\",finished_reason=\"length\"} 4\n"
    ));
    assert!(m.contains("vllm:num_requests_running{model_name=\"servebench-sim\"} 0\n"));
    server.shutdown().await;
}

#[tokio::test]
async fn ttft_is_at_least_the_prefill_cost() {
    // 1000 prompt tokens x 10 us = 10 ms of prefill; a decode step of 3 ms after it.
    let cfg = SimConfig {
        prefill_us_per_token: 10.0,
        decode_base_ms: 3.0,
        ..fast()
    };
    let server = start(cfg).await;
    let resp = post(
        &server,
        "/v1/completions",
        json!({"prompt": vec![7; 1000], "max_tokens": 3, "ignore_eos": true, "stream": true}),
        Some("ttft"),
    )
    .await;
    sse_payloads(&resp.text().await.unwrap());
    let t = server.trace("ttft").unwrap();
    assert!(
        t.prefill_end_ns.unwrap() - t.prefill_start_ns.unwrap() >= 10_000_000,
        "{t:?}"
    );
    assert!(t.chunk_ns[1] - t.chunk_ns[0] >= 2_000_000, "{t:?}");
    server.shutdown().await;
}

#[tokio::test]
async fn strict_openai_mode() {
    let server = start(SimConfig {
        strict_openai: true,
        ..fast()
    })
    .await;
    let resp = post(
        &server,
        "/v1/completions",
        json!({"prompt": "x", "max_tokens": 3, "ignore_eos": true}),
        Some("s1"),
    )
    .await;
    assert_eq!(resp.status(), 422);
    assert!(resp.headers().contains_key("x-sim-request-id"));
    let err: Value = resp.json().await.unwrap();
    assert!(
        err["detail"].as_str().unwrap().contains("ignore_eos"),
        "{err}"
    );
    assert_eq!(server.trace("s1").unwrap().status, TraceStatus::Rejected);
    // OpenAI fields pass, and streams carry no usage even when asked.
    let resp = post(
        &server,
        "/v1/chat/completions",
        json!({"messages": [{"role": "user", "content": "x"}], "max_tokens": 3, "stream": true,
               "stream_options": {"include_usage": true}}),
        None,
    )
    .await;
    assert_eq!(resp.status(), 200);
    let events = json_events(&sse_payloads(&resp.text().await.unwrap()));
    assert!(
        events.iter().all(|e| e.get("usage").is_none()),
        "{events:?}"
    );
    assert_eq!(events.len(), 4);
    assert_eq!(
        post(&server, "/generate", json!({"text": "x"}), None)
            .await
            .status(),
        404
    );
    server.shutdown().await;
}

#[tokio::test]
async fn bad_requests_get_openai_errors() {
    let server = start(SimConfig {
        max_model_len: 100,
        max_body_bytes: 2000,
        ..fast()
    })
    .await;
    let r = post(
        &server,
        "/v1/completions",
        json!({"prompt": vec![1; 90], "max_tokens": 20}),
        None,
    )
    .await;
    assert_eq!(r.status(), 400);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["object"], "error");
    assert!(e["message"]
        .as_str()
        .unwrap()
        .contains("maximum context length is 100"));
    let r = post(
        &server,
        "/v1/chat/completions",
        json!({"messages": "nope"}),
        None,
    )
    .await;
    assert_eq!(r.status(), 400);
    let big = "word ".repeat(1000);
    let r = post(&server, "/v1/completions", json!({"prompt": big}), None).await;
    assert_eq!(r.status(), 413);
    let r = reqwest::get(format!("{}/nope", server.base_url()))
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert!(r.headers().contains_key("x-sim-request-id"));
    server.shutdown().await;
}

#[tokio::test]
async fn injected_http_500() {
    let faults = FaultConfig {
        fail_rate: 1.0,
        ..FaultConfig::default()
    };
    let server = start(SimConfig { faults, ..fast() }).await;
    let r = post(
        &server,
        "/v1/completions",
        json!({"prompt": "x", "stream": true}),
        Some("f"),
    )
    .await;
    assert_eq!(r.status(), 500);
    assert_eq!(server.trace("f").unwrap().status, TraceStatus::FailInjected);
    let m = reqwest::get(format!("{}/metrics", server.base_url()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(m.contains("kind=\"fail\"} 1\n"));
    server.shutdown().await;
}

#[tokio::test]
async fn injected_disconnects() {
    let faults = FaultConfig {
        disconnect_rate: 1.0,
        ..FaultConfig::default()
    };
    let server = start(SimConfig { faults, ..fast() }).await;
    for stream in [true, false] {
        let id = format!("d-{stream}");
        let r = post(
            &server,
            "/v1/completions",
            json!({"prompt": "x", "max_tokens": 8, "stream": stream}),
            Some(&id),
        )
        .await;
        assert_eq!(r.status(), 200);
        match r.text().await {
            Err(_) => {}
            Ok(body) => panic!("the body should break off, got {body:?}"),
        }
        let t = server.trace(&id).unwrap();
        assert_eq!(t.status, TraceStatus::DisconnectInjected);
        assert!(t.finish_reason.is_none());
        if stream {
            assert!(!t.chunk_ns.is_empty() && t.chunk_ns.len() <= 8);
        }
    }
    server.shutdown().await;
}

#[tokio::test]
async fn injected_malformed_event() {
    let faults = FaultConfig {
        malformed_rate: 1.0,
        ..FaultConfig::default()
    };
    let server = start(SimConfig { faults, ..fast() }).await;
    let r = post(
        &server,
        "/v1/chat/completions",
        json!({"messages": [{"role": "user", "content": "x"}], "max_tokens": 6, "stream": true}),
        Some("m"),
    )
    .await;
    let payloads = sse_payloads(&r.text().await.unwrap());
    let bad = payloads[..payloads.len() - 1]
        .iter()
        .filter(|p| serde_json::from_str::<Value>(p).is_err())
        .count();
    assert_eq!(bad, 1);
    // the stream is otherwise complete: role chunk + 6 content chunks + the malformed one + [DONE]
    assert_eq!(payloads.len(), 9);
    let t = server.trace("m").unwrap();
    assert_eq!(
        (t.status, t.completion_tokens),
        (TraceStatus::MalformedInjected, 6)
    );
    server.shutdown().await;
}

#[tokio::test]
async fn close_keepalive_drops_the_second_request_on_a_connection() {
    let faults = FaultConfig {
        close_keepalive: true,
        ..FaultConfig::default()
    };
    let server = start(SimConfig { faults, ..fast() }).await;
    let client = reqwest::Client::new();
    let url = format!("{}/v1/completions", server.base_url());
    let body = json!({"prompt": "x", "max_tokens": 2});
    let first = client.post(&url).json(&body).send().await.unwrap();
    assert_eq!(first.status(), 200);
    first.text().await.unwrap();
    // The pooled connection is reused and the request is dropped before any byte of a response.
    let second = client
        .post(&url)
        .header("x-request-id", "second")
        .json(&body)
        .send()
        .await;
    assert!(second.is_err(), "{second:?}");
    assert_eq!(
        server.trace("second").unwrap().status,
        TraceStatus::KeepaliveDropped
    );
    // A retry goes out on a fresh connection and succeeds.
    let third = client.post(&url).json(&body).send().await.unwrap();
    assert_eq!(third.status(), 200);
    third.text().await.unwrap();
    // A connection left idle is closed by the server (the client's pool sees it) rather than kept as a trap.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let fourth = client.post(&url).json(&body).send().await.unwrap();
    assert_eq!(fourth.status(), 200);
    assert!(raw_keepalive_then_wait(&server, Duration::from_secs(5)).await);
    server.shutdown().await;
}

async fn raw_keepalive_then_wait(server: &SimServer, wait: Duration) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
    s.write_all(b"GET /health HTTP/1.1\r\nHost: sim\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let n = s.read(&mut buf).await.unwrap();
    let head = String::from_utf8_lossy(&buf[..n]).to_string();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(!head.to_ascii_lowercase().contains("connection: close"));
    // true when the server closed the idle connection within `wait`
    matches!(
        tokio::time::timeout(wait, s.read(&mut buf)).await,
        Ok(Ok(0))
    )
}

#[tokio::test]
async fn close_idle_after_closes_idle_keepalive_connections() {
    let faults = FaultConfig {
        close_idle_after_ms: Some(50),
        ..FaultConfig::default()
    };
    let closing = start(SimConfig { faults, ..fast() }).await;
    assert!(raw_keepalive_then_wait(&closing, Duration::from_secs(5)).await);
    let normal = start(fast()).await;
    assert!(!raw_keepalive_then_wait(&normal, Duration::from_millis(300)).await);
    closing.shutdown().await;
    normal.shutdown().await;
}

#[tokio::test]
async fn client_going_away_is_traced_and_frees_the_engine() {
    let server = start(SimConfig {
        decode_base_ms: 5.0,
        ..fast()
    })
    .await;
    let resp = post(
        &server,
        "/v1/completions",
        json!({"prompt": "x", "max_tokens": 1000, "ignore_eos": true, "stream": true}),
        Some("gone"),
    )
    .await;
    let mut stream = resp.bytes_stream();
    use futures_util::StreamExt;
    let first = stream.next().await.unwrap().unwrap();
    assert!(first.starts_with(b"data: "));
    drop(stream);
    let mut trace = None;
    for _ in 0..200 {
        if let Some(t) = server.trace("gone") {
            trace = Some(t);
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let t = trace.expect("a trace for the abandoned request");
    assert_eq!(t.status, TraceStatus::ClientGone);
    assert!(t.completion_tokens < 1000);
    // the engine drops it too: nothing keeps running
    let mut running = String::new();
    for _ in 0..200 {
        running = reqwest::get(format!("{}/metrics", server.base_url()))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if running.contains("vllm:num_requests_running{model_name=\"servebench-sim\"} 0\n") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        running.contains("vllm:num_requests_running{model_name=\"servebench-sim\"} 0\n"),
        "{running}"
    );
    assert!(running
        .contains("servebench_sim_requests_aborted_total{model_name=\"servebench-sim\"} 1\n"));
    server.shutdown().await;
}

fn keyed(accuracy: f64, reasoning: ReasoningMode) -> SimConfig {
    SimConfig {
        answer_key_files: vec![fixture("math_tiny.jsonl"), fixture("gpqa_tiny.csv")],
        accuracy,
        wrong_share: 1.0,
        reasoning,
        reasoning_tokens: 8,
        ..fast()
    }
}

async fn chat_text(server: &SimServer, prompt: &str, seed: Option<u64>) -> Value {
    let mut body = json!({"messages": [{"role": "user", "content": prompt}], "max_tokens": 2048});
    if let Some(s) = seed {
        body["seed"] = json!(s);
    }
    post(server, "/v1/chat/completions", body, None)
        .await
        .json()
        .await
        .unwrap()
}

const MATH_PROMPT: &str = "User: Compute $3 \\times 14$.\nPlease reason step by step, and put your final answer within \\boxed{}.\n\nAssistant:";

#[tokio::test]
async fn answer_key_at_full_and_zero_accuracy() {
    let good = start(keyed(1.0, ReasoningMode::Inline)).await;
    let bad = start(keyed(0.0, ReasoningMode::Inline)).await;
    let gsm = "Ana has 5 pencils and buys 7 more.   How many pencils does she have now?";
    for seed in 0..5 {
        let g = chat_text(&good, MATH_PROMPT, Some(seed)).await;
        let content = g["choices"][0]["message"]["content"].as_str().unwrap();
        assert!(
            content.starts_with("<think>\n") && content.contains("</think>"),
            "{content}"
        );
        assert!(
            content.ends_with("The final answer is \\boxed{42}."),
            "{content}"
        );
        assert_eq!(g["choices"][0]["finish_reason"], "stop");
        let b = chat_text(&bad, MATH_PROMPT, Some(seed)).await;
        let content = b["choices"][0]["message"]["content"].as_str().unwrap();
        assert!(!content.contains("\\boxed{42}"), "{content}");
        assert!(content.ends_with("\\boxed{43}."), "{content}");
        let g = chat_text(&good, gsm, Some(seed)).await;
        assert!(g["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .ends_with("\\boxed{12}."));
    }
    // an unknown prompt gets filler words
    let other = chat_text(&good, "Tell me a story.", None).await;
    assert!(!other["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .contains("boxed"));
    good.shutdown().await;
    bad.shutdown().await;
}

#[tokio::test]
async fn answer_key_gpqa_letter_and_reasoning_field_stream() {
    let server = start(keyed(1.0, ReasoningMode::Field)).await;
    let prompt = "What is the correct answer to this question:Which of these made-up particles, named for this test only, \
carries the synthetic charge?\nChoices:\n(A) Snoodle\n(B) Quibbit\n(C) Flarnic\n(D) Zorblon\n\nPlease reason step by step, \
and put your final answer within \\boxed{}.";
    let resp = post(
        &server,
        "/v1/chat/completions",
        json!({"messages": [{"role": "user", "content": prompt}], "max_tokens": 4096, "stream": true}),
        None,
    )
    .await;
    let events = json_events(&sse_payloads(&resp.text().await.unwrap()));
    let mut reasoning = String::new();
    let mut content = String::new();
    for e in &events[1..] {
        let d = &e["choices"][0]["delta"];
        reasoning.push_str(d["reasoning_content"].as_str().unwrap_or(""));
        content.push_str(d["content"].as_str().unwrap_or(""));
    }
    assert!(reasoning.starts_with("Let me think"), "{reasoning}");
    assert_eq!(content, "The final answer is \\boxed{D}.");
    assert_eq!(
        events.last().unwrap()["choices"][0]["finish_reason"],
        "stop"
    );
    // the question with a newline inside it matches after whitespace normalisation
    let p2 = "What is the correct answer to this question:In this invented reaction, which product forms first?\n\
Choices:\n(A) Compound R\n(B) Compound Q\n(C) Compound S\n(D) Compound T\n";
    let r = chat_text(&server, p2, None).await;
    assert_eq!(
        r["choices"][0]["message"]["content"],
        "The final answer is \\boxed{B}."
    );
    assert!(r["choices"][0]["message"]["reasoning_content"]
        .as_str()
        .unwrap()
        .starts_with("Let me think"));
    server.shutdown().await;
}

#[tokio::test]
async fn answer_key_accuracy_is_seeded_per_sample() {
    let a = start(SimConfig {
        seed: 11,
        ..keyed(0.5, ReasoningMode::None)
    })
    .await;
    let b = start(SimConfig {
        seed: 11,
        ..keyed(0.5, ReasoningMode::None)
    })
    .await;
    let mut first = Vec::new();
    let mut second = Vec::new();
    // no `seed` field: the n-th request for a question is sample n, so both servers answer alike
    for _ in 0..16 {
        first.push(
            chat_text(&a, MATH_PROMPT, None).await["choices"][0]["message"]["content"].clone(),
        );
        second.push(
            chat_text(&b, MATH_PROMPT, None).await["choices"][0]["message"]["content"].clone(),
        );
    }
    assert_eq!(first, second);
    let correct = first
        .iter()
        .filter(|c| c.as_str().unwrap().contains("\\boxed{42}"))
        .count();
    assert!(correct > 0 && correct < 16, "{first:?}");
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn same_seed_same_output_other_seed_other_output() {
    let body = json!({"prompt": "Once upon a time", "max_tokens": 30, "ignore_eos": true});
    let mut texts = Vec::new();
    for seed in [1, 1, 2] {
        let server = start(SimConfig { seed, ..fast() }).await;
        let v: Value = post(&server, "/v1/completions", body.clone(), None)
            .await
            .json()
            .await
            .unwrap();
        texts.push(v["choices"][0]["text"].as_str().unwrap().to_string());
        server.shutdown().await;
    }
    assert_eq!(texts[0], texts[1]);
    assert_ne!(texts[0], texts[2]);
}

#[tokio::test]
async fn eos_prob_ends_outputs_with_stop() {
    let server = start(SimConfig {
        eos_prob: 0.3,
        ..fast()
    })
    .await;
    let mut stops = 0;
    for i in 0..10 {
        let v: Value = post(
            &server,
            "/v1/completions",
            json!({"prompt": format!("p{i}"), "max_tokens": 200}),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
        let n = v["usage"]["completion_tokens"].as_u64().unwrap() as usize;
        assert_eq!(word_count(v["choices"][0]["text"].as_str().unwrap()), n);
        if v["choices"][0]["finish_reason"] == "stop" {
            stops += 1;
            assert!(n < 200);
        }
    }
    assert_eq!(stops, 10);
    server.shutdown().await;
}

#[tokio::test]
async fn info_endpoints_label_the_simulator() {
    let server = start(SimConfig {
        model: "sim-model".into(),
        ..fast()
    })
    .await;
    let m = get_json(&server, "/v1/models").await;
    assert_eq!(m["object"], "list");
    assert_eq!(m["data"][0]["id"], "sim-model");
    assert_eq!(m["data"][0]["owned_by"], "servebench-sim");
    assert_eq!(m["data"][0]["max_model_len"], 131072);
    let s = get_json(&server, "/get_server_info").await;
    assert_eq!(
        (s["simulated"].clone(), s["preset"].clone()),
        (json!(true), json!("fast"))
    );
    assert_eq!(
        get_json(&server, "/get_model_info").await["simulated"],
        true
    );
    let base = server.base_url();
    assert_eq!(
        reqwest::get(format!("{base}/health"))
            .await
            .unwrap()
            .status(),
        200
    );
    let c = reqwest::Client::new();
    assert_eq!(
        c.post(format!("{base}/flush_cache"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        c.post(format!("{base}/reset_prefix_cache"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    // /sim/traces is JSON lines of every finished request
    for i in 0..3 {
        post(
            &server,
            "/v1/completions",
            json!({"prompt": "x", "max_tokens": 2}),
            Some(&format!("t{i}")),
        )
        .await
        .text()
        .await
        .unwrap();
    }
    let lines = reqwest::get(format!("{base}/sim/traces"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let ids: Vec<String> = lines
        .lines()
        .map(|l| serde_json::from_str::<RequestTrace>(l).unwrap().id)
        .collect();
    assert_eq!(ids, vec!["t0", "t1", "t2"]);
    assert_eq!(server.traces().len(), 3);
    assert_eq!(
        reqwest::get(format!("{base}/sim/trace?id=nope"))
            .await
            .unwrap()
            .status(),
        404
    );
    server.shutdown().await;
}

#[tokio::test]
async fn fixed_latency_mode_keeps_its_schedule() {
    let cfg = SimConfig {
        fixed_latency: Some(FixedLatency {
            ttft_ms: 30.0,
            itl_ms: 10.0,
        }),
        ..SimConfig::preset("mock").unwrap()
    };
    let server = start(cfg).await;
    let resp = post(
        &server,
        "/v1/completions",
        json!({"prompt": "x", "max_tokens": 5, "stream": true}),
        Some("mock"),
    )
    .await;
    sse_payloads(&resp.text().await.unwrap());
    let t = server.trace("mock").unwrap();
    assert_eq!(t.chunk_ns.len(), 5);
    assert!(t.prefill_start_ns.is_none());
    for (i, c) in t.chunk_ns.iter().enumerate() {
        // timers never fire early
        assert!(
            *c >= t.arrival_ns + 30_000_000 + i as u64 * 10_000_000,
            "chunk {i}: {t:?}"
        );
    }
    server.shutdown().await;
}

#[tokio::test]
async fn firehose_serves_many_concurrent_streams() {
    let server = start(SimConfig::preset("firehose").unwrap()).await;
    let url = format!("{}/v1/chat/completions", server.base_url());
    let client = reqwest::Client::new();
    let mut tasks = Vec::new();
    for i in 0..256 {
        let (client, url) = (client.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            let body = json!({"messages": [{"role": "user", "content": format!("q{i}")}], "max_tokens": 64,
                              "ignore_eos": true, "stream": true, "stream_options": {"include_usage": true}});
            client.post(url).json(&body).send().await.unwrap().text().await.unwrap()
        }));
    }
    for t in tasks {
        let events = json_events(&sse_payloads(&t.await.unwrap()));
        assert_eq!(events.len(), 1 + 64 + 1);
        assert_eq!(events.last().unwrap()["usage"]["completion_tokens"], 64);
    }
    let traces = server.traces();
    assert_eq!(traces.len(), 256);
    assert!(traces
        .iter()
        .all(|t| t.status == TraceStatus::Ok && t.chunk_ns.len() == 64));
    server.shutdown().await;
}

#[tokio::test]
async fn firehose_chunks_per_write_keeps_one_event_per_chunk() {
    let server = start(SimConfig {
        chunks_per_write: 4,
        ..SimConfig::preset("firehose").unwrap()
    })
    .await;
    let resp = post(
        &server,
        "/v1/completions",
        json!({"prompt": "x", "max_tokens": 10, "ignore_eos": true, "stream": true}),
        Some("cpw"),
    )
    .await;
    let events = json_events(&sse_payloads(&resp.text().await.unwrap()));
    assert_eq!(events.len(), 10);
    let t = server.trace("cpw").unwrap();
    assert_eq!(t.chunk_tokens, vec![1; 10]);
    // chunks written together share their hand-over time: frames of 4, 4 and 2
    assert_eq!(
        (t.chunk_ns[0], t.chunk_ns[4], t.chunk_ns[8]),
        (t.chunk_ns[3], t.chunk_ns[7], t.chunk_ns[9])
    );
    server.shutdown().await;
}

#[tokio::test]
async fn firehose_preset_writes_chunks_in_frames_with_shared_times() {
    let cfg = SimConfig::preset("firehose").unwrap();
    let per_frame = servebench_sim::FIREHOSE_CHUNKS_PER_WRITE as usize;
    assert_eq!(cfg.chunks_per_write as usize, per_frame);
    let server = start(cfg).await;
    let resp = post(
        &server,
        "/v1/completions",
        json!({"prompt": "x", "max_tokens": 256, "ignore_eos": true, "stream": true,
               "stream_options": {"include_usage": true}}),
        Some("fh"),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    assert_eq!(resp.headers()["transfer-encoding"], "chunked");
    let events = json_events(&sse_payloads(&resp.text().await.unwrap()));
    assert_eq!(events.len(), 256 + 1);
    assert_eq!(events[256]["usage"]["completion_tokens"], 256);
    let t = server.trace("fh").unwrap();
    assert_eq!(t.status, TraceStatus::Ok);
    assert_eq!(t.chunk_tokens, vec![1; 256]);
    // ~180-byte events: frames of FIREHOSE_CHUNKS_PER_WRITE chunks, each chunk stamped with its frame's time
    for (i, &ns) in t.chunk_ns.iter().enumerate() {
        assert_eq!(ns, t.chunk_ns[i - i % per_frame], "chunk {i}");
    }
    assert!(t.chunk_ns.windows(2).all(|w| w[0] <= w[1]));
    server.shutdown().await;
}
