//! Benchmark datasets: what an item is, the built-in sets, and loading them from disk (or the Hub cache).
//!
//! | name | file | question | gold | grader |
//! |---|---|---|---|---|
//! | `aime24` | `aime24/test.jsonl` | `problem` | `answer` (a string, "025" = 25) | math |
//! | `aime25` | `aime25/test.jsonl` | `problem` | `answer` | math |
//! | `math500` | `math500/test.jsonl` | `problem` | `answer` | math |
//! | `gsm8k` | `gsm8k/test.jsonl` | `question` | `answer` after the last `####` | numeric |
//! | `gpqa_diamond` | `gpqa_diamond.csv` (GPQA layout) | `Question` + 4 options | letter of the correct option | choice |
//! | custom | any JSONL | `question` or `problem` | `answer` | math, mcq or exact |
//!
//! Item ids: the row's `id` / `unique_id` / `idx` / `ID` field when present (AIME ids, MATH-500 `unique_id`,
//! GSM8K `idx`), else the 0-based row number; GPQA: `Record ID`, else `q-` + the first 12 hex digits of SHA-256 of
//! the question text.

pub mod gpqa;
pub mod jsonl;
pub mod locate;

use std::path::{Path, PathBuf};

use crate::error::EvalError;
use crate::protocol::{Protocol, Protocols};
pub use gpqa::GpqaShuffle;
pub use locate::{DataSources, HubSource};

/// How a response is graded against the gold answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GraderKind {
    /// Final math answer (last `\boxed{}`, "the answer is", last number) compared by math equivalence.
    Math,
    /// Final answer compared numerically (GSM8K).
    Numeric,
    /// A multiple-choice letter A–D (GPQA; custom `mcq`).
    Choice,
    /// The last `\boxed{}` (or else the whole final text), trimmed, equal to the gold string.
    Exact,
}

impl GraderKind {
    /// The custom-set grader names: `math`, `mcq`, `exact`.
    pub fn parse_custom(s: &str) -> Result<GraderKind, EvalError> {
        match s {
            "math" => Ok(GraderKind::Math),
            "mcq" => Ok(GraderKind::Choice),
            "exact" => Ok(GraderKind::Exact),
            other => Err(EvalError::Config(format!(
                "unknown grader '{other}' for a custom set: use math, mcq or exact"
            ))),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            GraderKind::Math => "math",
            GraderKind::Numeric => "numeric",
            GraderKind::Choice => "mcq",
            GraderKind::Exact => "exact",
        }
    }
}

/// The built-in benchmark sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Builtin {
    Aime24,
    Aime25,
    Math500,
    Gsm8k,
    GpqaDiamond,
}

impl Builtin {
    pub const ALL: [Builtin; 5] = [
        Builtin::Aime24,
        Builtin::Aime25,
        Builtin::Math500,
        Builtin::Gsm8k,
        Builtin::GpqaDiamond,
    ];

    pub fn parse(name: &str) -> Option<Builtin> {
        match name.trim().to_ascii_lowercase().replace('-', "_").as_str() {
            "aime24" | "aime_2024" => Some(Builtin::Aime24),
            "aime25" | "aime_2025" => Some(Builtin::Aime25),
            "math500" | "math_500" => Some(Builtin::Math500),
            "gsm8k" => Some(Builtin::Gsm8k),
            "gpqa_diamond" | "gpqa" => Some(Builtin::GpqaDiamond),
            _ => None,
        }
    }

    /// The name used in file names and reports (also the folder name under `--data-dir`).
    pub fn name(self) -> &'static str {
        match self {
            Builtin::Aime24 => "aime24",
            Builtin::Aime25 => "aime25",
            Builtin::Math500 => "math500",
            Builtin::Gsm8k => "gsm8k",
            Builtin::GpqaDiamond => "gpqa_diamond",
        }
    }

    pub fn grader(self) -> GraderKind {
        match self {
            Builtin::Aime24 | Builtin::Aime25 | Builtin::Math500 => GraderKind::Math,
            Builtin::Gsm8k => GraderKind::Numeric,
            Builtin::GpqaDiamond => GraderKind::Choice,
        }
    }

    /// Number of items in the published set (a loaded file with another count is reported, not refused).
    pub fn expected_len(self) -> usize {
        match self {
            Builtin::Aime24 | Builtin::Aime25 => 30,
            Builtin::Math500 => 500,
            Builtin::Gsm8k => 1319,
            Builtin::GpqaDiamond => 198,
        }
    }
}

/// One benchmark question.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    /// Stable id (see the module docs).
    pub id: String,
    /// The question text as the prompt uses it (math sets: trimmed problem; GPQA: the `Question` cell as is).
    pub question: String,
    /// Multiple-choice options in the order presented (GPQA only).
    pub choices: Option<[String; 4]>,
    /// The gold answer: a math answer, a number, or a letter A–D.
    pub gold: String,
}

/// A loaded dataset.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// `aime24`, `gpqa_diamond`, …, or the custom set's file stem.
    pub name: String,
    /// The file the items came from.
    pub source: PathBuf,
    /// SHA-256 of the source file (hex): resuming refuses a changed file.
    pub source_sha256: String,
    pub grader: GraderKind,
    /// The protocol its prompts, option order, extraction and grading follow.
    pub protocol: Protocol,
    pub items: Vec<Item>,
}

/// What to load.
#[derive(Debug, Clone, PartialEq)]
pub enum DatasetSpec {
    Builtin(Builtin),
    /// A custom JSONL file graded with the given grader; `name` defaults to the file stem.
    Custom {
        name: String,
        path: PathBuf,
        grader: GraderKind,
    },
}

impl DatasetSpec {
    pub fn name(&self) -> String {
        match self {
            DatasetSpec::Builtin(b) => b.name().to_string(),
            DatasetSpec::Custom { name, .. } => name.clone(),
        }
    }
}

/// Loads a dataset. Built-in sets are looked up in `sources` (see [`locate::resolve`]) and follow their protocol in
/// `protocols`; GPQA options are ordered as that protocol does (`shuffle` applies to the `servebench` protocol).
pub fn load(
    spec: &DatasetSpec,
    sources: &DataSources,
    protocols: &Protocols,
    shuffle: GpqaShuffle,
) -> Result<Dataset, EvalError> {
    match spec {
        DatasetSpec::Builtin(b) => {
            let path = locate::resolve(*b, sources)?;
            load_builtin_file(*b, &path, protocols.for_builtin(*b), shuffle)
        }
        DatasetSpec::Custom { name, path, grader } => {
            let bytes = read(path)?;
            let items = jsonl::parse_custom(path, &bytes, *grader)?;
            Ok(Dataset {
                name: name.clone(),
                source: path.clone(),
                source_sha256: sha256_hex(&bytes),
                grader: *grader,
                protocol: Protocol::Servebench,
                items,
            })
        }
    }
}

/// Loads a built-in set from a known file under `protocol` (`shuffle`: GPQA's order under `servebench`).
pub fn load_builtin_file(
    b: Builtin,
    path: &Path,
    protocol: Protocol,
    shuffle: GpqaShuffle,
) -> Result<Dataset, EvalError> {
    let bytes = read(path)?;
    let order = match protocol {
        Protocol::Evalscope0 => GpqaShuffle::Evalscope0,
        Protocol::Evalscope1 => GpqaShuffle::Evalscope1,
        _ => shuffle,
    };
    let items = match b {
        Builtin::GpqaDiamond => gpqa::parse_csv(path, &bytes, order)?,
        Builtin::Gsm8k => jsonl::parse_gsm8k(path, &bytes)?,
        Builtin::Aime24 | Builtin::Aime25 | Builtin::Math500 => jsonl::parse_math(path, &bytes)?,
    };
    if items.len() != b.expected_len() {
        tracing::warn!(
            "{}: {} items, the published {} set has {}",
            path.display(),
            items.len(),
            b.name(),
            b.expected_len()
        );
    }
    Ok(Dataset {
        name: b.name().to_string(),
        source: path.to_path_buf(),
        source_sha256: sha256_hex(&bytes),
        grader: b.grader(),
        protocol,
        items,
    })
}

fn read(path: &Path) -> Result<Vec<u8>, EvalError> {
    std::fs::read(path).map_err(|e| EvalError::read(path, e))
}

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_names_round_trip() {
        for b in Builtin::ALL {
            assert_eq!(Builtin::parse(b.name()), Some(b));
        }
        assert_eq!(Builtin::parse("MATH-500"), Some(Builtin::Math500));
        assert_eq!(Builtin::parse("gpqa"), Some(Builtin::GpqaDiamond));
        assert_eq!(Builtin::parse("mmlu"), None);
    }

    #[test]
    fn custom_grader_names() {
        assert_eq!(GraderKind::parse_custom("mcq").unwrap(), GraderKind::Choice);
        assert_eq!(
            GraderKind::parse_custom("exact").unwrap(),
            GraderKind::Exact
        );
        let e = GraderKind::parse_custom("fuzzy").unwrap_err().to_string();
        assert!(e.contains("math, mcq or exact"), "{e}");
    }

    #[test]
    fn sha256_of_known_input() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
