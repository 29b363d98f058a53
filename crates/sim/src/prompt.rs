//! Prompt token counting.
//!
//! The simulator has no tokenizer of its own. [`HeuristicCounter`] approximates a byte-level BPE tokenizer by
//! counting pre-tokens the way GPT-style pre-tokenizers split text:
//! - a run of letters (with at most one leading space) counts 1 token per started 10 letters;
//! - a run of digits counts 1 token per started 3 digits (Llama-3 / cl100k group digits by three);
//! - a run of other visible characters (punctuation, symbols) counts 1 per started 3 characters;
//! - whitespace other than the single space attached to the next word counts 1 per run;
//! - CJK and other characters from U+2E80 upwards count 1 each.
//!
//! Chat requests count the sum over message contents plus [`CHAT_TOKENS_PER_MESSAGE`] per message (role markers)
//! plus [`CHAT_TOKENS_FOR_REPLY`] (the assistant turn header), roughly what ChatML-style templates add.
//! `input_ids` prompts are counted exactly. A real tokenizer can be plugged in through [`PromptCounter`]
//! (`SimConfig::prompt_counter`).

/// Tokens added per chat message by the heuristic chat count.
pub const CHAT_TOKENS_PER_MESSAGE: usize = 4;
/// Tokens added once per chat request (the assistant reply header) by the heuristic chat count.
pub const CHAT_TOKENS_FOR_REPLY: usize = 3;

/// One chat message as the simulator sees it: the role and the text of its content (text parts joined).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatMessage {
    pub role: String,
    pub content: String,
}

/// Counts prompt tokens. Implement this to make the simulator's `usage.prompt_tokens` exact for a tokenizer.
pub trait PromptCounter: Send + Sync {
    /// Tokens in a raw text prompt (`/v1/completions` `prompt`, `/generate` `text`).
    fn count_text(&self, text: &str) -> usize;

    /// Tokens in a chat prompt after the server-side chat template. The default sums the contents and adds the
    /// heuristic per-message overhead.
    fn count_chat(&self, messages: &[ChatMessage]) -> usize {
        messages
            .iter()
            .map(|m| self.count_text(&m.content) + CHAT_TOKENS_PER_MESSAGE)
            .sum::<usize>()
            + CHAT_TOKENS_FOR_REPLY
    }
}

/// The built-in approximate counter (see the module documentation for the rules).
#[derive(Debug, Clone, Copy, Default)]
pub struct HeuristicCounter;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Class {
    Letter,
    Digit,
    Symbol,
    Space,
    /// CJK and other characters from U+2E80 upwards: one token each.
    Wide,
}

fn classify(c: char) -> Class {
    if c.is_whitespace() {
        Class::Space
    } else if u32::from(c) >= 0x2E80 {
        Class::Wide
    } else if c.is_alphabetic() {
        Class::Letter
    } else if c.is_numeric() {
        Class::Digit
    } else {
        Class::Symbol
    }
}

/// Tokens for one run of `len` characters of `class`; `at_end` says whether the run ends the text.
fn run_tokens(class: Class, len: usize, at_end: bool) -> usize {
    match class {
        Class::Letter => len.div_ceil(10),
        Class::Digit | Class::Symbol => len.div_ceil(3),
        Class::Wide => len,
        // A single space joins the word after it; longer runs (and a trailing space) are a token of their own.
        Class::Space => usize::from(len >= 2 || at_end),
    }
}

impl PromptCounter for HeuristicCounter {
    fn count_text(&self, text: &str) -> usize {
        let mut total = 0usize;
        let mut run: Option<(Class, usize)> = None;
        for c in text.chars() {
            let cl = classify(c);
            run = match run {
                Some((rc, n)) if rc == cl => Some((rc, n + 1)),
                Some((rc, n)) => {
                    total += run_tokens(rc, n, false);
                    Some((cl, 1))
                }
                None => Some((cl, 1)),
            };
        }
        if let Some((rc, n)) = run {
            total += run_tokens(rc, n, true);
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(s: &str) -> usize {
        HeuristicCounter.count_text(s)
    }

    #[test]
    fn words_with_spaces_count_one_each() {
        assert_eq!(count(" the of and"), 3);
        assert_eq!(count("Hello world"), 2);
        assert_eq!(count(""), 0);
    }

    #[test]
    fn punctuation_digits_and_whitespace() {
        // Hello | world | , | this | is | a | test | .
        assert_eq!(count("Hello world, this is a test."), 8);
        assert_eq!(count("12345"), 2);
        assert_eq!(count("a\n\nb"), 3);
        assert_eq!(count("trailing "), 2);
        assert_eq!(count("internationalization"), 2);
        assert_eq!(count("日本語"), 3);
    }

    #[test]
    fn chat_adds_overhead() {
        let msgs = vec![
            ChatMessage {
                role: "system".into(),
                content: "Be brief.".into(),
            },
            ChatMessage {
                role: "user".into(),
                content: "Hello world".into(),
            },
        ];
        // (3 + 4) + (2 + 4) + 3
        assert_eq!(HeuristicCounter.count_chat(&msgs), 16);
    }
}
