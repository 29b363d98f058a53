//! Response bytes, written by hand: SSE chunks are a precomputed prefix, the (already escaped) text and a suffix,
//! so streaming a token costs a few memcpys and no JSON serializer. Shapes follow vLLM (OpenAI APIs) and SGLang
//! (`/generate`).

use std::fmt::Write as _;

/// Which API a request came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Api {
    Completions,
    Chat,
    Generate,
}

impl Api {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Api::Completions => "completions",
            Api::Chat => "chat",
            Api::Generate => "generate",
        }
    }
}

/// Why generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Finish {
    Stop,
    Length,
}

impl Finish {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Finish::Stop => "stop",
            Finish::Length => "length",
        }
    }
}

/// Append `s` to `out` as the inside of a JSON string literal.
pub(crate) fn escape_into(out: &mut String, s: &str) {
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let rep: &str = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0..=0x1f => "",
            _ => continue,
        };
        out.push_str(&s[start..i]);
        if rep.is_empty() {
            let _ = write!(out, "\\u{:04x}", b);
        } else {
            out.push_str(rep);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
}

/// A JSON string literal (with quotes).
pub(crate) fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    escape_into(&mut out, s);
    out.push('"');
    out
}

/// Builds every byte of one request's response.
#[derive(Debug)]
pub(crate) struct Framer {
    api: Api,
    /// `data: {"id":…,"object":…,"created":…,"model":…,"choices":[{"index":0,` (OpenAI chunks).
    head: String,
    id: String,
    prompt_tokens: u32,
    created: u64,
    model_json: String,
    /// `/generate`: the escaped text so far (SGLang streams cumulative text).
    cumulative: String,
    max_new_tokens: u32,
}

pub(crate) const DONE: &[u8] = b"data: [DONE]\n\n";

impl Framer {
    pub(crate) fn new(
        api: Api,
        sim_id: &str,
        created: u64,
        model: &str,
        prompt_tokens: u32,
        max_new_tokens: u32,
    ) -> Self {
        let model_json = json_string(model);
        let (id, object) = match api {
            Api::Completions => (format!("cmpl-{sim_id}"), "text_completion"),
            Api::Chat => (format!("chatcmpl-{sim_id}"), "chat.completion.chunk"),
            Api::Generate => (sim_id.to_string(), ""),
        };
        let head = format!(
            "data: {{\"id\":{},\"object\":\"{object}\",\"created\":{created},\"model\":{model_json},\"choices\":[{{\"index\":0,",
            json_string(&id)
        );
        Framer {
            api,
            head,
            id,
            prompt_tokens,
            created,
            model_json,
            cumulative: String::new(),
            max_new_tokens,
        }
    }

    fn finish_json(f: Option<Finish>) -> &'static str {
        match f {
            None => "null",
            Some(Finish::Stop) => "\"stop\"",
            Some(Finish::Length) => "\"length\"",
        }
    }

    /// SGLang's finish reason object: `{"type":"length","length":max_new_tokens}` or `{"type":"stop",…}`.
    fn sglang_finish(&self, f: Option<Finish>) -> String {
        match f {
            None => "null".to_string(),
            Some(Finish::Length) => {
                format!("{{\"type\":\"length\",\"length\":{}}}", self.max_new_tokens)
            }
            Some(Finish::Stop) => "{\"type\":\"stop\",\"matched\":null}".to_string(),
        }
    }

    /// The chat stream's first event: the assistant role with empty content (as vLLM and SGLang send it).
    pub(crate) fn role_chunk(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.head.as_bytes());
        out.extend_from_slice(b"\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"logprobs\":null,\"finish_reason\":null}]}\n\n");
    }

    /// One text chunk. `content`/`reasoning` are already JSON-escaped; `completion_tokens` counts tokens so far;
    /// `finish` is set on the last chunk; `e2e_s` is the `/generate` latency reported on the last chunk.
    pub(crate) fn chunk(
        &mut self,
        out: &mut Vec<u8>,
        content: &str,
        reasoning: &str,
        completion_tokens: u32,
        finish: Option<Finish>,
        e2e_s: f64,
    ) {
        match self.api {
            Api::Completions => {
                out.extend_from_slice(self.head.as_bytes());
                out.extend_from_slice(b"\"text\":\"");
                out.extend_from_slice(reasoning.as_bytes());
                out.extend_from_slice(content.as_bytes());
                out.extend_from_slice(b"\",\"logprobs\":null,\"finish_reason\":");
                out.extend_from_slice(Self::finish_json(finish).as_bytes());
                out.extend_from_slice(b",\"stop_reason\":null}]}\n\n");
            }
            Api::Chat => {
                out.extend_from_slice(self.head.as_bytes());
                out.extend_from_slice(b"\"delta\":{");
                let mut sep = "";
                if !reasoning.is_empty() {
                    out.extend_from_slice(b"\"reasoning_content\":\"");
                    out.extend_from_slice(reasoning.as_bytes());
                    out.push(b'"');
                    sep = ",";
                }
                if !content.is_empty() || reasoning.is_empty() {
                    out.extend_from_slice(sep.as_bytes());
                    out.extend_from_slice(b"\"content\":\"");
                    out.extend_from_slice(content.as_bytes());
                    out.push(b'"');
                }
                out.extend_from_slice(b"},\"logprobs\":null,\"finish_reason\":");
                out.extend_from_slice(Self::finish_json(finish).as_bytes());
                out.extend_from_slice(b"}]}\n\n");
            }
            Api::Generate => {
                self.cumulative.push_str(reasoning);
                self.cumulative.push_str(content);
                out.extend_from_slice(b"data: {\"text\":\"");
                out.extend_from_slice(self.cumulative.as_bytes());
                let mut tail = String::with_capacity(160);
                let _ = write!(
                    tail,
                    "\",\"meta_info\":{{\"id\":{},\"finish_reason\":{},\"prompt_tokens\":{},\"completion_tokens\":{},\"cached_tokens\":0",
                    json_string(&self.id),
                    self.sglang_finish(finish),
                    self.prompt_tokens,
                    completion_tokens
                );
                if finish.is_some() {
                    let _ = write!(tail, ",\"e2e_latency\":{e2e_s}");
                }
                tail.push_str("}}\n\n");
                out.extend_from_slice(tail.as_bytes());
            }
        }
    }

    /// The `stream_options.include_usage` chunk (OpenAI APIs only).
    pub(crate) fn usage_chunk(&self, out: &mut Vec<u8>, completion_tokens: u32) {
        if self.api == Api::Generate {
            return;
        }
        let object = if self.api == Api::Chat {
            "chat.completion.chunk"
        } else {
            "text_completion"
        };
        let _ = write!(
            ByteWriter(out),
            "data: {{\"id\":{},\"object\":\"{object}\",\"created\":{},\"model\":{},\"choices\":[],\"usage\":{}}}\n\n",
            json_string(&self.id),
            self.created,
            self.model_json,
            self.usage_json(completion_tokens)
        );
    }

    fn usage_json(&self, completion_tokens: u32) -> String {
        format!(
            "{{\"prompt_tokens\":{},\"total_tokens\":{},\"completion_tokens\":{}}}",
            self.prompt_tokens,
            u64::from(self.prompt_tokens) + u64::from(completion_tokens),
            completion_tokens
        )
    }

    /// An event whose JSON is cut short (fault injection).
    pub(crate) fn malformed_chunk(&self, out: &mut Vec<u8>) {
        match self.api {
            Api::Generate => out.extend_from_slice(b"data: {\"text\":\"\\u00\n\n"),
            _ => {
                out.extend_from_slice(self.head.as_bytes());
                out.extend_from_slice(b"\"text\":\n\n");
            }
        }
    }

    /// The whole non-streaming response body.
    pub(crate) fn full_response(
        &self,
        content: &str,
        reasoning: &str,
        completion_tokens: u32,
        finish: Finish,
        e2e_s: f64,
    ) -> Vec<u8> {
        let mut o = String::with_capacity(content.len() + reasoning.len() + 400);
        match self.api {
            Api::Completions => {
                let _ = write!(
                    o,
                    "{{\"id\":{},\"object\":\"text_completion\",\"created\":{},\"model\":{},\"choices\":[{{\"index\":0,\"text\":\"{reasoning}{content}\",\"logprobs\":null,\"finish_reason\":\"{}\",\"stop_reason\":null}}],\"usage\":{}}}",
                    json_string(&self.id),
                    self.created,
                    self.model_json,
                    finish.as_str(),
                    self.usage_json(completion_tokens)
                );
            }
            Api::Chat => {
                let reasoning_json = if reasoning.is_empty() {
                    "null".to_string()
                } else {
                    format!("\"{reasoning}\"")
                };
                let _ = write!(
                    o,
                    "{{\"id\":{},\"object\":\"chat.completion\",\"created\":{},\"model\":{},\"choices\":[{{\"index\":0,\"message\":{{\"role\":\"assistant\",\"content\":\"{content}\",\"reasoning_content\":{reasoning_json}}},\"logprobs\":null,\"finish_reason\":\"{}\",\"stop_reason\":null}}],\"usage\":{}}}",
                    json_string(&self.id),
                    self.created,
                    self.model_json,
                    finish.as_str(),
                    self.usage_json(completion_tokens)
                );
            }
            Api::Generate => {
                let _ = write!(
                    o,
                    "{{\"text\":\"{reasoning}{content}\",\"meta_info\":{{\"id\":{},\"finish_reason\":{},\"prompt_tokens\":{},\"completion_tokens\":{completion_tokens},\"cached_tokens\":0,\"e2e_latency\":{e2e_s}}}}}",
                    json_string(&self.id),
                    self.sglang_finish(Some(finish)),
                    self.prompt_tokens,
                );
            }
        }
        o.into_bytes()
    }
}

struct ByteWriter<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for ByteWriter<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn event(bytes: &[u8]) -> Value {
        let s = std::str::from_utf8(bytes).unwrap();
        assert!(s.starts_with("data: ") && s.ends_with("\n\n"), "{s:?}");
        assert_eq!(s.matches("\n\n").count(), 1, "{s:?}");
        serde_json::from_str(&s[6..s.len() - 2]).unwrap()
    }

    #[test]
    fn escapes_json() {
        let mut s = String::new();
        escape_into(&mut s, "a\"b\\c\nd\u{1}é");
        assert_eq!(s, "a\\\"b\\\\c\\nd\\u0001é");
        let v: Value = serde_json::from_str(&json_string("x\"\\\n\t\u{1f}y")).unwrap();
        assert_eq!(v, "x\"\\\n\t\u{1f}y");
    }

    #[test]
    fn completion_chunks_parse_as_vllm_shapes() {
        let mut f = Framer::new(Api::Completions, "sim-1", 1700, "m\"x", 7, 16);
        let mut out = Vec::new();
        f.chunk(&mut out, " the", "", 1, None, 0.0);
        let v = event(&out);
        assert_eq!(v["id"], "cmpl-sim-1");
        assert_eq!(v["object"], "text_completion");
        assert_eq!(v["created"], 1700);
        assert_eq!(v["model"], "m\"x");
        assert_eq!(v["choices"][0]["text"], " the");
        assert_eq!(v["choices"][0]["finish_reason"], Value::Null);
        out.clear();
        f.chunk(&mut out, " of", "", 2, Some(Finish::Length), 0.0);
        assert_eq!(event(&out)["choices"][0]["finish_reason"], "length");
        out.clear();
        f.usage_chunk(&mut out, 2);
        let u = event(&out);
        assert_eq!(u["choices"], serde_json::json!([]));
        assert_eq!(
            u["usage"],
            serde_json::json!({"prompt_tokens": 7, "total_tokens": 9, "completion_tokens": 2})
        );
    }

    #[test]
    fn chat_chunks_carry_role_content_and_reasoning() {
        let mut f = Framer::new(Api::Chat, "sim-2", 1, "m", 3, 16);
        let mut out = Vec::new();
        f.role_chunk(&mut out);
        let r = event(&out);
        assert_eq!(r["object"], "chat.completion.chunk");
        assert_eq!(
            r["choices"][0]["delta"],
            serde_json::json!({"role": "assistant", "content": ""})
        );
        out.clear();
        f.chunk(&mut out, "", "think\\n", 1, None, 0.0);
        assert_eq!(
            event(&out)["choices"][0]["delta"],
            serde_json::json!({"reasoning_content": "think\n"})
        );
        out.clear();
        f.chunk(&mut out, " ok", " more", 3, Some(Finish::Stop), 0.0);
        let c = event(&out);
        assert_eq!(
            c["choices"][0]["delta"],
            serde_json::json!({"reasoning_content": " more", "content": " ok"})
        );
        assert_eq!(c["choices"][0]["finish_reason"], "stop");
    }

    #[test]
    fn generate_chunks_are_cumulative() {
        let mut f = Framer::new(Api::Generate, "rid-1", 1, "m", 5, 2);
        let mut out = Vec::new();
        f.chunk(&mut out, " the", "", 1, None, 0.0);
        let a = event(&out);
        assert_eq!(a["text"], " the");
        assert_eq!(a["meta_info"]["completion_tokens"], 1);
        assert_eq!(a["meta_info"]["finish_reason"], Value::Null);
        assert!(a["meta_info"].get("e2e_latency").is_none());
        out.clear();
        f.chunk(&mut out, " of", "", 2, Some(Finish::Length), 0.25);
        let b = event(&out);
        assert_eq!(b["text"], " the of");
        assert_eq!(b["meta_info"]["id"], "rid-1");
        assert_eq!(b["meta_info"]["prompt_tokens"], 5);
        assert_eq!(
            b["meta_info"]["finish_reason"],
            serde_json::json!({"type": "length", "length": 2})
        );
        assert_eq!(b["meta_info"]["e2e_latency"], 0.25);
        out.clear();
        f.usage_chunk(&mut out, 2);
        assert!(out.is_empty());
    }

    #[test]
    fn malformed_events_do_not_parse() {
        for api in [Api::Completions, Api::Chat, Api::Generate] {
            let f = Framer::new(api, "s", 1, "m", 1, 1);
            let mut out = Vec::new();
            f.malformed_chunk(&mut out);
            let s = String::from_utf8(out).unwrap();
            assert!(s.starts_with("data: ") && s.ends_with("\n\n"));
            assert!(
                serde_json::from_str::<Value>(&s[6..s.len() - 2]).is_err(),
                "{s}"
            );
        }
    }

    #[test]
    fn full_responses() {
        let f = Framer::new(Api::Chat, "s", 9, "m", 4, 16);
        let v: Value =
            serde_json::from_slice(&f.full_response(" a", "r", 2, Finish::Stop, 0.1)).unwrap();
        assert_eq!(v["object"], "chat.completion");
        assert_eq!(v["choices"][0]["message"]["content"], " a");
        assert_eq!(v["choices"][0]["message"]["reasoning_content"], "r");
        assert_eq!(v["usage"]["total_tokens"], 6);
        let f = Framer::new(Api::Completions, "s", 9, "m", 4, 16);
        let v: Value =
            serde_json::from_slice(&f.full_response(" a b", "", 2, Finish::Length, 0.1)).unwrap();
        assert_eq!(v["choices"][0]["text"], " a b");
        assert_eq!(v["choices"][0]["finish_reason"], "length");
        let f = Framer::new(Api::Generate, "s", 9, "m", 4, 16);
        let v: Value =
            serde_json::from_slice(&f.full_response(" a b", "", 2, Finish::Stop, 0.5)).unwrap();
        assert_eq!(v["text"], " a b");
        assert_eq!(v["meta_info"]["finish_reason"]["type"], "stop");
        assert_eq!(v["meta_info"]["completion_tokens"], 2);
    }
}
