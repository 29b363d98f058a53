//! String-level clean-up before parsing: math delimiters, `\left`/`\right`, spacing, `\dfrac`, degrees, currency,
//! thousands separators, unit words and `\text{}`-like wrappers.

use crate::extract::matching_brace;

/// Unit words (singular; a plural `s`/`es` is accepted too) that are dropped after a number.
const UNIT_WORDS: &[&str] = &[
    "cm",
    "mm",
    "km",
    "meter",
    "metre",
    "centimeter",
    "centimetre",
    "millimeter",
    "kilometer",
    "inch",
    "inche",
    "foot",
    "feet",
    "ft",
    "yard",
    "yd",
    "mile",
    "mph",
    "square",
    "sq",
    "cubic",
    "cu",
    "unit",
    "degree",
    "deg",
    "radian",
    "dollar",
    "cent",
    "hour",
    "hr",
    "minute",
    "second",
    "day",
    "week",
    "month",
    "year",
    "gram",
    "kg",
    "pound",
    "lb",
    "ounce",
    "oz",
    "liter",
    "litre",
    "gallon",
    "ml",
    "people",
    "student",
    "point",
    "page",
    "marble",
    "coin",
    "grade",
];

/// Single-letter units, dropped only after a plain number and a space (`5 m`).
const UNIT_LETTERS: &[&str] = &["m", "g", "s", "h", "L"];

/// Wrappers whose content is kept as is.
const TEXT_WRAPPERS: &[&str] = &[
    "\\text",
    "\\textbf",
    "\\textit",
    "\\textrm",
    "\\texttt",
    "\\textsf",
    "\\textup",
    "\\mathrm",
    "\\mathbf",
    "\\mathit",
    "\\mathsf",
    "\\mathtt",
    "\\mbox",
    "\\hbox",
    "\\operatorname",
    "\\boldsymbol",
    "\\bm",
    "\\mathnormal",
    "\\emph",
];

/// Cleaned form of an answer, ready for [`super::lexer::lex`].
pub(crate) fn clean(input: &str) -> String {
    let mut s = input.trim().to_string();
    s = strip_math_delimiters(&s);
    s = unwrap_box(&s);
    s = replace_all(&s, &DROP);
    s = drop_sizing(&s);
    s = thousands(&s);
    s = drop_spacing(&s);
    s = unglue_environments(&s);
    s = replace_all(&s, &RENAME);
    s = drop_degrees(&s);
    s = drop_unit_text(&s);
    s = unwrap_text(&s);
    s = drop_ordinal(&s);
    s = drop_trailing_units(&s);
    let t = s
        .trim()
        .trim_end_matches(['.', ',', ';'])
        .trim()
        .trim_start_matches(':')
        .trim();
    t.to_string()
}

/// Removes `$`, `\(`…`\)`, `\[`…`\]` and `\displaystyle`.
fn strip_math_delimiters(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\\' {
            match chars.get(i + 1) {
                Some('(' | ')' | '[' | ']') => {
                    i += 2;
                    continue;
                }
                Some('$') => {
                    // currency: dropped
                    i += 2;
                    continue;
                }
                Some(&d) => {
                    out.push(c);
                    out.push(d);
                    i += 2;
                    continue;
                }
                None => {}
            }
        }
        if c != '$' {
            out.push(c);
        }
        i += 1;
    }
    out
}

/// A whole answer written as `\boxed{…}` or `\fbox{…}` → its content.
fn unwrap_box(s: &str) -> String {
    let t = s.trim();
    for cmd in ["\\boxed", "\\fbox"] {
        if let Some(rest) = t.strip_prefix(cmd) {
            let rest = rest.trim_start();
            if rest.starts_with('{') && matching_brace(rest) == Some(rest.len() - 1) {
                return rest[1..rest.len() - 1].trim().to_string();
            }
        }
    }
    t.to_string()
}

/// Replacements applied in order.
const DROP: [(&str, &str); 12] = [
    ("\\displaystyle", ""),
    ("\\textstyle", ""),
    ("\\left.", ""),
    ("\\right.", ""),
    ("\\left", ""),
    ("\\right", ""),
    ("\\middle", ""),
    ("\\limits", ""),
    ("\\nolimits", ""),
    ("\\lvert", "|"),
    ("\\rvert", "|"),
    ("\\vert", "|"),
];

const RENAME: [(&str, &str); 16] = [
    ("\\dfrac", "\\frac"),
    ("\\tfrac", "\\frac"),
    ("\\cfrac", "\\frac"),
    ("\\dbinom", "\\binom"),
    ("\\tbinom", "\\binom"),
    ("\\leqslant", "\\le"),
    ("\\geqslant", "\\ge"),
    ("\\leq", "\\le"),
    ("\\geq", "\\ge"),
    ("\\neq", "\\ne"),
    ("\\lbrace", "\\{"),
    ("\\rbrace", "\\}"),
    ("\\lbrack", "["),
    ("\\rbrack", "]"),
    ("\\langle", "("),
    ("\\rangle", ")"),
];

/// Spacing commands (`\!`, `\,`, `\;`, `\:`, `\ `, `\quad`, `~`) become a space (`\!` nothing), leaving the
/// row separator `\\` alone.
fn drop_spacing(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\\' {
            match chars.get(i + 1) {
                Some('\\') => {
                    out.push_str("\\\\");
                    i += 2;
                    continue;
                }
                Some('!') => {
                    i += 2;
                    continue;
                }
                Some(',' | ';' | ':' | '>' | ' ') => {
                    out.push(' ');
                    i += 2;
                    continue;
                }
                Some('q') => {
                    let rest: String = chars[i + 1..chars.len().min(i + 7)].iter().collect();
                    let word = if rest.starts_with("qquad") {
                        5
                    } else if rest.starts_with("quad") {
                        4
                    } else {
                        0
                    };
                    let glued = chars
                        .get(i + 1 + word)
                        .is_some_and(|c| c.is_ascii_alphabetic());
                    if word > 0 && !glued {
                        out.push(' ');
                        i += 1 + word;
                        continue;
                    }
                }
                _ => {}
            }
        }
        match c {
            '~' | '\n' | '\t' | '\r' => out.push(' '),
            _ => out.push(c),
        }
        i += 1;
    }
    out
}

/// Braces lost by an answer formatter, restored where only one reading exists:
/// `\beginpmatrix … \endpmatrix` → `\begin{pmatrix} … \end{pmatrix}`, `\mboxinches^2` → `\mbox{inches}^2`.
fn unglue_environments(s: &str) -> String {
    let mut t = s.to_string();
    for w in ["\\mbox", "\\text"] {
        let mut from = 0;
        while let Some(off) = t[from..].find(w) {
            let i = from + off;
            let rest = &t[i + w.len()..];
            let word: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphabetic())
                .collect();
            if !word.is_empty() && is_unit_phrase(&word) {
                t = format!("{}{}{{{}}}{}", &t[..i], w, word, &rest[word.len()..]);
            }
            from = i + w.len();
        }
    }
    for env in ["pmatrix", "bmatrix"] {
        for cmd in ["begin", "end"] {
            let glued = format!("\\{cmd}{env}");
            if t.contains(&glued) {
                t = t.replace(&glued, &format!("\\{cmd}{{{env}}}"));
            }
        }
    }
    t
}

fn replace_all(s: &str, table: &[(&str, &str)]) -> String {
    let mut t = s.to_string();
    for (from, to) in table {
        if t.contains(from) {
            t = replace_command(&t, from, to);
        }
    }
    t
}

/// Replaces `from` except where it is the prefix of a longer command name (`\left` in `\leftarrow`).
fn replace_command(s: &str, from: &str, to: &str) -> String {
    let is_word_cmd = from.starts_with('\\')
        && from[1..].chars().all(|c| c.is_ascii_alphabetic())
        && from.len() > 1;
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(pos) = rest.find(from) {
        let after = &rest[pos + from.len()..];
        let continues = is_word_cmd
            && after
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic());
        out.push_str(&rest[..pos]);
        if continues {
            out.push_str(from);
        } else {
            out.push_str(to);
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

/// `\big(`, `\Bigr)`, … keep the delimiter.
fn drop_sizing(s: &str) -> String {
    let mut t = s.to_string();
    for cmd in [
        "\\Biggl", "\\Biggr", "\\biggl", "\\biggr", "\\Bigl", "\\Bigr", "\\bigl", "\\bigr",
        "\\Bigg", "\\bigg", "\\Big", "\\big",
    ] {
        if t.contains(cmd) {
            t = replace_command(&t, cmd, "");
        }
    }
    t
}

/// `10,\!080`, `1{,}000` and `11,\! 111` become `10,080`, `1,000`, `11,111` (a comma glued to a 3-digit group,
/// which the lexer-level rule in [`join_thousands`] turns into one number).
fn thousands(s: &str) -> String {
    let mut t = s.replace("{,}", ",");
    while let Some(pos) = t.find(",\\!") {
        let after = &t[pos + 3..];
        let trimmed = after.trim_start();
        t = format!("{},{}", &t[..pos], trimmed);
    }
    join_thousands(&t)
}

/// Removes the commas of `d,ddd,ddd` numbers when the number is not inside brackets and no space follows a comma.
pub(crate) fn join_thousands(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len());
    let mut depth: i32 = 0;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => depth -= 1,
            _ => {}
        }
        // at a digit run start not preceded by a digit, letter or '.'
        let starts = c.is_ascii_digit()
            && (i == 0
                || !(chars[i - 1].is_ascii_alphanumeric()
                    || chars[i - 1] == '.'
                    || chars[i - 1] == '_'));
        if starts && depth <= 0 {
            let mut j = i;
            while j < chars.len() && chars[j].is_ascii_digit() {
                j += 1;
            }
            let lead = j - i;
            let mut groups = Vec::new();
            let mut k = j;
            while k + 3 < chars.len() + 1
                && chars.get(k) == Some(&',')
                && (1..=3).all(|d| chars.get(k + d).is_some_and(|x| x.is_ascii_digit()))
                && !chars.get(k + 4).is_some_and(|x| x.is_ascii_digit())
            {
                groups.push(k + 1);
                k += 4;
            }
            if lead <= 3
                && !groups.is_empty()
                && (groups.len() >= 2 || !is_list_context(&chars, i, k))
            {
                out.extend(&chars[i..j]);
                for g in groups {
                    out.extend(&chars[g..g + 3]);
                }
                i = k;
                continue;
            }
            out.extend(&chars[i..j]);
            i = j;
            continue;
        }
        out.push(c);
        i += 1;
    }
    out
}

/// `1,234` alone is a number, but inside a longer comma list (`1,234,5` or `3,100, 2`) it is a list.
fn is_list_context(chars: &[char], start: usize, end: usize) -> bool {
    let before = chars[..start].iter().rev().find(|c| !c.is_whitespace());
    let after = chars[end..].iter().find(|c| !c.is_whitespace());
    before == Some(&',') || after == Some(&',')
}

/// `^\circ`, `^{\circ}`, `°`, `\degree` are dropped (degrees are the unit of the number).
fn drop_degrees(s: &str) -> String {
    let mut t = s.to_string();
    for pat in [
        "^{\\circ}",
        "^{ \\circ }",
        "^{\\circ }",
        "^\\circ",
        "^{\\degree}",
        "^\\degree",
        "\\degree",
        "°",
    ] {
        if t.contains(pat) {
            t = t.replace(pat, "");
        }
    }
    let trimmed = t.trim_end();
    if let Some(stripped) = trimmed.strip_suffix("\\circ") {
        t = stripped.to_string();
    }
    t
}

fn is_unit_phrase(words: &str) -> bool {
    let parts: Vec<&str> = words.split_whitespace().collect();
    !parts.is_empty()
        && parts.iter().all(|w| {
            let w = w.trim_end_matches('.');
            let lower = w.to_ascii_lowercase();
            let singular = lower
                .strip_suffix("es")
                .filter(|s| UNIT_WORDS.contains(s))
                .or_else(|| lower.strip_suffix('s'));
            UNIT_WORDS.contains(&lower.as_str())
                || singular.is_some_and(|s| UNIT_WORDS.contains(&s))
        })
}

/// Drops `\text{ cm}`, `\mbox{ inches}^2`, `\text{ dollars}` … after something (not when the text is the answer).
fn drop_unit_text(s: &str) -> String {
    let mut t = s.to_string();
    for w in TEXT_WRAPPERS {
        let mut from = 0;
        while let Some(off) = t[from..].find(&format!("{w}{{")) {
            let i = from + off;
            let open = i + w.len();
            let Some(end) = matching_brace(&t[open..]) else {
                break;
            };
            let inner = &t[open + 1..open + end];
            let before = t[..i].trim();
            if is_unit_phrase(inner) && !before.is_empty() {
                let mut stop = open + end + 1;
                stop += power_suffix_len(&t[stop..]);
                t = format!("{}{}", &t[..i], &t[stop..]);
                from = i;
            } else {
                from = open + end + 1;
            }
        }
    }
    t
}

/// Length of `^2`, `^{2}`, `^3` at the start of `s`.
fn power_suffix_len(s: &str) -> usize {
    for p in ["^{2}", "^{3}", "^2", "^3"] {
        if s.starts_with(p) {
            return p.len();
        }
    }
    0
}

/// `\text{Evelyn}` → `Evelyn`, also nested and for the other wrappers; `\text` without braces is dropped.
fn unwrap_text(s: &str) -> String {
    let mut t = s.to_string();
    let mut guard = 0;
    loop {
        guard += 1;
        let found = TEXT_WRAPPERS
            .iter()
            .filter_map(|w| find_command(&t, w).map(|i| (i, *w)))
            .min_by_key(|(i, _)| *i);
        let Some((i, w)) = found else { break };
        if guard > 64 {
            break;
        }
        let after = &t[i + w.len()..];
        let skip = after.len() - after.trim_start().len();
        let open = i + w.len() + skip;
        if t[open..].starts_with('{') {
            match matching_brace(&t[open..]) {
                Some(end) => {
                    let inner = t[open + 1..open + end].to_string();
                    t = format!("{}{}{}", &t[..i], inner, &t[open + end + 1..]);
                }
                None => {
                    t = format!("{}{}", &t[..i], &t[open + 1..]);
                }
            }
        } else {
            t = format!("{}{}", &t[..i], &t[i + w.len()..]);
        }
    }
    t
}

/// Byte index of `cmd` where it is a whole command (not a prefix of a longer name).
fn find_command(s: &str, cmd: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(off) = s[from..].find(cmd) {
        let i = from + off;
        let next = s[i + cmd.len()..].chars().next();
        if !next.is_some_and(|c| c.is_ascii_alphabetic()) {
            return Some(i);
        }
        from = i + cmd.len();
    }
    None
}

/// `12^{th}`, `3^{rd}`, `21st` → the number.
fn drop_ordinal(s: &str) -> String {
    let mut t = s.to_string();
    for suf in ["th", "st", "nd", "rd"] {
        for pat in [format!("^{{{suf}}}"), format!("^{suf}")] {
            if let Some(pos) = t.find(&pat) {
                if t[..pos].ends_with(|c: char| c.is_ascii_digit()) {
                    t = format!("{}{}", &t[..pos], &t[pos + pat.len()..]);
                }
            }
        }
    }
    t
}

/// Trailing plain unit words after a number or a closing bracket: `5.4cents`, `864 inches^2`, `12 square units`.
fn drop_trailing_units(s: &str) -> String {
    let t = s.trim_end();
    let core = t;
    let pow = ["^{2}", "^{3}", "^2", "^3"]
        .iter()
        .find(|p| core.ends_with(**p))
        .map_or(0, |p| p.len());
    let body = &core[..core.len() - pow];
    // longest trailing run of letters, spaces and dots
    let tail_start = body
        .char_indices()
        .rev()
        .take_while(|(_, c)| c.is_ascii_alphabetic() || *c == ' ' || *c == '.')
        .last()
        .map(|(i, _)| i);
    let Some(start) = tail_start else {
        return s.to_string();
    };
    // the tail may begin with words that are not units (`12 fish cm`): only drop a run of unit words at the end
    let tail = &body[start..];
    let words: Vec<&str> = tail.split_whitespace().collect();
    if words.is_empty() {
        return s.to_string();
    }
    let head = body[..start].trim_end();
    let head_ok = head.ends_with(|c: char| c.is_ascii_digit() || c == '}' || c == ')');
    if !head_ok {
        return s.to_string();
    }
    if is_unit_phrase(tail) {
        return head.to_string();
    }
    let spaced = body[start..].starts_with(' ');
    let plain_number = head
        .chars()
        .all(|c| c.is_ascii_digit() || c == '.' || c == '-' || c == ',');
    if words.len() == 1 && spaced && plain_number && UNIT_LETTERS.contains(&words[0]) {
        return head.to_string();
    }
    s.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleans() {
        assert_eq!(
            clean("$\\left( 3, \\dfrac{\\pi}{2} \\right)$"),
            "( 3, \\frac{\\pi}{2} )"
        );
        assert_eq!(clean("90^\\circ"), "90");
        assert_eq!(clean("\\text{Evelyn}"), "Evelyn");
        assert_eq!(clean("11,\\! 111,\\! 111,\\! 100"), "11111111100");
        assert_eq!(clean("10,\\!080"), "10080");
        assert_eq!(clean("\\$32,348"), "32348");
        assert_eq!(clean("1,000"), "1000");
        assert_eq!(clean("(1,000)"), "(1,000)");
        assert_eq!(clean("3, 5, 7"), "3, 5, 7");
        assert_eq!(clean("1,234,5"), "1,234,5");
        assert_eq!(clean("864 \\mbox{ inches}^2"), "864");
        assert_eq!(clean("5.4 \\text{ cents}"), "5.4");
        assert_eq!(clean("5.4cents"), "5.4");
        assert_eq!(clean("\\frac{270}7\\text{ degrees}"), "\\frac{270}7");
        assert_eq!(clean("12 square units"), "12");
        assert_eq!(clean("5 m"), "5");
        assert_eq!(clean("12^{\\mathrm{th}}"), "12");
        assert_eq!(clean("\\text{east}"), "east");
        assert_eq!(clean("\\leftarrow"), "\\leftarrow");
        assert_eq!(clean("x \\geq 2."), "x \\ge 2");
        assert_eq!(clean("1 \\\\ 2\\,3\\quad 4"), "1 \\\\ 2 3  4");
        assert_eq!(
            clean("\\beginpmatrix1\\\\2\\endpmatrix"),
            "\\begin{pmatrix}1\\\\2\\end{pmatrix}"
        );
        assert_eq!(clean("864\\mboxinches^2"), "864");
        assert_eq!(clean("\\textbf{x}"), "x");
        assert_eq!(clean("$\\boxed{5}$"), "5");
        assert_eq!(clean("\\boxed{1}+\\boxed{2}"), "\\boxed{1}+\\boxed{2}");
    }
}
