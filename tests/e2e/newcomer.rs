//! A newcomer's first hour (issue 12): every message a first try can meet says what was wrong and what to do,
//! with its exit code — a server that is not there, a URL without a scheme, TLS to a plain port, retries of
//! eval, `--sim` with an address, a short custom dataset, repeated warnings, OS errors, impossible numbers.
//! Each test asserts the exact message the binary prints.

use crate::common::*;
use std::path::Path;
use std::process::Output;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Runs servebench with `args`; fails the test when it runs longer than `limit`.
fn run(args: &[&str], limit: Duration) -> Output {
    let mut c = sb();
    c.args(args);
    run_limited(c, limit)
}

/// The last line servebench wrote to stderr (its `error: …` line).
fn last_line(o: &Output) -> String {
    stderr(o)
        .trim_end()
        .lines()
        .last()
        .unwrap_or_default()
        .to_string()
}

const MINUTE: Duration = Duration::from_secs(60);

/// A port nothing listens on.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// Runs `f` with the URL of a simulator (fast preset, model `m`) changed by `cfg`.
fn with_sim(cfg: impl FnOnce(&mut servebench::sim::SimConfig), f: impl FnOnce(&str)) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let sim = rt.block_on(start_sim("fast", |c| {
        c.model = "m".into();
        cfg(c);
    }));
    f(&sim.base_url());
    rt.block_on(sim.shutdown());
}

fn custom_eval_set() -> String {
    root()
        .join("tests/fixtures/eval/custom_exact.jsonl")
        .display()
        .to_string()
}

fn path(p: &Path) -> String {
    p.display().to_string()
}

const SMALL: &[&str] = &[
    "--dataset-name",
    "random",
    "--random-input-len",
    "16",
    "--random-output-len",
    "4",
    "--num-prompts",
    "2",
    "--disable-tqdm",
];

#[test]
fn connection_refused_names_the_server_in_bench_eval_and_sweep() {
    let port = closed_port();
    let url = format!("http://127.0.0.1:{port}");
    let want = format!(
        "error: the server at {url} is not reachable (connection refused): nothing listens on \
         127.0.0.1:{port}; start the server, or check --base-url/--host/--port"
    );
    let dir = tempdir();
    let out = path(&dir.path().join("r.jsonl"));
    // With and without --model: never "/v1/models lists none: pass --model".
    for model in [&[][..], &["--model", "m"][..]] {
        let mut args = vec!["bench", "--base-url", &url, "--output-file", &out];
        args.extend_from_slice(model);
        args.extend_from_slice(SMALL);
        let o = run(&args, MINUTE);
        assert_eq!(code(&o), 1, "{args:?}: {}", stderr(&o));
        assert_eq!(last_line(&o), want, "{args:?}");
        assert!(!stderr(&o).contains("lists none"), "{}", stderr(&o));
    }
    let set = custom_eval_set();
    let ev = path(&dir.path().join("ev"));
    let o = run(
        &[
            "eval",
            "--base-url",
            &url,
            "--custom",
            &set,
            "--output-dir",
            &ev,
        ],
        MINUTE,
    );
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert_eq!(last_line(&o), want);
    // The sweep says it at once, not after a minute of health checks per point.
    let sw = path(&dir.path().join("sw"));
    let start = Instant::now();
    let o = run(
        &[
            "sweep",
            "--base-url",
            &url,
            "--input-output",
            "16:4",
            "--concurrency",
            "1,2",
            "--output-dir",
            &sw,
            "--no-report",
        ],
        MINUTE,
    );
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert_eq!(last_line(&o), want);
    assert!(
        start.elapsed() < Duration::from_secs(30),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn a_url_without_scheme_suggests_http() {
    let (_, seen) = counting_listener();
    let dir = tempdir();
    let out = path(&dir.path().join("r.jsonl"));
    let want =
        "error: --base-url localhost:30000: the URL has no scheme; use http://localhost:30000";
    let mut bench = vec![
        "bench",
        "--base-url",
        "localhost:30000",
        "--output-file",
        &out,
    ];
    bench.extend_from_slice(SMALL);
    let set = custom_eval_set();
    let ev = path(&dir.path().join("ev"));
    let sw = path(&dir.path().join("sw"));
    let cases: [Vec<&str>; 3] = [
        bench,
        vec![
            "eval",
            "--base-url",
            "localhost:30000",
            "--custom",
            &set,
            "--output-dir",
            &ev,
        ],
        vec![
            "sweep",
            "--base-url",
            "localhost:30000",
            "--input-output",
            "16:4",
            "--concurrency",
            "1",
            "--output-dir",
            &sw,
        ],
    ];
    for args in cases {
        let o = run(&args, MINUTE);
        assert_eq!(code(&o), 2, "{args:?}: {}", stderr(&o));
        assert_eq!(last_line(&o), want, "{args:?}");
    }
    assert_eq!(seen.load(Ordering::SeqCst), 0);
}

#[test]
fn https_to_a_plain_http_port_says_tls_and_suggests_http() {
    with_sim(
        |_| {},
        |url| {
            let https = url.replacen("http://", "https://", 1);
            let want = format!(
                "error: TLS with {https} failed: that port answers plain HTTP, not TLS; use {url}"
            );
            let dir = tempdir();
            let out = path(&dir.path().join("r.jsonl"));
            for model in [&[][..], &["--model", "m"][..]] {
                let mut args = vec!["bench", "--base-url", &https, "--output-file", &out];
                args.extend_from_slice(model);
                args.extend_from_slice(SMALL);
                let o = run(&args, MINUTE);
                assert_eq!(code(&o), 1, "{args:?}: {}", stderr(&o));
                assert_eq!(last_line(&o), want, "{args:?}");
                assert!(!stderr(&o).contains("InvalidContentType"));
            }
            let set = custom_eval_set();
            let ev = path(&dir.path().join("ev"));
            let o = run(
                &[
                    "eval",
                    "--base-url",
                    &https,
                    "--custom",
                    &set,
                    "--output-dir",
                    &ev,
                ],
                MINUTE,
            );
            assert_eq!(code(&o), 1, "{}", stderr(&o));
            assert_eq!(last_line(&o), want);
        },
    );
}

#[test]
fn eval_announces_each_retry_with_its_backoff() {
    with_sim(
        |c| c.faults.fail_rate = 1.0,
        |url| {
            let dir = tempdir();
            let set = custom_eval_set();
            let ev = path(&dir.path().join("ev"));
            let start = Instant::now();
            let o = run(
                &[
                    "eval",
                    "--base-url",
                    url,
                    "--model",
                    "m",
                    "--custom",
                    &set,
                    "--limit",
                    "1",
                    "--retries",
                    "2",
                    "--retry-backoff",
                    "0.05",
                    "--output-dir",
                    &ev,
                ],
                MINUTE,
            );
            let err = stderr(&o);
            assert_eq!(code(&o), 3, "{err}");
            let retries: Vec<&str> = err.lines().filter(|l| l.starts_with("retry: ")).collect();
            assert_eq!(retries.len(), 2, "{err}");
            let prefix = "retry: request eval-custom_exact-0-0 failed (HTTP 500: ";
            assert!(retries[0].starts_with(prefix), "{err}");
            assert!(retries[0].ends_with("; attempt 2 of 3 in 0.05 s"), "{err}");
            assert!(retries[1].starts_with(prefix), "{err}");
            assert!(retries[1].ends_with("; attempt 3 of 3 in 0.1 s"), "{err}");
            assert_eq!(last_line(&o), "error: 1 of 1 samples failed");
            assert!(start.elapsed() < Duration::from_secs(30));
        },
    );
}

#[test]
fn sim_with_an_address_is_refused() {
    let dir = tempdir();
    let set = custom_eval_set();
    let cases: [(&[&str], &str); 5] = [
        (
            &["bench", "--sim", "fast", "--base-url", "http://127.0.0.1:9"],
            "--base-url <URL>",
        ),
        (&["bench", "--sim", "--port", "9"], "--port <PORT>"),
        (&["bench", "--sim", "--host", "10.0.0.1"], "--host <HOST>"),
        (
            &[
                "eval",
                "--sim",
                "--base-url",
                "http://127.0.0.1:9",
                "--custom",
                &set,
            ],
            "--base-url <URL>",
        ),
        (
            &["sweep", "--sim", "--base-url", "http://127.0.0.1:9"],
            "--base-url <URL>",
        ),
    ];
    for (args, other) in cases {
        let mut a = args.to_vec();
        let out = path(&dir.path().join("x"));
        a.extend(["--output-dir", &out].iter().filter(|_| args[0] != "bench"));
        let o = run(&a, MINUTE);
        assert_eq!(code(&o), 2, "{a:?}: {}", stderr(&o));
        let first = stderr(&o).lines().next().unwrap_or_default().to_string();
        assert_eq!(
            first,
            format!("error: the argument '--sim [<PRESET>]' cannot be used with '{other}'"),
            "{a:?}"
        );
    }
}

#[test]
fn a_short_custom_dataset_is_repeated_with_one_warning() {
    let dir = tempdir();
    let data = dir.path().join("three.jsonl");
    std::fs::write(
        &data,
        "{\"prompt\": \"one two three\"}\n{\"prompt\": \"four five\"}\n{\"prompt\": \"six\"}\n",
    )
    .unwrap();
    let out = dir.path().join("r.jsonl");
    let o = run(
        &[
            "bench",
            "--sim",
            "fast",
            "--dataset-name",
            "custom",
            "--dataset-path",
            &path(&data),
            "--num-prompts",
            "10",
            "--random-output-len",
            "4",
            "--disable-tqdm",
            "--output-file",
            &path(&out),
        ],
        MINUTE,
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let want = format!(
        "the custom dataset {} has 3 prompts; they were repeated in order to send 10 (--num-prompts). \
         sglang.bench_serving sends only the rows a file has",
        data.display()
    );
    let printed = String::from_utf8_lossy(&o.stdout).into_owned() + &stderr(&o);
    assert_eq!(
        printed.matches(&format!("warning: {want}")).count(),
        1,
        "{printed}"
    );
    let r = &read_lines(&out)[0];
    assert_eq!(r["completed"], 10);
    let warnings: Vec<&str> = r["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|w| w.as_str())
        .filter(|w| w.contains("custom dataset"))
        .collect();
    assert_eq!(warnings, vec![want.as_str()]);
}

/// Three runs of one file with the same warning, one with another.
fn runs_with_warnings(dir: &Path) {
    let src = root().join("tests/fixtures/report/fp8/tp1_in3000_out400_ratio0.8.json");
    let text = std::fs::read_to_string(src).unwrap();
    let mut lines = Vec::new();
    for (i, l) in text.lines().take(3).enumerate() {
        let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
        let mut w = vec!["the server sent no usage: output tokens were counted with the tokenizer"];
        if i == 1 {
            w.push("client saturated");
        }
        v["warnings"] = serde_json::json!(w);
        lines.push(v.to_string());
    }
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("tp1_in3000_out400_ratio0.8.json"),
        lines.join("\n") + "\n",
    )
    .unwrap();
}

#[test]
fn report_and_compare_print_each_warning_once_with_a_count() {
    let dir = tempdir();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    runs_with_warnings(&a);
    runs_with_warnings(&b);
    let usage = "the server sent no usage";
    let o = run(&["report", &path(&a)], MINUTE);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let err = stderr(&o);
    assert_eq!(err.matches(usage).count(), 1, "{err}");
    assert!(err.contains("note: warning (all 3 runs): the server sent no usage: output tokens were counted with the tokenizer"), "{err}");
    assert!(err.contains("note: warning (1 of 3 runs: "), "{err}");
    let o = run(
        &[
            "compare",
            &path(&a),
            &path(&b),
            "--out",
            &path(&dir.path().join("cmp")),
        ],
        MINUTE,
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let all = String::from_utf8_lossy(&o.stdout).into_owned() + &stderr(&o);
    // Once per side, each with its count.
    assert_eq!(all.matches(usage).count(), 2, "{all}");
    assert_eq!(all.matches("warning (all 3 runs): ").count(), 2, "{all}");
}

#[test]
fn os_errors_are_printed_once() {
    let dir = tempdir();
    let missing = path(&dir.path().join("missing.toml"));
    let missing_data = path(&dir.path().join("missing.jsonl"));
    let file = dir.path().join("file");
    std::fs::write(&file, "").unwrap();
    let under_file = path(&file.join("r.jsonl"));
    let cases: Vec<Vec<&str>> = vec![
        vec!["sweep", &missing],
        vec!["run", &missing],
        vec![
            "bench",
            "--sim",
            "fast",
            "--dataset-name",
            "custom",
            "--dataset-path",
            &missing_data,
            "--output-file",
            &under_file,
        ],
        vec![
            "bench",
            "--sim",
            "fast",
            "--dataset-name",
            "custom",
            "--dataset-path",
            &missing_data,
            "--output-file",
            "/proc/r.jsonl",
        ],
        vec![
            "bench",
            "--sim",
            "fast",
            "--dataset-name",
            "custom",
            "--dataset-path",
            &missing_data,
        ],
        vec!["bench", "--sim", "fast", "--tokenizer", &missing_data],
        vec!["eval", "--sim", "--custom", &missing_data],
    ];
    let mut os_errors = 0;
    for args in cases {
        let mut a = args.clone();
        let out = path(&dir.path().join("out.jsonl"));
        if a[0] == "bench" && !a.contains(&"--output-file") {
            a.extend(["--output-file", &out]);
        }
        let o = run(&a, MINUTE);
        let err = stderr(&o);
        assert!(code(&o) != 0 && code(&o) != 101, "{a:?}: {err}");
        let line = last_line(&o);
        assert!(line.starts_with("error: "), "{a:?}: {err}");
        if let Some(at) = line.find("(os error") {
            os_errors += 1;
            let tail = &line[at..];
            let n = &tail[..tail.find(')').unwrap() + 1];
            assert_eq!(line.matches(n).count(), 1, "{a:?}: {line}");
        }
    }
    assert!(os_errors >= 4, "the cases exercise OS errors");
}

#[test]
fn impossible_numbers_get_the_one_message_before_any_request() {
    let (url, seen) = counting_listener();
    let cases: &[(&[&str], &str)] = &[
        (
            &["bench", "--timeout", "0"],
            "error: invalid setting: --timeout 0: is 0 (it would end at once); use a number of seconds above 0, at most 1e9",
        ),
        (
            &["bench", "--duration", "NaN"],
            "error: invalid setting: --duration NaN: not a number; use a number of seconds above 0, at most 1e9",
        ),
        (
            &["bench", "--idle-timeout", "1e300"],
            "error: invalid setting: --idle-timeout 1e300: is too long; use a number of seconds above 0, at most 1e9",
        ),
        (
            &["bench", "--max-concurrency", "-3"],
            "error: invalid value '-3' for '--max-concurrency <MAX_CONCURRENCY>': -3 is negative: give a whole number",
        ),
        (
            &["bench", "--random-input-len", "0"],
            "error: invalid value '0' for '--random-input-len <RANDOM_INPUT_LEN>': length 0: a request needs at least 1 token",
        ),
        (
            &["eval", "--timeout", "0", "--model", "m", "--datasets", "aime24"],
            "error: invalid value '0' for '--timeout <TIMEOUT>': is 0 (it would end at once); use a number of seconds above 0, at most 1e9",
        ),
        (
            &["sweep", "--pause", "-1", "--model", "m"],
            "error: invalid value '-1' for '--pause <PAUSE>': is negative; use a number of seconds from 0, at most 1e9",
        ),
    ];
    for (args, want) in cases {
        let mut a = args.to_vec();
        a.extend(["--base-url", &url]);
        let o = run(&a, MINUTE);
        assert_eq!(code(&o), 2, "{a:?}: {}", stderr(&o));
        let first = stderr(&o).lines().next().unwrap_or_default().to_string();
        let last = last_line(&o);
        assert!(first == *want || last == *want, "{a:?}: {}", stderr(&o));
    }
    assert_eq!(seen.load(Ordering::SeqCst), 0, "nothing was sent");
}

fn rust_sources(dir: &Path, out: &mut String) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_sources(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push_str(&std::fs::read_to_string(&p).unwrap_or_default());
        }
    }
}

/// docs/reliability.md's newcomer table cannot rot: every test its rows name exists.
#[test]
fn newcomer_table_names_only_tests_that_exist() {
    let doc = std::fs::read_to_string(root().join("docs/reliability.md")).unwrap();
    let table = doc
        .split("## A newcomer's first hour")
        .nth(1)
        .expect("the newcomer section")
        .split("\n## ")
        .next()
        .unwrap();
    let mut sources = String::new();
    for dir in ["src", "crates", "tests"] {
        rust_sources(&root().join(dir), &mut sources);
    }
    let rows: Vec<&str> = table
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| case"))
        .collect();
    assert!(rows.len() >= 10, "{} rows", rows.len());
    for row in rows {
        let last = row.trim_end_matches('|').rsplit(" | ").next().unwrap();
        let names: Vec<&str> = last
            .split('`')
            .skip(1)
            .step_by(2)
            .filter(|n| n.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
            .collect();
        assert!(!names.is_empty(), "a row names its test: {row}");
        for n in names {
            assert!(
                sources.contains(&format!("fn {n}(")),
                "docs/reliability.md names test {n:?}, which does not exist"
            );
        }
    }
}
