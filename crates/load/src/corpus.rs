//! Real text to cut prompts from: ShareGPT conversations when given, else a built-in corpus
//! (see `assets/README.md`).

use crate::LoadError;
use serde_json::Value;
use std::path::Path;

/// The built-in corpus (ShareGPT human turns, ~160 KB).
pub const BUILTIN_CORPUS: &str = include_str!("../assets/corpus.txt");

/// The first two turns of one conversation object, as sglang reads them: the list under `conversations` (else
/// `conversation`), each turn's text under `value` (or, with `content_first`, `content` then `value`, as
/// sglang's `custom` JSONL). `None` when the conversation has fewer than two turns.
pub fn first_two_turns(conv: &Value, content_first: bool) -> Option<(String, String)> {
    let turns = conv
        .get("conversations")
        .or_else(|| conv.get("conversation"))?
        .as_array()?;
    if turns.len() < 2 {
        return None;
    }
    let text = |t: &Value| -> String {
        let v = if content_first {
            t.get("content").or_else(|| t.get("value"))
        } else {
            t.get("value")
        };
        v.and_then(Value::as_str).unwrap_or_default().to_string()
    };
    Some((text(&turns[0]), text(&turns[1])))
}

/// (prompt, completion) pairs: the first two turns of each conversation with at least two turns, in file order.
pub fn load_sharegpt(path: &Path) -> Result<Vec<(String, String)>, LoadError> {
    let err = |message: String| LoadError::Dataset {
        path: path.display().to_string(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| {
        err(format!(
            "cannot read: {e}. Pass --dataset-path with a ShareGPT JSON file (ShareGPT_V3_unfiltered_cleaned_split.json layout)"
        ))
    })?;
    let convs: Vec<Value> = serde_json::from_str(&text).map_err(|e| {
        err(format!(
            "not a ShareGPT file (a JSON list of {{\"conversations\": [{{\"from\", \"value\"}}]}}): {e}"
        ))
    })?;
    Ok(convs
        .iter()
        .filter_map(|c| first_two_turns(c, false))
        .collect())
}

/// Corpus text for random prompts: ShareGPT prompts (in file order) up to about `max_bytes`, or the built-in one.
pub fn corpus_text(sharegpt: Option<&Path>, max_bytes: usize) -> Result<String, LoadError> {
    let Some(path) = sharegpt else {
        return Ok(BUILTIN_CORPUS.to_string());
    };
    let pairs = load_sharegpt(path)?;
    let mut out = String::new();
    for (p, _) in pairs {
        let p = p.trim();
        if p.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push_str("\n\n");
        }
        out.push_str(p);
        if out.len() >= max_bytes {
            break;
        }
    }
    if out.trim().is_empty() {
        return Err(LoadError::Dataset {
            path: path.display().to_string(),
            message: "holds no conversation text".into(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn both_conversation_keys_and_turn_keys() {
        let a = json!({"conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}]});
        assert_eq!(first_two_turns(&a, false), Some(("q".into(), "a".into())));
        let b = json!({"conversation": [{"value": "q"}, {"value": "a"}, {"value": "z"}]});
        assert_eq!(first_two_turns(&b, false), Some(("q".into(), "a".into())));
        // `conversations` wins even when it is too short (sglang's dict.get with a default).
        let c = json!({"conversations": [{"value": "q"}], "conversation": [{"value": "x"}, {"value": "y"}]});
        assert_eq!(first_two_turns(&c, false), None);
        let d = json!({"conversations": [{"role": "user", "content": "q"}, {"role": "assistant", "value": "a"}]});
        assert_eq!(first_two_turns(&d, true), Some(("q".into(), "a".into())));
        assert_eq!(first_two_turns(&d, false), Some(("".into(), "a".into())));
        assert_eq!(first_two_turns(&json!({"prompt": "p"}), true), None);
    }
}
