//! `servebench grade` as a user runs it: one pair, a pairs file, bad input.

use crate::common::*;
use assert_cmd::Command;

fn servebench() -> Command {
    Command::cargo_bin("servebench").expect("binary built")
}

#[test]
fn grades_one_pair_and_names_the_rule() {
    let a = servebench()
        .args(["grade", "--gold", "\\frac{14}{3}", "--pred", "14/3"])
        .assert()
        .success();
    let out = String::from_utf8_lossy(&a.get_output().stdout).into_owned();
    assert_eq!(out.trim(), "equal (rule: exact_value)");
    let a = servebench()
        .args(["grade", "--gold", "52_8", "--pred", "42", "--json"])
        .assert()
        .success();
    let v: serde_json::Value = serde_json::from_slice(&a.get_output().stdout).unwrap();
    assert_eq!(v["equal"], false);
    let a = servebench()
        .args([
            "grade",
            "--grader",
            "qwen",
            "--gold",
            "\\sqrt{3}",
            "--pred",
            "sqrt(3)",
            "--json",
        ])
        .assert()
        .success();
    let v: serde_json::Value = serde_json::from_slice(&a.get_output().stdout).unwrap();
    assert_eq!(v["equal"], false, "Qwen's grader rejects ASCII sqrt(3)");
}

#[test]
fn grades_the_real_pairs_file() {
    let dir = tempdir();
    let out = dir.path().join("verdicts.jsonl");
    let pairs = root().join("tests/fixtures/grading/math500_qwen3_answers.json");
    let a = servebench()
        .arg("grade")
        .arg("--pairs")
        .arg(&pairs)
        .arg("--out")
        .arg(&out)
        .assert()
        .success();
    let err = String::from_utf8_lossy(&a.get_output().stderr).into_owned();
    let lines = read_lines(&out);
    assert_eq!(lines.len(), 500);
    assert_eq!(lines[2]["index"], 2);
    assert_eq!(
        lines[2]["equal"], true,
        "\\frac{{14}}{{3}} vs \\boxed{{\\dfrac{{14}}{{3}}}}"
    );
    let equal = lines.iter().filter(|l| l["equal"] == true).count();
    assert!(
        err.contains(&format!(
            "500 pairs: {equal} equal, {} not equal, 0 timeouts",
            500 - equal
        )),
        "{err}"
    );
}

#[test]
fn bad_pairs_file_names_file_line_and_field() {
    let dir = tempdir();
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(
        &bad,
        "{\"gold\": \"1\", \"pred\": \"1\"}\n{\"answer\": \"2\"}\n",
    )
    .unwrap();
    let a = servebench()
        .arg("grade")
        .arg("--pairs")
        .arg(&bad)
        .assert()
        .failure();
    let err = String::from_utf8_lossy(&a.get_output().stderr).into_owned();
    assert!(
        err.contains("bad.jsonl:2") && err.contains("`prediction`"),
        "{err}"
    );
}
