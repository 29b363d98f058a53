//! The same load point found in two result files: what `servebench report DIR1 DIR2 …` does when the folders it
//! merges overlap (two shards that ran the same point, a folder passed twice under two names, a point rerun
//! into another folder).
//!
//! Two runs are the same point when they come from different files and agree on the tool, backend, model,
//! dataset, tensor-parallel size, input and output lengths, range ratio, request rate, concurrency, prompt
//! count, SLO and the server measured (`measured_server.command`, when recorded). Runs appended to one file
//! are repeats a user asked for and are not duplicates.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::error::ReportError;
use crate::run::RunSummary;

/// What to do with duplicates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DuplicatePolicy {
    /// Keep every row; say which files hold the same point (a note in the report and on stderr).
    #[default]
    Warn,
    /// Refuse to write the report.
    Error,
    /// Keep the run of the most recently modified file; leave the others out (with a note).
    Newest,
}

impl std::str::FromStr for DuplicatePolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "warn" => Ok(DuplicatePolicy::Warn),
            "error" => Ok(DuplicatePolicy::Error),
            "newest" => Ok(DuplicatePolicy::Newest),
            other => Err(format!(
                "unknown duplicate policy {other:?}: use warn, error or newest"
            )),
        }
    }
}

/// One point found in several files: indexes into the collection's runs, in collection order.
#[derive(Debug, Clone, PartialEq)]
pub struct Duplicate {
    pub point: String,
    pub runs: Vec<usize>,
}

fn num(x: Option<f64>) -> String {
    x.map(|v| format!("{v}")).unwrap_or_else(|| "-".into())
}

/// The identity of a run's point (see the module documentation).
fn point_key(r: &RunSummary) -> String {
    [
        r.tool.map(|t| t.as_str().to_string()).unwrap_or_default(),
        r.backend.clone().unwrap_or_default(),
        r.model.clone().unwrap_or_default(),
        r.dataset_name.clone().unwrap_or_default(),
        num(r.tp),
        num(r.random_input_len),
        num(r.random_output_len),
        num(r.random_range_ratio),
        num(r.request_rate),
        num(r.max_concurrency),
        num(r.num_prompts),
        r.slo.clone().unwrap_or_default(),
        r.server.clone().unwrap_or_default(),
    ]
    .join("\u{1f}")
}

fn label(r: &RunSummary) -> String {
    format!(
        "in {} out {} ratio {} conc {}{}{}",
        num(r.random_input_len),
        num(r.random_output_len),
        num(r.random_range_ratio),
        num(r.max_concurrency),
        match r.request_rate {
            Some(x) if x.is_finite() => format!(" rate {x}"),
            _ => String::new(),
        },
        r.model
            .as_deref()
            .map(|m| format!(" model {m}"))
            .unwrap_or_default()
    )
}

/// The points that appear in more than one file.
pub fn find_duplicates(runs: &[RunSummary]) -> Vec<Duplicate> {
    let mut by_key: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, r) in runs.iter().enumerate() {
        by_key.entry(point_key(r)).or_default().push(i);
    }
    let mut out: Vec<Duplicate> = by_key
        .into_values()
        .filter(|ix| {
            let first = &runs[ix[0]].file;
            ix.iter().any(|&i| &runs[i].file != first)
        })
        .map(|runs_ix| Duplicate {
            point: label(&runs[runs_ix[0]]),
            runs: runs_ix,
        })
        .collect();
    out.sort_by_key(|d| d.runs[0]);
    out
}

fn files(runs: &[RunSummary], ix: &[usize]) -> String {
    ix.iter()
        .map(|&i| runs[i].file.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The note for one duplicate kept as several rows.
pub fn warning(runs: &[RunSummary], d: &Duplicate) -> String {
    format!(
        "duplicate point ({}): {} results in {}; every one is a row of summary.csv — if they are the same run \
         merged twice (overlapping shards or folders), pass --on-duplicate newest to keep one or --on-duplicate \
         error to refuse",
        d.point,
        d.runs.len(),
        files(runs, &d.runs)
    )
}

fn modified(p: &PathBuf) -> Option<std::time::SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

/// Applies `policy` to `runs`: `Warn` returns a note per duplicate and keeps every run; `Error` fails naming the
/// files; `Newest` keeps, per duplicate, the runs of the most recently modified file (ties: the last path) and
/// returns a note saying what was left out.
pub fn resolve(
    runs: &mut Vec<RunSummary>,
    policy: DuplicatePolicy,
) -> Result<Vec<String>, ReportError> {
    let dups = find_duplicates(runs);
    if dups.is_empty() {
        return Ok(Vec::new());
    }
    match policy {
        DuplicatePolicy::Warn => Ok(dups.iter().map(|d| warning(runs, d)).collect()),
        DuplicatePolicy::Error => {
            let list: Vec<String> = dups
                .iter()
                .map(|d| format!("{} in {}", d.point, files(runs, &d.runs)))
                .collect();
            Err(ReportError::Invalid(format!(
                "{} point(s) found in more than one result file: {}. Merge folders that hold disjoint points \
                 (e.g. the shards of one plan), or pass --on-duplicate warn (keep every row) or newest (keep the \
                 most recently written)",
                dups.len(),
                list.join("; ")
            )))
        }
        DuplicatePolicy::Newest => {
            let mut drop = vec![false; runs.len()];
            let mut notes = Vec::new();
            for d in &dups {
                let keep = d
                    .runs
                    .iter()
                    .map(|&i| &runs[i].file)
                    .max_by(|a, b| (modified(a), a).cmp(&(modified(b), b)))
                    .cloned()
                    .unwrap_or_default();
                let left: Vec<usize> = d
                    .runs
                    .iter()
                    .copied()
                    .filter(|&i| runs[i].file != keep)
                    .collect();
                for &i in &left {
                    drop[i] = true;
                }
                notes.push(format!(
                    "duplicate point ({}): kept {} (most recently written), left out {}",
                    d.point,
                    keep.display(),
                    files(runs, &left)
                ));
            }
            let mut i = 0;
            runs.retain(|_| {
                i += 1;
                !drop[i - 1]
            });
            Ok(notes)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::SourceTool;
    use std::path::Path;

    fn run(file: &str, conc: f64) -> RunSummary {
        RunSummary {
            tool: Some(SourceTool::Servebench),
            file: PathBuf::from(file),
            line: 1,
            runs_in_file: 1,
            backend: Some("sglang".into()),
            model: Some("m".into()),
            random_input_len: Some(128.0),
            random_output_len: Some(16.0),
            random_range_ratio: Some(1.0),
            max_concurrency: Some(conc),
            num_prompts: Some(conc),
            ..Default::default()
        }
    }

    #[test]
    fn same_point_in_two_files_is_a_duplicate_but_repeats_in_one_file_are_not() {
        let mut runs = vec![
            run("a/x.json", 1.0),
            run("b/x.json", 1.0),
            run("a/y.json", 2.0),
            run("a/y.json", 2.0),
            run("b/z.json", 4.0),
        ];
        // Another model at the same point is another deployment, not a duplicate.
        let mut other = run("c/x.json", 1.0);
        other.model = Some("m-int8".into());
        runs.push(other);
        let d = find_duplicates(&runs);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].runs, vec![0, 1]);
        assert!(d[0].point.contains("conc 1"), "{}", d[0].point);

        let notes = resolve(&mut runs.clone(), DuplicatePolicy::Warn).unwrap();
        assert_eq!(notes.len(), 1);
        assert!(notes[0].contains("a/x.json, b/x.json"), "{}", notes[0]);

        let err = resolve(&mut runs.clone(), DuplicatePolicy::Error)
            .unwrap_err()
            .to_string();
        assert!(err.contains("a/x.json, b/x.json") && err.contains("--on-duplicate"));

        // Files that do not exist have no time: the last path wins.
        let mut kept = runs.clone();
        let notes = resolve(&mut kept, DuplicatePolicy::Newest).unwrap();
        assert_eq!(kept.len(), runs.len() - 1);
        assert!(kept.iter().all(|r| r.file != Path::new("a/x.json")));
        assert!(notes[0].contains("kept b/x.json") && notes[0].contains("left out a/x.json"));
    }

    #[test]
    fn another_server_command_is_another_point() {
        let mut a = run("a/x.json", 1.0);
        let mut b = run("b/x.json", 1.0);
        a.server = Some("sglang --quantization fp8".into());
        b.server = Some("sglang --quantization w8a8_int8".into());
        assert!(find_duplicates(&[a, b]).is_empty());
    }

    #[test]
    fn newest_keeps_the_most_recently_written_file() {
        let dir = tempfile::tempdir().unwrap();
        let (old, new) = (dir.path().join("old.json"), dir.path().join("new.json"));
        std::fs::write(&new, "{}").unwrap();
        std::fs::write(&old, "{}").unwrap();
        let t = std::time::SystemTime::now();
        let set = |p: &PathBuf, t| {
            std::fs::File::options()
                .write(true)
                .open(p)
                .unwrap()
                .set_modified(t)
                .unwrap()
        };
        set(&old, t - std::time::Duration::from_secs(3600));
        set(&new, t);
        let mut runs = vec![
            run(new.to_str().unwrap(), 8.0),
            run(old.to_str().unwrap(), 8.0),
        ];
        resolve(&mut runs, DuplicatePolicy::Newest).unwrap();
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[0].file, new);
    }

    #[test]
    fn policy_names() {
        assert_eq!("warn".parse(), Ok(DuplicatePolicy::Warn));
        assert_eq!("error".parse(), Ok(DuplicatePolicy::Error));
        assert_eq!("newest".parse(), Ok(DuplicatePolicy::Newest));
        assert!("first".parse::<DuplicatePolicy>().is_err());
    }
}
