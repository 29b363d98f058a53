//! servebench's `evalscope-0` and `evalscope-1` GPQA protocols against values produced by the real evalscope code
//! (tests/fixtures/eval/evalscope_compat.json, written by tests/compat/evalscope/run.sh from evalscope 0.12.1's
//! wheel and evalscope 1.14.1 installed from PyPI): prompts and gold letters of the 40 synthetic questions, and the
//! letter each version extracts from 109 scripted texts.

use std::path::{Path, PathBuf};

use serde_json::Value;
use servebench_eval::dataset::gpqa::parse_csv;
use servebench_eval::dataset::GpqaShuffle;
use servebench_eval::evalscope::{completion_v1, letter_v0, letter_v1};
use servebench_eval::prompt::{render_for, PromptTemplate};
use servebench_eval::protocol::Protocol;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/eval")
}

fn expected() -> Value {
    let path = fixtures().join("evalscope_compat.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn check_prompts_and_golds(protocol: Protocol, order: GpqaShuffle, exp: &Value) {
    let csv = fixtures().join("gpqa_synthetic.csv");
    let bytes = std::fs::read(&csv).unwrap();
    let items = parse_csv(Path::new("gpqa_synthetic.csv"), &bytes, order).unwrap();
    assert_eq!(items.len(), 40);
    for item in &items {
        let prompt = render_for(protocol, PromptTemplate::DeepseekMath, item);
        assert_eq!(
            prompt,
            exp["prompts"][&item.id].as_str().unwrap(),
            "{} prompt of {}",
            protocol.as_str(),
            item.id
        );
        assert_eq!(
            item.gold,
            exp["gold"][&item.id].as_str().unwrap(),
            "{} gold of {}",
            protocol.as_str(),
            item.id
        );
    }
}

#[test]
fn evalscope0_prompts_orders_and_golds_equal_the_real_code() {
    let exp = expected();
    check_prompts_and_golds(
        Protocol::Evalscope0,
        GpqaShuffle::Evalscope0,
        &exp["evalscope-0"],
    );
}

#[test]
fn evalscope1_prompts_orders_and_golds_equal_the_real_code() {
    let exp = expected();
    check_prompts_and_golds(
        Protocol::Evalscope1,
        GpqaShuffle::Evalscope1,
        &exp["evalscope-1"],
    );
}

#[test]
fn evalscope0_letters_equal_the_real_code() {
    let exp = expected();
    let cases = exp["evalscope-0"]["extract"].as_array().unwrap();
    assert!(cases.len() >= 100);
    let mut wrong = Vec::new();
    for c in cases {
        let content = c["content"].as_str().unwrap();
        let want = c["letter"].as_str().and_then(|s| s.chars().next());
        if letter_v0(content) != want {
            wrong.push(format!(
                "{content:?}: evalscope {want:?}, servebench {:?}",
                letter_v0(content)
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn evalscope1_completions_and_letters_equal_the_real_code() {
    let exp = expected();
    let cases = exp["evalscope-1"]["extract"].as_array().unwrap();
    assert!(cases.len() >= 100);
    let mut wrong = Vec::new();
    for c in cases {
        let content = c["content"].as_str().unwrap();
        let completion = completion_v1(content, "");
        if completion != c["completion"].as_str().unwrap() {
            wrong.push(format!(
                "{content:?}: completion {:?}, servebench {completion:?}",
                c["completion"]
            ));
            continue;
        }
        let want = c["letter"].as_str().and_then(|s| s.chars().next());
        if letter_v1(&completion) != want {
            wrong.push(format!(
                "{content:?}: evalscope {want:?}, servebench {:?}",
                letter_v1(&completion)
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// The measured difference between the `servebench` protocol's letter extraction and the reference versions on the
/// suite's 109 texts (documented in docs/eval-protocols.md; a change here changes that number).
#[test]
fn servebench_extraction_differs_from_both_versions_on_known_texts() {
    use servebench_eval::dataset::GraderKind;
    use servebench_eval::grade::GradeOptions;
    use servebench_eval::judge::judge_protocol;
    let exp = expected();
    let v0 = exp["evalscope-0"]["extract"].as_array().unwrap();
    let v1 = exp["evalscope-1"]["extract"].as_array().unwrap();
    let (mut d0, mut d1, mut sent0, mut sent1) = (0, 0, 0, 0);
    // Verdicts of servebench's extraction on the 40 sent responses, against each version's gold letters.
    let (mut right0, mut right1) = (0, 0);
    for (k, (a, b)) in v0.iter().zip(v1).enumerate() {
        let content = a["content"].as_str().unwrap();
        let ours = judge_protocol(
            Protocol::Servebench,
            GraderKind::Choice,
            content,
            "",
            "A",
            &GradeOptions::default(),
        )
        .extracted;
        let ours = ours.as_deref();
        let differs0 = ours != a["letter"].as_str();
        let differs1 = ours != b["letter"].as_str();
        d0 += usize::from(differs0);
        d1 += usize::from(differs1);
        if k < 40 {
            sent0 += usize::from(differs0);
            sent1 += usize::from(differs1);
            // Question k + 1 (`syn0NN`) got response k.
            let id = format!("syn{:03}", k + 1);
            right0 += usize::from(ours == exp["evalscope-0"]["gold"][&id].as_str());
            right1 += usize::from(ours == exp["evalscope-1"]["gold"][&id].as_str());
        }
    }
    eprintln!(
        "servebench vs 0.x: {d0}/109 letters differ ({sent0}/40 sent), {right0}/40 right on 0.x's golds (0.x: {}); \
         vs 1.x: {d1}/109 ({sent1}/40 sent), {right1}/40 right on 1.x's golds (1.x: {})",
        exp["evalscope-0"]["score"], exp["evalscope-1"]["score"]
    );
    assert_eq!((d0, sent0, d1, sent1), (17, 7, 18, 8));
    assert_eq!((right0, right1), (8, 10));
}
