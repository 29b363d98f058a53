//! Prompt templates: the single user message sent for an item.
//!
//! - `deepseek-math` (default for AIME, MATH-500, GSM8K and custom sets): Qwen2.5-Math `evaluation/utils.py`
//!   `PROMPT_TEMPLATES["deepseek-math"]`: `User: {problem}\nPlease reason step by step, and put your final answer
//!   within \boxed{}.\n\nAssistant:`. Nuances: Qwen2.5-Math strips the question (we do too) and sends this string
//!   as raw completion text; we send it as the one user message of a chat request (the protocol), so the
//!   server's chat template wraps it. Qwen2.5-Math also appends " (Yes or No)" / " (True or False)" to a question
//!   whose gold answer is yes/no/true/false; no AIME or MATH-500 item has such an answer, and we do not leak gold
//!   answers into prompts, so we leave that out.
//! - `boxed`: `{problem}\nPlease reason step by step, and put your final answer within \boxed{}.` (the instruction
//!   DeepSeek-R1's model card recommends; Qwen2.5-Math's `mathstral` template).
//! - GPQA (whatever `--prompt-template`), by protocol: `evalscope-0` and `servebench` use evalscope 0.x's zero-shot
//!   prompt, `What is the correct answer to this question:{Question}\nChoices:\n(A) …\n(B) …\n(C) …\n(D) …\n\nPlease
//!   reason step by step, and put your final answer within \boxed{}.` (no space after the colon, as evalscope
//!   writes it); `evalscope-1` uses evalscope 1.x's `SINGLE_ANSWER_TEMPLATE_COT`: `Answer the following multiple
//!   choice question. The last line of your response should be of the following format: 'ANSWER: [LETTER]'
//!   (without quotes) where [LETTER] is one of A,B,C,D. Think step by step before answering.\n\n{Question}\n\nA)
//!   …\nB) …\nC) …\nD) …` (the question as in the file, options joined by one newline, nothing after the last).
//! - GSM8K follows Qwen2.5-Math's protocol for it: zero-shot, the same template as the other math sets, the same
//!   answer extraction (last `\boxed{}`, else "the answer is", else the last number), gold after `####`, numeric
//!   comparison.

use crate::dataset::Item;
use crate::error::EvalError;
use crate::protocol::Protocol;

/// The instruction appended to math problems.
pub const BOXED_INSTRUCTION: &str =
    "Please reason step by step, and put your final answer within \\boxed{}.";

/// A math prompt template (`--prompt-template`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PromptTemplate {
    #[default]
    DeepseekMath,
    Boxed,
}

impl PromptTemplate {
    pub fn parse(s: &str) -> Result<PromptTemplate, EvalError> {
        match s {
            "deepseek-math" => Ok(PromptTemplate::DeepseekMath),
            "boxed" => Ok(PromptTemplate::Boxed),
            other => Err(EvalError::Config(format!(
                "unknown --prompt-template '{other}': use deepseek-math or boxed"
            ))),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            PromptTemplate::DeepseekMath => "deepseek-math",
            PromptTemplate::Boxed => "boxed",
        }
    }

    /// A math problem in this template.
    pub fn math(self, problem: &str) -> String {
        let problem = problem.trim();
        match self {
            PromptTemplate::DeepseekMath => {
                format!("User: {problem}\n{BOXED_INSTRUCTION}\n\nAssistant:")
            }
            PromptTemplate::Boxed => format!("{problem}\n{BOXED_INSTRUCTION}"),
        }
    }
}

/// evalscope's GPQA prompt for a question and its options in presented order.
pub fn gpqa(question: &str, choices: &[String; 4]) -> String {
    let mut s = format!("What is the correct answer to this question:{question}\nChoices:\n");
    for (letter, option) in ['A', 'B', 'C', 'D'].iter().zip(choices) {
        s.push_str(&format!("({letter}) {option}\n"));
    }
    s.push('\n');
    s.push_str(BOXED_INSTRUCTION);
    s
}

/// evalscope 1.x's GPQA prompt (`SINGLE_ANSWER_TEMPLATE_COT` with letters `A,B,C,D`).
pub fn gpqa_evalscope1(question: &str, choices: &[String; 4]) -> String {
    let options: Vec<String> = ['A', 'B', 'C', 'D']
        .iter()
        .zip(choices)
        .map(|(letter, option)| format!("{letter}) {option}"))
        .collect();
    format!(
        "Answer the following multiple choice question. The last line of your response should be of the following \
         format: 'ANSWER: [LETTER]' (without quotes) where [LETTER] is one of A,B,C,D. Think step by step before \
         answering.\n\n{question}\n\n{}",
        options.join("\n")
    )
}

/// The prompt of an item: GPQA's for items with options, else the math template (servebench protocol).
pub fn render(template: PromptTemplate, item: &Item) -> String {
    render_for(Protocol::Servebench, template, item)
}

/// The prompt of an item under a protocol: `evalscope-1` has its own GPQA prompt; every other protocol uses
/// evalscope 0.x's for GPQA; math uses `template`, except `qwen2.5-math`, which is always `deepseek-math`.
pub fn render_for(protocol: Protocol, template: PromptTemplate, item: &Item) -> String {
    match (&item.choices, protocol) {
        (Some(choices), Protocol::Evalscope1) => gpqa_evalscope1(&item.question, choices),
        (Some(choices), _) => gpqa(&item.question, choices),
        (None, Protocol::Qwen25Math) => PromptTemplate::DeepseekMath.math(&item.question),
        (None, _) => template.math(&item.question),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deepseek_math_exact_string() {
        assert_eq!(
            PromptTemplate::DeepseekMath.math("  What is $1+1$?\n"),
            "User: What is $1+1$?\nPlease reason step by step, and put your final answer within \\boxed{}.\n\nAssistant:"
        );
    }

    #[test]
    fn boxed_exact_string() {
        assert_eq!(
            PromptTemplate::Boxed.math("Find $x$."),
            "Find $x$.\nPlease reason step by step, and put your final answer within \\boxed{}."
        );
    }

    #[test]
    fn gpqa_exact_string() {
        let item = Item {
            id: "r1".into(),
            question: "Which synthetic particle is heaviest?".into(),
            choices: Some(["zeta".into(), "eta".into(), "theta".into(), "iota".into()]),
            gold: "B".into(),
        };
        assert_eq!(
            render(PromptTemplate::Boxed, &item),
            "What is the correct answer to this question:Which synthetic particle is heaviest?\nChoices:\n\
             (A) zeta\n(B) eta\n(C) theta\n(D) iota\n\n\
             Please reason step by step, and put your final answer within \\boxed{}."
        );
    }

    #[test]
    fn gpqa_evalscope1_exact_string() {
        // evalscope 1.14.1: prompt(question, choices, MultipleChoiceTemplate.SINGLE_ANSWER_COT).
        let item = Item {
            id: "r1".into(),
            question: "Which synthetic particle is heaviest?\n".into(),
            choices: Some(["zeta".into(), "eta".into(), "theta".into(), "iota".into()]),
            gold: "B".into(),
        };
        assert_eq!(
            render_for(Protocol::Evalscope1, PromptTemplate::DeepseekMath, &item),
            "Answer the following multiple choice question. The last line of your response should be of the \
             following format: 'ANSWER: [LETTER]' (without quotes) where [LETTER] is one of A,B,C,D. Think step by \
             step before answering.\n\nWhich synthetic particle is heaviest?\n\n\nA) zeta\nB) eta\nC) theta\nD) iota"
        );
        assert_eq!(
            render_for(Protocol::Evalscope0, PromptTemplate::DeepseekMath, &item),
            render(PromptTemplate::Boxed, &item)
        );
    }

    #[test]
    fn template_names() {
        assert_eq!(
            PromptTemplate::parse("boxed").unwrap(),
            PromptTemplate::Boxed
        );
        assert_eq!(
            PromptTemplate::parse("deepseek-math").unwrap().as_str(),
            "deepseek-math"
        );
        assert!(PromptTemplate::parse("qwen")
            .unwrap_err()
            .to_string()
            .contains("deepseek-math or boxed"));
    }
}
