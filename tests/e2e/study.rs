//! `servebench run STUDY.toml`: several deployments launched in turn, one folder, a decision report; the field
//! report's study passes `--dry-run` untouched.

use crate::common::*;
use serde_json::Value;
use servebench::launch::group_members;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_servebench");

/// Every file under `dir`, relative to it, sorted.
fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn the_field_report_study_dry_runs_every_step_and_touches_nothing() {
    let dir = tempdir();
    let plan = dir.path().join("examples/deepseek-r1-fp8-vs-int8.toml");
    std::fs::create_dir_all(plan.parent().unwrap()).unwrap();
    std::fs::copy(root().join("examples/deepseek-r1-fp8-vs-int8.toml"), &plan).unwrap();
    let out = Command::new(BIN)
        .args(["run", "--dry-run"])
        .arg(&plan)
        .current_dir(dir.path())
        .env_remove("OPENAI_API_KEY")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let common =
        "--tp 8 --mem-fraction-static 0.95 --max-running-requests 32 --context-length 65536 \
                  --chunked-prefill-size 4096";
    let launches: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("server: launch "))
        .collect();
    assert_eq!(launches.len(), 2, "{stdout}");
    assert!(
        launches[0].contains("--model-path /models/DeepSeek-R1 ")
            && launches[0].contains(&format!("{common} --host"))
            && launches[0].contains("--quantization fp8"),
        "{}",
        launches[0]
    );
    assert!(
        launches[1].contains("--model-path /models/DeepSeek-R1-Block-INT8 ")
            && launches[1].contains(&format!("{common} --host"))
            && !launches[1].contains("--quantization"),
        "{}",
        launches[1]
    );
    let evals: Vec<&str> = stdout.lines().filter(|l| l.starts_with("eval: ")).collect();
    assert_eq!(evals.len(), 2);
    for e in &evals {
        assert!(
            e.contains("--datasets gpqa_diamond,aime24,math500")
                && e.contains("--protocol field-report"),
            "{e}"
        );
    }
    // 2 deployments × 2 lengths × 11 concurrencies × 2 ratios, in the seed's file names.
    let points: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("sweep ["))
        .collect();
    assert_eq!(points.len(), 88, "{stdout}");
    for want in [
        "sweep [1/44] in 3500 out 1500 ratio 0.7 conc 1 → ",
        "/FP8/perf/tp1_in3500_out1500_ratio0.7.json (1 prompts)",
        "sweep [44/44] in 5600 out 1400 ratio 0.8 conc 512 → ",
        "/INT8/perf/tp512_in5600_out1400_ratio0.8.json (512 prompts)",
        "==== deployment FP8 (1/2)",
        "==== deployment INT8 (2/2)",
        "study.html (SLO: TTFT ≤ 2000 ms, TPOT ≤ 100 ms for 99% of requests)",
    ] {
        assert!(stdout.contains(want), "{want}\n{stdout}");
    }
    assert_eq!(
        files_under(dir.path()),
        ["examples/deepseek-r1-fp8-vs-int8.toml"],
        "a dry run writes nothing"
    );
}

/// A loopback port nothing listens on (bound, then released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `examples/quickstart.toml` written into `dir/examples/` with free ports, the repository's `data/`, and
/// `edit` applied to its text.
fn quickstart_in(dir: &Path, edit: impl Fn(String) -> String) -> PathBuf {
    let mut text = std::fs::read_to_string(root().join("examples/quickstart.toml")).unwrap();
    for old in ["30101", "30102"] {
        assert!(text.contains(old));
        text = text.replace(old, &free_port().to_string());
    }
    let data = root().join("data").display().to_string();
    assert!(text.contains("\"../data"));
    text = text.replace("\"../data", &format!("\"{data}"));
    let plan = dir.join("examples/quickstart.toml");
    std::fs::create_dir_all(plan.parent().unwrap()).unwrap();
    std::fs::write(&plan, edit(text)).unwrap();
    plan
}

fn run_study(plan: &Path) -> Output {
    Command::new(BIN)
        .arg("run")
        .arg(plan)
        .current_dir(std::env::temp_dir())
        .env_remove("OPENAI_API_KEY")
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Every pid the study launched (from the `[servebench] pid N` lines of the server logs).
fn launched_pids(study: &Path) -> Vec<i32> {
    let mut pids = Vec::new();
    for d in ["A-default", "B-slow"] {
        let log = std::fs::read_to_string(study.join(d).join("server.log")).unwrap_or_default();
        for line in log.lines() {
            if let Some(rest) = line.strip_prefix("[servebench] pid ") {
                if let Some(p) = rest.split_whitespace().next().and_then(|p| p.parse().ok()) {
                    pids.push(p);
                }
            }
        }
    }
    pids
}

/// No live process is left in the group of any server the study launched.
fn assert_no_server_left(study: &Path) {
    let t0 = Instant::now();
    for pid in launched_pids(study) {
        while !group_members(pid).is_empty() {
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "launched server group {pid} still has {:?}",
                group_members(pid)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The quickstart, run once for every test that looks at its output (the folder lives as long as the tests).
struct Quickstart {
    _dir: tempfile::TempDir,
    study: PathBuf,
    stdout: String,
}

fn quickstart() -> &'static Quickstart {
    static DONE: OnceLock<Quickstart> = OnceLock::new();
    DONE.get_or_init(|| {
        let dir = tempdir();
        let plan = quickstart_in(dir.path(), |t| t);
        let o = run_study(&plan);
        let stdout = text(&o.stdout);
        assert!(o.status.success(), "{stdout}\n{}", text(&o.stderr));
        Quickstart {
            study: dir.path().join("quickstart-run"),
            _dir: dir,
            stdout,
        }
    })
}

#[test]
fn the_quickstart_launches_both_deployments_and_decides_with_the_evidence() {
    let q = quickstart();
    let s = &q.study;
    for (name, model) in [("A-default", "sim-a"), ("B-slow", "sim-b")] {
        let d = s.join(name);
        for f in [
            "env.json",
            "eval/math500_predictions.jsonl",
            "eval/math500_report.json",
            "summary.csv",
            "report.html",
            "deployment_done.json",
            "perf/c16_in256_out32_ratio1.0.json",
            "charts/throughput_vs_concurrency.png",
        ] {
            assert!(d.join(f).is_file(), "{name}: no {f}");
        }
        let env: Value =
            serde_json::from_str(&std::fs::read_to_string(d.join("env.json")).unwrap()).unwrap();
        assert_eq!(env["server"]["launched"], true, "{name}");
        assert_eq!(env["server"]["models"][0], model, "{name}");
        // One server-metric series per point, scraped from the launched server's /metrics.
        for c in [1, 4, 16, 64] {
            let p = d.join(format!(
                "perf/c{c}_in256_out32_ratio1.0_c{c}.server_metrics.jsonl"
            ));
            let m: Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
            assert_eq!(m["series"]["dialect"], "sglang", "{}", p.display());
            let samples = m["series"]["samples"].as_array().unwrap();
            assert!(!samples.is_empty(), "{}", p.display());
            assert!(
                m["series"]["url"].as_str().unwrap().ends_with("/metrics")
                    && samples[0]["running"].is_number(),
                "{m}"
            );
        }
        let conc64 = std::fs::read_to_string(
            d.join("perf/c64_in256_out32_ratio1.0_c64.server_metrics.jsonl"),
        )
        .unwrap();
        let m: Value = serde_json::from_str(&conc64).unwrap();
        let most_running = m["series"]["samples"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|s| s["running"].as_f64())
            .fold(0.0, f64::max);
        assert!(
            most_running >= 2.0,
            "{name}: running never above 1 at c64: {conc64}"
        );
    }
    // The decision: A (the faster engine) serves more within the SLO; B's accuracy difference with its interval.
    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(s.join("study.json")).unwrap()).unwrap();
    let ev = json["evidence"].as_array().unwrap();
    let cap = |i: usize| ev[i]["capacity"].as_f64();
    assert!(
        cap(0).unwrap_or(0.0) > cap(1).unwrap_or(0.0),
        "A's capacity above B's: {ev:?}"
    );
    let sentence = json["decisions"][0]["sentence"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        sentence.contains("A-default serves ")
            && sentence.contains("× B-slow's load within the SLO"),
        "{sentence}"
    );
    assert!(
        sentence.contains("math500 accuracy −") && sentence.contains(" points [−"),
        "{sentence}"
    );
    // A verdict, not "too little evidence", on a loaded machine too: a client flagged busy counts only where it
    // could have changed a point that decides a capacity (unit tests in study_report and decision).
    assert!(sentence.starts_with("Choose A-default: "), "{sentence}");
    // Cost per million output tokens and per correct answer, B's first.
    assert!(
        sentence.contains(" per million output tokens, $")
            && sentence.ends_with(" per correct answer (B-slow vs A-default)."),
        "{sentence}"
    );
    for e in ev {
        let tokens = e["eval_output_tokens"].as_u64().unwrap();
        let correct = e["eval_correct"].as_u64().unwrap();
        assert!(tokens >= 200 && (150..=200).contains(&correct), "{e}");
        assert!(e["client_saturated_at"].is_array() && e["client_busy_at"].is_array());
    }
    // The result keys the saturation rule reads are written by bench.
    let point =
        std::fs::read_to_string(s.join("A-default/perf/c64_in256_out32_ratio1.0.json")).unwrap();
    let point: Value = serde_json::from_str(point.lines().next().unwrap()).unwrap();
    for key in [
        "client_saturated",
        "p99_client_lag_ms",
        "client_cpu_s",
        "duration",
    ] {
        assert!(!point[key].is_null(), "{key} missing from {point}");
    }
    assert!(q.stdout.contains(&sentence), "{}", q.stdout);
    let md = std::fs::read_to_string(s.join("study.md")).unwrap();
    let first_para = md.split("\n\n").nth(1).unwrap();
    assert_eq!(
        first_para,
        format!("**{sentence}**"),
        "the verdict comes first"
    );
    for want in [
        "| A-default | math500 | accuracy | 200 |",
        "| B-slow | math500 | accuracy | 200 |",
        "| $ per M output tokens | Eval output tokens per correct answer | $ per correct answer |",
        "## B-slow vs A-default",
        "McNemar exact",
        "![A-default: server during in 256 / out 32, ratio 1 at concurrency",
        "![B-slow: client TTFT during",
    ] {
        assert!(md.contains(want), "{want}\n{md}");
    }
    let html = std::fs::read_to_string(s.join("study.html")).unwrap();
    assert!(html.contains("id=\"verdict\"") && html.contains("id=\"chart-server_B-slow_"));
    assert_eq!(
        html.matches(" src=\"").count(),
        html.matches(" src=\"data:image/png;base64,").count(),
        "self-contained: every image inline"
    );
    assert!(!html.contains("<script") && !html.contains("<link"));
    assert_no_server_left(s);
}

#[test]
fn the_decision_report_renders_in_chromium_with_its_charts() {
    let Some(bin) = crate::report_browser::chromium() else {
        return;
    };
    let q = quickstart();
    let profile = tempdir();
    let page = crate::report_browser::with_checker(&q.study.join("study.html"));
    let dom = crate::report_browser::dump_dom(&bin, &page, &profile.path().join("p"));
    let m = crate::report_browser::marker(&dom).to_string();
    // 3 performance charts and, per deployment, the server and TTFT charts of its telling point.
    let images: usize = m
        .split_whitespace()
        .find_map(|w| w.strip_prefix("images="))
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!(images >= 7, "{m}");
    assert!(m.contains(" broken=0 "), "{m}");
    assert!(dom.contains("A-default serves "), "verdict in the DOM");
    crate::report_browser::screenshot(
        &bin,
        &q.study.join("study.html"),
        &profile.path().join("p"),
        &profile.path().join("study.png"),
    );
}

/// Kill -9 at a moment drawn from the clock (printed; `STUDY_KILL_AT_MS` replays one), then rerun: it finishes,
/// nothing finished is done again, and no server process survives either ending.
#[test]
fn killed_at_any_moment_a_rerun_finishes_without_redoing_anything() {
    let dir = tempdir();
    let plan = quickstart_in(dir.path(), |t| {
        t.replace("\"--limit\", \"200\"", "\"--limit\", \"40\"")
    });
    let study = dir.path().join("quickstart-run");
    let kill_at_ms: u64 = match std::env::var("STUDY_KILL_AT_MS") {
        Ok(v) => v.parse().expect("STUDY_KILL_AT_MS: milliseconds"),
        Err(_) => {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos() as u64;
            500 + nanos % 30_000
        }
    };
    eprintln!("kill -9 after {kill_at_ms} ms (replay with STUDY_KILL_AT_MS={kill_at_ms})");
    let mut child = Command::new(BIN)
        .arg("run")
        .arg(&plan)
        .env_remove("OPENAI_API_KEY")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    let finished_first = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if t0.elapsed() >= Duration::from_millis(kill_at_ms) {
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    if finished_first.is_none() {
        child.kill().unwrap(); // SIGKILL
        let _ = child.wait();
    }
    assert_no_server_left(&study);
    // What was finished at the kill.
    let markers: BTreeMap<String, String> = ["A-default", "B-slow"]
        .iter()
        .filter_map(|d| {
            std::fs::read_to_string(study.join(d).join("deployment_done.json"))
                .ok()
                .map(|t| (d.to_string(), t))
        })
        .collect();
    let results_before: BTreeMap<PathBuf, String> = point_results(&study);
    let o = run_study(&plan);
    let stdout = text(&o.stdout);
    assert!(
        o.status.success(),
        "rerun after a kill at {kill_at_ms} ms failed:\n{stdout}\n{}",
        text(&o.stderr)
    );
    for (d, t) in &markers {
        assert!(
            stdout.contains(&format!("{d}: finished earlier")),
            "{d} rerun (kill at {kill_at_ms} ms):\n{stdout}"
        );
        assert_eq!(
            &std::fs::read_to_string(study.join(d).join("deployment_done.json")).unwrap(),
            t
        );
    }
    // A point finished before the kill keeps its result; every point holds one result and exactly its prompts.
    let results_after = point_results(&study);
    for (p, r) in &results_before {
        let finished = serde_json::from_str::<Value>(r).is_ok_and(|v| v["interrupted"] != true);
        if finished {
            assert_eq!(results_after.get(p), Some(r), "{} was rerun", p.display());
        }
    }
    assert_eq!(results_after.len(), 8, "{results_after:?}");
    for (p, r) in &results_after {
        assert_eq!(r.lines().count(), 1, "{}", p.display());
        let v: Value = serde_json::from_str(r).unwrap();
        let details = std::fs::read_to_string(p.with_file_name(format!(
            "{}_c{}.details.jsonl",
            p.file_stem().unwrap().to_string_lossy(),
            v["max_concurrency"]
        )))
        .unwrap();
        let timed = details
            .lines()
            .filter(|l| serde_json::from_str::<Value>(l).is_ok_and(|r| r["warmup"] != true))
            .count() as u64;
        assert_eq!(
            timed,
            2 * v["max_concurrency"].as_u64().unwrap(),
            "{}: requests recorded twice or lost",
            p.display()
        );
    }
    // Every eval item answered once.
    for d in ["A-default", "B-slow"] {
        let preds =
            std::fs::read_to_string(study.join(d).join("eval/math500_predictions.jsonl")).unwrap();
        let mut ids: Vec<String> = preds
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .map(|v| format!("{}#{}", v["id"], v["sample"]))
            .collect();
        let n = ids.len();
        ids.sort();
        ids.dedup();
        assert_eq!(
            (ids.len(), n),
            (40, 40),
            "{d}: items answered twice or missing"
        );
    }
    assert!(study.join("study.html").is_file() && study.join("study.md").is_file());
    assert_no_server_left(&study);
}

/// Point result files (`perf/*.json`) of both deployments and their text.
fn point_results(study: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    for d in ["A-default", "B-slow"] {
        let Ok(rd) = std::fs::read_dir(study.join(d).join("perf")) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            if name.ends_with(".json") {
                out.insert(p.clone(), std::fs::read_to_string(&p).unwrap());
            }
        }
    }
    out
}
