//! Beyond one machine: `--shard I/N` splits a sweep's points and a study's deployments; `servebench report A B C`
//! merges the shards' folders into the summary of one unsharded run; duplicates are named; the container recipe
//! (`deploy/`) is checked as text.

use crate::common::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_servebench");

const SWEEP: &[&str] = &[
    "sweep",
    "--sim",
    "fast",
    "--input-output",
    "128:16,64:8",
    "--concurrency",
    "1,2",
    "--range-ratio",
    "1",
    "--num-prompts",
    "2x",
];

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn ok(o: Output) -> String {
    assert!(
        o.status.success(),
        "{}\n{}",
        text(&o.stdout),
        text(&o.stderr)
    );
    text(&o.stdout)
}

fn sweep(extra: &[&str], out: &Path) -> Command {
    let mut c = Command::new(BIN);
    c.args(SWEEP)
        .args(extra)
        .arg("--output-dir")
        .arg(out)
        .env_remove("OPENAI_API_KEY")
        .env_remove("JOB_COMPLETION_INDEX")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

fn report(dirs: &[&Path], extra: &[&str]) -> Output {
    Command::new(BIN)
        .arg("report")
        .args(dirs)
        .args(extra)
        .output()
        .unwrap()
}

/// Columns of summary.csv that do not depend on timing.
const DETERMINISTIC: &[&str] = &[
    "prompt_num",
    "concurrency",
    "random_input_len",
    "random_output_len",
    "total_input_tokens",
    "total_output_tokens",
    "random_range_ratio",
    "completed",
    "failed",
    "request_rate",
    "total_output_tokens_retokenized",
    "tp",
    "backend",
    "model",
    "tool",
    "simulated",
];

/// The header and the deterministic cells of every row of a summary.csv, and the file names the rows came from.
fn summary(path: &Path) -> (Vec<String>, Vec<BTreeMap<String, String>>, Vec<String>) {
    let csv = std::fs::read_to_string(path).unwrap();
    let mut lines = csv.lines();
    let header: Vec<String> = lines
        .next()
        .unwrap()
        .split(',')
        .map(str::to_string)
        .collect();
    let mut rows = Vec::new();
    let mut files = Vec::new();
    for l in lines {
        let cells: Vec<&str> = l.split(',').collect();
        assert_eq!(cells.len(), header.len(), "{l}");
        let mut row = BTreeMap::new();
        for (h, c) in header.iter().zip(&cells) {
            if DETERMINISTIC.contains(&h.as_str()) {
                row.insert(h.clone(), c.to_string());
            }
            if h == "file" {
                let name = Path::new(c).file_name().unwrap().to_string_lossy();
                files.push(name.into_owned());
            }
        }
        rows.push(row);
    }
    (header, rows, files)
}

fn point_files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("tp") && n.ends_with(".json"))
        .collect();
    v.sort();
    v
}

#[test]
fn shards_merged_by_report_equal_one_unsharded_sweep() {
    let dir = tempdir();
    let d = |n: &str| dir.path().join(n);
    // Everything at once, as N Indexed-Job completions would: one unsharded sweep, three shards into their own
    // folders and three shards into one shared folder (the last through auto/3 and $JOB_COMPLETION_INDEX).
    let mut jobs = vec![sweep(&[], &d("full")).spawn().unwrap()];
    for i in 0..3 {
        let spec = format!("{i}/3");
        jobs.push(
            sweep(&["--shard", &spec], &d(&format!("s{i}")))
                .spawn()
                .unwrap(),
        );
        jobs.push(
            sweep(&["--shard", "auto/3"], &d("shared"))
                .env("JOB_COMPLETION_INDEX", i.to_string())
                .spawn()
                .unwrap(),
        );
    }
    let outs: Vec<String> = jobs
        .into_iter()
        .map(|j| ok(j.wait_with_output().unwrap()))
        .collect();
    // A shard leaves the report to the merge.
    for o in &outs[1..] {
        assert!(
            o.contains("shard ") && o.contains(" of the plan's 4 points"),
            "{o}"
        );
        assert!(o.contains("report: not written by a shard"), "{o}");
    }
    for i in 0..3 {
        assert!(!d(&format!("s{i}")).join("summary.csv").exists());
    }
    // Every point in exactly one shard; together the whole plan.
    let full = point_files(&d("full"));
    assert_eq!(full.len(), 4);
    let mut union: Vec<String> = (0..3)
        .flat_map(|i| point_files(&d(&format!("s{i}"))))
        .collect();
    assert_eq!(union.len(), 4, "no point ran in two shards: {union:?}");
    union.sort();
    assert_eq!(union, full);
    assert_eq!(point_files(&d("shared")), full);

    let (want_header, want_rows, want_files) = summary(&d("full").join("summary.csv"));
    assert_eq!(want_rows.len(), 4);
    // Uneven shards: k mod 3 gives shard 0 two points (k = 0, 3), shards 1 and 2 one each.
    let sizes: Vec<usize> = (0..3)
        .map(|i| point_files(&d(&format!("s{i}"))).len())
        .collect();
    assert_eq!(sizes, [2, 1, 1]);
    // Merged from three folders into a fourth (--output), and from the one shared folder.
    ok(report(
        &[&d("s0"), &d("s1"), &d("s2")],
        &["--output", d("merged").to_str().unwrap()],
    ));
    ok(report(&[&d("shared")], &[]));
    for merged in [d("merged"), d("shared")] {
        let (header, rows, files) = summary(&merged.join("summary.csv"));
        assert_eq!(header, want_header, "{}", merged.display());
        assert_eq!(rows, want_rows, "{}", merged.display());
        assert_eq!(files, want_files, "{}", merged.display());
        assert!(merged.join("report.html").is_file());
    }
    // Values that prove the rows are the real points, not empty cells: 2x prompts, exact lengths.
    for r in &want_rows {
        let c: u64 = r["concurrency"].parse().unwrap();
        assert_eq!(r["prompt_num"], (2 * c).to_string());
        assert_eq!(r["completed"], (2 * c).to_string());
        let out: u64 = r["random_output_len"].parse().unwrap();
        assert_eq!(r["total_output_tokens"], (2 * c * out).to_string());
    }

    // The same point in two folders is named, not a silent double row.
    let o = report(
        &[&d("s0"), &d("full")],
        &["--output", d("dup").to_str().unwrap()],
    );
    let err = text(&o.stderr);
    ok(o);
    assert_eq!(err.matches("duplicate point").count(), 2, "{err}");
    assert!(err.contains("--on-duplicate"), "{err}");
    assert_eq!(summary(&d("dup").join("summary.csv")).1.len(), 6);
    let o = report(
        &[&d("s0"), &d("full")],
        &[
            "--on-duplicate",
            "error",
            "--output",
            d("dup2").to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    assert!(
        err.contains("2 point(s) found in more than one result file"),
        "{err}"
    );
    assert!(!d("dup2").join("summary.csv").exists());
    ok(report(
        &[&d("s0"), &d("full")],
        &[
            "--on-duplicate",
            "newest",
            "--output",
            d("dup3").to_str().unwrap(),
        ],
    ));
    assert_eq!(summary(&d("dup3").join("summary.csv")).1, want_rows);
}

#[test]
fn a_shard_dry_run_lists_its_points_and_bad_shards_are_refused() {
    let dir = tempdir();
    let out = dir.path().join("x");
    let o = ok(sweep(&["--shard", "0/3", "--dry-run"], &out)
        .output()
        .unwrap());
    let lines: Vec<&str> = o.lines().collect();
    assert_eq!(lines[0], "shard 0/3: 2 of the plan's 4 points", "{o}");
    // Plan order: 128:16 at 1, 2 then 64:8 at 1, 2 → k = 0 and 3.
    assert!(
        lines[1].starts_with("[1/2] (plan point k=0 of 4) in 128 out 16 ratio 1 conc 1 → "),
        "{o}"
    );
    assert!(
        lines[2].starts_with("[2/2] (plan point k=3 of 4) in 64 out 8 ratio 1 conc 2 → "),
        "{o}"
    );
    assert_eq!(lines.len(), 3);
    assert!(!out.exists(), "a dry run writes nothing");
    for (spec, want) in [
        ("3/3", "out of range"),
        ("0/0", "from 1 to"),
        ("1", "expected I/N"),
        ("auto/2", "JOB_COMPLETION_INDEX is not set"),
    ] {
        let o = sweep(&["--shard", spec, "--dry-run"], &out)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{spec}");
        assert!(
            text(&o.stderr).contains(want),
            "{spec}: {}",
            text(&o.stderr)
        );
    }
    // More shards than points: an empty shard succeeds and runs nothing.
    let o = ok(sweep(&["--shard", "7/8"], &out).output().unwrap());
    assert!(o.contains("nothing to run"), "{o}");
    assert!(!out.join("summary.csv").exists());
}

/// A loopback port nothing listens on (bound, then released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A study of three simulated deployments (launched as `servebench sim` children), a two-point sweep each.
fn small_study(dir: &Path) -> PathBuf {
    let mut plan = String::from("output_dir = \"study\"\n");
    for name in ["a", "b", "c"] {
        let port = free_port();
        plan.push_str(&format!(
            "[[deployment]]\nname = \"{name}\"\nbase_url = \"http://127.0.0.1:{port}\"\nmodel = \"sim-{name}\"\n\
             [deployment.server]\ncommand = [\"{{servebench}}\", \"sim\", \"--port\", \"{port}\", \"--model\", \
             \"sim-{name}\", \"--preset\", \"fast\"]\nready_timeout_s = 60\nstop_grace_s = 5\n"
        ));
    }
    plan.push_str(
        "[sweep]\naxes = { input_output = [\"64:8\"], concurrency = [1, 2], range_ratio = [1.0] }\n\
         run = { num_prompts = \"2x\", file_pattern = \"c{conc}_in{in}_out{out}.json\" }\n",
    );
    let path = dir.join("study.toml");
    std::fs::write(&path, plan).unwrap();
    path
}

fn run(plan: &Path, extra: &[&str]) -> Output {
    Command::new(BIN)
        .arg("run")
        .arg(plan)
        .args(extra)
        .env_remove("OPENAI_API_KEY")
        .env_remove("JOB_COMPLETION_INDEX")
        .output()
        .unwrap()
}

#[test]
fn study_shards_run_disjoint_deployments_then_one_unsharded_run_writes_the_decision() {
    let dir = tempdir();
    let plan = small_study(dir.path());
    let study = dir.path().join("study");
    let o = ok(run(&plan, &["--shard", "0/2", "--dry-run"]));
    assert!(o.contains("shard 0/2: 2 of 3 deployments (a, c)"), "{o}");
    assert!(o.contains("==== deployment a (1/3)") && o.contains("==== deployment c (3/3)"));
    assert!(!o.contains("==== deployment b"), "{o}");
    assert!(!study.exists(), "a dry run writes nothing");

    let s1 = ok(run(&plan, &["--shard", "1/2"]));
    assert!(
        s1.contains("shard 1/2: 1 of the study's 3 deployments"),
        "{s1}"
    );
    assert!(
        s1.contains("decision report: not written by a shard"),
        "{s1}"
    );
    assert!(study.join("b/deployment_done.json").is_file());
    assert!(!study.join("a").exists() && !study.join("c").exists());
    assert!(!study.join("study.md").exists());
    let s0 = ok(run(&plan, &["--shard", "0/2"]));
    assert!(
        s0.contains("==== deployment a") && !s0.contains("==== deployment b"),
        "{s0}"
    );
    for name in ["a", "b", "c"] {
        let d = study.join(name);
        assert!(d.join("deployment_done.json").is_file(), "{name}");
        assert!(d.join("perf/c2_in64_out8.json").is_file(), "{name}");
    }
    // The merge step: every deployment is done, so nothing is launched and the decision report is written.
    let all = ok(run(&plan, &[]));
    assert_eq!(all.matches("finished earlier").count(), 3, "{all}");
    assert!(!all.contains("server: launching"), "{all}");
    assert!(study.join("study.md").is_file() && study.join("study.json").is_file());

    // A single-run plan has nothing to shard by deployment.
    let single = dir.path().join("single.toml");
    std::fs::write(
        &single,
        "output_dir = \"one\"\n[target]\nsim = \"fast\"\n[sweep]\naxes = { input_output = [\"64:8\"], concurrency = [1] }\n",
    )
    .unwrap();
    let o = run(&single, &["--shard", "0/2"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("servebench sweep PLAN.toml --shard"),
        "{}",
        text(&o.stderr)
    );
}

/// The text of a deploy/ file.
fn deploy(name: &str) -> String {
    std::fs::read_to_string(root().join("deploy").join(name)).unwrap()
}

/// The flow sequence (`key: ["a", "b", …]`, possibly over several lines) after `key:` in `doc`, read as JSON
/// (a flow sequence of double-quoted strings is a JSON array).
fn flow_list(doc: &str, key: &str) -> Vec<String> {
    let at = doc
        .find(&format!("{key}: ["))
        .unwrap_or_else(|| panic!("no {key}: [ in {doc}"));
    let rest = &doc[at + key.len() + 2..];
    let end = rest.find(']').unwrap();
    serde_json::from_str(&rest[..=end]).unwrap()
}

/// The number after `key:` (first occurrence).
fn number(doc: &str, key: &str) -> usize {
    doc.lines()
        .find_map(|l| l.trim().strip_prefix(&format!("{key}:")))
        .unwrap_or_else(|| panic!("no {key}:"))
        .trim()
        .parse()
        .unwrap()
}

/// The YAML document of `kind` whose text holds `marker`.
fn document<'a>(text: &'a str, kind: &str, marker: &str) -> &'a str {
    text.split("\n---\n")
        .find(|d| d.contains(&format!("\nkind: {kind}\n")) && d.contains(marker))
        .unwrap_or_else(|| panic!("no {kind} with {marker}"))
}

fn parse_cli(args: &[String]) -> servebench::cli::Command {
    use clap::Parser;
    let argv = std::iter::once("servebench".to_string()).chain(args.iter().cloned());
    servebench::cli::Cli::try_parse_from(argv)
        .unwrap_or_else(|e| panic!("{args:?}: {e}"))
        .command
}

#[test]
fn the_container_recipe_copies_what_exists_and_runs_as_a_user() {
    let docker = deploy("Dockerfile");
    let lines: Vec<&str> = docker
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .collect();
    let froms: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| l.starts_with("FROM "))
        .collect();
    assert_eq!(froms.len(), 2, "multi-stage: build, runtime");
    assert!(froms[0].starts_with("FROM rust:") && froms[0].ends_with(" AS build"));
    assert!(froms[1].starts_with("FROM debian:") && froms[1].ends_with("-slim"));
    let runtime_at = lines.iter().position(|l| *l == froms[1]).unwrap();
    let ignore = deploy("Dockerfile.dockerignore");
    let allowed: Vec<&str> = ignore
        .lines()
        .filter_map(|l| l.strip_prefix('!'))
        .map(|p| p.trim_end_matches('/'))
        .collect();
    for p in &allowed {
        assert!(
            root().join(p).exists(),
            ".dockerignore allows {p}, which is not in the repository"
        );
    }
    let mut copies = 0;
    for (i, l) in lines.iter().enumerate() {
        let Some(rest) = l.strip_prefix("COPY ") else {
            continue;
        };
        if i > runtime_at {
            // The runtime stage takes the binary from the build stage and nothing from the repository.
            assert!(rest.starts_with("--from=build /out/servebench "), "{l}");
            continue;
        }
        let words: Vec<&str> = rest.split_whitespace().collect();
        for src in &words[..words.len() - 1] {
            assert!(
                root().join(src).exists(),
                "COPY {src}: not in the repository"
            );
            let top = src.trim_end_matches('/').split('/').next().unwrap();
            assert!(
                allowed.contains(&top),
                "COPY {src} is filtered out by the .dockerignore"
            );
            copies += 1;
        }
    }
    assert!(copies >= 4, "Cargo.toml, Cargo.lock, src, crates");
    let user = lines[runtime_at..]
        .iter()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("the runtime stage sets a user");
    assert!(
        !user.starts_with('0') && !user.starts_with("root"),
        "USER {user}"
    );
    assert!(lines
        .iter()
        .any(|l| l.starts_with("ENTRYPOINT [\"/usr/local/bin/servebench\"]")));
    for l in &lines {
        let up = l.to_uppercase();
        assert!(
            !((up.starts_with("ENV ") || up.starts_with("ARG "))
                && ["KEY", "TOKEN", "SECRET", "PASSWORD"]
                    .iter()
                    .any(|w| up.contains(w))),
            "no secret in the image: {l}"
        );
    }
}

#[test]
fn the_indexed_job_runs_one_shard_per_completion_with_the_key_from_a_secret() {
    let yaml = deploy("k8s-indexed-job.yaml");
    let job = document(&yaml, "Job", "completionMode: Indexed");
    let n = number(job, "completions");
    assert_eq!(number(job, "parallelism"), n, "one pod per shard at once");
    assert!(n >= 2);
    // The servebench container: `sweep PLAN --shard $(JOB_COMPLETION_INDEX)/N`, into a folder per shard.
    let container = &job[job.find("- name: servebench").unwrap()..];
    let args = flow_list(container, "args");
    let shard_at = args.iter().position(|a| a == "--shard").expect("--shard");
    assert_eq!(args[shard_at + 1], format!("$(JOB_COMPLETION_INDEX)/{n}"));
    // What the kubelet runs for completion 2: valid servebench flags, shard 2/N.
    let expanded: Vec<String> = args
        .iter()
        .map(|a| a.replace("$(JOB_COMPLETION_INDEX)", "2"))
        .collect();
    let servebench::cli::Command::Sweep(sweep) = parse_cli(&expanded) else {
        panic!("{args:?} is not a sweep")
    };
    assert_eq!(
        sweep.shard,
        Some(servebench::shard::Shard { index: 2, count: n })
    );
    let out = sweep.output_dir.clone().unwrap();
    // The key: from a Secret through the environment, never in the arguments or the file.
    let env_at = container.find("env:").unwrap();
    let env = &container[env_at..];
    assert!(env.contains("- name: OPENAI_API_KEY\n"), "{env}");
    let key_ref = &env[env.find("OPENAI_API_KEY").unwrap()..];
    assert!(key_ref
        .trim_start_matches("OPENAI_API_KEY\n")
        .trim_start()
        .starts_with("valueFrom:"));
    assert!(key_ref.contains("secretKeyRef:"));
    for (name, text) in [
        ("k8s-indexed-job.yaml", yaml.as_str()),
        ("k8s-report-job.yaml", &deploy("k8s-report-job.yaml")),
        ("Dockerfile", &deploy("Dockerfile")),
    ] {
        assert!(
            !text.contains("--api-key"),
            "{name} passes a key as an argument"
        );
        assert!(!text.contains("sk-"), "{name} holds something key-shaped");
        assert!(
            !text.lines().any(|l| l.trim_start().starts_with("value:")),
            "{name}: a literal env value"
        );
    }
    // The plan in the ConfigMap is a valid sweep plan with at least one point per shard.
    let cm = document(&yaml, "ConfigMap", "sweep.toml: |");
    let body: String = cm[cm.find("sweep.toml: |").unwrap()..]
        .lines()
        .skip(1)
        .map(|l| l.strip_prefix("    ").unwrap_or(l))
        .map(|l| format!("{l}\n"))
        .collect();
    let plan = servebench::sweep_plan::Plan::from_toml(&body).unwrap();
    let points = plan.points().unwrap();
    assert!(points.len() >= n, "{} points for {n} shards", points.len());
    assert!(flow_list(container, "args").contains(&"/plan/sweep.toml".to_string()));
    assert!(
        container.contains("mountPath: /plan")
            && container.contains("configMap: {name: servebench-plan}")
    );
    // Results on the shared claim the PVC document declares, merged by the report Job from the same folder.
    let pvc = document(&yaml, "PersistentVolumeClaim", "ReadWriteMany");
    assert!(pvc.contains("name: servebench-results"));
    assert!(job.contains("persistentVolumeClaim: {claimName: servebench-results}"));
    let results_mount = "/results";
    assert!(out.starts_with(results_mount), "{}", out.display());
    let report_yaml = deploy("k8s-report-job.yaml");
    let report_args = flow_list(&report_yaml, "args");
    let servebench::cli::Command::Report(report) = parse_cli(&report_args) else {
        panic!("{report_args:?} is not a report")
    };
    assert_eq!(
        report.dirs,
        vec![out.parent().unwrap().to_path_buf()],
        "the report reads the folder above every shard's"
    );
    assert!(report_yaml.contains("persistentVolumeClaim: {claimName: servebench-results}"));
}
