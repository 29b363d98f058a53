//! `servebench bench` against the simulator.

use crate::common::*;
use servebench::core::result::SGLANG_RESULT_KEYS;

/// `bench` against `url` with a random workload of `n` prompts of `input`/`output` tokens, results in `out`; then
/// the test's own flags.
fn random_bench(
    backend: &str,
    url: &str,
    input: u32,
    output: u32,
    n: u32,
    out: &std::path::Path,
    extra: &[&str],
) -> servebench::cli::bench::Args {
    let (input, output, n) = (input.to_string(), output.to_string(), n.to_string());
    let mut a = vec![
        "--backend",
        backend,
        "--base-url",
        url,
        "--dataset-name",
        "random",
        "--random-input-len",
        &input,
        "--random-output-len",
        &output,
        "--num-prompts",
        &n,
        "--output-file",
        out.to_str().expect("temp paths are UTF-8"),
        "--disable-tqdm",
    ];
    a.extend_from_slice(extra);
    bench_args(&a)
}

fn f(v: &serde_json::Value, k: &str) -> f64 {
    v[k].as_f64()
        .unwrap_or_else(|| panic!("{k} is not a number: {}", v[k]))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exact_token_totals_and_every_sglang_key() {
    let sim = start_sim("fast", |_| {}).await;
    let dir = tempdir();
    let out = dir.path().join("r.json");
    let url = sim.base_url();
    let args = bench_args(&[
        "--backend",
        "sglang",
        "--base-url",
        &url,
        "--dataset-name",
        "random",
        "--random-input",
        "512",
        "--random-output",
        "128",
        "--random-range-ratio",
        "1.0",
        "--num-prompts",
        "100",
        "--max-concurrency",
        "16",
        "--output-file",
        out.to_str().unwrap(),
        "--output-details",
        "--disable-tqdm",
    ]);
    let r = run_bench(args).await;
    assert_eq!(r["completed"], 100);
    assert_eq!(r["failed"], 0);
    assert_eq!(r["total_input_tokens"], 100 * 512);
    assert_eq!(r["total_output_tokens"], 100 * 128);
    assert_eq!(
        r["total_output_tokens_retokenized"],
        100 * 128,
        "sim words re-tokenize 1:1"
    );
    assert_eq!(
        r["prompt_token_mismatches"], 0,
        "sim counted prompts with the same tokenizer"
    );
    assert_eq!(r["output_token_sources"]["usage"], 100);
    for k in SGLANG_RESULT_KEYS {
        assert!(r.get(*k).is_some(), "missing key {k}");
    }
    assert_eq!(r["max_concurrency"], 16);
    assert_eq!(r["simulated"], true);
    assert!(f(&r, "concurrency") > 1.0 && f(&r, "concurrency") <= 16.5);
    // The file: one strict JSON line, and 100 per-request records.
    let lines = read_lines(&out);
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["completed"], 100);
    assert_eq!(lines[0]["input_lens"].as_array().unwrap().len(), 100);
    let details = read_lines(&dir.path().join("r.details.jsonl"));
    assert_eq!(details.len(), 100);
    for d in &details {
        assert_eq!(d["prompt_tokens"], 512);
        assert_eq!(d["output_tokens"], 128);
        assert_eq!(d["chunk_ms"].as_array().unwrap().len(), 128);
        assert!(
            d["prompt"].as_str().unwrap().len() >= 512,
            "at least a character a token"
        );
    }
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latencies_match_the_simulators_fixed_timing() {
    // mock preset: TTFT 50 ms, ITL 10 ms per request, no batching effects.
    let sim = start_sim("mock", |_| {}).await;
    let dir = tempdir();
    let out = dir.path().join("r.json");
    let url = sim.base_url();
    let r = run_bench(random_bench(
        "sglang-oai-chat",
        &url,
        200,
        21,
        40,
        &out,
        &["--random-range-ratio", "1", "--max-concurrency", "8"],
    ))
    .await;
    assert_eq!(r["completed"], 40);
    let ttft = f(&r, "median_ttft_ms");
    let tpot = f(&r, "median_tpot_ms");
    let itl = f(&r, "median_itl_ms");
    // The simulator starts its 50 ms after counting the prompt (a tokenizer call, slow in debug builds).
    assert!((49.5..75.0).contains(&ttft), "median TTFT {ttft} vs 50");
    assert!((tpot - 10.0).abs() < 1.5, "median TPOT {tpot} vs 10");
    assert!((itl - 10.0).abs() < 1.5, "median ITL {itl} vs 10");
    // 20 gaps per request
    assert_eq!(r["itl_count"], 40 * 20);
    let e2e = f(&r, "median_e2e_latency_ms");
    assert!((e2e - 250.0).abs() < 20.0, "E2E {e2e} vs 50 + 20×10");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_failures_are_counted_and_the_run_goes_on() {
    // Both HTTP clients: the native one (default on http://) and reqwest (TLS, proxies).
    for client in ["native", "reqwest"] {
        let sim = start_sim("fast", |c| {
            c.faults.fail_rate = 0.2;
            c.faults.disconnect_rate = 0.1;
            c.faults.malformed_rate = 0.1;
        })
        .await;
        let dir = tempdir();
        let out = dir.path().join("r.json");
        let url = sim.base_url();
        let r = run_bench(random_bench(
            "vllm",
            &url,
            64,
            16,
            200,
            &out,
            &[
                "--random-range-ratio",
                "1",
                "--max-concurrency",
                "8",
                "--warmup-requests",
                "0",
                "--http-client",
                client,
            ],
        ))
        .await;
        let completed = r["completed"].as_u64().unwrap();
        let failed = r["failed"].as_u64().unwrap();
        assert_eq!(completed + failed, 200);
        // ~ 1 - 0.8*0.9*0.9 = 35% fail
        assert!((40..=110).contains(&failed), "failed {failed}");
        // One reason code per cause, whatever the messages and times.
        let reasons = r["failure_reasons"].as_object().unwrap();
        let mut codes: Vec<&str> = reasons.keys().map(String::as_str).collect();
        codes.sort();
        assert_eq!(codes, ["http_5xx", "parse", "reset"], "{reasons:?}");
        // Latency statistics only from successes.
        assert_eq!(r["itl_count"].as_u64().unwrap(), completed * 15);
        sim.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strict_server_needs_ignore_eos_omitted_and_counts_come_from_the_tokenizer() {
    let sim = start_sim("fast", |c| c.strict_openai = true).await;
    let dir = tempdir();
    let url = sim.base_url();
    let out = dir.path().join("a.json");
    // With ignore_eos every request is refused (422); the warm-up says so.
    let (_tx, rx) = tokio::sync::watch::channel(false);
    let err =
        servebench::cli::bench::execute(random_bench("openai", &url, 32, 8, 4, &out, &[]), rx)
            .await
            .expect_err("422 everywhere");
    assert!(format!("{err:#}").contains("422"), "{err:#}");
    let r = run_bench(random_bench(
        "openai",
        &url,
        32,
        8,
        10,
        &out,
        &["--random-range-ratio", "1", "--disable-ignore-eos"],
    ))
    .await;
    assert_eq!(r["completed"], 10);
    assert_eq!(r["output_token_sources"]["tokenizer"], 10);
    assert_eq!(r["total_output_tokens"], 80);
    assert!(r["warnings"].to_string().contains("no usage"));
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reused_connections_closed_by_the_server_are_retried() {
    // Both HTTP clients: the native one (default on http://) and reqwest (TLS, proxies).
    for client in ["native", "reqwest"] {
        let sim = start_sim("fast", |c| c.faults.close_keepalive = true).await;
        let dir = tempdir();
        let out = dir.path().join("r.json");
        let url = sim.base_url();
        let r = run_bench(random_bench(
            "sglang",
            &url,
            32,
            4,
            30,
            &out,
            &["--max-concurrency", "2", "--http-client", client],
        ))
        .await;
        assert_eq!(r["failed"], 0, "{client}: {}", r["failure_reasons"]);
        assert_eq!(r["http_client"], client);
        assert_eq!(r["completed"], 30);
        assert!(
            r["retries"].as_u64().unwrap() > 0,
            "the server closed reused connections"
        );
        sim.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_loop_rate_is_kept_and_lag_is_reported() {
    let sim = start_sim("fast", |_| {}).await;
    let dir = tempdir();
    let out = dir.path().join("r.json");
    let url = sim.base_url();
    let r = run_bench(random_bench(
        "sglang",
        &url,
        32,
        4,
        60,
        &out,
        &["--request-rate", "60", "--seed", "3"],
    ))
    .await;
    assert_eq!(r["completed"], 60);
    assert_eq!(r["request_rate"], 60.0);
    let d = f(&r, "duration");
    assert!(d > 0.5 && d < 2.0, "60 requests at 60/s took {d} s");
    assert!(f(&r, "p99_send_lag_ms") < 50.0);
    assert!(r.get("median_ttft_from_scheduled_ms").is_some());
    sim.shutdown().await;
}

/// With kernel timestamps the event-loop lag is the wait of reads; without, the ticker's (a timer's lateness).
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_loop_lag_comes_from_reads_where_they_carry_kernel_times() {
    let sim = start_sim("mock", |_| {}).await;
    let dir = tempdir();
    let out = dir.path().join("r.json");
    let url = sim.base_url();
    for (extra, source) in [
        (None, "reads"),
        (Some("--read-timestamps"), "ticker"),
        (Some("--http-client=reqwest"), "ticker"),
    ] {
        let mut args = vec!["--random-range-ratio", "1", "--max-concurrency", "4"];
        args.extend(extra);
        let r = run_bench(random_bench("sglang-oai", &url, 32, 10, 20, &out, &args)).await;
        assert_eq!(r["completed"], 20, "{extra:?}");
        assert_eq!(r["client_lag_source"], source, "{extra:?}");
        // Samples either way (how large depends on the machine's load: no bound here).
        let p99 = f(&r, "p99_client_lag_ms");
        assert!(p99 >= 0.0, "{extra:?}: lag p99 {p99} ms");
        // The reads' samples are some of the waits whose longest the result reports.
        if source == "reads" {
            assert!(p99 <= f(&r, "max_client_read_delay_ms"), "{r}");
        }
    }
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_timestamps_are_close_to_the_simulators_truth() {
    let sim = start_sim("mock", |_| {}).await;
    let dir = tempdir();
    let out = dir.path().join("r.json");
    let url = sim.base_url();
    let args = random_bench(
        "sglang-oai",
        &url,
        64,
        10,
        20,
        &out,
        &[
            "--random-range-ratio",
            "1",
            "--max-concurrency",
            "4",
            "--output-details",
        ],
    );
    run_bench(args).await;
    let details = read_lines(&dir.path().join("r.details.jsonl"));
    let traces = sim.traces();
    let mut errors = Vec::new();
    for d in &details {
        let id = d["request_id"].as_str().unwrap();
        let t = traces
            .iter()
            .find(|t| t.id == id)
            .unwrap_or_else(|| panic!("trace of {id}"));
        let send = d["send_unix_ns"].as_u64().unwrap() as f64;
        let chunks = d["chunk_ms"].as_array().unwrap();
        assert_eq!(chunks.len(), t.chunk_ns.len());
        for (c, truth) in chunks.iter().zip(&t.chunk_ns) {
            let client_ns = send + c.as_f64().unwrap() * 1e6;
            errors.push((client_ns - *truth as f64) / 1e6);
        }
    }
    errors.sort_by(|a, b| a.total_cmp(b));
    let median = errors[errors.len() / 2];
    // The client sees a chunk after the server wrote it: error ≥ ~0 and small on loopback.
    assert!(
        median > -1.0 && median < 5.0,
        "median client-vs-truth error {median} ms"
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_keeps_what_finished() {
    let sim = start_sim("mock", |_| {}).await;
    let dir = tempdir();
    let out = dir.path().join("r.json");
    let url = sim.base_url();
    let args = random_bench(
        "sglang",
        &url,
        32,
        50,
        200,
        &out,
        &[
            "--random-range-ratio",
            "1",
            "--max-concurrency",
            "4",
            "--grace",
            "0.2",
            "--output-details",
        ],
    );
    let (tx, rx) = tokio::sync::watch::channel(false);
    let traces_url = format!("{url}/sim/traces");
    tokio::spawn(async move {
        // Stop once the timed run has finished a few requests (warm-up is 1 request).
        servebench::load::ensure_tls_provider();
        let http = reqwest::Client::new();
        loop {
            let n = match http.get(&traces_url).send().await {
                Ok(r) => r.text().await.unwrap_or_default().lines().count(),
                Err(_) => 0,
            };
            if n >= 6 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let _ = tx.send(true);
    });
    let r = servebench::cli::bench::execute(args, rx)
        .await
        .unwrap()
        .result;
    // Each request takes ~50 + 49×10 ms = 0.54 s, 4 at a time: the stop comes after ~5 finished.
    let done = r["completed"].as_u64().unwrap();
    assert!((4..=16).contains(&done), "completed {done}");
    assert_eq!(r["interrupted"], true);
    assert_eq!(r["failed"], 0, "requests cut by the stop are not failures");
    assert_eq!(read_lines(&out).len(), 1, "the result is still written");
    assert_eq!(
        read_lines(&dir.path().join("r.details.jsonl")).len() as u64,
        done
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts_are_failures_with_a_reason() {
    // Both HTTP clients: the native one (default on http://) and reqwest (TLS, proxies).
    for client in ["native", "reqwest"] {
        // mock: 50 ms to the first token, 10 ms a token: 40 tokens take ~0.44 s, more than the 0.2 s timeout.
        let sim = start_sim("mock", |_| {}).await;
        let dir = tempdir();
        let out = dir.path().join("r.json");
        let url = sim.base_url();
        let r = run_bench(random_bench(
            "openai",
            &url,
            16,
            40,
            6,
            &out,
            &[
                "--random-range-ratio",
                "1",
                "--timeout",
                "0.2",
                "--warmup-requests",
                "0",
                "--http-client",
                client,
            ],
        ))
        .await;
        assert_eq!(r["failed"], 6);
        assert_eq!(r["completed"], 0);
        assert_eq!(
            r["failure_reasons"],
            serde_json::json!({"timeout_total": 6}),
            "{client}"
        );
        // No latency statistics from failures: sglang's keys hold its 0.0 for no data, servebench's null.
        assert_eq!(r["mean_ttft_ms"], 0.0);
        assert!(r["mean_ttft_any_ms"].is_null());
        assert!(r["mean_e2e_latency_ms"].is_null());
        assert_eq!(r["itl_count"], 0);
        sim.shutdown().await;
    }
}

/// The two HTTP clients measure the same run the same way: same tokens, same chunk counts, latencies alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_and_reqwest_clients_agree() {
    let sim = start_sim("mock", |_| {}).await;
    let url = sim.base_url();
    let dir = tempdir();
    let mut results = Vec::new();
    for (backend, client) in [
        ("vllm", "native"),
        ("vllm", "reqwest"),
        ("vllm-chat", "native"),
        ("vllm-chat", "reqwest"),
        ("sglang", "native"),
        ("sglang", "reqwest"),
    ] {
        let out = dir.path().join(format!("{backend}-{client}.json"));
        let r = run_bench(random_bench(
            backend,
            &url,
            48,
            12,
            16,
            &out,
            &[
                "--random-range-ratio",
                "1",
                "--max-concurrency",
                "4",
                "--http-client",
                client,
            ],
        ))
        .await;
        assert_eq!(r["http_client"], client);
        assert_eq!(
            r["completed"], 16,
            "{backend} {client}: {}",
            r["failure_reasons"]
        );
        assert_eq!(r["total_input_tokens"], 16 * 48);
        assert_eq!(r["total_output_tokens"], 16 * 12);
        assert_eq!(r["itl_count"].as_u64(), Some(16 * 11));
        results.push(r);
    }
    for pair in results.chunks(2) {
        let (a, b) = (&pair[0], &pair[1]);
        // mock: 50 ms to the first token, then 10 ms a token.
        for k in ["median_ttft_ms", "median_itl_ms", "median_tpot_ms"] {
            let (x, y) = (f(a, k), f(b, k));
            assert!((x - y).abs() < 5.0, "{k}: native {x} vs reqwest {y}");
        }
        assert_eq!(
            a["total_output_tokens_retokenized"],
            b["total_output_tokens_retokenized"]
        );
    }
    sim.shutdown().await;
}

#[test]
fn native_client_refuses_https() {
    let err = servebench::load::client::Client::new({
        let mut c = servebench::load::client::ClientConfig::new(
            "https://example.invalid",
            servebench::core::api::Backend::parse("vllm").unwrap(),
        );
        c.http_client = servebench::load::client::HttpClientKind::Native;
        c
    })
    .unwrap_err();
    assert!(err.to_string().contains("plain http://"), "{err}");
    assert!(servebench::load::client::HttpClientKind::parse("curl").is_err());
}

/// Pinned to one CPU (`taskset -c 0`, as the client-speed benchmarks run it) the commands run on a
/// current-thread runtime (`cli::runtime`): everything a request does must still make progress there (no
/// `block_in_place`, nothing that waits on another runtime thread). Skipped where `taskset` is missing.
#[test]
fn bench_and_sweep_complete_on_one_cpu() {
    use crate::common::run_limited;
    if std::process::Command::new("taskset")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("taskset not found: skipped");
        return;
    }
    let dir = tempdir();
    let out = dir.path().join("one.jsonl");
    let one_cpu = |args: &[&str]| {
        let mut c = std::process::Command::new("taskset");
        c.args(["-c", "0", env!("CARGO_BIN_EXE_servebench")])
            .args(args)
            .env_remove("OPENAI_API_KEY")
            .env_remove("RUST_LOG")
            .stdin(std::process::Stdio::null());
        run_limited(c, std::time::Duration::from_secs(120))
    };
    let bench = one_cpu(&[
        "bench",
        "--sim",
        "fast",
        "--dataset-name",
        "random",
        "--num-prompts",
        "40",
        "--max-concurrency",
        "8",
        "--random-input-len",
        "32",
        "--random-output-len",
        "16",
        "--random-range-ratio",
        "1",
        "--output-file",
        out.to_str().unwrap(),
        "--disable-tqdm",
    ]);
    assert!(
        bench.status.success(),
        "{}",
        String::from_utf8_lossy(&bench.stderr)
    );
    let r = &crate::common::read_lines(&out)[0];
    assert_eq!(r["completed"], 40);
    assert_eq!(r["total_output_tokens"], 40 * 16);
    assert_eq!(r["total_output_tokens_retokenized"], 40 * 16);
    let sweep_dir = dir.path().join("sweep");
    let sweep = one_cpu(&[
        "sweep",
        "--sim",
        "fast",
        "--input-output",
        "32:8",
        "--concurrency",
        "1,4",
        "--range-ratio",
        "1",
        "--output-dir",
        sweep_dir.to_str().unwrap(),
    ]);
    assert!(
        sweep.status.success(),
        "{}",
        String::from_utf8_lossy(&sweep.stderr)
    );
    let summary = std::fs::read_to_string(sweep_dir.join("summary.csv")).expect("summary.csv");
    assert_eq!(summary.lines().count(), 3, "{summary}");
}
