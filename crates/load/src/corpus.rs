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
/// The file is read only as far as that: a 670 MB ShareGPT dump costs what its first conversations cost. The
/// first read takes a prefix of [`PREFIX_PER_BYTE`] × `max_bytes` (parsed in memory, several times faster than
/// through a reader); a prefix that ends before the corpus is full is doubled and parsed again.
pub fn corpus_text(sharegpt: Option<&Path>, max_bytes: usize) -> Result<String, LoadError> {
    let Some(path) = sharegpt else {
        return Ok(BUILTIN_CORPUS.to_string());
    };
    let err = |message: String| LoadError::Dataset {
        path: path.display().to_string(),
        message,
    };
    let file = std::fs::File::open(path).map_err(|e| {
        err(format!(
            "cannot read: {e}. Pass --dataset-path with a ShareGPT JSON file (ShareGPT_V3_unfiltered_cleaned_split.json layout)"
        ))
    })?;
    let mut buf = Vec::new();
    let mut want = max_bytes.saturating_mul(PREFIX_PER_BYTE).max(64 * 1024);
    loop {
        let more = want.saturating_sub(buf.len()) as u64;
        std::io::Read::read_to_end(&mut std::io::Read::take(&file, more), &mut buf)
            .map_err(|e| err(format!("cannot read: {e}")))?;
        let whole = buf.len() < want;
        let mut corpus = Corpus {
            text: String::new(),
            max_bytes,
            full: false,
        };
        let mut de = serde_json::Deserializer::from_slice(&buf);
        let read = serde::Deserializer::deserialize_seq(&mut de, &mut corpus);
        match read.and_then(|()| de.end()) {
            // Stopping early leaves the rest of the list unread, which the parser reports: not an error.
            Err(_) if corpus.full => return nonempty(corpus.text).map_err(err),
            Ok(()) => return nonempty(corpus.text).map_err(err),
            Err(e) if e.is_eof() && !whole => want = want.saturating_mul(2),
            Err(e) => {
                return Err(err(format!(
                    "not a ShareGPT file (a JSON list of {{\"conversations\": [{{\"from\", \"value\"}}]}}): {e}"
                )))
            }
        }
    }
}

/// Bytes of file read at first per byte of corpus wanted (ShareGPT's first prompts are ~1/4 of its bytes).
const PREFIX_PER_BYTE: usize = 6;

fn nonempty(text: String) -> Result<String, String> {
    if text.trim().is_empty() {
        return Err("holds no conversation text".into());
    }
    Ok(text)
}

/// Collects prompts from a ShareGPT list, one conversation at a time, until `max_bytes`.
struct Corpus {
    text: String,
    max_bytes: usize,
    full: bool,
}

impl<'de> serde::de::Visitor<'de> for &mut Corpus {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a list of conversations")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(conv) = seq.next_element::<Value>()? {
            let Some((p, _)) = first_two_turns(&conv, false) else {
                continue;
            };
            let p = p.trim();
            if p.is_empty() {
                continue;
            }
            if !self.text.is_empty() {
                self.text.push_str("\n\n");
            }
            self.text.push_str(p);
            if self.text.len() >= self.max_bytes {
                self.full = true;
                return Ok(());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The corpus as the whole-file reading gave it (every pair loaded, then cut at `max_bytes`).
    fn whole_file_corpus(path: &Path, max_bytes: usize) -> String {
        let mut out = String::new();
        for (p, _) in load_sharegpt(path).unwrap() {
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
        out
    }

    #[test]
    fn the_corpus_is_read_only_as_far_as_needed_and_equals_the_whole_file_reading() {
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/fixtures/sharegpt/sharegpt_small.json");
        for max in [1, 200, 5_000, 1 << 30] {
            assert_eq!(
                corpus_text(Some(&fixture), max).unwrap(),
                whole_file_corpus(&fixture, max),
                "{max}"
            );
        }
        // What follows the conversations it needed is not read: a broken tail does not matter...
        let dir = std::env::temp_dir().join(format!("sb-corpus-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let long = "word ".repeat(100);
        let conv = format!(r#"{{"conversations": [{{"value": "{long}"}}, {{"value": "a"}}]}}"#);
        let tail_broken = dir.join("tail.json");
        std::fs::write(&tail_broken, format!("[{conv}, {conv}, {{this is not json")).unwrap();
        assert_eq!(corpus_text(Some(&tail_broken), 300).unwrap().len(), 499);
        assert_eq!(
            corpus_text(Some(&tail_broken), 600).unwrap().len(),
            2 * 499 + 2
        );
        // ... but it does when the corpus needs it, and so do a file that is not a list and an empty one.
        let err = corpus_text(Some(&tail_broken), 10_000)
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a ShareGPT file"), "{err}");
        let not_list = dir.join("obj.json");
        std::fs::write(&not_list, r#"{"conversations": []}"#).unwrap();
        let err = corpus_text(Some(&not_list), 10).unwrap_err().to_string();
        assert!(err.contains("not a ShareGPT file"), "{err}");
        let empty = dir.join("empty.json");
        std::fs::write(&empty, "[]").unwrap();
        let err = corpus_text(Some(&empty), 10).unwrap_err().to_string();
        assert!(err.contains("holds no conversation text"), "{err}");
        let trailing = dir.join("trailing.json");
        std::fs::write(&trailing, format!("[{conv}] junk")).unwrap();
        assert!(corpus_text(Some(&trailing), 10_000).is_err());
        let missing = corpus_text(Some(&dir.join("nope.json")), 10)
            .unwrap_err()
            .to_string();
        assert!(missing.contains("cannot read"), "{missing}");
    }

    #[test]
    fn a_prefix_that_ends_before_the_corpus_is_full_is_read_further() {
        // Short prompts (multi-byte characters, so prefixes end inside them) and long answers: the first
        // prefix (64 KiB) holds ~30 conversations' prompts, far fewer bytes than asked.
        let dir = std::env::temp_dir().join(format!("sb-corpus-prefix-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let answer = "réponse ".repeat(250);
        let convs: Vec<String> = (0..300)
            .map(|i| {
                format!(
                    r#"{{"conversations": [{{"value": "é{i} prompt ü"}}, {{"value": "{answer}"}}]}}"#
                )
            })
            .collect();
        let path = dir.join("long.json");
        std::fs::write(&path, format!("[{}]", convs.join(",\n"))).unwrap();
        assert!(std::fs::metadata(&path).unwrap().len() > 4 * 64 * 1024);
        for max in [100, 1_500, 3_000, 1 << 30] {
            assert_eq!(
                corpus_text(Some(&path), max).unwrap(),
                whole_file_corpus(&path, max),
                "{max}"
            );
        }
        // Broken after what the corpus needs: not read, not an error; broken before it: an error.
        let broken = dir.join("broken.json");
        std::fs::write(&broken, format!("[{}, {{oops", convs.join(","))).unwrap();
        assert_eq!(
            corpus_text(Some(&broken), 3_000).unwrap(),
            whole_file_corpus(&path, 3_000)
        );
        let err = corpus_text(Some(&broken), 1 << 30).unwrap_err().to_string();
        assert!(err.contains("not a ShareGPT file"), "{err}");
        std::fs::remove_dir_all(&dir).ok();
    }

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
