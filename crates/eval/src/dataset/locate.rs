//! Finding a built-in set's file: an explicit path, then `--data-dir`, then the local Hugging Face cache, then (only
//! with `--download`) the Hub. Offline with nothing found, the error says where to put which file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::Builtin;
use crate::error::EvalError;

/// Where a built-in set can be fetched from on the Hugging Face Hub (a dataset repository).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HubSource {
    pub repo: &'static str,
    pub file: &'static str,
    /// The repository asks users to accept terms first (a token is needed).
    pub gated: bool,
}

/// The Hub copy `--download` fetches. Only JSONL/CSV copies are used (servebench reads no Parquet).
pub fn hub_source(b: Builtin) -> Option<HubSource> {
    match b {
        Builtin::Math500 => Some(HubSource {
            repo: "HuggingFaceH4/MATH-500",
            file: "test.jsonl",
            gated: false,
        }),
        Builtin::Aime25 => Some(HubSource {
            repo: "math-ai/aime25",
            file: "test.jsonl",
            gated: false,
        }),
        Builtin::GpqaDiamond => Some(HubSource {
            repo: "Idavidrein/gpqa",
            file: "gpqa_diamond.csv",
            gated: true,
        }),
        // HuggingFaceH4/aime_2024 and openai/gsm8k are published as Parquet only.
        Builtin::Aime24 | Builtin::Gsm8k => None,
    }
}

/// Where the original JSONL of a set without a Hub copy can be downloaded by hand.
fn upstream_url(b: Builtin) -> Option<&'static str> {
    match b {
        Builtin::Aime24 => Some("https://github.com/QwenLM/Qwen2.5-Math/raw/main/evaluation/data/aime24/test.jsonl"),
        Builtin::Gsm8k => Some("https://github.com/openai/grade-school-math/raw/master/grade_school_math/data/test.jsonl"),
        _ => None,
    }
}

/// Where data may come from.
#[derive(Debug, Clone, Default)]
pub struct DataSources {
    /// `--data-dir`: folders named as the sets (`aime24/test.jsonl`, …) and `gpqa_diamond.csv`.
    pub data_dir: Option<PathBuf>,
    /// `--dataset-path NAME=PATH`: a file, or a folder laid out like `--data-dir` or holding `test.jsonl`.
    pub paths: BTreeMap<String, PathBuf>,
    /// `--download`: fetch missing public sets from the Hub.
    pub download: bool,
    /// The Hugging Face cache folder (the `hub` folder); `None`: `$HF_HOME/hub` or `~/.cache/huggingface/hub`.
    pub hf_cache: Option<PathBuf>,
}

impl DataSources {
    fn cache(&self) -> hf_hub::Cache {
        match &self.hf_cache {
            Some(p) => hf_hub::Cache::new(p.clone()),
            None => hf_hub::Cache::from_env(),
        }
    }
}

/// The files looked for inside a data folder, in order.
pub fn candidates_in(dir: &Path, b: Builtin) -> Vec<PathBuf> {
    match b {
        Builtin::GpqaDiamond => vec![
            dir.join("gpqa_diamond.csv"),
            dir.join("gpqa").join("gpqa_diamond.csv"),
            dir.join("gpqa_diamond").join("gpqa_diamond.csv"),
        ],
        _ => vec![
            dir.join(b.name()).join("test.jsonl"),
            dir.join(format!("{}.jsonl", b.name())),
        ],
    }
}

/// The file for a built-in set (see the module docs for the order).
pub fn resolve(b: Builtin, sources: &DataSources) -> Result<PathBuf, EvalError> {
    let mut looked = Vec::new();
    if let Some(p) = sources.paths.get(b.name()) {
        if p.is_file() {
            return Ok(p.clone());
        }
        if !p.exists() {
            return Err(EvalError::Missing {
                dataset: b.name().into(),
                message: format!(
                    "--dataset-path {}={}: no such file or folder",
                    b.name(),
                    p.display()
                ),
            });
        }
        let mut c = vec![p.join(if b == Builtin::GpqaDiamond {
            "gpqa_diamond.csv"
        } else {
            "test.jsonl"
        })];
        c.extend(candidates_in(p, b));
        if let Some(found) = first_file(&c) {
            return Ok(found);
        }
        looked.extend(c);
    }
    if let Some(dir) = &sources.data_dir {
        let c = candidates_in(dir, b);
        if let Some(found) = first_file(&c) {
            return Ok(found);
        }
        looked.extend(c);
    }
    if let Some(hub) = hub_source(b) {
        let cache = sources.cache();
        if let Some(p) = cache.dataset(hub.repo.to_string()).get(hub.file) {
            return Ok(p);
        }
        if sources.download {
            return download(b, hub, cache);
        }
    }
    Err(EvalError::Missing {
        dataset: b.name().into(),
        message: missing_message(b, sources, &looked),
    })
}

fn first_file(c: &[PathBuf]) -> Option<PathBuf> {
    c.iter().find(|p| p.is_file()).cloned()
}

fn missing_message(b: Builtin, sources: &DataSources, looked: &[PathBuf]) -> String {
    let mut m = String::from("no data file found");
    if !looked.is_empty() {
        let list: Vec<String> = looked.iter().map(|p| p.display().to_string()).collect();
        m.push_str(&format!(" (looked for {})", list.join(", ")));
    }
    let dir = sources
        .data_dir
        .as_ref()
        .map_or("DIR".to_string(), |d| d.display().to_string());
    let what = match b {
        Builtin::GpqaDiamond => format!(
            "Put your copy of gpqa_diamond.csv (the GPQA layout: Question, Correct Answer, Incorrect Answer 1-3) at \
             {dir}/gpqa_diamond.csv{}, or pass --dataset-path gpqa_diamond=FILE. GPQA is not shipped: its authors ask \
             that it not be published in plain text; it comes in the password-protected zip of github.com/idavidrein/gpqa",
            if sources.data_dir.is_none() { " with --data-dir DIR" } else { "" }
        ),
        _ => format!(
            "Put the set's JSONL at {dir}/{}/test.jsonl{}, or pass --dataset-path {}=FILE",
            b.name(),
            if sources.data_dir.is_none() { " and pass --data-dir DIR" } else { "" },
            b.name()
        ),
    };
    m.push_str(". ");
    m.push_str(&what);
    match (hub_source(b), upstream_url(b)) {
        (Some(h), _) => m.push_str(&format!(
            ". Online, --download fetches {}/{} from the Hugging Face Hub into its local cache{}",
            h.repo,
            h.file,
            if h.gated {
                " (a gated dataset: accept its terms on huggingface.co and provide a token in HF_TOKEN or with \
                 `huggingface-cli login`)"
            } else {
                ""
            }
        )),
        (None, Some(url)) => m.push_str(&format!(
            ". The Hub has no JSONL copy from its publisher (Parquet only); download it from {url}"
        )),
        (None, None) => {}
    }
    m
}

fn download(b: Builtin, hub: HubSource, cache: hf_hub::Cache) -> Result<PathBuf, EvalError> {
    let token = std::env::var("HF_TOKEN")
        .ok()
        .filter(|t| !t.trim().is_empty())
        .or_else(|| cache.token());
    let mut builder = hf_hub::api::sync::ApiBuilder::from_cache(cache)
        .with_progress(false)
        .with_token(token);
    if let Ok(endpoint) = std::env::var("HF_ENDPOINT") {
        builder = builder.with_endpoint(endpoint);
    }
    let api = builder.build().map_err(|e| EvalError::Download {
        dataset: b.name().into(),
        message: e.to_string(),
    })?;
    api.dataset(hub.repo.to_string())
        .get(hub.file)
        .map_err(|e| EvalError::Download {
            dataset: b.name().into(),
            message: format!(
                "{}/{}: {e}{}. Offline or behind a firewall, put the file in --data-dir instead",
                hub.repo,
                hub.file,
                if hub.gated {
                    " (a gated dataset: accept its terms on huggingface.co and set HF_TOKEN)"
                } else {
                    ""
                }
            ),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn empty_cache() -> tempfile::TempDir {
        tempfile::tempdir().unwrap()
    }

    #[test]
    fn data_dir_layouts_are_found() {
        let d = tempfile::tempdir().unwrap();
        let cache = empty_cache();
        std::fs::create_dir_all(d.path().join("math500")).unwrap();
        std::fs::write(d.path().join("math500/test.jsonl"), "{}").unwrap();
        std::fs::create_dir_all(d.path().join("gpqa")).unwrap();
        std::fs::write(d.path().join("gpqa/gpqa_diamond.csv"), "x").unwrap();
        let s = DataSources {
            data_dir: Some(d.path().to_path_buf()),
            hf_cache: Some(cache.path().to_path_buf()),
            ..Default::default()
        };
        assert_eq!(
            resolve(Builtin::Math500, &s).unwrap(),
            d.path().join("math500/test.jsonl")
        );
        assert_eq!(
            resolve(Builtin::GpqaDiamond, &s).unwrap(),
            d.path().join("gpqa/gpqa_diamond.csv")
        );
    }

    #[test]
    fn explicit_paths_win_and_may_be_folders() {
        let d = tempfile::tempdir().unwrap();
        let cache = empty_cache();
        let f = d.path().join("mine.csv");
        std::fs::write(&f, "x").unwrap();
        std::fs::create_dir_all(d.path().join("aime")).unwrap();
        std::fs::write(d.path().join("aime/test.jsonl"), "{}").unwrap();
        let mut s = DataSources {
            hf_cache: Some(cache.path().to_path_buf()),
            ..Default::default()
        };
        s.paths.insert("gpqa_diamond".into(), f.clone());
        s.paths.insert("aime24".into(), d.path().join("aime"));
        s.paths.insert("aime25".into(), d.path().join("nope"));
        assert_eq!(resolve(Builtin::GpqaDiamond, &s).unwrap(), f);
        assert_eq!(
            resolve(Builtin::Aime24, &s).unwrap(),
            d.path().join("aime/test.jsonl")
        );
        let e = resolve(Builtin::Aime25, &s).unwrap_err().to_string();
        assert!(
            e.contains("--dataset-path aime25=") && e.contains("no such file"),
            "{e}"
        );
    }

    #[test]
    fn offline_without_data_says_where_to_put_files() {
        let d = tempfile::tempdir().unwrap();
        let cache = empty_cache();
        let s = DataSources {
            data_dir: Some(d.path().to_path_buf()),
            hf_cache: Some(cache.path().to_path_buf()),
            ..Default::default()
        };
        let e = resolve(Builtin::Math500, &s).unwrap_err().to_string();
        assert!(e.starts_with("math500: no data file found"), "{e}");
        assert!(
            e.contains(&format!("{}/math500/test.jsonl", d.path().display())),
            "{e}"
        );
        assert!(
            e.contains("--download fetches HuggingFaceH4/MATH-500/test.jsonl"),
            "{e}"
        );
        let e = resolve(Builtin::Gsm8k, &s).unwrap_err().to_string();
        assert!(e.contains("grade-school-math"), "{e}");
        assert!(!e.contains("--download fetches"), "{e}");
        let e = resolve(Builtin::GpqaDiamond, &s).unwrap_err().to_string();
        assert!(
            e.contains("gpqa_diamond.csv") && e.contains("gated") && e.contains("not shipped"),
            "{e}"
        );
        let no_dir = DataSources {
            hf_cache: Some(cache.path().to_path_buf()),
            ..Default::default()
        };
        let e = resolve(Builtin::Aime25, &no_dir).unwrap_err().to_string();
        assert!(
            e.contains("DIR/aime25/test.jsonl and pass --data-dir DIR"),
            "{e}"
        );
    }

    #[test]
    fn local_hub_cache_is_used_without_network() {
        // The layout hf-hub (and huggingface_hub) write: datasets--ORG--NAME/refs/main + snapshots/REV/FILE.
        let cache = empty_cache();
        let repo = cache.path().join("datasets--HuggingFaceH4--MATH-500");
        std::fs::create_dir_all(repo.join("refs")).unwrap();
        std::fs::write(repo.join("refs/main"), "abc123").unwrap();
        std::fs::create_dir_all(repo.join("snapshots/abc123")).unwrap();
        std::fs::write(repo.join("snapshots/abc123/test.jsonl"), "{}").unwrap();
        let s = DataSources {
            hf_cache: Some(cache.path().to_path_buf()),
            ..Default::default()
        };
        assert_eq!(
            resolve(Builtin::Math500, &s).unwrap(),
            repo.join("snapshots/abc123/test.jsonl")
        );
        // A --data-dir copy wins over the cache.
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("math500.jsonl"), "{}").unwrap();
        let s2 = DataSources {
            data_dir: Some(d.path().to_path_buf()),
            ..s
        };
        assert_eq!(
            resolve(Builtin::Math500, &s2).unwrap(),
            d.path().join("math500.jsonl")
        );
    }
}
