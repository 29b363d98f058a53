//! The binary as a user runs it.

use crate::common::*;
use assert_cmd::Command;

fn servebench() -> Command {
    Command::cargo_bin("servebench").expect("binary built")
}

#[test]
fn readme_first_command_runs_a_load_test_against_the_builtin_simulator() {
    let dir = tempdir();
    let out = dir.path().join("demo.jsonl");
    // The README's command with fewer requests (same flags otherwise).
    let assert = servebench()
        .args([
            "bench",
            "--sim",
            "--dataset-name",
            "random",
            "--random-input",
            "512",
            "--random-output",
            "128",
            "--num-prompts",
            "200",
            "--max-concurrency",
            "64",
            "--output-file",
        ])
        .arg(&out)
        .assert()
        .success();
    let stdout = String::from_utf8_lossy(&assert.get_output().stdout).into_owned();
    assert!(stdout.contains("Serving Benchmark Result"), "{stdout}");
    assert!(stdout.contains("SIMULATED"), "{stdout}");
    let r = &read_lines(&out)[0];
    assert_eq!(r["completed"], 200);
    assert_eq!(r["failed"], 0);
}

#[test]
fn bad_input_says_what_to_do() {
    let assert = servebench()
        .args([
            "bench",
            "--sim",
            "--dataset-name",
            "sharegpt",
            "--num-prompts",
            "3",
        ])
        .assert()
        .failure();
    let err = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
    assert!(err.contains("--dataset-path"), "{err}");
    let assert = servebench()
        .args(["bench", "--backend", "tgi-magic", "--num-prompts", "3"])
        .assert()
        .failure();
    let err = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
    assert!(
        err.contains("unknown backend") && err.contains("vllm-chat"),
        "{err}"
    );
}

#[test]
fn api_key_is_never_written() {
    let dir = tempdir();
    let out = dir.path().join("r.jsonl");
    servebench()
        .args([
            "bench",
            "--sim",
            "fast",
            "--dataset-name",
            "random",
            "--random-input-len",
            "16",
            "--random-output-len",
            "4",
            "--num-prompts",
            "5",
            "--api-key",
            "sk-VERYSECRET",
            "--output-details",
            "--output-file",
        ])
        .arg(&out)
        .assert()
        .success();
    for f in std::fs::read_dir(dir.path()).unwrap() {
        let text = std::fs::read_to_string(f.unwrap().path()).unwrap();
        assert!(!text.contains("VERYSECRET"));
    }
}

#[test]
fn env_reports_the_machine() {
    let assert = servebench().args(["env", "--json"]).assert().success();
    let v: serde_json::Value = serde_json::from_slice(&assert.get_output().stdout).unwrap();
    assert!(v["cpus"].as_u64().unwrap() >= 1);
    assert!(v["gpus"].is_array());
}

#[test]
fn readme_workflow_demo_writes_eval_sweep_and_report() {
    let dir = tempdir();
    let plan = std::fs::read_to_string(root().join("examples/demo.toml")).unwrap();
    let out = dir.path().join("run");
    let plan = plan.replace(
        "output_dir = \"../demo-run\"",
        &format!("output_dir = {:?}", out.display().to_string()),
    );
    assert!(
        plan.contains(&out.display().to_string()),
        "the demo plan still sets output_dir"
    );
    // The plan in an examples/ folder next to data/, run from elsewhere: its paths are relative to it.
    std::fs::create_dir_all(dir.path().join("examples")).unwrap();
    std::os::unix::fs::symlink(root().join("data"), dir.path().join("data")).unwrap();
    let plan_path = dir.path().join("examples/demo.toml");
    std::fs::write(&plan_path, plan).unwrap();
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let assert = servebench()
        .current_dir(&elsewhere)
        .arg("run")
        .arg(&plan_path)
        .assert()
        .success();
    let stdout = String::from_utf8_lossy(&assert.get_output().stdout).into_owned();
    assert!(stdout.contains("math500: accuracy"), "{stdout}");
    for f in [
        "report.html",
        "summary.csv",
        "env.json",
        "eval/math500_report.json",
        "eval/aime24_predictions.jsonl",
        "perf/tp3_in1024_out256_ratio0.8.json",
    ] {
        assert!(out.join(f).exists(), "{f} missing");
    }
    let csv = std::fs::read_to_string(out.join("summary.csv")).unwrap();
    assert!(csv.starts_with("prompt_num,concurrency,random_input_len,random_output_len,"));
    assert_eq!(csv.lines().count(), 1 + 8, "8 sweep points");
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(
        html.contains("math500") && html.contains("<img"),
        "the report holds accuracy and charts"
    );
    // Rerun: everything is resumed, nothing re-sent.
    let assert = servebench()
        .current_dir(&elsewhere)
        .arg("run")
        .arg(&plan_path)
        .assert()
        .success();
    let stdout = String::from_utf8_lossy(&assert.get_output().stdout).into_owned();
    assert!(stdout.contains("0 run, 8 done earlier"), "{stdout}");
}
