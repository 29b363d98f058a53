//! Workloads: what each request sends and how long its output should be.
//!
//! `random`: input length ~ U[max(⌊L·r⌋,1), L] (SGLang's `--random-range-ratio`; vLLM's ±r rule with `--range-rule vllm`),
//! output likewise; the prompt is real text cut to exactly that many tokens, checked by re-tokenizing.
//! `random-ids`: random token ids (sent as ids where the API takes them). `sharegpt`: first two turns of each
//! conversation. `custom`: JSONL with `prompt` or `messages` and optional `output_len`.

use crate::corpus;
use crate::LoadError;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::Value;
use servebench_core::api::{Api, Message, Prompt};
use servebench_tokenize::Tokenizer;
use std::path::Path;

/// One request of the workload.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkItem {
    pub prompt: Prompt,
    /// The length the workload asked for (random datasets).
    pub prompt_len_intended: Option<u64>,
    /// Tokens the server should see, counted with the tokenizer (chat: the rendered template).
    pub prompt_tokens: u64,
    /// Output tokens to ask for (`max_tokens`); `None` lets the server decide.
    pub output_len: Option<u64>,
}

/// How `--random-range-ratio` is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeRule {
    /// SGLang: U[max(⌊L·r⌋, 1), L].
    Sglang,
    /// vLLM: U[⌊L·(1−r)⌋, ⌊L·(1+r)⌋] (at least 1), as `vllm bench serve --random-range-ratio`.
    Vllm,
}

/// Inclusive bounds of a sampled length.
pub fn length_bounds(len: u64, ratio: f64, rule: RangeRule) -> (u64, u64) {
    match rule {
        RangeRule::Sglang => {
            let lo = ((len as f64 * ratio).floor() as u64).max(1).min(len.max(1));
            (lo, len.max(1))
        }
        RangeRule::Vllm => {
            let lo = ((len as f64 * (1.0 - ratio)).floor() as u64).max(1);
            let hi = ((len as f64 * (1.0 + ratio)).floor() as u64).max(lo);
            (lo, hi)
        }
    }
}

/// How prompt tokens are counted for the result file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CountMethod {
    Tokenizer,
    ChatTemplate,
    TokenIds,
}

impl CountMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            CountMethod::Tokenizer => "tokenizer",
            CountMethod::ChatTemplate => "chat_template",
            CountMethod::TokenIds => "token_ids",
        }
    }
}

/// Counts prompt tokens as the server will see them for `api`.
pub struct PromptCounter<'a> {
    pub tok: &'a Tokenizer,
    pub api: Api,
}

impl PromptCounter<'_> {
    pub fn method(&self) -> CountMethod {
        if self.api == Api::Chat && self.tok.chat_template.is_some() {
            CountMethod::ChatTemplate
        } else {
            CountMethod::Tokenizer
        }
    }

    pub fn count(&self, prompt: &Prompt) -> Result<u64, LoadError> {
        Ok(match prompt {
            Prompt::Ids(ids) => ids.len() as u64,
            Prompt::Text(t) if self.api == Api::Chat => {
                self.count(&Prompt::Messages(vec![Message {
                    role: "user".into(),
                    content: t.clone(),
                }]))?
            }
            Prompt::Text(t) => self.tok.count(t)? as u64,
            Prompt::Messages(m) => match (&self.tok.chat_template, self.api) {
                (Some(tmpl), Api::Chat) => self.tok.count(&tmpl.render(m, true)?)? as u64,
                _ => self.tok.count(&Prompt::Messages(m.clone()).as_text())? as u64,
            },
        })
    }

    /// Tokens the chat template adds around one user message (0 without a template or for non-chat APIs).
    pub fn chat_overhead(&self) -> Result<u64, LoadError> {
        if self.method() != CountMethod::ChatTemplate {
            return Ok(0);
        }
        self.count(&Prompt::Text(String::new()))
    }
}

/// Settings of the random datasets.
#[derive(Debug, Clone)]
pub struct RandomSpec {
    pub num_prompts: usize,
    pub input_len: u64,
    pub output_len: u64,
    pub range_ratio: f64,
    pub rule: RangeRule,
    pub seed: u64,
    /// `random-ids`: random token ids instead of text.
    pub ids: bool,
}

/// A token stream of real text, cut into prompts of exact lengths.
pub struct TextSource {
    ids: Vec<u32>,
}

impl TextSource {
    pub fn new(tok: &Tokenizer, text: &str) -> Result<TextSource, LoadError> {
        let ids = tok.encode(text)?;
        if ids.len() < 16 {
            return Err(LoadError::Config(
                "the prompt corpus is too short (fewer than 16 tokens)".into(),
            ));
        }
        Ok(TextSource { ids })
    }

    fn window(&self, start: usize, len: usize) -> Vec<u32> {
        (0..len)
            .map(|i| self.ids[(start + i) % self.ids.len()])
            .collect()
    }

    /// Text of exactly `target` tokens (re-tokenized) starting near token `start`. Tries nearby starts when
    /// decode/encode boundary effects make one start miss. Returns the text and its token count.
    pub fn exact(
        &self,
        tok: &Tokenizer,
        start: usize,
        target: usize,
    ) -> Result<(String, usize), LoadError> {
        let mut best: Option<(String, usize)> = None;
        for shift in 0..8 {
            let s = (start + shift * 7) % self.ids.len();
            let mut len = target.max(1);
            for _ in 0..6 {
                let text = tok.decode(&self.window(s, len))?;
                let n = tok.count(&text)?;
                if n == target {
                    return Ok((text, n));
                }
                let better = best
                    .as_ref()
                    .is_none_or(|(_, b)| n.abs_diff(target) < b.abs_diff(target));
                if better {
                    best = Some((text, n));
                }
                let next = (len as i64 + target as i64 - n as i64).max(1) as usize;
                if next == len {
                    break;
                }
                len = next;
            }
        }
        // Unreachable in practice (tested on four real tokenizers); return the closest.
        best.ok_or_else(|| LoadError::Config(format!("could not build a {target}-token prompt")))
    }
}

/// Builds the `random` / `random-ids` workload.
pub fn random_workload(
    counter: &PromptCounter<'_>,
    corpus_text: &str,
    spec: &RandomSpec,
) -> Result<Vec<WorkItem>, LoadError> {
    let tok = counter.tok;
    let mut rng = StdRng::seed_from_u64(spec.seed);
    let (ilo, ihi) = length_bounds(spec.input_len, spec.range_ratio, spec.rule);
    let (olo, ohi) = length_bounds(spec.output_len, spec.range_ratio, spec.rule);
    let lens: Vec<(u64, u64)> = (0..spec.num_prompts)
        .map(|_| (rng.gen_range(ilo..=ihi), rng.gen_range(olo..=ohi)))
        .collect();
    if spec.ids {
        let vocab = tok.vocab_size() as u32;
        let ordinary: Vec<u32> = (0..vocab).filter(|&i| !tok.is_special(i)).collect();
        return lens
            .into_iter()
            .map(|(il, ol)| {
                let ids: Vec<u32> = (0..il)
                    .map(|_| ordinary[rng.gen_range(0..ordinary.len())])
                    .collect();
                let prompt = if counter.api == Api::Chat {
                    Prompt::Text(tok.decode(&ids)?)
                } else {
                    Prompt::Ids(ids)
                };
                let prompt_tokens = counter.count(&prompt)?;
                Ok(WorkItem {
                    prompt,
                    prompt_len_intended: Some(il),
                    prompt_tokens,
                    output_len: Some(ol),
                })
            })
            .collect();
    }
    let source = TextSource::new(tok, corpus_text)?;
    let overhead = counter.chat_overhead()?;
    let starts: Vec<usize> = lens
        .iter()
        .map(|_| rng.gen_range(0..source.ids.len()))
        .collect();
    // Cutting prompts is the slow part (tokenizing): spread it over the cores.
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(lens.len().max(1));
    let chunk = lens.len().div_ceil(threads.max(1)).max(1);
    let jobs: Vec<(usize, &[(u64, u64)])> = lens.chunks(chunk).enumerate().collect();
    let results: Vec<Result<Vec<WorkItem>, LoadError>> = std::thread::scope(|s| {
        let handles: Vec<_> = jobs
            .into_iter()
            .map(|(ci, part)| {
                let source = &source;
                let starts = &starts;
                s.spawn(move || {
                    part.iter()
                        .enumerate()
                        .map(|(j, &(il, ol))| {
                            let idx = ci * chunk + j;
                            let content_target = il.saturating_sub(overhead).max(1) as usize;
                            let (mut text, n) = source.exact(tok, starts[idx], content_target)?;
                            let mut prompt = Prompt::Text(text.clone());
                            // A text prompt outside chat is counted exactly as `exact` just did: no
                            // second pass over a 100k-token text.
                            let mut measured = if counter.api == Api::Chat {
                                counter.count(&prompt)?
                            } else {
                                n as u64
                            };
                            if overhead > 0 && measured != il {
                                // Template boundary effects: correct once by the difference.
                                let t2 =
                                    (content_target as i64 + il as i64 - measured as i64).max(1);
                                let (t, _) = source.exact(tok, starts[idx], t2 as usize)?;
                                text = t;
                                prompt = Prompt::Text(text.clone());
                                measured = counter.count(&prompt)?;
                            }
                            Ok(WorkItem {
                                prompt,
                                prompt_len_intended: Some(il),
                                prompt_tokens: measured,
                                output_len: Some(ol),
                            })
                        })
                        .collect::<Result<Vec<_>, LoadError>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(LoadError::Config("prompt builder thread panicked".into()))
                })
            })
            .collect()
    });
    let mut out = Vec::with_capacity(spec.num_prompts);
    for r in results {
        out.extend(r?);
    }
    Ok(out)
}

/// Settings of the `sharegpt` dataset (SGLang's filters).
#[derive(Debug, Clone)]
pub struct SharegptSpec {
    pub num_prompts: usize,
    /// Fixed output length (`--sharegpt-output-len`), else the completion's length.
    pub fixed_output_len: Option<u64>,
    /// Skip conversations whose prompt + output exceed this (`--sharegpt-context-len`, default 2048 like SGLang
    /// when not fixed: prompt ≤ 1024 and prompt + output ≤ 2048).
    pub context_len: Option<u64>,
    pub seed: u64,
}

pub fn sharegpt_workload(
    counter: &PromptCounter<'_>,
    path: &Path,
    spec: &SharegptSpec,
) -> Result<Vec<WorkItem>, LoadError> {
    let mut pairs = corpus::load_sharegpt(path)?;
    let mut rng = StdRng::seed_from_u64(spec.seed);
    pairs.shuffle(&mut rng);
    let mut out = Vec::new();
    for (p, c) in pairs {
        if out.len() >= spec.num_prompts {
            break;
        }
        let prompt = Prompt::Text(p);
        let plen = counter.count(&prompt)?;
        let olen = match spec.fixed_output_len {
            Some(n) => n,
            None => counter.tok.count(&c)? as u64,
        };
        if plen < 2 || (spec.fixed_output_len.is_none() && olen < 2) {
            continue;
        }
        match spec.context_len {
            Some(ctx) if plen + olen > ctx => continue,
            None if spec.fixed_output_len.is_none() && (plen > 1024 || plen + olen > 2048) => {
                continue
            }
            _ => {}
        }
        out.push(WorkItem {
            prompt,
            prompt_len_intended: None,
            prompt_tokens: plen,
            output_len: Some(olen),
        });
    }
    if out.len() < spec.num_prompts {
        return Err(LoadError::Dataset {
            path: path.display().to_string(),
            message: format!(
                "only {} conversations pass the length filters, {} asked for: lower --num-prompts or raise --sharegpt-context-len",
                out.len(),
                spec.num_prompts
            ),
        });
    }
    Ok(out)
}

/// `custom`: JSONL, one object a line with `prompt` (string) or `messages` (OpenAI list), optional
/// `output_len` (else `default_output_len`). Lines are used in order, cycling when fewer than asked.
pub fn custom_workload(
    counter: &PromptCounter<'_>,
    path: &Path,
    num_prompts: Option<usize>,
    default_output_len: Option<u64>,
) -> Result<Vec<WorkItem>, LoadError> {
    let err = |line: usize, message: String| LoadError::Dataset {
        path: format!("{}:{}", path.display(), line),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| err(0, format!("cannot read: {e}")))?;
    let mut items = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let ln = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let v: Value = serde_json::from_str(line).map_err(|e| err(ln, format!("not JSON: {e}")))?;
        let prompt = if let Some(p) = v.get("prompt") {
            Prompt::Text(
                p.as_str()
                    .ok_or_else(|| err(ln, "field `prompt` must be a string".into()))?
                    .to_string(),
            )
        } else if let Some(m) = v.get("messages") {
            let msgs: Vec<Message> = serde_json::from_value(m.clone()).map_err(|e| {
                err(
                    ln,
                    format!("field `messages` must be a list of {{role, content}} strings: {e}"),
                )
            })?;
            if counter.api == Api::Chat {
                Prompt::Messages(msgs)
            } else {
                Prompt::Text(Prompt::Messages(msgs).as_text().into_owned())
            }
        } else {
            return Err(err(
                ln,
                "needs a `prompt` (string) or `messages` (list) field".into(),
            ));
        };
        let output_len =
            match v.get("output_len") {
                None | Some(Value::Null) => default_output_len,
                Some(x) => Some(x.as_u64().ok_or_else(|| {
                    err(ln, "field `output_len` must be a positive integer".into())
                })?),
            };
        let prompt_tokens = counter.count(&prompt)?;
        items.push(WorkItem {
            prompt,
            prompt_len_intended: None,
            prompt_tokens,
            output_len,
        });
    }
    if items.is_empty() {
        return Err(err(0, "holds no requests".into()));
    }
    let n = num_prompts.unwrap_or(items.len());
    Ok((0..n).map(|i| items[i % items.len()].clone()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tok() -> Tokenizer {
        Tokenizer::builtin().unwrap()
    }

    #[test]
    fn sglang_and_vllm_bounds() {
        assert_eq!(length_bounds(5600, 0.8, RangeRule::Sglang), (4480, 5600));
        assert_eq!(length_bounds(1024, 0.0, RangeRule::Sglang), (1, 1024));
        assert_eq!(length_bounds(1024, 1.0, RangeRule::Sglang), (1024, 1024));
        assert_eq!(length_bounds(100, 0.1, RangeRule::Vllm), (90, 110));
    }

    #[test]
    fn random_prompts_are_token_exact_and_seeded() {
        let t = tok();
        let counter = PromptCounter {
            tok: &t,
            api: Api::Completions,
        };
        let spec = RandomSpec {
            num_prompts: 40,
            input_len: 300,
            output_len: 50,
            range_ratio: 0.5,
            rule: RangeRule::Sglang,
            seed: 1,
            ids: false,
        };
        let items = random_workload(&counter, corpus::BUILTIN_CORPUS, &spec).unwrap();
        assert_eq!(items.len(), 40);
        for it in &items {
            let il = it.prompt_len_intended.unwrap();
            assert!((150..=300).contains(&il));
            assert!((25..=50).contains(&it.output_len.unwrap()));
            let Prompt::Text(text) = &it.prompt else {
                panic!()
            };
            assert_eq!(t.count(text).unwrap() as u64, il, "re-tokenized length");
            assert_eq!(it.prompt_tokens, il);
        }
        let again = random_workload(&counter, corpus::BUILTIN_CORPUS, &spec).unwrap();
        assert_eq!(items, again);
    }

    #[test]
    fn chat_prompts_count_the_template() {
        let t = tok();
        let counter = PromptCounter {
            tok: &t,
            api: Api::Chat,
        };
        assert_eq!(counter.method(), CountMethod::ChatTemplate);
        let overhead = counter.chat_overhead().unwrap();
        assert!(
            overhead > 5,
            "SmolLM2's template adds a system prompt: {overhead}"
        );
        let spec = RandomSpec {
            num_prompts: 10,
            input_len: 200,
            output_len: 10,
            range_ratio: 1.0,
            rule: RangeRule::Sglang,
            seed: 2,
            ids: false,
        };
        for it in random_workload(&counter, corpus::BUILTIN_CORPUS, &spec).unwrap() {
            assert_eq!(it.prompt_tokens, 200, "rendered chat prompt is exact");
        }
    }

    #[test]
    fn random_ids_are_ids_for_completions() {
        let t = tok();
        let counter = PromptCounter {
            tok: &t,
            api: Api::SglangGenerate,
        };
        let spec = RandomSpec {
            num_prompts: 3,
            input_len: 64,
            output_len: 8,
            range_ratio: 1.0,
            rule: RangeRule::Sglang,
            seed: 3,
            ids: true,
        };
        for it in random_workload(&counter, "", &spec).unwrap() {
            let Prompt::Ids(ids) = &it.prompt else {
                panic!()
            };
            assert_eq!(ids.len(), 64);
            assert!(ids.iter().all(|&i| !t.is_special(i)));
        }
    }

    #[test]
    fn sharegpt_fixture_loads_with_filters() {
        let t = tok();
        let counter = PromptCounter {
            tok: &t,
            api: Api::Completions,
        };
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/fixtures/sharegpt/sharegpt_small.json");
        let spec = SharegptSpec {
            num_prompts: 10,
            fixed_output_len: Some(32),
            context_len: None,
            seed: 0,
        };
        let items = sharegpt_workload(&counter, &path, &spec).unwrap();
        assert_eq!(items.len(), 10);
        assert!(items
            .iter()
            .all(|i| i.output_len == Some(32) && i.prompt_tokens >= 2));
        let spec = SharegptSpec {
            num_prompts: 100_000,
            ..spec
        };
        let e = sharegpt_workload(&counter, &path, &spec).unwrap_err();
        assert!(e.to_string().contains("lower --num-prompts"), "{e}");
    }

    #[test]
    fn custom_jsonl_errors_name_the_line() {
        let t = tok();
        let counter = PromptCounter {
            tok: &t,
            api: Api::Chat,
        };
        let dir = std::env::temp_dir().join(format!("sb-custom-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("good.jsonl");
        std::fs::write(
            &good,
            "{\"prompt\": \"Hello there\", \"output_len\": 5}\n\n{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}]}\n",
        )
        .unwrap();
        let items = custom_workload(&counter, &good, Some(3), Some(7)).unwrap();
        assert_eq!(items.len(), 3);
        assert_eq!(items[0].output_len, Some(5));
        assert_eq!(items[1].output_len, Some(7));
        assert!(matches!(items[1].prompt, Prompt::Messages(_)));
        let bad = dir.join("bad.jsonl");
        std::fs::write(&bad, "{\"prompt\": \"ok\"}\n{\"text\": 1}\n").unwrap();
        let e = custom_workload(&counter, &bad, None, None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("bad.jsonl:2") && e.contains("`prompt`"), "{e}");
    }
}
