//! The simulator's fault matrix against the client: every fault is classified with its reason code, the good
//! requests of the same run keep their numbers, and the run completes (docs/reliability.md names these tests).

use servebench::core::api::Backend;
use servebench::core::metrics::{compute, Metrics};
use servebench::core::record::{ItlRule, RequestRecord};
use servebench::load::client::{Client, ClientConfig, PreparedRequest, Timeouts};
use servebench::load::runner::{self, NullSink, RunConfig};
use servebench::sim::{Fault, FixedLatency, SimConfig, SimServer};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Fixed timing of the simulator: first chunk after TTFT, then one chunk every ITL.
const TTFT_MS: f64 = 60.0;
const ITL_MS: f64 = 100.0;
/// Output tokens per request (one per chunk).
const OUT: u64 = 4;
/// Timing tolerance on a loaded machine (the faults that must not shift timing would shift it by one ITL).
const TOL_MS: f64 = 25.0;
/// Tolerance of one chunk's read time against the simulator's send time (one event late would be one ITL).
const CHUNK_TOL_MS: f64 = 45.0;

async fn sim(f: impl FnOnce(&mut SimConfig)) -> SimServer {
    let mut cfg = SimConfig::preset("mock").expect("preset");
    cfg.fixed_latency = Some(FixedLatency {
        ttft_ms: TTFT_MS,
        itl_ms: ITL_MS,
    });
    f(&mut cfg);
    SimServer::start(cfg, "127.0.0.1:0".parse().unwrap())
        .await
        .expect("simulator starts")
}

/// Short limits so that stalls end quickly.
fn timeouts() -> Timeouts {
    Timeouts {
        connect: Duration::from_secs(5),
        ttft: Duration::from_millis(700),
        idle: Duration::from_millis(700),
        total: Duration::from_secs(30),
    }
}

fn client(url: &str, backend: &str, headers: &[(&str, &str)]) -> Client {
    client_with(url, backend, headers, timeouts(), "native")
}

fn client_with(
    url: &str,
    backend: &str,
    headers: &[(&str, &str)],
    t: Timeouts,
    http: &str,
) -> Client {
    let mut c = ClientConfig::new(url, Backend::parse(backend).unwrap());
    c.timeouts = t;
    c.http_client = servebench::load::client::HttpClientKind::parse(http).unwrap();
    c.headers = headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Client::new(c).expect("client")
}

fn requests(n: u64, chat: bool) -> Vec<PreparedRequest> {
    (0..n)
        .map(|i| {
            let body = if chat {
                serde_json::json!({"model": "m", "messages": [{"role": "user", "content": format!("q{i}")}],
                    "max_tokens": OUT, "ignore_eos": true, "stream": true,
                    "stream_options": {"include_usage": true}})
            } else {
                serde_json::json!({"model": "m", "prompt": format!("p{i}"), "max_tokens": OUT,
                    "ignore_eos": true, "stream": true, "stream_options": {"include_usage": true}})
            };
            PreparedRequest {
                index: i,
                request_id: format!("r{i}"),
                body: body.to_string().into(),
                stream: true,
                prompt_text: format!("p{i}"),
                prompt_len_intended: None,
                prompt_tokens: Some(4),
                output_len_intended: Some(OUT),
            }
        })
        .collect()
}

/// Runs `n` requests at concurrency 4; returns the records and the run's metrics.
async fn run(client: &Client, n: u64, chat: bool) -> (Vec<RequestRecord>, Metrics, Duration) {
    let (_tx, rx) = tokio::sync::watch::channel(false);
    let cfg = RunConfig {
        max_concurrency: Some(4),
        ..RunConfig::default()
    };
    let t = Instant::now();
    let out = runner::run(client, requests(n, chat), &cfg, Box::new(NullSink), rx)
        .await
        .expect("run");
    let m = compute(&out.records, out.duration_s, ItlRule::PerChunk);
    (out.records, m, t.elapsed())
}

fn reasons(m: &Metrics) -> BTreeMap<String, u64> {
    m.failure_reasons.clone()
}

/// Good requests' numbers: every token counted, latencies from the simulator's fixed timing (medians, with a
/// tolerance for a loaded machine; [`on_time`] checks each chunk exactly).
fn good_numbers_are_right(m: &Metrics, what: &str, timing: bool) {
    assert_eq!(m.total_output, m.completed * OUT, "{what}: output tokens");
    assert_eq!(
        m.itl.count as u64,
        m.completed * (OUT - 1),
        "{what}: ITL count"
    );
    if timing && m.completed > 0 {
        let ttft = m.ttft.median.unwrap();
        let itl = m.itl.median.unwrap();
        assert!(
            (ttft - TTFT_MS).abs() < 2.0 * TOL_MS,
            "{what}: median TTFT {ttft}"
        );
        assert!((itl - ITL_MS).abs() < TOL_MS, "{what}: median ITL {itl}");
    }
}

/// Every chunk of every good request was timed when the simulator sent it (its trace), not an event later
/// (one ITL): robust to a simulator slowed by a loaded machine.
fn on_time(s: &SimServer, records: &[RequestRecord], what: &str) {
    let traces = s.traces();
    for r in records.iter().filter(|r| r.ok()) {
        let t = traces
            .iter()
            .find(|t| t.id == r.request_id)
            .unwrap_or_else(|| panic!("{what}: trace of {}", r.request_id));
        assert_eq!(
            t.chunk_ns.len(),
            r.chunk_ms.len(),
            "{what}: chunks of {r:?}"
        );
        for (k, (&ns, &ms)) in t.chunk_ns.iter().zip(&r.chunk_ms).enumerate() {
            let sent = (ns - t.arrival_ns) as f64 / 1e6;
            assert!(
                (ms - sent).abs() < CHUNK_TOL_MS,
                "{what}: chunk {k} read at {ms:.1} ms, sent at {sent:.1} ms: {r:?}"
            );
        }
    }
}

/// Each fault at rate 0.5 in a run of 12: its failures carry exactly its code; good requests keep their numbers.
async fn rate_case(
    fault: Fault,
    code: Option<&str>,
    timing: bool,
    chat: bool,
) -> Vec<RequestRecord> {
    rate_case_with(fault, code, timing, chat, timeouts(), 12, "native").await
}

async fn rate_case_with(
    fault: Fault,
    code: Option<&str>,
    timing: bool,
    chat: bool,
    t: Timeouts,
    n: u64,
    http: &str,
) -> Vec<RequestRecord> {
    let s = sim(|c| c.faults.set_rate(fault, 0.5)).await;
    let c = client_with(
        &s.base_url(),
        if chat { "vllm-chat" } else { "vllm" },
        &[],
        t,
        http,
    );
    let (records, m, took) = run(&c, n, chat).await;
    let what = format!("{} ({http})", fault.name());
    let what = what.as_str();
    assert_eq!(
        m.completed + m.failed,
        n,
        "{what}: every request is accounted for"
    );
    match code {
        Some(code) => {
            assert!(m.failed >= 1 && m.completed >= 1, "{what}: {m:?}");
            assert_eq!(
                reasons(&m),
                BTreeMap::from([(code.to_string(), m.failed)]),
                "{what}"
            );
            for r in records.iter().filter(|r| !r.ok()) {
                assert!(r.error_ms.is_some() && r.e2e_ms.is_none(), "{what}: {r:?}");
            }
        }
        None => assert_eq!(m.failed, 0, "{what}: {:?}", reasons(&m)),
    }
    good_numbers_are_right(&m, what, timing);
    if timing {
        on_time(&s, &records, what);
    }
    assert!(
        took < Duration::from_secs(60),
        "{what}: the run took {took:?}"
    );
    s.shutdown().await;
    records
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_http_errors_are_classified() {
    for (fault, code) in [
        (Fault::Http500, "http_5xx"),
        (Fault::Http503, "http_5xx"),
        (Fault::Http429, "http_429"),
        (Fault::Http404Model, "http_4xx"),
    ] {
        let recs = rate_case(fault, Some(code), true, false).await;
        if matches!(fault, Fault::Http429 | Fault::Http503) {
            let e = recs.iter().find_map(|r| r.error.clone()).unwrap();
            assert!(e.contains("Retry-After: 1"), "{e}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_broken_streams_are_classified() {
    for (fault, code, chat) in [
        (Fault::ResetMidStream, "reset", false),
        (Fault::StallFirst, "timeout_ttft", false),
        (Fault::StallMid, "timeout_idle", false),
        (Fault::ErrorEvent, "stream_error", true),
        (Fault::MalformedJson, "parse", false),
        (Fault::InvalidUtf8, "parse", false),
        (Fault::WrongContentType, "content_type", false),
    ] {
        rate_case(fault, Some(code), true, chat).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_odd_framing_is_read_right() {
    for (fault, chat) in [
        (Fault::SplitBytes, false),
        (Fault::NoDone, false),
        (Fault::Ping, false),
        (Fault::Crlf, true),
        (Fault::SingleNewline, false),
        (Fault::Bom, false),
    ] {
        rate_case(fault, None, true, chat).await;
    }
    // UTF-8 characters split across reads arrive whole.
    let recs = rate_case(Fault::Utf8Split, None, true, true).await;
    assert!(recs.iter().any(|r| r.generated_text.contains('é')));
    assert!(recs.iter().all(|r| !r.generated_text.contains('\u{FFFD}')));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_one_byte_per_read_and_a_10_mb_event() {
    // One byte a millisecond (or slower on a loaded machine): about 200 bytes before the first token.
    let slow = Timeouts {
        ttft: Duration::from_secs(20),
        idle: Duration::from_secs(20),
        ..timeouts()
    };
    let recs = rate_case_with(Fault::BytePerRead, None, false, false, slow, 12, "native").await;
    assert_eq!(recs.len(), 12);
    assert!(
        recs.iter().any(|r| r.timed_reads > 400),
        "one read per byte"
    );
    // 10 MB take a while to write, read and decode in a debug build on a loaded machine.
    let recs = rate_case_with(Fault::BigEvent, None, false, false, slow, 4, "native").await;
    let big = recs
        .iter()
        .filter(|r| r.generated_text.len() > 10 << 20)
        .count();
    assert!(big >= 1, "some requests carried the 10 MB event");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_done_completes_a_body_that_never_ends() {
    let recs = rate_case(Fault::NoEndAfterDone, None, true, false).await;
    // The end is [DONE]'s arrival (with the last chunk), not the give-up on the rest of the body 100 ms later.
    for r in &recs {
        let e2e = r.e2e_ms.unwrap();
        let last = *r.chunk_ms.last().unwrap();
        assert!(e2e - last < 50.0, "E2E {e2e} vs last chunk {last}: {r:?}");
    }
}

/// Faults named per request with the `x-sim-fault` header, several at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_header_picks_faults_per_request() {
    let s = sim(|_| {}).await;
    let c = client(
        &s.base_url(),
        "vllm",
        &[("x-sim-fault", "crlf,ping,bom,split_bytes")],
    );
    let (_, m, _) = run(&c, 8, false).await;
    assert_eq!((m.completed, m.failed), (8, 0), "{:?}", reasons(&m));
    good_numbers_are_right(&m, "header", true);
    // Every request reset before its headers: failures after at most one re-send, never a hang.
    let c = client(
        &s.base_url(),
        "vllm",
        &[("x-sim-fault", "reset_before_headers")],
    );
    let (recs, m, _) = run(&c, 6, false).await;
    assert_eq!(reasons(&m), BTreeMap::from([("reset".to_string(), 6)]));
    assert!(recs.iter().all(|r| r.retries <= 1), "{recs:?}");
    s.shutdown().await;
}

/// Several faults mixed in one run by rate: each failure has its own code, good requests are timed right.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_mixed_run_completes_with_each_code() {
    let s = sim(|c| {
        c.faults.set_rate(Fault::Http500, 0.15);
        c.faults.set_rate(Fault::Http429, 0.15);
        c.faults.set_rate(Fault::StallMid, 0.15);
        c.faults.set_rate(Fault::ResetBeforeHeaders, 0.1);
        c.faults.set_rate(Fault::Ping, 0.3);
        c.faults.set_rate(Fault::Crlf, 0.3);
    })
    .await;
    let c = client(&s.base_url(), "vllm", &[]);
    let (_, m, took) = run(&c, 40, false).await;
    assert_eq!(m.completed + m.failed, 40);
    let allowed = ["http_5xx", "http_429", "timeout_idle", "reset"];
    for k in reasons(&m).keys() {
        assert!(allowed.contains(&k.as_str()), "{k}: {:?}", reasons(&m));
    }
    assert!(reasons(&m).len() >= 3, "{:?}", reasons(&m));
    good_numbers_are_right(&m, "mixed", true);
    assert!(took < Duration::from_secs(60), "{took:?}");
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_connection_refused_is_connect() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    for http in ["native", "reqwest"] {
        let mut cfg = ClientConfig::new(
            &format!("http://127.0.0.1:{port}"),
            Backend::parse("vllm").unwrap(),
        );
        cfg.http_client = servebench::load::client::HttpClientKind::parse(http).unwrap();
        let c = Client::new(cfg).unwrap();
        let (recs, m, _) = run(&c, 3, false).await;
        assert_eq!(
            reasons(&m),
            BTreeMap::from([("connect".to_string(), 3)]),
            "{http}"
        );
        assert!(
            recs.iter().all(|r| r.retries == 0),
            "{http}: no re-send of a refused connect"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_idle_keepalive_close_is_resent_not_failed() {
    let s = sim(|c| c.faults.close_idle_after_ms = Some(20)).await;
    let c = client(&s.base_url(), "vllm", &[]);
    let (_tx, rx) = tokio::sync::watch::channel(false);
    // Requests 60 ms apart: pooled connections sit idle past the server's 20 ms.
    let cfg = RunConfig {
        request_rate: 16.0,
        burstiness: 1e9,
        max_concurrency: Some(2),
        ..RunConfig::default()
    };
    let out = runner::run(&c, requests(10, false), &cfg, Box::new(NullSink), rx)
        .await
        .unwrap();
    let m = compute(&out.records, out.duration_s, ItlRule::PerChunk);
    assert_eq!((m.completed, m.failed), (10, 0), "{:?}", reasons(&m));
    s.shutdown().await;
}

/// A raw server that answers odd-numbered requests with a short stream and, for even-numbered ones, holds the
/// request 300 ms and closes the connection without answering. Returns its URL and the POST count.
async fn dropping_server() -> (String, std::sync::Arc<std::sync::atomic::AtomicU64>) {
    use std::sync::atomic::{AtomicU64, Ordering};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let posts = std::sync::Arc::new(AtomicU64::new(0));
    let seen = posts.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                loop {
                    // One request: head + Content-Length body.
                    let mut b = [0u8; 4096];
                    let found = loop {
                        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            break Some(p);
                        }
                        match sock.read(&mut b).await {
                            Ok(0) | Err(_) => break None,
                            Ok(n) => buf.extend_from_slice(&b[..n]),
                        }
                    };
                    let Some(p) = found else { return };
                    let head = String::from_utf8_lossy(&buf[..p]).to_ascii_lowercase();
                    let len: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length: "))
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    while buf.len() < p + 4 + len {
                        match sock.read(&mut b).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&b[..n]),
                        }
                    }
                    buf.drain(..p + 4 + len);
                    if !head.starts_with("post") {
                        let _ = sock
                            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}")
                            .await;
                        continue;
                    }
                    let nth = seen.fetch_add(1, Ordering::SeqCst) + 1;
                    if nth.is_multiple_of(2) {
                        tokio::time::sleep(Duration::from_millis(300)).await;
                        return; // dropped unanswered
                    }
                    let ev = |t: &str, fin: &str| {
                        format!("data: {{\"choices\":[{{\"index\":0,\"text\":\"{t}\",\"finish_reason\":{fin}}}]}}\n\n")
                    };
                    let body = format!(
                        "{}{}data: [DONE]\n\n",
                        ev(" a", "null"),
                        ev(" b", "\"length\"")
                    );
                    let resp = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    if sock.write_all(resp.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (url, posts)
}

/// Issue 10 item 5: a request the server received and then dropped is a failure, never silently re-sent, also
/// on a reused keep-alive connection; counted as sglang counts it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_dropped_request_is_a_failure_not_resent() {
    for http in ["native", "reqwest"] {
        let (url, posts) = dropping_server().await;
        let mut cfg = ClientConfig::new(&url, Backend::parse("vllm").unwrap());
        cfg.http_client = servebench::load::client::HttpClientKind::parse(http).unwrap();
        let c = Client::new(cfg).unwrap();
        let (_tx, rx) = tokio::sync::watch::channel(false);
        let run_cfg = RunConfig {
            max_concurrency: Some(1),
            warm_connections: 1,
            ..RunConfig::default()
        };
        let out = runner::run(&c, requests(4, false), &run_cfg, Box::new(NullSink), rx)
            .await
            .unwrap();
        let m = compute(&out.records, out.duration_s, ItlRule::PerChunk);
        assert_eq!((m.completed, m.failed), (2, 2), "{http}: {:?}", reasons(&m));
        assert_eq!(
            reasons(&m),
            BTreeMap::from([("reset".to_string(), 2)]),
            "{http}"
        );
        assert_eq!(
            posts.load(std::sync::atomic::Ordering::SeqCst),
            4,
            "{http}: no re-send"
        );
        assert_eq!(m.retries, 0, "{http}");
        for r in out.records.iter().filter(|r| !r.ok()) {
            let at = r.error_ms.unwrap();
            assert!(
                at >= 290.0,
                "{http}: failed after the server's 300 ms, at {at}"
            );
        }
    }
}

/// `bench` with every stream stalled after its first token: `--duration` stops sending, the requests in flight
/// get `--grace`, then are ended and reported; the run does not wait for the stall (default limits are long).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_duration_ends_stalled_requests_after_grace() {
    let s = crate::common::start_sim("mock", |c| c.faults.set_rate(Fault::StallMid, 1.0)).await;
    let dir = crate::common::tempdir();
    let out = dir.path().join("r.json");
    let url = s.base_url();
    let t = Instant::now();
    let r = crate::common::run_bench(crate::common::bench_args(&[
        "--backend",
        "vllm",
        "--base-url",
        &url,
        "--dataset-name",
        "random",
        "--random-input-len",
        "16",
        "--random-output-len",
        "8",
        "--random-range-ratio",
        "1",
        "--num-prompts",
        "40",
        "--max-concurrency",
        "4",
        "--output-file",
        out.to_str().unwrap(),
        "--disable-tqdm",
        "--warmup-requests",
        "0",
        "--duration",
        "1",
        "--grace",
        "0.5",
    ]))
    .await;
    let took = t.elapsed();
    assert!(
        took < Duration::from_secs(30),
        "the run ended after --duration + --grace, took {took:?}"
    );
    assert_eq!(r["completed"], 0);
    assert_eq!(r["not_finished"], 40, "{r}");
    assert!(
        r["warnings"]
            .to_string()
            .contains("4 requests still in flight"),
        "{}",
        r["warnings"]
    );
    s.shutdown().await;
}

/// The limits are flags of `bench` with their defaults in `--help`; a stall ends with its code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_timeout_flags_classify_stalls() {
    use clap::Parser;
    let help = servebench::cli::Cli::try_parse_from(["servebench", "bench", "--help"])
        .expect_err("help")
        .to_string();
    for (flag, default) in [
        ("--timeout", "21600"),
        ("--connect-timeout", "30"),
        ("--ttft-timeout", "1800"),
        ("--idle-timeout", "300"),
    ] {
        let at = help
            .find(&format!("{flag} <SECS>"))
            .unwrap_or_else(|| panic!("{flag} in --help"));
        let entry = &help[at..];
        let end = entry[2..].find("\n      --").map_or(entry.len(), |e| e + 2);
        assert!(
            entry[..end].contains(&format!("[default: {default}]")),
            "{}",
            &entry[..end]
        );
    }
    let d = Timeouts::default();
    assert_eq!(
        (d.connect, d.ttft, d.idle, d.total),
        (
            Duration::from_secs(30),
            Duration::from_secs(1800),
            Duration::from_secs(300),
            Duration::from_secs(21600)
        )
    );
    assert!(Timeouts::from_secs(30.0, 1.0, f64::NAN, 1.0).is_err());
    assert!(Timeouts::from_secs(30.0, 1.0, 1.0, 1e300).is_err());
    assert!(Timeouts::from_secs(0.0, 1.0, 1.0, 1.0).is_err());

    let s = crate::common::start_sim("mock", |c| {
        c.faults.set_rate(Fault::StallMid, 0.5);
        c.faults.set_rate(Fault::StallFirst, 0.3);
    })
    .await;
    let dir = crate::common::tempdir();
    let out = dir.path().join("r.json");
    let url = s.base_url();
    let r = crate::common::run_bench(crate::common::bench_args(&[
        "--backend",
        "vllm",
        "--base-url",
        &url,
        "--dataset-name",
        "random",
        "--random-input-len",
        "16",
        "--random-output-len",
        "8",
        "--random-range-ratio",
        "1",
        "--num-prompts",
        "16",
        "--max-concurrency",
        "8",
        "--output-file",
        out.to_str().unwrap(),
        "--disable-tqdm",
        "--warmup-requests",
        "0",
        "--idle-timeout",
        "0.4",
        "--ttft-timeout",
        "0.6",
    ]))
    .await;
    let reasons = r["failure_reasons"].as_object().unwrap();
    let mut codes: Vec<&str> = reasons.keys().map(String::as_str).collect();
    codes.sort();
    assert_eq!(codes, ["timeout_idle", "timeout_ttft"], "{reasons:?}");
    assert_eq!(
        r["completed"].as_u64().unwrap() + r["failed"].as_u64().unwrap(),
        16
    );
    assert_eq!(
        r["total_output_tokens"].as_u64().unwrap(),
        r["completed"].as_u64().unwrap() * 8
    );
    s.shutdown().await;
}

/// docs/reliability.md's fault table cannot rot: every test it names exists, and every fault of the simulator's
/// matrix has a row.
#[test]
fn table_names_only_tests_that_exist() {
    let root = crate::common::root();
    let doc =
        std::fs::read_to_string(root.join("docs/reliability.md")).expect("docs/reliability.md");
    let table = doc
        .split("## Fault matrix")
        .nth(1)
        .expect("a '## Fault matrix' section")
        .split("\n## ")
        .next()
        .unwrap();
    let rows: Vec<Vec<&str>> = table
        .lines()
        .filter(|l| l.starts_with('|') && !l.starts_with("|---") && !l.starts_with("| fault"))
        .map(|l| l.trim_matches('|').split(" | ").map(str::trim).collect())
        .collect();
    assert!(rows.len() >= Fault::ALL.len(), "{} rows", rows.len());
    let mut sources = String::new();
    for dir in ["src", "crates", "tests"] {
        collect_rust(&root.join(dir), &mut sources);
    }
    for row in &rows {
        assert_eq!(row.len(), 4, "a row has 4 columns: {row:?}");
        let test = row[3].trim_matches('`');
        assert!(
            !test.is_empty() && sources.contains(&format!("fn {test}(")),
            "docs/reliability.md names test {test:?}, which does not exist"
        );
    }
    for f in Fault::ALL {
        let cell = format!("`{}`", f.name());
        assert!(
            rows.iter().any(|r| r[0] == cell),
            "no row for fault {}",
            f.name()
        );
    }
}

fn collect_rust(dir: &std::path::Path, out: &mut String) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            if p.file_name().is_some_and(|n| n != "target") {
                collect_rust(&p, out);
            }
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push_str(&std::fs::read_to_string(&p).unwrap_or_default());
        }
    }
}

/// A re-sent request keeps its first send time: the server saw the dropped first attempt after the recorded send.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_resent_request_keeps_its_first_send_time() {
    let s = sim(|c| c.faults.close_keepalive = true).await;
    let c = client(&s.base_url(), "vllm", &[]);
    let (recs, m, _) = run(&c, 20, false).await;
    assert_eq!((m.completed, m.failed), (20, 0), "{:?}", reasons(&m));
    let traces = s.traces();
    let mut resent = 0;
    for r in recs.iter().filter(|r| r.retries > 0) {
        let dropped = traces
            .iter()
            .find(|t| {
                t.id == r.request_id && t.status == servebench::sim::TraceStatus::KeepaliveDropped
            })
            .unwrap_or_else(|| panic!("the dropped attempt of {}", r.request_id));
        assert!(
            r.send_unix_ns <= dropped.arrival_ns,
            "send stamped at the first attempt: {} vs first arrival {}",
            r.send_unix_ns,
            dropped.arrival_ns
        );
        resent += 1;
    }
    assert!(
        resent > 0,
        "the server dropped requests on reused connections"
    );
    s.shutdown().await;
}

/// The reqwest client (`https://`, proxies) classifies the same faults the same way, under the same limits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_reqwest_client_classifies_the_same() {
    for (fault, code, chat) in [
        (Fault::StallFirst, Some("timeout_ttft"), false),
        (Fault::StallMid, Some("timeout_idle"), false),
        (Fault::ErrorEvent, Some("stream_error"), true),
        (Fault::WrongContentType, Some("content_type"), false),
        (Fault::Http429, Some("http_429"), false),
        (Fault::NoEndAfterDone, None, false),
        (Fault::SingleNewline, None, false),
    ] {
        rate_case_with(fault, code, true, chat, timeouts(), 12, "reqwest").await;
    }
}
