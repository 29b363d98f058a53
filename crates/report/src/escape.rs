//! One escaping rule per output format, used by every writer of this crate: text that came from a server
//! (model names from `/v1/models`), a dataset or a flag can neither run markup in a Markdown viewer, break a
//! table, nor become a live formula in a spreadsheet. HTML escaping is [`crate::html::escape`].

use std::borrow::Cow;

/// Text for one line of Markdown (a table cell, a heading, a list item): HTML and Markdown syntax are shown
/// as text (`<script>` → `&lt;script&gt;`, `[x](y)` → `\[x\](y)`), `|` cannot end a table cell, and line
/// breaks become spaces so a value stays on its row.
pub fn markdown(s: &str) -> Cow<'_, str> {
    const SPECIAL: &[char] = &[
        '&', '<', '>', '|', '\\', '`', '*', '[', ']', '\n', '\r', '\t',
    ];
    if !s.contains(SPECIAL) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '|' | '\\' | '`' | '*' | '[' | ']' => {
                out.push('\\');
                out.push(c);
            }
            '\n' | '\r' | '\t' => out.push(' '),
            _ => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// A CSV cell that spreadsheets will not evaluate: text starting with `=`, `+`, `-`, `@`, a tab or a carriage
/// return is prefixed with `'` (OWASP's rule), unless it is a number (`-3.5`, `+1e3` stay numbers).
pub fn csv_cell(s: &str) -> Cow<'_, str> {
    let risky = s.starts_with(['=', '+', '-', '@', '\t', '\r']);
    if risky && s.trim().parse::<f64>().is_err() {
        Cow::Owned(format!("'{s}"))
    } else {
        Cow::Borrowed(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hostile strings as a server, a dataset or a flag could send them.
    pub(crate) const HOSTILE: &[&str] = &[
        "<script>alert(1)</script>",
        "<img src=x onerror=alert(1)>",
        "a|b\n| c | d |",
        "[click](javascript:alert(1))",
        "=HYPERLINK(\"http://evil\",\"x\")",
    ];

    #[test]
    fn markdown_shows_markup_as_text_on_one_line() {
        assert_eq!(
            markdown("<script>alert(1)</script>"),
            "&lt;script&gt;alert(1)&lt;/script&gt;"
        );
        assert_eq!(
            markdown("<img src=x onerror=alert(1)>"),
            "&lt;img src=x onerror=alert(1)&gt;"
        );
        assert_eq!(markdown("a|b\n| c"), "a\\|b \\| c");
        assert_eq!(
            markdown("[click](javascript:x)"),
            "\\[click\\](javascript:x)"
        );
        assert_eq!(markdown("Qwen/Qwen2.5-7B"), "Qwen/Qwen2.5-7B");
        assert!(matches!(markdown("plain 1.5"), Cow::Borrowed(_)));
        for h in HOSTILE {
            let m = markdown(h);
            assert!(!m.contains('<') && !m.contains('\n'), "{m}");
            // Every pipe is escaped: none can end a cell.
            assert!(!m.replace("\\|", "").contains('|'), "{m}");
        }
    }

    #[test]
    fn csv_guard_neutralises_formulas_and_keeps_numbers() {
        assert_eq!(
            csv_cell("=HYPERLINK(\"http://evil\",\"x\")"),
            "'=HYPERLINK(\"http://evil\",\"x\")"
        );
        assert_eq!(csv_cell("+cmd|' /C calc'!A0"), "'+cmd|' /C calc'!A0");
        assert_eq!(csv_cell("-2+3"), "'-2+3");
        assert_eq!(csv_cell("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(csv_cell("\t=1"), "'\t=1");
        assert_eq!(csv_cell("\r=1"), "'\r=1");
        for n in ["-3.5", "+1e3", "-0", "12", "", "inf", "model-a"] {
            assert_eq!(csv_cell(n), n);
        }
    }
}
