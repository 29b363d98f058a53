//! Qwen2.5-Math's `parser.py` `strip_string`, reimplemented: the normalisation both sides go through before
//! `math_equal`, quirks included (see the parent module).

use std::sync::OnceLock;

use num_bigint::BigInt;
use regex::Regex;

/// Unit and filler words Qwen2.5-Math removes when they stand between non-word characters (a `.` inside an entry is
/// a regex wildcard there, and is kept as one here). Plurals (`+s`) are added.
const UNITS: &[&str] = &[
    "east",
    "degree",
    "mph",
    "kmph",
    "ft",
    "m sqaure",
    " m east",
    "sq m",
    "deg",
    "mile",
    "q .",
    "monkey",
    "prime",
    "ratio",
    "profit of rs",
    "rd",
    "o",
    "gm",
    "p . m",
    "lb",
    "tile",
    "per",
    "dm",
    "lt",
    "gain",
    "ab",
    "way",
    "west",
    "a .",
    "b .",
    "c .",
    "d .",
    "e .",
    "f .",
    "g .",
    "h .",
    "t",
    "a",
    "h",
    "no change",
    "men",
    "soldier",
    "pie",
    "bc",
    "excess",
    "st",
    "inches",
    "noon",
    "percent",
    "by",
    "gal",
    "kmh",
    "c",
    "acre",
    "rise",
    "a . m",
    "th",
    "π r 2",
    "sq",
    "mark",
    "l",
    "toy",
    "coin",
    "sq . m",
    "gallon",
    "° f",
    "profit",
    "minw",
    "yr",
    "women",
    "feet",
    "am",
    "pm",
    "hr",
    "cu cm",
    "square",
    "v â € ™",
    "are",
    "rupee",
    "rounds",
    "cubic",
    "cc",
    "mtr",
    "s",
    "ohm",
    "number",
    "kmph",
    "day",
    "hour",
    "minute",
    "min",
    "second",
    "man",
    "woman",
    "sec",
    "cube",
    "mt",
    "sq inch",
    "mp",
    "∏ cm ³",
    "hectare",
    "more",
    "sec",
    "unit",
    "cu . m",
    "cm 2",
    "rs .",
    "rs",
    "kg",
    "g",
    "month",
    "km",
    "m",
    "cm",
    "mm",
    "apple",
    "liter",
    "loss",
    "yard",
    "pure",
    "year",
    "increase",
    "decrease",
    "d",
    "less",
    "Surface",
    "litre",
    "pi sq m",
    "s .",
    "metre",
    "meter",
    "inch",
];

pub(super) struct Patterns {
    /// Each unit as characters (`None`: the `.` wildcard) and its literal start (up to the first wildcard).
    pub(super) units: Vec<(Vec<Option<char>>, String)>,
    pub(super) trailing_text: Regex,
    pub(super) text: Regex,
    pub(super) mbox: Regex,
    pub(super) zeros_mid: Regex,
    pub(super) zeros_end: Regex,
    pub(super) sqrt_word: Regex,
    pub(super) array_begin: Regex,
    pub(super) list_format: Regex,
    pub(super) choice: Regex,
}

pub(super) fn patterns() -> Option<&'static Patterns> {
    static P: OnceLock<Option<Patterns>> = OnceLock::new();
    P.get_or_init(|| {
        let mut all: Vec<String> = UNITS.iter().map(|s| s.to_string()).collect();
        all.extend(UNITS.iter().map(|s| format!("{s}s")));
        // `.` is a wildcard, as in the regex Qwen builds from these strings
        let units = all
            .iter()
            .map(|u| {
                let chars = u.chars().map(|c| (c != '.').then_some(c)).collect();
                let head = u.split('.').next().unwrap_or("").to_string();
                (chars, head)
            })
            .collect();
        Some(Patterns {
            units,
            trailing_text: Regex::new(r"\\text\{.*?\}$").ok()?,
            text: Regex::new(r"\\text\{(.*?)\}").ok()?,
            mbox: Regex::new(r"\\mbox\{.*?\}").ok()?,
            zeros_mid: Regex::new(r"(\d+)\.0*([^\d])").ok()?,
            zeros_end: Regex::new(r"(\d+)\.0*$").ok()?,
            sqrt_word: Regex::new(r"\\sqrt(\w+)").ok()?,
            array_begin: Regex::new(r"\\begin\{array\}\{.*?\}").ok()?,
            list_format: Regex::new(r"^(\(|\[).+(\)|\])").ok()?,
            choice: Regex::new(r"\b(A|B|C|D|E)\b").ok()?,
        })
    })
    .as_ref()
}

/// Python's `\W` for `str` patterns: not alphanumeric and not `_`.
fn non_word(c: char) -> bool {
    !(c.is_alphanumeric() || c == '_')
}

/// `re.sub(r"(^|\W)" + unit + r"($|\W)", r"\1\2", s)`: removes `unit` where it stands between non-word characters
/// (or the ends), scanning left to right without overlaps, as Python's `re` does.
fn remove_unit(s: &str, unit: &[Option<char>]) -> String {
    let chars: Vec<char> = s.chars().collect();
    let n = chars.len();
    let matches_at = |start: usize| -> Option<usize> {
        if start + unit.len() > n {
            return None;
        }
        let ok = unit.iter().enumerate().all(|(k, u)| match u {
            Some(c) => chars[start + k] == *c,
            None => chars[start + k] != '\n',
        });
        ok.then_some(start + unit.len())
    };
    // suffix `($|\W)`: end of text, or one non-word character (consumed)
    let suffix = |end: usize| -> Option<usize> {
        if end == n {
            Some(end)
        } else if non_word(chars[end]) {
            Some(end + 1)
        } else {
            None
        }
    };
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i <= n {
        // alternative 1: `^` (only at 0); alternative 2: one non-word character
        let mut found: Option<(Option<char>, usize, Option<char>)> = None;
        if i == 0 {
            if let Some(end) = matches_at(0) {
                if let Some(stop) = suffix(end) {
                    found = Some((None, stop, (stop > end).then(|| chars[end])));
                }
            }
        }
        if found.is_none() && i < n && non_word(chars[i]) {
            if let Some(end) = matches_at(i + 1) {
                if let Some(stop) = suffix(end) {
                    found = Some((Some(chars[i]), stop, (stop > end).then(|| chars[end])));
                }
            }
        }
        match found {
            Some((pre, stop, post)) => {
                out.extend(pre);
                out.extend(post);
                i = stop;
            }
            None => {
                if i < n {
                    out.push(chars[i]);
                }
                i += 1;
            }
        }
    }
    out
}

/// A cheap necessary condition for `remove_unit` to change `s`: the unit's literal start occurs at the beginning of
/// `s` or right after a non-word character (most units fail it: `a` in `\frac` follows `r`).
fn may_start_unit(s: &str, head: &str) -> bool {
    let Some(first) = head.chars().next() else {
        return true;
    };
    // one memchr first: most units' first character does not occur at all
    if !s.contains(first) {
        return false;
    }
    s.match_indices(head)
        .any(|(i, _)| i == 0 || s[..i].chars().next_back().is_some_and(non_word))
}

/// Warms the compiled patterns so that their one-time cost does not count against an item's time bound.
pub(crate) fn prepare() {
    let _ = patterns();
}

/// Qwen2.5-Math's `strip_string`, reimplemented.
pub(crate) fn strip_string(input: &str) -> String {
    let Some(pt) = patterns() else {
        return input.trim().to_string();
    };
    let mut s = input.trim().replace('\n', "");
    s = s.trim_end_matches('.').to_string();
    s = s.replace("\\!", "");
    s = pt
        .array_begin
        .replace_all(&s, "\\begin{pmatrix}")
        .into_owned();
    s = s
        .replace("\\end{array}", "\\end{pmatrix}")
        .replace("bmatrix", "pmatrix");
    s = s.replace("tfrac", "frac").replace("dfrac", "frac");
    s = s
        .replace("\\neq", "\\ne")
        .replace("\\leq", "\\le")
        .replace("\\geq", "\\ge");
    s = s.replace("\\left", "").replace("\\right", "");
    s = s.replace("\\{", "{").replace("\\}", "}");
    let t = pt.trailing_text.replace(&s, "").trim().to_string();
    if !t.is_empty() && t != s {
        s = t;
    }
    for _ in 0..2 {
        for (unit, head) in &pt.units {
            if !may_start_unit(&s, head) {
                continue;
            }
            let t = remove_unit(&s, unit);
            if !t.is_empty() {
                s = t;
            }
        }
    }
    s = s.replace("^{\\circ}", "").replace("^\\circ", "");
    s = s.replace("\\$", "").replace('$', "");
    s = s.replace("\\(", "").replace("\\)", "");
    s = word_to_number(&s);
    s = pt.text.replace_all(&s, "${1}").into_owned();
    for key in [
        "x=", "y=", "z=", "x\\in", "y\\in", "z\\in", "x\\to", "y\\to", "z\\to",
    ] {
        s = s.replace(key, "");
    }
    s = s.replace("\\emptyset", "{}");
    s = s.replace("(-\\infty,\\infty)", "\\mathbb{R}");
    s = s.replace("\\%", "").replace('%', "");
    s = s.replace(" .", " 0.").replace("{.", "{0.");
    s = s.replace("infinity", "\\infty");
    if !s.contains("\\infty") {
        s = s.replace("inf", "\\infty");
    }
    s = s.replace("and", "");
    s = s.replace("\\mathbf", "");
    s = pt.mbox.replace_all(&s, "").into_owned();
    if s.contains('j') && !s.contains('i') {
        s = s.replace('j', "i");
    }
    s = pt.zeros_mid.replace_all(&s, "${1}${2}").into_owned();
    s = pt.zeros_end.replace_all(&s, "${1}").into_owned();
    if s.is_empty() {
        return s;
    }
    if s.starts_with('.') {
        s = format!("0{s}");
    }
    let parts: Vec<&str> = s.split('=').collect();
    if parts.len() == 2 && parts[0].chars().count() <= 2 {
        s = parts[1].to_string();
    }
    s = pt.sqrt_word.replace_all(&s, "\\sqrt{${1}}").into_owned();
    s = s.replace(' ', "");
    s = fix_fracs(&s);
    fix_a_slash_b(&s)
}

/// `word2number`'s behaviour on the whole answer: a digit-only string becomes its integer (`025` → `25`); a
/// string with number words becomes their value; anything else is unchanged.
fn word_to_number(s: &str) -> String {
    let lowered = s.replace('-', " ").to_lowercase();
    if !lowered.is_empty() && lowered.chars().all(|c| c.is_ascii_digit()) {
        return lowered
            .parse::<BigInt>()
            .map(|n| n.to_string())
            .unwrap_or_else(|_| s.to_string());
    }
    let words: Vec<&str> = lowered
        .split_whitespace()
        .filter(|w| {
            number_word(w).is_some() || matches!(*w, "hundred" | "thousand" | "million" | "billion")
        })
        .collect();
    if words.is_empty() {
        return s.to_string();
    }
    let mut total: u64 = 0;
    let mut current: u64 = 0;
    for w in words {
        match w {
            "hundred" => current = current.max(1) * 100,
            "thousand" | "million" | "billion" => {
                let scale = match w {
                    "thousand" => 1_000,
                    "million" => 1_000_000,
                    _ => 1_000_000_000,
                };
                total += current.max(1) * scale;
                current = 0;
            }
            _ => current += number_word(w).unwrap_or(0),
        }
    }
    (total + current).to_string()
}

fn number_word(w: &str) -> Option<u64> {
    const SMALL: [&str; 20] = [
        "zero",
        "one",
        "two",
        "three",
        "four",
        "five",
        "six",
        "seven",
        "eight",
        "nine",
        "ten",
        "eleven",
        "twelve",
        "thirteen",
        "fourteen",
        "fifteen",
        "sixteen",
        "seventeen",
        "eighteen",
        "nineteen",
    ];
    const TENS: [&str; 8] = [
        "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety",
    ];
    if let Some(i) = SMALL.iter().position(|x| *x == w) {
        return Some(i as u64);
    }
    TENS.iter()
        .position(|x| *x == w)
        .map(|i| (i as u64 + 2) * 10)
}

/// `\frac12` → `\frac{1}{2}`, `\frac1{72}` → `\frac{1}{72}` (as Qwen's `_fix_fracs`).
fn fix_fracs(s: &str) -> String {
    let pieces: Vec<&str> = s.split("\\frac").collect();
    let mut out = pieces[0].to_string();
    for sub in &pieces[1..] {
        out.push_str("\\frac");
        let chars: Vec<char> = sub.chars().collect();
        if chars.first() == Some(&'{') {
            out.push_str(sub);
            continue;
        }
        if chars.len() < 2 {
            return s.to_string();
        }
        let (a, b) = (chars[0], chars[1]);
        let post: String = chars[2..].iter().collect();
        if b != '{' {
            out.push_str(&format!("{{{a}}}{{{b}}}{post}"));
        } else {
            out.push_str(&format!("{{{a}}}{b}{post}"));
        }
    }
    out
}

/// `3/4` → `\frac{3}{4}` when both sides are integers (or contain `sqrt`).
fn fix_a_slash_b(s: &str) -> String {
    let parts: Vec<&str> = s.split('/').collect();
    if parts.len() != 2 {
        return s.to_string();
    }
    let canon = |x: &str| -> Option<String> {
        if x.contains("sqrt") {
            Some(x.to_string())
        } else {
            python_int(x).map(|n| n.to_string())
        }
    };
    match (canon(parts[0]), canon(parts[1])) {
        (Some(a), Some(b)) if format!("{a}/{b}") == s => format!("\\frac{{{a}}}{{{b}}}"),
        _ => s.to_string(),
    }
}

/// Python's `int(str)`: optional sign, digits, underscores between digits, surrounding white space.
pub(super) fn python_int(x: &str) -> Option<BigInt> {
    let t = x.trim().replace('_', "");
    if t.is_empty() {
        return None;
    }
    t.parse::<BigInt>().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strip_string_quirks() {
        assert_eq!(strip_string("\\frac{14}{3}"), "\\frac{14}{3}");
        assert_eq!(strip_string("14/3"), "\\frac{14}{3}");
        assert_eq!(strip_string("\\dfrac12"), "\\frac{1}{2}");
        assert_eq!(strip_string("90^\\circ"), "90");
        assert_eq!(strip_string("5\\text{ cm}"), "5");
        assert_eq!(strip_string("025"), "25");
        assert_eq!(strip_string("x = 5"), "5");
        assert_eq!(
            strip_string("\\left( 3, \\frac{\\pi}{2} \\right)"),
            "(3,\\frac{\\pi}{2})"
        );
        assert_eq!(strip_string("10\\%"), "10");
        assert_eq!(strip_string("3.0"), "3");
        assert_eq!(strip_string("\\sqrt3"), "\\sqrt{3}");
        assert_eq!(strip_string("Sandy"), "Sy");
        assert_eq!(strip_string("(a+5)(b+2)"), "(+5)(b+2)");
        assert_eq!(strip_string("(a + 5)(b + 2)"), "(5)(2)");
        assert_eq!(strip_string("\\text{east}"), "");
    }

    /// Expected outputs from Python's `re.sub(r"(^|\W)" + unit + r"($|\W)", r"\1\2", text)`.
    #[test]
    fn unit_removal_matches_python_re() {
        let u =
            |x: &str| -> Vec<Option<char>> { x.chars().map(|c| (c != '.').then_some(c)).collect() };
        assert_eq!(remove_unit("a a a", &u("a")), " a ");
        assert_eq!(remove_unit("(a+5)(b+2)", &u("a")), "(+5)(b+2)");
        assert_eq!(remove_unit("(a + 5)(b + 2)", &u("b .")), "(a + 5)( 2)");
        assert_eq!(remove_unit("a", &u("a")), "");
        assert_eq!(remove_unit("\\text{east}", &u("t")), "\\text{east}");
        assert_eq!(remove_unit("\\text{east}", &u("east")), "\\text{}");
        assert_eq!(remove_unit(" m m", &u("m")), "  m");
        assert_eq!(remove_unit("a b c", &u("a .")), " c");
        assert_eq!(remove_unit("5 m east", &u(" m east")), "5 m east");
    }
}
