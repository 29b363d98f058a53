//! The word regex of GPT-4-style byte-level tokenizers (Llama 3, Qwen2), matched by hand on ASCII text.
//!
//! `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
//! (Qwen2: `\p{N}` for `\p{N}{1,3}`). The regex crates find one word in ~300 instructions, mostly the set-up of
//! each search; a model's answer is re-tokenized word by word after every run, so that is ~25% of the client's
//! instructions per streamed token. Here each branch is tried in order on the bytes, as the leftmost-first
//! regex tries them. Any byte outside ASCII that could change the answer (a letter, digit, space or symbol of
//! another script, a case variant like `ſ`) makes [`AsciiSplit::word_at`] answer `None`, and the caller asks
//! the regex: the result is the regex's in every case (a proptest compares both on texts mixing scripts).

/// The hand matcher of one of the two patterns.
#[derive(Clone, Copy, Debug)]
pub(crate) struct AsciiSplit {
    /// Digits per word: 1 (`\p{N}`) or 3 (`\p{N}{1,3}`).
    digits: usize,
}

const LLAMA3: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const QWEN2: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// An ASCII byte's class, or `None` for a byte outside ASCII (and past the end: `Some(End)`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Class {
    Letter,
    Digit,
    /// `\r` or `\n`.
    Newline,
    /// The other ASCII white space of `\s`: tab, vertical tab, form feed, space.
    Space,
    Other,
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
        0x80.. => return None,
        _ => Class::Other,
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
    /// The hand matcher where `pattern` is one of the two patterns, written as the files write them.
    pub(crate) fn for_pattern(pattern: &str) -> Option<AsciiSplit> {
        match pattern {
            LLAMA3 => Some(AsciiSplit { digits: 3 }),
            QWEN2 => Some(AsciiSplit { digits: 1 }),
            _ => None,
        }
    }

    /// The end of the word that starts at byte `at` of `b` (every branch together matches any character, so
    /// the leftmost word starts there); None at the end of the text, or where the answer depends on a byte
    /// outside ASCII.
    pub(crate) fn word_at(&self, b: &[u8], at: usize) -> Option<usize> {
        let first = class(b, at)?;
        if first == Class::End {
            return None;
        }
        if b[at] == b'\'' {
            if let Some(end) = contraction(b, at)? {
                return Some(end);
            }
        }
        match first {
            // [^\r\n\p{L}\p{N}]?\p{L}+ with the optional character left out.
            Class::Letter => run(b, at, |c| c == Class::Letter),
            // \p{N} or \p{N}{1,3}.
            Class::Digit => self.digit_run(b, at),
            Class::Newline => white_space(b, at),
            // [^\r\n\p{L}\p{N}]\p{L}+, else ` ?[^\s\p{L}\p{N}]+[\r\n]*`, else white space.
            Class::Space | Class::Other => {
                let next = class(b, at + 1)?;
                if next == Class::Letter {
                    run(b, at + 1, |c| c == Class::Letter)
                } else if first == Class::Other {
                    symbols(b, at)
                } else if b[at] == b' ' && next == Class::Other {
                    symbols(b, at + 1)
                } else {
                    white_space(b, at)
                }
            }
            Class::End => None,
        }
    }

    fn digit_run(&self, b: &[u8], at: usize) -> Option<usize> {
        let mut end = at + 1;
        while end - at < self.digits {
            match class(b, end)? {
                Class::Digit => end += 1,
                _ => break,
            }
        }
        Some(end)
    }
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

/// `[^\s\p{L}\p{N}]+[\r\n]*` from `at` (a symbol).
fn symbols(b: &[u8], at: usize) -> Option<usize> {
    let end = run(b, at, |c| c == Class::Other)?;
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

    /// The words where the hand matcher answers, the regex's where it does not.
    fn hand_words(pattern: &str, text: &str) -> (Vec<(usize, usize)>, usize) {
        let split = AsciiSplit::for_pattern(pattern).unwrap();
        let re = regex(pattern);
        let (mut out, mut answered, mut at) = (Vec::new(), 0, 0);
        while at < text.len() {
            let end = match split.word_at(text.as_bytes(), at) {
                Some(end) => {
                    answered += 1;
                    end
                }
                None => re.find_from_pos(text, at).unwrap().unwrap().end(),
            };
            assert!(end > at, "an empty word at {at} of {text:?}");
            out.push((at, end));
            at = end;
        }
        (out, answered)
    }

    #[test]
    fn only_the_two_patterns_get_a_hand_matcher() {
        assert!(AsciiSplit::for_pattern(LLAMA3).is_some_and(|s| s.digits == 3));
        assert!(AsciiSplit::for_pattern(QWEN2).is_some_and(|s| s.digits == 1));
        assert!(AsciiSplit::for_pattern(&LLAMA3.replace("{1,3}", "{1,2}")).is_none());
        assert!(AsciiSplit::for_pattern(r"\s+").is_none());
    }

    #[test]
    fn words_of_ascii_text_are_the_regexs() {
        let texts = [
            "Hello world, it's 12345 o'clock!!!\n\n  x  \t\r\n y",
            "I'LL be there, they'Re 're 'VE 'd 'm 'x ' '",
            "  leading and trailing  ",
            "tabs\tand\r\nlines\n\n\nend \n",
            "$$\\frac{1}{2}$$ \\boxed{42} (a)[b]{c}\n\n",
            "a\u{4}b\u{14}\u{16}c \u{1d}\u{6} \u{b}\u{c}x\u{7f}",
            " !?\n\r\n.  ;\t:",
            "x  ",
            " ",
            "'",
        ];
        for pattern in [LLAMA3, QWEN2] {
            for text in texts {
                let (hand, answered) = hand_words(pattern, text);
                assert_eq!(hand, regex_words(pattern, text), "{text:?}");
                assert_eq!(answered, hand.len(), "{text:?}: all ASCII, all answered");
            }
        }
    }

    #[test]
    fn bytes_outside_ascii_are_left_to_the_regex() {
        let split = AsciiSplit::for_pattern(QWEN2).unwrap();
        // A letter run into a non-ASCII letter, `'ſ` (`'s` folded), a space before a non-ASCII letter, a run
        // of spaces before a no-break space: all undecided.
        for (text, at) in [
            ("café", 0),
            ("'ſ", 0),
            (" é", 0),
            ("  \u{a0}x", 0),
            ("7\u{663}", 0),
        ] {
            let llama = AsciiSplit::for_pattern(LLAMA3).unwrap();
            let undecided = if text.starts_with('7') {
                llama.word_at(text.as_bytes(), at)
            } else {
                split.word_at(text.as_bytes(), at)
            };
            assert_eq!(undecided, None, "{text:?}");
        }
        // Qwen2's single digit needs no look past it.
        assert_eq!(split.word_at("7\u{663}".as_bytes(), 0), Some(1));
        assert_eq!(split.word_at(b"abc", 3), None, "the end");
    }

    fn mixed_text() -> impl Strategy<Value = String> {
        let pieces = prop::sample::select(vec![
            "a", "Z", "hello", " the", "'s", "'S", "'re", "'LL", "'ve", "'d", "'m", "'t", "'x",
            "'", "7", "42", "12345", " ", "  ", "\t", "\n", "\r\n", "\u{b}", "\u{c}", "!", "?!",
            ".", " .", "$", "\u{1}", "\u{7f}", "é", "ſ", "中文", "\u{a0}", "\u{85}", "\u{3000}",
            "\u{2003}", "\u{663}", "—", "🚀", "e\u{301}", "Ⅻ",
        ]);
        prop::collection::vec(pieces, 0..40).prop_map(|v| v.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]
        /// On any text mixing scripts, spaces and symbols: the regex's words, for both patterns.
        #[test]
        fn hand_and_regex_words_agree_on_mixed_text(text in mixed_text()) {
            for pattern in [LLAMA3, QWEN2] {
                prop_assert_eq!(hand_words(pattern, &text).0, regex_words(pattern, &text), "{:?}", text);
            }
        }
    }
}
