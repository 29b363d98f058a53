//! Tokenizers loaded once per process: a sweep, a capacity search or a study runs many benches with the same
//! tokenizer, and loading a 150k-token one costs ~0.15 CPU-s (and freeing it at the end of each run as much
//! again in page and allocator work). [`shared`] keeps the last few by file identity (path, length,
//! modification time), so an edited file is loaded again.

use crate::{TokenizeError, Tokenizer};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::SystemTime;

/// Tokenizers kept; the oldest goes first.
const KEPT: usize = 4;

#[derive(PartialEq, Eq, Clone, Debug)]
struct Identity {
    path: PathBuf,
    len: u64,
    modified: Option<SystemTime>,
}

type Kept = Mutex<Vec<(Identity, Arc<Tokenizer>)>>;

fn kept() -> &'static Kept {
    static KEPT_TOKENIZERS: OnceLock<Kept> = OnceLock::new();
    KEPT_TOKENIZERS.get_or_init(Kept::default)
}

/// The file [`Tokenizer::from_path`] reads for `path`, and what identifies its content.
fn identity(path: &Path) -> Option<Identity> {
    let file = if path.is_dir() {
        path.join("tokenizer.json")
    } else {
        path.to_path_buf()
    };
    let meta = std::fs::metadata(&file).ok()?;
    // The folder's config and template files are read too: their times count.
    let dir_newest = path
        .is_dir()
        .then(|| {
            ["tokenizer_config.json", "chat_template.jinja"]
                .iter()
                .filter_map(|f| std::fs::metadata(path.join(f)).ok()?.modified().ok())
                .max()
        })
        .flatten();
    Some(Identity {
        path: std::fs::canonicalize(path).ok()?,
        len: meta.len(),
        modified: meta.modified().ok().max(dir_newest),
    })
}

/// [`Tokenizer::from_path`], loaded once per process for the same unchanged file.
pub fn shared(path: impl AsRef<Path>) -> Result<Arc<Tokenizer>, TokenizeError> {
    let path = path.as_ref();
    let Some(id) = identity(path) else {
        // Let the loader say what is wrong with the path.
        return Tokenizer::from_path(path).map(Arc::new);
    };
    if let Some(t) = kept()
        .lock()
        .ok()
        .and_then(|k| k.iter().find(|(i, _)| *i == id).map(|(_, t)| t.clone()))
    {
        return Ok(t);
    }
    let tok = Arc::new(Tokenizer::from_path(path)?);
    if let Ok(mut k) = kept().lock() {
        k.retain(|(i, _)| i.path != id.path);
        if k.len() == KEPT {
            k.remove(0);
        }
        k.push((id, tok.clone()));
    }
    Ok(tok)
}

/// [`Tokenizer::builtin`], loaded once per process.
pub fn shared_builtin() -> Result<Arc<Tokenizer>, TokenizeError> {
    static BUILTIN: OnceLock<Arc<Tokenizer>> = OnceLock::new();
    if let Some(t) = BUILTIN.get() {
        return Ok(t.clone());
    }
    let t = Arc::new(Tokenizer::builtin()?);
    Ok(BUILTIN.get_or_init(|| t).clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn the_same_file_is_loaded_once_and_an_edited_one_again() {
        let mut raw = String::new();
        flate2::read::GzDecoder::new(crate::tokenizer::BUILTIN_GZ)
            .read_to_string(&mut raw)
            .unwrap();
        let dir = std::env::temp_dir().join(format!("sb-shared-tok-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("tokenizer.json");
        std::fs::write(&file, &raw).unwrap();
        let a = shared(&file).unwrap();
        let b = shared(&dir).unwrap();
        let c = shared(&file).unwrap();
        assert!(Arc::ptr_eq(&a, &c));
        // The folder is another source (its config files count): loaded on its own, then kept too.
        assert!(Arc::ptr_eq(&b, &shared(&dir).unwrap()));
        // An edit (another length) is seen.
        let mut json: serde_json::Value = serde_json::from_str(&raw).unwrap();
        json["added_tokens"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({"id": 49152,
            "content": "<extra>", "single_word": false, "lstrip": false, "rstrip": false,
            "normalized": false, "special": true}));
        std::fs::write(&file, json.to_string()).unwrap();
        let d = shared(&file).unwrap();
        assert!(!Arc::ptr_eq(&a, &d));
        assert_eq!(d.encode("<extra>").unwrap(), vec![49152]);
        assert!(shared(dir.join("missing.json")).is_err());
        assert!(Arc::ptr_eq(
            &shared_builtin().unwrap(),
            &shared_builtin().unwrap()
        ));
    }
}
