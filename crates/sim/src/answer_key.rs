//! Answer-key mode: the simulator "knows" the gold answers of benchmark questions.
//!
//! Files:
//! - JSONL, one object a line, with a question in `problem`, `question` or `Question` (every one present is
//!   indexed) and the gold in `answer` (a string or a number). GSM8K's `answer` holds reasoning then `#### N`: the
//!   gold is the text after the last `####`.
//! - CSV in GPQA layout: columns `Question`, `Correct Answer`, `Incorrect Answer 1..3` (others ignored).
//!
//! A request matches when its prompt (chat: all message contents) contains a known question, after both are
//! whitespace-normalised (runs of whitespace become one space; leading and trailing whitespace removed). Questions
//! are indexed by their first [`KEY_BYTES`] bytes, so matching costs one hash lookup per prompt position. When several
//! questions match, the longest wins.
//!
//! The response has some reasoning words, then `The final answer is \boxed{GOLD}.` with probability `accuracy`. The
//! draw is seeded by (global seed, question text, sample), where the sample is the request's `seed` field when it
//! sends one and otherwise the number of earlier requests for the same question — so reruns are deterministic. A
//! miss is a well-formed wrong answer with probability `wrong_share` (an integer gold plus 1, a decimal plus 1,
//! otherwise `GOLD+1`; for multiple choice the next listed letter) and otherwise an answer with no `\boxed{}`.
//! For GPQA-style prompts that list choices as lines `(A) text` (or `A) text`), the gold is the letter whose text
//! equals the correct answer.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;

use crate::config::ReasoningMode;
use crate::rng::{combine, hash_bytes, unit_f64, SplitMix};
use crate::words::push_words;
use crate::SimError;

/// Bytes of a normalised question used as its index key.
pub const KEY_BYTES: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Gold {
    Text(String),
    Choice { correct: String },
}

#[derive(Debug, Clone)]
struct KeyItem {
    question: String,
    gold: Gold,
}

/// Loaded questions and their gold answers.
#[derive(Debug, Default)]
pub struct AnswerKey {
    items: Vec<KeyItem>,
    index: HashMap<String, Vec<usize>>,
    key_lens: Vec<usize>,
    occurrences: Mutex<HashMap<usize, u64>>,
}

/// Collapse whitespace runs to one space and trim.
pub(crate) fn normalize_ws(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for word in s.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

fn key_of(q: &str) -> &str {
    let mut end = q.len().min(KEY_BYTES);
    while !q.is_char_boundary(end) {
        end -= 1;
    }
    &q[..end]
}

/// How a matched question was answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Correct,
    WrongBoxed,
    NoAnswer,
}

/// The text of an answer-key response, split into reasoning and content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KeyedAnswer {
    pub(crate) reasoning: String,
    pub(crate) content: String,
    pub(crate) verdict: Verdict,
}

/// Per-request inputs of [`AnswerKey::answer`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct AnswerParams {
    pub(crate) seed: u64,
    pub(crate) request_seed: Option<u64>,
    pub(crate) accuracy: f64,
    pub(crate) wrong_share: f64,
    pub(crate) reasoning: ReasoningMode,
    pub(crate) reasoning_tokens: u32,
    /// The API has a reasoning field (chat); otherwise `Field` falls back to inline.
    pub(crate) has_reasoning_field: bool,
    /// The share of verdicts flipped (the engine was busy at arrival; 0 otherwise).
    pub(crate) flip_rate: f64,
}

impl AnswerKey {
    pub fn new() -> Self {
        AnswerKey::default()
    }

    /// Number of indexed questions.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Load a file: `.csv` as GPQA layout, anything else as JSONL. Returns the number of questions added.
    pub fn load_file(&mut self, path: &Path) -> Result<usize, SimError> {
        let text = std::fs::read_to_string(path).map_err(|e| SimError::Io {
            path: path.display().to_string(),
            message: format!("cannot read answer-key file: {e}"),
        })?;
        let source = path.display().to_string();
        let is_csv = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
        if is_csv {
            self.add_gpqa_csv(&text, &source)
        } else {
            self.add_jsonl(&text, &source)
        }
    }

    fn push(&mut self, question: &str, gold: Gold) {
        let question = normalize_ws(question);
        if question.is_empty() {
            return;
        }
        let idx = self.items.len();
        let key = key_of(&question).to_string();
        if !self.key_lens.contains(&key.len()) {
            self.key_lens.push(key.len());
            self.key_lens.sort_unstable();
        }
        self.index.entry(key).or_default().push(idx);
        self.items.push(KeyItem { question, gold });
    }

    /// Add JSONL rows (see the module documentation). `source` names the file in errors.
    pub fn add_jsonl(&mut self, text: &str, source: &str) -> Result<usize, SimError> {
        let before = self.items.len();
        for (i, line) in text.lines().enumerate() {
            let line_no = i + 1;
            let err = |message: String| SimError::AnswerKey {
                file: source.to_string(),
                line: line_no,
                message,
            };
            if line.trim().is_empty() {
                continue;
            }
            let row: serde_json::Value =
                serde_json::from_str(line).map_err(|e| err(format!("not valid JSON: {e}")))?;
            let answer = match row.get("answer") {
                Some(serde_json::Value::String(s)) => match s.rfind("####") {
                    Some(p) => s[p + 4..].trim().to_string(),
                    None => s.trim().to_string(),
                },
                Some(serde_json::Value::Number(n)) => n.to_string(),
                Some(_) => {
                    return Err(err(
                        "field `answer` must be a string or a number".to_string()
                    ))
                }
                None => return Err(err("no `answer` field".to_string())),
            };
            let mut questions: Vec<String> = Vec::new();
            for field in ["problem", "question", "Question"] {
                if let Some(q) = row.get(field).and_then(|v| v.as_str()) {
                    let q = normalize_ws(q);
                    if !q.is_empty() && !questions.contains(&q) {
                        questions.push(q);
                    }
                }
            }
            if questions.is_empty() {
                return Err(err(
                    "no question field: expected `problem`, `question` or `Question`".to_string(),
                ));
            }
            for q in questions {
                self.push(&q, Gold::Text(answer.clone()));
            }
        }
        Ok(self.items.len() - before)
    }

    /// Add rows of a GPQA-layout CSV (columns `Question` and `Correct Answer` are required).
    pub fn add_gpqa_csv(&mut self, text: &str, source: &str) -> Result<usize, SimError> {
        let before = self.items.len();
        let mut reader = csv::ReaderBuilder::new()
            .flexible(true)
            .from_reader(text.as_bytes());
        let headers = reader
            .headers()
            .map_err(|e| SimError::AnswerKey {
                file: source.to_string(),
                line: 1,
                message: format!("bad CSV header: {e}"),
            })?
            .clone();
        let col = |name: &str| headers.iter().position(|h| h.trim() == name);
        let (Some(q_col), Some(a_col)) = (col("Question"), col("Correct Answer")) else {
            return Err(SimError::AnswerKey {
                file: source.to_string(),
                line: 1,
                message: "CSV needs the GPQA columns `Question` and `Correct Answer`".to_string(),
            });
        };
        for record in reader.records() {
            let record = record.map_err(|e| SimError::AnswerKey {
                file: source.to_string(),
                line: e.position().map_or(0, |p| p.line() as usize),
                message: format!("bad CSV record: {e}"),
            })?;
            let line = record.position().map_or(0, |p| p.line() as usize);
            let (Some(q), Some(a)) = (record.get(q_col), record.get(a_col)) else {
                return Err(SimError::AnswerKey {
                    file: source.to_string(),
                    line,
                    message: "record is missing the Question or Correct Answer column".to_string(),
                });
            };
            self.push(
                q,
                Gold::Choice {
                    correct: normalize_ws(a),
                },
            );
        }
        Ok(self.items.len() - before)
    }

    /// The index of the longest known question contained in `prompt`.
    fn find(&self, prompt: &str) -> Option<usize> {
        if self.items.is_empty() {
            return None;
        }
        let norm = normalize_ws(prompt);
        let mut best: Option<usize> = None;
        for (pos, _) in norm.char_indices() {
            let rest = &norm[pos..];
            for &len in &self.key_lens {
                if len > rest.len() {
                    break;
                }
                if !rest.is_char_boundary(len) {
                    continue;
                }
                let Some(cands) = self.index.get(&rest[..len]) else {
                    continue;
                };
                for &c in cands {
                    let q = &self.items[c].question;
                    let longer = match best {
                        Some(b) => self.items[b].question.len() < q.len(),
                        None => true,
                    };
                    if longer && rest.starts_with(q.as_str()) {
                        best = Some(c);
                    }
                }
            }
        }
        best
    }

    /// Answer `prompt` if it contains a known question (`prompt_raw` keeps the line structure for choice lists).
    pub(crate) fn answer(&self, prompt_raw: &str, p: AnswerParams) -> Option<KeyedAnswer> {
        let idx = self.find(prompt_raw)?;
        let item = &self.items[idx];
        let sample = match p.request_seed {
            Some(s) => s,
            None => {
                let mut occ = self.occurrences.lock().unwrap_or_else(|e| e.into_inner());
                let n = occ.entry(idx).or_insert(0);
                let s = *n;
                *n += 1;
                s
            }
        };
        let h = combine(
            combine(p.seed, hash_bytes(0x5eed, item.question.as_bytes())),
            sample,
        );
        let correct = unit_f64(h) < p.accuracy;
        let (gold, wrong) = match &item.gold {
            Gold::Text(g) => (g.clone(), wrong_text(g)),
            Gold::Choice { correct } => match choice_letters(prompt_raw, correct) {
                Some((gold, letters)) => {
                    let i = letters.iter().position(|&l| l == gold).unwrap_or(0);
                    let next = letters[(i + 1) % letters.len()];
                    (gold.to_string(), next.to_string())
                }
                None => (correct.clone(), format!("{correct} (not)")),
            },
        };
        let mut verdict = if correct {
            Verdict::Correct
        } else if unit_f64(combine(h, 0x77)) < p.wrong_share {
            Verdict::WrongBoxed
        } else {
            Verdict::NoAnswer
        };
        // Under load, a share of answers change: correct → wrong (boxed), wrong → correct.
        if p.flip_rate > 0.0 && unit_f64(combine(h, 0xf11b)) < p.flip_rate {
            verdict = match verdict {
                Verdict::Correct => Verdict::WrongBoxed,
                _ => Verdict::Correct,
            };
        }
        let final_text = match verdict {
            Verdict::Correct => format!("The final answer is \\boxed{{{gold}}}."),
            Verdict::WrongBoxed => format!("The final answer is \\boxed{{{wrong}}}."),
            Verdict::NoAnswer => "I am not able to settle on a result here.".to_string(),
        };
        let mut reasoning = String::from("Let me think about this step by step.");
        push_words(
            &mut SplitMix::new(combine(h, 0x7e)),
            p.reasoning_tokens,
            &mut reasoning,
        );
        reasoning.push('.');
        let mode = match p.reasoning {
            ReasoningMode::Field if !p.has_reasoning_field => ReasoningMode::Inline,
            m => m,
        };
        Some(match mode {
            ReasoningMode::Inline => KeyedAnswer {
                reasoning: String::new(),
                content: format!("<think>\n{reasoning}\n</think>\n\n{final_text}"),
                verdict,
            },
            ReasoningMode::Field => KeyedAnswer {
                reasoning,
                content: final_text,
                verdict,
            },
            ReasoningMode::None => KeyedAnswer {
                reasoning: String::new(),
                content: final_text,
                verdict,
            },
        })
    }
}

/// A well-formed wrong answer for a free-form gold.
fn wrong_text(gold: &str) -> String {
    let g = gold.trim();
    if let Ok(n) = g.parse::<i64>() {
        return (n.wrapping_add(1)).to_string();
    }
    if let Ok(x) = g.parse::<f64>() {
        if x.is_finite() {
            return (x + 1.0).to_string();
        }
    }
    format!("{g}+1")
}

/// An option's text for matching: evalscope's GPQA clean-up (` [title]` → `. `, `[…]` removed) and collapsed
/// whitespace, so a prompt built from cleaned options still matches the CSV's raw `Correct Answer`.
fn option_key(s: &str) -> String {
    normalize_ws(&servebench_core::gpqa::clean_option(s))
}

/// Parse choice lines `(A) text` / `A) text` from a prompt; returns the letter whose text equals `correct` and the
/// letters in order of appearance.
fn choice_letters(prompt: &str, correct: &str) -> Option<(char, Vec<char>)> {
    let mut letters = Vec::new();
    let mut gold = None;
    for line in prompt.lines() {
        let line = line.trim();
        let (letter, rest) = if let Some(r) = line.strip_prefix('(') {
            let mut cs = r.chars();
            match (cs.next(), cs.next()) {
                (Some(l), Some(')')) if l.is_ascii_uppercase() => (l, &r[2..]),
                _ => continue,
            }
        } else {
            let mut cs = line.chars();
            match (cs.next(), cs.next()) {
                (Some(l), Some(')')) if l.is_ascii_uppercase() => (l, &line[2..]),
                _ => continue,
            }
        };
        if letters.contains(&letter) {
            continue;
        }
        letters.push(letter);
        if gold.is_none()
            && (normalize_ws(rest) == correct || option_key(rest) == option_key(correct))
        {
            gold = Some(letter);
        }
    }
    gold.map(|g| (g, letters))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MATH: &str = r#"{"problem": "What is $1+1$?", "answer": "2"}
{"problem": "Compute   the value of\n$\\frac{1}{2} + \\frac{1}{2}$.", "answer": "1", "question": "Compute the value of $\\frac{1}{2} + \\frac{1}{2}$."}
{"question": "Tom has 3 apples and buys 4 more. How many apples does he have?", "answer": "He has 3 + 4 = 7.\n#### 7"}
"#;

    fn params(accuracy: f64) -> AnswerParams {
        AnswerParams {
            seed: 1,
            request_seed: Some(0),
            accuracy,
            wrong_share: 1.0,
            reasoning: ReasoningMode::Inline,
            reasoning_tokens: 5,
            has_reasoning_field: true,
            flip_rate: 0.0,
        }
    }

    fn key() -> AnswerKey {
        let mut k = AnswerKey::new();
        // the second row's two question fields normalise to the same text: indexed once
        assert_eq!(k.add_jsonl(MATH, "math.jsonl").unwrap(), 3);
        k
    }

    #[test]
    fn options_match_after_evalscope_cleanup() {
        let prompt = "Q?\nChoices:\n(A) 12 m. \n(B) the answer 7\n(C) x\n(D) y\n";
        let (g, letters) = choice_letters(prompt, "the answer [see ref] 7").unwrap();
        assert_eq!(g, 'B');
        assert_eq!(letters, vec!['A', 'B', 'C', 'D']);
        assert_eq!(option_key("Paris [title] France"), "Paris. France");
    }

    #[test]
    fn normalizes_whitespace() {
        assert_eq!(normalize_ws("  a \n\t b  c "), "a b c");
    }

    #[test]
    fn finds_questions_inside_prompts_and_answers_gold() {
        let k = key();
        let prompt = "User: Tom has 3 apples and buys 4 more.\nHow many apples does he have?\nPlease reason step by step.";
        let a = k.answer(prompt, params(1.0)).unwrap();
        assert_eq!(a.verdict, Verdict::Correct);
        assert!(
            a.content.starts_with("<think>\nLet me think"),
            "{}",
            a.content
        );
        assert!(
            a.content.ends_with("The final answer is \\boxed{7}."),
            "{}",
            a.content
        );
        let b = k
            .answer(
                "Compute the value of $\\frac{1}{2} + \\frac{1}{2}$. Go.",
                params(1.0),
            )
            .unwrap();
        assert!(b.content.ends_with("\\boxed{1}."));
        assert!(k.answer("What is 2+2?", params(1.0)).is_none());
    }

    #[test]
    fn accuracy_zero_never_gives_gold() {
        let k = key();
        for s in 0..50 {
            let mut p = params(0.0);
            p.request_seed = Some(s);
            let a = k.answer("What is $1+1$?", p).unwrap();
            assert_eq!(a.verdict, Verdict::WrongBoxed);
            assert!(a.content.ends_with("\\boxed{3}."), "{}", a.content);
            p.wrong_share = 0.0;
            let a = k.answer("What is $1+1$?", p).unwrap();
            assert_eq!(a.verdict, Verdict::NoAnswer);
            assert!(!a.content.contains("boxed"));
        }
    }

    #[test]
    fn verdicts_are_seeded_and_follow_accuracy() {
        let k = key();
        let mut correct = 0;
        for s in 0..2000 {
            let mut p = params(0.7);
            p.request_seed = Some(s);
            let a = k.answer("What is $1+1$?", p).unwrap();
            let again = k.answer("What is $1+1$?", p).unwrap();
            assert_eq!(a, again);
            if a.verdict == Verdict::Correct {
                correct += 1;
            }
        }
        // 2000 draws at p = 0.7: 1400 expected, sd ~20
        assert!((1300..1500).contains(&correct), "{correct}");
    }

    #[test]
    fn under_load_a_share_of_verdicts_flips_by_request_content() {
        let k = key();
        let (mut flipped, n) = (0, 4000);
        for s in 0..n {
            let mut p = params(0.6);
            p.request_seed = Some(s);
            let calm = k.answer("What is $1+1$?", p).unwrap().verdict;
            p.flip_rate = 0.25;
            let busy = k.answer("What is $1+1$?", p).unwrap();
            assert_eq!(
                busy,
                k.answer("What is $1+1$?", p).unwrap(),
                "deterministic"
            );
            if busy.verdict != calm {
                flipped += 1;
                // correct → a wrong boxed answer; wrong → correct
                match calm {
                    Verdict::Correct => assert_eq!(busy.verdict, Verdict::WrongBoxed),
                    _ => assert_eq!(busy.verdict, Verdict::Correct),
                }
            }
            p.flip_rate = 1.0;
            assert_ne!(k.answer("What is $1+1$?", p).unwrap().verdict, calm);
        }
        // 4000 draws at 0.25: 1000 expected, sd ~27
        assert!((900..1100).contains(&flipped), "{flipped}");
    }

    #[test]
    fn samples_without_seed_count_occurrences() {
        let k = key();
        let mut p = params(0.5);
        p.request_seed = None;
        let verdicts: Vec<Verdict> = (0..64)
            .map(|_| k.answer("What is $1+1$?", p).unwrap().verdict)
            .collect();
        assert!(verdicts.contains(&Verdict::Correct) && verdicts.contains(&Verdict::WrongBoxed));
        // A fresh key replays the same sequence.
        let k2 = key();
        let again: Vec<Verdict> = (0..64)
            .map(|_| k2.answer("What is $1+1$?", p).unwrap().verdict)
            .collect();
        assert_eq!(verdicts, again);
    }

    #[test]
    fn reasoning_modes() {
        let k = key();
        let mut p = params(1.0);
        p.reasoning = ReasoningMode::Field;
        let a = k.answer("What is $1+1$?", p).unwrap();
        assert!(a.reasoning.starts_with("Let me think"));
        assert_eq!(a.content, "The final answer is \\boxed{2}.");
        p.has_reasoning_field = false;
        assert!(k
            .answer("What is $1+1$?", p)
            .unwrap()
            .content
            .starts_with("<think>"));
        p.reasoning = ReasoningMode::None;
        let n = k.answer("What is $1+1$?", p).unwrap();
        assert_eq!(
            (n.reasoning.as_str(), n.content.as_str()),
            ("", "The final answer is \\boxed{2}.")
        );
    }

    #[test]
    fn wrong_answers_are_well_formed() {
        assert_eq!(wrong_text("025"), "26");
        assert_eq!(wrong_text("-3"), "-2");
        assert_eq!(wrong_text("0.5"), "1.5");
        assert_eq!(wrong_text("\\frac{1}{2}"), "\\frac{1}{2}+1");
    }

    const GPQA: &str = "Record ID,Question,Correct Answer,Incorrect Answer 1,Incorrect Answer 2,Incorrect Answer 3\n\
r1,\"Which synthetic gas is the lightest of these?\",Helium-ish,Argon-ish,Xenon-ish,Radon-ish\n\
r2,\"A synthetic question,\nwith a comma and a newline?\",\"yes, indeed\",no,maybe,never\n";

    #[test]
    fn gpqa_letter_is_the_correct_choice() {
        let mut k = AnswerKey::new();
        assert_eq!(k.add_gpqa_csv(GPQA, "gpqa.csv").unwrap(), 2);
        let prompt = "What is the correct answer to this question:Which synthetic gas is the lightest of these?\n\
Choices:\n(A) Xenon-ish\n(B) Argon-ish\n(C) Helium-ish\n(D) Radon-ish\n\nPlease reason step by step.";
        let a = k.answer(prompt, params(1.0)).unwrap();
        assert!(a.content.ends_with("\\boxed{C}."), "{}", a.content);
        let w = k.answer(prompt, params(0.0)).unwrap();
        assert!(w.content.ends_with("\\boxed{D}."), "{}", w.content);
        let prompt2 = "What is the correct answer to this question:A synthetic question, with a comma and a newline?\n\
Choices:\n(A) no\n(B) maybe\n(C) never\n(D) yes, indeed\n";
        assert!(k
            .answer(prompt2, params(1.0))
            .unwrap()
            .content
            .ends_with("\\boxed{D}."));
    }

    #[test]
    fn errors_name_the_file_and_line() {
        let mut k = AnswerKey::new();
        let e = k
            .add_jsonl(
                "{\"problem\": \"x\", \"answer\": \"1\"}\nnot json\n",
                "set.jsonl",
            )
            .unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("set.jsonl") && msg.contains("line 2"), "{msg}");
        let e = k
            .add_jsonl("{\"answer\": \"1\"}\n", "set.jsonl")
            .unwrap_err()
            .to_string();
        assert!(e.contains("question field"), "{e}");
        let e = k
            .add_gpqa_csv("a,b\n1,2\n", "g.csv")
            .unwrap_err()
            .to_string();
        assert!(e.contains("Correct Answer"), "{e}");
    }
}
