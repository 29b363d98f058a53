//! `--grader qwen` against Qwen2.5-Math's real verdicts (tests/fixtures/grading/qwen_verdicts_*.jsonl, produced by
//! running its evaluation code at commit a45202b with sympy 1.12): extraction, gold normalisation and `math_equal`.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;
use servebench_eval::grade::{
    grade, grade_response, qwen_extract, qwen_gold, qwen_math_equal, qwen_strip, GradeOptions,
    GraderMode,
};

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

/// `--grader qwen` with a time bound generous enough for a debug build on a loaded machine: these tests are about
/// verdicts, not speed (a 60-term polynomial takes about 1 s unoptimised).
fn qwen_opts() -> GradeOptions {
    GradeOptions {
        mode: GraderMode::Qwen,
        timeout: Duration::from_secs(60),
        ..GradeOptions::default()
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
    let opts = qwen_opts();
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

/// The whole pipeline of `math_eval.py` (`grade_response` with `--grader qwen`): the recorded verdicts (plain
/// `math_equal` on a once-stripped gold) hold on every line except MATH-500 #383, where the real pipeline strips the
/// gold a second time (`x\in[-2,7]` → `[-2,7]`) and so accepts the answer, and #97 (letters-only gold, below).
#[test]
fn pipeline_strips_the_gold_twice() {
    let opts = qwen_opts();
    let mut flipped = Vec::new();
    for r in all_lines() {
        let (_, v) = grade_response(&s(&r, "pred"), &s(&r, "gold"), &opts);
        if v.equal != r["qwen_equal"].as_bool().expect("qwen_equal") {
            flipped.push(key(&r));
        }
    }
    // #97 (gold `\text{east}`, stripped to ""): math_eval.py cuts the prediction to its letters A–E, see below
    assert_eq!(
        flipped,
        [
            "math500_gpt_answers.json#97",
            "math500_gpt_answers.json#383",
            "math500_qwen3_answers.json#97",
            "math500_qwen3_answers.json#383"
        ]
    );
    let gold = "x \\in [-2,7]";
    assert_eq!(qwen_strip(gold), "x\\in[-2,7]");
    assert_eq!(qwen_gold(gold), "[-2,7]");
    assert!(grade_response("\\boxed{[-2, 7]}", gold, &opts).1.equal);
    assert!(grade("x \\in [-2,7]", gold, &opts).equal);
    assert!(!qwen_math_equal("[-2,7]", &qwen_strip(gold), &opts).equal);
}

/// Qwen's scope and box rules: the whole text (a box in the reasoning counts), the last box even when empty.
#[test]
fn pipeline_scope_and_empty_box() {
    let opts = qwen_opts();
    let (x, v) = grade_response(
        "<think>so \\boxed{5}</think>I am not sure, maybe 6",
        "5",
        &opts,
    );
    assert_eq!((x.as_deref(), v.equal), (Some("5"), true));
    let (x, v) = grade_response("\\boxed{5} wait, \\boxed{}", "5", &opts);
    assert_eq!((x.as_deref(), v.equal), (Some(""), false));
    // cut off inside the reasoning: Qwen still finds the box written there
    assert!(
        grade_response("<think>\\boxed{42} hmm let me", "42", &opts)
            .1
            .equal
    );
}

/// MATH-500 #97's gold `\text{east}` strips to the empty string, which `math_eval.py` treats as a multiple-choice
/// gold: the prediction is cut to its letters A–E, so any answer without a capital A–E is counted right.
#[test]
fn pipeline_letters_only_gold() {
    let opts = qwen_opts();
    assert_eq!(qwen_strip("\\text{east}"), "");
    assert!(
        grade_response("\\boxed{\\text{east}}", "\\text{east}", &opts)
            .1
            .equal
    );
    assert!(
        grade_response("\\boxed{\\text{north}}", "\\text{east}", &opts)
            .1
            .equal
    );
    assert!(
        !grade_response("\\boxed{\\text{East}}", "\\text{east}", &opts)
            .1
            .equal
    );
}

/// The `qwen2.5-math` protocol as the eval runs it (`judge_protocol`: whole text, stop words, Qwen's extraction,
/// the gold stripped twice as `math_eval.py` does, `math_equal`) against Qwen's recorded verdicts. The recording
/// stripped the gold once and skipped `math_eval.py`'s letters-only cut, so exactly the lines of MATH-500 #97
/// (`\text{east}`: the gold strips to "" and the prediction is cut to its capital letters) and #383
/// (`x \in [-2,7]`: the second strip changes the gold) may differ, in both answer files.
#[test]
fn the_eval_protocol_equals_qwen_but_for_its_two_pipeline_steps() {
    use servebench_eval::dataset::GraderKind;
    use servebench_eval::judge::judge_protocol;
    use servebench_eval::protocol::Protocol;
    let mut differ = Vec::new();
    let lines = all_lines();
    for v in &lines {
        let pred = s(v, "pred");
        let j = judge_protocol(
            Protocol::Qwen25Math,
            GraderKind::Math,
            &pred,
            "",
            &s(v, "gold"),
            &qwen_opts(),
        );
        if !key(v).ends_with("#97") {
            assert_eq!(
                j.extracted.as_deref().unwrap_or(""),
                s(v, "qwen_pred"),
                "{}",
                key(v)
            );
        }
        if j.correct != v["qwen_equal"].as_bool().unwrap() {
            differ.push(key(v));
        }
    }
    for k in &differ {
        assert!(
            k.ends_with("#97") || k.ends_with("#383"),
            "unexpected difference {k}: {differ:?}"
        );
    }
    assert!(differ.len() <= 4, "{differ:?}");
}
