//! Same `--seed`, same workload: servebench against what the real `sglang.bench_serving` 0.5.9 drew
//! (`tests/compat/fixtures/sglang_workload.json`, written and re-checked by `tests/compat/sglang_workload.sh`):
//! input and output lengths, the ShareGPT/custom conversations chosen, and, with `--prompt-rule sglang`, the
//! prompt text itself (by SHA-256), for seeds 0, 1 and 42 with two tokenizers (0 and 1 special tokens).

use crate::dataset::{
    custom_workload, random_workload, sharegpt_workload, CustomSpec, PromptCounter, PromptRule,
    RandomSpec, RangeRule, SharegptSpec, WorkItem,
};
use crate::draws::{Draws, LengthSpec};
use serde_json::Value;
use servebench_core::api::{Api, Prompt};
use servebench_tokenize::Tokenizer;
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn fixture() -> Value {
    let p = repo().join("tests/compat/fixtures/sglang_workload.json");
    serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap()
}

/// A tokenizer folder: the built-in SmolLM2 `tokenizer.json` (its post-processor replaced when `post_processor`
/// is given) and `config` as `tokenizer_config.json`.
fn variant(name: &str, post_processor: Option<&Value>, config: &Value) -> Tokenizer {
    let gz =
        std::fs::read(repo().join("crates/tokenize/assets/smollm2-tokenizer.json.gz")).unwrap();
    let mut raw = String::new();
    flate2::read::GzDecoder::new(gz.as_slice())
        .read_to_string(&mut raw)
        .unwrap();
    let mut tok: Value = serde_json::from_str(&raw).unwrap();
    if let Some(pp) = post_processor {
        tok["post_processor"] = pp.clone();
    }
    let dir = std::env::temp_dir().join(format!("sb-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("tokenizer.json"), tok.to_string()).unwrap();
    std::fs::write(dir.join("tokenizer_config.json"), config.to_string()).unwrap();
    Tokenizer::from_path(&dir).unwrap()
}

fn compat_fixture(name: &str) -> Value {
    let p = repo().join("tests/compat/fixtures").join(name);
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

/// `tests/compat/fixtures/smollm2_bos_variant.json`: the post-processor in `tokenizer.json` adds a BOS.
pub(crate) fn bos_variant() -> Tokenizer {
    let patch = compat_fixture("smollm2_bos_variant.json");
    variant(
        "bos",
        Some(&patch["post_processor"]),
        &patch["tokenizer_config"],
    )
}

/// `tests/compat/fixtures/smollm2_llama_class.json`: transformers' Llama class adds BOS and EOS.
fn llama_class_variant() -> Tokenizer {
    let patch = compat_fixture("smollm2_llama_class.json");
    variant("llama", None, &patch["tokenizer_config"])
}

fn tokenizers() -> Vec<(&'static str, Tokenizer)> {
    vec![
        ("smollm2", Tokenizer::builtin().unwrap()),
        ("smollm2-bos", bos_variant()),
        ("smollm2-llama", llama_class_variant()),
    ]
}

fn sha(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap()
}

fn opt(v: &Value) -> Option<u64> {
    v.as_u64()
}

/// Compares items with the fixture's rows: lengths as sglang records them and the prompt text.
fn check_rows(label: &str, items: &[WorkItem], rows: &[Value], text_too: bool) {
    assert_eq!(items.len(), rows.len(), "{label}: number of requests");
    for (i, (it, row)) in items.iter().zip(rows).enumerate() {
        assert_eq!(
            it.prompt_tokens,
            u(&row["prompt_len"]),
            "{label} #{i}: input"
        );
        assert_eq!(
            it.output_len,
            Some(u(&row["output_len"])),
            "{label} #{i}: output"
        );
        if text_too {
            let Prompt::Text(t) = &it.prompt else {
                panic!("{label} #{i}: not a text prompt")
            };
            assert_eq!(
                sha(t),
                row["prompt_sha256"].as_str().unwrap(),
                "{label} #{i}: prompt text"
            );
        }
    }
}

fn cases(dataset: &str) -> Vec<Value> {
    let f = fixture();
    let all = f["cases"].as_array().unwrap().clone();
    let picked: Vec<Value> = all
        .into_iter()
        .filter(|c| c["dataset"] == dataset)
        .collect();
    assert!(!picked.is_empty(), "fixture has {dataset} cases");
    picked
}

fn tok_of<'a>(toks: &'a [(&str, Tokenizer)], case: &Value) -> &'a Tokenizer {
    let name = case["tokenizer"].as_str().unwrap();
    &toks.iter().find(|(n, _)| *n == name).unwrap().1
}

#[test]
fn random_lengths_and_sglang_text_equal_sglangs() {
    let toks = tokenizers();
    let sharegpt = repo().join("tests/fixtures/sharegpt/sharegpt_small.json");
    for case in cases("random").into_iter().chain(cases("random-ids")) {
        let tok = tok_of(&toks, &case);
        let label = format!(
            "{} {} seed {} {}",
            case["dataset"], case["tokenizer"], case["seed"], case["input_len"]
        );
        assert_eq!(
            tok.num_special_tokens_to_add() as u64,
            u(&case["special_tokens"]),
            "{label}: num_special_tokens_to_add"
        );
        let spec = RandomSpec {
            num_prompts: u(&case["num_prompts"]) as usize,
            input_len: u(&case["input_len"]),
            output_len: u(&case["output_len"]),
            range_ratio: case["range_ratio"].as_f64().unwrap(),
            rule: RangeRule::Sglang,
            seed: u(&case["seed"]),
            ids: case["dataset"] == "random-ids",
            prompt_rule: PromptRule::Sglang,
            dataset_path: Some(sharegpt.clone()),
        };
        let rows = case["rows"].as_array().unwrap();
        // The default (token-exact) rule draws the same lengths: it calls the same draws.
        let (inputs, outputs) = Draws::seeded(spec.seed)
            .unwrap()
            .random_lengths(&LengthSpec {
                num_prompts: spec.num_prompts,
                input_len: spec.input_len,
                output_len: spec.output_len,
                range_ratio: spec.range_ratio,
                rule: spec.rule,
                special: tok.num_special_tokens_to_add() as u64,
            })
            .unwrap();
        let want_in: Vec<u64> = rows.iter().map(|r| u(&r["prompt_len"])).collect();
        let want_out: Vec<u64> = rows.iter().map(|r| u(&r["output_len"])).collect();
        assert_eq!((inputs, outputs), (want_in, want_out), "{label}: lengths");
        let counter = PromptCounter {
            tok,
            api: Api::Completions,
        };
        let items = random_workload(&counter, "", &spec).unwrap();
        check_rows(&label, &items, rows, true);
    }
}

#[test]
fn sharegpt_conversations_equal_sglangs() {
    let toks = tokenizers();
    let path = repo().join("tests/fixtures/sharegpt/sharegpt_small.json");
    for case in cases("sharegpt") {
        let tok = tok_of(&toks, &case);
        let label = format!("sharegpt {} seed {}", case["tokenizer"], case["seed"]);
        let counter = PromptCounter {
            tok,
            api: Api::Completions,
        };
        let spec = SharegptSpec {
            num_prompts: u(&case["num_prompts"]) as usize,
            fixed_output_len: opt(&case["sharegpt_output_len"]),
            context_len: opt(&case["sharegpt_context_len"]),
            seed: u(&case["seed"]),
        };
        let items = sharegpt_workload(&counter, &path, &spec).unwrap();
        check_rows(&label, &items, case["rows"].as_array().unwrap(), true);
    }
}

#[test]
fn custom_conversations_equal_sglangs() {
    let toks = tokenizers();
    let path = repo().join("tests/compat/fixtures/custom_conversations.jsonl");
    for case in cases("custom") {
        let tok = tok_of(&toks, &case);
        let label = format!("custom {} seed {}", case["tokenizer"], case["seed"]);
        let counter = PromptCounter {
            tok,
            api: Api::Completions,
        };
        let spec = CustomSpec {
            num_prompts: Some(u(&case["num_prompts"]) as usize),
            default_output_len: Some(7),
            fixed_output_len: opt(&case["sharegpt_output_len"]),
            context_len: opt(&case["sharegpt_context_len"]),
            seed: u(&case["seed"]),
        };
        let items = custom_workload(&counter, &path, &spec).unwrap();
        check_rows(&label, &items, case["rows"].as_array().unwrap(), true);
    }
}

#[test]
fn default_rule_keeps_sglangs_lengths_with_exact_text() {
    // The token-exact rule on a small workload: sglang's lengths (seed 42, 1024/128 ratio 0.25, BOS
    // tokenizer: one special token off every input), and text that re-tokenizes to exactly that length.
    let tok = bos_variant();
    let counter = PromptCounter {
        tok: &tok,
        api: Api::Completions,
    };
    let case = cases("random")
        .into_iter()
        .find(|c| c["tokenizer"] == "smollm2-bos" && c["seed"] == 42 && c["input_len"] == 1024)
        .unwrap();
    let spec = RandomSpec {
        num_prompts: 6,
        input_len: 1024,
        output_len: 128,
        range_ratio: 0.25,
        rule: RangeRule::Sglang,
        seed: 42,
        ids: false,
        prompt_rule: PromptRule::Exact,
        dataset_path: None,
    };
    // Fewer prompts draw a prefix of the same inputs (outputs are drawn after all inputs).
    let items = random_workload(&counter, crate::corpus::BUILTIN_CORPUS, &spec).unwrap();
    let rows = case["rows"].as_array().unwrap();
    for (i, it) in items.iter().enumerate() {
        let want = u(&rows[i]["prompt_len"]);
        assert_eq!(it.prompt_len_intended, Some(want), "#{i}");
        assert_eq!(it.prompt_tokens, want, "#{i}");
        let Prompt::Text(t) = &it.prompt else {
            panic!()
        };
        assert_eq!(tok.count(t).unwrap() as u64, want, "#{i}: exact text");
        assert_eq!(tok.count_with_special(t).unwrap() as u64, want + 1, "#{i}");
    }
}

#[test]
fn arrival_draws_continue_after_the_workload_draws() {
    // sglang: np.random.seed(42); randint(128, 257, size=12); randint(4, 9, size=12);
    // [random-ids: randint(0, 49152, size=12)]; then get_request draws exponential(1/8) after each request.
    // Printed by NumPy 2.4.6.
    let tok = Tokenizer::builtin().unwrap();
    assert_eq!(tok.base_vocab_size(), 49152);
    let counter = PromptCounter {
        tok: &tok,
        api: Api::Completions,
    };
    let cases = [
        (
            false,
            PromptRule::Exact,
            [0.0029165654497904235, 0.09299577349791487],
        ),
        (
            true,
            PromptRule::Exact,
            [0.078598637567607, 0.2457109100967296],
        ),
        (
            true,
            PromptRule::Sglang,
            [0.078598637567607, 0.2457109100967296],
        ),
    ];
    for (ids, prompt_rule, want) in cases {
        let spec = RandomSpec {
            num_prompts: 12,
            input_len: 256,
            output_len: 8,
            range_ratio: 0.5,
            rule: RangeRule::Sglang,
            seed: 42,
            ids,
            prompt_rule,
            dataset_path: None,
        };
        let (_, draws) = crate::dataset::random_workload_with_draws(
            &counter,
            crate::corpus::BUILTIN_CORPUS,
            &spec,
        )
        .unwrap();
        let mut np = draws.np;
        let s = crate::arrival::schedule(3, 8.0, 1.0, &mut np).unwrap();
        assert_eq!(s[1], want[0], "ids {ids} {prompt_rule:?}");
        assert_eq!(s[2], want[0] + want[1], "ids {ids} {prompt_rule:?}");
    }
}
