//! Qwen2.5-Math's answer extraction (`parser.py` `extract_answer(text, "math")`), reimplemented from reading that
//! code: the whole text is searched (reasoning included), the last `boxed` wins even when its braces are empty, and
//! the fallbacks are its own ("he answer is", "final answer is", "答案是", else the last number).

use std::sync::OnceLock;

use regex::Regex;

use super::strip::strip_string;

/// The text after the last `boxed`: brace-matched when it opens with `{` (an unclosed box runs to the end of the
/// text), otherwise up to the next `$`, trimmed. `None` when nothing follows the last `boxed` at all.
fn after_last_boxed(text: &str) -> Option<String> {
    let (_, rest) = text.rsplit_once("boxed")?;
    let Some(body) = rest.strip_prefix('{') else {
        if rest.is_empty() {
            return None;
        }
        return Some(rest.split('$').next().unwrap_or("").trim().to_string());
    };
    let mut depth = 1usize;
    let mut out = String::new();
    for c in body.chars() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    break;
                }
            }
            _ => {}
        }
        out.push(c);
    }
    Some(out)
}

/// Python's `re.findall(r"-?\d*\.?\d+", text.replace(",", ""))[-1]`: the last number of the text.
fn last_number(text: &str) -> String {
    static NUMBER: OnceLock<Option<Regex>> = OnceLock::new();
    let Some(re) = NUMBER
        .get_or_init(|| Regex::new(r"-?\d*\.?\d+").ok())
        .as_ref()
    else {
        return String::new();
    };
    let text = text.replace(',', "");
    re.find_iter(&text)
        .last()
        .map(|m| m.as_str().to_string())
        .unwrap_or_default()
}

/// `re.sub(r"\n\s*", "", s)`: every line break and the white space after it removed.
fn join_lines(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\n' {
            while chars.peek().is_some_and(|c| c.is_whitespace()) {
                chars.next();
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Qwen's `extract_answer(text, "math")` (which ends in one `strip_string`).
pub(crate) fn extract_answer(text: &str) -> String {
    let text = text.replace("\u{043a}\u{0438}", "");
    let minerva = text
        .split_once("final answer is $")
        .filter(|_| text.contains("$. I hope"))
        .map(|(_, tail)| {
            tail.split_once("$. I hope")
                .map_or(tail, |(answer, _)| answer)
        });
    let pred = if let Some(answer) = minerva {
        answer.trim().to_string()
    } else if text.contains("boxed") {
        match after_last_boxed(&text) {
            Some(a) => a,
            // Qwen returns here, before any clean-up: nothing follows the last `boxed`
            None => return String::new(),
        }
    } else if let Some((_, tail)) = text.rsplit_once("he answer is") {
        tail.trim().to_string()
    } else if let Some((_, tail)) = text.rsplit_once("final answer is") {
        tail.trim().to_string()
    } else if let Some((_, tail)) = text.split_once("答案是") {
        let tail = tail.trim();
        tail.split("\n\n").next().unwrap_or("").trim().to_string()
    } else {
        last_number(&text)
    };
    strip_string(&clean_extracted(&pred))
}

/// `extract_answer`'s clean-up of the answer it found, before `strip_string`: line breaks (with the white space
/// after them) removed, then one leading `:`, one trailing `.` and one trailing `/` dropped.
pub(super) fn clean_extracted(answer: &str) -> String {
    let pred = join_lines(answer);
    let pred = pred.strip_prefix(':').unwrap_or(&pred);
    let pred = pred.strip_suffix('.').unwrap_or(pred);
    let pred = pred.strip_suffix('/').unwrap_or(pred);
    pred.to_string()
}

/// What Qwen2.5-Math compares as the prediction: `strip_string(extract_answer(response, "math"))` on the whole
/// response (its `run_execute` strips once more after `extract_answer`).
pub fn qwen_extract(response: &str) -> String {
    strip_string(&extract_answer(response))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn box_rules() {
        assert_eq!(
            after_last_boxed("a \\boxed{1} b \\boxed{2}"),
            Some("2".into())
        );
        assert_eq!(
            after_last_boxed("\\boxed{\\frac{1}{2}}"),
            Some("\\frac{1}{2}".into())
        );
        assert_eq!(after_last_boxed("\\boxed{}"), Some(String::new()));
        assert_eq!(after_last_boxed("\\boxed{1 + {2"), Some("1 + {2".into()));
        assert_eq!(after_last_boxed("$\\boxed 5$."), Some("5".into()));
        assert_eq!(after_last_boxed("ends with boxed"), None);
        assert_eq!(after_last_boxed("no box"), None);
    }

    #[test]
    fn whole_text_and_fallbacks() {
        // the last box anywhere, the reasoning included
        assert_eq!(qwen_extract("<think>so \\boxed{7}</think> I think 8"), "7");
        // an empty last box is the answer, not a reason to look further
        assert_eq!(qwen_extract("\\boxed{3} then \\boxed{}"), "");
        assert_eq!(qwen_extract("The answer is 12.\n"), "12");
        assert_eq!(qwen_extract("so the final answer is 3/4"), "\\frac{3}{4}");
        assert_eq!(
            qwen_extract("Final Answer: The final answer is $5$. I hope it is correct."),
            "5"
        );
        assert_eq!(qwen_extract("答案是 42\n\n其他"), "42");
        assert_eq!(qwen_extract("we get 1,234 and then -0.5 left"), "-0.5");
        assert_eq!(qwen_extract("no digits here"), "");
        assert_eq!(qwen_extract("\\boxed{\n  12\n}"), "12");
        assert_eq!(qwen_extract("ends with boxed"), "");
    }
}
