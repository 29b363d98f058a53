//! `servebench eval --under-load N`: the same eval at concurrency 1 and at concurrency N (temperature 0),
//! each into its own folder, then per dataset the share of answers that changed, accuracy at both loads
//! and McNemar's test (`servebench_report::load_sensitivity`). The eval itself is unchanged.

use anyhow::{bail, Context, Result};
use servebench_report::load_sensitivity::{measure, read_answers, LoadSensitivity};
use std::path::PathBuf;
use tokio::sync::watch;

/// What the two runs showed.
#[derive(Debug, Clone)]
pub struct UnderLoad {
    pub measurements: Vec<LoadSensitivity>,
    /// The folders of the two runs (concurrency 1, concurrency N).
    pub dirs: (PathBuf, PathBuf),
    /// `load_sensitivity.json` in the eval's output folder.
    pub file: PathBuf,
    pub interrupted: bool,
}

/// The eval's settings at one load: its own folder, temperature 0.
fn at_load(a: &super::eval::Args, concurrency: usize) -> super::eval::Args {
    let mut b = a.clone();
    b.under_load = None;
    b.concurrency = concurrency;
    b.temperature = Some(0.0);
    b.output_dir = a.output_dir.join(format!("c{concurrency}"));
    b
}

/// Runs both evals (resumable, as eval is) and measures every dataset they share.
pub async fn execute(
    a: super::eval::Args,
    n: usize,
    stop: watch::Receiver<bool>,
) -> Result<UnderLoad> {
    if n < 2 {
        bail!("--under-load {n}: give the busy concurrency, 2 or more (e.g. 64)");
    }
    if a.temperature.is_some_and(|t| t != 0.0) {
        bail!("--under-load compares answers at temperature 0: drop --temperature");
    }
    let (low, high) = (at_load(&a, 1), at_load(&a, n));
    let dirs = (low.output_dir.clone(), high.output_dir.clone());
    let lo = super::eval::execute(low, stop.clone()).await?;
    let hi = if lo.interrupted {
        None
    } else {
        Some(super::eval::execute(high, stop).await?)
    };
    let interrupted = lo.interrupted || hi.as_ref().is_none_or(|h| h.interrupted);
    let mut measurements = Vec::new();
    if !interrupted {
        for r in &lo.reports {
            let file = |d: &PathBuf| d.join(format!("{}_predictions.jsonl", r.dataset));
            let (a1, _) = read_answers(&file(&dirs.0))?;
            let (an, _) = read_answers(&file(&dirs.1))?;
            let n32 = u32::try_from(n).unwrap_or(u32::MAX);
            if let Some(m) = measure(&r.dataset, (1, &a1), (n32, &an)) {
                measurements.push(m);
            }
        }
    }
    let file = a.output_dir.join("load_sensitivity.json");
    if !interrupted {
        let text = serde_json::to_string_pretty(&measurements)?;
        std::fs::write(&file, text + "\n")
            .with_context(|| format!("cannot write {}", file.display()))?;
    }
    Ok(UnderLoad {
        measurements,
        dirs,
        file,
        interrupted,
    })
}

pub fn run(a: super::eval::Args, n: usize) -> Result<()> {
    let rt = super::runtime()?;
    let stop = super::stop_on_ctrl_c(
        &rt,
        "stopping; finished samples are saved (rerun the same command to resume)",
    );
    let json = a.json;
    let out = rt.block_on(execute(a, n, stop))?;
    if out.interrupted {
        eprintln!("interrupted: rerun the same command to finish");
        return Ok(());
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&out.measurements)?);
        return Ok(());
    }
    for m in &out.measurements {
        println!("{}", m.statement());
    }
    println!(
        "Predictions: {} and {}; measurement: {}",
        out.dirs.0.display(),
        out.dirs.1.display(),
        out.file.display()
    );
    Ok(())
}
