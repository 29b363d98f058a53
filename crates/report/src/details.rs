//! Per-request records (`*.details.jsonl`): one object per request with at least `ttft_ms`,
//! `e2e_ms` and `error`; used for the TTFT and E2E distributions of one point.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::error::ReportError;
use crate::lenient_json::{as_f64, parse_values};

/// File-name suffix of per-request record files.
pub const DETAILS_SUFFIX: &str = ".details.jsonl";

/// Latencies of the successful requests of one run, in milliseconds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RequestSamples {
    pub ttft_ms: Vec<f64>,
    pub e2e_ms: Vec<f64>,
    /// Requests with an error (left out of the latencies).
    pub failed: usize,
    /// Where the samples came from, for captions.
    pub source: String,
}

fn error_is_set(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => false,
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Bool(b)) => *b,
        Some(_) => true,
    }
}

/// Reads a per-request records file. Lines that are not JSON are skipped; their count goes
/// into `notes`.
pub fn read_details(path: &Path, notes: &mut Vec<String>) -> Result<RequestSamples, ReportError> {
    let text = std::fs::read_to_string(path).map_err(|e| ReportError::read(path, e))?;
    let parsed = parse_values(&text);
    for p in &parsed.problems {
        notes.push(format!("{}: {p}", path.display()));
    }
    let mut samples = RequestSamples {
        source: path.display().to_string(),
        ..Default::default()
    };
    for lv in &parsed.values {
        let Some(obj) = lv.value.as_object() else {
            continue;
        };
        if error_is_set(obj.get("error")) {
            samples.failed += 1;
            continue;
        }
        let num = |keys: &[&str]| keys.iter().find_map(|k| obj.get(*k).and_then(as_f64));
        if let Some(t) = num(&["ttft_ms"]).filter(|v| v.is_finite()) {
            samples.ttft_ms.push(t);
        }
        if let Some(e) = num(&["e2e_ms", "e2e_latency_ms", "latency_ms"]).filter(|v| v.is_finite())
        {
            samples.e2e_ms.push(e);
        }
    }
    Ok(samples)
}

/// How a details file names the run it belongs to: the result file's stem, optionally
/// followed by a concurrency tag (`_c64`, `-c64`, `.c64`, `_conc64`, `_concurrency64`).
#[derive(Debug, Clone, PartialEq)]
pub struct DetailsName {
    pub path: PathBuf,
    pub stem: String,
    pub concurrency: Option<f64>,
    /// Request rate tag (`_r{rate}`), for open-loop points.
    pub rate: Option<f64>,
}

impl DetailsName {
    /// `None` when `path` is not a `*.details.jsonl` file. Understands the names
    /// `servebench sweep` gives: `{stem}_c{conc}.details.jsonl` and, for open-loop points,
    /// `{stem}_c{conc}_r{rate}.details.jsonl`.
    pub fn parse(path: &Path) -> Option<Self> {
        let name = path.file_name()?.to_str()?;
        let base = name.strip_suffix(DETAILS_SUFFIX)?;
        let plain = DetailsName {
            path: path.to_path_buf(),
            stem: base.to_string(),
            concurrency: None,
            rate: None,
        };
        let (rest, rate) = match base.rfind('_') {
            Some(i) => match rate_tag(&base[i + 1..]) {
                Some(r) => (&base[..i], Some(r)),
                None => (base, None),
            },
            None => (base, None),
        };
        for sep in ['_', '-', '.'] {
            if let Some(idx) = rest.rfind(sep) {
                if let Some(c) = concurrency_tag(&rest[idx + 1..]) {
                    return Some(DetailsName {
                        stem: rest[..idx].to_string(),
                        concurrency: Some(c),
                        rate,
                        ..plain
                    });
                }
            }
        }
        Some(plain)
    }
}

/// `c64`, `conc64`, `concurrency64` → 64.
fn concurrency_tag(tag: &str) -> Option<f64> {
    ["concurrency", "conc", "c"]
        .iter()
        .find_map(|p| tag.strip_prefix(p))
        .filter(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
        .and_then(|n| n.parse::<f64>().ok())
}

/// `r2.5` → 2.5 (a request rate in requests per second).
fn rate_tag(tag: &str) -> Option<f64> {
    let n = tag.strip_prefix('r')?;
    if n.is_empty() || !n.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    n.parse::<f64>().ok().filter(|v| v.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn details_names() {
        let d =
            DetailsName::parse(Path::new("/r/tp1_in100_out10_ratio0.5_c64.details.jsonl")).unwrap();
        assert_eq!(d.stem, "tp1_in100_out10_ratio0.5");
        assert_eq!(d.concurrency, Some(64.0));
        let d = DetailsName::parse(Path::new("run.details.jsonl")).unwrap();
        assert_eq!(d.stem, "run");
        assert_eq!(d.concurrency, None);
        let d = DetailsName::parse(Path::new("tp1_in100_out10_ratio0.5.details.jsonl")).unwrap();
        assert_eq!(d.stem, "tp1_in100_out10_ratio0.5");
        assert_eq!(d.concurrency, None);
        let d = DetailsName::parse(Path::new("a-concurrency8.details.jsonl")).unwrap();
        assert_eq!((d.stem.as_str(), d.concurrency), ("a", Some(8.0)));
        assert!(DetailsName::parse(Path::new("a.jsonl")).is_none());
        let d = DetailsName::parse(Path::new(
            "tp8_in3500_out1500_ratio0.7_c32_r2.5.details.jsonl",
        ))
        .unwrap();
        assert_eq!(d.stem, "tp8_in3500_out1500_ratio0.7");
        assert_eq!((d.concurrency, d.rate), (Some(32.0), Some(2.5)));
        // A rate tag without a concurrency tag is just part of the stem.
        let d = DetailsName::parse(Path::new("x_r2.details.jsonl")).unwrap();
        assert_eq!(
            (d.stem.as_str(), d.concurrency, d.rate),
            ("x_r2", None, None)
        );
    }

    #[test]
    fn reads_samples_and_skips_failures() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.details.jsonl");
        std::fs::write(
            &p,
            "{\"ttft_ms\": 10.5, \"e2e_ms\": 100.0, \"error\": null}\n\
             {\"ttft_ms\": null, \"e2e_ms\": null, \"error\": \"timeout\"}\n\
             {\"ttft_ms\": 12.0, \"e2e_ms\": 120.0, \"error\": \"\"}\n\
             {\"ttft_ms\": 13\n",
        )
        .unwrap();
        let mut notes = Vec::new();
        let s = read_details(&p, &mut notes).unwrap();
        assert_eq!(s.ttft_ms, vec![10.5, 12.0]);
        assert_eq!(s.e2e_ms, vec![100.0, 120.0]);
        assert_eq!(s.failed, 1);
        assert_eq!(notes.len(), 1);
        assert!(notes[0].contains("line 4"), "{}", notes[0]);
    }
}
