//! Backends (which endpoint and body shape), request bodies, and decoding of server responses.
//!
//! Backend names are SGLang's (`--backend`): `sglang`/`sglang-native` use the native `/generate`;
//! `sglang-oai`, `vllm`, `openai`, `lmdeploy` use `/v1/completions`; the `-chat` variants use
//! `/v1/chat/completions`.

use crate::json_scan::Scan;
use crate::CoreError;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::borrow::Cow;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Api {
    /// SGLang native `/generate` (cumulative text in each streamed event).
    SglangGenerate,
    /// OpenAI `/v1/completions`.
    Completions,
    /// OpenAI `/v1/chat/completions`.
    Chat,
}

/// A `--backend` value: its name (kept for the result file) and the API it speaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backend {
    pub name: String,
    pub api: Api,
}

impl Backend {
    pub fn parse(name: &str) -> Result<Backend, CoreError> {
        let api = match name {
            "sglang" | "sglang-native" => Api::SglangGenerate,
            "sglang-oai" | "vllm" | "openai" | "lmdeploy" | "trt-oai" => Api::Completions,
            "sglang-oai-chat" | "vllm-chat" | "openai-chat" | "lmdeploy-chat" => Api::Chat,
            other => return Err(CoreError::UnknownBackend(other.to_string())),
        };
        Ok(Backend {
            name: name.to_string(),
            api,
        })
    }

    /// The request path for this backend.
    pub fn path(&self) -> &'static str {
        match self.api {
            Api::SglangGenerate => "/generate",
            Api::Completions => "/v1/completions",
            Api::Chat => "/v1/chat/completions",
        }
    }

    /// Default port when only `--host` is given (sglang.bench_serving's table: 8000 for `vllm`, 23333 for
    /// `lmdeploy`, 30000 for everything else, the `-chat` backends included).
    pub fn default_port(&self) -> u16 {
        match self.name.as_str() {
            "vllm" => 8000,
            "lmdeploy" => 23333,
            _ => 30000,
        }
    }

    /// Whether chat requests carry the output limit as `max_completion_tokens` (sglang.bench_serving's chat
    /// backends: sglang-oai-chat, vllm-chat, lmdeploy-chat) rather than `max_tokens` (`openai-chat`, for
    /// servers that predate the newer name).
    pub fn sends_max_completion_tokens(&self) -> bool {
        self.api == Api::Chat && self.name != "openai-chat"
    }
}

/// One chat message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub role: String,
    pub content: String,
}

/// What is sent as the prompt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Prompt {
    Text(String),
    Ids(Vec<u32>),
    Messages(Vec<Message>),
}

impl Prompt {
    /// The prompt as text for records and chat bodies (messages joined by blank lines; ids as a list).
    pub fn as_text(&self) -> Cow<'_, str> {
        match self {
            Prompt::Text(t) => Cow::Borrowed(t),
            Prompt::Ids(ids) => Cow::Owned(format!("{ids:?}")),
            Prompt::Messages(m) if m.len() == 1 => Cow::Borrowed(&m[0].content),
            Prompt::Messages(m) => Cow::Owned(
                m.iter()
                    .map(|m| m.content.as_str())
                    .collect::<Vec<_>>()
                    .join("\n\n"),
            ),
        }
    }
}

/// Sampling and protocol settings of one request.
#[derive(Debug, Clone, PartialEq)]
pub struct GenParams {
    pub max_tokens: Option<u32>,
    /// Chat: send `max_tokens` under the name `max_completion_tokens` (see
    /// [`Backend::sends_max_completion_tokens`]).
    pub max_completion_tokens: bool,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    /// Send `ignore_eos: true` (omitted entirely when false: strict servers reject the field).
    pub ignore_eos: bool,
    /// Send `min_tokens` (omitted when `None`).
    pub min_tokens: Option<u32>,
    pub stream: bool,
    /// Ask for `usage` in the stream (`stream_options.include_usage`).
    pub include_usage: bool,
    pub seed: Option<u64>,
    /// Merged last into the body (`--extra-request-body`); for SGLang's native API, keys that are sampling
    /// parameters go into `sampling_params`.
    pub extra: Map<String, Value>,
}

impl Default for GenParams {
    fn default() -> Self {
        GenParams {
            max_tokens: None,
            max_completion_tokens: false,
            temperature: Some(0.0),
            top_p: None,
            ignore_eos: false,
            min_tokens: None,
            stream: true,
            include_usage: true,
            seed: None,
            extra: Map::new(),
        }
    }
}

const SGLANG_SAMPLING_KEYS: &[&str] = &[
    "temperature",
    "top_p",
    "top_k",
    "min_p",
    "max_new_tokens",
    "min_new_tokens",
    "stop",
    "stop_token_ids",
    "frequency_penalty",
    "presence_penalty",
    "repetition_penalty",
    "ignore_eos",
    "skip_special_tokens",
    "n",
];

/// Builds the JSON body of a request.
pub fn request_body(api: Api, model: &str, prompt: &Prompt, p: &GenParams) -> Value {
    match api {
        Api::SglangGenerate => {
            let mut sp = Map::new();
            if let Some(t) = p.temperature {
                sp.insert("temperature".into(), json!(t));
            }
            if let Some(t) = p.top_p {
                sp.insert("top_p".into(), json!(t));
            }
            if let Some(m) = p.max_tokens {
                sp.insert("max_new_tokens".into(), json!(m));
            }
            if let Some(m) = p.min_tokens {
                sp.insert("min_new_tokens".into(), json!(m));
            }
            if p.ignore_eos {
                sp.insert("ignore_eos".into(), json!(true));
            }
            let mut body = Map::new();
            match prompt {
                Prompt::Ids(ids) => body.insert("input_ids".into(), json!(ids)),
                other => body.insert("text".into(), json!(other.as_text())),
            };
            let mut extra = p.extra.clone();
            if let Some(Value::Object(more)) = extra.remove("sampling_params") {
                sp.extend(more);
            }
            for k in SGLANG_SAMPLING_KEYS {
                if let Some(v) = extra.remove(*k) {
                    sp.insert((*k).to_string(), v);
                }
            }
            body.insert("sampling_params".into(), Value::Object(sp));
            body.insert("stream".into(), json!(p.stream));
            body.extend(extra);
            Value::Object(body)
        }
        Api::Completions | Api::Chat => {
            let mut body = Map::new();
            body.insert("model".into(), json!(model));
            match (api, prompt) {
                (Api::Chat, Prompt::Messages(m)) => body.insert("messages".into(), json!(m)),
                (Api::Chat, other) => body.insert(
                    "messages".into(),
                    json!([{"role": "user", "content": other.as_text()}]),
                ),
                (_, Prompt::Ids(ids)) => body.insert("prompt".into(), json!(ids)),
                (_, other) => body.insert("prompt".into(), json!(other.as_text())),
            };
            if let Some(t) = p.temperature {
                body.insert("temperature".into(), json!(t));
            }
            if let Some(t) = p.top_p {
                body.insert("top_p".into(), json!(t));
            }
            if let Some(m) = p.max_tokens {
                let key = if api == Api::Chat && p.max_completion_tokens {
                    "max_completion_tokens"
                } else {
                    "max_tokens"
                };
                body.insert(key.into(), json!(m));
            }
            if let Some(m) = p.min_tokens {
                body.insert("min_tokens".into(), json!(m));
            }
            if p.ignore_eos {
                body.insert("ignore_eos".into(), json!(true));
            }
            if let Some(s) = p.seed {
                body.insert("seed".into(), json!(s));
            }
            body.insert("stream".into(), json!(p.stream));
            if p.stream && p.include_usage {
                body.insert("stream_options".into(), json!({"include_usage": true}));
            }
            body.extend(p.extra.clone());
            Value::Object(body)
        }
    }
}

/// Token counts reported by the server.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub prompt_tokens: Option<u64>,
    pub completion_tokens: Option<u64>,
}

// ---- wire types (borrowed; unknown fields skipped) ----

#[derive(Deserialize)]
struct WireUsage {
    prompt_tokens: Option<u64>,
    completion_tokens: Option<u64>,
}

#[derive(Deserialize)]
struct WireDelta<'a> {
    #[serde(borrow, default)]
    content: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    reasoning_content: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    reasoning: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct WireChoice<'a> {
    #[serde(borrow, default)]
    text: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    delta: Option<WireDelta<'a>>,
    #[serde(borrow, default)]
    message: Option<WireDelta<'a>>,
    #[serde(borrow, default)]
    finish_reason: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct WireOpenAi<'a> {
    /// Only the first choice is read (no allocation per event for the list).
    #[serde(borrow, default, deserialize_with = "first_choice")]
    choices: Option<WireChoice<'a>>,
    #[serde(default)]
    usage: Option<WireUsage>,
    #[serde(default)]
    error: Option<Value>,
    #[serde(borrow, default)]
    object: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    message: Option<Cow<'a, str>>,
}

fn first_choice<'de: 'a, 'a, D>(d: D) -> Result<Option<WireChoice<'a>>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    struct FirstOf<'a>(std::marker::PhantomData<&'a ()>);
    impl<'de: 'a, 'a> serde::de::Visitor<'de> for FirstOf<'a> {
        type Value = Option<WireChoice<'a>>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a list of choices")
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> Result<Self::Value, A::Error> {
            let first = seq.next_element::<WireChoice<'a>>()?;
            while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
            Ok(first)
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
    }
    d.deserialize_any(FirstOf(std::marker::PhantomData))
}

#[derive(Deserialize)]
struct WireMeta {
    #[serde(default)]
    prompt_tokens: Option<u64>,
    #[serde(default)]
    completion_tokens: Option<u64>,
    #[serde(default)]
    finish_reason: Option<Value>,
}

#[derive(Deserialize)]
struct WireSglang<'a> {
    #[serde(borrow, default)]
    text: Option<Cow<'a, str>>,
    #[serde(default)]
    meta_info: Option<WireMeta>,
    #[serde(default)]
    error: Option<Value>,
}

/// What an OpenAI-style event (completions or chat) says, as far as the decoder is concerned.
#[derive(Debug, Default, PartialEq)]
struct OpenAiView<'a> {
    text: Option<Cow<'a, str>>,
    /// `delta.content` (or `message.content` when there is no delta).
    content: Option<Cow<'a, str>>,
    /// `reasoning_content`, else `reasoning`, of the same delta/message.
    reasoning: Option<Cow<'a, str>>,
    finish_reason: Option<Cow<'a, str>>,
    prompt_tokens: Option<u64>,
    completion_tokens: Option<u64>,
}

impl<'a> OpenAiView<'a> {
    /// The full parse: every shape serde accepts, and the error for the rest.
    fn serde(data: &'a [u8]) -> Result<Self, CoreError> {
        let w: WireOpenAi = serde_json::from_slice(data).map_err(|e| malformed(e, data))?;
        if let Some(err) = w.error {
            return Err(CoreError::ServerError(err.to_string()));
        }
        if w.object.as_deref() == Some("error") {
            return Err(CoreError::ServerError(
                w.message.map(|m| m.into_owned()).unwrap_or_default(),
            ));
        }
        let mut v = OpenAiView::default();
        if let Some(u) = w.usage {
            v.prompt_tokens = u.prompt_tokens;
            v.completion_tokens = u.completion_tokens;
        }
        if let Some(c) = w.choices {
            v.text = c.text;
            if let Some(d) = c.delta.or(c.message) {
                v.content = d.content;
                v.reasoning = d.reasoning_content.or(d.reasoning);
            }
            v.finish_reason = c.finish_reason;
        }
        Ok(v)
    }

    /// The fast walk ([`crate::json_scan`]): `None` for anything unusual (errors, escaped or duplicate keys,
    /// unexpected types), which then goes through [`OpenAiView::serde`].
    #[cfg(test)]
    fn scan(data: &'a [u8]) -> Option<Self> {
        Self::scan_cached(data, &mut PrefixCache::default())
    }

    /// The fast walk, skipping the bytes before `"choices"` when they equal those of an event this stream
    /// already walked (events of one stream repeat `id`, `object`, `created`, `model`). The walk is a function
    /// of the bytes, so skipping an identical, already-validated prefix gives the same result. Before any walk,
    /// an event that is the stream's last text-only event with another text is read from the memo
    /// ([`TextMemo`]); a walked event that qualifies becomes the memo's.
    fn scan_cached(data: &'a [u8], cache: &mut PrefixCache) -> Option<Self> {
        let warm = std::mem::replace(&mut cache.warm, true);
        if let Some(v) = cache.memo.apply(data, warm) {
            return Some(v);
        }
        let mut v = OpenAiView::default();
        let mut texts = TextSpans::default();
        let hit = !cache.bytes.is_empty() && data.starts_with(&cache.bytes);
        let base = if hit { cache.bytes.len() } else { 0 };
        let mut sc = Scan::new(&data[base..])?;
        let mut seen = if hit { cache.seen } else { 0 };
        // Where the key "choices" starts, when nothing before it set a field of the view.
        let mut prefix: Option<(usize, u8)> = None;
        let mut before_choices_clean = !hit;
        if !hit {
            sc.eat(b'{')?;
            if sc.peek()? == b'}' {
                sc.advance(1);
                return sc.at_end().then_some(v);
            }
        }
        loop {
            sc.peek()?;
            let key_at = sc.pos();
            let key = sc.key()?;
            if key == b"choices" && before_choices_clean {
                prefix = Some((key_at, seen));
                before_choices_clean = false;
            }
            let once = |seen: &mut u8, bit: u8| {
                if *seen & bit != 0 {
                    None
                } else {
                    *seen |= bit;
                    Some(())
                }
            };
            match key {
                b"choices" => {
                    once(&mut seen, 1)?;
                    if !sc.null()? {
                        sc.array(|sc, i| {
                            if i == 0 {
                                Self::choice(sc, &mut v, &mut texts)
                            } else {
                                sc.skip()
                            }
                        })?;
                    }
                }
                b"usage" => {
                    once(&mut seen, 2)?;
                    before_choices_clean = false;
                    if !sc.null()? {
                        let (mut p, mut c) = (0u8, 0u8);
                        sc.object(|sc, k| match k {
                            b"prompt_tokens" => {
                                p += 1;
                                v.prompt_tokens = sc.opt_u64()?;
                                (p == 1).then_some(())
                            }
                            b"completion_tokens" => {
                                c += 1;
                                v.completion_tokens = sc.opt_u64()?;
                                (c == 1).then_some(())
                            }
                            _ => sc.skip(),
                        })?;
                    }
                }
                // Errors take the full parse (rare; the message is built there).
                b"error" => {
                    once(&mut seen, 4)?;
                    if !sc.null()? {
                        return None;
                    }
                }
                b"object" => {
                    once(&mut seen, 8)?;
                    if sc.opt_string()?.as_deref() == Some("error") {
                        return None;
                    }
                }
                b"message" => {
                    once(&mut seen, 16)?;
                    sc.opt_string()?;
                }
                _ => sc.skip()?,
            }
            match sc.peek()? {
                b',' => sc.advance(1),
                b'}' => {
                    sc.advance(1);
                    break;
                }
                _ => return None,
            }
        }
        if !sc.at_end() {
            return None;
        }
        if let Some((at, seen_then)) = prefix {
            cache.bytes.clear();
            cache.bytes.extend_from_slice(&data[..at]);
            cache.seen = seen_then;
        }
        cache.memo.learn(data, base, &v, &texts);
        Some(v)
    }

    fn choice(sc: &mut Scan<'a>, v: &mut OpenAiView<'a>, texts: &mut TextSpans) -> Option<()> {
        let mut seen = 0u8;
        let mut delta: Option<DeltaView<'a>> = None;
        let mut message: Option<DeltaView<'a>> = None;
        sc.object(|sc, key| {
            let bit = match key {
                b"text" => 1,
                b"delta" => 2,
                b"message" => 4,
                b"finish_reason" => 8,
                _ => return sc.skip(),
            };
            if seen & bit != 0 {
                return None;
            }
            seen |= bit;
            match key {
                b"text" => v.text = texts.read(sc)?,
                b"finish_reason" => v.finish_reason = sc.opt_string()?,
                b"delta" => delta = DeltaView::scan(sc, texts)?,
                _ => message = DeltaView::scan(sc, texts)?,
            }
            Some(())
        })?;
        if let Some(d) = delta.or(message) {
            v.content = d.content;
            v.reasoning = d.reasoning_content.or(d.reasoning);
        }
        Some(())
    }
}

/// The bytes of a stream's last fully walked event up to its `"choices"` key, and the keys seen by then; and
/// the same event around its text ([`TextMemo`]).
#[derive(Debug, Clone, Default)]
struct PrefixCache {
    bytes: Vec<u8>,
    seen: u8,
    memo: TextMemo,
    /// Whether this stream's last event came in the read the next one comes in ([`StreamDecoder::new_read`]).
    warm: bool,
}

/// Where the walk read the string values of text fields (`text`, `content`, `reasoning_content`,
/// `reasoning`): how many were strings, and the last one's quotes (the opening one, and just past the
/// closing one), from the walk's start.
#[derive(Default)]
struct TextSpans {
    strings: u8,
    at: (usize, usize),
}

impl TextSpans {
    /// A text field's value (a string or `null`), noting where a string was.
    fn read<'a>(&mut self, sc: &mut Scan<'a>) -> Option<Option<Cow<'a, str>>> {
        sc.peek()?;
        let start = sc.pos();
        let s = sc.opt_string()?;
        if s.is_some() {
            self.strings = self.strings.saturating_add(1);
            self.at = (start, sc.pos());
        }
        Some(s)
    }
}

/// Which field of [`OpenAiView`] a [`TextMemo`] fills.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum TextField {
    #[default]
    None,
    Text,
    Content,
    Reasoning,
}

/// A stream's last walked event that carried one text string and nothing else (no finish reason, no usage),
/// kept as its bytes up to the string's opening quote (`head`) and after its closing quote (`tail`), and their
/// digests. Consecutive events of a stream differ only in that string, so an event with the
/// same head and tail and a valid string between them is read without walking it: the walk is a function of
/// the bytes, and a string's value changes nothing else the walk does.
///
/// Digests for the first event of a read: a paced stream's every event is its own read, and among hundreds of
/// streams a stream's kept bytes are cold (two or three cache misses an event) where the event's own bytes were
/// just read. Equal lengths and equal 64-bit digests (foldhash's quality hash, fixed seed) stand for equal bytes;
/// two different heads (or tails) of one length have equal digests with probability 2^-64 per event. Later
/// events of the same read compare the kept bytes, which the first one made warm.
#[derive(Debug, Clone, Default)]
struct TextMemo {
    field: TextField,
    head: u64,
    tail: u64,
    /// The bytes too, compared instead of the digests when the stream's last event came in the same read (a
    /// fire-hose stream's memo is then still in the cache, and comparing is cheaper than digesting).
    head_bytes: Vec<u8>,
    tail_bytes: Vec<u8>,
}

/// The digest [`TextMemo`] keeps of a head or tail.
fn memo_digest(bytes: &[u8]) -> u64 {
    use std::hash::BuildHasher;
    foldhash::quality::FixedState::with_seed(0x6d65_6d6f).hash_one(bytes)
}

impl TextMemo {
    /// The view of `data` when it is the memo's event with another text, else None.
    /// `warm`: the memo was used in this read already (compare bytes, not digests).
    fn apply<'a>(&self, data: &'a [u8], warm: bool) -> Option<OpenAiView<'a>> {
        let (h, t) = (self.head_bytes.len(), self.tail_bytes.len());
        if self.field == TextField::None || data.len() < h + 1 + t {
            return None;
        }
        let same = if warm {
            data.starts_with(&self.head_bytes) && data.ends_with(&self.tail_bytes)
        } else {
            memo_digest(&data[..h]) == self.head
                && memo_digest(&data[data.len() - t..]) == self.tail
        };
        if !same {
            return None;
        }
        // From the opening quote (the head's last byte) to the closing one: exactly one string.
        let string = &data[h - 1..data.len() - t];
        let mut sc = Scan::new(string)?;
        let text = sc.string()?;
        if sc.pos() != string.len() {
            return None;
        }
        let mut v = OpenAiView::default();
        let slot = match self.field {
            TextField::Text => &mut v.text,
            TextField::Content => &mut v.content,
            TextField::Reasoning | TextField::None => &mut v.reasoning,
        };
        *slot = Some(text);
        Some(v)
    }

    /// Keeps `data` (walked from `base`, giving `v`) as the memo's event when it qualifies.
    fn learn(&mut self, data: &[u8], base: usize, v: &OpenAiView<'_>, texts: &TextSpans) {
        let field = match (&v.text, &v.content, &v.reasoning) {
            (Some(_), None, None) => TextField::Text,
            (None, Some(_), None) => TextField::Content,
            (None, None, Some(_)) => TextField::Reasoning,
            _ => TextField::None,
        };
        let only_text = texts.strings == 1
            && v.finish_reason.is_none()
            && v.prompt_tokens.is_none()
            && v.completion_tokens.is_none();
        if field == TextField::None || !only_text {
            return;
        }
        let (open, past_close) = (base + texts.at.0, base + texts.at.1);
        self.field = field;
        self.head = memo_digest(&data[..=open]);
        self.tail = memo_digest(&data[past_close..]);
        self.head_bytes.clear();
        self.head_bytes.extend_from_slice(&data[..=open]);
        self.tail_bytes.clear();
        self.tail_bytes.extend_from_slice(&data[past_close..]);
    }

    /// Whether the memo holds this head and tail.
    #[cfg(test)]
    fn holds(&self, head: &[u8], tail: &[u8]) -> bool {
        self.field != TextField::None
            && self.head == memo_digest(head)
            && self.tail == memo_digest(tail)
            && (&self.head_bytes[..], &self.tail_bytes[..]) == (head, tail)
    }
}

struct DeltaView<'a> {
    content: Option<Cow<'a, str>>,
    reasoning_content: Option<Cow<'a, str>>,
    reasoning: Option<Cow<'a, str>>,
}

impl<'a> DeltaView<'a> {
    /// `null` or an object.
    fn scan(sc: &mut Scan<'a>, texts: &mut TextSpans) -> Option<Option<Self>> {
        if sc.null()? {
            return Some(None);
        }
        let mut d = DeltaView {
            content: None,
            reasoning_content: None,
            reasoning: None,
        };
        let mut seen = 0u8;
        sc.object(|sc, key| {
            let (bit, slot) = match key {
                b"content" => (1, &mut d.content),
                b"reasoning_content" => (2, &mut d.reasoning_content),
                b"reasoning" => (4, &mut d.reasoning),
                _ => return sc.skip(),
            };
            if seen & bit != 0 {
                return None;
            }
            seen |= bit;
            *slot = texts.read(sc)?;
            Some(())
        })?;
        Some(Some(d))
    }
}

/// What one streamed event contributed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EventEffect {
    /// Bytes of answer text added.
    pub text_bytes: usize,
    /// Bytes of reasoning text added.
    pub reasoning_bytes: usize,
    /// Tokens this event carried when the server says (SGLang's cumulative `completion_tokens`).
    pub tokens: Option<u64>,
    /// `[DONE]` was seen.
    pub done: bool,
}

impl EventEffect {
    /// Whether this event carried generated text (answer or reasoning): the events TTFT/ITL are timed on.
    pub fn carries_text(&self) -> bool {
        self.text_bytes > 0 || self.reasoning_bytes > 0
    }
}

/// Accumulates one response from its streamed events.
#[derive(Debug, Clone)]
pub struct StreamDecoder {
    api: Api,
    pub text: String,
    pub reasoning: String,
    pub usage: Usage,
    pub finish_reason: Option<String>,
    /// SGLang native: completion tokens so far (cumulative in `meta_info`).
    last_completion_tokens: u64,
    /// OpenAI-style streams: the event prefix the fast walk may skip.
    prefix: PrefixCache,
}

fn snippet(data: &[u8]) -> String {
    let s = String::from_utf8_lossy(&data[..data.len().min(200)]);
    s.into_owned()
}

fn malformed(reason: impl std::fmt::Display, data: &[u8]) -> CoreError {
    CoreError::MalformedEvent {
        reason: reason.to_string(),
        snippet: snippet(data),
    }
}

fn finish_reason_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => o.get("type").and_then(|t| t.as_str()).map(str::to_string),
        _ => None,
    }
}

impl StreamDecoder {
    pub fn new(api: Api) -> Self {
        StreamDecoder {
            api,
            text: String::new(),
            reasoning: String::new(),
            usage: Usage::default(),
            finish_reason: None,
            last_completion_tokens: 0,
            prefix: PrefixCache::default(),
        }
    }

    /// The next event is the first of a new read, unless `same_read` (the stream's last event came in the
    /// same read). Only how the text memo compares depends on it ([`TextMemo`]), not what it reads.
    pub fn new_read(&mut self, same_read: bool) {
        self.prefix.warm = same_read;
    }

    /// Reserves room for `bytes` of text (avoids regrowing the text buffer chunk by chunk).
    pub fn reserve(&mut self, bytes: usize) {
        self.text.reserve(bytes);
    }

    /// Decodes one SSE event's data.
    pub fn on_event(&mut self, data: &[u8]) -> Result<EventEffect, CoreError> {
        let trimmed = data.trim_ascii();
        if trimmed == b"[DONE]" {
            return Ok(EventEffect {
                done: true,
                ..Default::default()
            });
        }
        if trimmed.is_empty() {
            return Ok(EventEffect::default());
        }
        match self.api {
            Api::SglangGenerate => self.on_sglang(trimmed),
            Api::Completions | Api::Chat => self.on_openai(trimmed),
        }
    }

    /// [`StreamDecoder::on_event`] for an OpenAI-style event through serde only, skipping the fast walk
    /// (for the decode benchmark and tests).
    #[doc(hidden)]
    pub fn on_openai_event_serde_only(&mut self, data: &[u8]) -> Result<EventEffect, CoreError> {
        let view = OpenAiView::serde(data.trim_ascii())?;
        Ok(self.apply_openai(view))
    }

    fn on_openai(&mut self, data: &[u8]) -> Result<EventEffect, CoreError> {
        let view = match OpenAiView::scan_cached(data, &mut self.prefix) {
            Some(v) => v,
            None => OpenAiView::serde(data)?,
        };
        Ok(self.apply_openai(view))
    }

    fn apply_openai(&mut self, v: OpenAiView<'_>) -> EventEffect {
        let mut eff = EventEffect::default();
        if v.prompt_tokens.is_some() {
            self.usage.prompt_tokens = v.prompt_tokens;
        }
        if v.completion_tokens.is_some() {
            self.usage.completion_tokens = v.completion_tokens;
        }
        if let Some(t) = v.text {
            eff.text_bytes += t.len();
            self.text.push_str(&t);
        }
        if let Some(t) = v.content {
            eff.text_bytes += t.len();
            self.text.push_str(&t);
        }
        if let Some(r) = v.reasoning {
            eff.reasoning_bytes += r.len();
            self.reasoning.push_str(&r);
        }
        if let Some(f) = v.finish_reason {
            self.finish_reason = Some(f.into_owned());
        }
        eff
    }

    fn on_sglang(&mut self, data: &[u8]) -> Result<EventEffect, CoreError> {
        let w: WireSglang = serde_json::from_slice(data).map_err(|e| malformed(e, data))?;
        if let Some(err) = w.error {
            return Err(CoreError::ServerError(err.to_string()));
        }
        let mut eff = EventEffect::default();
        if let Some(t) = w.text {
            // Cumulative text: the new part is what extends the previous text.
            if t.len() > self.text.len() && t.starts_with(self.text.as_str()) {
                eff.text_bytes = t.len() - self.text.len();
                self.text.push_str(&t[self.text.len()..]);
            } else if !t.starts_with(self.text.as_str()) {
                // Not cumulative (a server streaming deltas): append.
                eff.text_bytes = t.len();
                self.text.push_str(&t);
            }
        }
        if let Some(m) = w.meta_info {
            if m.prompt_tokens.is_some() {
                self.usage.prompt_tokens = m.prompt_tokens;
            }
            if let Some(ct) = m.completion_tokens {
                eff.tokens = Some(ct.saturating_sub(self.last_completion_tokens));
                self.last_completion_tokens = ct;
                self.usage.completion_tokens = Some(ct);
            }
            if let Some(f) = m.finish_reason.as_ref().and_then(finish_reason_of) {
                self.finish_reason = Some(f);
            }
        }
        Ok(eff)
    }

    /// Decodes a whole non-streamed response body.
    pub fn on_full_body(&mut self, body: &[u8]) -> Result<(), CoreError> {
        match self.api {
            Api::SglangGenerate => {
                // A list (n > 1 / batch) or one object.
                let v: Value = serde_json::from_slice(body).map_err(|e| malformed(e, body))?;
                let first = match v {
                    Value::Array(mut a) if !a.is_empty() => a.swap_remove(0),
                    other => other,
                };
                let bytes = serde_json::to_vec(&first).map_err(|e| malformed(e, body))?;
                self.on_sglang(&bytes).map(|_| ())
            }
            _ => self.on_openai(body).map(|_| ()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backends_map_to_endpoints() {
        assert_eq!(Backend::parse("sglang").unwrap().path(), "/generate");
        assert_eq!(Backend::parse("vllm").unwrap().path(), "/v1/completions");
        assert_eq!(
            Backend::parse("sglang-oai-chat").unwrap().path(),
            "/v1/chat/completions"
        );
        assert_eq!(Backend::parse("vllm").unwrap().default_port(), 8000);
        assert_eq!(Backend::parse("lmdeploy").unwrap().default_port(), 23333);
        // sglang's table has no -chat entries: they fall to 30000.
        for chat in [
            "vllm-chat",
            "lmdeploy-chat",
            "sglang-oai-chat",
            "openai-chat",
        ] {
            assert_eq!(
                Backend::parse(chat).unwrap().default_port(),
                30000,
                "{chat}"
            );
        }
        assert!(Backend::parse("nope").is_err());
    }

    #[test]
    fn sglang_chat_backends_send_max_completion_tokens() {
        for (name, key) in [
            ("sglang-oai-chat", "max_completion_tokens"),
            ("vllm-chat", "max_completion_tokens"),
            ("lmdeploy-chat", "max_completion_tokens"),
            ("openai-chat", "max_tokens"),
            ("sglang-oai", "max_tokens"),
        ] {
            let b = Backend::parse(name).unwrap();
            let p = GenParams {
                max_tokens: Some(16),
                max_completion_tokens: b.sends_max_completion_tokens(),
                ..Default::default()
            };
            let body = request_body(b.api, "m", &Prompt::Text("hi".into()), &p);
            assert_eq!(body[key], 16, "{name}");
            let other = if key == "max_tokens" {
                "max_completion_tokens"
            } else {
                "max_tokens"
            };
            assert!(body.get(other).is_none(), "{name}");
        }
    }

    #[test]
    fn openai_body_omits_disabled_fields() {
        let p = GenParams {
            max_tokens: Some(16),
            ignore_eos: false,
            ..Default::default()
        };
        let b = request_body(Api::Completions, "m", &Prompt::Text("hi".into()), &p);
        assert!(b.get("ignore_eos").is_none());
        assert!(b.get("min_tokens").is_none());
        assert_eq!(b["max_tokens"], 16);
        assert_eq!(b["stream_options"]["include_usage"], true);
        let p2 = GenParams {
            ignore_eos: true,
            ..p
        };
        let b = request_body(Api::Chat, "m", &Prompt::Text("hi".into()), &p2);
        assert_eq!(b["ignore_eos"], true);
        assert_eq!(b["messages"][0]["content"], "hi");
    }

    #[test]
    fn sglang_body_puts_sampling_params_inside() {
        let mut extra = Map::new();
        extra.insert("top_k".into(), json!(5));
        extra.insert("lora_path".into(), json!("x"));
        let p = GenParams {
            max_tokens: Some(8),
            ignore_eos: true,
            extra,
            ..Default::default()
        };
        let b = request_body(Api::SglangGenerate, "m", &Prompt::Ids(vec![1, 2]), &p);
        assert_eq!(b["input_ids"], json!([1, 2]));
        assert_eq!(b["sampling_params"]["max_new_tokens"], 8);
        assert_eq!(b["sampling_params"]["ignore_eos"], true);
        assert_eq!(b["sampling_params"]["top_k"], 5);
        assert_eq!(b["lora_path"], "x");
    }

    #[test]
    fn decodes_chat_stream_with_reasoning_and_usage() {
        let mut d = StreamDecoder::new(Api::Chat);
        let e = d
            .on_event(br#"{"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}"#)
            .unwrap();
        assert!(!e.carries_text());
        let e = d
            .on_event(br#"{"choices":[{"delta":{"reasoning_content":"hmm"}}]}"#)
            .unwrap();
        assert!(e.carries_text());
        d.on_event(br#"{"choices":[{"delta":{"content":"4"},"finish_reason":"stop"}]}"#)
            .unwrap();
        d.on_event(br#"{"choices":[],"usage":{"prompt_tokens":7,"completion_tokens":3,"total_tokens":10}}"#)
            .unwrap();
        assert!(d.on_event(b"[DONE]").unwrap().done);
        assert_eq!(d.text, "4");
        assert_eq!(d.reasoning, "hmm");
        assert_eq!(d.finish_reason.as_deref(), Some("stop"));
        assert_eq!(d.usage.completion_tokens, Some(3));
        assert_eq!(d.usage.prompt_tokens, Some(7));
    }

    #[test]
    fn decodes_sglang_cumulative_text() {
        let mut d = StreamDecoder::new(Api::SglangGenerate);
        let e = d
            .on_event(br#"{"text":" a","meta_info":{"prompt_tokens":5,"completion_tokens":1,"finish_reason":null}}"#)
            .unwrap();
        assert_eq!((e.text_bytes, e.tokens), (2, Some(1)));
        let e = d
            .on_event(br#"{"text":" a b c","meta_info":{"completion_tokens":3,"finish_reason":{"type":"length","length":3}}}"#)
            .unwrap();
        assert_eq!((e.text_bytes, e.tokens), (4, Some(2)));
        assert_eq!(d.text, " a b c");
        assert_eq!(d.finish_reason.as_deref(), Some("length"));
        assert_eq!(d.usage.prompt_tokens, Some(5));
    }

    #[test]
    fn malformed_and_error_events_are_errors() {
        let mut d = StreamDecoder::new(Api::Completions);
        assert!(matches!(
            d.on_event(b"{not json"),
            Err(CoreError::MalformedEvent { .. })
        ));
        assert!(matches!(
            d.on_event(br#"{"error":{"message":"overloaded"}}"#),
            Err(CoreError::ServerError(_))
        ));
    }

    #[test]
    fn only_the_first_choice_counts_and_null_choices_are_empty() {
        let mut d = StreamDecoder::new(Api::Completions);
        let e = d
            .on_event(br#"{"choices":[{"text":"a"},{"text":"bb"}]}"#)
            .unwrap();
        assert_eq!(e.text_bytes, 1);
        let e = d
            .on_event(br#"{"choices":null,"usage":{"completion_tokens":1}}"#)
            .unwrap();
        assert!(!e.carries_text());
        assert_eq!(d.text, "a");
        assert_eq!(d.usage.completion_tokens, Some(1));
    }

    #[test]
    fn full_bodies() {
        let mut d = StreamDecoder::new(Api::Chat);
        d.on_full_body(br#"{"choices":[{"message":{"role":"assistant","content":"x","reasoning_content":"r"},"finish_reason":"length"}],"usage":{"prompt_tokens":2,"completion_tokens":9}}"#).unwrap();
        assert_eq!((d.text.as_str(), d.reasoning.as_str()), ("x", "r"));
        assert_eq!(d.usage.completion_tokens, Some(9));
        let mut d = StreamDecoder::new(Api::SglangGenerate);
        d.on_full_body(
            br#"{"text":"hello","meta_info":{"prompt_tokens":3,"completion_tokens":2}}"#,
        )
        .unwrap();
        assert_eq!(d.text, "hello");
        assert_eq!(d.usage.completion_tokens, Some(2));
    }

    /// Real events of vLLM, SGLang and OpenAI take the fast walk, and it reads them as serde does.
    #[test]
    fn common_events_take_the_fast_walk() {
        let events = [
            r#"{"id":"cmpl-1","object":"text_completion","created":1,"model":"m","choices":[{"index":0,"text":" the","logprobs":null,"finish_reason":null,"stop_reason":null}],"usage":null}"#,
            r#"{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":"Hi \"there\"\n","reasoning_content":null},"logprobs":null,"finish_reason":null}]}"#,
            r#"{"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"reasoning_content":"think"},"finish_reason":null}]}"#,
            r#"{"id":"c","object":"text_completion","choices":[],"usage":{"prompt_tokens":32,"total_tokens":288,"completion_tokens":256,"prompt_tokens_details":null}}"#,
            r#"{"id":"c","choices":[{"index":0,"text":"","finish_reason":"length","matched_stop":null}],"usage":{"prompt_tokens":3,"completion_tokens":1}}"#,
            r#"{"choices":[{"message":{"content":"whole answer"},"finish_reason":"stop"}]}"#,
            " {\"choices\" : [ {\"text\" : \"\\u00e9\\ud83d\\ude00\"} ] } ",
        ];
        for e in events {
            let fast = OpenAiView::scan(e.as_bytes());
            assert!(fast.is_some(), "fell back: {e}");
            assert_eq!(
                fast.unwrap(),
                OpenAiView::serde(e.as_bytes()).unwrap(),
                "{e}"
            );
        }
        // What the fast walk leaves to serde: errors, duplicates, escaped keys, wrong types.
        for e in [
            r#"{"error":{"message":"overloaded"}}"#,
            r#"{"object":"error","message":"bad"}"#,
            r#"{"choices":[{"text":"a","text":"b"}]}"#,
            r#"{"choi\u0063es":[{"text":"a"}]}"#,
            r#"{"choices":[{"text":5}]}"#,
            r#"{"choices":{"text":"a"}}"#,
            r#"{"choices":[{"text":"a"}]} x"#,
        ] {
            assert!(OpenAiView::scan(e.as_bytes()).is_none(), "{e}");
        }
    }

    /// Random events (valid, truncated, corrupted): whenever the fast walk answers, serde accepts the event
    /// and reads the same fields; and the decoder's result (fast walk + fallback) equals serde's alone.
    /// A fixed-seed xorshift64 stream for generated test events.
    fn xorshift(mut x: u64) -> impl FnMut() -> u64 {
        move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        }
    }

    #[test]
    fn fast_walk_agrees_with_serde_on_random_events() {
        let mut next = xorshift(0x5eed_u64);
        fn pick<'b>(r: u64, xs: &[&'b str]) -> &'b str {
            xs[(r % xs.len() as u64) as usize]
        }
        let strings = [
            r#""""#,
            r#""a""#,
            r#"" the""#,
            r#""q\"uote""#,
            r#""nl\n""#,
            r#""\u00e9""#,
            r#""\ud83d\ude00""#,
            "\"é漢\"",
            r#""\/""#,
            r#""bad\x""#,
            "\"ctl\u{1}\"",
        ];
        let scalars = [
            "null",
            "0",
            "12",
            "-3",
            "1.5e3",
            "true",
            "false",
            "012",
            "1.",
            "[]",
            "{}",
            "[1,{\"a\":[null]}]",
        ];
        let ws = ["", " ", "\n", "\t "];
        let mut fast_hits = 0;
        for _ in 0..20_000 {
            let val = |n: u64, kind: &str| -> String {
                match (kind, n % 10) {
                    ("str", 0..=6) => pick(n >> 8, &strings).to_string(),
                    ("int", 0..=6) => pick(
                        n >> 8,
                        &[
                            "null",
                            "0",
                            "7",
                            "256",
                            "18446744073709551615",
                            "18446744073709551616",
                        ],
                    )
                    .to_string(),
                    _ => pick(n >> 8, &scalars).to_string(),
                }
            };
            let mut delta = String::from("{");
            let dk = [
                "content",
                "reasoning_content",
                "reasoning",
                "role",
                "tool_calls",
                "content",
            ];
            for j in 0..(next() % 4) {
                if j > 0 {
                    delta.push(',');
                }
                let k = pick(next(), &dk);
                delta.push_str(&format!("\"{k}\":{}", val(next(), "str")));
            }
            delta.push('}');
            let mut choice = String::from("{");
            let ck = [
                "index",
                "text",
                "delta",
                "message",
                "finish_reason",
                "logprobs",
                "text",
            ];
            for j in 0..(next() % 5) {
                if j > 0 {
                    choice.push(',');
                }
                let k = pick(next(), &ck);
                let v = match k {
                    "delta" | "message" if !next().is_multiple_of(4) => delta.clone(),
                    "index" => val(next(), "int"),
                    _ => val(next(), "str"),
                };
                choice.push_str(&format!(
                    "\"{k}\"{}:{}{v}",
                    pick(next(), &ws),
                    pick(next(), &ws)
                ));
            }
            choice.push('}');
            let mut ev = String::from("{");
            let tk = [
                "id", "object", "created", "model", "choices", "usage", "error", "message",
                "choices",
            ];
            for j in 0..(next() % 6) {
                if j > 0 {
                    ev.push(',');
                }
                let k = pick(next(), &tk);
                let v = match k {
                    "choices" => match next() % 6 {
                        0 => "null".to_string(),
                        1 => "[]".to_string(),
                        2 => format!("[{choice},{choice}]"),
                        3 => choice.clone(),
                        _ => format!("[{choice}]"),
                    },
                    "usage" => match next() % 3 {
                        0 => "null".to_string(),
                        _ => format!(
                            "{{\"prompt_tokens\":{},\"completion_tokens\":{},\"x\":{}}}",
                            val(next(), "int"),
                            val(next(), "int"),
                            val(next(), "any")
                        ),
                    },
                    "error" => pick(
                        next(),
                        &["null", "null", "{\"message\":\"boom\"}", "\"boom\""],
                    )
                    .to_string(),
                    "object" => {
                        pick(next(), &["\"text_completion\"", "\"error\"", "null", "3"]).to_string()
                    }
                    "created" => val(next(), "int"),
                    _ => val(next(), "str"),
                };
                ev.push_str(&format!("{}\"{k}\":{v}", pick(next(), &ws)));
            }
            ev.push('}');
            let mut bytes = ev.into_bytes();
            match next() % 8 {
                0 => bytes.truncate((next() % (bytes.len() as u64 + 1)) as usize),
                1 => {
                    let i = (next() % bytes.len() as u64) as usize;
                    bytes[i] =
                        pick(next(), &["{", "}", "\"", ",", ":", "\\", "x", "\u{0}"]).as_bytes()[0];
                }
                _ => {}
            }
            let serde = OpenAiView::serde(&bytes);
            if let Some(fast) = OpenAiView::scan(&bytes) {
                fast_hits += 1;
                let s = serde.as_ref().unwrap_or_else(|e| {
                    panic!(
                        "fast walk accepted what serde rejects ({e}): {}",
                        String::from_utf8_lossy(&bytes)
                    )
                });
                assert_eq!(&fast, s, "{}", String::from_utf8_lossy(&bytes));
            }
            // The decoder end to end: the same result as serde alone.
            let mut d = StreamDecoder::new(Api::Completions);
            let got = d.on_openai(&bytes);
            match (&got, &serde) {
                (Ok(_), Ok(_)) | (Err(_), Err(_)) => {}
                _ => panic!(
                    "decoder {got:?} vs serde {serde:?}: {}",
                    String::from_utf8_lossy(&bytes)
                ),
            }
        }
        assert!(
            fast_hits > 2_000,
            "the generator exercises the fast walk: {fast_hits}"
        );
    }

    /// The memo takes an event only when its head and tail are the memo's, byte for byte: one byte changed
    /// anywhere in either (same lengths) makes the event walk.
    #[test]
    fn the_text_memo_takes_only_its_own_head_and_tail() {
        let head = r#"{"id":"cmpl-1","object":"text_completion","created":1,"model":"m","choices":[{"index":0,"text":""#;
        let tail = r#"","logprobs":null,"finish_reason":null}]}"#;
        let mut cache = PrefixCache::default();
        let ev = |h: &str, t: &str| format!("{h}word{t}");
        OpenAiView::scan_cached(ev(head, tail).as_bytes(), &mut cache).expect("walked");
        for warm in [false, true] {
            assert!(cache.memo.apply(ev(head, tail).as_bytes(), warm).is_some());
            for at in 0..head.len() - 1 {
                let mut h = head.as_bytes().to_vec();
                h[at] = if h[at] == b'1' { b'2' } else { b'1' };
                let e = [&h[..], b"word", tail.as_bytes()].concat();
                assert!(
                    cache.memo.apply(&e, warm).is_none(),
                    "head byte {at}, {warm}"
                );
            }
            for at in 1..tail.len() {
                let mut t = tail.as_bytes().to_vec();
                t[at] = if t[at] == b'1' { b'2' } else { b'1' };
                let e = [head.as_bytes(), b"word", &t[..]].concat();
                assert!(
                    cache.memo.apply(&e, warm).is_none(),
                    "tail byte {at}, {warm}"
                );
            }
        }
    }

    /// Events that differ from the memo's only in their text string are read without a walk, and read as serde
    /// reads them; any other text between the same head and tail (an unescaped quote, a control character,
    /// a bad escape or byte, a string that ends early and JSON after it) is walked, and agrees with serde too.
    #[test]
    fn the_text_memo_reads_what_serde_reads() {
        let shapes = [
            (
                Api::Completions,
                r#"{"id":"cmpl-1","object":"text_completion","created":1,"model":"m","choices":[{"index":0,"text":""#,
                r#"","logprobs":null,"finish_reason":null,"stop_reason":null}]}"#,
            ),
            (
                Api::Chat,
                r#"{"id":"c","choices":[{"index":0,"delta":{"role":null,"content":""#,
                r#"","reasoning_content":null},"finish_reason":null}],"usage":null}"#,
            ),
            (
                Api::Chat,
                r#"{"id":"c","choices":[{"index":0,"delta":{"content":null,"reasoning_content":""#,
                r#""},"finish_reason":null}]}"#,
            ),
        ];
        let texts: [&[u8]; 14] = [
            b" the",
            b"",
            br#"a\"b"#,
            br"line\nbreak\\",
            br"\u00e9\ud83d\ude00",
            b"\xc3\xa9t\xc3\xa9",
            br#"a"b"#,
            b"a\x01b",
            br"bad\x",
            br"\u12",
            b"\xff",
            br#"x","finish_reason":"stop"#,
            br#"y","text":"z"#,
            br"\",
        ];
        let mut next = xorshift(0x7e47_u64);
        for (api, head, tail) in shapes {
            let mut fast = StreamDecoder::new(api);
            let mut slow = StreamDecoder::new(api);
            let mut memo_hits = 0;
            for i in 0..2_000 {
                let k = (next() % texts.len() as u64) as usize;
                let ev = [head.as_bytes(), texts[k], tail.as_bytes()].concat();
                // Reads of one to three events: both ways of comparing.
                fast.new_read(i % 3 != 0);
                let memo_hit = fast.prefix.memo.apply(&ev, fast.prefix.warm).is_some();
                // The first six texts are valid strings: while the memo holds this shape's head and tail (an
                // invalid text may walk and be learnt too, e.g. a chat delta with a "text" key), it reads them.
                let canonical = fast
                    .prefix
                    .memo
                    .holds(head.as_bytes(), &tail.as_bytes()[1..]);
                if k < 6 {
                    assert_eq!(memo_hit, canonical, "event {i}, text {k}");
                }
                memo_hits += usize::from(memo_hit);
                let a = fast.on_event(&ev);
                let b = slow.on_openai_event_serde_only(&ev);
                let shown = String::from_utf8_lossy(&ev);
                assert_eq!(a.is_ok(), b.is_ok(), "{shown}: {a:?} vs {b:?}");
                if let (Ok(x), Ok(y)) = (&a, &b) {
                    assert_eq!(x, y, "{shown}");
                }
                assert_eq!(
                    (&fast.text, &fast.reasoning, &fast.finish_reason),
                    (&slow.text, &slow.reasoning, &slow.finish_reason),
                    "event {i}: {shown}"
                );
                assert_eq!(fast.usage, slow.usage, "{shown}");
            }
            assert!(memo_hits > 500, "{head}: {memo_hits} memo hits");
        }
        // What the memo does not take: an event with a finish reason or usage, or two text strings.
        let mut cache = PrefixCache::default();
        let learnt = |cache: &mut PrefixCache, ev: &str| {
            cache.memo = TextMemo::default();
            OpenAiView::scan_cached(ev.as_bytes(), cache).expect("walked");
            cache.memo.field
        };
        let h = r#"{"id":"x","choices":[{"index":0,"#;
        for (ev, field) in [
            (
                format!(r#"{h}"text":"a","finish_reason":null}}]}}"#),
                TextField::Text,
            ),
            (
                format!(r#"{h}"text":"a","finish_reason":"stop"}}]}}"#),
                TextField::None,
            ),
            (
                format!(r#"{h}"text":"a"}}],"usage":{{"completion_tokens":3}}}}"#),
                TextField::None,
            ),
            (
                format!(r#"{h}"delta":{{"content":"a","reasoning":"b"}}}}]}}"#),
                TextField::None,
            ),
            (
                format!(r#"{h}"delta":{{"reasoning":"b"}}}}]}}"#),
                TextField::Reasoning,
            ),
            (
                format!(r#"{h}"delta":{{"content":"a"}},"message":{{"content":"b"}}}}]}}"#),
                TextField::None,
            ),
            (format!(r#"{h}"text":null}}]}}"#), TextField::None),
        ] {
            assert_eq!(learnt(&mut cache, &ev), field, "{ev}");
        }
    }

    /// One stream's events share their prefix: the walk that skips a known prefix gives, event after event, the
    /// same decoder state as serde alone, also when the tail after the prefix is corrupt or cut.
    #[test]
    fn skipping_a_known_prefix_changes_nothing() {
        let prefixes = [
            r#"{"id":"cmpl-1","object":"text_completion","created":1,"model":"m","#,
            r#"{"id":"chat-2","object":"chat.completion.chunk","model":"m", "#,
            r#"{"usage":null,"id":"x","#,
            r#"{"object":"error","#,
        ];
        let tails = [
            r#""choices":[{"index":0,"text":" a","finish_reason":null}],"usage":null}"#,
            r#""choices":[{"index":0,"delta":{"content":"b\n"},"finish_reason":null}]}"#,
            r#""choices":[{"index":0,"text":"","finish_reason":"length"}],"usage":{"prompt_tokens":5,"completion_tokens":9}}"#,
            r#""choices":[{"index":0,"text":" c"}],"choices":[]}"#,
            r#""choices":[{"index":0,"text":5}]}"#,
            r#""choices":[{"index":0,"text":" d"}]} trailing"#,
            r#""choices":[{"index":0,"text":" e"#,
            r#""choices":null,"error":{"message":"boom"}}"#,
            r#""choices":[{"text":"\u00e9"}],"object":"again"}"#,
        ];
        let mut next = xorshift(7_u64);
        for api in [Api::Completions, Api::Chat] {
            let mut fast = StreamDecoder::new(api);
            let mut slow = StreamDecoder::new(api);
            for _ in 0..3_000 {
                let p = prefixes[(next() % prefixes.len() as u64) as usize];
                let t = tails[(next() % tails.len() as u64) as usize];
                let ev = format!("{p}{t}");
                let a = fast.on_event(ev.as_bytes());
                let b = slow.on_openai_event_serde_only(ev.as_bytes());
                assert_eq!(a.is_ok(), b.is_ok(), "{ev}: {a:?} vs {b:?}");
                if let (Ok(x), Ok(y)) = (&a, &b) {
                    assert_eq!(x, y, "{ev}");
                }
                assert_eq!(fast.text, slow.text, "{ev}");
                assert_eq!(fast.usage, slow.usage, "{ev}");
                assert_eq!(fast.finish_reason, slow.finish_reason, "{ev}");
            }
            assert!(!fast.prefix.bytes.is_empty(), "the cache was used");
        }
        // With a warm cache, valid events take the walk (no fallback) and read what serde reads.
        let mut cache = PrefixCache::default();
        for (i, t) in tails[..3].iter().cycle().take(9).enumerate() {
            let ev = format!("{}{t}", prefixes[0]);
            let hit = !cache.bytes.is_empty() && ev.as_bytes().starts_with(&cache.bytes);
            assert_eq!(hit, i > 0, "event {i}");
            let fast = OpenAiView::scan_cached(ev.as_bytes(), &mut cache);
            assert_eq!(
                fast,
                Some(OpenAiView::serde(ev.as_bytes()).unwrap()),
                "{ev}"
            );
        }
        assert_eq!(cache.bytes, prefixes[0].as_bytes());
    }
}
