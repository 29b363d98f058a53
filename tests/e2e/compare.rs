//! `servebench compare` of two simulator presets: the slower engine must come out worse, at every point.

use crate::common::*;
use assert_cmd::Command;

fn sweep(dir: &std::path::Path, preset: &str) {
    Command::cargo_bin("servebench")
        .unwrap()
        .args([
            "sweep",
            "--sim",
            preset,
            "--input-output",
            "256:32",
            "--concurrency",
            "1,4",
            "--range-ratio",
            "1",
            "--num-prompts",
            "2x",
            "--no-report",
            "--output-dir",
        ])
        .arg(dir)
        .assert()
        .success();
}

fn eval(dir: &std::path::Path, accuracy: &str) {
    Command::cargo_bin("servebench")
        .unwrap()
        .current_dir(root())
        .args([
            "eval",
            "--sim",
            "--datasets",
            "math500",
            "--data-dir",
            "data",
            "--sim-accuracy",
            accuracy,
            "--limit",
            "200",
            "--json",
            "--output-dir",
        ])
        .arg(dir)
        .assert()
        .success();
}

#[test]
fn slower_preset_reads_worse_and_accuracy_difference_is_tested() {
    let dir = tempdir();
    let (a, b) = (dir.path().join("fast"), dir.path().join("slow"));
    sweep(&a, "default");
    sweep(&b, "slow");
    eval(&a, "0.9");
    eval(&b, "0.6");
    let out = Command::cargo_bin("servebench")
        .unwrap()
        .args(["compare"])
        .arg(&a)
        .arg(&b)
        .args(["--label-a", "FP8", "--label-b", "INT8", "--json", "--out"])
        .arg(dir.path().join("cmp"))
        .assert()
        .success();
    let v: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    let points = v["points"].as_array().unwrap();
    assert_eq!(points.len(), 2, "matched at both concurrencies");
    for p in points {
        for m in p["metrics"].as_array().unwrap() {
            let name = m["metric"].as_str().unwrap();
            if name.contains("throughput") || name.contains("TTFT") || name.contains("TPOT") {
                assert_eq!(
                    m["direction"], "worse",
                    "{name} at c={}: {m}",
                    p["max_concurrency"]
                );
            }
        }
    }
    let acc = &v["accuracy"][0];
    assert_eq!(acc["dataset"], "math500");
    assert_eq!(acc["paired_items"], 200);
    assert!(acc["diff_points"].as_f64().unwrap() < -15.0, "{acc}");
    assert_eq!(acc["significant"], true);
    assert!(
        acc["statement"]
            .as_str()
            .unwrap()
            .starts_with("INT8 − FP8 on"),
        "{acc}"
    );
    assert!(dir.path().join("cmp/compare.html").exists());
}
