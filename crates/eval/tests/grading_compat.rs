//! servebench's grader against math-verify's verdicts (tests/fixtures/grading/math_verify_verdicts.jsonl, made by
//! tests/compat/math_verify.sh) on the 1,000 real MATH-500 answer pairs and on the grader's own unit pairs.
//!
//! Every disagreement must be listed, with its reason, in tests/fixtures/grading_disagreements.jsonl; a listed pair
//! that no longer disagrees fails too. Agreement must be at least 99% on the pairs where math-verify is right.
//! `GRADING_DUMP=1` prints the current disagreements as JSON lines (for review).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::{json, Value};
use servebench_eval::grade::{grade, grade_response, GradeOptions, GraderMode};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures")
}

fn read_jsonl(path: &PathBuf) -> Vec<Value> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("{}:{}: {e}", path.display(), i + 1))
        })
        .collect()
}

fn servebench_verdict(gold: &str, pred: &str, mode: GraderMode) -> (bool, &'static str) {
    let opts = GradeOptions {
        mode,
        ..GradeOptions::default()
    };
    if pred.contains("\\boxed") || pred.contains("\\fbox") {
        let (_, v) = grade_response(pred, gold, &opts);
        (v.equal, v.rule)
    } else {
        let v = grade(pred, gold, &opts);
        (v.equal, v.rule)
    }
}

fn s(v: &Value, k: &str) -> String {
    v[k].as_str()
        .unwrap_or_else(|| panic!("field {k} missing in {v}"))
        .to_string()
}

#[test]
fn agrees_with_math_verify_or_disagreement_is_listed() {
    let verdicts = read_jsonl(&fixtures().join("grading/math_verify_verdicts.jsonl"));
    assert!(
        verdicts.len() >= 1000,
        "expected the 1,000 real pairs plus unit pairs, got {}",
        verdicts.len()
    );
    let listed_path = fixtures().join("grading_disagreements.jsonl");
    let listed: BTreeMap<(String, u64), Value> = read_jsonl(&listed_path)
        .into_iter()
        .map(|v| ((s(&v, "file"), v["index"].as_u64().expect("index")), v))
        .collect();

    let dump = std::env::var("GRADING_DUMP").is_ok();
    let mut problems = Vec::new();
    let mut seen = Vec::new();
    let (mut real, mut real_agree, mut mv_right, mut mv_right_agree) =
        (0usize, 0usize, 0usize, 0usize);
    for rec in &verdicts {
        let file = s(rec, "file");
        let index = rec["index"].as_u64().expect("index");
        let (gold, pred) = (s(rec, "gold"), s(rec, "pred"));
        let mv = rec["math_verify"].as_bool().expect("math_verify");
        let (ours, rule) = servebench_verdict(&gold, &pred, GraderMode::Servebench);
        let key = (file.clone(), index);
        let is_real = file != "unit_pairs.jsonl";
        if is_real {
            real += 1;
            real_agree += usize::from(ours == mv);
        }
        let entry = listed.get(&key);
        // math-verify is right unless a reviewed entry says servebench is
        let mv_is_right = entry.is_none_or(|e| e["right"].as_str() != Some("servebench"));
        if is_real && mv_is_right {
            mv_right += 1;
            mv_right_agree += usize::from(ours == mv);
        }
        if ours != mv {
            seen.push(key.clone());
            if dump {
                let line = json!({"index": index, "file": file, "gold": gold, "pred": pred, "math_verify": mv,
                                  "servebench": ours, "rule": rule});
                eprintln!("{line}");
            }
            match entry {
                None => problems.push(format!("unlisted disagreement {file}#{index}: gold {gold:?} pred {pred:?} math_verify {mv} servebench {ours} ({rule})")),
                Some(e) if e["servebench"].as_bool() != Some(ours) => {
                    problems.push(format!("{file}#{index}: listed servebench verdict differs from the current one ({ours})"))
                }
                Some(_) => {}
            }
        }
    }
    for key in listed.keys() {
        if !seen.contains(key) {
            problems.push(format!(
                "listed disagreement {}#{} no longer disagrees: remove it",
                key.0, key.1
            ));
        }
    }
    let rate = mv_right_agree as f64 / mv_right.max(1) as f64;
    eprintln!(
        "real pairs: {real}, agree {real_agree}; where math-verify is right: {mv_right}, agree {mv_right_agree} ({:.2}%)",
        rate * 100.0
    );
    assert!(
        problems.is_empty(),
        "{} problem(s):\n{}",
        problems.len(),
        problems.join("\n")
    );
    assert!(
        rate >= 0.99,
        "agreement {:.2}% < 99% where math-verify is right",
        rate * 100.0
    );
}

/// The unit pairs' own expected verdicts (what a careful human says) hold.
#[test]
fn unit_pairs_match_their_expected_verdicts() {
    let pairs = read_jsonl(&fixtures().join("grading/unit_pairs.jsonl"));
    let mut wrong = Vec::new();
    for p in &pairs {
        let (gold, pred) = (s(p, "gold"), s(p, "pred"));
        let expected = p["equal"].as_bool().expect("equal");
        let (ours, rule) = servebench_verdict(&gold, &pred, GraderMode::Servebench);
        if ours != expected {
            wrong.push(format!(
                "gold {gold:?} pred {pred:?}: expected {expected}, got {ours} ({rule}) [{}]",
                s(p, "note")
            ));
        }
        if let Some(q) = p.get("qwen").and_then(Value::as_bool) {
            let (qv, qrule) = servebench_verdict(&gold, &pred, GraderMode::Qwen);
            if qv != q {
                wrong.push(format!(
                    "qwen mode: gold {gold:?} pred {pred:?}: expected {q}, got {qv} ({qrule})"
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// Prints every real pair's servebench verdict and rule (`GRADING_DUMP_ALL=1`), for review.
#[test]
fn dump_all_when_asked() {
    if std::env::var("GRADING_DUMP_ALL").is_err() {
        return;
    }
    let verdicts = read_jsonl(&fixtures().join("grading/math_verify_verdicts.jsonl"));
    for rec in &verdicts {
        let (gold, pred) = (s(rec, "gold"), s(rec, "pred"));
        let (ours, rule) = servebench_verdict(&gold, &pred, GraderMode::Servebench);
        let (q, qrule) = servebench_verdict(&gold, &pred, GraderMode::Qwen);
        let line = json!({"file": s(rec, "file"), "index": rec["index"], "gold": gold, "pred": pred,
                          "mv": rec["math_verify"], "sb": ours, "rule": rule, "qwen": q, "qrule": qrule});
        eprintln!("{line}");
    }
}
