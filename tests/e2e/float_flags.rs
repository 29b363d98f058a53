//! Every float flag of `bench`, `sweep` and `run` that becomes a `Duration` or a schedule is checked before any
//! work: the values that panicked (issue 12) now give a clear error naming the flag, never exit 101.

use crate::common::*;

fn servebench() -> assert_cmd::Command {
    assert_cmd::Command::cargo_bin("servebench").unwrap()
}

/// Runs servebench with `args`; it must fail with a message (not a panic) that contains `expect`, or clap's
/// "invalid value 'VALUE' for 'FLAG" for the last flag and value of `args` (the flag parsers refuse some values
/// before the configuration is built).
fn refused(args: &[&str], expect: &str) {
    let n = args.len();
    let clap_form =
        (n >= 2).then(|| format!("invalid value '{}' for '{}", args[n - 1], args[n - 2]));
    let out = servebench()
        .args(args)
        .timeout(std::time::Duration::from_secs(60))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(101), "{args:?} panicked: {stderr}");
    assert!(!out.status.success(), "{args:?} was accepted");
    assert!(
        (stderr.contains(expect)
            || clap_form
                .as_ref()
                .is_some_and(|c| stderr.contains(c.as_str())))
            && !stderr.contains("panicked"),
        "{args:?}: {stderr}"
    );
}

#[test]
fn bench_float_flags_that_panicked_are_errors() {
    let dir = tempdir();
    let out = dir.path().join("r.json");
    let base = [
        "bench",
        "--sim",
        "fast",
        "--dataset-name",
        "random",
        "--num-prompts",
        "1",
        "--output-file",
        out.to_str().unwrap(),
    ];
    for (flag, value, expect) in [
        ("--timeout", "inf", "--timeout inf"),
        ("--timeout", "1e300", "--timeout 1e300"),
        ("--timeout", "nan", "--timeout NaN"),
        ("--timeout", "-1", "--timeout -1"),
        ("--timeout", "0", "--timeout 0"),
        ("--grace", "1e300", "--grace 1e300"),
        ("--grace", "inf", "--grace inf"),
        ("--duration", "1e300", "--duration 1e300"),
        ("--duration", "inf", "--duration inf"),
        ("--duration", "NaN", "--duration NaN"),
        ("--request-rate", "1e-300", "--request-rate 1e-300"),
        ("--request-rate", "-2", "--request-rate -2"),
        ("--burstiness", "inf", "--burstiness inf"),
        ("--random-range-ratio", "nan", "--random-range-ratio NaN"),
        (
            "--max-concurrency",
            "18446744073709551615",
            "--max-concurrency 18446744073709551615",
        ),
    ] {
        let mut args = base.to_vec();
        args.extend([flag, value]);
        refused(&args, expect);
    }
    assert!(!out.exists(), "nothing was run");
}

#[test]
fn sweep_and_run_float_values_that_panicked_are_errors() {
    let dir = tempdir();
    let out = dir.path().join("sweep");
    let base = [
        "sweep",
        "--sim",
        "fast",
        "--input-output",
        "16:4",
        "--output-dir",
        out.to_str().unwrap(),
    ];
    for (extra, expect) in [
        (
            &["--concurrency", "1", "--pause", "1e300"][..],
            "pause_s (--pause) 1e300",
        ),
        (
            &["--concurrency", "1", "--pause", "-1"][..],
            "pause_s (--pause) -1",
        ),
        (
            &["--concurrency", "1", "--num-prompts", "1e300s"][..],
            "num_prompts 1e300",
        ),
        (
            &["--concurrency", "18446744073709551615"][..],
            "concurrency 18446744073709551615",
        ),
    ] {
        let mut args = base.to_vec();
        args.extend_from_slice(extra);
        refused(&args, expect);
    }
    let plan = dir.path().join("run.toml");
    std::fs::write(
        &plan,
        "output_dir = \"out\"\n[server]\ncommand = \"sleep 60\"\nready_timeout_s = 1e300\n[target]\nbase_url = \"http://127.0.0.1:9\"\n[sweep]\naxes = { input_output = [\"16:4\"], concurrency = [1] }\n",
    )
    .unwrap();
    refused(
        &["run", plan.to_str().unwrap()],
        "ready_timeout_s 1e300: is too long",
    );
    assert!(!dir.path().join("out").exists(), "nothing was started");
}
