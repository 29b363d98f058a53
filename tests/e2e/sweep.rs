//! `servebench sweep` against the simulator: 2 lengths × 6 concurrencies × 2 ratios, killed and resumed.

use crate::common::*;
use clap::Parser;
use servebench::cli::sweep::{finished_result, plan_of, sweep};
use servebench::cli::{Cli, Command};

fn sweep_args(argv: &[&str]) -> servebench::cli::sweep::Args {
    let mut v = vec!["servebench", "sweep"];
    v.extend_from_slice(argv);
    match Cli::try_parse_from(v).unwrap().command {
        Command::Sweep(a) => *a,
        _ => unreachable!(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sweep_resumes_after_a_stop_and_every_point_is_written_once() {
    let dir = tempdir();
    let out = dir.path().join("sweep");
    let args = sweep_args(&[
        "--sim",
        "fast",
        "--input-output",
        "128:32,256:16",
        "--concurrency",
        "1,2,4,8,12,16",
        "--range-ratio",
        "0.7,0.8",
        "--tp",
        "8",
        "--output-dir",
        out.to_str().unwrap(),
    ]);
    let plan = plan_of(&args).unwrap();
    let points = plan.points().unwrap();
    assert_eq!(points.len(), 24);

    // First run: stopped part-way (as a kill would).
    let (tx, rx) = tokio::sync::watch::channel(false);
    let stopper = tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(700)).await;
        let _ = tx.send(true);
    });
    let first = sweep(&plan, &points, false, None, rx).await.unwrap();
    stopper.await.unwrap();
    assert!(first.interrupted, "the stop was seen");
    let done_first = points
        .iter()
        .filter(|p| finished_result(p).is_some())
        .count();
    assert!(
        done_first < 24,
        "stopped before the end ({done_first} done)"
    );

    // Second run: resumes, skips what is done.
    let (_tx, rx) = tokio::sync::watch::channel(false);
    let second = sweep(&plan, &points, false, None, rx).await.unwrap();
    assert_eq!(second.done, done_first);
    assert_eq!(second.run + second.done, 24);
    assert_eq!(second.failed, 0);
    // The seed's layout: tp{P}_in{IN}_out{OUT}_ratio{R}.json with P = prompts = concurrency, one JSON object
    // per file (what the seed's collector `json.load`s); the tensor-parallel size is in the result.
    for p in &points {
        let c = p.concurrency;
        let name = format!(
            "tp{c}_in{}_out{}_ratio{}.json",
            p.input_len,
            p.output_len,
            servebench::sweep_plan::ratio_str(p.range_ratio)
        );
        assert_eq!(p.file, out.join(&name));
        let text = std::fs::read_to_string(&p.file).unwrap();
        assert_eq!(text.lines().count(), 1, "{name}: one object");
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["max_concurrency"], c as u64, "{name}");
        assert_eq!(
            v["completed"], c as u64,
            "{name}: num_prompts = concurrency, as the seed"
        );
        assert_eq!(v["interrupted"], false, "{name}");
        assert_eq!(v["tp"], 8, "{name}");
    }
    assert!(out
        .join("tp4_in128_out32_ratio0.7_c4.details.jsonl")
        .exists());
}

#[test]
fn dry_run_lists_the_seed_matrix() {
    let dir = tempdir();
    let plan = dir.path().join("plan.toml");
    std::fs::write(
        &plan,
        "[target]\nbase_url = \"http://127.0.0.1:1\"\n[axes]\ninput_output = [\"3500:1500\", \"3000:400\"]\nconcurrency = [1, 4, 8, 16, 32, 64, 80, 128, 256, 350, 512]\nrange_ratio = [0.7, 0.8]\n[run]\ntp = 8\n",
    )
    .unwrap();
    let out = assert_cmd::Command::cargo_bin("servebench")
        .unwrap()
        .args(["sweep", plan.to_str().unwrap(), "--dry-run"])
        .assert()
        .success();
    let text = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert_eq!(text.lines().count(), 44);
    assert!(text.contains("tp512_in3000_out400_ratio0.8.json"));
}

/// Counts finished result lines in a sweep folder.
fn finished_lines(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter(|e| {
                    let n = e.file_name().to_string_lossy().into_owned();
                    n.ends_with(".json")
                })
                .map(|e| {
                    std::fs::read_to_string(e.path())
                        .unwrap_or_default()
                        .lines()
                        .filter(|l| serde_json::from_str::<serde_json::Value>(l).is_ok())
                        .count()
                })
                .sum()
        })
        .unwrap_or(0)
}

#[test]
fn sweep_killed_with_sigkill_resumes_from_the_files() {
    let dir = tempdir();
    let out = dir.path().join("sweep");
    let bin = assert_cmd::cargo::cargo_bin("servebench");
    let args = [
        "sweep",
        "--sim",
        "fast",
        "--input-output",
        "128:64,256:32",
        "--concurrency",
        "1,2,4,8,12,16",
        "--range-ratio",
        "0.7,0.8",
        "--num-prompts",
        "3x",
        "--no-report",
        "--output-dir",
    ];
    let mut child = std::process::Command::new(&bin)
        .args(args)
        .arg(&out)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let t0 = std::time::Instant::now();
    while finished_lines(&out) < 4 && t0.elapsed() < std::time::Duration::from_secs(120) {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL: no chance to clean up
    child.wait().unwrap();
    let before = finished_lines(&out);
    assert!(
        (4..24).contains(&before),
        "killed part-way ({before} points written)"
    );
    let assert = assert_cmd::Command::new(&bin)
        .args(args)
        .arg(&out)
        .assert()
        .success();
    let stdout = String::from_utf8_lossy(&assert.get_output().stdout).into_owned();
    assert!(
        stdout.contains(&format!("{} already done", before)),
        "{stdout}"
    );
    assert_eq!(finished_lines(&out), 24, "every point exactly once");
}

/// The seed's collector (tests/compat/seed_collector.py), run unchanged with python3 on a `servebench sweep`
/// folder, writes the same seed columns as `servebench report`'s summary.csv.
#[test]
fn the_seeds_collector_reads_a_sweep_folder_as_the_report_does() {
    let dir = tempdir();
    let out = dir.path().join("sweep");
    servebench_cmd()
        .args([
            "sweep",
            "--sim",
            "fast",
            "--input-output",
            "64:8,32:4",
            "--concurrency",
            "1,2,3",
            "--range-ratio",
            "0.5,1.0",
            "--output-dir",
        ])
        .arg(&out)
        .assert()
        .success();
    let seed_csv = dir.path().join("seed_summary.csv");
    let status = std::process::Command::new("python3")
        .arg(root().join("tests/compat/seed_collector.py"))
        .arg(&out)
        .arg(&seed_csv)
        .status()
        .expect("python3 runs (the test needs it)");
    assert!(status.success());
    let read = |p: &std::path::Path, cols: usize| -> (Vec<String>, Vec<Vec<String>>) {
        let text = std::fs::read_to_string(p).unwrap();
        let mut lines = text.lines().map(|l| {
            l.split(',')
                .take(cols)
                .map(str::to_string)
                .collect::<Vec<_>>()
        });
        let head = lines.next().unwrap();
        (head, lines.collect())
    };
    let (seed_head, mut seed_rows) = read(&seed_csv, 24);
    let (ours_head, mut our_rows) = read(&out.join("summary.csv"), 24);
    assert_eq!(seed_head, ours_head, "the seed's columns, in its order");
    assert_eq!(
        seed_rows.len(),
        12,
        "2 lengths × 3 concurrencies × 2 ratios"
    );
    // Same numbers (parsed: Python writes 3 where servebench writes 3, and both write shortest round-trip
    // floats), row for row once both are sorted the same way.
    let num = |rows: &mut Vec<Vec<String>>| -> Vec<Vec<f64>> {
        let mut v: Vec<Vec<f64>> = rows
            .iter()
            .map(|r| {
                r.iter()
                    .map(|c| c.parse::<f64>().unwrap_or(f64::NAN))
                    .collect()
            })
            .collect();
        v.sort_by(|a, b| {
            a.iter()
                .zip(b)
                .map(|(x, y)| x.total_cmp(y))
                .find(|o| o.is_ne())
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        v
    };
    let (seed, ours) = (num(&mut seed_rows), num(&mut our_rows));
    for (s, o) in seed.iter().zip(&ours) {
        for (i, (x, y)) in s.iter().zip(o).enumerate() {
            assert!(
                x == y || (x.is_nan() && y.is_nan()),
                "{}: seed {x} vs report {y}",
                seed_head[i]
            );
        }
        assert!(!s[0].is_nan() && s[0] == s[1], "prompt_num = concurrency");
    }
}

fn servebench_cmd() -> assert_cmd::Command {
    assert_cmd::Command::cargo_bin("servebench").unwrap()
}
