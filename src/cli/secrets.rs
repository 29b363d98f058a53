//! Keeping secrets out of results, logs and reports.

use serde_json::Value;

/// Keys whose values are never written (matched case-insensitively as substrings).
const SECRET_KEYS: &[&str] = &[
    "api_key",
    "apikey",
    "api-key",
    "token",
    "secret",
    "password",
    "authorization",
];

fn is_secret_key(k: &str) -> bool {
    let k = k.to_ascii_lowercase();
    // Token *counts* are not secrets.
    if k.ends_with("_tokens")
        || k.contains("tokens_")
        || k.starts_with("max_")
        || k.contains("tokenizer")
    {
        return false;
    }
    SECRET_KEYS.iter().any(|s| k.contains(s))
}

/// Replaces every secret-looking value in `v` (recursively) with "<redacted>" (null values stay null).
pub fn redact_secrets(v: Value) -> Value {
    match v {
        Value::Object(o) => Value::Object(
            o.into_iter()
                .map(|(k, v)| {
                    if is_secret_key(&k) && !v.is_null() && !v.is_number() && !v.is_boolean() {
                        (k, Value::String("<redacted>".into()))
                    } else {
                        (k, redact_secrets(v))
                    }
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(redact_secrets).collect()),
        other => other,
    }
}

/// The command line with the value of `--api-key` (and `Authorization` headers) hidden.
pub fn command_line_redacted() -> String {
    redact_args(std::env::args())
}

pub fn redact_args(args: impl IntoIterator<Item = String>) -> String {
    let mut out = Vec::new();
    let mut hide_next = false;
    for a in args {
        if hide_next {
            out.push("<redacted>".to_string());
            hide_next = false;
            continue;
        }
        let lower = a.to_ascii_lowercase();
        if lower == "--api-key" {
            hide_next = true;
            out.push(a);
        } else if lower.starts_with("--api-key=") {
            out.push("--api-key=<redacted>".into());
        } else if lower.starts_with("authorization:") {
            out.push("Authorization:<redacted>".into());
        } else {
            out.push(a);
        }
    }
    out.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn server_info_secrets_are_redacted() {
        let v = json!({"api_key": "sk-123", "admin_api_key": null, "max_total_tokens": 5, "tokenizer_path": "x",
                       "nested": [{"hf_token": "abc"}], "completion_tokens": 3});
        let r = redact_secrets(v);
        assert_eq!(r["api_key"], "<redacted>");
        assert_eq!(r["admin_api_key"], Value::Null);
        assert_eq!(r["max_total_tokens"], 5);
        assert_eq!(r["tokenizer_path"], "x");
        assert_eq!(r["nested"][0]["hf_token"], "<redacted>");
        assert_eq!(r["completion_tokens"], 3);
    }

    #[test]
    fn api_key_never_in_command_line() {
        let s = redact_args(
            [
                "servebench",
                "bench",
                "--api-key",
                "sk-secret",
                "--header",
                "Authorization: Bearer x",
                "--api-key=sk-2",
            ]
            .map(String::from),
        );
        assert!(
            !s.contains("sk-secret") && !s.contains("sk-2") && !s.contains("Bearer x"),
            "{s}"
        );
    }
}
