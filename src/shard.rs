//! `--shard I/N`: one of N disjoint parts of a sweep's points or of a study's deployments, so N machines (N
//! Kubernetes Indexed-Job completions) each run one part into their own folder or into one shared folder.
//!
//! The rule (docs/scale-out.md): the index `I` is **0-based**, from 0 to N − 1, as Kubernetes'
//! `JOB_COMPLETION_INDEX`; item `k` (0-based, in plan order) belongs to shard `k mod N`. `auto/N` reads the index
//! from `$JOB_COMPLETION_INDEX`. Every item is in exactly one shard and the shards together are the whole plan.

use std::fmt;

/// The environment variable Kubernetes sets in each completion of an Indexed Job.
pub const INDEX_VAR: &str = "JOB_COMPLETION_INDEX";

/// The most shards a plan may be split into.
pub const MAX_SHARDS: usize = 100_000;

/// One shard of N (0-based index).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ShardError {
    #[error("--shard {0:?}: expected I/N with I the 0-based shard index (0 to N-1) and N the number of shards, e.g. 0/4, or auto/N to read I from ${INDEX_VAR}")]
    Syntax(String),
    #[error("--shard {spec:?}: the number of shards must be from 1 to {MAX_SHARDS}")]
    Count { spec: String },
    #[error("--shard {spec:?}: shard index {index} is out of range: with {count} shards the index is 0 to {} (0-based, as ${INDEX_VAR})", count - 1)]
    Range {
        spec: String,
        index: usize,
        count: usize,
    },
    #[error("--shard auto/{count}: ${INDEX_VAR} is not set (it is set by a Kubernetes Indexed Job); give the index, e.g. --shard 0/{count}")]
    NoIndexVar { count: usize },
    #[error("--shard auto/{count}: ${INDEX_VAR} is {value:?}, not a shard index (0 to {})", count - 1)]
    BadIndexVar { count: usize, value: String },
}

impl Shard {
    /// The whole plan as one shard.
    pub const ALL: Shard = Shard { index: 0, count: 1 };

    /// Parses `I/N` or `auto/N`; `index_var` is the value of `$JOB_COMPLETION_INDEX` (used by `auto`).
    pub fn parse_with(spec: &str, index_var: Option<&str>) -> Result<Shard, ShardError> {
        let syntax = || ShardError::Syntax(spec.to_string());
        let (i, n) = spec.trim().split_once('/').ok_or_else(syntax)?;
        let count: usize = n.trim().parse().map_err(|_| syntax())?;
        if count == 0 || count > MAX_SHARDS {
            return Err(ShardError::Count {
                spec: spec.to_string(),
            });
        }
        let index = match i.trim() {
            "auto" => {
                let v = index_var.ok_or(ShardError::NoIndexVar { count })?;
                v.trim()
                    .parse::<usize>()
                    .map_err(|_| ShardError::BadIndexVar {
                        count,
                        value: v.to_string(),
                    })?
            }
            s => s.parse::<usize>().map_err(|_| syntax())?,
        };
        if index >= count {
            return Err(ShardError::Range {
                spec: spec.to_string(),
                index,
                count,
            });
        }
        Ok(Shard { index, count })
    }

    /// Parses `I/N` or `auto/N`, `auto` reading `$JOB_COMPLETION_INDEX`.
    pub fn parse(spec: &str) -> Result<Shard, ShardError> {
        let var = std::env::var(INDEX_VAR).ok();
        Shard::parse_with(spec, var.as_deref())
    }

    /// True when item `k` (0-based, plan order) is in this shard.
    pub fn owns(&self, k: usize) -> bool {
        k % self.count == self.index
    }

    /// True when this is the whole plan (1 shard).
    pub fn is_all(&self) -> bool {
        self.count == 1
    }

    /// The items of this shard, in plan order.
    pub fn select<T: Clone>(&self, items: &[T]) -> Vec<T> {
        items
            .iter()
            .enumerate()
            .filter(|(k, _)| self.owns(*k))
            .map(|(_, x)| x.clone())
            .collect()
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// For clap: `--shard I/N`.
pub fn parse_flag(s: &str) -> Result<Shard, String> {
    Shard::parse(s).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_index_and_count() {
        assert_eq!(
            Shard::parse_with("2/5", None),
            Ok(Shard { index: 2, count: 5 })
        );
        assert_eq!(Shard::parse_with(" 0 / 1 ", None), Ok(Shard::ALL));
        assert_eq!(
            Shard::parse_with("auto/4", Some("3")),
            Ok(Shard { index: 3, count: 4 })
        );
        assert_eq!(Shard { index: 1, count: 3 }.to_string(), "1/3");
    }

    #[test]
    fn bad_specs_say_what_is_wrong() {
        let err = |s: &str, var: Option<&str>| Shard::parse_with(s, var).unwrap_err().to_string();
        assert!(
            err("3", None).contains("expected I/N"),
            "{}",
            err("3", None)
        );
        assert!(err("a/3", None).contains("expected I/N"));
        assert!(err("1/x", None).contains("expected I/N"));
        assert!(err("-1/3", None).contains("expected I/N"));
        assert!(err("0/0", None).contains("from 1 to"));
        assert!(err("0/1000000", None).contains("from 1 to"));
        let e = err("3/3", None);
        assert!(e.contains("out of range") && e.contains("0 to 2"), "{e}");
        assert!(err("auto/3", None).contains("not set"));
        assert!(err("auto/3", Some("x")).contains("not a shard index"));
        assert!(err("auto/3", Some("3")).contains("out of range"));
    }

    #[test]
    fn every_item_is_in_exactly_one_shard_and_the_union_is_the_plan() {
        for n in 1..=7 {
            for items in 0..=20usize {
                let all: Vec<usize> = (0..items).collect();
                let mut seen = vec![0u32; items];
                for i in 0..n {
                    let s = Shard { index: i, count: n };
                    let part = s.select(&all);
                    assert!(part.windows(2).all(|w| w[0] < w[1]), "plan order");
                    for k in part {
                        seen[k] += 1;
                    }
                }
                assert!(seen.iter().all(|&c| c == 1), "n={n} items={items}");
            }
        }
        // The documented rule: item k goes to shard k mod N.
        let s = Shard { index: 1, count: 3 };
        assert_eq!(s.select(&[0, 1, 2, 3, 4, 5, 6, 7]), vec![1, 4, 7]);
    }
}
