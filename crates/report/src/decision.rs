//! The study's verdict: is B as accurate as A, and how much more (or less) does it serve within the
//! SLO, per dollar? One plain sentence with the numbers behind it, or a plain statement that the
//! evidence is too thin to decide (and why) instead of picking a winner.
//!
//! Rules (all thresholds in [`DecisionRules`]):
//! - **Accuracy** per dataset compares B − A over paired items ([`AccuracyComparison`]). B is
//!   *not worse* on a dataset when the lower end of the 95% CI of B − A is above `−margin_points`
//!   (a non-inferiority margin, 2 points by default); *worse* when the difference is significant and
//!   negative; otherwise the dataset is *inconclusive* (too few items for the margin).
//! - **Capacity** is the highest load meeting the SLO, found by the capacity search with a bracket
//!   `[capacity, first_failing)`. B serves more than A only when B's capacity is at least A's first
//!   failing load (the brackets do not overlap); otherwise the two are not distinguishable.
//! - **Thin evidence**: fewer than `min_items` paired items on a dataset, a client that saturated at a point
//!   deciding a capacity bracket where its own delay could change the SLO outcome (judged by the study report:
//!   `client_saturated_at`; a client flagged busy elsewhere is only reported, `client_busy_at`),
//!   a failure rate above `max_failure_rate`, or no capacity for either side.
//! - **Verdict**: with evidence enough, a deployment that is significantly less accurate loses;
//!   with accuracy not worse, the one with the higher capacity wins; with equal capacity, the
//!   cheaper per million output tokens wins when prices are given, else it is a tie.
//! - **Cost per correct answer** (reported, not a rule): output tokens the accuracy eval spent per correct
//!   answer × dollars per output token at the capacity load.

use crate::compare::accuracy::{format_p, AccuracyComparison};
use crate::numfmt::signed;
use serde::Serialize;

/// What one deployment showed.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DeploymentEvidence {
    pub name: String,
    /// Highest load (concurrency or request rate) that met the SLO.
    pub capacity: Option<f64>,
    /// Lowest load above it that failed the SLO (`None`: none failed up to the largest tried).
    pub first_failing: Option<f64>,
    /// Output tokens per second measured at the capacity load.
    pub output_tok_s_at_capacity: Option<f64>,
    pub gpus: Option<u32>,
    /// Price of one GPU-hour, in dollars.
    pub price_per_gpu_hour: Option<f64>,
    /// Concurrencies that decide the capacity bracket (the capacity and the first failing load) where the client
    /// was saturated *and* its own delay could have changed the point's SLO outcome: these make the evidence thin.
    pub client_saturated_at: Vec<f64>,
    /// Concurrencies where the client was flagged as saturated but could not have changed the verdict (not a
    /// deciding point, or the outcome holds with every latency moved by the client's delay). Reported, not counted.
    pub client_busy_at: Vec<f64>,
    /// Failed requests / all requests over the load runs.
    pub failure_rate: f64,
    /// Output tokens the accuracy eval spent (every sample of every dataset, `completion_tokens` as served).
    pub eval_output_tokens: Option<u64>,
    /// Correct samples of the accuracy eval, over every dataset.
    pub eval_correct: Option<u64>,
}

impl DeploymentEvidence {
    /// Dollars per million output tokens at the capacity load.
    pub fn cost_per_million_tokens(&self) -> Option<f64> {
        let hourly = f64::from(self.gpus?) * self.price_per_gpu_hour?;
        let tok_s = self.output_tok_s_at_capacity?;
        (tok_s > 0.0 && hourly.is_finite()).then(|| hourly / (tok_s * 3600.0) * 1e6)
    }

    /// Output tokens the eval spent per correct answer (wrong answers' tokens included: they were paid for too).
    pub fn output_tokens_per_correct(&self) -> Option<f64> {
        let correct = self.eval_correct.filter(|&c| c > 0)?;
        Some(self.eval_output_tokens? as f64 / correct as f64)
    }

    /// Dollars per correct answer: output tokens per correct answer × dollars per output token at the capacity
    /// load (what an answer costs when the deployment serves at the highest load that meets the SLO).
    pub fn cost_per_correct_answer(&self) -> Option<f64> {
        Some(self.output_tokens_per_correct()? * self.cost_per_million_tokens()? / 1e6)
    }
}

/// Dollars in cents from $0.10 up (`$0.85`, `$12.40`), with three significant digits below (`$0.0451`,
/// `$0.000123`): a cost per answer is often a fraction of a cent.
pub fn dollars(v: f64) -> String {
    if !v.is_finite() {
        return format!("${v}");
    }
    let digits = if v.abs() >= 0.1 || v == 0.0 {
        2
    } else {
        (2 - v.abs().log10().floor() as i64).clamp(2, 12) as usize
    };
    format!("${v:.digits$}")
}

/// Thresholds of the rules.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct DecisionRules {
    /// Non-inferiority margin for accuracy, in points.
    pub margin_points: f64,
    /// Fewest paired items for an accuracy statement.
    pub min_items: usize,
    /// Highest failure rate of a deployment's load runs for its numbers to count.
    pub max_failure_rate: f64,
}

impl Default for DecisionRules {
    fn default() -> Self {
        DecisionRules {
            margin_points: 2.0,
            min_items: 30,
            max_failure_rate: 0.01,
        }
    }
}

/// Who won.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    PreferA,
    PreferB,
    Tie,
    Undecided,
}

/// The verdict, its sentence and the reasons behind it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    pub verdict: Verdict,
    pub sentence: String,
    /// Why the evidence was too thin (empty when a verdict was reached).
    pub thin_evidence: Vec<String>,
    /// B's capacity / A's.
    pub capacity_ratio: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Accuracy {
    NotWorse,
    Worse,
    Better,
    Inconclusive,
}

fn accuracy_of(c: &AccuracyComparison, rules: &DecisionRules) -> Accuracy {
    let Some((lo, hi)) = c.ci else {
        return Accuracy::Inconclusive;
    };
    if c.significant() && c.diff < 0.0 {
        Accuracy::Worse
    } else if c.significant() && c.diff > 0.0 {
        Accuracy::Better
    } else if lo > -rules.margin_points && hi < rules.margin_points {
        Accuracy::NotWorse
    } else {
        Accuracy::Inconclusive
    }
}

/// Decides between A and B. `slo` is the SLO's human form (e.g. from `Slo::describe`).
pub fn decide(
    a: &DeploymentEvidence,
    b: &DeploymentEvidence,
    accuracy: &[AccuracyComparison],
    slo: &str,
    rules: &DecisionRules,
) -> Decision {
    let mut thin = thin_evidence(a, b, accuracy, rules);
    let verdicts: Vec<Accuracy> = accuracy.iter().map(|c| accuracy_of(c, rules)).collect();
    let b_worse = verdicts.contains(&Accuracy::Worse);
    let b_better = verdicts.contains(&Accuracy::Better);
    if b_worse && b_better {
        thin.push("accuracy differs in opposite directions across datasets".into());
    }
    if !b_worse && !b_better && verdicts.contains(&Accuracy::Inconclusive) {
        thin.push(format!(
            "the accuracy difference is not within ±{} points with 95% confidence",
            signed(rules.margin_points, 1).trim_start_matches('+')
        ));
    }
    let capacity_ratio = match (a.capacity, b.capacity) {
        (Some(x), Some(y)) if x > 0.0 => Some(y / x),
        _ => None,
    };
    let faster = faster_of(a, b);
    let verdict = if !thin.is_empty() {
        Verdict::Undecided
    } else if b_worse {
        Verdict::PreferA
    } else if b_better && faster != Some(Side::A) {
        Verdict::PreferB
    } else {
        match faster.or_else(|| cheaper_of(a, b)) {
            Some(Side::A) => Verdict::PreferA,
            Some(Side::B) => Verdict::PreferB,
            None => Verdict::Tie,
        }
    };
    let sentence = sentence(verdict, a, b, accuracy, slo, &thin);
    Decision {
        verdict,
        sentence,
        thin_evidence: thin,
        capacity_ratio,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    A,
    B,
}

/// The side whose capacity bracket lies wholly above the other's.
fn faster_of(a: &DeploymentEvidence, b: &DeploymentEvidence) -> Option<Side> {
    let above = |x: &DeploymentEvidence, y: &DeploymentEvidence| match (x.capacity, y.first_failing)
    {
        (Some(cx), Some(fy)) => cx >= fy,
        _ => false,
    };
    if above(b, a) {
        Some(Side::B)
    } else if above(a, b) {
        Some(Side::A)
    } else {
        None
    }
}

fn cheaper_of(a: &DeploymentEvidence, b: &DeploymentEvidence) -> Option<Side> {
    let (ca, cb) = (a.cost_per_million_tokens()?, b.cost_per_million_tokens()?);
    if cb < ca * 0.98 {
        Some(Side::B)
    } else if ca < cb * 0.98 {
        Some(Side::A)
    } else {
        None
    }
}

fn thin_evidence(
    a: &DeploymentEvidence,
    b: &DeploymentEvidence,
    accuracy: &[AccuracyComparison],
    rules: &DecisionRules,
) -> Vec<String> {
    let mut thin = Vec::new();
    for d in [a, b] {
        if !d.client_saturated_at.is_empty() {
            let at: Vec<String> = d.client_saturated_at.iter().map(|c| num(*c)).collect();
            thin.push(format!(
                "the client saturated while measuring {} at concurrency {}, where its own delay could change the SLO outcome",
                d.name,
                at.join(" and ")
            ));
        }
        if d.failure_rate > rules.max_failure_rate {
            thin.push(format!(
                "{} failed {:.1}% of requests (more than {:.1}%)",
                d.name,
                d.failure_rate * 100.0,
                rules.max_failure_rate * 100.0
            ));
        }
    }
    if a.capacity.is_none() && b.capacity.is_none() {
        thin.push("neither deployment met the SLO at any load tried".into());
    }
    for c in accuracy.iter().filter(|c| c.items < rules.min_items) {
        thin.push(format!(
            "{} has only {} paired items (fewer than {})",
            c.dataset, c.items, rules.min_items
        ));
    }
    if accuracy.is_empty() {
        thin.push("no accuracy was measured on both deployments".into());
    }
    thin
}

fn capacity_clause(a: &DeploymentEvidence, b: &DeploymentEvidence, slo: &str) -> String {
    match (a.capacity, b.capacity) {
        (Some(ca), Some(cb)) if ca > 0.0 && cb > 0.0 => {
            let (hi, lo, ratio) = if cb >= ca {
                (b, a, cb / ca)
            } else {
                (a, b, ca / cb)
            };
            let same = faster_of(a, b).is_none();
            if same {
                format!(
                    "{} and {} serve the same load within the SLO ({slo}) to the search's resolution ({} vs {})",
                    a.name,
                    b.name,
                    num(ca),
                    num(cb)
                )
            } else {
                format!(
                    "{} serves {ratio:.2}× {}'s load within the SLO ({slo})",
                    hi.name, lo.name
                )
            }
        }
        (Some(_), None) => format!("only {} meets the SLO ({slo}) at any load tried", a.name),
        (None, Some(_)) => format!("only {} meets the SLO ({slo}) at any load tried", b.name),
        _ => format!("neither meets the SLO ({slo}) at any load tried"),
    }
}

fn accuracy_clause(c: &AccuracyComparison) -> String {
    let ci =
        c.ci.map(|(lo, hi)| format!(" [{}, {}]", signed(lo, 1), signed(hi, 1)))
            .unwrap_or_default();
    let sig = if c.significant() {
        "significant"
    } else {
        "not significant"
    };
    format!(
        "{} accuracy {} points{ci}, {}, {sig}",
        c.dataset,
        signed(c.diff, 1),
        format_p(c.p).replace("p=", "p = ")
    )
}

fn cost_clause(a: &DeploymentEvidence, b: &DeploymentEvidence) -> Option<String> {
    let (ca, cb) = (a.cost_per_million_tokens()?, b.cost_per_million_tokens()?);
    let per_answer = match (a.cost_per_correct_answer(), b.cost_per_correct_answer()) {
        (Some(x), Some(y)) => format!(", {} vs {} per correct answer", dollars(y), dollars(x)),
        _ => String::new(),
    };
    Some(format!(
        "${cb:.2} vs ${ca:.2} per million output tokens{per_answer} ({} vs {})",
        b.name, a.name
    ))
}

fn sentence(
    verdict: Verdict,
    a: &DeploymentEvidence,
    b: &DeploymentEvidence,
    accuracy: &[AccuracyComparison],
    slo: &str,
    thin: &[String],
) -> String {
    let mut clauses = vec![capacity_clause(a, b, slo)];
    clauses.extend(accuracy.iter().map(accuracy_clause));
    clauses.extend(cost_clause(a, b));
    let evidence = clauses.join("; ");
    let head = match verdict {
        Verdict::PreferA => format!("Choose {}", a.name),
        Verdict::PreferB => format!("Choose {}", b.name),
        Verdict::Tie => format!("{} and {} are equivalent", a.name, b.name),
        Verdict::Undecided => format!("Too little evidence to decide ({})", thin.join("; ")),
    };
    format!("{head}: {evidence}.")
}

fn num(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dep(name: &str, cap: f64, fail: f64, tok_s: f64) -> DeploymentEvidence {
        DeploymentEvidence {
            name: name.into(),
            capacity: Some(cap),
            first_failing: Some(fail),
            output_tok_s_at_capacity: Some(tok_s),
            gpus: Some(8),
            price_per_gpu_hour: Some(2.0),
            client_saturated_at: Vec::new(),
            client_busy_at: Vec::new(),
            failure_rate: 0.0,
            eval_output_tokens: None,
            eval_correct: None,
        }
    }

    fn acc(dataset: &str, items: usize, diff: f64, ci: (f64, f64), p: f64) -> AccuracyComparison {
        AccuracyComparison {
            dataset: dataset.into(),
            items,
            only_a: 0,
            only_b: 0,
            samples_a: 1,
            samples_b: 1,
            score_a: 90.0,
            score_b: 90.0 + diff,
            diff,
            ci: Some(ci),
            test: "McNemar exact",
            p,
            discordant: Some((3, 2)),
        }
    }

    const SLO: &str = "TTFT ≤ 2000 ms for 99% of requests";

    #[test]
    fn faster_and_not_less_accurate_wins_with_the_numbers() {
        let a = dep("FP8", 32.0, 36.0, 4000.0);
        let b = dep("INT8", 42.0, 46.0, 5240.0);
        let d = decide(
            &a,
            &b,
            &[acc("MATH-500", 500, -0.4, (-1.6, 0.8), 0.62)],
            SLO,
            &DecisionRules::default(),
        );
        assert_eq!(d.verdict, Verdict::PreferB);
        assert_eq!(d.capacity_ratio, Some(42.0 / 32.0));
        assert_eq!(
            d.sentence,
            "Choose INT8: INT8 serves 1.31× FP8's load within the SLO (TTFT ≤ 2000 ms for 99% of requests); \
             MATH-500 accuracy −0.4 points [−1.6, +0.8], p = 0.62, not significant; \
             $0.85 vs $1.11 per million output tokens (INT8 vs FP8)."
        );
        assert_eq!(
            a.cost_per_million_tokens().map(|c| (c * 100.0).round()),
            Some(111.0)
        );
    }

    #[test]
    fn significantly_less_accurate_loses_even_when_faster() {
        let a = dep("A", 32.0, 36.0, 4000.0);
        let b = dep("B", 64.0, 72.0, 8000.0);
        let d = decide(
            &a,
            &b,
            &[acc("AIME24", 60, -5.0, (-8.0, -2.0), 0.012)],
            SLO,
            &DecisionRules::default(),
        );
        assert_eq!(d.verdict, Verdict::PreferA);
        assert!(
            d.sentence.starts_with("Choose A: B serves 2.00× A's load"),
            "{}",
            d.sentence
        );
        assert!(
            d.sentence.contains("p = 0.012, significant"),
            "{}",
            d.sentence
        );
    }

    #[test]
    fn thin_evidence_is_said_instead_of_a_winner() {
        let a = dep("A", 32.0, 36.0, 4000.0);
        let mut b = dep("B", 64.0, 72.0, 8000.0);
        b.client_saturated_at = vec![64.0, 72.0];
        let few = acc("GPQA", 8, 0.0, (-30.0, 30.0), 1.0);
        let d = decide(&a, &b, &[few], SLO, &DecisionRules::default());
        assert_eq!(d.verdict, Verdict::Undecided);
        assert!(d.sentence.starts_with("Too little evidence to decide (the client saturated while measuring B at concurrency 64 and 72, where its own delay could change the SLO outcome; GPQA has only 8 paired items (fewer than 30); the accuracy difference is not within ±2.0 points"), "{}", d.sentence);
        let failing = DeploymentEvidence {
            failure_rate: 0.2,
            ..dep("A", 1.0, 2.0, 1.0)
        };
        let d = decide(
            &failing,
            &dep("B", 1.0, 2.0, 1.0),
            &[acc("M", 500, 0.0, (-1.0, 1.0), 1.0)],
            SLO,
            &DecisionRules::default(),
        );
        assert!(
            d.thin_evidence
                .iter()
                .any(|t| t.contains("A failed 20.0% of requests")),
            "{:?}",
            d.thin_evidence
        );
    }

    #[test]
    fn overlapping_capacity_brackets_fall_back_to_price_then_tie() {
        let a = dep("A", 32.0, 48.0, 4000.0);
        let b = dep("B", 40.0, 48.0, 4000.0);
        let same = [acc("MATH-500", 500, 0.2, (-0.8, 1.2), 0.8)];
        let d = decide(&a, &b, &same, SLO, &DecisionRules::default());
        assert_eq!(d.verdict, Verdict::Tie);
        assert!(
            d.sentence.contains("serve the same load within the SLO"),
            "{}",
            d.sentence
        );
        let cheap_b = DeploymentEvidence {
            price_per_gpu_hour: Some(1.0),
            ..b
        };
        assert_eq!(
            decide(&a, &cheap_b, &same, SLO, &DecisionRules::default()).verdict,
            Verdict::PreferB
        );
    }

    #[test]
    fn a_busy_client_that_decides_nothing_does_not_thin_the_evidence() {
        let a = DeploymentEvidence {
            client_busy_at: vec![1.0, 4.0, 16.0, 64.0],
            ..dep("A", 16.0, 64.0, 800.0)
        };
        let b = DeploymentEvidence {
            client_busy_at: vec![1.0, 4.0],
            ..dep("B", 4.0, 16.0, 80.0)
        };
        let d = decide(
            &a,
            &b,
            &[acc("math500", 200, -4.0, (-6.7, -1.3), 0.0078)],
            SLO,
            &DecisionRules::default(),
        );
        assert_eq!(d.verdict, Verdict::PreferA, "{}", d.sentence);
        assert!(d.thin_evidence.is_empty(), "{:?}", d.thin_evidence);
        assert!(
            d.sentence.starts_with("Choose A: A serves 4.00× B's load"),
            "{}",
            d.sentence
        );
    }

    #[test]
    fn cost_per_correct_answer_is_tokens_per_correct_answer_times_the_price_of_a_token_at_capacity()
    {
        // 8 GPUs × $2/h = $16/h; 4000 output tok/s at capacity → 14.4 M tokens/h → $1.1111 per M tokens.
        // The eval spent 1,800,000 output tokens for 450 correct answers: 4000 tokens per correct answer.
        let a = DeploymentEvidence {
            eval_output_tokens: Some(1_800_000),
            eval_correct: Some(450),
            ..dep("FP8", 32.0, 36.0, 4000.0)
        };
        assert_eq!(a.output_tokens_per_correct(), Some(4000.0));
        let want = 4000.0 * 16.0 / (4000.0 * 3600.0);
        assert!((a.cost_per_correct_answer().unwrap() - want).abs() < 1e-15);
        assert_eq!(dollars(a.cost_per_correct_answer().unwrap()), "$0.00444");
        // B: 5240 tok/s at capacity, 2,300,000 tokens for 460 correct answers (5000 per answer: more verbose).
        let b = DeploymentEvidence {
            eval_output_tokens: Some(2_300_000),
            eval_correct: Some(460),
            ..dep("INT8", 42.0, 46.0, 5240.0)
        };
        let d = decide(
            &a,
            &b,
            &[acc("MATH-500", 500, -0.4, (-1.6, 0.8), 0.62)],
            SLO,
            &DecisionRules::default(),
        );
        // 5000 × $16 / (5240 × 3600) = $0.0042409
        assert!(
            d.sentence.ends_with(
                "$0.85 vs $1.11 per million output tokens, $0.00424 vs $0.00444 per correct answer (INT8 vs FP8)."
            ),
            "{}",
            d.sentence
        );
        // No correct answer or no eval tokens: no cost per answer (and no clause).
        let none = DeploymentEvidence {
            eval_correct: Some(0),
            ..a.clone()
        };
        assert_eq!(none.cost_per_correct_answer(), None);
        assert_eq!(dep("X", 1.0, 2.0, 1.0).cost_per_correct_answer(), None);
    }

    #[test]
    fn dollars_keep_three_significant_digits() {
        assert_eq!(dollars(0.8512), "$0.85");
        assert_eq!(dollars(12.4), "$12.40");
        assert_eq!(dollars(0.0001234), "$0.000123");
        assert_eq!(dollars(0.0451), "$0.0451");
        assert_eq!(dollars(0.0), "$0.00");
    }

    #[test]
    fn no_capacity_anywhere_is_thin() {
        let none = DeploymentEvidence {
            name: "A".into(),
            ..Default::default()
        };
        let d = decide(
            &none,
            &none,
            &[acc("M", 500, 0.0, (-1.0, 1.0), 1.0)],
            SLO,
            &DecisionRules::default(),
        );
        assert_eq!(d.verdict, Verdict::Undecided);
        assert!(
            d.sentence.contains("neither meets the SLO"),
            "{}",
            d.sentence
        );
    }
}
