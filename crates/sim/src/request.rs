//! Request bodies of the three APIs, parsed into one [`GenRequest`], and the strict OpenAI schema check.

use serde_json::{Map, Value};

use crate::framing::Api;
use crate::prompt::{ChatMessage, PromptCounter};
use crate::rng::{combine, hash_bytes};

/// A rejected request: HTTP status and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BadRequest {
    pub(crate) status: u16,
    pub(crate) message: String,
}

impl BadRequest {
    fn new(message: impl Into<String>) -> Self {
        BadRequest {
            status: 400,
            message: message.into(),
        }
    }
}

/// A generation request, whatever API it came through.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct GenRequest {
    pub(crate) api: Api,
    pub(crate) model: Option<String>,
    pub(crate) stream: bool,
    pub(crate) include_usage: bool,
    pub(crate) prompt_tokens: u32,
    /// `max_tokens` / `max_completion_tokens` / `max_new_tokens` as sent.
    pub(crate) max_tokens: Option<u32>,
    pub(crate) min_tokens: u32,
    pub(crate) ignore_eos: bool,
    pub(crate) seed: Option<u64>,
    /// `/generate`'s `rid`.
    pub(crate) rid: Option<String>,
    /// The prompt text searched by the answer key (chat: message contents joined by newlines; empty for ids).
    pub(crate) prompt_text: String,
    /// A hash of the prompt (text or ids) that seeds the output words.
    pub(crate) prompt_hash: u64,
}

/// Top-level fields of OpenAI's completions request.
const OPENAI_COMPLETIONS_FIELDS: &[&str] = &[
    "model",
    "prompt",
    "best_of",
    "echo",
    "frequency_penalty",
    "logit_bias",
    "logprobs",
    "max_tokens",
    "n",
    "presence_penalty",
    "seed",
    "stop",
    "stream",
    "stream_options",
    "suffix",
    "temperature",
    "top_p",
    "user",
];

/// Top-level fields of OpenAI's chat completions request.
const OPENAI_CHAT_FIELDS: &[&str] = &[
    "messages",
    "model",
    "audio",
    "frequency_penalty",
    "function_call",
    "functions",
    "logit_bias",
    "logprobs",
    "max_completion_tokens",
    "max_tokens",
    "metadata",
    "modalities",
    "n",
    "parallel_tool_calls",
    "prediction",
    "presence_penalty",
    "reasoning_effort",
    "response_format",
    "seed",
    "service_tier",
    "stop",
    "store",
    "stream",
    "stream_options",
    "temperature",
    "tool_choice",
    "tools",
    "top_logprobs",
    "top_p",
    "user",
    "web_search_options",
];

fn field_u32(obj: &Map<String, Value>, key: &str) -> Result<Option<u32>, BadRequest> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => {
            let n = v.as_u64().or_else(|| {
                v.as_f64()
                    .filter(|f| f.fract() == 0.0 && *f >= 0.0)
                    .map(|f| f as u64)
            });
            match n {
                Some(n) if n <= u64::from(u32::MAX) => Ok(Some(n as u32)),
                _ => Err(BadRequest::new(format!(
                    "field `{key}` must be a non-negative integer, got {v}"
                ))),
            }
        }
    }
}

fn field_bool(obj: &Map<String, Value>, key: &str) -> Result<Option<bool>, BadRequest> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(v) => Err(BadRequest::new(format!(
            "field `{key}` must be true or false, got {v}"
        ))),
    }
}

fn field_seed(obj: &Map<String, Value>) -> Result<Option<u64>, BadRequest> {
    match obj.get("seed") {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match (v.as_u64(), v.as_i64()) {
            (Some(u), _) => Ok(Some(u)),
            (None, Some(i)) => Ok(Some(i as u64)),
            _ => Err(BadRequest::new(format!(
                "field `seed` must be an integer, got {v}"
            ))),
        },
    }
}

fn ids_hash(ids: &[Value]) -> Result<(u32, u64), BadRequest> {
    let mut h = 0x1d5u64;
    for v in ids {
        let id = v.as_u64().ok_or_else(|| {
            BadRequest::new(format!("token ids must be non-negative integers, got {v}"))
        })?;
        h = combine(h, id);
    }
    Ok((ids.len() as u32, h))
}

enum Prompt {
    Text(String),
    Ids(u32, u64),
    /// Already counted (chat): tokens, searchable text, hash.
    Counted(u32, String, u64),
}

/// A prompt given as a string, a list of token ids, or a one-element list of either.
fn parse_prompt(v: &Value, field: &str) -> Result<Prompt, BadRequest> {
    match v {
        Value::String(s) => Ok(Prompt::Text(s.clone())),
        Value::Array(items) if items.iter().all(Value::is_number) && !items.is_empty() => {
            let (n, h) = ids_hash(items)?;
            Ok(Prompt::Ids(n, h))
        }
        Value::Array(items) if items.len() == 1 => parse_prompt(&items[0], field),
        Value::Array(items) if items.len() > 1 => Err(BadRequest::new(format!(
            "field `{field}` holds {} prompts: the simulator serves one prompt per request",
            items.len()
        ))),
        _ => Err(BadRequest::new(format!(
            "field `{field}` must be a string or a list of token ids"
        ))),
    }
}

fn content_text(v: &Value, i: usize) -> Result<String, BadRequest> {
    match v {
        Value::Null => Ok(String::new()),
        Value::String(s) => Ok(s.clone()),
        Value::Array(parts) => {
            let mut out = String::new();
            for p in parts {
                if let Some(t) = p.get("text").and_then(Value::as_str) {
                    out.push_str(t);
                }
            }
            Ok(out)
        }
        _ => Err(BadRequest::new(format!(
            "messages[{i}].content must be a string or a list of content parts"
        ))),
    }
}

/// Parse a request body. `strict` applies the OpenAI schema check (HTTP 422 on unknown fields).
pub(crate) fn parse(
    api: Api,
    body: &[u8],
    strict: bool,
    counter: &dyn PromptCounter,
) -> Result<GenRequest, BadRequest> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| BadRequest::new(format!("request body is not valid JSON: {e}")))?;
    let Value::Object(obj) = value else {
        return Err(BadRequest::new("request body must be a JSON object"));
    };
    if strict {
        let allowed = match api {
            Api::Completions => OPENAI_COMPLETIONS_FIELDS,
            Api::Chat => OPENAI_CHAT_FIELDS,
            Api::Generate => &[],
        };
        let mut unexpected: Vec<&str> = obj
            .keys()
            .map(String::as_str)
            .filter(|k| !allowed.contains(k))
            .collect();
        if !unexpected.is_empty() {
            unexpected.sort_unstable();
            return Err(BadRequest {
                status: 422,
                message: format!("Unexpected keys in the request: {unexpected:?}"),
            });
        }
    }
    let model = obj.get("model").and_then(Value::as_str).map(str::to_string);
    let stream = field_bool(&obj, "stream")?.unwrap_or(false);
    let seed = field_seed(&obj)?;
    let include_usage = match obj.get("stream_options") {
        Some(Value::Object(o)) => field_bool(o, "include_usage")?.unwrap_or(false),
        _ => false,
    };
    let (prompt, max_tokens, min_tokens, ignore_eos, rid) = match api {
        Api::Completions => {
            let p = obj
                .get("prompt")
                .ok_or_else(|| BadRequest::new("missing field `prompt`"))?;
            let prompt = parse_prompt(p, "prompt")?;
            (
                prompt,
                field_u32(&obj, "max_tokens")?,
                field_u32(&obj, "min_tokens")?,
                field_bool(&obj, "ignore_eos")?,
                None,
            )
        }
        Api::Chat => {
            let Some(Value::Array(msgs)) = obj.get("messages") else {
                return Err(BadRequest::new(
                    "missing field `messages` (a list of {role, content})",
                ));
            };
            if msgs.is_empty() {
                return Err(BadRequest::new("field `messages` is empty"));
            }
            let mut messages = Vec::with_capacity(msgs.len());
            for (i, m) in msgs.iter().enumerate() {
                let role = m
                    .get("role")
                    .and_then(Value::as_str)
                    .ok_or_else(|| BadRequest::new(format!("messages[{i}] has no `role`")))?;
                let content = content_text(m.get("content").unwrap_or(&Value::Null), i)?;
                messages.push(ChatMessage {
                    role: role.to_string(),
                    content,
                });
            }
            let n = counter.count_chat(&messages);
            let text = messages
                .iter()
                .map(|m| m.content.as_str())
                .collect::<Vec<_>>()
                .join("\n");
            let max = match field_u32(&obj, "max_completion_tokens")? {
                Some(m) => Some(m),
                None => field_u32(&obj, "max_tokens")?,
            };
            let h = hash_bytes(0xC4A7, text.as_bytes());
            let counted = Prompt::Counted(n.min(u32::MAX as usize) as u32, text, h);
            (
                counted,
                max,
                field_u32(&obj, "min_tokens")?,
                field_bool(&obj, "ignore_eos")?,
                None,
            )
        }
        Api::Generate => {
            let prompt = match (obj.get("text"), obj.get("input_ids")) {
                (Some(t), _) if !t.is_null() => parse_prompt(t, "text")?,
                (_, Some(ids)) if !ids.is_null() => parse_prompt(ids, "input_ids")?,
                _ => return Err(BadRequest::new("send `text` or `input_ids`")),
            };
            let empty = Map::new();
            let sp = match obj.get("sampling_params") {
                Some(Value::Object(o)) => o,
                None | Some(Value::Null) => &empty,
                Some(_) => {
                    return Err(BadRequest::new("field `sampling_params` must be an object"))
                }
            };
            let rid = match obj.get("rid") {
                Some(Value::String(s)) => Some(s.clone()),
                _ => None,
            };
            (
                prompt,
                field_u32(sp, "max_new_tokens")?,
                field_u32(sp, "min_new_tokens")?,
                field_bool(sp, "ignore_eos")?,
                rid,
            )
        }
    };
    let (n, text, h) = match prompt {
        Prompt::Text(t) => {
            let n = counter.count_text(&t).min(u32::MAX as usize) as u32;
            let h = hash_bytes(0x7E47, t.as_bytes());
            (n, t, h)
        }
        Prompt::Ids(n, h) => (n, String::new(), h),
        Prompt::Counted(n, t, h) => (n, t, h),
    };
    finish_parse(
        api,
        model,
        stream,
        include_usage,
        seed,
        (n, text, h),
        max_tokens,
        min_tokens.unwrap_or(0),
        ignore_eos.unwrap_or(false),
        rid,
    )
}

#[allow(clippy::too_many_arguments)]
fn finish_parse(
    api: Api,
    model: Option<String>,
    stream: bool,
    include_usage: bool,
    seed: Option<u64>,
    prompt: (u32, String, u64),
    max_tokens: Option<u32>,
    min_tokens: u32,
    ignore_eos: bool,
    rid: Option<String>,
) -> Result<GenRequest, BadRequest> {
    if max_tokens == Some(0) {
        return Err(BadRequest::new("max_tokens must be at least 1"));
    }
    let (prompt_tokens, prompt_text, prompt_hash) = prompt;
    Ok(GenRequest {
        api,
        model,
        stream,
        include_usage,
        prompt_tokens: prompt_tokens.max(1),
        max_tokens,
        min_tokens,
        ignore_eos,
        seed,
        rid,
        prompt_text,
        prompt_hash,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prompt::HeuristicCounter;

    fn p(api: Api, body: &str, strict: bool) -> Result<GenRequest, BadRequest> {
        parse(api, body.as_bytes(), strict, &HeuristicCounter)
    }

    #[test]
    fn completions_fields() {
        let r = p(
            Api::Completions,
            r#"{"model":"m","prompt":"Hello world","max_tokens":5,"min_tokens":5,"ignore_eos":true,"stream":true,
                "stream_options":{"include_usage":true},"seed":-1,"temperature":0}"#,
            false,
        )
        .unwrap();
        assert_eq!(r.model.as_deref(), Some("m"));
        assert_eq!(
            (r.prompt_tokens, r.max_tokens, r.min_tokens, r.ignore_eos),
            (2, Some(5), 5, true)
        );
        assert!(r.stream && r.include_usage);
        assert_eq!(r.seed, Some(u64::MAX));
        assert_eq!(r.prompt_text, "Hello world");
    }

    #[test]
    fn token_id_prompts_count_exactly() {
        let r = p(Api::Completions, r#"{"prompt":[1,2,3,4]}"#, false).unwrap();
        assert_eq!(r.prompt_tokens, 4);
        let r = p(Api::Completions, r#"{"prompt":[[5,6]]}"#, false).unwrap();
        assert_eq!(r.prompt_tokens, 2);
        let r = p(
            Api::Generate,
            r#"{"input_ids":[1,2,3],"sampling_params":{"max_new_tokens":9,"ignore_eos":true}}"#,
            false,
        )
        .unwrap();
        assert_eq!(
            (r.prompt_tokens, r.max_tokens, r.ignore_eos),
            (3, Some(9), true)
        );
        assert!(p(Api::Completions, r#"{"prompt":["a","b"]}"#, false)
            .unwrap_err()
            .message
            .contains("one prompt"));
        assert!(p(Api::Completions, r#"{"prompt":[1,-2]}"#, false).is_err());
    }

    #[test]
    fn chat_fields_and_counting() {
        let r = p(
            Api::Chat,
            r#"{"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":[{"type":"text","text":"Hello world"}]}],
                "max_tokens":3,"max_completion_tokens":7}"#,
            false,
        )
        .unwrap();
        assert_eq!(r.prompt_tokens, 16);
        assert_eq!(r.max_tokens, Some(7));
        assert_eq!(r.prompt_text, "Be brief.\nHello world");
        assert!(p(Api::Chat, r#"{"messages":[]}"#, false).is_err());
        assert!(p(Api::Chat, r#"{"messages":[{"content":"x"}]}"#, false)
            .unwrap_err()
            .message
            .contains("role"));
    }

    #[test]
    fn generate_text_and_rid() {
        let r = p(
            Api::Generate,
            r#"{"text":"a b c","rid":"abc","stream":true,"sampling_params":{"min_new_tokens":2}}"#,
            false,
        )
        .unwrap();
        assert_eq!(
            (r.prompt_tokens, r.min_tokens, r.rid.as_deref(), r.stream),
            (3, 2, Some("abc"), true)
        );
        assert_eq!(r.max_tokens, None);
        assert!(p(Api::Generate, r#"{"sampling_params":{}}"#, false)
            .unwrap_err()
            .message
            .contains("input_ids"));
    }

    #[test]
    fn strict_mode_rejects_non_openai_fields_with_422() {
        let e = p(
            Api::Completions,
            r#"{"prompt":"x","ignore_eos":true,"min_tokens":3}"#,
            true,
        )
        .unwrap_err();
        assert_eq!(e.status, 422);
        assert!(
            e.message.contains("ignore_eos") && e.message.contains("min_tokens"),
            "{}",
            e.message
        );
        assert!(p(
            Api::Completions,
            r#"{"prompt":"x","max_tokens":3,"stream_options":{"include_usage":true}}"#,
            true
        )
        .is_ok());
        assert!(p(
            Api::Chat,
            r#"{"messages":[{"role":"user","content":"x"}],"max_completion_tokens":3}"#,
            true
        )
        .is_ok());
        assert_eq!(
            p(
                Api::Chat,
                r#"{"messages":[{"role":"user","content":"x"}],"ignore_eos":true}"#,
                true
            )
            .unwrap_err()
            .status,
            422
        );
    }

    #[test]
    fn bad_values_are_named() {
        let e = p(
            Api::Completions,
            r#"{"prompt":"x","max_tokens":"many"}"#,
            false,
        )
        .unwrap_err();
        assert!(e.message.contains("max_tokens"), "{}", e.message);
        assert!(p(Api::Completions, r#"{"prompt":"x","max_tokens":0}"#, false).is_err());
        assert!(
            p(Api::Completions, r#"{"prompt":"x","stream":"yes"}"#, false)
                .unwrap_err()
                .message
                .contains("stream")
        );
        assert!(p(Api::Completions, "not json", false)
            .unwrap_err()
            .message
            .contains("JSON"));
        assert_eq!(
            p(
                Api::Completions,
                r#"{"prompt":"x","max_tokens":12.0}"#,
                false
            )
            .unwrap()
            .max_tokens,
            Some(12)
        );
    }
}
