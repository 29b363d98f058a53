//! Several `--base-url`s (data-parallel replicas without a load balancer): dispatch, per-endpoint statistics,
//! the slow-endpoint warning, and the checks made before any work starts.

use crate::common::*;
use servebench::sim::{FixedLatency, SimServer};
use std::collections::BTreeSet;

/// A simulator with fixed latencies (no batching interaction): its TTFT and inter-token gap, in ms.
async fn replica(ttft_ms: f64, itl_ms: f64) -> SimServer {
    start_sim("mock", |c| {
        c.fixed_latency = Some(FixedLatency { ttft_ms, itl_ms })
    })
    .await
}

/// `bench` with a random workload of `n` prompts of 16 output tokens against every URL in `urls`, then `extra`.
fn multi_bench(
    urls: &[String],
    n: u32,
    out: &std::path::Path,
    extra: &[&str],
) -> servebench::cli::bench::Args {
    let n = n.to_string();
    let mut a: Vec<&str> = Vec::new();
    for u in urls {
        a.extend(["--base-url", u.as_str()]);
    }
    a.extend([
        "--dataset-name",
        "random",
        "--random-input-len",
        "32",
        "--random-output-len",
        "16",
        "--random-range-ratio",
        "1",
        "--num-prompts",
        &n,
        "--output-file",
        out.to_str().expect("temp paths are UTF-8"),
        "--output-details",
        "--disable-tqdm",
    ]);
    a.extend_from_slice(extra);
    bench_args(&a)
}

fn endpoint_counts(r: &serde_json::Value) -> Vec<(u64, u64)> {
    r["endpoints"]
        .as_array()
        .expect("endpoints list")
        .iter()
        .map(|e| {
            (
                e["completed"].as_u64().expect("completed"),
                e["failed"].as_u64().expect("failed"),
            )
        })
        .collect()
}

fn warnings(r: &serde_json::Value) -> Vec<String> {
    r["warnings"]
        .as_array()
        .map(|w| {
            w.iter()
                .map(|s| s.as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

fn keys(r: &serde_json::Value) -> BTreeSet<String> {
    r.as_object().expect("object").keys().cloned().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_robin_over_three_with_one_slow_splits_exactly_and_warns() {
    let (a, b) = (replica(5.0, 1.0).await, replica(5.0, 1.0).await);
    let slow = replica(60.0, 8.0).await;
    let urls = vec![a.base_url(), b.base_url(), slow.base_url()];
    let dir = tempdir();
    let out = dir.path().join("r.json");
    let r = run_bench(multi_bench(
        &urls,
        60,
        &out,
        &["--dispatch", "round-robin", "--max-concurrency", "6"],
    ))
    .await;
    // Pooled numbers as for one endpoint; per endpoint exactly a third each, summing to the pool.
    assert_eq!(r["completed"], 60);
    assert_eq!(r["failed"], 0);
    assert_eq!(r["dispatch"], "round-robin");
    assert_eq!(endpoint_counts(&r), vec![(20, 0), (20, 0), (20, 0)]);
    let eps = r["endpoints"].as_array().unwrap();
    for (i, e) in eps.iter().enumerate() {
        assert_eq!(e["index"], i);
        assert_eq!(e["url"], urls[i].as_str());
    }
    let sum_tput: f64 = eps
        .iter()
        .map(|e| e["request_throughput"].as_f64().unwrap())
        .sum();
    let pooled = r["request_throughput"].as_f64().unwrap();
    assert!(
        (sum_tput - pooled).abs() < 1e-6 * pooled,
        "{sum_tput} vs {pooled}"
    );
    // The slow replica's own TTFT and TPOT show it; the fast ones' do not.
    let med = |i: usize, k: &str| eps[i][k].as_f64().unwrap();
    assert!(med(2, "median_ttft_ms") >= 60.0, "{}", eps[2]);
    assert!(med(0, "median_ttft_ms") < 40.0, "{}", eps[0]);
    // Fixed 8 ms gaps against 1 ms (the simulator's steps may land a few µs early).
    assert!(med(2, "median_tpot_ms") > 7.0, "{}", eps[2]);
    assert!(med(1, "median_tpot_ms") < 4.0, "{}", eps[1]);
    // The pooled median TTFT is a fast one's (two thirds of the requests).
    assert!(r["median_ttft_ms"].as_f64().unwrap() < 40.0);
    // The warning names the slow endpoint only.
    let w = warnings(&r);
    let slow_w: Vec<&String> = w.iter().filter(|s| s.contains("much slower")).collect();
    assert_eq!(slow_w.len(), 1, "{w:?}");
    assert!(
        slow_w[0].starts_with(&format!("endpoint 2 ({})", urls[2])),
        "{}",
        slow_w[0]
    );
    // Every per-request record says where it went; round-robin in send order.
    let details = read_lines(&dir.path().join("r.details.jsonl"));
    assert_eq!(details.len(), 60);
    let mut per = [0u32; 3];
    for d in &details {
        per[d["endpoint"].as_u64().expect("endpoint index") as usize] += 1;
    }
    assert_eq!(per, [20, 20, 20]);
    // The file holds the same object.
    assert_eq!(read_lines(&out)[0]["endpoints"], r["endpoints"]);
    for s in [a, b, slow] {
        s.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn least_outstanding_sends_fewer_to_the_slow_endpoint() {
    let (a, b) = (replica(5.0, 1.0).await, replica(5.0, 1.0).await);
    let slow = replica(60.0, 8.0).await;
    let urls = vec![a.base_url(), b.base_url(), slow.base_url()];
    let dir = tempdir();
    let out = dir.path().join("r.json");
    let r = run_bench(multi_bench(&urls, 90, &out, &["--max-concurrency", "6"])).await;
    assert_eq!(r["dispatch"], "least-outstanding", "the default");
    assert_eq!(r["completed"], 90);
    let c = endpoint_counts(&r);
    assert_eq!(c.iter().map(|(ok, f)| ok + f).sum::<u64>(), 90);
    // The slow one (e2e ~180 ms against ~20 ms) keeps its requests in flight longer, so it gets fewer than
    // either fast one (round-robin would give 30 each).
    assert!(c[2].0 < c[0].0 && c[2].0 < c[1].0, "{c:?}");
    assert!(c[2].0 < 30, "{c:?}");
    for s in [a, b, slow] {
        s.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn equal_endpoints_raise_no_warning_and_one_endpoint_keeps_its_keys() {
    let (a, b) = (replica(30.0, 3.0).await, replica(30.0, 3.0).await);
    let urls = vec![a.base_url(), b.base_url()];
    let dir = tempdir();
    let two = run_bench(multi_bench(
        &urls,
        40,
        &dir.path().join("two.json"),
        &["--max-concurrency", "4", "--dispatch", "round-robin"],
    ))
    .await;
    assert_eq!(endpoint_counts(&two), vec![(20, 0), (20, 0)]);
    let w = warnings(&two);
    assert!(!w.iter().any(|s| s.contains("much slower")), "{w:?}");

    let one = run_bench(multi_bench(
        &urls[..1],
        40,
        &dir.path().join("one.json"),
        &["--max-concurrency", "4"],
    ))
    .await;
    assert_eq!(one["completed"], 40);
    // One endpoint: no new key in the result or in the records; several: exactly `endpoints` and `dispatch` more.
    assert!(one.get("endpoints").is_none() && one.get("dispatch").is_none());
    let added: BTreeSet<String> = keys(&two).difference(&keys(&one)).cloned().collect();
    assert_eq!(
        added,
        ["dispatch", "endpoints"]
            .map(String::from)
            .into_iter()
            .collect()
    );
    assert!(keys(&one).is_subset(&keys(&two)));
    let details = read_lines(&dir.path().join("one.details.jsonl"));
    assert!(details.iter().all(|d| d.get("endpoint").is_none()));
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_that_is_down_is_named_before_any_work() {
    let a = replica(5.0, 1.0).await;
    // A port nothing listens on.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let urls = vec![a.base_url(), dead.clone()];
    let dir = tempdir();
    let out = dir.path().join("r.json");
    let (_tx, rx) = tokio::sync::watch::channel(false);
    let err = servebench::cli::bench::execute(multi_bench(&urls, 10, &out, &[]), rx)
        .await
        .expect_err("an endpoint is down");
    let msg = format!("{err:#}");
    assert!(msg.contains(&format!("endpoint 1 ({dead})")), "{msg}");
    assert!(!out.exists(), "nothing ran");
    // The same endpoint twice is refused too.
    let (_tx, rx) = tokio::sync::watch::channel(false);
    let twice = vec![a.base_url(), a.base_url()];
    let err = servebench::cli::bench::execute(multi_bench(&twice, 10, &out, &[]), rx)
        .await
        .expect_err("a repeated endpoint");
    assert!(format!("{err:#}").contains("given twice"), "{err:#}");
    a.shutdown().await;
}

/// Prediction rows by (id, sample), without what depends on timing or on the endpoint.
fn comparable(rows: Vec<serde_json::Value>) -> Vec<serde_json::Value> {
    let mut rows: Vec<serde_json::Value> = rows
        .into_iter()
        .map(|mut r| {
            let o = r.as_object_mut().expect("row object");
            o.remove("latency_ms");
            o.remove("endpoint");
            r
        })
        .collect();
    rows.sort_by_key(|r| {
        (
            r["id"].as_str().unwrap_or_default().to_string(),
            r["sample"].as_u64(),
        )
    });
    rows
}

async fn eval_sim() -> SimServer {
    let key = root().join("data/math500/test.jsonl");
    start_sim("fast", |c| {
        c.answer_key_files = vec![key];
        c.accuracy = 0.8;
        c.seed = 3;
    })
    .await
}

async fn eval_at(urls: &[String], limit: &str, out: &std::path::Path, extra: &[&str]) {
    let data = root().join("data");
    let mut argv = vec!["servebench", "eval"];
    for u in urls {
        argv.extend(["--base-url", u.as_str()]);
    }
    argv.extend([
        "--datasets",
        "math500",
        "--data-dir",
        data.to_str().unwrap(),
        "--limit",
        limit,
        "--concurrency",
        "8",
        "--temperature",
        "0",
        "--output-dir",
        out.to_str().unwrap(),
        "--json",
    ]);
    argv.extend_from_slice(extra);
    let args = match <servebench::cli::Cli as clap::Parser>::try_parse_from(argv)
        .expect("valid eval flags")
        .command
    {
        servebench::cli::Command::Eval(a) => *a,
        _ => unreachable!(),
    };
    let (_tx, rx) = tokio::sync::watch::channel(false);
    servebench::cli::eval::execute(args, rx)
        .await
        .expect("eval runs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eval_across_endpoints_gives_the_predictions_of_one_and_resumes() {
    // Three replicas of one model (same seed): the simulator without a request seed numbers repeats of a
    // question as further samples, so the single-endpoint run gets its own replica, as a fresh server would be.
    let (single, a, b) = (eval_sim().await, eval_sim().await, eval_sim().await);
    let dir = tempdir();
    let (one_dir, two_dir) = (dir.path().join("one"), dir.path().join("two"));
    eval_at(&[single.base_url()], "40", &one_dir, &[]).await;
    // Across two endpoints, stopped after 20 items and resumed to 40 (the resume goes over both again).
    let urls = vec![a.base_url(), b.base_url()];
    eval_at(&urls, "20", &two_dir, &["--dispatch", "round-robin"]).await;
    eval_at(&urls, "40", &two_dir, &["--dispatch", "round-robin"]).await;
    let one = read_lines(&one_dir.join("math500_predictions.jsonl"));
    let two = read_lines(&two_dir.join("math500_predictions.jsonl"));
    assert_eq!(two.len(), 40);
    assert!(one.iter().all(|r| r.get("endpoint").is_none()));
    let mut per = [0u32; 2];
    for r in &two {
        per[r["endpoint"].as_u64().expect("endpoint index") as usize] += 1;
    }
    assert_eq!(per, [20, 20], "round-robin, 10 + 10 in each run");
    assert!(
        one.iter().any(|r| r["correct"] == false),
        "a score below 1, so the comparison covers wrong answers too"
    );
    let (one, two) = (comparable(one), comparable(two));
    assert_eq!(one.len(), two.len());
    for (x, y) in one.iter().zip(&two) {
        for (k, v) in x.as_object().unwrap() {
            assert_eq!(v, &y[k], "{} {k}", x["id"]);
        }
        assert_eq!(x, y);
    }
    let report: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(two_dir.join("math500_report.json")).unwrap(),
    )
    .unwrap();
    let text = report.to_string();
    assert!(
        text.contains("\"base_urls\"") && text.contains("round-robin"),
        "{text}"
    );
    for s in [single, a, b] {
        s.shutdown().await;
    }
}

fn sweep_args(argv: &[&str]) -> servebench::cli::sweep::Args {
    let mut v = vec!["servebench", "sweep"];
    v.extend_from_slice(argv);
    match <servebench::cli::Cli as clap::Parser>::try_parse_from(v)
        .expect("valid sweep flags")
        .command
    {
        servebench::cli::Command::Sweep(a) => *a,
        _ => unreachable!(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sweep_spreads_every_point_over_the_endpoints() {
    use servebench::cli::sweep::{finished_result, plan_of, sweep};
    let (a, b) = (replica(5.0, 1.0).await, replica(5.0, 1.0).await);
    let dir = tempdir();
    let out = dir.path().join("sweep");
    let (ua, ub) = (a.base_url(), b.base_url());
    let args = sweep_args(&[
        "--base-url",
        &ua,
        "--base-url",
        &ub,
        "--dispatch",
        "round-robin",
        "--input-output",
        "64:8",
        "--concurrency",
        "2,4",
        "--num-prompts",
        "4x",
        "--output-dir",
        out.to_str().unwrap(),
    ]);
    let plan = plan_of(&args).unwrap();
    assert_eq!(plan.target.more_base_urls, vec![ub.clone()]);
    let points = plan.points().unwrap();
    let (_tx, rx) = tokio::sync::watch::channel(false);
    let s = sweep(&plan, &points, false, None, rx).await.unwrap();
    assert_eq!((s.run, s.failed), (2, 0));
    for p in &points {
        let r = finished_result(p).expect("point written");
        let n = 4 * p.concurrency as u64;
        assert_eq!(r["completed"], n);
        assert_eq!(r["dispatch"], "round-robin");
        assert_eq!(endpoint_counts(&r), vec![(n / 2, 0), (n / 2, 0)]);
        assert_eq!(r["endpoints"][1]["url"], ub.as_str());
    }

    // A plan naming more endpoints than answer: the point fails, naming the one that is down.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let args = sweep_args(&[
        "--base-url",
        &ua,
        "--base-url",
        &dead,
        "--input-output",
        "64:8",
        "--concurrency",
        "2",
        "--num-prompts",
        "2x",
        "--no-health-check",
        "--output-dir",
        dir.path().join("dead").to_str().unwrap(),
    ]);
    let plan = plan_of(&args).unwrap();
    let points = plan.points().unwrap();
    // The failure log goes into the output folder (made by the first point written, here none).
    std::fs::create_dir_all(dir.path().join("dead")).unwrap();
    let (_tx, rx) = tokio::sync::watch::channel(false);
    let s = sweep(&plan, &points, false, None, rx).await.unwrap();
    assert_eq!((s.run, s.failed), (0, 1));
    let log = std::fs::read_dir(dir.path().join("dead"))
        .unwrap()
        .filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
        .collect::<String>();
    assert!(log.contains(&format!("endpoint 1 ({dead})")), "{log}");
    a.shutdown().await;
    b.shutdown().await;
}

#[test]
fn plans_name_more_endpoints_for_sweep_and_eval() {
    let w = servebench::run_plan::Workflow::from_toml(
        r#"output_dir = "out"
[target]
base_url = "http://127.0.0.1:1"
more_base_urls = ["http://127.0.0.1:2", "http://127.0.0.1:3/"]
dispatch = "round-robin"
[eval]
args = ["--datasets", "gsm8k"]
[sweep]
axes = { input_output = ["64:8"], concurrency = [1] }
"#,
        std::path::Path::new("."),
    )
    .expect("plan parses");
    let argv = w.eval_argv(false).expect("eval");
    let urls: Vec<&String> = argv
        .iter()
        .zip(argv.iter().skip(1))
        .filter(|(f, _)| f.as_str() == "--base-url")
        .map(|(_, u)| u)
        .collect();
    assert_eq!(
        urls,
        [
            "http://127.0.0.1:1",
            "http://127.0.0.1:2",
            "http://127.0.0.1:3/"
        ]
    );
    assert!(argv.windows(2).any(|p| p == ["--dispatch", "round-robin"]));
    let plan = w.sweep_plan().expect("sweep");
    let c = servebench::cli::sweep::base_config(&plan, "http://127.0.0.1:1", None).unwrap();
    assert_eq!(
        c.endpoints(),
        [
            "http://127.0.0.1:1",
            "http://127.0.0.1:2",
            "http://127.0.0.1:3"
        ]
    );
    assert_eq!(c.dispatch, servebench::load::dispatch::Dispatch::RoundRobin);
    // More endpoints without a first one, or an unknown rule, are refused.
    let bad = servebench::sweep_plan::Plan::from_toml(
        "[target]\nmore_base_urls = [\"http://127.0.0.1:2\"]\nsim = \"fast\"\n[axes]\ninput_output = [\"64:8\"]\nconcurrency = [1]\n",
    )
    .unwrap();
    assert!(bad
        .points()
        .unwrap_err()
        .to_string()
        .contains("more_base_urls needs base_url"));
    let mut odd = plan.clone();
    odd.target.dispatch = Some("random".into());
    let e = servebench::cli::sweep::base_config(&odd, "http://127.0.0.1:1", None).unwrap_err();
    assert!(
        format!("{e:#}").contains("round-robin or least-outstanding"),
        "{e:#}"
    );
}

#[test]
fn capacity_runs_take_every_endpoint() {
    let argv = [
        "servebench",
        "capacity",
        "--base-url",
        "http://127.0.0.1:1",
        "--base-url",
        "http://127.0.0.1:2/",
        "--dispatch",
        "round-robin",
        "--slo",
        "ttft_ms=100",
    ];
    let a = match <servebench::cli::Cli as clap::Parser>::try_parse_from(argv)
        .expect("valid capacity flags")
        .command
    {
        servebench::cli::Command::Capacity(a) => *a,
        _ => unreachable!(),
    };
    let c = servebench::cli::capacity::config_of(&a, None).unwrap();
    assert_eq!(
        c.bench.endpoints(),
        ["http://127.0.0.1:1", "http://127.0.0.1:2"]
    );
    assert_eq!(
        c.bench.dispatch,
        servebench::load::dispatch::Dispatch::RoundRobin
    );
    // One URL per flag.
    let comma = bench_args(&["--base-url", "http://127.0.0.1:1,http://127.0.0.1:2"]);
    let e = servebench::cli::bench::config_of(&comma, None).unwrap_err();
    assert!(format!("{e:#}").contains("repeat --base-url"), "{e:#}");
}
