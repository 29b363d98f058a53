//! `servebench grade`: decide whether a predicted math answer equals the gold answer, for one pair or a file of pairs.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use serde_json::{json, Value};
use servebench_eval::grade::{grade_prediction, GradeOptions, GraderMode, Verdict};

/// Decide whether a predicted math answer equals the gold answer.
///
/// One pair: `servebench grade --gold '\frac{14}{3}' --pred '14/3'`. A file of pairs (JSON array or JSONL with
/// `answer`/`gold` and `prediction`/`pred`): `servebench grade --pairs FILE [--out FILE]`. A prediction that is a
/// whole response (`\boxed{…}`, `<think>`, "the answer is") is extracted first.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The gold answer (LaTeX or ASCII).
    #[arg(
        long,
        requires = "pred",
        conflicts_with = "pairs",
        allow_hyphen_values = true
    )]
    pub gold: Option<String>,
    /// The predicted answer, or a response containing it.
    #[arg(
        long,
        requires = "gold",
        conflicts_with = "pairs",
        allow_hyphen_values = true
    )]
    pub pred: Option<String>,
    /// A JSON array or JSONL file of records with `answer`/`gold` and `prediction`/`pred`.
    #[arg(long, value_name = "FILE", required_unless_present = "gold")]
    pub pairs: Option<PathBuf>,
    /// Where to write the verdicts of --pairs (one JSON object a line); default stdout.
    #[arg(long, value_name = "FILE", requires = "pairs")]
    pub out: Option<PathBuf>,
    /// Rule set: servebench (strict but fair) or qwen (Qwen2.5-Math `math_equal`, quirks included).
    #[arg(long, value_enum, default_value_t = Grader::Servebench)]
    pub grader: Grader,
    /// Relative tolerance of numeric comparison.
    #[arg(long, default_value_t = 1e-4)]
    pub rel_tol: f64,
    /// Time bound per pair, in seconds; a pair out of time is not equal and reported as a timeout.
    #[arg(long, default_value_t = 1.0)]
    pub timeout: f64,
    /// Do not accept a percentage for its fraction (`10\%` vs `0.1`).
    #[arg(long)]
    pub no_percent: bool,
    /// Ignore the bracket type of intervals (`[2,5)` = `(2,5]`).
    #[arg(long)]
    pub ignore_interval_brackets: bool,
    /// Print the single verdict as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Grader {
    Servebench,
    Qwen,
}

fn options(args: &Args) -> anyhow::Result<GradeOptions> {
    if !(args.rel_tol >= 0.0 && args.rel_tol < 1.0) {
        bail!("--rel-tol must be in [0, 1), got {}", args.rel_tol);
    }
    if !(args.timeout > 0.0 && args.timeout <= 3600.0) {
        bail!(
            "--timeout must be between 0 and 3600 seconds, got {}",
            args.timeout
        );
    }
    Ok(GradeOptions {
        mode: match args.grader {
            Grader::Servebench => GraderMode::Servebench,
            Grader::Qwen => GraderMode::Qwen,
        },
        rel_tol: args.rel_tol,
        percent: !args.no_percent,
        timeout: Duration::from_secs_f64(args.timeout),
        strict_intervals: !args.ignore_interval_brackets,
    })
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let opts = options(&args)?;
    match (&args.gold, &args.pred, &args.pairs) {
        (Some(gold), Some(pred), None) => single(gold, pred, &opts, args.json),
        (None, None, Some(path)) => pairs(path, args.out.as_deref(), &opts),
        _ => bail!("give either --gold and --pred, or --pairs FILE"),
    }
}

fn single(gold: &str, pred: &str, opts: &GradeOptions, as_json: bool) -> anyhow::Result<()> {
    let (extracted, v) = grade_prediction(pred, gold, opts);
    if as_json {
        println!(
            "{}",
            json!({"equal": v.equal, "rule": v.rule, "timeout": v.timeout, "extracted": extracted})
        );
    } else {
        if let Some(e) = &extracted {
            println!("extracted: {e}");
        }
        let word = if v.equal { "equal" } else { "not equal" };
        let timeout = if v.timeout { " (timed out)" } else { "" };
        println!("{word} (rule: {}){timeout}", v.rule);
    }
    Ok(())
}

/// One record of a pairs file: its position for messages, gold and prediction.
struct Pair {
    index: usize,
    gold: String,
    pred: String,
}

/// Where a record sits, for error messages.
fn place(path: &Path, index: usize, line: Option<usize>) -> String {
    match line {
        Some(l) => format!("{}:{l} (record {index})", path.display()),
        None => format!("{} (record {index})", path.display()),
    }
}

fn text_field(
    rec: &Value,
    names: [&str; 2],
    path: &Path,
    index: usize,
    line: Option<usize>,
) -> anyhow::Result<String> {
    let obj = rec.as_object().with_context(|| {
        format!(
            "{}: expected a JSON object, found {rec}",
            place(path, index, line)
        )
    })?;
    let Some((name, value)) = names.iter().find_map(|n| obj.get(*n).map(|v| (*n, v))) else {
        bail!(
            "{}: missing field `{}` (or `{}`); each record needs the gold answer (`answer` or `gold`) and the prediction (`prediction` or `pred`)",
            place(path, index, line),
            names[0],
            names[1]
        );
    };
    match value {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Null => Ok(String::new()),
        other => bail!(
            "{}: field `{name}` must be a string or a number, found {other}",
            place(path, index, line)
        ),
    }
}

fn read_pairs(path: &Path) -> anyhow::Result<Vec<Pair>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read pairs file {}", path.display()))?;
    let mut out = Vec::new();
    if text.trim_start().starts_with('[') {
        let all: Vec<Value> = serde_json::from_str(&text)
            .with_context(|| format!("{}: not a valid JSON array of records", path.display()))?;
        for (index, rec) in all.iter().enumerate() {
            let gold = text_field(rec, ["answer", "gold"], path, index, None)?;
            let pred = text_field(rec, ["prediction", "pred"], path, index, None)?;
            out.push(Pair { index, gold, pred });
        }
    } else {
        for (lineno, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let index = out.len();
            let rec: Value = serde_json::from_str(line).with_context(|| {
                format!("{}: not valid JSON", place(path, index, Some(lineno + 1)))
            })?;
            let gold = text_field(&rec, ["answer", "gold"], path, index, Some(lineno + 1))?;
            let pred = text_field(&rec, ["prediction", "pred"], path, index, Some(lineno + 1))?;
            out.push(Pair { index, gold, pred });
        }
    }
    Ok(out)
}

fn verdict_line(index: usize, v: &Verdict) -> String {
    json!({"index": index, "equal": v.equal, "rule": v.rule, "timeout": v.timeout}).to_string()
}

fn pairs(path: &Path, out: Option<&Path>, opts: &GradeOptions) -> anyhow::Result<()> {
    let records = read_pairs(path)?;
    let mut sink: Box<dyn Write> = match out {
        Some(p) => Box::new(BufWriter::new(
            std::fs::File::create(p)
                .with_context(|| format!("cannot create output file {}", p.display()))?,
        )),
        None => Box::new(BufWriter::new(std::io::stdout().lock())),
    };
    let (mut equal, mut unequal, mut timeouts) = (0usize, 0usize, 0usize);
    for r in &records {
        let (_, v) = grade_prediction(&r.pred, &r.gold, opts);
        if v.timeout {
            timeouts += 1;
        } else if v.equal {
            equal += 1;
        } else {
            unequal += 1;
        }
        writeln!(sink, "{}", verdict_line(r.index, &v)).context("cannot write verdicts")?;
    }
    sink.flush().context("cannot write verdicts")?;
    eprintln!(
        "{} pairs: {equal} equal, {unequal} not equal, {timeouts} timeouts",
        records.len()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(name: &str, text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        (dir, p)
    }

    #[test]
    fn reads_json_array_and_jsonl() {
        let (_d, p) = write(
            "a.json",
            r#"[{"answer": "\\frac{14}{3}", "prediction": "\\boxed{14/3}"}, {"gold": 5, "pred": "x=5"}]"#,
        );
        let r = read_pairs(&p).unwrap();
        assert_eq!(
            (r.len(), r[1].gold.as_str(), r[1].pred.as_str()),
            (2, "5", "x=5")
        );
        let (_d, p) = write(
            "a.jsonl",
            "{\"gold\": \"1\", \"pred\": \"2\"}\n\n{\"answer\": \"3\", \"prediction\": \"3\"}\n",
        );
        let r = read_pairs(&p).unwrap();
        assert_eq!((r.len(), r[1].index, r[1].gold.as_str()), (2, 1, "3"));
    }

    #[test]
    fn errors_name_file_line_and_field() {
        let (_d, p) = write(
            "bad.jsonl",
            "{\"gold\": \"1\", \"pred\": \"2\"}\n{\"gold\": \"1\"}\n",
        );
        let e = format!("{:#}", read_pairs(&p).err().unwrap());
        assert!(
            e.contains("bad.jsonl:2 (record 1)") && e.contains("`prediction`"),
            "{e}"
        );
        let (_d, p) = write("bad.json", r#"[{"answer": "1", "prediction": ["x"]}]"#);
        let e = format!("{:#}", read_pairs(&p).err().unwrap());
        assert!(
            e.contains("bad.json (record 0)") && e.contains("field `prediction`"),
            "{e}"
        );
        let (_d, p) = write("broken.jsonl", "{not json}\n");
        let e = format!("{:#}", read_pairs(&p).err().unwrap());
        assert!(e.contains("broken.jsonl:1"), "{e}");
    }

    #[test]
    fn verdict_lines() {
        let v = Verdict {
            equal: true,
            rule: "exact",
            timeout: false,
        };
        assert_eq!(
            verdict_line(3, &v),
            r#"{"index":3,"equal":true,"rule":"exact","timeout":false}"#
        );
    }
}
