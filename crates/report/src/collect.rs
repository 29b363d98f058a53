//! Finding and reading everything under the input folders: result files (runs), per-request
//! record files (attached to their runs) and eval outputs.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::details::{DetailsName, DETAILS_SUFFIX};
use crate::duplicates::{resolve, DuplicatePolicy};
use crate::error::ReportError;
use crate::eval_files::{is_eval_report, EvalReport, EvalSet, PREDICTIONS_SUFFIX, REPORT_SUFFIX};
use crate::lenient_json::parse_values;
use crate::run::{file_stem, RunSummary};

/// Everything found under the input folders.
#[derive(Debug, Clone, Default)]
pub struct Collection {
    pub dirs: Vec<PathBuf>,
    /// Runs in file order (files sorted by path, runs by line).
    pub runs: Vec<RunSummary>,
    pub evals: Vec<EvalSet>,
    /// Files skipped and lines not read, for the report's notes section and stderr.
    pub notes: Vec<String>,
}

impl Collection {
    /// True when any run came from the simulated engine.
    pub fn any_simulated(&self) -> bool {
        self.runs.iter().any(|r| r.simulated)
            || self
                .evals
                .iter()
                .any(|e| e.report.as_ref().is_some_and(|r| r.simulated))
    }
}

/// Walks `dirs` recursively (hidden entries and symlinked folders skipped) and reads every
/// `*.json` / `*.jsonl` file: objects with serving-benchmark keys become runs (every line of an
/// appended file is a run), eval reports and `*_predictions.jsonl` become eval sets,
/// `*.details.jsonl` files are attached to the run they belong to. Files that hold neither
/// are skipped with a note. Fails when a folder is missing or nothing at all is found.
pub fn collect(dirs: &[PathBuf]) -> Result<Collection, ReportError> {
    collect_with(dirs, DuplicatePolicy::Warn)
}

/// [`collect`], with what to do when the same point is found in several files ([`crate::duplicates`]):
/// a note per duplicate (`Warn`), an error, or keep the newest file's run.
pub fn collect_with(dirs: &[PathBuf], policy: DuplicatePolicy) -> Result<Collection, ReportError> {
    let mut files = BTreeSet::new();
    for dir in dirs {
        if !dir.is_dir() {
            return Err(ReportError::NotADir { path: dir.clone() });
        }
        walk(dir, &mut files)?;
    }
    let mut c = Collection {
        dirs: dirs.to_vec(),
        ..Default::default()
    };
    let mut details = Vec::new();
    let mut evals: BTreeMap<(PathBuf, String), EvalSet> = BTreeMap::new();
    for path in files {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        if let Some(d) = DetailsName::parse(&path) {
            details.push(d);
            continue;
        }
        if let Some(key) = name.strip_suffix(PREDICTIONS_SUFFIX) {
            eval_entry(&mut evals, &dir, key).predictions = Some(path.clone());
            continue;
        }
        if !(name.ends_with(".json") || name.ends_with(".jsonl")) {
            continue;
        }
        // Files servebench itself writes next to results that are not results: no note needed.
        if name == "env.json"
            || name.ends_with("_settings.json")
            || name == "sweep_failures.jsonl"
            || name.ends_with(".server_metrics.jsonl")
            || name == "deployment_done.json"
        {
            continue;
        }
        read_result_file(&path, &name, &dir, &mut c, &mut evals)?;
    }
    attach_details(&mut c.runs, details, &mut c.notes);
    let dup_notes = resolve(&mut c.runs, policy)?;
    c.notes.extend(dup_notes);
    c.evals = evals.into_values().collect();
    if c.runs.is_empty() && c.evals.is_empty() {
        let dirs = dirs
            .iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(", ");
        let hint = if c.notes.is_empty() {
            String::new()
        } else {
            format!("; skipped: {}", c.notes.join("; "))
        };
        return Err(ReportError::NothingFound { dirs, hint });
    }
    Ok(c)
}

fn eval_entry<'a>(
    evals: &'a mut BTreeMap<(PathBuf, String), EvalSet>,
    dir: &Path,
    key: &str,
) -> &'a mut EvalSet {
    evals
        .entry((dir.to_path_buf(), key.to_string()))
        .or_insert_with(|| EvalSet {
            dir: dir.to_path_buf(),
            key: key.to_string(),
            report: None,
            report_file: None,
            predictions: None,
        })
}

fn read_result_file(
    path: &Path,
    name: &str,
    dir: &Path,
    c: &mut Collection,
    evals: &mut BTreeMap<(PathBuf, String), EvalSet>,
) -> Result<(), ReportError> {
    let bytes = std::fs::read(path).map_err(|e| ReportError::read(path, e))?;
    let Ok(text) = String::from_utf8(bytes) else {
        c.notes
            .push(format!("{}: not UTF-8 text; skipped", path.display()));
        return Ok(());
    };
    let parsed = parse_values(&text);
    for p in &parsed.problems {
        c.notes.push(format!("{}: {p}", path.display()));
    }
    let first_run = c.runs.len();
    let mut other = 0usize;
    for lv in &parsed.values {
        let Some(obj) = lv.value.as_object() else {
            other += 1;
            continue;
        };
        if let Some(run) = RunSummary::from_object(obj, path, lv.line) {
            c.runs.push(run);
        } else if is_eval_report(obj) {
            let report = EvalReport::from_object(obj);
            let key = name
                .strip_suffix(REPORT_SUFFIX)
                .map(str::to_string)
                .or_else(|| report.dataset.clone())
                .unwrap_or_else(|| file_stem(path));
            let set = eval_entry(evals, dir, &key);
            set.report = Some(report);
            set.report_file = Some(path.to_path_buf());
        } else {
            other += 1;
        }
    }
    let runs_here = c.runs.len() - first_run;
    for run in &mut c.runs[first_run..] {
        run.runs_in_file = runs_here;
    }
    if other > 0 {
        let what = if other == parsed.values.len() {
            "holds no result objects".to_string()
        } else {
            format!("{other} value(s) without result keys skipped")
        };
        c.notes.push(format!(
            "{}: {what} (a result has keys such as request_throughput, output_throughput, median_ttft_ms); ignored",
            path.display()
        ));
    }
    Ok(())
}

fn walk(dir: &Path, out: &mut BTreeSet<PathBuf>) -> Result<(), ReportError> {
    let entries = std::fs::read_dir(dir).map_err(|e| ReportError::read(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| ReportError::read(dir, e))?;
        let path = entry.path();
        let hidden = entry.file_name().to_string_lossy().starts_with('.');
        if hidden {
            continue;
        }
        let meta = std::fs::symlink_metadata(&path).map_err(|e| ReportError::read(&path, e))?;
        if meta.is_dir() {
            walk(&path, out)?;
        } else if meta.is_file() || (meta.file_type().is_symlink() && path.is_file()) {
            out.insert(path);
        }
    }
    Ok(())
}

/// Gives each details file to its run: same folder, same stem; with a concurrency tag in the
/// name, the run with that `max_concurrency` (and request rate, with a rate tag); otherwise the
/// file's only run, or its last one.
fn attach_details(runs: &mut [RunSummary], details: Vec<DetailsName>, notes: &mut Vec<String>) {
    let named: Vec<PathBuf> = runs.iter().filter_map(|r| r.details.clone()).collect();
    let same = |a: &Path, b: &Path| {
        a == b
            || matches!((std::fs::canonicalize(a), std::fs::canonicalize(b)), (Ok(x), Ok(y)) if x == y)
    };
    for d in details {
        // Already named by its result's `details_file`.
        if named.iter().any(|n| same(n, &d.path)) {
            continue;
        }
        let dir = d.path.parent().map(Path::to_path_buf).unwrap_or_default();
        let candidates: Vec<usize> = runs
            .iter()
            .enumerate()
            .filter(|(_, r)| {
                r.details.is_none()
                    && r.file.parent() == Some(dir.as_path())
                    && file_stem(&r.file) == d.stem
            })
            .map(|(i, _)| i)
            .collect();
        let chosen = match d.concurrency {
            Some(c) => candidates.iter().rev().copied().find(|&i| {
                runs[i].max_concurrency == Some(c)
                    && (d.rate.is_none() || runs[i].request_rate == d.rate)
            }),
            None => {
                if candidates.len() > 1 {
                    notes.push(format!(
                        "{}: the result file holds {} runs; records attached to the last one (name records {}_c<N>{} to pick a run)",
                        d.path.display(),
                        candidates.len(),
                        d.stem,
                        DETAILS_SUFFIX
                    ));
                }
                candidates.last().copied()
            }
        };
        match chosen {
            Some(i) => runs[i].details = Some(d.path),
            None => notes.push(format!(
                "{}: no result run matches these per-request records; not used",
                d.path.display()
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) {
        let p = dir.join(name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(p, text).unwrap();
    }

    #[test]
    fn collects_runs_evals_and_details() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        write(
            root,
            "sweep/tp1_in100_out10_ratio0.5.json",
            "{\"max_concurrency\": 1, \"output_throughput\": 10}\n{\"max_concurrency\": 4, \"output_throughput\": 30}\n",
        );
        write(
            root,
            "sweep/tp1_in100_out10_ratio0.5_c4.details.jsonl",
            "{\"ttft_ms\": 1, \"e2e_ms\": 2, \"error\": null}\n",
        );
        write(root, "sweep/orphan.details.jsonl", "{}\n");
        write(root, "notes.json", "{\"hello\": 1}\n");
        write(root, "README.md", "# nothing\n");
        write(root, ".hidden/x.json", "{\"output_throughput\": 1}\n");
        write(
            root,
            "eval/gsm8k_report.json",
            "{\"model\":\"m\",\"dataset\":\"gsm8k\",\"score\":0.5}",
        );
        write(
            root,
            "eval/gsm8k_predictions.jsonl",
            "{\"id\":\"1\",\"correct\":true}\n",
        );
        let c = collect(&[root.to_path_buf()]).unwrap();
        assert_eq!(c.runs.len(), 2);
        assert_eq!(c.runs[0].runs_in_file, 2);
        assert_eq!(c.runs[0].details, None);
        assert!(c.runs[1]
            .details
            .as_ref()
            .unwrap()
            .ends_with("tp1_in100_out10_ratio0.5_c4.details.jsonl"));
        assert_eq!(c.runs[1].random_input_len, Some(100.0));
        assert_eq!(c.evals.len(), 1);
        assert_eq!(c.evals[0].key, "gsm8k");
        assert!(c.evals[0].report.is_some());
        assert!(c.evals[0].predictions.is_some());
        assert!(
            c.notes
                .iter()
                .any(|n| n.contains("notes.json") && n.contains("no result objects")),
            "{:?}",
            c.notes
        );
        assert!(
            c.notes.iter().any(|n| n.contains("orphan.details.jsonl")),
            "{:?}",
            c.notes
        );
        assert!(!c.notes.iter().any(|n| n.contains(".hidden")));
    }

    #[test]
    fn details_with_rate_tags_go_to_the_open_loop_run() {
        let d = tempfile::tempdir().unwrap();
        write(
            d.path(),
            "tp1_in10_out5_ratio1.json",
            "{\"max_concurrency\": 8, \"request_rate\": 2.5, \"output_throughput\": 1}\n\
             {\"max_concurrency\": 8, \"request_rate\": 5, \"output_throughput\": 2}\n\
             {\"max_concurrency\": 8, \"request_rate\": \"inf\", \"output_throughput\": 3}\n",
        );
        write(
            d.path(),
            "tp1_in10_out5_ratio1_c8_r2.5.details.jsonl",
            "{}\n",
        );
        write(d.path(), "tp1_in10_out5_ratio1_c8.details.jsonl", "{}\n");
        let c = collect(&[d.path().to_path_buf()]).unwrap();
        assert!(c.notes.is_empty(), "{:?}", c.notes);
        let names: Vec<_> = c
            .runs
            .iter()
            .map(|r| {
                r.details
                    .as_ref()
                    .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            })
            .collect();
        assert_eq!(
            names,
            vec![
                Some("tp1_in10_out5_ratio1_c8_r2.5.details.jsonl".to_string()),
                None,
                Some("tp1_in10_out5_ratio1_c8.details.jsonl".to_string()),
            ]
        );
    }

    #[test]
    fn missing_folder_and_empty_folder_fail_with_reasons() {
        let d = tempfile::tempdir().unwrap();
        let err = collect(&[d.path().join("nope")]).unwrap_err();
        assert!(err.to_string().contains("is not a folder"), "{err}");
        write(d.path(), "x.json", "[1, 2]");
        let err = collect(&[d.path().to_path_buf()]).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("no result files found"), "{msg}");
        assert!(msg.contains("x.json"), "{msg}");
    }
}
