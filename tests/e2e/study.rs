//! `servebench run STUDY.toml`: several deployments launched in turn, one folder, a decision report; the field
//! report's study passes `--dry-run` untouched.

use crate::common::*;
use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_servebench");

/// Every file under `dir`, relative to it, sorted.
fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn the_field_report_study_dry_runs_every_step_and_touches_nothing() {
    let dir = tempdir();
    let plan = dir.path().join("examples/deepseek-r1-fp8-vs-int8.toml");
    std::fs::create_dir_all(plan.parent().unwrap()).unwrap();
    std::fs::copy(root().join("examples/deepseek-r1-fp8-vs-int8.toml"), &plan).unwrap();
    let out = Command::new(BIN)
        .args(["run", "--dry-run"])
        .arg(&plan)
        .current_dir(dir.path())
        .env_remove("OPENAI_API_KEY")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let common =
        "--tp 8 --mem-fraction-static 0.95 --max-running-requests 32 --context-length 65536 \
                  --chunked-prefill-size 4096";
    let launches: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("server: launch "))
        .collect();
    assert_eq!(launches.len(), 2, "{stdout}");
    assert!(
        launches[0].contains("--model-path /models/DeepSeek-R1 ")
            && launches[0].contains(&format!("{common} --host"))
            && launches[0].contains("--quantization fp8"),
        "{}",
        launches[0]
    );
    assert!(
        launches[1].contains("--model-path /models/DeepSeek-R1-Block-INT8 ")
            && launches[1].contains(&format!("{common} --host"))
            && !launches[1].contains("--quantization"),
        "{}",
        launches[1]
    );
    let evals: Vec<&str> = stdout.lines().filter(|l| l.starts_with("eval: ")).collect();
    assert_eq!(evals.len(), 2);
    for e in &evals {
        assert!(
            e.contains("--datasets gpqa_diamond,aime24,math500")
                && e.contains("--protocol field-report"),
            "{e}"
        );
    }
    // 2 deployments × 2 lengths × 11 concurrencies × 2 ratios, in the seed's file names.
    let points: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("sweep ["))
        .collect();
    assert_eq!(points.len(), 88, "{stdout}");
    for want in [
        "sweep [1/44] in 3500 out 1500 ratio 0.7 conc 1 → ",
        "/FP8/perf/tp1_in3500_out1500_ratio0.7.json (1 prompts)",
        "sweep [44/44] in 5600 out 1400 ratio 0.8 conc 512 → ",
        "/INT8/perf/tp512_in5600_out1400_ratio0.8.json (512 prompts)",
        "==== deployment FP8 (1/2)",
        "==== deployment INT8 (2/2)",
        "study.html (SLO: TTFT ≤ 2000 ms, TPOT ≤ 100 ms for 99% of requests)",
    ] {
        assert!(stdout.contains(want), "{want}\n{stdout}");
    }
    assert_eq!(
        files_under(dir.path()),
        ["examples/deepseek-r1-fp8-vs-int8.toml"],
        "a dry run writes nothing"
    );
}
