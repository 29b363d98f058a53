//! Workloads: what each request sends and how long its output should be.
//!
//! The lengths are drawn as `sglang.bench_serving` 0.5.9 draws them, from the same seeded generators in the same
//! order (see [`crate::draws`]), so the same `--seed` gives the same lengths and the same source conversations.
//! `random`: input length ~ U[max(⌊L·r⌋,1), L] minus the tokenizer's special tokens for text prompts (SGLang's
//! `--random-range-ratio`; vLLM's rule with `--range-rule vllm`), output likewise. The prompt text follows a
//! [`PromptRule`]: by default real text cut to exactly that many tokens, checked by re-tokenizing; or sglang's own
//! text. `random-ids`: random token ids (sent as ids where the API takes them). `sharegpt`: first two turns of
//! each conversation, shuffled and filtered as sglang 0.5.9. `custom`: servebench's JSONL (`prompt`/`messages`)
//! or sglang's (`conversations`).

use crate::corpus;
pub use crate::draws::RangeRule;
use crate::draws::{offset_ids, truncate_or_repeat, Draws, LengthSpec};
use crate::LoadError;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;
use servebench_core::api::{Api, Message, Prompt};
use servebench_tokenize::Tokenizer;
use std::path::{Path, PathBuf};

/// One request of the workload.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkItem {
    pub prompt: Prompt,
    /// The length the workload asked for (random datasets): sglang's `prompt_len`.
    pub prompt_len_intended: Option<u64>,
    /// Tokens the server should see, counted with the tokenizer (chat: the rendered template).
    pub prompt_tokens: u64,
    /// Output tokens to ask for (`max_tokens`); `None` lets the server decide.
    pub output_len: Option<u64>,
}

/// How the text of a `random` prompt is made from its drawn length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PromptRule {
    /// servebench's: real text that re-tokenizes to exactly the drawn length (chat: the rendered template).
    #[default]
    Exact,
    /// sglang's: the shuffled ShareGPT prompt's ids (with special tokens) cut or repeated to the drawn length,
    /// then decoded (`random-ids`: ids `(offset + i + j) % vocab`, decoded). The text equals sglang's; its
    /// re-tokenized length may differ by a few tokens, and the input length recorded is the drawn one, as sglang
    /// records it.
    Sglang,
}

impl PromptRule {
    pub fn parse(s: &str) -> Result<PromptRule, LoadError> {
        match s {
            "exact" => Ok(PromptRule::Exact),
            "sglang" => Ok(PromptRule::Sglang),
            other => Err(LoadError::Config(format!(
                "--prompt-rule {other}: use exact (servebench's token-exact text) or sglang"
            ))),
        }
    }
}

/// How prompt tokens are counted for the result file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CountMethod {
    Tokenizer,
    ChatTemplate,
    TokenIds,
    /// The drawn length, as sglang records it (`--prompt-rule sglang`).
    Requested,
}

impl CountMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            CountMethod::Tokenizer => "tokenizer",
            CountMethod::ChatTemplate => "chat_template",
            CountMethod::TokenIds => "token_ids",
            CountMethod::Requested => "requested",
        }
    }

    /// How a workload's input tokens were counted (`prompt_token_method` in the result).
    pub fn of(dataset_name: &str, rule: PromptRule, counter: &PromptCounter<'_>) -> CountMethod {
        match (dataset_name, rule) {
            ("random" | "random-ids", PromptRule::Sglang) => CountMethod::Requested,
            ("random-ids", PromptRule::Exact) if counter.api != Api::Chat => CountMethod::TokenIds,
            _ => counter.method(),
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
    pub prompt_rule: PromptRule,
    /// The ShareGPT file whose conversations sglang's prompt rule cuts (`--dataset-path`).
    pub dataset_path: Option<PathBuf>,
}

/// A token stream of real text, cut into prompts of exact lengths.
pub struct TextSource {
    ids: Vec<u32>,
    /// Whether each token begins a word of the pre-tokenizer, for tokenizers where a run of whole words
    /// re-encodes to the same ids ([`Tokenizer::cuts_at_word_starts`]); None otherwise.
    word_start: Option<Vec<bool>>,
}

/// Words re-encoded at each end of a prompt cut at word starts (the only places where its tokens may differ
/// from the corpus's).
const EDGE_WORDS: usize = 16;
/// Window starts whose edge check failed before the fast cut gives up for that prompt.
const EDGE_TRIES: usize = 8;

impl TextSource {
    pub fn new(tok: &Tokenizer, text: &str) -> Result<TextSource, LoadError> {
        let (ids, word_start) = if tok.cuts_at_word_starts() {
            // Through the on-disk cache: the next run with this tokenizer and corpus reads the ids back.
            let (ids, starts) = tok.encode_corpus(text)?;
            (ids, Some(starts))
        } else {
            (tok.encode(text)?, None)
        };
        if ids.len() < 16 {
            return Err(LoadError::Config(
                "the prompt corpus is too short (fewer than 16 tokens)".into(),
            ));
        }
        Ok(TextSource { ids, word_start })
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
        if let Some(text) = self.at_word_starts(tok, start, target)? {
            return Ok((text, target));
        }
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

    /// The fast cut: `target` corpus tokens from the first start at or after `start` (no wrap-around) where the
    /// window begins and ends on word starts, so that its text is whole words of the corpus and re-encodes to
    /// the same ids ([`Tokenizer::cuts_at_word_starts`]); the words at both ends, the only ones whose context
    /// changed, are re-encoded to check. One decode of the window instead of decode + encode (+ retries).
    /// None when the tokenizer or the corpus length does not allow it, or the checks keep failing.
    fn at_word_starts(
        &self,
        tok: &Tokenizer,
        start: usize,
        target: usize,
    ) -> Result<Option<String>, LoadError> {
        let Some(ws) = &self.word_start else {
            return Ok(None);
        };
        let n = self.ids.len();
        if target == 0 || target >= n {
            return Ok(None);
        }
        let starts = n - target + 1;
        let s0 = start % starts;
        let mut tries = 0;
        for k in 0..starts {
            let s = (s0 + k) % starts;
            let e = s + target;
            if !ws[s] || (e < n && !ws[e]) {
                continue;
            }
            if let Some(text) = self.checked_window(tok, ws, s, e)? {
                return Ok(Some(text));
            }
            tries += 1;
            if tries == EDGE_TRIES {
                break;
            }
        }
        Ok(None)
    }

    /// The text of tokens `s..e` when its first and last [`EDGE_WORDS`] words re-encode alone to the corpus's
    /// ids and are its prefix and suffix.
    fn checked_window(
        &self,
        tok: &Tokenizer,
        ws: &[bool],
        s: usize,
        e: usize,
    ) -> Result<Option<String>, LoadError> {
        let head_end = (s + 1..e)
            .filter(|&i| ws[i])
            .nth(EDGE_WORDS - 1)
            .unwrap_or(e);
        let tail_start = (s + 1..e)
            .rev()
            .filter(|&i| ws[i])
            .nth(EDGE_WORDS - 1)
            .unwrap_or(s);
        let text = tok.decode(&self.ids[s..e])?;
        for (a, b, head) in [(s, head_end, true), (tail_start, e, false)] {
            let part = tok.decode(&self.ids[a..b])?;
            let placed = if head {
                text.starts_with(&part)
            } else {
                text.ends_with(&part)
            };
            if !placed || tok.encode(&part)? != self.ids[a..b] {
                return Ok(None);
            }
        }
        Ok(Some(text))
    }
}

/// Builds the `random` / `random-ids` workload: lengths drawn as sglang draws them for `spec.seed`, prompt text by
/// `spec.prompt_rule` (the default rule cuts `corpus_text`).
pub fn random_workload(
    counter: &PromptCounter<'_>,
    corpus_text: &str,
    spec: &RandomSpec,
) -> Result<Vec<WorkItem>, LoadError> {
    random_workload_with_draws(counter, corpus_text, spec).map(|(items, _)| items)
}

/// [`random_workload`], and the generators as sglang's would be after it (sglang draws its arrival gaps from
/// the same NumPy stream next). `random-ids` consumes sglang's offset draw under either prompt rule.
pub fn random_workload_with_draws(
    counter: &PromptCounter<'_>,
    corpus_text: &str,
    spec: &RandomSpec,
) -> Result<(Vec<WorkItem>, Draws), LoadError> {
    let mut draws = Draws::seeded(spec.seed)?;
    let items = random_items(counter, corpus_text, spec, &mut draws)?;
    if spec.ids && spec.prompt_rule == PromptRule::Exact {
        // sglang draws one id offset per prompt (np.random.randint(0, vocab_size, n)); servebench's exact ids
        // come from their own generator, so only the stream position is kept.
        let vocab = counter.tok.base_vocab_size() as i64;
        let _ = draws.np.randint(0, vocab.max(1), spec.num_prompts);
    }
    Ok((items, draws))
}

fn random_items(
    counter: &PromptCounter<'_>,
    corpus_text: &str,
    spec: &RandomSpec,
    draws: &mut Draws,
) -> Result<Vec<WorkItem>, LoadError> {
    let tok = counter.tok;
    // Token ids go out as ids only with servebench's rule on an API that takes them; sglang decodes them.
    let as_ids = spec.ids && counter.api != Api::Chat && spec.prompt_rule == PromptRule::Exact;
    let special = if as_ids {
        0
    } else {
        tok.num_special_tokens_to_add() as u64
    };
    let (inputs, outputs) = draws.random_lengths(&LengthSpec {
        num_prompts: spec.num_prompts,
        input_len: spec.input_len,
        output_len: spec.output_len,
        range_ratio: spec.range_ratio,
        rule: spec.rule,
        special,
    })?;
    let lens: Vec<(u64, u64)> = inputs.into_iter().zip(outputs).collect();
    match (spec.prompt_rule, spec.ids) {
        (PromptRule::Sglang, false) => {
            let path = spec.dataset_path.as_deref().ok_or_else(|| {
                LoadError::Config(
                    "--prompt-rule sglang with --dataset-name random needs --dataset-path with a ShareGPT JSON file (sglang cuts its conversations; servebench downloads nothing)".into(),
                )
            })?;
            sglang_text_prompts(tok, path, draws, &lens)
        }
        (PromptRule::Sglang, true) => sglang_id_prompts(tok, draws, &lens),
        (PromptRule::Exact, true) => exact_id_prompts(counter, spec.seed, &lens, as_ids),
        (PromptRule::Exact, false) => exact_text_prompts(counter, corpus_text, spec.seed, &lens),
    }
}

/// sglang's `random` prompts: the ShareGPT prompts, shuffled with `random.shuffle`, skipping those that encode
/// to nothing; each one's ids (special tokens included) cut or repeated to the drawn length, then decoded.
fn sglang_text_prompts(
    tok: &Tokenizer,
    path: &Path,
    draws: &mut Draws,
    lens: &[(u64, u64)],
) -> Result<Vec<WorkItem>, LoadError> {
    let mut pairs = corpus::load_sharegpt(path)?;
    draws.py.shuffle(&mut pairs);
    let mut out = Vec::with_capacity(lens.len());
    for (prompt, _) in &pairs {
        let Some(&(il, ol)) = lens.get(out.len()) else {
            break;
        };
        let ids = tok.encode_with_special(prompt)?;
        if ids.is_empty() {
            continue;
        }
        let text = tok.decode_like_transformers(&truncate_or_repeat(&ids, il as usize))?;
        out.push(WorkItem {
            prompt: Prompt::Text(text),
            prompt_len_intended: Some(il),
            prompt_tokens: il,
            output_len: Some(ol),
        });
    }
    if out.len() < lens.len() {
        return Err(LoadError::Dataset {
            path: path.display().to_string(),
            message: format!(
                "holds {} non-empty conversations, {} prompts asked for: lower --num-prompts or use a larger file",
                out.len(),
                lens.len()
            ),
        });
    }
    Ok(out)
}

/// sglang's `random-ids` prompts: one offset per prompt (`np.random.randint(0, vocab_size)`), ids
/// `(offset + i + j) % vocab_size`, decoded to text.
fn sglang_id_prompts(
    tok: &Tokenizer,
    draws: &mut Draws,
    lens: &[(u64, u64)],
) -> Result<Vec<WorkItem>, LoadError> {
    let vocab = tok.base_vocab_size() as u64;
    let offsets = i64::try_from(vocab)
        .ok()
        .and_then(|v| draws.np.randint(0, v, lens.len()))
        .ok_or_else(|| LoadError::Config("the tokenizer has an empty vocabulary".into()))?;
    lens.iter()
        .zip(offsets)
        .enumerate()
        .map(|(i, (&(il, ol), off))| {
            let ids = offset_ids(off.max(0) as u64, i, il as usize, vocab);
            Ok(WorkItem {
                prompt: Prompt::Text(tok.decode_like_transformers(&ids)?),
                prompt_len_intended: Some(il),
                prompt_tokens: il,
                output_len: Some(ol),
            })
        })
        .collect()
}

/// servebench's `random-ids` prompts: ordinary (non-special) token ids drawn from the seed, sent as ids where
/// the API takes them, else decoded.
fn exact_id_prompts(
    counter: &PromptCounter<'_>,
    seed: u64,
    lens: &[(u64, u64)],
    as_ids: bool,
) -> Result<Vec<WorkItem>, LoadError> {
    let tok = counter.tok;
    let mut rng = StdRng::seed_from_u64(seed);
    let vocab = tok.vocab_size() as u32;
    let ordinary: Vec<u32> = (0..vocab).filter(|&i| !tok.is_special(i)).collect();
    if ordinary.is_empty() {
        return Err(LoadError::Config(
            "the tokenizer has no ordinary tokens".into(),
        ));
    }
    lens.iter()
        .map(|&(il, ol)| {
            let ids: Vec<u32> = (0..il)
                .map(|_| ordinary[rng.gen_range(0..ordinary.len())])
                .collect();
            let prompt = if as_ids {
                Prompt::Ids(ids)
            } else {
                Prompt::Text(tok.decode(&ids)?)
            };
            let prompt_tokens = counter.count(&prompt)?;
            Ok(WorkItem {
                prompt,
                prompt_len_intended: Some(il),
                prompt_tokens,
                output_len: Some(ol),
            })
        })
        .collect()
}

/// servebench's `random` prompts: windows of the corpus that re-tokenize to exactly the drawn length (chat: the
/// rendered template has exactly that many tokens).
fn exact_text_prompts(
    counter: &PromptCounter<'_>,
    corpus_text: &str,
    seed: u64,
    lens: &[(u64, u64)],
) -> Result<Vec<WorkItem>, LoadError> {
    let tok = counter.tok;
    let mut rng = StdRng::seed_from_u64(seed);
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
    let mut out = Vec::with_capacity(lens.len());
    for r in results {
        out.extend(r?);
    }
    Ok(out)
}

/// Settings of the `sharegpt` dataset (sglang 0.5.9's rules).
#[derive(Debug, Clone)]
pub struct SharegptSpec {
    pub num_prompts: usize,
    /// Fixed output length (`--sharegpt-output-len`, at least 4 as in sglang), else the completion's length.
    pub fixed_output_len: Option<u64>,
    /// Skip conversations whose prompt + output exceed this (`--sharegpt-context-len`; none by default, as
    /// sglang 0.5.9 — the old prompt ≤ 1024 / total ≤ 2048 filter is gone).
    pub context_len: Option<u64>,
    pub seed: u64,
}

/// sglang's choice of conversations: shuffled with `random.shuffle` (seeded with `seed`), then the first
/// `num_prompts` whose prompt and output have at least 2 tokens and fit the context. Lengths are counted as
/// sglang counts them (`len(tokenizer.encode(text))`, special tokens included); with a chat API the recorded
/// input tokens are the rendered template's (servebench's definition).
fn choose_conversations(
    counter: &PromptCounter<'_>,
    mut pairs: Vec<(String, String)>,
    spec: &SharegptSpec,
) -> Result<Vec<WorkItem>, LoadError> {
    if spec.fixed_output_len.is_some_and(|n| n < 4) {
        return Err(LoadError::Config(
            "--sharegpt-output-len must be at least 4 (sglang refuses smaller: \"output_len too small\")"
                .into(),
        ));
    }
    Draws::seeded(spec.seed)?.py.shuffle(&mut pairs);
    let tok = counter.tok;
    let mut out = Vec::new();
    for (p, c) in pairs {
        if out.len() >= spec.num_prompts {
            break;
        }
        let plen = tok.count_with_special(&p)? as u64;
        let olen = match spec.fixed_output_len {
            Some(n) => n,
            None => tok.count_with_special(&c)? as u64,
        };
        if plen < 2 || olen < 2 {
            continue;
        }
        // sglang: `if context_len and ...`, so 0 means no limit.
        if spec
            .context_len
            .is_some_and(|ctx| ctx > 0 && plen + olen > ctx)
        {
            continue;
        }
        let prompt = Prompt::Text(p);
        let prompt_tokens = if counter.api == Api::Chat {
            counter.count(&prompt)?
        } else {
            plen
        };
        out.push(WorkItem {
            prompt,
            prompt_len_intended: None,
            prompt_tokens,
            output_len: Some(olen),
        });
    }
    Ok(out)
}

fn too_few(path: &Path, got: usize, asked: usize) -> LoadError {
    LoadError::Dataset {
        path: path.display().to_string(),
        message: format!(
            "only {got} conversations pass the length filters, {asked} asked for: lower --num-prompts or raise --sharegpt-context-len"
        ),
    }
}

pub fn sharegpt_workload(
    counter: &PromptCounter<'_>,
    path: &Path,
    spec: &SharegptSpec,
) -> Result<Vec<WorkItem>, LoadError> {
    let pairs = corpus::load_sharegpt(path)?;
    let out = choose_conversations(counter, pairs, spec)?;
    if out.len() < spec.num_prompts {
        return Err(too_few(path, out.len(), spec.num_prompts));
    }
    Ok(out)
}

/// Settings of the `custom` dataset.
#[derive(Debug, Clone)]
pub struct CustomSpec {
    pub num_prompts: Option<usize>,
    /// servebench's format: the output length of lines without `output_len`.
    pub default_output_len: Option<u64>,
    /// sglang's format: `--sharegpt-output-len`, `--sharegpt-context-len` and the seed, as for ShareGPT.
    pub fixed_output_len: Option<u64>,
    pub context_len: Option<u64>,
    pub seed: u64,
}

/// `custom`: JSONL in one of two formats, told apart by the first object. sglang's: `conversations` (or
/// `conversation`) lists whose first two turns are the prompt and the completion (`content` or `value`), lines
/// that are not JSON skipped, shuffled and filtered as ShareGPT. servebench's: one object a line with `prompt`
/// (string) or `messages` (OpenAI list), optional `output_len` (else `default_output_len`), used in order,
/// cycling when fewer than asked.
pub fn custom_workload(
    counter: &PromptCounter<'_>,
    path: &Path,
    spec: &CustomSpec,
) -> Result<Vec<WorkItem>, LoadError> {
    custom_workload_rows(counter, path, spec).map(|(items, _)| items)
}

/// [`custom_workload`] and how many distinct rows the file gave (fewer than the items when they were cycled).
pub fn custom_workload_rows(
    counter: &PromptCounter<'_>,
    path: &Path,
    spec: &CustomSpec,
) -> Result<(Vec<WorkItem>, usize), LoadError> {
    let err = |line: usize, message: String| LoadError::Dataset {
        // Line 0: the file as a whole (it cannot be read, it holds nothing).
        path: match line {
            0 => path.display().to_string(),
            _ => format!("{}:{}", path.display(), line),
        },
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| err(0, format!("cannot read: {e}")))?;
    let first: Option<Value> = text
        .lines()
        .find_map(|l| serde_json::from_str::<Value>(l.trim()).ok());
    let sglang_format =
        first.is_some_and(|v| v.get("conversations").is_some() || v.get("conversation").is_some());
    if sglang_format {
        return sglang_custom(counter, path, &text, spec).map(|v| {
            let n = v.len();
            (v, n)
        });
    }
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
                "needs a `prompt` (string), `messages` (list) or `conversations` (list, sglang's format) field".into(),
            ));
        };
        let output_len =
            match v.get("output_len") {
                None | Some(Value::Null) => spec.default_output_len,
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
    let n = spec.num_prompts.unwrap_or(items.len());
    let rows = items.len();
    Ok(((0..n).map(|i| items[i % rows].clone()).collect(), rows))
}

/// sglang's `custom` JSONL (`sample_custom_requests`).
fn sglang_custom(
    counter: &PromptCounter<'_>,
    path: &Path,
    text: &str,
    spec: &CustomSpec,
) -> Result<Vec<WorkItem>, LoadError> {
    let pairs: Vec<(String, String)> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter_map(|l| serde_json::from_str::<Value>(l.trim()).ok())
        .filter_map(|v| corpus::first_two_turns(&v, true))
        .collect();
    let num_prompts = spec.num_prompts.unwrap_or(pairs.len());
    let out = choose_conversations(
        counter,
        pairs,
        &SharegptSpec {
            num_prompts,
            fixed_output_len: spec.fixed_output_len,
            context_len: spec.context_len,
            seed: spec.seed,
        },
    )?;
    if out.len() < num_prompts {
        return Err(too_few(path, out.len(), num_prompts));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tok() -> Tokenizer {
        Tokenizer::builtin().unwrap()
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
            prompt_rule: PromptRule::Exact,
            dataset_path: None,
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

    /// The corpus's encoding read back from the on-disk cache (a later run with the same tokenizer and corpus)
    /// cuts the same prompts as encoding it, and as no cache at all.
    #[test]
    fn prompts_are_the_same_from_a_cold_or_a_warm_corpus_cache() {
        let cache = tempfile::tempdir().unwrap();
        let spec = RandomSpec {
            num_prompts: 30,
            input_len: 200,
            output_len: 20,
            range_ratio: 0.3,
            rule: RangeRule::Sglang,
            seed: 7,
            ids: false,
            prompt_rule: PromptRule::Exact,
            dataset_path: None,
        };
        let build = |dir: Option<&std::path::Path>| {
            let t = Tokenizer::builtin_with_cache(dir).unwrap();
            let counter = PromptCounter {
                tok: &t,
                api: Api::Completions,
            };
            random_workload(&counter, corpus::BUILTIN_CORPUS, &spec).unwrap()
        };
        let uncached = build(None);
        let entries = || std::fs::read_dir(cache.path().join("encoded")).map_or(0, |d| d.count());
        assert_eq!(entries(), 0);
        assert_eq!(build(Some(cache.path())), uncached, "cold");
        assert_eq!(entries(), 1);
        assert_eq!(build(Some(cache.path())), uncached, "warm");
        assert_eq!(entries(), 1);
    }

    /// FNV-1a, 64 bits: a stable digest of prompt texts.
    fn fnv(texts: &[&str]) -> u64 {
        let mut h = 0xcbf2_9ce4_8422_2325u64;
        for t in texts {
            for b in t.bytes().chain([0xff]) {
                h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
            }
        }
        h
    }

    /// The exact prompt texts of a fixed seed. Changed on purpose once: since the word-start cut (prompts are
    /// whole words of the corpus when the tokenizer allows it) the texts differ from the earlier
    /// decode-and-re-encode search at a token start, with the same lengths.
    #[test]
    fn random_prompt_texts_are_pinned() {
        let t = tok();
        let counter = PromptCounter {
            tok: &t,
            api: Api::Completions,
        };
        let spec = RandomSpec {
            num_prompts: 20,
            input_len: 300,
            output_len: 50,
            range_ratio: 0.5,
            rule: RangeRule::Sglang,
            seed: 7,
            ids: false,
            prompt_rule: PromptRule::Exact,
            dataset_path: None,
        };
        let items = random_workload(&counter, corpus::BUILTIN_CORPUS, &spec).unwrap();
        let texts: Vec<&str> = items
            .iter()
            .map(|it| match &it.prompt {
                Prompt::Text(s) => s.as_str(),
                _ => panic!("text expected"),
            })
            .collect();
        let lens: Vec<u64> = items.iter().map(|it| it.prompt_tokens).collect();
        assert_eq!(&texts[0][..40], PINNED_FIRST, "first prompt");
        assert_eq!(lens[..5], PINNED_LENS, "lengths");
        assert_eq!(fnv(&texts), PINNED_FNV, "digest of all 20 texts");
    }
    const PINNED_FIRST: &str = " high price tag may be a turn-off for so";
    const PINNED_LENS: [u64; 5] = [175, 217, 253, 242, 292];
    const PINNED_FNV: u64 = 0x358f_1637_9c18_2ec8;

    /// The word-start cut gives token-exact text for short and long targets, from most starts, and `exact`
    /// (which falls back to the search) always does.
    #[test]
    fn word_start_cuts_are_token_exact() {
        let t = tok();
        let src = TextSource::new(&t, corpus::BUILTIN_CORPUS).unwrap();
        assert!(src.word_start.is_some());
        let n = src.ids.len();
        let mut fast = 0;
        let mut total = 0;
        for target in [1usize, 2, 3, 7, 64, 300, 1000, 4000, n / 2] {
            for k in 0..12 {
                let start = (k * 7919 + target * 31) % n;
                total += 1;
                if let Some(text) = src.at_word_starts(&t, start, target).unwrap() {
                    fast += 1;
                    assert_eq!(t.count(&text).unwrap(), target, "fast cut at {start}");
                }
                let (text, got) = src.exact(&t, start, target).unwrap();
                assert_eq!(got, target);
                assert_eq!(t.count(&text).unwrap(), target, "exact at {start}");
            }
        }
        assert!(
            fast * 10 >= total * 9,
            "fast cut used {fast} of {total} times"
        );
        // Longer than the corpus: no cut without wrapping; the search still gives an exact text.
        assert!(src.at_word_starts(&t, 5, n + 10).unwrap().is_none());
        let (text, got) = src.exact(&t, 5, n + 10).unwrap();
        assert_eq!((t.count(&text).unwrap(), got), (n + 10, n + 10));
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
            prompt_rule: PromptRule::Exact,
            dataset_path: None,
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
            prompt_rule: PromptRule::Exact,
            dataset_path: None,
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
        // sglang refuses output lengths below 4, and NumPy seeds of 2^32 and more.
        let small = SharegptSpec {
            num_prompts: 1,
            fixed_output_len: Some(3),
            ..spec.clone()
        };
        let e = sharegpt_workload(&counter, &path, &small).unwrap_err();
        assert!(e.to_string().contains("at least 4"), "{e}");
        let big_seed = SharegptSpec {
            num_prompts: 1,
            seed: 1 << 32,
            ..spec
        };
        assert!(sharegpt_workload(&counter, &path, &big_seed).is_err());
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
        let spec = |n: Option<usize>, d: Option<u64>| CustomSpec {
            num_prompts: n,
            default_output_len: d,
            fixed_output_len: None,
            context_len: None,
            seed: 1,
        };
        let items = custom_workload(&counter, &good, &spec(Some(3), Some(7))).unwrap();
        assert_eq!(items.len(), 3);
        assert_eq!(items[0].output_len, Some(5));
        assert_eq!(items[1].output_len, Some(7));
        assert!(matches!(items[1].prompt, Prompt::Messages(_)));
        let bad = dir.join("bad.jsonl");
        std::fs::write(&bad, "{\"prompt\": \"ok\"}\n{\"text\": 1}\n").unwrap();
        let e = custom_workload(&counter, &bad, &spec(None, None))
            .unwrap_err()
            .to_string();
        assert!(e.contains("bad.jsonl:2") && e.contains("`prompt`"), "{e}");
    }
}
