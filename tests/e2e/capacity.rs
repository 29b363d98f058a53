//! SLO attainment and goodput in results (bench and sweep), checked against the per-request records.

use crate::common::*;
use clap::Parser;
use servebench::cli::{Cli, Command};

fn sweep_args(argv: &[&str]) -> servebench::cli::sweep::Args {
    let mut v = vec!["servebench", "sweep"];
    v.extend_from_slice(argv);
    match Cli::try_parse_from(v).unwrap().command {
        Command::Sweep(a) => *a,
        _ => unreachable!(),
    }
}

/// One request at a time on the engine, eight in flight: the later ones queue for at least 7 × 16 decode
/// steps, so a 60 ms TTFT limit splits the run into good and bad requests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_slo_keys_match_the_records() {
    let sim = start_sim("fast", |c| c.max_running = 1).await;
    let dir = tempdir();
    let out = dir.path().join("r.json");
    let url = sim.base_url();
    let args = bench_args(&[
        "--backend",
        "sglang-oai",
        "--base-url",
        &url,
        "--dataset-name",
        "random",
        "--random-input-len",
        "64",
        "--random-output-len",
        "16",
        "--random-range-ratio",
        "1",
        "--num-prompts",
        "16",
        "--max-concurrency",
        "8",
        "--output-file",
        out.to_str().unwrap(),
        "--disable-tqdm",
        "--slo",
        "ttft:60 tpot:1000",
        "--slo-attainment",
        "0.9",
    ]);
    let (_tx, rx) = tokio::sync::watch::channel(false);
    let o = servebench::cli::bench::execute(args, rx).await.unwrap();
    let r = &o.result;
    let good = o
        .records
        .iter()
        .filter(|x| {
            x.ok()
                && x.answer_ttft_ms().is_some_and(|t| t <= 60.0)
                && x.tpot_ms().unwrap_or(0.0) <= 1000.0
        })
        .count() as u64;
    let sent = o.records.iter().filter(|x| !x.warmup).count() as u64;
    assert_eq!(sent, 16);
    assert!(good >= 1 && good < sent, "good {good} of {sent}");
    assert_eq!(r["slo"], "ttft_ms=60,tpot_ms=1000");
    assert_eq!(r["slo_good_requests"], good);
    assert_eq!(r["slo_requests"], sent);
    assert_eq!(r["slo_attainment_target"], 0.9);
    let att = good as f64 / sent as f64;
    assert!((r["slo_attainment"].as_f64().unwrap() - att).abs() < 1e-12);
    let duration = r["duration"].as_f64().unwrap();
    assert!((r["goodput"].as_f64().unwrap() - good as f64 / duration).abs() < 1e-9);
    assert_eq!(r["slo_met"], att >= 0.9);
    // The appended line carries the same keys.
    let line = &read_lines(&out)[0];
    assert_eq!(line["slo_good_requests"], good);
    // A bad spec is refused before anything is sent, naming the flag.
    let bad = bench_args(&["--base-url", &url, "--slo", "ttft_ms=-1"]);
    let (_tx, rx) = tokio::sync::watch::channel(false);
    let e = servebench::cli::bench::execute(bad, rx).await.unwrap_err();
    assert!(format!("{e:#}").contains("--slo"), "{e:#}");
}

/// A sweep with `[run.slo]` judges every point; summary.csv and report.html carry the SLO columns; a
/// rerun with another SLO measures the points again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sweep_plan_slo_reaches_points_summary_and_report() {
    let dir = tempdir();
    let out = dir.path().join("sweep");
    let plan_path = dir.path().join("plan.toml");
    std::fs::write(
        &plan_path,
        format!(
            "[target]\nsim = \"fast\"\n[axes]\ninput_output = [\"32:8\"]\nconcurrency = [1, 4]\n\
             [run]\noutput_dir = {:?}\n[run.slo]\nttft_ms = 5000\ne2e_ms = 10000\nattainment = 0.5\n",
            out.to_str().unwrap()
        ),
    )
    .unwrap();
    let args = sweep_args(&[plan_path.to_str().unwrap()]);
    let plan = servebench::cli::sweep::plan_of(&args).unwrap();
    let points = plan.points().unwrap();
    let (_tx, rx) = tokio::sync::watch::channel(false);
    let s = servebench::cli::sweep::sweep(&plan, &points, false, None, rx)
        .await
        .unwrap();
    assert_eq!(s.run, 2);
    for p in &points {
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&p.file).unwrap()).unwrap();
        assert_eq!(v["slo"], "ttft_ms=5000,e2e_ms=10000");
        assert_eq!(v["slo_attainment_target"], 0.5);
        assert_eq!(
            v["slo_good_requests"], v["completed"],
            "generous limits: all good"
        );
        assert_eq!(v["slo_met"], true);
        // The records of the point give the same count.
        let records = std::fs::read_to_string(&p.details_file).unwrap();
        let good = records
            .lines()
            .map(|l| serde_json::from_str::<servebench::core::record::RequestRecord>(l).unwrap())
            .filter(|x| {
                x.ok() && x.answer_ttft_ms().unwrap() <= 5000.0 && x.e2e_ms.unwrap() <= 10000.0
            })
            .count();
        assert_eq!(v["slo_good_requests"], good as u64);
    }
    let collection = servebench::report::collect(std::slice::from_ref(&out)).unwrap();
    let opts = servebench::report::ReportOptions {
        out_dir: out.clone(),
        ..Default::default()
    };
    servebench::report::write_report(&collection, &opts).unwrap();
    let csv = std::fs::read_to_string(out.join("summary.csv")).unwrap();
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let slo_col = header.iter().position(|h| *h == "slo").expect("slo column");
    assert!(slo_col >= 24, "after the seed's columns");
    for col in ["slo_attainment", "goodput", "slo_good_requests", "slo_met"] {
        assert!(header.contains(&col), "{col} in {header:?}");
    }
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("Goodput (req/s)") && html.contains("SLO met"));

    // The same points under a stricter SLO are not "done earlier".
    let args = sweep_args(&[plan_path.to_str().unwrap(), "--slo", "ttft_ms=4000"]);
    let plan2 = servebench::cli::sweep::plan_of(&args).unwrap();
    assert_eq!(
        plan2.run.slo.unwrap().attainment,
        0.5,
        "the plan's target stays"
    );
    let (_tx, rx) = tokio::sync::watch::channel(false);
    let s2 = servebench::cli::sweep::sweep(&plan2, &points, false, None, rx)
        .await
        .unwrap();
    assert_eq!((s2.run, s2.done), (2, 0));
}

fn capacity_args(argv: &[&str]) -> servebench::cli::capacity::Args {
    let mut v = vec!["servebench", "capacity"];
    v.extend_from_slice(argv);
    match Cli::try_parse_from(v).unwrap().command {
        Command::Capacity(a) => *a,
        _ => unreachable!(),
    }
}

/// A simulator that runs 4 requests at a time (sglang's `--max-running-requests 4`), each ~50 ms of
/// decode: above concurrency 4 requests queue for a whole request and miss a 25 ms TTFT limit. The
/// search finds the knee the seed-shaped grid finds (1 … 64, doubling) with at most half its GPU time,
/// and a rerun reuses every run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capacity_finds_the_grid_knee_for_at_most_half_the_gpu_time() {
    let sim = start_sim("fast", |c| {
        c.max_running = 4;
        c.decode_base_ms = 2.0;
    })
    .await;
    let url = sim.base_url();
    let dir = tempdir();
    let args = |out: &str, extra: &[&str]| {
        let out = dir.path().join(out);
        let mut v = vec![
            "--base-url",
            &url,
            "--backend",
            "sglang-oai",
            "--dataset-name",
            "random",
            "--random-input-len",
            "32",
            "--random-output-len",
            "24",
            "--random-range-ratio",
            "1",
            "--slo",
            "ttft_ms=25",
            "--prompts-per-load",
            "4",
            "--min-prompts",
            "8",
            "--gpus",
            "8",
            "--metrics-interval",
            "0.02",
            "--output-dir",
            out.to_str().unwrap(),
        ]
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>();
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let run = |argv: Vec<String>| async move {
        let refs: Vec<&str> = argv.iter().map(String::as_str).collect();
        let a = capacity_args(&refs);
        let (_tx, rx) = tokio::sync::watch::channel(false);
        servebench::cli::capacity::execute(&a, rx, |_| {})
            .await
            .unwrap()
    };
    let grid = run(args("grid", &["--grid", "1,2,4,8,16,32,64"])).await;
    let search = run(args("search", &[])).await;
    let (gk, sk) = (
        grid.capacity.capacity.unwrap(),
        search.capacity.capacity.unwrap(),
    );
    assert_eq!(gk, 4.0, "grid: {:#?}", grid.capacity.points);
    assert!(
        (gk / 2.0..=gk * 2.0).contains(&sk),
        "search knee {sk} within one grid step of {gk}: {:#?}",
        search.capacity.points
    );
    assert!(
        search.capacity.gpu_seconds <= 0.5 * grid.capacity.gpu_seconds,
        "search {} GPU-s vs grid {}",
        search.capacity.gpu_seconds,
        grid.capacity.gpu_seconds
    );
    // GPU time is duration × GPUs, summed over the runs.
    let sum: f64 = search.run_log.iter().map(|r| r.duration_s * 8.0).sum();
    assert!((sum - search.capacity.gpu_seconds).abs() < 1e-9);
    // The server's queue was seen past the knee (the simulator publishes sglang:num_queue_reqs).
    assert!(grid
        .run_log
        .iter()
        .any(|r| r.load > 4.0 && r.server_max_queued.unwrap_or(0.0) > 0.0));
    // capacity.json is written; a rerun reuses every run and decides the same.
    let saved: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("search/capacity.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(saved["capacity"], sk);
    assert_eq!(saved["mode"], "search");
    let again = run(args("search", &[])).await;
    assert!(again.run_log.iter().all(|r| r.reused));
    assert_eq!(again.capacity.capacity, Some(sk));
}

/// Accuracy under load: the simulator flips 20% of answers when busy; `eval --under-load 16` runs the
/// same eval at concurrency 1 and 16 and recovers the flip share within its interval.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eval_under_load_recovers_the_simulated_flip_rate() {
    let dir = tempdir();
    let data = root().join("data");
    let argv = [
        "servebench",
        "eval",
        "--sim",
        "--sim-accuracy",
        "0.7",
        "--sim-reasoning",
        "none",
        "--sim-load-flip-rate",
        "0.2",
        "--datasets",
        "math500",
        "--data-dir",
        data.to_str().unwrap(),
        "--under-load",
        "16",
        "--output-dir",
        dir.path().to_str().unwrap(),
    ];
    let a = match Cli::try_parse_from(argv).unwrap().command {
        Command::Eval(a) => *a,
        _ => unreachable!(),
    };
    let (_tx, rx) = tokio::sync::watch::channel(false);
    let out = servebench::cli::load_sensitivity::execute(a, 16, rx)
        .await
        .unwrap();
    assert!(!out.interrupted);
    let m = &out.measurements[0];
    assert_eq!((m.dataset.as_str(), m.pairs), ("math500", 500));
    assert_eq!((m.concurrency_low, m.concurrency_high), (1, 16));
    assert!(
        m.change_ci.0 <= 0.2 && 0.2 <= m.change_ci.1,
        "flip share 0.2 inside {:?} ({} of {})",
        m.change_ci,
        m.changed,
        m.pairs
    );
    // At accuracy 0.7, flips turn about 14% of answers wrong and 6% right: accuracy falls.
    assert!(m.discordant.0 + m.discordant.1 <= m.changed);
    assert!(m.discordant.0 > m.discordant.1, "{:?}", m.discordant);
    assert!(m.diff < 0.0, "{} points, p={}", m.diff, m.p);
    assert!(out.dirs.0.join("math500_predictions.jsonl").exists());
    assert!(out.dirs.1.ends_with("c16"));
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out.file).unwrap()).unwrap();
    assert_eq!(saved[0]["changed"], m.changed);
    assert!(m.statement().contains("between concurrency 1 and 16"));
}

/// Open loop: `--search rate` searches `--request-rate` (Poisson arrivals) up to about the engine's
/// throughput limit (4 slots × ~50 ms per request ≈ 80 requests/s; runs of one second of arrivals queue
/// little below it), bracketing and bisecting to 25%.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capacity_searches_the_request_rate_in_open_loop() {
    let sim = start_sim("fast", |c| {
        c.max_running = 4;
        c.decode_base_ms = 2.0;
    })
    .await;
    let url = sim.base_url();
    let dir = tempdir();
    let out = dir.path().join("rate");
    let a = capacity_args(&[
        "--search",
        "rate",
        "--start",
        "5",
        "--resolution",
        "0.25",
        "--base-url",
        &url,
        "--backend",
        "sglang-oai",
        "--dataset-name",
        "random",
        "--random-input-len",
        "32",
        "--random-output-len",
        "24",
        "--random-range-ratio",
        "1",
        "--slo",
        "ttft_ms=40",
        "--slo-attainment",
        "0.8",
        "--prompts-per-load",
        "1",
        "--min-prompts",
        "16",
        "--no-metrics",
        "--output-dir",
        out.to_str().unwrap(),
    ]);
    let (_tx, rx) = tokio::sync::watch::channel(false);
    let o = servebench::cli::capacity::execute(&a, rx, |_| {})
        .await
        .unwrap();
    let c = &o.capacity;
    let (cap, fail) = (c.capacity.unwrap(), c.first_failing.unwrap());
    assert!(
        (10.0..=160.0).contains(&cap) && fail > cap && fail <= 1.25 * cap + 1e-9,
        "capacity {cap}, first failing {fail}: {:#?}",
        c.points
    );
    assert_eq!(
        serde_json::to_value(c.stopped).unwrap(),
        "converged",
        "{:#?}",
        c.points
    );
    // Each run is an open-loop bench at its rate, one second of arrivals (at least 16 prompts).
    let first: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("r5_run1.json")).unwrap()).unwrap();
    assert_eq!(first["request_rate"], 5.0);
    assert_eq!(first["slo_requests"], 16);
    assert!(o
        .run_log
        .iter()
        .all(|r| r.requests as f64 == r.load.ceil().max(16.0)));
}
