//! From a server response to a verdict: split off the reasoning, extract the final answer, grade it — as the
//! dataset's protocol says ([`judge_protocol`]).
//!
//! `servebench` ([`judge`]): reasoning comes from the `reasoning_content` field when the server sends one, else from
//! a `<think>…</think>` block in the content. Only the final text (after the reasoning) is graded: a response cut
//! inside its reasoning has no final answer (`no_answer`), whatever the reasoning says.
//!
//! Reference protocols read what their tool reads: `evalscope-0` the whole content (reasoning included when inline),
//! `evalscope-1` the content without its first `<think>` block, `qwen2.5-math` the whole text (reasoning and
//! content). Their rule names: `evalscope-0`, `evalscope-1` (letter compared with the gold), the `qwen` grader's
//! rules; `no_answer` when nothing was extracted.

use crate::dataset::GraderKind;
use crate::evalscope;
use crate::extract;
use crate::grade::{self, GradeOptions};
use crate::protocol::Protocol;

/// The graded outcome of one response.
#[derive(Debug, Clone, PartialEq)]
pub struct Judgement {
    /// The reasoning text (field or `<think>` block), if any.
    pub reasoning: Option<String>,
    /// The text after the reasoning (what is graded).
    pub final_text: String,
    /// The extracted answer (a choice letter for multiple choice).
    pub extracted: Option<String>,
    pub correct: bool,
    /// The grader rule that decided (`no_answer` when nothing was extracted; `timeout` when grading timed out).
    pub rule: String,
}

/// Judges a response under `protocol` (see the module docs); the reasoning recorded is the same for every protocol.
pub fn judge_protocol(
    protocol: Protocol,
    kind: GraderKind,
    content: &str,
    reasoning_field: &str,
    gold: &str,
    opts: &GradeOptions,
) -> Judgement {
    let letter_judgement = |text: String, letter: Option<char>, rule: &str| {
        let (inline, _) = extract::strip_reasoning(content);
        let reasoning = if reasoning_field.trim().is_empty() {
            inline
        } else {
            Some(reasoning_field.to_string())
        };
        let correct = letter.is_some_and(|l| gold.trim() == l.to_string());
        Judgement {
            reasoning,
            final_text: text,
            extracted: letter.map(String::from),
            correct,
            rule: if letter.is_some() { rule } else { "no_answer" }.to_string(),
        }
    };
    match (protocol, kind) {
        (Protocol::Evalscope0, GraderKind::Choice) => letter_judgement(
            content.to_string(),
            evalscope::letter_v0(content),
            "evalscope-0",
        ),
        (Protocol::Evalscope1, GraderKind::Choice) => {
            let text = evalscope::completion_v1(content, reasoning_field);
            let letter = evalscope::letter_v1(&text);
            letter_judgement(text, letter, "evalscope-1")
        }
        (Protocol::Qwen25Math, GraderKind::Math) => {
            let whole = extract::qwen_whole_text(content, reasoning_field);
            let mut j = judge(kind, content, reasoning_field, gold, opts);
            // Qwen's whole pipeline: extract + strip the prediction, strip the gold twice, math_equal.
            let (correct, rule, extracted) = match extract::qwen_protocol_text(&whole) {
                None => (false, "no_answer".to_string(), None),
                Some(text) => {
                    let (pred, v) =
                        grade::qwen_grade_response(&text, gold, &protocol.grade_options(opts));
                    let rule = match (v.timeout, pred.is_empty()) {
                        (true, _) => "timeout",
                        (false, true) => "no_answer",
                        (false, false) => v.rule,
                    };
                    (v.equal, rule.to_string(), Some(pred))
                }
            };
            j.extracted = extracted;
            j.final_text = whole;
            j.correct = correct;
            j.rule = rule;
            j
        }
        _ => judge(kind, content, reasoning_field, gold, opts),
    }
}

/// Judges a response with servebench's rules: `content` is the message text, `reasoning_field` the `reasoning_content` text (may be empty).
pub fn judge(
    kind: GraderKind,
    content: &str,
    reasoning_field: &str,
    gold: &str,
    opts: &GradeOptions,
) -> Judgement {
    let (inline, final_text) = extract::strip_reasoning(content);
    let reasoning = if reasoning_field.trim().is_empty() {
        inline
    } else {
        Some(reasoning_field.to_string())
    };
    let extracted = extract_answer(kind, &final_text);
    let (correct, rule) = match &extracted {
        None => (false, "no_answer".to_string()),
        Some(ans) => {
            let v = match kind {
                GraderKind::Math => grade::grade(ans, gold, opts),
                GraderKind::Numeric => grade::numeric_equal(ans, gold),
                GraderKind::Choice => grade::grade_choice(ans, gold.chars().next().unwrap_or('?')),
                GraderKind::Exact => {
                    if ans.trim() == gold.trim() {
                        grade::Verdict {
                            equal: true,
                            rule: "exact",
                            timeout: false,
                        }
                    } else {
                        grade::Verdict {
                            equal: false,
                            rule: "exact",
                            timeout: false,
                        }
                    }
                }
            };
            (
                v.equal,
                if v.timeout {
                    "timeout".to_string()
                } else {
                    v.rule.to_string()
                },
            )
        }
    };
    Judgement {
        reasoning,
        final_text,
        extracted,
        correct,
        rule,
    }
}

/// The answer a grader reads from the final text.
pub fn extract_answer(kind: GraderKind, final_text: &str) -> Option<String> {
    match kind {
        GraderKind::Math | GraderKind::Numeric => extract::extract_math_answer(final_text),
        GraderKind::Choice => extract::extract_choice(final_text).map(|c| c.to_string()),
        GraderKind::Exact => extract::last_boxed(final_text).or_else(|| {
            let t = final_text.trim();
            (!t.is_empty()).then(|| t.to_string())
        }),
    }
}

/// Whether two extracted answers are the same answer (majority voting groups by this).
pub fn same_answer(kind: GraderKind, a: &str, b: &str, opts: &GradeOptions) -> bool {
    match kind {
        GraderKind::Math => a.trim() == b.trim() || grade::grade(a, b, opts).equal,
        GraderKind::Numeric => a.trim() == b.trim() || grade::numeric_equal(a, b).equal,
        GraderKind::Choice => a.trim().eq_ignore_ascii_case(b.trim()),
        GraderKind::Exact => a.trim() == b.trim(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> GradeOptions {
        GradeOptions::default()
    }

    #[test]
    fn protocols_read_different_parts_of_the_same_response() {
        let r = "<think>Option D looks wrong.</think>\n\nThe answer is (B), a solid choice.";
        // servebench: the final text's "answer is (B)".
        let s = judge_protocol(
            Protocol::Servebench,
            GraderKind::Choice,
            r,
            "",
            "B",
            &opts(),
        );
        assert_eq!((s.extracted.as_deref(), s.correct), (Some("B"), true));
        // evalscope 0.x: the last standalone letter of the upper-cased text is the article "a".
        let e0 = judge_protocol(
            Protocol::Evalscope0,
            GraderKind::Choice,
            r,
            "",
            "B",
            &opts(),
        );
        assert_eq!((e0.extracted.as_deref(), e0.correct), (Some("A"), false));
        assert_eq!(e0.rule, "evalscope-0");
        assert_eq!(e0.reasoning.as_deref(), Some("Option D looks wrong."));
        // evalscope 1.x: no ANSWER marker, so the last upper-case character, B.
        let e1 = judge_protocol(
            Protocol::Evalscope1,
            GraderKind::Choice,
            r,
            "",
            "B",
            &opts(),
        );
        assert_eq!((e1.extracted.as_deref(), e1.correct), (Some("B"), true));
        let e1 = judge_protocol(
            Protocol::Evalscope1,
            GraderKind::Choice,
            "It is B. I think",
            "",
            "B",
            &opts(),
        );
        assert_eq!((e1.extracted, e1.rule.as_str()), (None, "no_answer"));
    }

    #[test]
    fn qwen_protocol_grades_the_whole_text_with_the_qwen_grader() {
        // The box is only in the reasoning: right under qwen2.5-math, no answer under servebench.
        let content = "<think>so \\boxed{25}</think>I stopped.";
        let q = judge_protocol(
            Protocol::Qwen25Math,
            GraderKind::Math,
            content,
            "",
            "025",
            &opts(),
        );
        assert!(q.correct, "{q:?}");
        assert_eq!(q.reasoning.as_deref(), Some("so \\boxed{25}"));
        let s = judge_protocol(
            Protocol::Servebench,
            GraderKind::Math,
            content,
            "",
            "025",
            &opts(),
        );
        assert!(!s.correct);
        // Reasoning in its own field counts too.
        let q = judge_protocol(
            Protocol::Qwen25Math,
            GraderKind::Math,
            "Done.",
            "\\boxed{25}",
            "025",
            &opts(),
        );
        assert!(q.correct);
        // An empty last box is wrong even when a later phrase has the answer.
        let q = judge_protocol(
            Protocol::Qwen25Math,
            GraderKind::Math,
            "\\boxed{} the answer is 25",
            "",
            "25",
            &opts(),
        );
        assert_eq!((q.extracted.as_deref(), q.correct), (Some(""), false));
        let s = judge_protocol(
            Protocol::Servebench,
            GraderKind::Math,
            "\\boxed{} the answer is 25",
            "",
            "25",
            &opts(),
        );
        assert!(s.correct);
        // The qwen grader's quirk applies: sqrt(3) is not \sqrt{3}.
        let q = judge_protocol(
            Protocol::Qwen25Math,
            GraderKind::Math,
            "\\boxed{sqrt(3)}",
            "",
            "\\sqrt{3}",
            &opts(),
        );
        assert!(!q.correct);
    }

    #[test]
    fn math_answer_after_inline_reasoning() {
        let j = judge(
            GraderKind::Math,
            "<think>maybe \\boxed{3}</think>So \\boxed{25}.",
            "",
            "025",
            &opts(),
        );
        assert_eq!(j.reasoning.as_deref(), Some("maybe \\boxed{3}"));
        assert_eq!(j.extracted.as_deref(), Some("25"));
        assert!(j.correct, "{j:?}");
    }

    #[test]
    fn reasoning_field_is_kept_and_not_graded() {
        let j = judge(
            GraderKind::Math,
            "The answer is \\boxed{7}.",
            "I think it is \\boxed{8}",
            "7",
            &opts(),
        );
        assert_eq!(j.reasoning.as_deref(), Some("I think it is \\boxed{8}"));
        assert!(j.correct);
    }

    #[test]
    fn cut_inside_reasoning_has_no_answer() {
        let j = judge(
            GraderKind::Math,
            "<think>long \\boxed{7} and then",
            "",
            "7",
            &opts(),
        );
        assert_eq!(j.extracted, None);
        assert!(!j.correct);
        assert_eq!(j.rule, "no_answer");
    }

    #[test]
    fn wrong_math_answer() {
        let j = judge(
            GraderKind::Math,
            "\\boxed{\\frac{1}{3}}",
            "",
            "\\frac{1}{2}",
            &opts(),
        );
        assert_eq!(j.extracted.as_deref(), Some("\\frac{1}{3}"));
        assert!(!j.correct);
    }

    #[test]
    fn gsm8k_numeric() {
        let j = judge(
            GraderKind::Numeric,
            "She makes $18 a day. The answer is 18.",
            "",
            "18",
            &opts(),
        );
        assert!(j.correct, "{j:?}");
        let j = judge(GraderKind::Numeric, "\\boxed{1,200}", "", "1200", &opts());
        assert!(j.correct, "{j:?}");
        let j = judge(GraderKind::Numeric, "\\boxed{19}", "", "18", &opts());
        assert!(!j.correct);
    }

    #[test]
    fn choice_letters() {
        let j = judge(
            GraderKind::Choice,
            "<think>A or C?</think>\\boxed{C}",
            "",
            "C",
            &opts(),
        );
        assert_eq!(j.extracted.as_deref(), Some("C"));
        assert!(j.correct);
        let j = judge(GraderKind::Choice, "The answer is (B).", "", "C", &opts());
        assert_eq!(j.extracted.as_deref(), Some("B"));
        assert!(!j.correct);
    }

    #[test]
    fn exact_match() {
        assert!(judge(GraderKind::Exact, "  Paris ", "", "Paris", &opts()).correct);
        assert!(
            judge(
                GraderKind::Exact,
                "I say \\boxed{Paris}",
                "",
                "Paris",
                &opts()
            )
            .correct
        );
        assert!(!judge(GraderKind::Exact, "paris", "", "Paris", &opts()).correct);
        assert_eq!(
            judge(GraderKind::Exact, "  ", "", "Paris", &opts()).rule,
            "no_answer"
        );
    }

    #[test]
    fn answers_group_by_equivalence() {
        assert!(same_answer(
            GraderKind::Math,
            "0.5",
            "\\frac{1}{2}",
            &opts()
        ));
        assert!(!same_answer(GraderKind::Math, "2", "3", &opts()));
        assert!(same_answer(GraderKind::Numeric, "1,000", "1000", &opts()));
        assert!(same_answer(GraderKind::Choice, "b", "B", &opts()));
        assert!(!same_answer(GraderKind::Exact, "a", "A", &opts()));
    }
}
