//! Tokens of a cleaned LaTeX/ASCII answer (see [`super::clean`]).

/// One token. Commands keep their name without the backslash.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    /// A numeric literal as written: digits, an optional decimal part and an optional exponent (`1.2e5`).
    Num(String),
    /// A run of ASCII letters (`x`, `sqrt`, `Evelyn`); the parser decides what it means.
    Word(String),
    /// `\name` (letters) or a one-character command such as `\{` (stored as `{`).
    Cmd(String),
    /// Any other single character: operators, brackets, `,`, `&`, `_`, `^`, `'`, `!`, `|`, …
    Sym(char),
    /// `\\` (matrix row separator).
    RowSep,
}

/// Splits a cleaned answer into tokens; white space only separates tokens and is recorded in `spaced`
/// (true when white space preceded the token).
pub(crate) fn lex(s: &str) -> (Vec<Tok>, Vec<bool>) {
    let chars: Vec<char> = s.chars().collect();
    let mut toks = Vec::new();
    let mut spaced = Vec::new();
    let mut space_before = false;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            space_before = true;
            i += 1;
            continue;
        }
        let start = i;
        let tok = if c.is_ascii_digit()
            || (c == '.' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit()))
        {
            i = scan_number(&chars, i);
            Tok::Num(chars[start..i].iter().collect())
        } else if c.is_ascii_alphabetic() {
            while i < chars.len() && chars[i].is_ascii_alphabetic() {
                i += 1;
            }
            Tok::Word(chars[start..i].iter().collect())
        } else if c == '\\' {
            match chars.get(i + 1) {
                Some('\\') => {
                    i += 2;
                    Tok::RowSep
                }
                Some(d) if d.is_ascii_alphabetic() => {
                    i += 1;
                    while i < chars.len() && chars[i].is_ascii_alphabetic() {
                        i += 1;
                    }
                    Tok::Cmd(chars[start + 1..i].iter().collect())
                }
                Some(d) => {
                    i += 2;
                    Tok::Cmd(d.to_string())
                }
                None => {
                    i += 1;
                    Tok::Sym('\\')
                }
            }
        } else {
            i += 1;
            match c {
                'π' => Tok::Cmd("pi".into()),
                '∞' => Tok::Cmd("infty".into()),
                '√' => Tok::Cmd("sqrt".into()),
                '×' | '·' | '⋅' => Tok::Sym('*'),
                '÷' => Tok::Cmd("div".into()),
                '−' | '–' => Tok::Sym('-'),
                '≤' => Tok::Cmd("le".into()),
                '≥' => Tok::Cmd("ge".into()),
                '≠' => Tok::Cmd("ne".into()),
                '±' => Tok::Cmd("pm".into()),
                '∪' => Tok::Cmd("cup".into()),
                '∩' => Tok::Cmd("cap".into()),
                '∈' => Tok::Cmd("in".into()),
                '∅' => Tok::Cmd("emptyset".into()),
                _ => Tok::Sym(c),
            }
        };
        toks.push(tok);
        spaced.push(space_before);
        space_before = false;
    }
    (toks, spaced)
}

/// End index of the number starting at `i`: `12`, `1.5`, `.5`, `1.2e-3`, `3E5` (an exponent only when digits follow).
fn scan_number(chars: &[char], mut i: usize) -> usize {
    while i < chars.len() && chars[i].is_ascii_digit() {
        i += 1;
    }
    if i < chars.len() && chars[i] == '.' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit()) {
        i += 1;
        while i < chars.len() && chars[i].is_ascii_digit() {
            i += 1;
        }
    }
    if i < chars.len() && (chars[i] == 'e' || chars[i] == 'E') {
        let mut j = i + 1;
        if j < chars.len() && (chars[j] == '+' || chars[j] == '-') {
            j += 1;
        }
        let digits_start = j;
        while j < chars.len() && chars[j].is_ascii_digit() {
            j += 1;
        }
        // `2e5` but not `2ex` or `2e`; a letter right after the digits means it was not a number (`2e5x` stays).
        if j > digits_start && !chars.get(j).is_some_and(|c| c.is_ascii_alphabetic()) {
            i = j;
        }
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens() {
        let (t, sp) = lex("\\frac{1}{2} + 3.5x");
        assert_eq!(
            t,
            vec![
                Tok::Cmd("frac".into()),
                Tok::Sym('{'),
                Tok::Num("1".into()),
                Tok::Sym('}'),
                Tok::Sym('{'),
                Tok::Num("2".into()),
                Tok::Sym('}'),
                Tok::Sym('+'),
                Tok::Num("3.5".into()),
                Tok::Word("x".into()),
            ]
        );
        assert_eq!(
            sp,
            vec![false, false, false, false, false, false, false, true, true, false]
        );
        assert_eq!(lex("1.2e-3").0, vec![Tok::Num("1.2e-3".into())]);
        assert_eq!(
            lex("2e").0,
            vec![Tok::Num("2".into()), Tok::Word("e".into())]
        );
        assert_eq!(
            lex("a\\\\b\\{").0,
            vec![
                Tok::Word("a".into()),
                Tok::RowSep,
                Tok::Word("b".into()),
                Tok::Cmd("{".into())
            ]
        );
        assert_eq!(
            lex("√π").0,
            vec![Tok::Cmd("sqrt".into()), Tok::Cmd("pi".into())]
        );
    }
}
