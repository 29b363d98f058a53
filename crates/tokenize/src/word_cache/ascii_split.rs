//! The word regexes of byte-level tokenizers matched by hand on ASCII text: GPT-4-style (Llama 3, Qwen2) and
//! DeepSeek V3/R1's three splits.
//!
//! Llama 3: `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
//! (Qwen2: `\p{N}` for `\p{N}{1,3}`); DeepSeek: `\p{N}{1,3}`, then CJK runs, then
//! `[!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`.
//! The regex crates find one word in ~300 instructions, mostly the set-up of each search; a model's answer is
//! re-tokenized word by word after every run, so that was ~25% of the client's instructions per streamed token.
//! Here each branch is tried in order on the bytes, as the leftmost-first regex tries them. Any byte outside
//! ASCII that could change the answer (a letter, digit, mark, space or symbol of another script, a case variant
//! like `ſ`) makes [`AsciiSplit::next_word`] answer [`Found::Undecided`], and the caller asks the regex: the
//! result is the regex's in every case (a proptest compares both on texts mixing scripts).

/// The hand matcher of one of the known patterns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AsciiSplit {
    /// Llama 3's and Qwen2's pattern; digits per word: 1 (`\p{N}`) or 3 (`\p{N}{1,3}`).
    Gpt4 { digits: usize },
    /// DeepSeek's first split, `\p{N}{1,3}`.
    Digits,
    /// DeepSeek's second split: runs of CJK characters (none in ASCII).
    Cjk,
    /// DeepSeek's word split.
    DeepSeekWords,
}

/// The next word at or after a byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Found {
    Word(usize, usize),
    /// None before the end of the text.
    NoWord,
    /// A byte outside ASCII decides: ask the regex.
    Undecided,
}

const LLAMA3: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const QWEN2: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const DIGITS: &str = r"\p{N}{1,3}";
const CJK: &str = "[\u{4e00}-\u{9fa5}\u{3040}-\u{309f}\u{30a0}-\u{30ff}]+";
const DEEPSEEK_WORDS: &str = r##"[!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"##;

/// An ASCII byte's class, or `None` for a byte outside ASCII (and past the end: `Some(End)`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Class {
    Letter,
    Digit,
    /// `\r` or `\n`.
    Newline,
    /// The other ASCII white space of `\s`: tab, vertical tab, form feed, space.
    Space,
    /// ASCII punctuation and symbols (`\p{P}`, `\p{S}`).
    Punct,
    /// ASCII control characters other than white space (`\p{Cc}`).
    Control,
    End,
}

fn class(b: &[u8], i: usize) -> Option<Class> {
    let Some(&c) = b.get(i) else {
        return Some(Class::End);
    };
    Some(match c {
        b'a'..=b'z' | b'A'..=b'Z' => Class::Letter,
        b'0'..=b'9' => Class::Digit,
        b'\r' | b'\n' => Class::Newline,
        b'\t' | 0x0b | 0x0c | b' ' => Class::Space,
        0x21..=0x7e => Class::Punct,
        0x80.. => return None,
        _ => Class::Control,
    })
}

/// The end of the run of `want` bytes from `i`; None where a byte outside ASCII ends it.
fn run(b: &[u8], mut i: usize, want: impl Fn(Class) -> bool) -> Option<usize> {
    loop {
        let c = class(b, i)?;
        if !want(c) {
            return Some(i);
        }
        i += 1;
    }
}

impl AsciiSplit {
    /// The hand matcher where `pattern` is one of the known patterns, as the files write them (line breaks in a
    /// class written as characters or as `\r`, `\n`).
    pub(crate) fn for_pattern(pattern: &str) -> Option<AsciiSplit> {
        match pattern.replace('\r', r"\r").replace('\n', r"\n").as_str() {
            LLAMA3 => Some(AsciiSplit::Gpt4 { digits: 3 }),
            QWEN2 => Some(AsciiSplit::Gpt4 { digits: 1 }),
            DIGITS => Some(AsciiSplit::Digits),
            CJK => Some(AsciiSplit::Cjk),
            DEEPSEEK_WORDS => Some(AsciiSplit::DeepSeekWords),
            _ => None,
        }
    }

    /// The leftmost word at or after byte `at` of `b`, as the regex finds it.
    pub(crate) fn next_word(&self, b: &[u8], at: usize) -> Found {
        let found = match self {
            AsciiSplit::Gpt4 { digits } => gpt4_word(b, at, *digits),
            AsciiSplit::Digits => digit_group(b, at),
            AsciiSplit::Cjk => b.get(at..).is_some_and(<[u8]>::is_ascii).then_some(None),
            AsciiSplit::DeepSeekWords => deepseek_word(b, at),
        };
        match found {
            Some(Some((start, end))) => Found::Word(start, end),
            Some(None) => Found::NoWord,
            None => Found::Undecided,
        }
    }
}

/// Llama 3's and Qwen2's word at `at`: every branch together matches any character, so the leftmost word
/// starts there (Some(None) at the end of the text).
fn gpt4_word(b: &[u8], at: usize, digits: usize) -> Option<Option<(usize, usize)>> {
    let first = class(b, at)?;
    if first == Class::End {
        return Some(None);
    }
    if b[at] == b'\'' {
        if let Some(end) = contraction(b, at)? {
            return Some(Some((at, end)));
        }
    }
    let end = match first {
        // [^\r\n\p{L}\p{N}]?\p{L}+ with the optional character left out.
        Class::Letter => run(b, at, |c| c == Class::Letter)?,
        // \p{N} or \p{N}{1,3}.
        Class::Digit => digit_run(b, at, digits)?,
        Class::Newline => white_space(b, at)?,
        // [^\r\n\p{L}\p{N}]\p{L}+, else ` ?[^\s\p{L}\p{N}]+[\r\n]*`, else white space.
        Class::Space | Class::Punct | Class::Control => {
            let other = |c: Class| matches!(c, Class::Punct | Class::Control);
            let next = class(b, at + 1)?;
            if next == Class::Letter {
                run(b, at + 1, |c| c == Class::Letter)?
            } else if other(first) {
                symbols(b, at, other)?
            } else if b[at] == b' ' && other(next) {
                symbols(b, at + 1, other)?
            } else {
                white_space(b, at)?
            }
        }
        Class::End => return Some(None),
    };
    Some(Some((at, end)))
}

/// `\p{N}{1,3}`: the first group of ASCII digits at or after `at`.
fn digit_group(b: &[u8], mut at: usize) -> Option<Option<(usize, usize)>> {
    loop {
        match class(b, at)? {
            Class::End => return Some(None),
            Class::Digit => return Some(Some((at, digit_run(b, at, 3)?))),
            _ => at += 1,
        }
    }
}

/// DeepSeek's word at or after `at`: unlike GPT-4's, its branches leave some characters unmatched (a digit or
/// control character before no letter), which the search steps over.
fn deepseek_word(b: &[u8], mut at: usize) -> Option<Option<(usize, usize)>> {
    loop {
        if at >= b.len() {
            return Some(None);
        }
        if let Some(end) = deepseek_word_at(b, at)? {
            return Some(Some((at, end)));
        }
        at += 1;
    }
}

/// DeepSeek's word starting exactly at `at` (not the end), Some(None) where none starts there.
fn deepseek_word_at(b: &[u8], at: usize) -> Option<Option<usize>> {
    let first = class(b, at)?;
    let letters = |from: usize| run(b, from, |c| c == Class::Letter);
    let end = match first {
        Class::End => return Some(None),
        // [\p{L}\p{M}]+ (marks and other scripts' letters are outside ASCII).
        Class::Letter => letters(at)?,
        Class::Newline => white_space(b, at)?,
        // [ASCII punctuation][A-Za-z]+ (ASCII letters only: a byte outside ASCII ends it), else
        // [\p{P}\p{S}]+[\r\n]*.
        Class::Punct => match b.get(at + 1) {
            Some(c) if c.is_ascii_alphabetic() => {
                at + 1
                    + b[at + 1..]
                        .iter()
                        .take_while(|c| c.is_ascii_alphabetic())
                        .count()
            }
            _ => symbols(b, at, |c| c == Class::Punct)?,
        },
        // [^\r\n\p{L}\p{P}\p{S}][\p{L}\p{M}]+, else ` [\p{P}\p{S}]+[\r\n]*` (a space), else white space.
        Class::Space | Class::Digit | Class::Control => {
            let next = class(b, at + 1)?;
            if next == Class::Letter {
                letters(at + 1)?
            } else if b[at] == b' ' && next == Class::Punct {
                symbols(b, at + 1, |c| c == Class::Punct)?
            } else if first == Class::Space {
                white_space(b, at)?
            } else {
                return Some(None);
            }
        }
    };
    Some(Some(end))
}

/// The end of up to `digits` ASCII digits from `at` (a digit).
fn digit_run(b: &[u8], at: usize, digits: usize) -> Option<usize> {
    let mut end = at + 1;
    while end - at < digits {
        match class(b, end)? {
            Class::Digit => end += 1,
            _ => break,
        }
    }
    Some(end)
}

/// `(?i:'s|'t|'re|'ve|'m|'ll|'d)` at `at` (an apostrophe): Some(None) where none applies; None where a byte
/// outside ASCII decides (`'ſ` is `'s` under case folding).
fn contraction(b: &[u8], at: usize) -> Option<Option<usize>> {
    let lower = |i: usize| -> Option<u8> {
        match b.get(i) {
            Some(&c) if c >= 0x80 => None,
            Some(&c) => Some(c.to_ascii_lowercase()),
            None => Some(0),
        }
    };
    let one = lower(at + 1)?;
    if matches!(one, b's' | b't' | b'm' | b'd') {
        return Some(Some(at + 2));
    }
    if !matches!(one, b'r' | b'v' | b'l') {
        return Some(None);
    }
    let two = lower(at + 2)?;
    let pair = matches!((one, two), (b'r', b'e') | (b'v', b'e') | (b'l', b'l'));
    Some(pair.then_some(at + 3))
}

/// A run of `symbol` bytes from `at` (one), then `[\r\n]*`.
fn symbols(b: &[u8], at: usize, symbol: impl Fn(Class) -> bool) -> Option<usize> {
    let end = run(b, at, symbol)?;
    run(b, end, |c| c == Class::Newline)
}

/// `\s*[\r\n]+|\s+(?!\S)|\s+` from `at` (white space): up to the run's last line break, else the run less its
/// last character where more text follows (not for a run of one), else the run.
fn white_space(b: &[u8], at: usize) -> Option<usize> {
    let end = run(b, at, |c| matches!(c, Class::Space | Class::Newline))?;
    if let Some(last) = (at..end).rev().find(|&i| matches!(b[i], b'\r' | b'\n')) {
        return Some(last + 1);
    }
    if end < b.len() && end - at >= 2 {
        return Some(end - 1);
    }
    Some(end)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The pattern's regex, compiled once per test thread.
    fn regex(pattern: &str) -> fancy_regex::Regex {
        thread_local! {
            static COMPILED: std::cell::RefCell<Vec<(String, fancy_regex::Regex)>> = Default::default();
        }
        COMPILED.with(|c| {
            let mut c = c.borrow_mut();
            if let Some((_, re)) = c.iter().find(|(p, _)| p == pattern) {
                return re.clone();
            }
            let re = fancy_regex::Regex::new(pattern).unwrap();
            c.push((pattern.to_string(), re.clone()));
            re
        })
    }

    /// The words of `text` as the regex finds them (leftmost-first, from the end of the last).
    fn regex_words(pattern: &str, text: &str) -> Vec<(usize, usize)> {
        let re = regex(pattern);
        let mut out = Vec::new();
        let mut at = 0;
        while let Ok(Some(m)) = re.find_from_pos(text, at) {
            out.push((m.start(), m.end()));
            at = m.end();
        }
        out
    }

    /// The words where the hand matcher answers, the regex's where it does not; and how many answers it gave.
    fn hand_words(pattern: &str, text: &str) -> (Vec<(usize, usize)>, usize) {
        let split = AsciiSplit::for_pattern(pattern).unwrap();
        let re = regex(pattern);
        let (mut out, mut answered, mut at) = (Vec::new(), 0, 0);
        loop {
            let found = split.next_word(text.as_bytes(), at);
            let word = match found {
                Found::Word(start, end) => Some((start, end)),
                Found::NoWord => None,
                Found::Undecided => re
                    .find_from_pos(text, at)
                    .unwrap()
                    .map(|m| (m.start(), m.end())),
            };
            answered += usize::from(found != Found::Undecided);
            let Some((start, end)) = word else {
                break;
            };
            assert!(
                start >= at && end > start,
                "an empty word at {at} of {text:?}"
            );
            out.push((start, end));
            at = end;
        }
        (out, answered)
    }

    const PATTERNS: [&str; 5] = [LLAMA3, QWEN2, DIGITS, CJK, DEEPSEEK_WORDS];

    #[test]
    fn the_known_patterns_get_a_hand_matcher() {
        assert_eq!(
            AsciiSplit::for_pattern(LLAMA3),
            Some(AsciiSplit::Gpt4 { digits: 3 })
        );
        assert_eq!(
            AsciiSplit::for_pattern(QWEN2),
            Some(AsciiSplit::Gpt4 { digits: 1 })
        );
        assert_eq!(AsciiSplit::for_pattern(DIGITS), Some(AsciiSplit::Digits));
        assert_eq!(AsciiSplit::for_pattern(CJK), Some(AsciiSplit::Cjk));
        // DeepSeek's file writes the line breaks of its classes as characters.
        let as_in_file = DEEPSEEK_WORDS.replace(r"\r", "\r").replace(r"\n", "\n");
        assert_ne!(as_in_file, DEEPSEEK_WORDS);
        assert_eq!(
            AsciiSplit::for_pattern(&as_in_file),
            Some(AsciiSplit::DeepSeekWords)
        );
        assert_eq!(
            AsciiSplit::for_pattern(&LLAMA3.replace("{1,3}", "{1,2}")),
            None
        );
        assert_eq!(AsciiSplit::for_pattern(r"\s+"), None);
    }

    #[test]
    fn words_of_ascii_text_are_the_regexs() {
        let texts = [
            "Hello world, it's 12345 o'clock!!!\n\n  x  \t\r\n y",
            "I'LL be there, they'Re 're 'VE 'd 'm 'x ' '",
            "  leading and trailing  ",
            "tabs\tand\r\nlines\n\n\nend \n",
            "$$\\frac{1}{2}$$ \\boxed{42} (a)[b]{c}\n\n",
            "a\u{4}b\u{14}\u{16}c \u{1d}\u{6} \u{b}\u{c}x\u{7f} 5x 5 \u{1}\u{1}!",
            " !?\n\r\n.  ;\t:",
            "x=12+345*6789 (2) [3] 2024-12-06T10:00",
            "x  ",
            " ",
            "'",
            "",
        ];
        for pattern in PATTERNS {
            for text in texts {
                let (hand, answered) = hand_words(pattern, text);
                assert_eq!(hand, regex_words(pattern, text), "{pattern} on {text:?}");
                assert_eq!(
                    answered,
                    hand.len() + 1,
                    "{text:?}: all ASCII, all answered"
                );
            }
        }
    }

    #[test]
    fn bytes_outside_ascii_are_left_to_the_regex() {
        let next = |pattern: &str, text: &str| {
            AsciiSplit::for_pattern(pattern)
                .unwrap()
                .next_word(text.as_bytes(), 0)
        };
        // A letter run into a non-ASCII letter, `'ſ` (`'s` folded), a space before a non-ASCII letter, a run
        // of spaces before a no-break space, a digit group into an Arabic-Indic digit, CJK text.
        for (pattern, text) in [
            (QWEN2, "café"),
            (QWEN2, "'ſ"),
            (QWEN2, " é"),
            (QWEN2, "  \u{a0}x"),
            (LLAMA3, "7\u{663}"),
            (DIGITS, "ab\u{663}"),
            (CJK, "ab中"),
            (DEEPSEEK_WORDS, "e\u{301}"),
            (DEEPSEEK_WORDS, "!—"),
        ] {
            assert_eq!(
                next(pattern, text),
                Found::Undecided,
                "{pattern} on {text:?}"
            );
        }
        // Decided without looking past: Qwen2's single digit, DeepSeek's [punctuation][A-Za-z]+.
        assert_eq!(next(QWEN2, "7\u{663}"), Found::Word(0, 1));
        assert_eq!(next(DEEPSEEK_WORDS, "#abcé"), Found::Word(0, 4));
        assert_eq!(next(DIGITS, "ab 12345"), Found::Word(3, 6));
        assert_eq!(next(DEEPSEEK_WORDS, "5 \u{1}"), Found::Word(1, 2));
        assert_eq!(next(QWEN2, ""), Found::NoWord);
        assert_eq!(next(CJK, "abc"), Found::NoWord);
    }

    fn mixed_text() -> impl Strategy<Value = String> {
        let pieces = prop::sample::select(vec![
            "あ", "カタ", "\u{3040}", "5x", "#ab", "\u{301}", "a", "Z", "hello", " the", "'s",
            "'S", "'re", "'LL", "'ve", "'d", "'m", "'t", "'x", "'", "7", "42", "12345", " ", "  ",
            "\t", "\n", "\r\n", "\u{b}", "\u{c}", "!", "?!", ".", " .", "$", "\u{1}", "\u{7f}",
            "é", "ſ", "中文", "\u{a0}", "\u{85}", "\u{3000}", "\u{2003}", "\u{663}", "—", "🚀",
            "e\u{301}", "Ⅻ",
        ]);
        prop::collection::vec(pieces, 0..40).prop_map(|v| v.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]
        /// On any text mixing scripts, spaces and symbols: the regex's words, for both patterns.
        #[test]
        fn hand_and_regex_words_agree_on_mixed_text(text in mixed_text()) {
            for pattern in PATTERNS {
                prop_assert_eq!(hand_words(pattern, &text).0, regex_words(pattern, &text), "{} on {:?}", pattern, text);
            }
        }
    }
}
