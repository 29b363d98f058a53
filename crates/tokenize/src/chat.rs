//! Chat templates rendered as transformers renders them (`apply_chat_template`): jinja2 with
//! `trim_blocks` and `lstrip_blocks`, the `loopcontrols` extension, Python string methods (pycompat),
//! a Python-style `tojson` (no HTML escaping, `", "` and `": "` separators, non-ASCII kept),
//! `raise_exception`, `strftime_now`, and `{% generation %}` markers removed.

use crate::TokenizeError;
use minijinja::{Environment, Error, ErrorKind, Value};
use serde::Serialize;

/// A compiled chat template.
pub struct ChatTemplate {
    env: Environment<'static>,
    bos_token: Option<String>,
    eos_token: Option<String>,
}

/// The `{% generation %}` / `{% endgeneration %}` markers (assistant-mask tags) removed, as transformers
/// does when not asked for assistant masks.
fn strip_generation_tags(src: &str) -> String {
    let mut out = String::with_capacity(src.len());
    let mut rest = src;
    while let Some(start) = rest.find("{%") {
        let Some(end_rel) = rest[start..].find("%}") else {
            break;
        };
        let tag = &rest[start + 2..start + end_rel];
        let word = tag.trim_matches(|c: char| c == '-' || c == '+' || c.is_whitespace());
        out.push_str(&rest[..start]);
        if word != "generation" && word != "endgeneration" {
            out.push_str(&rest[start..start + end_rel + 2]);
        }
        rest = &rest[start + end_rel + 2..];
    }
    out.push_str(rest);
    out
}

/// Python's `json.dumps(value, ensure_ascii=False)` with `indent`.
fn py_json(v: &serde_json::Value, indent: Option<usize>, level: usize, out: &mut String) {
    use serde_json::Value as J;
    let nl = |out: &mut String, lvl: usize| {
        if let Some(n) = indent {
            out.push('\n');
            out.push_str(&" ".repeat(n * lvl));
        }
    };
    let sep = if indent.is_some() { "," } else { ", " };
    match v {
        J::Array(a) if a.is_empty() => out.push_str("[]"),
        J::Object(o) if o.is_empty() => out.push_str("{}"),
        J::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push_str(sep);
                }
                nl(out, level + 1);
                py_json(x, indent, level + 1, out);
            }
            nl(out, level);
            out.push(']');
        }
        J::Object(o) => {
            out.push('{');
            for (i, (k, x)) in o.iter().enumerate() {
                if i > 0 {
                    out.push_str(sep);
                }
                nl(out, level + 1);
                out.push_str(&serde_json::to_string(k).unwrap_or_default());
                out.push_str(": ");
                py_json(x, indent, level + 1, out);
            }
            nl(out, level);
            out.push('}');
        }
        other => out.push_str(&serde_json::to_string(other).unwrap_or_default()),
    }
}

fn tojson(value: Value, kwargs: minijinja::value::Kwargs) -> Result<Value, Error> {
    let indent: Option<usize> = kwargs.get("indent")?;
    let json = serde_json::to_value(&value)
        .map_err(|e| Error::new(ErrorKind::InvalidOperation, e.to_string()))?;
    let mut out = String::new();
    py_json(&json, indent, 0, &mut out);
    Ok(Value::from_safe_string(out))
}

impl ChatTemplate {
    pub fn new(
        source: &str,
        bos_token: Option<String>,
        eos_token: Option<String>,
    ) -> Result<ChatTemplate, TokenizeError> {
        let mut env = Environment::new();
        let syntax = minijinja::syntax::SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .build()
            .map_err(|e| TokenizeError::Template(e.to_string()))?;
        env.set_syntax(syntax);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_filter("tojson", tojson);
        env.add_function("raise_exception", |msg: String| -> Result<Value, Error> {
            Err(Error::new(ErrorKind::InvalidOperation, msg))
        });
        env.add_function("strftime_now", |fmt: String| -> String {
            chrono::Local::now().format(&fmt).to_string()
        });
        env.add_template_owned("chat", strip_generation_tags(source))
            .map_err(|e| TokenizeError::Template(e.to_string()))?;
        Ok(ChatTemplate {
            env,
            bos_token,
            eos_token,
        })
    }

    /// Renders `messages` (any serializable list of {role, content, ...}).
    pub fn render<M: Serialize>(
        &self,
        messages: &[M],
        add_generation_prompt: bool,
    ) -> Result<String, TokenizeError> {
        let tmpl = self
            .env
            .get_template("chat")
            .map_err(|e| TokenizeError::Template(e.to_string()))?;
        tmpl.render(minijinja::context! {
            messages => Value::from(minijinja::value::Serde(messages)),
            add_generation_prompt => add_generation_prompt,
            bos_token => self.bos_token.clone().unwrap_or_default(),
            eos_token => self.eos_token.clone().unwrap_or_default(),
            tools => Value::UNDEFINED,
        })
        .map_err(|e| TokenizeError::Template(format!("{e:#}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn renders_chatml_with_trim_blocks() {
        let src = "{% for m in messages %}\n<|im_start|>{{ m['role'] }}\n{{ m['content'] | trim }}<|im_end|>\n{% endfor %}\n{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";
        let t = ChatTemplate::new(src, None, None).unwrap();
        let out = t
            .render(&[json!({"role": "user", "content": " hi "})], true)
            .unwrap();
        assert_eq!(
            out,
            "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
        );
    }

    #[test]
    fn python_methods_tojson_and_bos() {
        let src = "{{ bos_token }}{% for m in messages %}{% if m.content.startswith('x') %}{{ m.content.upper() }}{% endif %}{{ m | tojson }}{% endfor %}";
        let t = ChatTemplate::new(src, Some("<s>".into()), None).unwrap();
        let out = t
            .render(&[json!({"role": "user", "content": "xé<"})], false)
            .unwrap();
        assert_eq!(out, "<s>XÉ<{\"role\": \"user\", \"content\": \"xé<\"}");
    }

    #[test]
    fn raise_exception_is_an_error_and_generation_tags_vanish() {
        let t = ChatTemplate::new("{{ raise_exception('bad role') }}", None, None).unwrap();
        let e = t.render(&[json!({"role": "x", "content": ""})], false);
        assert!(e.unwrap_err().to_string().contains("bad role"));
        let t = ChatTemplate::new("a{% generation %}b{%- endgeneration %}c", None, None).unwrap();
        assert_eq!(t.render::<serde_json::Value>(&[], false).unwrap(), "abc");
    }

    #[test]
    fn tojson_indent_like_python() {
        let t = ChatTemplate::new("{{ messages[0] | tojson(indent=2) }}", None, None).unwrap();
        let out = t.render(&[json!({"a": [1, 2]})], false).unwrap();
        assert_eq!(out, "{\n  \"a\": [\n    1,\n    2\n  ]\n}");
    }
}
