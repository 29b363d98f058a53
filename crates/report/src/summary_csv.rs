//! `summary.csv`: the seed collector's 24 columns first, in its order, then extra columns;
//! rows sorted by configured concurrency, then input length, output length, range ratio.

use std::path::Path;

use crate::error::ReportError;
use crate::numfmt;
use crate::run::{OrdF64, RunSummary};

/// The seed collector's columns, exactly, in its order.
pub const SEED_COLUMNS: [&str; 24] = [
    "prompt_num",
    "concurrency",
    "random_input_len",
    "random_output_len",
    "total_input_tokens",
    "total_output_tokens",
    "duration",
    "request_throughput",
    "mean_e2e_latency_ms",
    "median_e2e_latency_ms",
    "std_e2e_latency_ms",
    "p99_e2e_latency_ms",
    "mean_ttft_ms",
    "median_ttft_ms",
    "p99_ttft_ms",
    "mean_tpot_ms",
    "median_tpot_ms",
    "p99_tpot_ms",
    "mean_itl_ms",
    "median_itl_ms",
    "p99_itl_ms",
    "input_output_throughput(tok/s)",
    "input_throughput(tok/s)",
    "output_throughput(tok/s)",
];

fn seed_values(r: &RunSummary) -> [Option<f64>; 24] {
    [
        r.prompt_num(),
        r.max_concurrency,
        r.random_input_len,
        r.random_output_len,
        r.total_input_tokens,
        r.total_output_tokens,
        r.duration,
        r.request_throughput,
        r.e2e.mean,
        r.e2e.median,
        r.e2e.std,
        r.e2e.p99,
        r.ttft.mean,
        r.ttft.median,
        r.ttft.p99,
        r.tpot.mean,
        r.tpot.median,
        r.tpot.p99,
        r.itl.mean,
        r.itl.median,
        r.itl.p99,
        r.total_throughput,
        r.input_throughput,
        r.output_throughput,
    ]
}

enum Getter {
    Num(fn(&RunSummary) -> Option<f64>),
    Text(fn(&RunSummary) -> String),
}

struct Extra {
    name: &'static str,
    get: Getter,
    /// Written only when some run has a value.
    only_if_present: bool,
}

const fn num(name: &'static str, f: fn(&RunSummary) -> Option<f64>, opt: bool) -> Extra {
    Extra {
        name,
        get: Getter::Num(f),
        only_if_present: opt,
    }
}

const fn text(name: &'static str, f: fn(&RunSummary) -> String, opt: bool) -> Extra {
    Extra {
        name,
        get: Getter::Text(f),
        only_if_present: opt,
    }
}

const EXTRAS: &[Extra] = &[
    num("random_range_ratio", |r| r.random_range_ratio, false),
    num("completed", |r| r.completed, false),
    num("failed", |r| r.failed, false),
    num("measured_concurrency", |r| r.measured_concurrency, false),
    num("request_rate", |r| r.request_rate, false),
    num(
        "total_output_tokens_retokenized",
        |r| r.total_output_tokens_retokenized,
        false,
    ),
    num("p90_e2e_latency_ms", |r| r.e2e.p90, true),
    num("p95_e2e_latency_ms", |r| r.e2e.p95, true),
    num("p999_e2e_latency_ms", |r| r.e2e.p999, true),
    num("std_ttft_ms", |r| r.ttft.std, true),
    num("p90_ttft_ms", |r| r.ttft.p90, true),
    num("p95_ttft_ms", |r| r.ttft.p95, true),
    num("p999_ttft_ms", |r| r.ttft.p999, true),
    num("std_tpot_ms", |r| r.tpot.std, true),
    num("p90_tpot_ms", |r| r.tpot.p90, true),
    num("p95_tpot_ms", |r| r.tpot.p95, true),
    num("p999_tpot_ms", |r| r.tpot.p999, true),
    num("std_itl_ms", |r| r.itl.std, true),
    num("p90_itl_ms", |r| r.itl.p90, true),
    num("p95_itl_ms", |r| r.itl.p95, true),
    num("p999_itl_ms", |r| r.itl.p999, true),
    text("slo", |r| r.slo.clone().unwrap_or_default(), true),
    num("slo_attainment", |r| r.slo_attainment, true),
    num("slo_attainment_target", |r| r.slo_attainment_target, true),
    num("slo_good_requests", |r| r.slo_good_requests, true),
    num("goodput", |r| r.goodput, true),
    text(
        "slo_met",
        |r| r.slo_met.map(|m| m.to_string()).unwrap_or_default(),
        true,
    ),
    num("tp", |r| r.tp, true),
    text("backend", |r| r.backend.clone().unwrap_or_default(), true),
    text("model", |r| r.model.clone().unwrap_or_default(), true),
    text(
        "tool",
        |r| r.tool.map(|t| t.as_str().to_string()).unwrap_or_default(),
        false,
    ),
    text("simulated", |r| r.simulated.to_string(), false),
    text("file", |r| r.file.display().to_string(), false),
    text("line", |r| r.line.to_string(), false),
];

/// Row order of the summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortKey {
    /// Configured concurrency, then input length, output length, range ratio (the default).
    #[default]
    Concurrency,
    /// Input length, output length, range ratio, then concurrency (one block per curve).
    Setting,
    /// The order the runs were found in (file path, then line).
    File,
}

impl std::str::FromStr for SortKey {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "concurrency" => Ok(SortKey::Concurrency),
            "setting" => Ok(SortKey::Setting),
            "file" => Ok(SortKey::File),
            other => Err(format!(
                "unknown sort key {other:?}: use concurrency, setting or file"
            )),
        }
    }
}

/// Sorts runs in place; ties keep file order.
pub fn sort_runs(runs: &mut [RunSummary], key: SortKey) {
    let conc = |r: &RunSummary| OrdF64(r.max_concurrency);
    let rate = |r: &RunSummary| OrdF64(r.request_rate);
    match key {
        SortKey::Concurrency => runs.sort_by(|a, b| {
            (conc(a), a.setting().sort_key(), rate(a)).cmp(&(
                conc(b),
                b.setting().sort_key(),
                rate(b),
            ))
        }),
        SortKey::Setting => runs.sort_by(|a, b| {
            (a.setting().sort_key(), conc(a), rate(a)).cmp(&(
                b.setting().sort_key(),
                conc(b),
                rate(b),
            ))
        }),
        SortKey::File => runs.sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line))),
    }
}

/// The header and rows of `summary.csv` for `runs` (in the order given).
pub fn summary_table(runs: &[RunSummary]) -> (Vec<String>, Vec<Vec<String>>) {
    let extras: Vec<&Extra> = EXTRAS
        .iter()
        .filter(|e| {
            !e.only_if_present
                || runs.iter().any(|r| match e.get {
                    Getter::Num(f) => f(r).is_some(),
                    Getter::Text(f) => !f(r).is_empty(),
                })
        })
        .collect();
    let mut header: Vec<String> = SEED_COLUMNS.iter().map(|s| s.to_string()).collect();
    header.extend(extras.iter().map(|e| e.name.to_string()));
    let rows = runs
        .iter()
        .map(|r| {
            let mut row: Vec<String> = seed_values(r).iter().map(|v| numfmt::cell(*v)).collect();
            row.extend(extras.iter().map(|e| match e.get {
                Getter::Num(f) => numfmt::cell(f(r)),
                Getter::Text(f) => f(r),
            }));
            row
        })
        .collect();
    (header, rows)
}

/// Writes `summary.csv` for `runs` (already sorted).
pub fn write_summary_csv(path: &Path, runs: &[RunSummary]) -> Result<(), ReportError> {
    let (header, rows) = summary_table(runs);
    let header: Vec<&str> = header.iter().map(|h| h.as_ref()).collect();
    write_csv(path, &header, &rows)
}

/// Writes a header and rows as CSV, flushed; errors name the file.
pub(crate) fn write_csv(
    path: &Path,
    header: &[&str],
    rows: &[Vec<String>],
) -> Result<(), ReportError> {
    let io = |e: csv::Error| {
        ReportError::write(
            path,
            match e.into_kind() {
                csv::ErrorKind::Io(io) => io,
                other => std::io::Error::other(format!("{other:?}")),
            },
        )
    };
    let mut w = csv::Writer::from_path(path).map_err(io)?;
    let guard = crate::escape::csv_cell;
    w.write_record(header.iter().map(|h| guard(h).into_owned()))
        .map_err(io)?;
    for r in rows {
        w.write_record(r.iter().map(|c| guard(c).into_owned()))
            .map_err(io)?;
    }
    w.flush().map_err(|e| ReportError::write(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::Dist;
    use std::path::PathBuf;

    fn run(conc: f64, input: f64, output: f64, ratio: f64) -> RunSummary {
        RunSummary {
            file: PathBuf::from(format!("r/{conc}.json")),
            line: 1,
            runs_in_file: 1,
            max_concurrency: Some(conc),
            random_input_len: Some(input),
            random_output_len: Some(output),
            random_range_ratio: Some(ratio),
            ..Default::default()
        }
    }

    #[test]
    fn header_starts_with_seed_columns_in_order() {
        let (header, _) = summary_table(&[run(1.0, 1.0, 1.0, 1.0)]);
        let expected = "prompt_num,concurrency,random_input_len,random_output_len,total_input_tokens,total_output_tokens,duration,request_throughput,mean_e2e_latency_ms,median_e2e_latency_ms,std_e2e_latency_ms,p99_e2e_latency_ms,mean_ttft_ms,median_ttft_ms,p99_ttft_ms,mean_tpot_ms,median_tpot_ms,p99_tpot_ms,mean_itl_ms,median_itl_ms,p99_itl_ms,input_output_throughput(tok/s),input_throughput(tok/s),output_throughput(tok/s)";
        assert_eq!(header[..24].join(","), expected);
        assert_eq!(
            header[24..].join(","),
            "random_range_ratio,completed,failed,measured_concurrency,request_rate,total_output_tokens_retokenized,tool,simulated,file,line"
        );
    }

    #[test]
    fn optional_columns_appear_when_present() {
        let mut r = run(1.0, 1.0, 1.0, 1.0);
        r.ttft = Dist {
            p90: Some(5.0),
            ..Default::default()
        };
        r.model = Some("m".into());
        let (header, rows) = summary_table(&[r]);
        let i = header.iter().position(|h| h == "p90_ttft_ms").unwrap();
        assert_eq!(rows[0][i], "5");
        assert!(header.iter().any(|h| h == "model"));
        assert!(!header.iter().any(|h| h == "p95_ttft_ms"));
    }

    #[test]
    fn sorted_by_concurrency_then_lengths_then_ratio() {
        let mut runs = vec![
            run(64.0, 3500.0, 1500.0, 0.8),
            run(8.0, 3500.0, 1500.0, 0.7),
            run(64.0, 3000.0, 400.0, 0.7),
            run(64.0, 3500.0, 1500.0, 0.7),
            RunSummary {
                max_concurrency: None,
                ..run(0.0, 1.0, 1.0, 1.0)
            },
            run(1.0, 3500.0, 1500.0, 0.7),
        ];
        sort_runs(&mut runs, SortKey::Concurrency);
        let keys: Vec<_> = runs
            .iter()
            .map(|r| (r.max_concurrency, r.random_input_len, r.random_range_ratio))
            .collect();
        assert_eq!(
            keys,
            vec![
                (Some(1.0), Some(3500.0), Some(0.7)),
                (Some(8.0), Some(3500.0), Some(0.7)),
                (Some(64.0), Some(3000.0), Some(0.7)),
                (Some(64.0), Some(3500.0), Some(0.7)),
                (Some(64.0), Some(3500.0), Some(0.8)),
                (None, Some(1.0), Some(1.0)),
            ]
        );
        sort_runs(&mut runs, SortKey::Setting);
        assert_eq!(runs[0].random_input_len, Some(1.0));
        assert_eq!(runs[1].random_input_len, Some(3000.0));
        assert_eq!(
            (runs[2].max_concurrency, runs[3].max_concurrency),
            (Some(1.0), Some(8.0))
        );
    }

    #[test]
    fn values_are_plain_and_missing_is_empty() {
        let mut r = run(16.0, 3500.0, 1500.0, 0.7);
        r.completed = Some(15.0);
        r.failed = Some(1.0);
        r.duration = Some(123.456789);
        r.input_throughput = Some(1e-7);
        r.total_throughput = Some(12345678.5);
        r.request_rate = Some(f64::INFINITY);
        let (header, rows) = summary_table(&[r]);
        let get = |name: &str| rows[0][header.iter().position(|h| h == name).unwrap()].clone();
        assert_eq!(get("prompt_num"), "16");
        assert_eq!(get("concurrency"), "16");
        assert_eq!(get("duration"), "123.456789");
        assert_eq!(get("input_throughput(tok/s)"), "0.0000001");
        assert_eq!(get("input_output_throughput(tok/s)"), "12345678.5");
        assert_eq!(get("mean_ttft_ms"), "");
        assert_eq!(get("request_rate"), "inf");
        assert_eq!(get("random_range_ratio"), "0.7");
        assert_eq!(get("simulated"), "false");
    }

    #[test]
    fn slo_columns_come_from_the_result_keys() {
        let obj = serde_json::json!({
            "request_throughput": 4.0, "max_concurrency": 8, "slo": "ttft_ms=2000,tpot_ms=100",
            "slo_attainment": 0.95, "slo_attainment_target": 0.99, "slo_good_requests": 19,
            "slo_requests": 20, "goodput": 3.8, "slo_met": false
        });
        let r = RunSummary::from_object(obj.as_object().unwrap(), Path::new("x.json"), 1).unwrap();
        let (header, rows) = summary_table(&[r, run(1.0, 1.0, 1.0, 1.0)]);
        let get = |row: usize, name: &str| {
            rows[row][header.iter().position(|h| h == name).unwrap()].clone()
        };
        assert_eq!(get(0, "slo"), "ttft_ms=2000,tpot_ms=100");
        assert_eq!(get(0, "slo_attainment"), "0.95");
        assert_eq!(get(0, "slo_attainment_target"), "0.99");
        assert_eq!(get(0, "slo_good_requests"), "19");
        assert_eq!(get(0, "goodput"), "3.8");
        assert_eq!(get(0, "slo_met"), "false");
        assert_eq!(get(1, "slo_met"), "");
        assert!(header.iter().position(|h| h == "slo").unwrap() >= SEED_COLUMNS.len());
    }
}
