//! `--grader qwen` against Qwen2.5-Math's real verdicts (tests/fixtures/grading/qwen_verdicts_*.jsonl, produced by
//! running its evaluation code at commit a45202b with sympy 1.12): extraction, gold normalisation and `math_equal`.

use std::path::PathBuf;

use serde_json::Value;
use servebench_eval::grade::{qwen_extract, qwen_math_equal, qwen_strip, GradeOptions, GraderMode};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/grading")
}

fn read_jsonl(name: &str) -> Vec<Value> {
    let path = fixtures().join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("{}:{}: {e}", path.display(), i + 1))
        })
        .collect()
}

fn s(v: &Value, k: &str) -> String {
    v[k].as_str()
        .unwrap_or_else(|| panic!("field {k} missing in {v}"))
        .to_string()
}

fn key(v: &Value) -> String {
    match v.get("id").and_then(Value::as_str) {
        Some(id) => format!("edge:{id}"),
        None => format!("{}#{}", s(v, "file"), v["i"]),
    }
}

fn all_lines() -> Vec<Value> {
    let mut v = read_jsonl("qwen_verdicts_fixture_pairs.jsonl");
    assert_eq!(v.len(), 1000);
    let edge = read_jsonl("qwen_verdicts_edge_pairs.jsonl");
    assert_eq!(edge.len(), 70);
    v.extend(edge);
    v
}

#[test]
fn extraction_equals_qwen_on_every_line() {
    let mut wrong = Vec::new();
    for r in all_lines() {
        let (pred, gold) = (s(&r, "pred"), s(&r, "gold"));
        let got = qwen_extract(&pred);
        if got != s(&r, "qwen_pred") {
            wrong.push(format!(
                "{} pred {pred:?}: got {got:?}, Qwen {:?}",
                key(&r),
                s(&r, "qwen_pred")
            ));
        }
        let g = qwen_strip(&gold);
        if g != s(&r, "qwen_gold") {
            wrong.push(format!(
                "{} gold {gold:?}: got {g:?}, Qwen {:?}",
                key(&r),
                s(&r, "qwen_gold")
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} difference(s):\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

/// Lines where `--grader qwen` and the real Qwen still differ, each with its cause (see docs/grading.md). A fixed
/// difference fails this test as much as a new one: update the list and the document together.
const KNOWN_DIFFERENCES: &[(&str, &str)] = &[];

#[test]
fn verdicts_equal_qwen_except_the_listed() {
    let opts = GradeOptions {
        mode: GraderMode::Qwen,
        ..GradeOptions::default()
    };
    let lines = all_lines();
    let mut diffs = Vec::new();
    for r in &lines {
        let v = qwen_math_equal(&s(r, "qwen_pred"), &s(r, "qwen_gold"), &opts);
        let want = r["qwen_equal"].as_bool().expect("qwen_equal");
        if v.equal != want {
            eprintln!(
                "{}: pred {:?} gold {:?}: Qwen {want}, servebench {} ({})",
                key(r),
                s(r, "qwen_pred"),
                s(r, "qwen_gold"),
                v.equal,
                v.rule
            );
            diffs.push(key(r));
        }
    }
    let known: Vec<String> = KNOWN_DIFFERENCES
        .iter()
        .map(|(k, _)| k.to_string())
        .collect();
    assert_eq!(diffs, known, "the differences from Qwen's verdicts changed");
    assert_eq!(lines.len() - diffs.len(), 1070 - KNOWN_DIFFERENCES.len());
}
