//! Answer extraction from model responses.
//!
//! * [`last_boxed`]: the content of the last `\boxed{…}` / `\fbox{…}` (brace-matched), or `\boxed 5`.
//! * [`extract_math_answer`]: last boxed, else "the answer is …" / "final answer is …", else the last number.
//! * [`extract_choice`]: a multiple-choice letter A–D.
//! * [`strip_reasoning`]: splits `<think>…</think>` reasoning from the final text.
//! * [`qwen_whole_text`] + [`qwen_protocol_answer`]: the `qwen2.5-math` protocol's scope (the whole text, reasoning
//!   included) and its answer (Qwen2.5-Math's `extract_answer` branches; an empty `\boxed{}` is taken).
//!
//! All functions are pure and never panic: they work on `char` boundaries only.

/// Commands whose argument is the final answer.
const BOX_COMMANDS: [&str; 2] = ["\\boxed", "\\fbox"];

/// Content of the last top-level `\boxed{…}` or `\fbox{…}`, brace-matched, trimmed.
///
/// `\boxed 5` (no braces, as Qwen2.5-Math's parser accepts) gives the token after the command, up to white space or
/// `$`. Empty boxes and a box left unclosed (a response cut short) are skipped in favour of the previous complete one.
pub fn last_boxed(text: &str) -> Option<String> {
    let mut found: Option<String> = None;
    let mut i = 0;
    while i < text.len() {
        let rest = &text[i..];
        let Some(cmd) = BOX_COMMANDS.iter().find(|c| rest.starts_with(**c)) else {
            i += rest.chars().next().map_or(1, char::len_utf8);
            continue;
        };
        let after = &rest[cmd.len()..];
        // `\boxedx` is a different command name; `\boxed{` / `\boxed 5` are ours.
        match after.chars().next() {
            Some(c) if c.is_ascii_alphabetic() => {
                i += cmd.len();
                continue;
            }
            _ => {}
        }
        let trimmed = after.trim_start();
        let skipped = after.len() - trimmed.len();
        if trimmed.starts_with('{') {
            match matching_brace(trimmed) {
                Some(end) => {
                    let content = unwrap_nested_box(trimmed[1..end].trim());
                    if !content.is_empty() {
                        found = Some(content);
                    }
                    i += cmd.len() + skipped + end + 1;
                }
                None => break, // unclosed: the rest of the text is inside it
            }
        } else if skipped > 0 || trimmed.is_empty() {
            let token: String = trimmed
                .chars()
                .take_while(|c| !c.is_whitespace() && *c != '$')
                .collect();
            let token = token.trim_end_matches(['.', ',']).to_string();
            if !token.is_empty() {
                found = Some(token.clone());
            }
            i += cmd.len() + skipped + token.len().max(1);
        } else {
            i += cmd.len();
        }
    }
    found
}

/// `\boxed{\boxed{5}}` → `5`.
fn unwrap_nested_box(content: &str) -> String {
    let mut s = content;
    while let Some(cmd) = BOX_COMMANDS.iter().find(|c| s.starts_with(**c)) {
        let inner = s[cmd.len()..].trim_start();
        if !inner.starts_with('{') {
            break;
        }
        match matching_brace(inner) {
            Some(end) if end + 1 == inner.len() => s = inner[1..end].trim(),
            _ => break,
        }
    }
    s.to_string()
}

/// Byte index of the `}` that closes the `{` at byte 0 of `s` (escaped `\{`/`\}` do not count).
pub(crate) fn matching_brace(s: &str) -> Option<usize> {
    let mut depth = 0usize;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' => escaped = true,
            '{' => depth += 1,
            '}' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

/// Phrases after which a final answer follows (lower case), most specific first.
const ANSWER_PHRASES: [&str; 3] = ["final answer is", "the answer is", "final answer:"];

/// The final math answer of a response: the last boxed answer; else the text after the last "the answer is" /
/// "final answer is" (to the end of its line or sentence, `$` removed); else the last number in the text.
pub fn extract_math_answer(text: &str) -> Option<String> {
    if let Some(b) = last_boxed(text) {
        return Some(b);
    }
    if let Some(a) = after_answer_phrase(text) {
        return Some(a);
    }
    last_number(text)
}

fn after_answer_phrase(text: &str) -> Option<String> {
    let lower = text.to_ascii_lowercase(); // same byte offsets as `text`
    let (pos, phrase) = ANSWER_PHRASES
        .iter()
        .filter_map(|p| lower.rfind(p).map(|i| (i, *p)))
        .max_by_key(|(i, p)| i + p.len())?;
    let rest = &text[pos + phrase.len()..];
    let rest = rest.trim_start_matches([':', ' ', '\t']);
    let line = rest.lines().next().unwrap_or("").trim();
    let line = cut_sentence(line);
    let answer = line
        .trim()
        .trim_matches('$')
        .trim()
        .trim_start_matches("\\(")
        .trim_end_matches("\\)")
        .trim_start_matches("\\[")
        .trim_end_matches("\\]")
        .trim()
        .trim_end_matches(['.', ','])
        .trim();
    if answer.is_empty() {
        None
    } else {
        Some(answer.to_string())
    }
}

/// Cuts at ". " (a sentence end) unless the period sits between digits.
fn cut_sentence(line: &str) -> &str {
    let bytes = line.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'.' {
            let next = bytes.get(i + 1).copied();
            if next.is_none() || next == Some(b' ') {
                let prev_digit = i > 0 && bytes[i - 1].is_ascii_digit();
                let next_digit = bytes.get(i + 2).is_some_and(|c| c.is_ascii_digit());
                if !(prev_digit && next_digit) {
                    return &line[..i];
                }
            }
        }
    }
    line
}

/// The last number in the text: optional minus, digits with optional thousands commas, optional decimals, or a
/// simple fraction `a/b`. Commas are removed.
pub(crate) fn last_number(text: &str) -> Option<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut last: Option<String> = None;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let starts_number = c.is_ascii_digit()
            || (c == '.' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit()));
        if !starts_number {
            i += 1;
            continue;
        }
        let negative = i > 0 && chars[i - 1] == '-' && (i < 2 || !chars[i - 2].is_alphanumeric());
        let mut j = i;
        let mut num = String::new();
        if negative {
            num.push('-');
        }
        let mut seen_dot = false;
        while j < chars.len() {
            let d = chars[j];
            if d.is_ascii_digit() {
                num.push(d);
            } else if d == ',' && chars.get(j + 1).is_some_and(|x| x.is_ascii_digit()) && !seen_dot
            {
                // thousands separator only when followed by exactly three digits
                let three = (1..=3).all(|k| chars.get(j + k).is_some_and(|x| x.is_ascii_digit()));
                let fourth = chars.get(j + 4).is_some_and(|x| x.is_ascii_digit());
                if three && !fourth {
                    j += 1;
                    continue;
                }
                break;
            } else if d == '.' && !seen_dot && chars.get(j + 1).is_some_and(|x| x.is_ascii_digit())
            {
                seen_dot = true;
                num.push(d);
            } else {
                break;
            }
            j += 1;
        }
        // a/b
        if j + 1 < chars.len() && chars[j] == '/' && chars[j + 1].is_ascii_digit() && !seen_dot {
            num.push('/');
            j += 1;
            while j < chars.len() && chars[j].is_ascii_digit() {
                num.push(chars[j]);
                j += 1;
            }
        }
        last = Some(num);
        i = j.max(i + 1);
    }
    last
}

/// The multiple-choice letter (A–D) of a response: the letter inside the last `\boxed{}` (`\boxed{B}`,
/// `\boxed{(B)}`, `\boxed{\text{B}}`, `\boxed{B) 42}`); else an "answer is (B)" / "Answer: B" pattern; else the
/// last standalone A–D in the final text (after any `<think>` reasoning).
pub fn extract_choice(text: &str) -> Option<char> {
    let (_, final_text) = strip_reasoning(text);
    let scope = if final_text.trim().is_empty() {
        text
    } else {
        final_text.as_str()
    };
    if let Some(b) = last_boxed(scope) {
        if let Some(c) = leading_choice(&b) {
            return Some(c);
        }
    }
    if let Some(c) = choice_after_phrase(scope) {
        return Some(c);
    }
    last_standalone_choice(scope)
}

/// Removes `\text{…}`-like wrappers, `$`, `*` and opening brackets, then reads a leading letter A–D that is not the
/// start of a word (`B) 42`, `(B)`, `\textbf{B}`, `B.`, `B because`); a lower-case letter only as `b)` or alone.
pub(crate) fn leading_choice(s: &str) -> Option<char> {
    let mut t = s.to_string();
    for w in [
        "\\textbf", "\\text", "\\mathrm", "\\mathbf", "\\mbox", "\\textrm", "\\boxed", "\\fbox",
    ] {
        t = t.replace(w, "");
    }
    let t: String = t
        .chars()
        .filter(|c| !matches!(c, '{' | '}' | '$' | '*' | '(' | '['))
        .collect();
    let t = t.trim_start();
    let t = t
        .strip_prefix("Option")
        .or_else(|| t.strip_prefix("option"))
        .unwrap_or(t)
        .trim_start();
    let mut chars = t.chars();
    let c = chars.next()?;
    let next = chars.next();
    let upper = c.to_ascii_uppercase();
    if !('A'..='D').contains(&upper) {
        return None;
    }
    if c.is_ascii_lowercase() && !matches!(next, None | Some(')')) {
        return None;
    }
    match next {
        Some(n) if n.is_alphanumeric() => None,
        _ => Some(upper),
    }
}

/// Phrases after which the chosen letter follows: strong ones first; "option"/"choice" only when no strong one has a
/// letter after it.
const STRONG_CHOICE_PHRASES: [&str; 3] = ["answer is", "answer:", "answer is:"];
const WEAK_CHOICE_PHRASES: [&str; 2] = ["option", "choice"];

fn choice_after_phrase(text: &str) -> Option<char> {
    last_choice_after(text, &STRONG_CHOICE_PHRASES)
        .or_else(|| last_choice_after(text, &WEAK_CHOICE_PHRASES))
}

fn last_choice_after(text: &str, phrases: &[&str]) -> Option<char> {
    let lower = text.to_ascii_lowercase();
    let mut best: Option<(usize, char)> = None;
    for p in phrases {
        let mut start = 0;
        while let Some(off) = lower[start..].find(p) {
            let pos = start + off + p.len();
            let rest = text[pos..].trim_start_matches([' ', ':', '\t']);
            let head: String = rest.chars().take(24).collect();
            if let Some(c) = leading_choice(&head) {
                if best.is_none_or(|(b, _)| pos > b) {
                    best = Some((pos, c));
                }
            }
            start = pos;
        }
    }
    best.map(|(_, c)| c)
}

fn last_standalone_choice(text: &str) -> Option<char> {
    let chars: Vec<char> = text.chars().collect();
    let mut last = None;
    for (i, &c) in chars.iter().enumerate() {
        if !('A'..='D').contains(&c) {
            continue;
        }
        let prev = i.checked_sub(1).map(|k| chars[k]);
        let next = chars.get(i + 1).copied();
        if prev.is_some_and(|p| p.is_alphanumeric() || p == '\\')
            || next.is_some_and(char::is_alphanumeric)
        {
            continue;
        }
        // "A cat": the article, not a choice.
        if c == 'A' && next == Some(' ') && chars.get(i + 2).is_some_and(|n| n.is_lowercase()) {
            continue;
        }
        last = Some(c);
    }
    last
}

/// Splits a response into (reasoning, final text).
///
/// `<think>R</think>F` → `(Some(R), F)`; a response with only `</think>` (the opening tag was in the prompt, as
/// DeepSeek-R1's template does) treats everything before it as reasoning; an unclosed `<think>` makes everything after
/// it reasoning and the final text empty; no tags → `(None, text)`. Text is trimmed.
pub fn strip_reasoning(text: &str) -> (Option<String>, String) {
    const OPEN: &str = "<think>";
    const CLOSE: &str = "</think>";
    if let Some(close) = text.rfind(CLOSE) {
        let before = &text[..close];
        let reasoning = match before.find(OPEN) {
            Some(open) => &before[open + OPEN.len()..],
            None => before,
        };
        let final_text = &text[close + CLOSE.len()..];
        return (
            Some(reasoning.trim().to_string()),
            final_text.trim().to_string(),
        );
    }
    if let Some(open) = text.find(OPEN) {
        return (
            Some(text[open + OPEN.len()..].trim().to_string()),
            String::new(),
        );
    }
    (None, text.trim().to_string())
}

/// The text the `qwen2.5-math` protocol reads: everything the server returned for the answer.
///
/// Qwen2.5-Math's script grades the whole generated text. The field report ran it against a server without a
/// reasoning parser, so that text was the reasoning, `</think>` and the final answer, all in `content`. When the
/// server splits the reasoning into `reasoning_content`, the same text is rebuilt here as the reasoning, a
/// newline, then the content, so the protocol gives the report's number whichever way the server is configured
/// (Qwen's script itself would then see only `content`; that is not the report's setting).
pub fn qwen_whole_text(content: &str, reasoning_field: &str) -> String {
    if reasoning_field.is_empty() {
        content.to_string()
    } else {
        format!("{reasoning_field}\n{content}")
    }
}

/// The text Qwen2.5-Math's `math_eval.py` extracts from: the whole response (see [`qwen_whole_text`]) stripped
/// and cut at the first of its stop words (`</s>`, `<|im_end|>`, `<|endoftext|>`); `None` when nothing is left.
pub fn qwen_protocol_text(full_text: &str) -> Option<String> {
    let py_strip = crate::dataset::gpqa::py_strip;
    let mut code = py_strip(full_text).to_string();
    for stop in ["</s>", "<|im_end|>", "<|endoftext|>"] {
        if let Some(i) = code.find(stop) {
            code = py_strip(&code[..i]).to_string();
        }
    }
    (!code.is_empty()).then_some(code)
}

/// The `qwen2.5-math` protocol's answer of a whole response: Qwen2.5-Math's
/// `strip_string(extract_answer(text, "math"))` ([`crate::grade::qwen_extract`], checked against Qwen's own
/// verdicts on 1,070 pairs) of [`qwen_protocol_text`]. The last `\boxed{}` anywhere counts, reasoning included;
/// an empty box gives `Some("")` (taken, and graded wrong), as does a response with no answer Qwen can find.
/// `None` only for an empty response.
///
/// Not reproduced: Qwen's loop that runs a Python program when an output has no `boxed` and ends with a code
/// fence (it re-queries the model with the program's output); such a response is extracted as it stands.
pub fn qwen_protocol_answer(full_text: &str) -> Option<String> {
    qwen_protocol_text(full_text).map(|t| crate::grade::qwen_extract(&t))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qwen_protocol_reads_the_last_box_anywhere_and_takes_empty_boxes() {
        // A box only in the reasoning counts (servebench would read only the final text).
        let whole = qwen_whole_text("So the result stands.", "Work: \\boxed{42} done");
        assert_eq!(qwen_protocol_answer(&whole).as_deref(), Some("42"));
        assert_eq!(
            qwen_protocol_answer("<think>\\boxed{1}</think> final \\boxed{\\frac{1}{2}}.")
                .as_deref(),
            Some("\\frac{1}{2}")
        );
        // An empty last box is taken (and graded wrong), not skipped.
        assert_eq!(
            qwen_protocol_answer("\\boxed{7} then \\boxed{} and the answer is 7").as_deref(),
            Some("")
        );
        // Cut inside a box: the rest of the (stripped) text.
        assert_eq!(qwen_protocol_answer("\\boxed{3 + ").as_deref(), Some("3+"));
        assert_eq!(qwen_protocol_answer("\\boxed 5$ ok").as_deref(), Some("5"));
        assert_eq!(
            qwen_protocol_answer("The answer is 12.").as_deref(),
            Some("12")
        );
        assert_eq!(
            qwen_protocol_answer("we get 1,234 and -0.5 apples").as_deref(),
            Some("-0.5")
        );
        assert_eq!(qwen_protocol_answer("nothing to see").as_deref(), Some(""));
        assert_eq!(qwen_protocol_answer("  \n "), None);
        // Cut at a stop word; the Chinese phrase takes its first occurrence's paragraph.
        assert_eq!(
            qwen_protocol_answer("x = 3<|im_end|> \\boxed{9}").as_deref(),
            Some("3")
        );
        assert_eq!(
            qwen_protocol_answer("答案是 5\n\n答案是 6").as_deref(),
            Some("5")
        );
        assert_eq!(
            qwen_protocol_answer("The final answer is $x=2$. I hope it is correct.").as_deref(),
            Some("2")
        );
        assert_eq!(
            qwen_protocol_answer("the answer is:\n  4.").as_deref(),
            Some("4")
        );
    }

    #[test]
    fn boxed_simple_nested_and_multiple() {
        assert_eq!(last_boxed("so \\boxed{5}."), Some("5".into()));
        assert_eq!(
            last_boxed("\\boxed{\\frac{1}{2}}"),
            Some("\\frac{1}{2}".into())
        );
        assert_eq!(last_boxed("\\boxed{1} then \\boxed{ 2 }"), Some("2".into()));
        assert_eq!(last_boxed("\\boxed{\\{1,2\\}}"), Some("\\{1,2\\}".into()));
        assert_eq!(last_boxed("\\fbox{7}"), Some("7".into()));
        assert_eq!(last_boxed("\\boxed{\\boxed{8}}"), Some("8".into()));
        assert_eq!(last_boxed("$\\boxed 5$"), Some("5".into()));
        assert_eq!(last_boxed("no box here"), None);
        assert_eq!(last_boxed("\\boxed{}"), None);
        // unclosed last box (truncated): the previous complete one
        assert_eq!(last_boxed("\\boxed{3} and \\boxed{4"), Some("3".into()));
        assert_eq!(last_boxed("\\boxedx{3}"), None);
    }

    #[test]
    fn math_answer_fallbacks() {
        assert_eq!(
            extract_math_answer("The answer is $\\frac{3}{4}$."),
            Some("\\frac{3}{4}".into())
        );
        assert_eq!(
            extract_math_answer("So the final answer is 42. Done"),
            Some("42".into())
        );
        assert_eq!(
            extract_math_answer("we get 3 apples and then 1,234.5 pears"),
            Some("1234.5".into())
        );
        assert_eq!(extract_math_answer("it is -7 degrees"), Some("-7".into()));
        assert_eq!(extract_math_answer("ratio 3/4"), Some("3/4".into()));
        assert_eq!(
            extract_math_answer("the answer is 3.14. yes"),
            Some("3.14".into())
        );
        assert_eq!(extract_math_answer("no numbers"), None);
        assert_eq!(
            extract_math_answer("\\boxed{9} the answer is 3"),
            Some("9".into())
        );
    }

    #[test]
    fn choices() {
        assert_eq!(extract_choice("\\boxed{B}"), Some('B'));
        assert_eq!(extract_choice("\\boxed{(B)}"), Some('B'));
        assert_eq!(extract_choice("\\boxed{\\text{B}}"), Some('B'));
        assert_eq!(extract_choice("\\boxed{B) 42}"), Some('B'));
        assert_eq!(extract_choice("\\boxed{\\textbf{(C)}}"), Some('C'));
        assert_eq!(extract_choice("Thus the answer is (D)."), Some('D'));
        assert_eq!(extract_choice("Answer: C"), Some('C'));
        assert_eq!(extract_choice("A cat sat. I pick (A) over B"), Some('B'));
        assert_eq!(extract_choice("<think>maybe A</think>It is C"), Some('C'));
        assert_eq!(extract_choice("A dog barks"), None);
        assert_eq!(extract_choice("\\boxed{Boron}"), None);
        assert_eq!(
            extract_choice("The answer is D. Option A was wrong."),
            Some('D')
        );
        assert_eq!(
            extract_choice("so the answer is B because it fits"),
            Some('B')
        );
        assert_eq!(extract_choice("**Answer: $\\boxed{C}$**"), Some('C'));
        assert_eq!(extract_choice("I pick option c) here"), Some('C'));
        assert_eq!(extract_choice("The correct answer is (A) 42"), Some('A'));
    }

    #[test]
    fn reasoning_split() {
        assert_eq!(
            strip_reasoning("<think>r</think> f"),
            (Some("r".into()), "f".into())
        );
        assert_eq!(
            strip_reasoning("r</think>f"),
            (Some("r".into()), "f".into())
        );
        assert_eq!(
            strip_reasoning("<think>r still"),
            (Some("r still".into()), String::new())
        );
        assert_eq!(strip_reasoning("plain"), (None, "plain".into()));
    }
}
