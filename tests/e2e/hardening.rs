//! The binary's contract with scripts and CI: exit codes, outputs checked before any request, the open-file
//! limit, the private answer key of `eval --sim`, an all-failed sweep point done once.

use crate::common::*;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Runs `cmd` to the end (killed after `limit`, which fails the test).
fn run(cmd: Command, limit: Duration) -> Output {
    run_limited(cmd, limit)
}

const SMALL: &[&str] = &[
    "--dataset-name",
    "random",
    "--random-input-len",
    "16",
    "--random-output-len",
    "4",
    "--disable-tqdm",
];

fn bench_cmd(url: &str, out: &Path, extra: &[&str]) -> Command {
    let mut c = sb();
    c.args(["bench", "--base-url", url, "--model", "m"])
        .args(SMALL)
        .args(extra)
        .arg("--output-file")
        .arg(out);
    c
}

const MINUTE: Duration = Duration::from_secs(60);

#[test]
fn bad_input_exits_2_before_any_request() {
    let (url, seen) = counting_listener();
    let dir = tempdir();
    let file = dir.path().join("file");
    std::fs::write(&file, "").unwrap();
    let cases: Vec<(Vec<String>, &str)> = vec![
        // A directory given as the result file.
        (
            vec!["--output-file".into(), dir.path().display().to_string()],
            "it is a directory",
        ),
        // A parent that is a file.
        (
            vec![
                "--output-file".into(),
                format!("{}/r.jsonl", file.display()),
            ],
            "is a file, not a folder",
        ),
        // A folder nobody can write (not even root).
        (
            vec!["--output-file".into(), "/proc/r.jsonl".into()],
            "folder /proc is not writable",
        ),
        (
            vec![
                "--output-file".into(),
                dir.path().join("ok.jsonl").display().to_string(),
                "--details-file".into(),
                dir.path().display().to_string(),
            ],
            "it is a directory",
        ),
        (vec!["--num-prompts".into(), "0".into()], "--num-prompts"),
        (
            vec!["--range-rule".into(), "tgi".into()],
            "--range-rule tgi: use sglang or vllm",
        ),
        // clap's own errors use the same code.
        (
            vec!["--max-failure-rate".into(), "1.5".into()],
            "outside [0, 1]",
        ),
    ];
    for (flags, want) in cases {
        let mut c = sb();
        c.args(["bench", "--base-url", &url, "--model", "m"])
            .args(SMALL)
            .args(&flags);
        let o = run(c, MINUTE);
        let err = stderr(&o);
        assert_eq!(code(&o), 2, "{flags:?}: {err}");
        assert!(err.contains(want), "{flags:?}: {err}");
    }
    // Sweep and eval outputs too.
    let mut c = sb();
    c.args(["sweep", "--base-url", &url, "--model", "m"])
        .args([
            "--input-output",
            "16:4",
            "--concurrency",
            "1",
            "--output-dir",
        ])
        .arg(file.join("sweep"));
    let o = run(c, MINUTE);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("is a file, not a folder"),
        "{}",
        stderr(&o)
    );
    let mut c = sb();
    c.args(["eval", "--base-url", &url, "--model", "m", "--custom"])
        .arg(root().join("tests/fixtures/eval/custom_exact.jsonl"))
        .arg("--output-dir")
        .arg(&file);
    let o = run(c, MINUTE);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("is a file, not a folder"),
        "{}",
        stderr(&o)
    );
    assert_eq!(seen.load(Ordering::SeqCst), 0, "nothing was sent");
    assert_eq!(std::fs::read(&file).unwrap(), b"", "nothing was written");
}

/// Starts a simulator that fails `rate` of its requests with HTTP 500; runs `f` with its URL.
fn with_failing_sim(rate: f64, f: impl FnOnce(&str) + Send + 'static) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let sim = rt.block_on(start_sim("fast", |c| {
        c.faults.fail_rate = rate;
        c.model = "m".into();
    }));
    f(&sim.base_url());
    rt.block_on(sim.shutdown());
}

#[test]
fn all_failed_or_above_the_rate_exits_3_and_keeps_the_result() {
    with_failing_sim(1.0, |url| {
        let dir = tempdir();
        let out = dir.path().join("r.jsonl");
        let o = run(
            bench_cmd(url, &out, &["--num-prompts", "8", "--warmup-requests", "0"]),
            MINUTE,
        );
        assert_eq!(code(&o), 3, "{}", stderr(&o));
        assert!(
            stderr(&o).contains("8 of 8 requests failed"),
            "{}",
            stderr(&o)
        );
        let r = &read_lines(&out)[0];
        assert_eq!(
            (r["completed"].as_u64(), r["failed"].as_u64()),
            (Some(0), Some(8))
        );
        assert_eq!(
            serde_json::to_string(&r["concurrency"]).unwrap(),
            "0.0",
            "not -0.0"
        );

        // eval: every sample failed.
        let mut c = sb();
        c.args(["eval", "--base-url", url, "--model", "m", "--retries", "0"])
            .args(["--custom-grader", "exact", "--json", "--custom"])
            .arg(root().join("tests/fixtures/eval/custom_exact.jsonl"))
            .arg("--output-dir")
            .arg(dir.path().join("eval"));
        let o = run(c, MINUTE);
        assert_eq!(code(&o), 3, "{}", stderr(&o));
        assert!(
            stderr(&o).contains("5 of 5 samples failed"),
            "{}",
            stderr(&o)
        );
        assert!(dir.path().join("eval/custom_exact_report.json").exists());
    });
    with_failing_sim(0.5, |url| {
        let dir = tempdir();
        let out = dir.path().join("r.jsonl");
        let flags = ["--num-prompts", "40", "--warmup-requests", "0"];
        let o = run(bench_cmd(url, &out, &flags), MINUTE);
        let r = &read_lines(&out)[0];
        let failed = r["failed"].as_u64().unwrap();
        assert!(failed > 0 && failed < 40, "{r}");
        assert_eq!(code(&o), 0, "not all failed: {}", stderr(&o));
        let o = run(
            bench_cmd(
                url,
                &out,
                &[&flags[..], &["--max-failure-rate", "0.05"]].concat(),
            ),
            MINUTE,
        );
        assert_eq!(code(&o), 3, "{}", stderr(&o));
        assert!(
            stderr(&o).contains("above --max-failure-rate 0.05"),
            "{}",
            stderr(&o)
        );
        let o = run(
            bench_cmd(
                url,
                &out,
                &[&flags[..], &["--max-failure-rate", "1"]].concat(),
            ),
            MINUTE,
        );
        assert_eq!(code(&o), 0, "{}", stderr(&o));
    });
}

#[test]
fn an_all_failed_sweep_point_is_done_once_with_its_failures() {
    with_failing_sim(1.0, |url| {
        let dir = tempdir();
        let out = dir.path().join("sweep");
        let plan = dir.path().join("plan.toml");
        std::fs::write(
            &plan,
            format!(
                "[target]\nbase_url = \"{url}\"\nmodel = \"m\"\n[dataset]\nname = \"random\"\n\
                 [axes]\ninput_output = [\"16:4\"]\nconcurrency = [1, 2]\nrange_ratio = [1.0]\n\
                 [run]\ntp = 1\nwarmup_requests = 0\noutput_dir = {:?}\n",
                out.display().to_string()
            ),
        )
        .unwrap();
        let sweep = || {
            let mut c = sb();
            c.args(["sweep", "--no-report"]).arg(&plan);
            run(c, MINUTE)
        };
        let first = sweep();
        let stdout = String::from_utf8_lossy(&first.stdout).into_owned();
        assert_eq!(code(&first), 3, "{stdout}{}", stderr(&first));
        assert!(
            stdout.contains("2 points run (2 with every request failed)"),
            "{stdout}"
        );
        // The seed's layout: one file per point (prompt count = concurrency), one object in each.
        let files = [
            out.join("tp1_in16_out4_ratio1.0.json"),
            out.join("tp2_in16_out4_ratio1.0.json"),
        ];
        for file in &files {
            let lines = read_lines(file);
            assert_eq!(lines.len(), 1, "one object per point file");
            assert_eq!(
                lines[0]["failed"].as_u64(),
                lines[0]["max_concurrency"].as_u64(),
                "{}",
                file.display()
            );
        }
        // The rerun finds both points done: nothing sent, nothing appended.
        let second = sweep();
        let stdout = String::from_utf8_lossy(&second.stdout).into_owned();
        assert_eq!(code(&second), 0, "{stdout}{}", stderr(&second));
        assert!(
            stdout.contains("0 points run") && stdout.contains("2 already done"),
            "{stdout}"
        );
        for file in &files {
            assert_eq!(read_lines(file).len(), 1, "nothing appended");
        }
    });
}

/// Sends SIGINT (Ctrl-C) to `pid`.
fn ctrl_c(pid: u32) {
    let ok = Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .expect("kill runs")
        .success();
    assert!(ok, "SIGINT sent");
}

#[test]
fn ctrl_c_exits_130_after_writing_what_finished() {
    let dir = tempdir();
    let out = dir.path().join("r.jsonl");
    // 8 requests of 800 tokens at about 40 ms each, 4 at a time: about a minute in all, so Ctrl-C comes while
    // the first four are in flight (the other four are never sent).
    let mut c = sb();
    c.args(["bench", "--sim", "slow", "--dataset-name", "random"])
        .args(["--random-input-len", "16", "--random-output-len", "800"])
        .args(["--random-range-ratio", "1", "--num-prompts", "8"])
        .args(["--max-concurrency", "4", "--warmup-requests", "0"])
        .args(["--disable-tqdm", "--output-file"])
        .arg(&out)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().expect("servebench starts");
    // Time to install the Ctrl-C handler (its first step after parsing the flags).
    std::thread::sleep(Duration::from_secs(3));
    assert!(child.try_wait().unwrap().is_none(), "bench ended early");
    ctrl_c(child.id());
    let o = wait_limited(child, 3 * MINUTE);
    assert_eq!(code(&o), 130, "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("interrupted: ") && err.contains("before Ctrl-C; results written to"),
        "{err}"
    );
    let r = &read_lines(&out)[0];
    assert_eq!(r["interrupted"], true, "{r}");
    assert!(r["completed"].as_u64().unwrap() < 8, "stopped early: {r}");
}

#[test]
fn open_file_limit_is_raised_or_the_run_refused_before_work() {
    let dir = tempdir();
    let bin = env!("CARGO_BIN_EXE_servebench");
    let bench = |ulimit: &str, out: &Path| {
        let mut c = Command::new("sh");
        c.arg("-c")
            .arg(format!(
                "{ulimit} && exec \"$0\" bench --sim fast --dataset-name random --random-input-len 16 \
                 --random-output-len 4 --num-prompts 1000 --max-concurrency 1000 --warmup-requests 0 \
                 --disable-tqdm --output-file \"$1\""
            ))
            .arg(bin)
            .arg(out)
            .env_remove("OPENAI_API_KEY");
        run(c, Duration::from_secs(300))
    };
    // Hard limit 256: 1000 connections (2 descriptors each with the simulator in process) cannot fit.
    let hard = dir.path().join("hard.jsonl");
    let o = bench("ulimit -n 256", &hard);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("--max-concurrency 1000 needs about 2128 open files")
            && err.contains("hard limit of this process is 256"),
        "{err}"
    );
    assert!(!hard.exists(), "refused before any work");
    // Soft limit 256 under a higher hard limit: raised, and the whole run is kept — or, where the hard
    // limit itself is below what is needed, the same clear refusal.
    let soft = dir.path().join("soft.jsonl");
    let o = bench("ulimit -Sn 256", &soft);
    match code(&o) {
        0 => {
            let r = &read_lines(&soft)[0];
            assert_eq!(
                (r["completed"].as_u64(), r["failed"].as_u64()),
                (Some(1000), Some(0)),
                "{r}"
            );
        }
        2 => assert!(
            stderr(&o).contains("hard limit of this process"),
            "{}",
            stderr(&o)
        ),
        other => panic!("exit {other}: {}", stderr(&o)),
    }
}

#[test]
fn eval_sim_answer_key_never_stays_on_disk() {
    let tmp = tempdir();
    let dir = tempdir();
    let eval = |out: &str, preset: &str| {
        let mut c = sb();
        c.env("TMPDIR", tmp.path())
            .args([
                "eval",
                "--sim",
                preset,
                "--custom-grader",
                "exact",
                "--json",
                "--custom",
            ])
            .arg(root().join("tests/fixtures/eval/custom_exact.jsonl"))
            .arg("--output-dir")
            .arg(dir.path().join(out));
        c
    };
    let o = run(eval("a", "fast"), MINUTE);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
    assert!(left.is_empty(), "left in TMPDIR: {left:?}");
    // Killed mid-run (no cleanup can run): the key was already gone once the simulator had read it.
    let mut c = eval("b", "slow");
    c.args(["--concurrency", "1", "--n", "50", "--temperature", "0.5"])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = c.spawn().expect("servebench starts");
    let preds = dir.path().join("b/custom_exact_predictions.jsonl");
    let start = Instant::now();
    while !preds.exists() {
        assert!(start.elapsed() < MINUTE, "eval never started");
        assert!(child.try_wait().unwrap().is_none(), "eval ended early");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
    assert!(left.is_empty(), "left in TMPDIR after a kill: {left:?}");
}

#[test]
fn impossible_numbers_are_refused_with_a_message() {
    let cases: &[(&[&str], &str)] = &[
        (&["bench", "--num-prompts", "-3"], "-3 is negative"),
        (&["bench", "--max-concurrency", "0"], "give at least 1"),
        (&["bench", "--timeout", "0"], "--timeout 0"),
        (&["bench", "--random-output-len", "0"], "length 0"),
        (&["bench", "--duration", "NaN"], "--duration NaN"),
        (&["bench", "--grace", "1e300"], "--grace 1e300"),
        (
            &["bench", "--request-rate", "1e-300"],
            "--request-rate 1e-300",
        ),
        (
            &["bench", "--sim", "--dataset-name", "sharegpt"],
            "--dataset-path",
        ),
        (&["sweep", "--pause", "-1"], "negative"),
        (
            &["eval", "--timeout", "0", "--datasets", "aime24"],
            "above 0",
        ),
        (
            &["eval", "--retry-backoff", "inf", "--datasets", "aime24"],
            "too long",
        ),
        (
            &["eval", "--concurrency", "-2", "--datasets", "aime24"],
            "negative",
        ),
        (&["sim", "--port", "-1"], "invalid value"),
    ];
    for (argv, want) in cases {
        let mut c = sb();
        c.args(*argv);
        let o = run(c, MINUTE);
        assert_eq!(code(&o), 2, "{argv:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(want), "{argv:?}: {}", stderr(&o));
        assert!(
            !stderr(&o).contains("unexpected argument"),
            "{argv:?}: {}",
            stderr(&o)
        );
    }
    // Every command's help ends with the exit codes.
    for cmd in ["bench", "sweep", "eval"] {
        let o = run(
            {
                let mut c = sb();
                c.args([cmd, "--help"]);
                c
            },
            MINUTE,
        );
        let help = String::from_utf8_lossy(&o.stdout).into_owned();
        assert!(help.contains("Exit codes: 0 all good"), "{cmd}: {help}");
        assert!(
            help.contains("--max-failure-rate <FRACTION>"),
            "{cmd}: {help}"
        );
    }
}

#[test]
fn test_script_finds_chromium_on_path() {
    let fake = tempdir();
    let bin = fake.path().join("chromium");
    std::fs::write(&bin, "#!/bin/sh\n").unwrap();
    let mut perms = std::fs::metadata(&bin).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&bin, perms).unwrap();
    let path = format!(
        "{}:{}",
        fake.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut c = Command::new(root().join("scripts/test.sh"));
    c.arg("--find-chromium")
        .env("PATH", &path)
        .env_remove("SERVEBENCH_CHROMIUM")
        .env_remove("SERVEBENCH_SKIP_BROWSER");
    let o = run(c, MINUTE);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        bin.display().to_string()
    );
    // SERVEBENCH_CHROMIUM wins.
    let mut c = Command::new(root().join("scripts/test.sh"));
    c.arg("--find-chromium").env("SERVEBENCH_CHROMIUM", &bin);
    let o = run(c, MINUTE);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        bin.display().to_string()
    );
}

#[test]
fn run_exits_3_when_every_eval_sample_failed_after_writing_its_report() {
    with_failing_sim(1.0, |url| {
        let dir = tempdir();
        let data = root().join("tests/fixtures/eval/custom_exact.jsonl");
        let plan = dir.path().join("w.toml");
        std::fs::write(
            &plan,
            format!(
                "output_dir = \"out\"\n[target]\nbase_url = \"{url}\"\n\
                 [eval]\nargs = [\"--model\", \"m\", \"--retries\", \"0\", \"--custom-grader\", \"exact\", \
                 \"--custom\", {:?}]\n",
                data.display().to_string()
            ),
        )
        .unwrap();
        let mut c = sb();
        c.arg("run").arg(&plan);
        let o = run(c, MINUTE);
        assert_eq!(code(&o), 3, "{}", stderr(&o));
        assert!(
            stderr(&o).contains("5 of 5 eval samples failed"),
            "{}",
            stderr(&o)
        );
        assert!(
            dir.path().join("out/report.html").exists(),
            "the report is written first"
        );
    });
}
