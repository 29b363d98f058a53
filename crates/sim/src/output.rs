//! What a request will generate: its length, finish reason and text, decided when it arrives.
//!
//! Lengths: `max_tokens` defaults to 16 for `/v1/completions` (OpenAI), 128 for `/generate` (SGLang) and, for chat,
//! to `default_max_tokens` (ending with "stop", as a model that finished its answer). With `ignore_eos`, or a
//! `min_tokens` equal to `max_tokens`, the output is exactly `max_tokens` long. Otherwise filler text ends at a
//! seeded EOS drawn with `eos_prob` per token (never when it is 0) and answer-key text ends after the answer;
//! reaching `max_tokens` first ends with "length".

use crate::answer_key::{AnswerKey, AnswerParams, Verdict};
use crate::config::SimConfig;
use crate::framing::{escape_into, Api, Finish};
use crate::request::{BadRequest, GenRequest};
use crate::rng::{combine, SplitMix};
use crate::words::{next_word, split_pieces};

/// One simulated token of scripted text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Piece {
    pub(crate) text: String,
    pub(crate) reasoning: bool,
}

/// The planned output of a request.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct OutputPlan {
    pub(crate) tokens: u32,
    pub(crate) finish: Finish,
    /// The resolved maximum (`/generate` reports it in its length finish reason).
    pub(crate) max_tokens: u32,
    /// Answer-key text, then filler words if more tokens are needed.
    pub(crate) script: Vec<Piece>,
    pub(crate) filler_seed: u64,
    pub(crate) verdict: Option<Verdict>,
}

fn too_long(prompt: u32, max: u32, limit: u32) -> BadRequest {
    BadRequest {
        status: 400,
        message: format!(
            "This model's maximum context length is {limit} tokens. However, you requested {} tokens ({prompt} in the \
             prompt, {max} for the completion). Please reduce the length of the prompt or completion.",
            u64::from(prompt) + u64::from(max)
        ),
    }
}

/// Number of tokens until a seeded EOS with probability `p` per token (at least 1).
fn eos_position(rng: &mut SplitMix, p: f64) -> u64 {
    if p <= 0.0 {
        return u64::MAX;
    }
    if p >= 1.0 {
        return 1;
    }
    let u = rng.unit();
    ((1.0 - u).ln() / (1.0 - p).ln()).floor().max(0.0) as u64 + 1
}

/// Decide the output of `req`; `busy`: at least `load_flip_threshold` other requests were in flight at its
/// arrival (answers may flip, see `SimConfig::load_flip_rate`).
pub(crate) fn plan(
    req: &GenRequest,
    cfg: &SimConfig,
    key: Option<&AnswerKey>,
    busy: bool,
) -> Result<OutputPlan, BadRequest> {
    let limit = cfg.max_model_len;
    let prompt = req.prompt_tokens;
    let (max, natural_default) = match (req.max_tokens, req.api) {
        (Some(m), _) => (m, false),
        (None, Api::Completions) => (16, false),
        (None, Api::Generate) => (128, false),
        (None, Api::Chat) => {
            if prompt >= limit {
                return Err(too_long(prompt, 1, limit));
            }
            (cfg.default_max_tokens.min(limit - prompt), true)
        }
    };
    if u64::from(prompt) + u64::from(max) > u64::from(limit) {
        return Err(too_long(prompt, max, limit));
    }
    let filler_seed = combine(combine(cfg.seed, req.prompt_hash), req.seed.unwrap_or(0));
    let min = req.min_tokens.min(max).max(1);

    let keyed = match key {
        Some(k) if !req.prompt_text.is_empty() => k.answer(
            &req.prompt_text,
            AnswerParams {
                seed: cfg.seed,
                request_seed: req.seed,
                accuracy: cfg.accuracy,
                wrong_share: cfg.wrong_share,
                reasoning: cfg.reasoning,
                reasoning_tokens: cfg.reasoning_tokens,
                has_reasoning_field: req.api == Api::Chat,
                flip_rate: if busy { cfg.load_flip_rate } else { 0.0 },
            },
        ),
        _ => None,
    };
    let (natural, script, verdict) = match keyed {
        Some(a) => {
            let mut script: Vec<Piece> = split_pieces(&a.reasoning)
                .into_iter()
                .map(|text| Piece {
                    text,
                    reasoning: true,
                })
                .collect();
            script.extend(split_pieces(&a.content).into_iter().map(|text| Piece {
                text,
                reasoning: false,
            }));
            (script.len() as u64, script, Some(a.verdict))
        }
        None => {
            let natural = if natural_default {
                u64::from(max)
            } else {
                u64::MAX
            };
            let eos = eos_position(
                &mut SplitMix::new(combine(filler_seed, 0xE05)),
                cfg.eos_prob,
            );
            (natural.min(eos), Vec::new(), None)
        }
    };
    let (tokens, finish) = if req.ignore_eos {
        (max, Finish::Length)
    } else {
        let t = natural.max(u64::from(min)).min(u64::from(max)) as u32;
        let stopped = t < max || (natural_default && u64::from(t) == natural);
        (
            t,
            if stopped {
                Finish::Stop
            } else {
                Finish::Length
            },
        )
    };
    let mut script = script;
    script.truncate(tokens as usize);
    Ok(OutputPlan {
        tokens,
        finish,
        max_tokens: max,
        script,
        filler_seed,
        verdict,
    })
}

/// Produces the text of a plan, a few tokens at a time, already JSON-escaped.
#[derive(Debug)]
pub(crate) struct TextCursor {
    script: Vec<Piece>,
    pos: usize,
    rng: SplitMix,
}

impl TextCursor {
    pub(crate) fn new(plan: &OutputPlan) -> Self {
        TextCursor {
            script: plan.script.clone(),
            pos: 0,
            rng: SplitMix::new(plan.filler_seed),
        }
    }

    /// Append the next `n` tokens: reasoning pieces to `reasoning`, the rest to `content`.
    pub(crate) fn next(&mut self, n: u32, content: &mut String, reasoning: &mut String) {
        for _ in 0..n {
            match self.script.get(self.pos) {
                Some(p) => {
                    escape_into(
                        if p.reasoning {
                            &mut *reasoning
                        } else {
                            &mut *content
                        },
                        &p.text,
                    );
                    self.pos += 1;
                }
                None => content.push_str(next_word(&mut self.rng)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A request planned on an idle engine.
    fn plan(
        req: &GenRequest,
        cfg: &SimConfig,
        key: Option<&AnswerKey>,
    ) -> Result<OutputPlan, BadRequest> {
        super::plan(req, cfg, key, false)
    }
    use crate::prompt::HeuristicCounter;
    use crate::request::parse;

    fn req(api: Api, body: &str) -> GenRequest {
        parse(api, body.as_bytes(), false, &HeuristicCounter).unwrap()
    }

    fn text_of(plan: &OutputPlan) -> (String, String) {
        let mut c = String::new();
        let mut r = String::new();
        TextCursor::new(plan).next(plan.tokens, &mut c, &mut r);
        (c, r)
    }

    #[test]
    fn ignore_eos_gives_exact_length_of_filler_words() {
        let cfg = SimConfig {
            eos_prob: 0.5,
            ..SimConfig::default()
        };
        let p = plan(
            &req(
                Api::Completions,
                r#"{"prompt":"hi","max_tokens":50,"ignore_eos":true}"#,
            ),
            &cfg,
            None,
        )
        .unwrap();
        assert_eq!((p.tokens, p.finish), (50, Finish::Length));
        let (c, r) = text_of(&p);
        assert!(r.is_empty());
        assert_eq!(c.split(' ').count() - 1, 50);
        // min_tokens == max_tokens also forces the length
        let p = plan(
            &req(
                Api::Completions,
                r#"{"prompt":"hi","max_tokens":50,"min_tokens":50}"#,
            ),
            &cfg,
            None,
        )
        .unwrap();
        assert_eq!(p.tokens, 50);
    }

    #[test]
    fn eos_stops_early_with_stop_and_respects_min_tokens() {
        let cfg = SimConfig {
            eos_prob: 0.2,
            ..SimConfig::default()
        };
        let mut stops = 0;
        for i in 0..200 {
            let body = format!(r#"{{"prompt":"p{i}","max_tokens":100,"min_tokens":3}}"#);
            let p = plan(&req(Api::Completions, &body), &cfg, None).unwrap();
            assert!(p.tokens >= 3 && p.tokens <= 100);
            if p.finish == Finish::Stop {
                stops += 1;
                assert!(p.tokens < 100);
            }
        }
        assert!(stops > 190, "{stops}");
        // without eos_prob, outputs run to max_tokens
        let p = plan(
            &req(Api::Completions, r#"{"prompt":"x","max_tokens":7}"#),
            &SimConfig::default(),
            None,
        )
        .unwrap();
        assert_eq!((p.tokens, p.finish), (7, Finish::Length));
    }

    #[test]
    fn defaults_per_api() {
        let cfg = SimConfig {
            default_max_tokens: 40,
            ..SimConfig::default()
        };
        let c = plan(&req(Api::Completions, r#"{"prompt":"x"}"#), &cfg, None).unwrap();
        assert_eq!(c.tokens, 16);
        let g = plan(&req(Api::Generate, r#"{"text":"x"}"#), &cfg, None).unwrap();
        assert_eq!((g.tokens, g.max_tokens), (128, 128));
        let h = plan(
            &req(Api::Chat, r#"{"messages":[{"role":"user","content":"x"}]}"#),
            &cfg,
            None,
        )
        .unwrap();
        assert_eq!((h.tokens, h.finish), (40, Finish::Stop));
    }

    #[test]
    fn context_limit_is_enforced() {
        let cfg = SimConfig {
            max_model_len: 10,
            ..SimConfig::default()
        };
        let e = plan(
            &req(Api::Completions, r#"{"prompt":[1,2,3,4,5],"max_tokens":6}"#),
            &cfg,
            None,
        )
        .unwrap_err();
        assert_eq!(e.status, 400);
        assert!(
            e.message.contains("maximum context length is 10"),
            "{}",
            e.message
        );
        // chat without max_tokens is clamped to what fits
        let h = plan(
            &req(Api::Chat, r#"{"messages":[{"role":"user","content":"x"}]}"#),
            &cfg,
            None,
        )
        .unwrap();
        assert_eq!(h.tokens, 10 - 8);
    }

    #[test]
    fn same_request_same_text_and_seed_changes_it() {
        let cfg = SimConfig::default();
        let a = plan(
            &req(Api::Completions, r#"{"prompt":"x","max_tokens":20}"#),
            &cfg,
            None,
        )
        .unwrap();
        let b = plan(
            &req(Api::Completions, r#"{"prompt":"x","max_tokens":20}"#),
            &cfg,
            None,
        )
        .unwrap();
        assert_eq!(text_of(&a), text_of(&b));
        let c = plan(
            &req(
                Api::Completions,
                r#"{"prompt":"x","max_tokens":20,"seed":3}"#,
            ),
            &cfg,
            None,
        )
        .unwrap();
        assert_ne!(text_of(&a), text_of(&c));
        let other = SimConfig {
            seed: 9,
            ..SimConfig::default()
        };
        let d = plan(
            &req(Api::Completions, r#"{"prompt":"x","max_tokens":20}"#),
            &other,
            None,
        )
        .unwrap();
        assert_ne!(text_of(&a), text_of(&d));
    }

    #[test]
    fn answer_key_text_is_scripted_truncated_or_padded() {
        let mut key = AnswerKey::new();
        key.add_jsonl(
            "{\"problem\": \"What is 6 times 7?\", \"answer\": \"42\"}\n",
            "k.jsonl",
        )
        .unwrap();
        let cfg = SimConfig {
            reasoning_tokens: 4,
            ..SimConfig::default()
        };
        let body = r#"{"messages":[{"role":"user","content":"What is 6 times 7? Reason."}]}"#;
        let p = plan(&req(Api::Chat, body), &cfg, Some(&key)).unwrap();
        assert_eq!(p.finish, Finish::Stop);
        assert_eq!(p.verdict, Some(Verdict::Correct));
        let (c, _) = text_of(&p);
        assert!(c.ends_with("\\\\boxed{42}."), "{c}");
        assert_eq!(p.tokens as usize, p.script.len());
        // truncated by max_tokens
        let body =
            r#"{"messages":[{"role":"user","content":"What is 6 times 7?"}],"max_tokens":3}"#;
        let t = plan(&req(Api::Chat, body), &cfg, Some(&key)).unwrap();
        assert_eq!((t.tokens, t.finish), (3, Finish::Length));
        // padded with filler by ignore_eos
        let body = r#"{"messages":[{"role":"user","content":"What is 6 times 7?"}],"max_tokens":100,"ignore_eos":true}"#;
        let pad = plan(&req(Api::Chat, body), &cfg, Some(&key)).unwrap();
        assert_eq!(pad.tokens, 100);
        let (c, _) = text_of(&pad);
        assert!(c.contains("\\\\boxed{42}."));
        // field mode splits reasoning out (chat only)
        let cfg = SimConfig {
            reasoning: crate::ReasoningMode::Field,
            ..cfg
        };
        let f = plan(
            &req(
                Api::Chat,
                r#"{"messages":[{"role":"user","content":"What is 6 times 7?"}]}"#,
            ),
            &cfg,
            Some(&key),
        )
        .unwrap();
        let (c, r) = text_of(&f);
        assert!(r.starts_with("Let me think"));
        assert_eq!(c, "The final answer is \\\\boxed{42}.");
    }
}
