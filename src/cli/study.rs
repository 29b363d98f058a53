//! `servebench run STUDY.toml` with `[[deployment]]` tables: each deployment in turn (launch or attach →
//! environment and server identity → eval → sweep → stop → its own report), then the decision report
//! (`study.md`, `study.html`) comparing them. The plan is [`crate::study_plan`]; each deployment runs exactly as
//! a single-run plan ([`super::run`]) in its own folder.
//!
//! Resuming: a deployment's folder gets [`DONE_MARKER`] last, after its report; a deployment with the marker is
//! not rerun. A deployment without it is run again, which relaunches its server and resumes its eval and sweep
//! where they stopped (finished items and points are kept).

use super::run::{self as single, Args};
use crate::secrets::Redactor;
use crate::shard::Shard;
use crate::study_plan::{Study, DONE_MARKER};
use crate::study_report::{write_study_report, DeploymentInput, StudyInput};
use anyhow::{Context, Result};
use serde_json::json;
use servebench_report::decision::DecisionRules;
use std::path::Path;

/// Runs (or, with `--dry-run`, prints) the study of `a.plan`.
pub fn run(a: Args) -> Result<()> {
    let me = std::env::current_exe().context("cannot find the servebench binary's own path")?;
    let study = Study::from_file(&a.plan, &me).map_err(super::exit::BadInput::from_err)?;
    // Every deployment is checked (flags, paths, launch command) before anything runs.
    let mut prepared = Vec::with_capacity(study.deployments.len());
    for d in &study.deployments {
        let p = single::prepare_workflow(d.workflow.clone(), &a)
            .with_context(|| format!("deployment {}", d.name))
            .map_err(super::exit::BadInput::from_err)?;
        prepared.push(p);
    }
    let mut failed: Option<super::exit::TooManyFailures> = None;
    let shard = a.shard.unwrap_or(Shard::ALL);
    if a.dry_run {
        dry_run(&study, &prepared, a.fresh, shard);
        return Ok(());
    }
    let total = study.deployments.len();
    if !shard.is_all() {
        let mine = (0..total).filter(|k| shard.owns(*k)).count();
        println!("shard {shard}: {mine} of the study's {total} deployments");
        if mine == 0 {
            println!("shard {shard}: nothing to run (more shards than deployments)");
            return Ok(());
        }
    }
    let out = &study.output_dir;
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let text = std::fs::read_to_string(&a.plan)
        .with_context(|| format!("cannot read {}", a.plan.display()))?;
    let mut redactor = Redactor::new();
    for k in prepared.iter().filter_map(|p| p.api_key.as_deref()) {
        redactor.add_secret(k);
    }
    let plan_copy = out.join("plan.toml");
    std::fs::write(&plan_copy, redactor.plan_text(&text))
        .with_context(|| format!("cannot write {}", plan_copy.display()))?;
    let rt = super::runtime()?;
    let stop_rx = single::stop_on_signals(&rt);
    for (i, (d, p)) in study.deployments.iter().zip(prepared).enumerate() {
        if !shard.owns(i) {
            continue;
        }
        println!("==== deployment {} ({}/{total})", d.name, i + 1);
        if !a.fresh && is_done(d.dir()) {
            println!(
                "{}: finished earlier ({}); not rerun",
                d.name,
                d.dir().join(DONE_MARKER).display()
            );
            continue;
        }
        std::fs::create_dir_all(d.dir())
            .with_context(|| format!("cannot create {}", d.dir().display()))?;
        let end = rt
            .block_on(single::execute(p, stop_rx.clone()))
            .with_context(|| format!("deployment {}", d.name))?;
        if !end.finished {
            return Err(super::exit::Interrupted(format!(
                "study interrupted during {}: rerun the same command to resume",
                d.name
            ))
            .into());
        }
        if let Err(e) = end.failures {
            // The deployment is measured (its failures are its result); the study goes on and says so.
            eprintln!("warning: deployment {}: {e}", d.name);
            failed.get_or_insert(e);
        }
        mark_done(d.dir())?;
    }
    if shard.is_all() {
        write_decision(&study)?;
    } else {
        // The other shards may still be running: the decision report needs every deployment.
        println!(
            "decision report: not written by a shard; once every shard is done, `servebench run {}` (no --shard) \
             skips the finished deployments and writes it",
            a.plan.display()
        );
    }
    match failed {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}

/// True when the deployment's folder holds its finished marker.
pub fn is_done(dir: &Path) -> bool {
    dir.join(DONE_MARKER).is_file()
}

/// Written last, through a temporary file: a kill leaves either no marker or a whole one.
fn mark_done(dir: &Path) -> Result<()> {
    let path = dir.join(DONE_MARKER);
    let tmp = dir.join(format!("{DONE_MARKER}.tmp"));
    let body = json!({"finished_at": chrono::Local::now().to_rfc3339()});
    std::fs::write(&tmp, format!("{body}\n"))
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, &path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

fn dry_run(study: &Study, prepared: &[single::Prepared], fresh: bool, shard: Shard) {
    println!("study folder: {}", study.output_dir.display());
    let total = study.deployments.len();
    if !shard.is_all() {
        let names: Vec<&str> = study
            .deployments
            .iter()
            .enumerate()
            .filter(|(k, _)| shard.owns(*k))
            .map(|(_, d)| d.name.as_str())
            .collect();
        println!(
            "shard {shard}: {} of {total} deployments ({})",
            names.len(),
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        );
    }
    for (i, (d, p)) in study.deployments.iter().zip(prepared).enumerate() {
        if !shard.owns(i) {
            continue;
        }
        let state = if !fresh && is_done(d.dir()) {
            " (finished earlier: would not be rerun)"
        } else {
            ""
        };
        println!("==== deployment {} ({}/{total}){state}", d.name, i + 1);
        single::dry_run(p);
        println!(
            "stop the server; mark {}",
            d.dir().join(DONE_MARKER).display()
        );
    }
    if !shard.is_all() {
        println!(
            "decision report: written by `servebench run` without --shard once every shard is done"
        );
        return;
    }
    let slo = study
        .slo
        .map(|s| s.describe())
        .unwrap_or_else(|| "no [slo]: capacity not computed".into());
    println!(
        "decision report: {} and {} (SLO: {slo})",
        study.output_dir.join("study.md").display(),
        study.output_dir.join("study.html").display()
    );
}

/// The decision report over every deployment's folder.
fn write_decision(study: &Study) -> Result<()> {
    println!("==== decision report");
    let input = StudyInput {
        title: study
            .label
            .clone()
            .unwrap_or_else(|| "servebench study".into()),
        out_dir: study.output_dir.clone(),
        deployments: study
            .deployments
            .iter()
            .map(|d| DeploymentInput {
                name: d.name.clone(),
                dir: d.dir().to_path_buf(),
                gpus: d.gpus,
                price_per_gpu_hour: d.price_per_gpu_hour,
            })
            .collect(),
        slo: study.slo,
        rules: DecisionRules::default(),
    };
    let out = write_study_report(&input)?;
    for note in &out.notes {
        eprintln!("note: {note}");
    }
    for d in &out.decisions {
        println!("{}", d.sentence);
    }
    println!(
        "decision report: {} and {}",
        study.output_dir.join("study.md").display(),
        study.output_dir.join("study.html").display()
    );
    Ok(())
}
