//! Token-exact prompts with real tokenizers. The built-in SmolLM2 tokenizer always runs; DeepSeek, Qwen2 and
//! Llama-3 run when `../shared/tokenizers` is present (as on CI and the developers' machines).

use crate::common::root;
use servebench::core::api::{Api, Prompt};
use servebench::load::corpus;
use servebench::load::dataset::{
    random_workload, PromptCounter, PromptRule, RandomSpec, RangeRule,
};
use servebench::tokenize::Tokenizer;

fn shared() -> Option<std::path::PathBuf> {
    let p = root().join("../shared");
    p.join("tokenizers").exists().then_some(p)
}

fn check_exact(tok: &Tokenizer, text: &str, api: Api, input_len: u64, n: usize) {
    let counter = PromptCounter { tok, api };
    let spec = RandomSpec {
        num_prompts: n,
        input_len,
        output_len: 16,
        range_ratio: 0.3,
        rule: RangeRule::Sglang,
        seed: 11,
        ids: false,
        prompt_rule: PromptRule::Exact,
        dataset_path: None,
    };
    let items = random_workload(&counter, text, &spec).expect("workload");
    let mut exact = 0;
    for it in &items {
        let want = it.prompt_len_intended.unwrap();
        let got = counter.count(&it.prompt).unwrap();
        assert_eq!(got, it.prompt_tokens, "recorded count is the measured one");
        if got == want {
            exact += 1;
        }
    }
    assert_eq!(
        exact,
        items.len(),
        "{} of {} prompts exact with {} ({api:?})",
        exact,
        items.len(),
        tok.source
    );
}

#[test]
fn builtin_tokenizer_prompts_are_exact() {
    let tok = Tokenizer::builtin().unwrap();
    check_exact(&tok, corpus::BUILTIN_CORPUS, Api::Completions, 1500, 30);
    check_exact(&tok, corpus::BUILTIN_CORPUS, Api::Chat, 700, 20);
}

#[test]
fn real_tokenizers_prompts_are_exact() {
    let Some(shared) = shared() else {
        eprintln!("../shared/tokenizers not present: only the built-in tokenizer was checked");
        return;
    };
    let sharegpt = shared.join("datasets/sharegpt/sharegpt_v3_first1500.json");
    let text = corpus::corpus_text(Some(&sharegpt), 600_000).expect("sharegpt text");
    for name in ["deepseek", "qwen2", "llama3", "smollm2"] {
        let tok = Tokenizer::from_path(shared.join("tokenizers").join(name)).expect(name);
        check_exact(&tok, &text, Api::Completions, 2000, 25);
        if tok.chat_template.is_some() {
            check_exact(&tok, &text, Api::Chat, 900, 10);
        }
    }
}

#[test]
fn real_tokenizers_match_their_published_ids() {
    let Some(shared) = shared() else {
        eprintln!("../shared/tokenizers not present: skipped");
        return;
    };
    for (name, ids) in [
        ("qwen2", vec![9707u32, 1879, 11, 419, 374, 264, 1273, 13]),
        ("llama3", vec![9906, 1917, 11, 420, 374, 264, 1296, 13]),
        ("smollm2", vec![19556, 905, 28, 451, 314, 253, 1028, 30]),
    ] {
        let tok = Tokenizer::from_path(shared.join("tokenizers").join(name)).unwrap();
        assert_eq!(
            tok.encode("Hello world, this is a test.").unwrap(),
            ids,
            "{name}"
        );
    }
    // Qwen2's ChatML template, rendered as transformers renders it.
    let tok = Tokenizer::from_path(shared.join("tokenizers/qwen2")).unwrap();
    let rendered = tok
        .chat_template
        .as_ref()
        .unwrap()
        .render(
            &[serde_json::json!({"role": "user", "content": "Hi"})],
            true,
        )
        .unwrap();
    assert_eq!(
        rendered,
        "<|im_start|>system\nYou are a helpful assistant<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    );
    let p = Prompt::Text("Hi".into());
    let n = PromptCounter {
        tok: &tok,
        api: Api::Chat,
    }
    .count(&p)
    .unwrap();
    assert_eq!(n as usize, tok.count(&rendered).unwrap());
}
