//! evalscope's GPQA answer extraction, both versions, as their code does it (regexes written as Python's `re`
//! reads them: `\s` includes U+001C–U+001F, `\d` is any decimal digit).
//!
//! - **0.x** (`GPQAAdapter.get_multiple_choice_answer`, evalscope 0.12.1): the last match of `\b(A|B|C|D)\b` in
//!   the upper-cased message content (reasoning included when the server sends it inline), word characters as
//!   Python's `\w` (letters, digits, `_`). No match: no letter (evalscope then compares the whole stripped text
//!   with the letter, which never matches).
//! - **1.x** (`parse_answers`, evalscope 1.14.1 `utils/multi_choices.py`): the completion is the content, with
//!   the first `<think …>…</think>` block cut out when the server sent no separate reasoning; the label after the
//!   last `ANSWER:` marker that is followed by one (bracketed `(B)`/`[B]`, after `$`, `\(`, `\boxed{`,
//!   `\text{`…; several labels joined by `,`/`/`/`and`/`or` are read as a list), else the last upper-case
//!   character of the whole completion if it is an option letter. A label that is not a single option letter
//!   (`AB`, `A, C`) is no answer.

use std::sync::OnceLock;

use regex::Regex;

/// Python's `str.isalnum() or c == '_'` (the `\w` of a `str` pattern), as far as Rust's character classes tell.
fn py_word(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

/// evalscope 0.x: the last standalone A–D of the upper-cased text.
pub fn letter_v0(content: &str) -> Option<char> {
    let upper: Vec<char> = content.to_uppercase().chars().collect();
    let mut last = None;
    for (i, &c) in upper.iter().enumerate() {
        if !matches!(c, 'A'..='D') {
            continue;
        }
        let before = i > 0 && py_word(upper[i - 1]);
        let after = upper.get(i + 1).is_some_and(|&n| py_word(n));
        if !before && !after {
            last = Some(c);
        }
    }
    last
}

/// Python's `\s` inside a character class.
const WS: &str = r"\s\x{1c}-\x{1f}";

struct Patterns {
    think: Regex,
    marker: Regex,
    latex_prefix: Regex,
    bracketed: Regex,
    plain: Regex,
    token: Regex,
}

fn patterns() -> &'static Patterns {
    static P: OnceLock<Patterns> = OnceLock::new();
    P.get_or_init(|| {
        let re = |p: String| Regex::new(&p).expect("evalscope patterns compile");
        Patterns {
            think: re(format!(
                r#"(?s)<think(?:[{WS}]+signature="([^"]*)")?(?:[{WS}]+redacted="(true)")?[{WS}]*>(.*?)</think>"#
            )),
            marker: re(format!(r"(?i)ANSWER[{WS}]*:[{WS}]*\**[{WS}]*")),
            latex_prefix: re(format!(
                r"^(?:(?:\$+|\\\(|\\(?:boxed|fbox|text|textbf|mathbf|mathrm)[{WS}]*\{{)[{WS}]*)*"
            )),
            bracketed: re(format!(
                r"^[\(\[（【][{WS}]*([A-Za-z\d](?:[{WS}]*[,，/、][{WS}]*[A-Za-z\d])*)[{WS}]*[\)\]）】]"
            )),
            plain: re(r"^([A-Za-z\d][A-Za-z\d ,，/、]*)".to_string()),
            token: re(r"[A-Za-z\d]+".to_string()),
        }
    })
}

/// Python's `str.strip()`.
fn py_strip(s: &str) -> &str {
    crate::dataset::gpqa::py_strip(s)
}

/// evalscope 1.x's `completion`: the content as is when the server sent reasoning separately (non-empty
/// `reasoning_content`), else the content without its first `<think>…</think>` block, stripped (when it has one).
pub fn completion_v1(content: &str, reasoning_field: &str) -> String {
    if !reasoning_field.is_empty() {
        return content.to_string();
    }
    match patterns().think.find(content) {
        Some(m) => {
            let joined = format!("{}{}", &content[..m.start()], &content[m.end()..]);
            py_strip(&joined).to_string()
        }
        None => content.to_string(),
    }
}

const OPTIONS: [char; 4] = ['A', 'B', 'C', 'D'];

fn is_label_word(word: &str) -> bool {
    !word.is_empty() && word.chars().all(|c| OPTIONS.contains(&c))
}

/// `_label_prefix`: the leading part of a capture made only of labels (connectors `and`/`or` between labels).
fn label_prefix(capture: &str) -> &str {
    let tokens: Vec<regex::Match<'_>> = patterns().token.find_iter(capture).collect();
    let mut end = 0;
    for (i, t) in tokens.iter().enumerate() {
        let word = t.as_str();
        if is_label_word(word) {
            end = t.end();
            continue;
        }
        let follows = end > 0;
        let precedes = tokens.get(i + 1).is_some_and(|n| is_label_word(n.as_str()));
        let lower = word.to_lowercase();
        if follows && precedes && (lower == "and" || lower == "or") {
            continue;
        }
        break;
    }
    &capture[..end]
}

/// `_last_labelled_answer`: the label after the last marker that is followed by one.
fn last_labelled(text: &str) -> Option<&str> {
    let p = patterns();
    let markers: Vec<usize> = p.marker.find_iter(text).map(|m| m.end()).collect();
    for &end in markers.iter().rev() {
        let tail = &text[end..];
        let skip = p.latex_prefix.find(tail).map_or(0, |m| m.end());
        let tail = &tail[skip..];
        for label_re in [&p.bracketed, &p.plain] {
            let Some(c) = label_re.captures(tail) else {
                continue;
            };
            let Some(g) = c.get(1) else { continue };
            let prefix = label_prefix(g.as_str());
            if !prefix.is_empty() {
                return Some(prefix);
            }
        }
    }
    None
}

/// evalscope 1.x: the option letter `parse_answers` finds in a completion (see the module docs).
pub fn letter_v1(completion: &str) -> Option<char> {
    match last_labelled(completion) {
        None => {
            // `_fallback_parse_answer`: the last upper-case character, if it is an option letter.
            let c = completion.chars().rev().find(|c| c.is_uppercase())?;
            OPTIONS.contains(&c).then_some(c)
        }
        Some(m) => {
            let m = py_strip(m).trim_end_matches('.');
            let mut cs = m.chars();
            match (cs.next(), cs.next()) {
                (Some(c), None) if OPTIONS.contains(&c) => Some(c),
                _ => None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v0_takes_the_last_standalone_letter_of_the_upper_cased_text() {
        assert_eq!(letter_v0("The answer is \\boxed{B}."), Some('B'));
        // Lower-case articles count: "a" is A once upper-cased.
        assert_eq!(letter_v0("So (C) it is, a fine choice"), Some('A'));
        assert_eq!(letter_v0("B_1 and CD and xA"), None);
        assert_eq!(letter_v0("no letters here"), None);
        assert_eq!(letter_v0("<think>maybe D</think>\n\nAnswer: c"), Some('C'));
        assert_eq!(letter_v0("é-B-é"), Some('B'));
        assert_eq!(letter_v0("éBé"), None);
        assert_eq!(letter_v0(""), None);
    }

    #[test]
    fn v1_completion_cuts_the_first_think_block_only_without_a_reasoning_field() {
        assert_eq!(
            completion_v1("<think>\nD is wrong\n</think>\n\nANSWER: B\n", ""),
            "ANSWER: B"
        );
        assert_eq!(
            completion_v1("D is wrong\n</think>\n\nANSWER: B", ""),
            "D is wrong\n</think>\n\nANSWER: B"
        );
        assert_eq!(
            completion_v1("<think>x</think> ANSWER: B", "reasoning"),
            "<think>x</think> ANSWER: B"
        );
        assert_eq!(
            completion_v1("<think signature=\"s\">a</think>A<think>b</think>", ""),
            "A<think>b</think>"
        );
    }

    #[test]
    fn v1_reads_the_last_marker_with_a_label() {
        assert_eq!(letter_v1("ANSWER: B"), Some('B'));
        assert_eq!(letter_v1("answer : **(c)**"), None); // lower-case label is not an option letter
        assert_eq!(letter_v1("**ANSWER: C**"), Some('C'));
        assert_eq!(letter_v1("ANSWER: $\\boxed{\\text{D}}$"), Some('D'));
        assert_eq!(letter_v1("Answer: [A]"), Some('A'));
        // An echoed placeholder is skipped for the previous marker.
        assert_eq!(
            letter_v1("ANSWER: C\nFormat: 'ANSWER: [LETTER]'"),
            Some('C')
        );
        // The label prefix stops at prose.
        assert_eq!(letter_v1("ANSWER: B, not C"), Some('B'));
        // Several labels are not one answer.
        assert_eq!(letter_v1("ANSWER: A and C"), None);
        assert_eq!(letter_v1("ANSWER: AB"), None);
        assert_eq!(letter_v1("ANSWER: B."), Some('B'));
    }

    #[test]
    fn v1_falls_back_to_the_last_capital_if_it_is_an_option() {
        assert_eq!(letter_v1("I think it is B"), Some('B'));
        assert_eq!(letter_v1("It is B, I think"), None); // last capital is I
        assert_eq!(letter_v1("the answer is \\boxed{C}."), Some('C'));
        assert_eq!(letter_v1("no capitals"), None);
        assert_eq!(letter_v1(""), None);
        // A marker followed by no label falls back too.
        assert_eq!(letter_v1("ANSWER: ... it's D"), Some('D'));
    }
}
