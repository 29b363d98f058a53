//! Tests over the hand-made fixtures in `tests/fixtures/report/` (see the README there):
//! one file per source tool, a two-variant sweep with per-request records and eval outputs.

use std::path::{Path, PathBuf};

use crate::collect::collect;
use crate::compare::{compare, CompareOptions, Direction};
use crate::report::{write_report, ReportOptions};
use crate::run::SourceTool;
use crate::summary_csv::{SortKey, SEED_COLUMNS};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/report")
}

fn dir(name: &str) -> PathBuf {
    fixtures().join(name)
}

#[test]
fn sglang_file_with_infinity_and_nan() {
    let c = collect(&[dir("sglang")]).unwrap();
    assert!(c.notes.is_empty(), "{:?}", c.notes);
    assert_eq!(c.runs.len(), 2);
    let r = &c.runs[0];
    assert_eq!(r.tool, Some(SourceTool::Sglang));
    assert_eq!(r.request_rate, Some(f64::INFINITY));
    assert_eq!(r.max_concurrency, Some(8.0));
    assert_eq!(r.tpot.p99, None, "NaN reads as missing");
    assert_eq!(r.tpot.median, Some(14.25));
    assert_eq!(r.itl.p95, Some(19.0));
    assert_eq!(r.measured_concurrency, Some(7.76));
    assert_eq!(r.total_throughput, Some(1966.08 + 491.52));
    assert_eq!(r.prompt_num(), Some(32.0));
    assert_eq!((r.line, c.runs[1].line), (1, 2));
    assert_eq!(r.runs_in_file, 2);
}

#[test]
fn vllm_file_takes_lengths_from_its_name_and_skips_pytorch_json() {
    let c = collect(&[dir("vllm")]).unwrap();
    assert_eq!(c.runs.len(), 1);
    let r = &c.runs[0];
    assert_eq!(r.tool, Some(SourceTool::Vllm));
    assert_eq!(
        (
            r.random_input_len,
            r.random_output_len,
            r.random_range_ratio
        ),
        (Some(2048.0), Some(128.0), Some(1.0))
    );
    assert_eq!(r.e2e.median, Some(5210.5));
    assert_eq!(r.prompt_num(), Some(64.0));
    assert_eq!(r.input_throughput, Some(129024.0 / 21.75));
    assert_eq!(
        r.total_throughput,
        Some(129024.0 / 21.75 + 370.7586206896552)
    );
    assert_eq!(c.notes.len(), 1, "{:?}", c.notes);
    assert!(c.notes[0].contains("pytorch.json") && c.notes[0].contains("no result objects"));
}

#[test]
fn servebench_sweep_with_details_and_evals() {
    let c = collect(&[dir("fp8")]).unwrap();
    assert!(c.notes.is_empty(), "{:?}", c.notes);
    assert_eq!(c.runs.len(), 8);
    assert!(c
        .runs
        .iter()
        .all(|r| r.simulated && r.tool == Some(SourceTool::Servebench)));
    let with_details: Vec<_> = c.runs.iter().filter(|r| r.details.is_some()).collect();
    assert_eq!(with_details.len(), 1);
    assert_eq!(with_details[0].max_concurrency, Some(16.0));
    assert_eq!(with_details[0].random_input_len, Some(3500.0));
    assert_eq!(
        with_details[0].point_name(),
        "tp1_in3500_out1500_ratio0.7@c16"
    );
    assert_eq!(c.evals.len(), 2);
    assert!(c.any_simulated());
}

fn read_csv(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let mut r = csv::Reader::from_path(path).unwrap();
    let header = r.headers().unwrap().iter().map(str::to_string).collect();
    let rows = r
        .records()
        .map(|rec| rec.unwrap().iter().map(str::to_string).collect())
        .collect();
    (header, rows)
}

fn png_size(bytes: &[u8]) -> (u32, u32) {
    let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    // Not a blank image: some pixel differs from the first.
    let px = info.color_type.samples();
    assert!(buf[..info.buffer_size()]
        .chunks(px)
        .any(|p| p != &buf[..px]));
    (info.width, info.height)
}

#[test]
fn report_over_all_sources() {
    let out = tempfile::tempdir().unwrap();
    let c = collect(&[dir("fp8"), dir("sglang"), dir("vllm")]).unwrap();
    let written = write_report(
        &c,
        &ReportOptions {
            out_dir: out.path().to_path_buf(),
            sort: SortKey::Concurrency,
            points: vec![],
            title: None,
        },
    )
    .unwrap();

    // summary.csv: seed columns first, 11 runs sorted by concurrency.
    let (header, rows) = read_csv(&out.path().join("summary.csv"));
    assert_eq!(&header[..24], &SEED_COLUMNS.map(String::from)[..]);
    assert_eq!(rows.len(), 11);
    let conc: Vec<f64> = rows.iter().map(|r| r[1].parse().unwrap()).collect();
    assert_eq!(
        conc,
        vec![1.0, 1.0, 4.0, 4.0, 8.0, 16.0, 16.0, 16.0, 32.0, 64.0, 64.0]
    );
    // At equal concurrency: input length ascending (3000 before 3500).
    assert_eq!((rows[0][2].as_str(), rows[1][2].as_str()), ("3000", "3500"));
    // The vLLM row (c16, in 2048) comes first among the c16 rows and has its values.
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let vllm = &rows[5];
    assert_eq!(vllm[col("random_input_len")], "2048");
    assert_eq!(vllm[col("median_e2e_latency_ms")], "5210.5");
    assert_eq!(vllm[col("prompt_num")], "64");
    assert_eq!(vllm[col("tool")], "vllm bench serve");
    assert_eq!(vllm[col("measured_concurrency")], "");
    assert_eq!(vllm[col("failed")], "1");
    let sglang = &rows[4];
    assert_eq!(sglang[col("concurrency")], "8");
    assert_eq!(sglang[col("p99_tpot_ms")], "");
    assert_eq!(sglang[col("request_rate")], "inf");
    assert_eq!(sglang[col("input_output_throughput(tok/s)")], "2457.6");
    assert!(header.iter().any(|h| h == "p90_ttft_ms"));
    assert!(rows.iter().all(|r| !r
        .iter()
        .any(|v| v.contains('e') && v.parse::<f64>().is_ok())));

    // Charts: 4 performance charts + 1 distribution, each as SVG and PNG.
    for name in [
        "throughput_vs_concurrency",
        "ttft_vs_concurrency",
        "tpot_vs_concurrency",
        "throughput_vs_tpot",
        "dist_tp1_in3500_out1500_ratio0.7_c16",
    ] {
        let svg = std::fs::read_to_string(out.path().join(format!("charts/{name}.svg"))).unwrap();
        assert!(svg.starts_with("<svg"), "{name}");
        let png = std::fs::read(out.path().join(format!("charts/{name}.png"))).unwrap();
        assert_eq!(png_size(&png), (1200, 720), "{name}");
    }
    let svg =
        |n: &str| std::fs::read_to_string(out.path().join(format!("charts/{n}.svg"))).unwrap();
    let t = svg("throughput_vs_concurrency");
    assert!(t.contains("output throughput (tok/s)") && t.contains("max concurrency (requests)"));
    assert!(t.contains("in 3500 / out 1500, ratio 0.7"));
    assert!(t.contains("log2 scale"));
    assert!(svg("ttft_vs_concurrency").contains("TTFT (ms)"));
    assert!(svg("tpot_vs_concurrency").contains("TPOT (ms)"));
    assert!(svg("throughput_vs_tpot").contains("median TPOT (ms)"));
    let d = svg("dist_tp1_in3500_out1500_ratio0.7_c16");
    assert!(d.contains("TTFT (ms)") && d.contains("E2E latency (ms)") && d.contains("(n = 64)"));
    assert!(d.contains("1 failed request(s) left out"));

    // HTML: tables, embedded images, sources, simulated label, accuracy.
    let html = std::fs::read_to_string(out.path().join("report.html")).unwrap();
    assert!(html.contains("<table class=\"data\" id=\"summary-table\">"));
    assert_eq!(html.matches("<img src=\"data:image/png;base64,").count(), 5);
    assert!(!html.contains("src=\"http"));
    let summary = html.split("id=\"summary-table\"").nth(1).unwrap();
    let summary = summary.split("</table>").next().unwrap();
    assert_eq!(summary.matches("<tr>").count(), 12, "header + 11 runs");
    assert!(html.contains("id=\"simulated-badge\""));
    assert!(html.contains("simulated engine: 8 of 11 runs"));
    assert!(html.contains("sglang_random_1024_256.jsonl"));
    assert!(html.contains("id=\"accuracy-table\""));
    assert!(html.contains("MATH-500") && html.contains("72.5"));
    assert!(html.contains("pytorch.json"), "notes list the skipped file");

    let md = std::fs::read_to_string(out.path().join("summary.md")).unwrap();
    assert!(md.contains("| Conc. | In | Out |"));
    assert_eq!(md.lines().filter(|l| l.starts_with("| ")).count(), 12 + 3);
    assert!(written.files.iter().any(|f| f.ends_with("report.html")));
}

#[test]
fn report_point_option_picks_one_run() {
    let out = tempfile::tempdir().unwrap();
    let c = collect(&[dir("fp8")]).unwrap();
    let opts = ReportOptions {
        out_dir: out.path().to_path_buf(),
        points: vec!["tp1_in3500_out1500_ratio0.7@c16".into()],
        ..Default::default()
    };
    write_report(&c, &opts).unwrap();
    assert!(out
        .path()
        .join("charts/dist_tp1_in3500_out1500_ratio0.7_c16.png")
        .exists());
    // A point without per-request data is noted, not drawn.
    let opts = ReportOptions {
        points: vec!["tp1_in3000_out400_ratio0.8@c4".into()],
        ..opts
    };
    let w = write_report(&c, &opts).unwrap();
    assert!(
        w.notes.iter().any(|n| n.contains("no per-request data")),
        "{:?}",
        w.notes
    );
    let bad = ReportOptions {
        points: vec!["nope".into()],
        ..opts
    };
    assert!(write_report(&c, &bad)
        .unwrap_err()
        .to_string()
        .contains("--point nope"));
}

#[test]
fn compare_fp8_int8() {
    let out = tempfile::tempdir().unwrap();
    let a = collect(&[dir("fp8")]).unwrap();
    let b = collect(&[dir("int8")]).unwrap();
    let res = compare(
        &a,
        &b,
        &CompareOptions {
            out_dir: out.path().to_path_buf(),
            label_a: "FP8".into(),
            label_b: "INT8".into(),
        },
    )
    .unwrap();
    assert_eq!(res.points.len(), 8);
    // The toy model makes INT8 decode faster: better TPOT and throughput everywhere.
    for p in &res.points {
        let tpot = p
            .metrics
            .iter()
            .find(|m| m.metric == "TPOT median")
            .unwrap();
        assert_eq!(tpot.direction, Direction::Better, "{p:?}");
        let tput = p
            .metrics
            .iter()
            .find(|m| m.metric == "output throughput")
            .unwrap();
        assert!(
            tput.ratio.unwrap() > 1.0 || tput.direction == Direction::Same,
            "{p:?}"
        );
    }
    let math = res
        .accuracy
        .iter()
        .find(|c| c.dataset == "MATH-500")
        .unwrap();
    assert_eq!(math.items, 40);
    assert_eq!(math.discordant, Some((6, 2)));
    assert!((math.diff + 10.0).abs() < 1e-9);
    assert!((math.p - 0.289_062_5).abs() < 1e-9);
    assert!(
        res.statements.iter().any(|s| s
            .starts_with("INT8 − FP8 on MATH-500: −10.0 points, 95% CI [")
            && s.ends_with("p=0.29, not significant")),
        "{:?}",
        res.statements
    );
    let gsm = res.accuracy.iter().find(|c| c.dataset == "GSM8K").unwrap();
    assert_eq!(gsm.test, "paired z");
    assert_eq!((gsm.samples_a, gsm.samples_b), (2, 2));

    let (header, rows) = read_csv(&out.path().join("compare.csv"));
    assert_eq!(header[4], "metric");
    assert_eq!(rows.len(), 8 * 8);
    assert!(out.path().join("compare_accuracy.csv").exists());
    let html = std::fs::read_to_string(out.path().join("compare.html")).unwrap();
    assert!(html.contains("id=\"ratio-table\"") && html.contains("id=\"accuracy-compare-table\""));
    assert!(html.contains("INT8 − FP8 on MATH-500"));
    assert_eq!(html.matches("<img src=\"data:image/png;base64,").count(), 5);
    let svg =
        std::fs::read_to_string(out.path().join("charts/ttft_p99_vs_concurrency.svg")).unwrap();
    assert!(svg.contains("FP8 · in 3500 / out 1500, ratio 0.7") && svg.contains("INT8 · in 3500"));
    assert!(res.text.contains("TPOT p50"));
    assert!(res.text.contains("× better"));
}

/// Hostile text from a server (`/v1/models`), a dataset or a flag, in every field a report shows.
const SCRIPT: &str = "<script>alert(1)</script>";
const IMG: &str = "<img src=x onerror=alert(1)>";
const FORMULA: &str = "=HYPERLINK(\"http://evil.invalid\",\"x\")";

/// No raw markup in Markdown, HTML or SVG (CSV keeps the text); no table row broken; no live formula in any CSV.
fn assert_neutralised(dir: &Path) {
    for entry in walk(dir) {
        let text = std::fs::read_to_string(&entry).unwrap_or_default();
        let name = entry.display().to_string();
        if !name.ends_with(".csv") {
            // CSV is data (the text is kept as is); every other file is markup.
            assert!(!text.contains("<script"), "{name} carries <script>");
            assert!(!text.contains("<img src=x"), "{name} carries <img onerror>");
        } else {
            let mut r = csv::ReaderBuilder::new()
                .has_headers(false)
                .from_path(&entry)
                .unwrap();
            for rec in r.records() {
                for cell in rec.unwrap().iter() {
                    assert!(
                        !cell.starts_with(['=', '+', '@']),
                        "{name}: live formula {cell:?}"
                    );
                }
            }
        }
        if name.ends_with(".md") {
            // Every table row has as many cells as its header.
            let mut widths = Vec::new();
            for block in text.split("\n\n") {
                let rows: Vec<usize> = block
                    .lines()
                    .filter(|l| l.starts_with('|'))
                    .map(|l| l.replace("\\|", "").matches('|').count())
                    .collect();
                if let Some(first) = rows.first() {
                    assert!(rows.iter().all(|w| w == first), "{name}: {block}");
                    widths.push(*first);
                }
            }
            assert!(!widths.is_empty(), "{name} has a table");
        }
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn hostile_model_backend_and_title_are_neutralised() {
    let src = tempfile::tempdir().unwrap();
    let line = std::fs::read_to_string(dir("sglang").join("sglang_random_1024_256.jsonl"))
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .replace(
            "\"backend\": \"sglang\"",
            &format!(
                "\"backend\": {}, \"model\": {}",
                serde_json::to_string(FORMULA).unwrap(),
                serde_json::to_string(&format!("{SCRIPT}|x\n| y {IMG}")).unwrap()
            ),
        );
    std::fs::write(src.path().join("hostile.jsonl"), line + "\n").unwrap();
    let c = collect(&[src.path().to_path_buf()]).unwrap();
    assert_eq!(c.runs.len(), 1);
    assert_eq!(c.runs[0].backend.as_deref(), Some(FORMULA));
    let out = tempfile::tempdir().unwrap();
    write_report(
        &c,
        &ReportOptions {
            out_dir: out.path().to_path_buf(),
            title: Some(format!("{SCRIPT} {IMG}")),
            ..Default::default()
        },
    )
    .unwrap();
    let (header, rows) = read_csv(&out.path().join("summary.csv"));
    let backend = header.iter().position(|h| h == "backend").unwrap();
    assert_eq!(rows[0][backend], format!("'{FORMULA}"));
    // Numbers stay numbers.
    let conc = header.iter().position(|h| h == "concurrency").unwrap();
    assert_eq!(rows[0][conc], "8");
    let md = std::fs::read_to_string(out.path().join("summary.md")).unwrap();
    assert!(md.starts_with("# &lt;script&gt;"), "{md}");
    assert_neutralised(out.path());
}

#[test]
fn hostile_compare_labels_are_neutralised() {
    let out = tempfile::tempdir().unwrap();
    let a = collect(&[dir("fp8")]).unwrap();
    let b = collect(&[dir("int8")]).unwrap();
    compare(
        &a,
        &b,
        &CompareOptions {
            out_dir: out.path().to_path_buf(),
            label_a: format!("{SCRIPT}|\n"),
            label_b: IMG.into(),
        },
    )
    .unwrap();
    let md = std::fs::read_to_string(out.path().join("compare.md")).unwrap();
    assert!(md.contains("&lt;img src=x onerror=alert(1)&gt;"), "{md}");
    assert_neutralised(out.path());
}
