//! Loading a BPE `tokenizer.json` without `tokenizers`' three passes over its model.
//!
//! `tokenizers::Tokenizer::from_bytes` reads the model through an untagged helper that buffers the whole
//! vocabulary and merge list, copies them into a `serde_json::Value`, then deserializes that: for a 150k-token
//! vocabulary (Qwen2, Llama 3) most of the ~0.3 s a bench run spends loading its tokenizer. Here the model is
//! read once, straight into `tokenizers`' own `BPE` (its own deserializer, so its own rules for every key), and
//! the rest of the file (normalizer, pre-tokenizer, decoder, post-processor, truncation, padding) goes through
//! `from_bytes` with an empty model; the added tokens are then added as `from_bytes` adds them, after the
//! model, so that their ids come out the same. Any other model type, or anything unexpected, takes
//! `from_bytes`' way; tests check both ways serialize to the same tokenizer.

use serde_json::value::RawValue;
use tokenizers::models::bpe::BPE;
use tokenizers::{AddedToken, ModelWrapper};

/// The tokenizer of a `tokenizer.json`'s bytes.
///
/// `tokenizers` panics on some files it cannot read (0.22: a byte-level BPE with a `continuing_subword_prefix`
/// longer than a merge's second token slices a string out of bounds); that comes back as an error here, not as
/// a crash of the whole run.
pub(crate) fn tokenizer_from_bytes(bytes: &[u8]) -> tokenizers::Result<tokenizers::Tokenizer> {
    let read = std::panic::catch_unwind(|| match bpe_tokenizer(bytes) {
        Some(t) => Ok(t),
        None => tokenizers::Tokenizer::from_bytes(bytes),
    });
    read.unwrap_or_else(|panic| {
        let why = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "no message".into());
        Err(format!("the tokenizers library failed on this file ({why})").into())
    })
}

/// A `tokenizer.json` read once: the model as `M` (`tokenizers`' own `BPE`, or [`crate::byte_bpe`]'s view of
/// it), every other part kept as its JSON text (`from_bytes` reads those; unknown keys are ignored by both).
#[derive(serde::Deserialize)]
#[serde(bound(deserialize = "M: serde::Deserialize<'de>"))]
pub(crate) struct FileParts<'a, M> {
    pub(crate) model: M,
    #[serde(borrow)]
    pub(crate) added_tokens: Option<&'a RawValue>,
    #[serde(borrow)]
    version: Option<&'a RawValue>,
    #[serde(borrow)]
    truncation: Option<&'a RawValue>,
    #[serde(borrow)]
    padding: Option<&'a RawValue>,
    #[serde(borrow)]
    normalizer: Option<&'a RawValue>,
    #[serde(borrow)]
    pre_tokenizer: Option<&'a RawValue>,
    #[serde(borrow)]
    post_processor: Option<&'a RawValue>,
    #[serde(borrow)]
    decoder: Option<&'a RawValue>,
}

impl<M> FileParts<'_, M> {
    /// The JSON of every part but the model and the added tokens, with an empty BPE model: what
    /// [`shell_of`] builds.
    pub(crate) fn rest(&self) -> String {
        let mut rest = String::with_capacity(4096);
        rest.push_str(r#"{"model":{"type":"BPE","vocab":{},"merges":[]}"#);
        let parts = [
            ("version", self.version),
            ("truncation", self.truncation),
            ("padding", self.padding),
            ("normalizer", self.normalizer),
            ("pre_tokenizer", self.pre_tokenizer),
            ("post_processor", self.post_processor),
            ("decoder", self.decoder),
        ];
        // A missing key and `null` mean the same to `from_bytes`.
        for (key, value) in parts {
            if let Some(value) = value {
                rest.push_str(&format!(",\"{key}\":{}", value.get()));
            }
        }
        rest.push('}');
        rest
    }

    /// The tokenizer of every part but the model and the added tokens: an empty BPE model, nothing added.
    pub(crate) fn shell(&self) -> Option<tokenizers::Tokenizer> {
        shell_of(&self.rest())
    }
}

/// The tokenizer of [`FileParts::rest`]'s JSON.
pub(crate) fn shell_of(rest: &str) -> Option<tokenizers::Tokenizer> {
    tokenizers::Tokenizer::from_bytes(rest.as_bytes()).ok()
}

/// The fast way, for a BPE model; None where it does not apply or fails (the caller then takes the slow way,
/// which reports any error in the file).
fn bpe_tokenizer(bytes: &[u8]) -> Option<tokenizers::Tokenizer> {
    let file: FileParts<BPE> = serde_json::from_slice(bytes).ok()?;
    let added: Vec<AddedToken> = match file.added_tokens {
        Some(raw) => serde_json::from_str(raw.get()).ok()?,
        None => Vec::new(),
    };
    let mut tok = file.shell()?;
    tok.with_model(ModelWrapper::BPE(file.model));
    tok.add_tokens(&added);
    Some(tok)
}

/// Whether the fast way applies to `bytes` and gives the tokenizer `from_bytes` gives (both serialized), for
/// checks on real tokenizers (`examples/word_cache.rs`).
#[doc(hidden)]
pub fn fast_load_matches(bytes: &[u8]) -> Result<bool, String> {
    let slow = tokenizers::Tokenizer::from_bytes(bytes).map_err(|e| e.to_string())?;
    let Some(fast) = bpe_tokenizer(bytes) else {
        return Ok(false);
    };
    Ok(fast.to_string(false).map_err(|e| e.to_string())?
        == slow.to_string(false).map_err(|e| e.to_string())?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn builtin_json() -> serde_json::Value {
        let mut raw = String::new();
        flate2::read::GzDecoder::new(crate::tokenizer::BUILTIN_GZ)
            .read_to_string(&mut raw)
            .unwrap();
        serde_json::from_str(&raw).unwrap()
    }

    #[test]
    fn the_fast_way_loads_the_same_tokenizer() {
        let mut json = builtin_json();
        assert_eq!(fast_load_matches(json.to_string().as_bytes()), Ok(true));
        // Added tokens outside the vocabulary get new ids in file order, as `from_bytes` gives them; a
        // truncation setting and legacy "a b" merges come through too.
        json["added_tokens"].as_array_mut().unwrap().push(
            serde_json::json!({"id": 49152, "content": "<new>", "single_word": false,
                "lstrip": false, "rstrip": false, "normalized": false, "special": true}),
        );
        json["truncation"] = serde_json::json!({"direction": "Right", "max_length": 8,
            "strategy": "LongestFirst", "stride": 0});
        let merges = json["model"]["merges"].as_array().unwrap().clone();
        json["model"]["merges"] = merges
            .iter()
            .map(|m| match m {
                serde_json::Value::Array(p) => serde_json::Value::String(format!(
                    "{} {}",
                    p[0].as_str().unwrap(),
                    p[1].as_str().unwrap()
                )),
                other => other.clone(),
            })
            .collect();
        let bytes = json.to_string();
        assert_eq!(fast_load_matches(bytes.as_bytes()), Ok(true));
        let t = tokenizer_from_bytes(bytes.as_bytes()).unwrap();
        assert_eq!(t.token_to_id("<new>"), Some(49152));
        assert!(t.get_truncation().is_some());
    }

    #[test]
    fn other_models_and_bad_files_take_the_slow_way() {
        let mut json = builtin_json();
        json["model"]["type"] = serde_json::json!("WordPiece");
        assert!(bpe_tokenizer(json.to_string().as_bytes()).is_none());
        assert!(bpe_tokenizer(b"{\"model\": 3}").is_none());
        // The slow way reports the error.
        let err = tokenizer_from_bytes(b"{\"model\": 3}")
            .unwrap_err()
            .to_string();
        assert!(!err.is_empty());
    }
}
