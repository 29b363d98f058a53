//! Real text to cut prompts from: ShareGPT conversations when given, else a built-in corpus
//! (see `assets/README.md`).

use crate::LoadError;
use serde::Deserialize;
use std::path::Path;

/// The built-in corpus (ShareGPT human turns, ~160 KB).
pub const BUILTIN_CORPUS: &str = include_str!("../assets/corpus.txt");

#[derive(Deserialize)]
struct Turn {
    #[serde(default)]
    from: String,
    #[serde(default)]
    value: String,
}

#[derive(Deserialize)]
struct Conversation {
    #[serde(default)]
    conversations: Vec<Turn>,
}

/// (prompt, completion) pairs: the first two turns of each conversation with at least two turns.
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
    let convs: Vec<Conversation> = serde_json::from_str(&text).map_err(|e| {
        err(format!(
            "not a ShareGPT file (a JSON list of {{\"conversations\": [{{\"from\", \"value\"}}]}}): {e}"
        ))
    })?;
    Ok(convs
        .into_iter()
        .filter(|c| c.conversations.len() >= 2)
        .map(|mut c| {
            let second = c.conversations.swap_remove(1);
            let first = c.conversations.swap_remove(0);
            let _ = (&first.from, &second.from);
            (first.value, second.value)
        })
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
