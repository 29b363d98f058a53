//! Keeping secrets out of results, logs, plans and reports: one redaction rule for every output.
//!
//! What counts as a secret:
//! - the value of a flag that names a credential, in any spelling: `--api-key X`, `--api_key=X`, `--API-KEY X`,
//!   argparse/clap abbreviations of `--api-key` (`--api-ke X`, `--api X`), `--hf-token`, `--password`, …;
//! - the value of a header that carries a credential (`Authorization`, `Proxy-Authorization`, `X-Api-Key`,
//!   `Api-Key`, `Cookie`, any name with key/token/secret/auth in it), after `--header`/`-H` or on its own;
//! - `Bearer …` tokens;
//! - credentials in URLs (`http://user:key@host`, `?api_key=…`);
//! - environment assignments of such names (`OPENAI_API_KEY=sk-… python …`);
//! - strings shaped like well-known keys (`sk-…`, `hf_…`).
//!
//! Every function here returns text with each secret replaced by [`REDACTED`]; [`Redactor`] also remembers what it
//! removed, so the same values can be scrubbed from free text (a server's log, a plan copied verbatim).

use serde_json::Value;

/// What a secret is replaced with.
pub const REDACTED: &str = "<redacted>";

/// True for a key name (JSON key, environment variable, header, flag or query parameter, any case, `-` or `_`)
/// that names a credential. Token *counts*, tokenizers and token ids are not secrets.
pub fn is_secret_name(name: &str) -> bool {
    let k = name
        .trim_start_matches('-')
        .to_ascii_lowercase()
        .replace('-', "_");
    if k.is_empty()
        || k.ends_with("tokens")
        || k.contains("tokens_")
        || k.starts_with("max_")
        || k.contains("tokeniz")
        || k.ends_with("_id")
        || k.ends_with("_ids")
        || k.contains("token_method")
        || k.contains("answer_key")
    {
        return false;
    }
    const WORDS: &[&str] = &[
        "api_key",
        "apikey",
        "token",
        "secret",
        "password",
        "passwd",
        "authorization",
        "credential",
        "cookie",
        "bearer",
        "private_key",
        "access_key",
    ];
    WORDS.iter().any(|w| k.contains(w))
        || k == "auth"
        || k.starts_with("auth_")
        || k.ends_with("_auth")
        || k == "key"
}

/// True for a command-line flag whose value is a credential, including unique-prefix abbreviations of
/// `--api-key` as argparse and clap accept them (`--api`, `--api-k`, `--api-ke`).
pub fn is_secret_flag(flag: &str) -> bool {
    if !flag.starts_with('-') {
        return false;
    }
    let name = flag
        .trim_start_matches('-')
        .to_ascii_lowercase()
        .replace('_', "-");
    (name.len() >= 3 && "api-key".starts_with(&name)) || is_secret_name(&name)
}

/// True for `--header`, `-H` and their abbreviations (`--head`, `--heade`, `--headers`).
fn is_header_flag(flag: &str) -> bool {
    let lower = flag.to_ascii_lowercase();
    lower == "-h"
        || lower == "--headers"
        || (lower.starts_with("--") && lower.len() >= 6 && "--header".starts_with(&lower))
}

/// Strings shaped like well-known API keys: OpenAI-style `sk-…`, Hugging Face `hf_…`, GitHub `ghp_…`.
fn looks_like_key(word: &str) -> bool {
    let body_ok = |b: &str, min: usize| {
        b.len() >= min
            && b.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
    };
    ["sk-", "hf_", "ghp_", "gho_", "github_pat_", "xoxb-"]
        .iter()
        .any(|p| word.strip_prefix(p).is_some_and(|b| body_ok(b, 8)))
}

/// A header, variable or parameter name: letters, digits, `-`, `_`, `.`.
fn is_ident(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_' || c == b'.')
}

/// The redaction engine; it remembers every secret value it removed.
#[derive(Debug, Default, Clone)]
pub struct Redactor {
    found: Vec<String>,
}

impl Redactor {
    pub fn new() -> Redactor {
        Redactor::default()
    }

    /// Every secret value removed so far (longest first, no duplicates, none shorter than 4 characters).
    pub fn found(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .found
            .iter()
            .filter(|s| s.len() >= 4 && s.as_str() != REDACTED)
            .cloned()
            .collect();
        v.sort_by(|a, b| b.len().cmp(&a.len()).then(a.cmp(b)));
        v.dedup();
        v
    }

    /// Also treats `secret` as a secret (e.g. the API key in use), so that [`Redactor::scrub`] removes it.
    pub fn add_secret(&mut self, secret: &str) {
        if !secret.is_empty() {
            self.found.push(secret.to_string());
        }
    }

    fn hide(&mut self, secret: &str) -> String {
        if !secret.is_empty() && secret != REDACTED {
            self.found.push(secret.to_string());
        }
        REDACTED.to_string()
    }

    /// An argument vector with every secret replaced (one output element per input element).
    pub fn argv<I, S>(&mut self, args: I) -> Vec<String>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut out = Vec::new();
        let mut hide_next = false;
        let mut header_next = false;
        for a in args {
            let a = a.as_ref();
            // A boolean flag (`--allow-credentials`) is followed by another flag, not a value.
            if (hide_next || header_next) && a.starts_with("--") && a.len() > 2 {
                hide_next = false;
                header_next = false;
            }
            if hide_next {
                hide_next = false;
                out.push(self.hide(a));
                continue;
            }
            if header_next {
                header_next = false;
                out.push(self.header(a));
                continue;
            }
            if a.starts_with('-') && a.len() > 1 && !a.starts_with("---") {
                let (name, value) = match a.split_once('=') {
                    Some((n, v)) => (n, Some(v)),
                    None => (a, None),
                };
                if is_header_flag(name) {
                    match value {
                        Some(v) => out.push(format!("{name}={}", self.header(v))),
                        None => {
                            header_next = true;
                            out.push(a.to_string());
                        }
                    }
                    continue;
                }
                if is_secret_flag(name) {
                    match value {
                        Some(v) => {
                            let h = self.hide(v);
                            out.push(format!("{name}={h}"));
                        }
                        None => {
                            hide_next = true;
                            out.push(a.to_string());
                        }
                    }
                    continue;
                }
            }
            out.push(self.value(a));
        }
        out
    }

    /// A header `Name: value` with its value hidden when the name carries a credential.
    fn header(&mut self, h: &str) -> String {
        match h.split_once(':') {
            Some((name, value))
                if is_secret_name(name.trim()) && !name.contains(char::is_whitespace) =>
            {
                let v = value.trim();
                // "Bearer TOKEN", "Basic B64": the token alone is the secret too.
                if let Some((_, token)) = v.split_once(' ') {
                    self.hide(token.trim());
                }
                let h2 = self.hide(v);
                format!("{name}: {h2}")
            }
            _ => self.value(h),
        }
    }

    /// One value that is not known to be a secret: credentials inside it (URLs, headers, assignments, Bearer
    /// tokens, key-shaped strings) are hidden.
    pub fn value(&mut self, s: &str) -> String {
        let s = self.urls(s);
        // A header or assignment with a secret name.
        if let Some((name, _)) = s.split_once(':') {
            if is_ident(name) && is_secret_name(name) {
                return self.header(&s);
            }
        }
        if let Some((name, value)) = s.split_once('=') {
            if is_ident(name) && is_secret_name(name) && !value.is_empty() {
                let h = self.hide(value);
                return format!("{name}={h}");
            }
        }
        // Word by word: Bearer tokens and key-shaped strings.
        let mut out = String::with_capacity(s.len());
        let mut after_bearer = false;
        for (i, word) in s.split(' ').enumerate() {
            if i > 0 {
                out.push(' ');
            }
            if after_bearer && !word.is_empty() {
                after_bearer = false;
                let h = self.hide(word);
                out.push_str(&h);
            } else if looks_like_key(word.trim_matches(|c| c == '"' || c == '\'')) {
                let h = self.hide(word.trim_matches(|c| c == '"' || c == '\''));
                out.push_str(&h);
            } else {
                after_bearer = word.eq_ignore_ascii_case("bearer");
                out.push_str(word);
            }
        }
        out
    }

    /// Credentials in every URL of `s`: the user-info part (`user:key@`) and secret query parameters.
    fn urls(&mut self, s: &str) -> String {
        let mut out = String::with_capacity(s.len());
        let mut rest = s;
        while let Some(i) = rest.find("://") {
            let (head, tail) = rest.split_at(i + 3);
            out.push_str(head);
            let end = tail
                .find(|c: char| c.is_whitespace() || c == '"' || c == '\'' || c == ',')
                .unwrap_or(tail.len());
            let (url, after) = tail.split_at(end);
            out.push_str(&self.one_url(url));
            rest = after;
        }
        out.push_str(rest);
        out
    }

    fn one_url(&mut self, url: &str) -> String {
        let auth_end = url.find(['/', '?', '#']).unwrap_or(url.len());
        let (authority, path) = url.split_at(auth_end);
        let authority = match authority.rfind('@') {
            Some(at) => {
                let h = self.hide(&authority[..at]);
                format!("{h}@{}", &authority[at + 1..])
            }
            None => authority.to_string(),
        };
        let path = match path.split_once('?') {
            Some((p, q)) => {
                let q: Vec<String> = q
                    .split('&')
                    .map(|kv| match kv.split_once('=') {
                        Some((k, v)) if is_secret_name(k) && !v.is_empty() => {
                            let h = self.hide(v);
                            format!("{k}={h}")
                        }
                        _ => kv.to_string(),
                    })
                    .collect();
                format!("{p}?{}", q.join("&"))
            }
            None => path.to_string(),
        };
        authority + &path
    }

    /// A command written as one string (a shell command, a log line): split into shell words (quotes kept), each
    /// redacted as an argument.
    pub fn command(&mut self, s: &str) -> String {
        let words = shell_word_spans(s);
        let texts: Vec<&str> = words.iter().map(|w| w.text.as_str()).collect();
        let red = self.argv(&texts);
        let mut out = String::with_capacity(s.len());
        let mut pos = 0;
        for (w, r) in words.iter().zip(&red) {
            out.push_str(&s[pos..w.start]);
            if *r == w.text {
                out.push_str(&s[w.start..w.end]);
            } else if let Some(q) = w.quote {
                out.push(q);
                out.push_str(r);
                out.push(q);
            } else {
                out.push_str(r);
            }
            pos = w.end;
        }
        out.push_str(&s[pos..]);
        out
    }

    /// Free text: every secret found so far (and key-shaped words) replaced.
    pub fn scrub(&self, text: &str) -> String {
        let mut out = text.to_string();
        for secret in self.found() {
            if out.contains(&secret) {
                out = out.replace(&secret, REDACTED);
            }
        }
        out
    }

    /// A JSON value: values under secret-named keys, and credentials inside strings, hidden (recursively; null,
    /// numbers and booleans stay).
    pub fn json(&mut self, v: Value) -> Value {
        match v {
            Value::Object(o) => Value::Object(
                o.into_iter()
                    .map(|(k, v)| {
                        if is_secret_name(&k) {
                            (k, self.every_string(v))
                        } else {
                            (k, self.json(v))
                        }
                    })
                    .collect(),
            ),
            Value::Array(a) => Value::Array(a.into_iter().map(|x| self.json(x)).collect()),
            Value::String(s) => Value::String(self.command(&s)),
            other => other,
        }
    }

    /// Every string in `v` hidden (numbers, booleans and null kept: `"bucket_time_to_first_token": [0.1, …]` is
    /// not a secret).
    fn every_string(&mut self, v: Value) -> Value {
        match v {
            Value::String(s) => Value::String(self.hide(&s)),
            Value::Array(a) => Value::Array(a.into_iter().map(|x| self.every_string(x)).collect()),
            Value::Object(o) => Value::Object(
                o.into_iter()
                    .map(|(k, x)| (k, self.every_string(x)))
                    .collect(),
            ),
            other => other,
        }
    }

    /// Walks a TOML value as [`Redactor::json`] does a JSON one; arrays of strings are read as argument vectors.
    fn toml(&mut self, v: &toml::Value, key: Option<&str>) -> toml::Value {
        use toml::Value as T;
        match v {
            T::String(s) if key.is_some_and(is_secret_name) => T::String(self.hide(s)),
            T::String(s) => T::String(self.command(s)),
            T::Array(a) if a.iter().all(|x| x.is_str()) => T::Array(
                self.argv(a.iter().filter_map(|x| x.as_str()))
                    .into_iter()
                    .map(T::String)
                    .collect(),
            ),
            T::Array(a) => T::Array(a.iter().map(|x| self.toml(x, None)).collect()),
            T::Table(t) => T::Table(
                t.iter()
                    .map(|(k, x)| (k.clone(), self.toml(x, Some(k))))
                    .collect(),
            ),
            other => other.clone(),
        }
    }

    /// A plan's TOML text with every secret in it hidden (`[server] command`, `[server.env]`, `[eval] args`,
    /// URLs, …), comments and layout kept. Text that is not valid TOML is scrubbed word by word.
    pub fn plan_text(&mut self, text: &str) -> String {
        let Ok(doc) = text.parse::<toml::Table>() else {
            let c = self.command(text);
            return self.scrub(&c);
        };
        let redacted = self.toml(&toml::Value::Table(doc), None);
        let out = self.scrub(text);
        // Every secret is gone when the text, read again, redacts to the same document.
        let again = out
            .parse::<toml::Table>()
            .ok()
            .map(|t| Redactor::new().toml(&toml::Value::Table(t), None));
        if again.as_ref() == Some(&redacted) {
            out
        } else {
            toml::to_string(&redacted).unwrap_or_else(|_| REDACTED.to_string())
        }
    }
}

/// One shell word: its text without quotes, its byte span in the line, and the quote that wrapped it whole.
#[derive(Debug, Clone, PartialEq)]
pub struct ShellWord {
    pub text: String,
    pub start: usize,
    pub end: usize,
    quote: Option<char>,
}

/// Splits a command line into words as a POSIX shell does for simple commands (whitespace, single quotes, double
/// quotes, backslash escapes), without expanding anything.
pub fn shell_word_spans(s: &str) -> Vec<ShellWord> {
    let mut words = Vec::new();
    let mut chars = s.char_indices().peekable();
    while let Some(&(start, c)) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        let mut text = String::new();
        let mut end = start;
        let mut quotes = Vec::new();
        while let Some(&(i, c)) = chars.peek() {
            if c.is_whitespace() {
                break;
            }
            chars.next();
            end = i + c.len_utf8();
            match c {
                '\'' | '"' => {
                    quotes.push(c);
                    for (j, d) in chars.by_ref() {
                        end = j + d.len_utf8();
                        if d == c {
                            break;
                        }
                        text.push(d);
                    }
                }
                '\\' => {
                    if let Some((j, d)) = chars.next() {
                        end = j + d.len_utf8();
                        text.push(d);
                    }
                }
                _ => text.push(c),
            }
        }
        let whole = s[start..end].chars().next();
        let quote = match (quotes.as_slice(), whole) {
            ([q], Some(f)) if f == *q && s[start..end].ends_with(*q) => Some(*q),
            _ => None,
        };
        words.push(ShellWord {
            text,
            start,
            end,
            quote,
        });
    }
    words
}

/// Replaces every secret-looking value in `v` (recursively) with "<redacted>" (null values stay null).
pub fn redact_secrets(v: Value) -> Value {
    Redactor::new().json(v)
}

/// This process's command line with every secret hidden.
pub fn command_line_redacted() -> String {
    redact_args(std::env::args())
}

/// An argument vector as one line, every secret hidden.
pub fn redact_args(args: impl IntoIterator<Item = String>) -> String {
    Redactor::new().argv(args).join(" ")
}

/// A URL with its credentials hidden (`http://user:key@host/?api_key=k` → `http://<redacted>@host/?api_key=<redacted>`).
pub fn redact_url(url: &str) -> String {
    Redactor::new().urls(url)
}

/// A command line written as one string, every secret hidden.
pub fn redact_command(s: &str) -> String {
    Redactor::new().command(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn server_info_secrets_are_redacted() {
        let v = json!({"api_key": "sk-123", "admin_api_key": null, "max_total_tokens": 5, "tokenizer_path": "x",
                       "nested": [{"hf_token": "abc"}], "completion_tokens": 3, "eos_token_ids": [1, 2],
                       "prompt_token_method": "chat", "url": "http://u:pw@h:1/x",
                       "bucket_time_to_first_token": [0.1, 0.2], "credentials": {"a": "s3cret", "n": 2}});
        let r = redact_secrets(v);
        assert_eq!(r["api_key"], "<redacted>");
        assert_eq!(r["admin_api_key"], Value::Null);
        assert_eq!(r["max_total_tokens"], 5);
        assert_eq!(r["tokenizer_path"], "x");
        assert_eq!(r["nested"][0]["hf_token"], "<redacted>");
        assert_eq!(r["completion_tokens"], 3);
        assert_eq!(r["eos_token_ids"], json!([1, 2]));
        assert_eq!(r["prompt_token_method"], "chat");
        assert_eq!(r["url"], "http://<redacted>@h:1/x");
        assert_eq!(r["bucket_time_to_first_token"], json!([0.1, 0.2]));
        assert_eq!(r["credentials"], json!({"a": "<redacted>", "n": 2}));
    }

    #[test]
    fn api_key_never_in_command_line() {
        let argv = [
            "servebench",
            "bench",
            "--api-key",
            "sk-secret1",
            "--header",
            "Authorization: Bearer tok2",
            "--api-key=sk-2",
            "--api-ke",
            "k3abc",
            "--API_KEY",
            "k4abc",
            "--api",
            "k5abc",
            "-H",
            "X-Api-Key: k6abc",
            "--header=Authorization: Bearer k7abc",
            "--heade",
            "api-key: k8abc",
            "--base-url",
            "http://user:k9abc@127.0.0.1:1/v1?api_key=k10abc&x=1",
            "--hf-token=k11abc",
            "Bearer k12abc",
            "OPENAI_API_KEY=k13abc",
            "sk-planted0123456789",
            "--tokenizer",
            "/models/tok",
            "--max-tokens",
            "20480",
        ]
        .map(String::from);
        let s = redact_args(argv);
        for k in [
            "secret1", "tok2", "sk-2", "k3abc", "k4abc", "k5abc", "k6abc", "k7abc", "k8abc",
            "k9abc", "k10abc", "k11abc", "k12abc", "k13abc", "planted",
        ] {
            assert!(!s.contains(k), "{k} in {s}");
        }
        assert!(
            s.contains("--tokenizer /models/tok --max-tokens 20480"),
            "{s}"
        );
        assert!(
            s.contains("http://<redacted>@127.0.0.1:1/v1?api_key=<redacted>&x=1"),
            "{s}"
        );
        assert!(s.contains("X-Api-Key: <redacted>"), "{s}");
        assert!(s.contains("--api-ke <redacted>"), "{s}");
        let s = redact_args(
            ["vllm", "serve", "--allow-credentials", "--port", "8000"].map(String::from),
        );
        assert_eq!(s, "vllm serve --allow-credentials --port 8000");
    }

    #[test]
    fn commands_keep_their_quoting_and_lose_their_keys() {
        let c = r#"OPENAI_API_KEY=sk-aaaaaaaaaaaa python3 -m sglang.launch_server --api-key 'my key' -H "Authorization: Bearer zzzz" --port 30000"#;
        let mut r = Redactor::new();
        let out = r.command(c);
        assert_eq!(
            out,
            r#"OPENAI_API_KEY=<redacted> python3 -m sglang.launch_server --api-key '<redacted>' -H "Authorization: <redacted>" --port 30000"#
        );
        assert_eq!(
            r.scrub("log: key is my key, token zzzz"),
            "log: key is <redacted>, token <redacted>"
        );
        let w = shell_word_spans(r#"a "b c" d\ e 'f'g"#);
        let t: Vec<&str> = w.iter().map(|w| w.text.as_str()).collect();
        assert_eq!(t, ["a", "b c", "d e", "fg"]);
    }

    #[test]
    fn plans_keep_comments_and_lose_keys() {
        let plan = r#"# my plan
output_dir = "out"
[server]
command = "serve --api-key sk-PLANTEDPLANTED --port 1"   # launch
env = { HF_TOKEN = "hf_tokentokentoken", CUDA_VISIBLE_DEVICES = "0" }
[target]
base_url = "http://me:pw1234@127.0.0.1:1"
[eval]
args = ["--datasets", "math500", "--api-key", "evalkey99"]
"#;
        let out = Redactor::new().plan_text(plan);
        for k in ["PLANTEDPLANTED", "tokentoken", "pw1234", "evalkey99"] {
            assert!(!out.contains(k), "{k} in {out}");
        }
        assert!(
            out.starts_with("# my plan\n") && out.contains("# launch"),
            "{out}"
        );
        assert!(out.contains("CUDA_VISIBLE_DEVICES = \"0\""), "{out}");
        assert!(out.parse::<toml::Table>().is_ok());
    }

    #[test]
    fn flag_spellings() {
        for f in [
            "--api-key",
            "--api_key",
            "--API-KEY",
            "--api-ke",
            "--api",
            "--openai-api-key",
            "--hf-token",
            "--password",
            "--admin-api-key",
        ] {
            assert!(is_secret_flag(f), "{f}");
        }
        for f in [
            "--ap",
            "--tokenizer",
            "--max-tokens",
            "--model",
            "--answer-key",
            "--output-file",
            "api-key",
        ] {
            assert!(!is_secret_flag(f), "{f}");
        }
    }
}
