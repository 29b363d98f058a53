//! A strict, allocation-free JSON walker for the few fields a streamed event carries.
//!
//! [`crate::api::StreamDecoder`] reads hundreds of thousands of small events per second; a derived serde
//! struct spends most of that time matching keys and moving large `Option`s. This walker reads only what the
//! decoder asks for and skips the rest. It follows RFC 8259 strictly (no trailing commas, no control
//! characters in strings, valid numbers and UTF-8) and gives up (`None`) on anything it does not handle
//! (escaped keys, duplicate keys, a type it was not asked for). The caller then parses the event with serde,
//! which produces the same result or the precise error.

use std::borrow::Cow;

/// Bytes that end a plain run inside a JSON string: the quote, the backslash and control characters.
static SPECIAL: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = true;
        i += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t
};

/// Nesting limit for skipped values (serde_json's default recursion limit is 128).
const MAX_DEPTH: usize = 128;

/// A cursor over one JSON text.
pub(crate) struct Scan<'a> {
    /// The whole text, validated as UTF-8 once; strings are sub-slices of it.
    s: &'a str,
    b: &'a [u8],
    i: usize,
}

impl<'a> Scan<'a> {
    /// `None` when the text is not UTF-8 (serde then says where).
    pub(crate) fn new(b: &'a [u8]) -> Option<Self> {
        let s = std::str::from_utf8(b).ok()?;
        Some(Scan {
            s,
            b: s.as_bytes(),
            i: 0,
        })
    }

    #[inline]
    fn ws(&mut self) {
        while let Some(&c) = self.b.get(self.i) {
            if c > b' ' || !matches!(c, b' ' | b'\t' | b'\n' | b'\r') {
                return;
            }
            self.i += 1;
        }
    }

    /// The cursor position (bytes from the start of the text).
    pub(crate) fn pos(&self) -> usize {
        self.i
    }

    /// Moves the cursor past `n` bytes the caller has looked at.
    pub(crate) fn advance(&mut self, n: usize) {
        self.i += n;
    }

    pub(crate) fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.b.get(self.i).copied()
    }

    pub(crate) fn eat(&mut self, c: u8) -> Option<()> {
        if self.peek()? == c {
            self.i += 1;
            Some(())
        } else {
            None
        }
    }

    /// Only whitespace is left.
    pub(crate) fn at_end(&mut self) -> bool {
        self.ws();
        self.i == self.b.len()
    }

    /// `null` (consumed: true) or something else (nothing consumed: false).
    pub(crate) fn null(&mut self) -> Option<bool> {
        if self.peek()? == b'n' {
            self.literal(b"null")?;
            Some(true)
        } else {
            Some(false)
        }
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        if self.b[self.i..].starts_with(word) {
            self.i += word.len();
            Some(())
        } else {
            None
        }
    }

    /// A string value; borrowed unless it has escapes.
    pub(crate) fn string(&mut self) -> Option<Cow<'a, str>> {
        self.eat(b'"')?;
        let start = self.i;
        // Most strings have no escape: one pass to the closing quote.
        let q = self.plain_end(start);
        match *self.b.get(q)? {
            b'"' => {
                self.i = q + 1;
                // Both ends sit next to an ASCII quote: char boundaries.
                return self.s.get(start..q).map(Cow::Borrowed);
            }
            b'\\' => self.i = q,
            _ => return None,
        }
        let mut escaped = false;
        loop {
            let c = *self.b.get(self.i)?;
            match c {
                b'"' => break,
                b'\\' => {
                    escaped = true;
                    let e = *self.b.get(self.i + 1)?;
                    match e {
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => self.i += 2,
                        b'u' => {
                            let hex = self.b.get(self.i + 2..self.i + 6)?;
                            if !hex.iter().all(u8::is_ascii_hexdigit) {
                                return None;
                            }
                            self.i += 6;
                        }
                        _ => return None,
                    }
                }
                0..=0x1f => return None,
                _ => self.i += 1,
            }
        }
        // Both ends sit next to an ASCII quote: char boundaries.
        let raw = self.s.get(start..self.i)?;
        self.i += 1;
        if escaped {
            // Rare (quotes, newlines, \u escapes): serde_json unescapes, including surrogate pairs.
            serde_json::from_str::<String>(self.s.get(start - 1..self.i)?)
                .ok()
                .map(Cow::Owned)
        } else {
            Some(Cow::Borrowed(raw))
        }
    }

    /// The first byte at or after `from` that ends a plain string run: `"`, `\\` or a control character
    /// (`b.len()` when none).
    #[inline]
    fn plain_end(&self, from: usize) -> usize {
        let rest = &self.b[from.min(self.b.len())..];
        from + rest
            .iter()
            .position(|&c| SPECIAL[c as usize])
            .unwrap_or(rest.len())
    }

    /// Skips a string value without building it (the same checks as [`Scan::string`]).
    fn skip_string(&mut self) -> Option<()> {
        self.eat(b'"')?;
        let q = self.plain_end(self.i);
        if *self.b.get(q)? == b'"' {
            self.i = q + 1;
            return Some(());
        }
        self.i -= 1;
        self.string().map(|_| ())
    }

    /// An object key without escapes (keys with escapes make the caller fall back).
    pub(crate) fn key(&mut self) -> Option<&'a [u8]> {
        self.eat(b'"')?;
        let start = self.i;
        let end = self.plain_end(start);
        if *self.b.get(end)? != b'"' {
            return None;
        }
        let raw = &self.b[start..end];
        self.i = end + 1;
        self.eat(b':')?;
        Some(raw)
    }

    /// Walks an object, calling `field(scan, key)` with the cursor at each value; `field` must consume it.
    pub(crate) fn object(
        &mut self,
        mut field: impl FnMut(&mut Self, &'a [u8]) -> Option<()>,
    ) -> Option<()> {
        self.eat(b'{')?;
        if self.peek()? == b'}' {
            self.i += 1;
            return Some(());
        }
        loop {
            let k = self.key()?;
            field(self, k)?;
            match self.peek()? {
                b',' => self.i += 1,
                b'}' => {
                    self.i += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// Walks an array, calling `item(scan, index)` with the cursor at each element; `item` must consume it.
    pub(crate) fn array(
        &mut self,
        mut item: impl FnMut(&mut Self, usize) -> Option<()>,
    ) -> Option<()> {
        self.eat(b'[')?;
        if self.peek()? == b']' {
            self.i += 1;
            return Some(());
        }
        let mut n = 0;
        loop {
            item(self, n)?;
            n += 1;
            match self.peek()? {
                b',' => self.i += 1,
                b']' => {
                    self.i += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// A non-negative integer that fits u64, or `null`.
    pub(crate) fn opt_u64(&mut self) -> Option<Option<u64>> {
        if self.null()? {
            return Some(None);
        }
        let start = self.i;
        while self.b.get(self.i).is_some_and(u8::is_ascii_digit) {
            self.i += 1;
        }
        let digits = &self.b[start..self.i];
        if digits.is_empty() || (digits.len() > 1 && digits[0] == b'0') {
            return None;
        }
        if matches!(self.b.get(self.i), Some(b'.' | b'e' | b'E')) {
            return None;
        }
        std::str::from_utf8(digits).ok()?.parse().ok().map(Some)
    }

    /// A string or `null`.
    pub(crate) fn opt_string(&mut self) -> Option<Option<Cow<'a, str>>> {
        if self.null()? {
            Some(None)
        } else if self.peek()? == b'"' {
            self.string().map(Some)
        } else {
            None
        }
    }

    /// Skips any value.
    pub(crate) fn skip(&mut self) -> Option<()> {
        self.skip_depth(0)
    }

    fn skip_depth(&mut self, depth: usize) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        match self.peek()? {
            b'"' => self.skip_string(),
            b'{' => self.object(|s, _| s.skip_depth(depth + 1)),
            b'[' => self.array(|s, _| s.skip_depth(depth + 1)),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            b'-' | b'0'..=b'9' => self.number(),
            _ => None,
        }
    }

    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`
    fn number(&mut self) -> Option<()> {
        let digits = |s: &mut Self| {
            let start = s.i;
            while s.b.get(s.i).is_some_and(u8::is_ascii_digit) {
                s.i += 1;
            }
            s.i - start
        };
        if self.b.get(self.i) == Some(&b'-') {
            self.i += 1;
        }
        let first = *self.b.get(self.i)?;
        let n = digits(self);
        if n == 0 || (first == b'0' && n > 1) {
            return None;
        }
        if self.b.get(self.i) == Some(&b'.') {
            self.i += 1;
            if digits(self) == 0 {
                return None;
            }
        }
        if matches!(self.b.get(self.i), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(self.b.get(self.i), Some(b'+' | b'-')) {
                self.i += 1;
            }
            if digits(self) == 0 {
                return None;
            }
        }
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn skips(s: &str) -> bool {
        let Some(mut sc) = Scan::new(s.as_bytes()) else {
            return false;
        };
        sc.skip().is_some() && sc.at_end()
    }

    #[test]
    fn skip_accepts_exactly_what_serde_json_accepts() {
        let cases = [
            r#"{"a":[1,-2.5e+3,true,false,null,"x\"y\u00e9"],"b":{}}"#,
            "0",
            "-0.0",
            "[]",
            " {\"k\" : \"v\" } ",
            "{\"a\":1,}",
            "[1,]",
            "01",
            "1.",
            ".5",
            "1e",
            "+1",
            "\"tab\there\"",
            "\"bad \\x escape\"",
            "\"\\u12G4\"",
            "{\"a\" 1}",
            "nul",
            "[1 2]",
            "{\"a\":1}}",
            "\"\\ud83d\\ude00\"",
        ];
        for c in cases {
            let serde_ok = serde_json::from_str::<serde_json::Value>(c).is_ok();
            assert_eq!(skips(c), serde_ok, "{c}");
        }
    }

    #[test]
    fn strings_borrow_unless_escaped() {
        let mut s = Scan::new(br#""plain" "a\nb\u00e9""#).unwrap();
        assert!(matches!(s.string(), Some(Cow::Borrowed("plain"))));
        match s.string() {
            Some(Cow::Owned(o)) => assert_eq!(o, "a\nb\u{e9}"),
            other => panic!("{other:?}"),
        }
        // Text that is not UTF-8 is refused.
        assert!(Scan::new(b"\"\xff\"").is_none());
    }

    #[test]
    fn integers() {
        let v = |t: &str| Scan::new(t.as_bytes()).unwrap().opt_u64();
        assert_eq!(v("12"), Some(Some(12)));
        assert_eq!(v("null"), Some(None));
        assert_eq!(v("0"), Some(Some(0)));
        assert_eq!(v("012"), None);
        assert_eq!(v("1.0"), None);
        assert_eq!(v("-1"), None);
        assert_eq!(v("99999999999999999999999"), None);
    }

    #[test]
    fn deep_nesting_gives_up_instead_of_overflowing() {
        let deep = "[".repeat(10_000);
        assert!(!skips(&deep));
    }
}
