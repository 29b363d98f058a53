//! Reading JSON as Python writes it: bare `NaN`, `Infinity` and `-Infinity` tokens (which
//! `json.dumps` emits by default and serde_json rejects), one object per line (JSONL, appended
//! runs) or one pretty-printed object per file.

use serde_json::Value;

/// Replaces the non-standard tokens outside strings: `NaN` becomes `null`, `Infinity` and
/// `-Infinity` become the strings `"Infinity"` and `"-Infinity"` (read back as ±∞ by
/// [`as_f64`]). Text inside strings is left alone.
pub fn sanitize(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len() + 16);
    let mut in_string = false;
    let mut escaped = false;
    let mut i = 0;
    let mut copied_to = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            i += 1;
            continue;
        }
        let replacement: Option<(usize, &str)> = match b {
            b'"' => {
                in_string = true;
                None
            }
            b'N' if bytes[i..].starts_with(b"NaN") => Some((3, "null")),
            b'I' if bytes[i..].starts_with(b"Infinity") => Some((8, "\"Infinity\"")),
            b'-' if bytes[i..].starts_with(b"-Infinity") => Some((9, "\"-Infinity\"")),
            _ => None,
        };
        match replacement {
            Some((len, with)) => {
                out.push_str(&text[copied_to..i]);
                out.push_str(with);
                i += len;
                copied_to = i;
            }
            None => i += 1,
        }
    }
    out.push_str(&text[copied_to..]);
    out
}

/// One JSON value read from a file, with the 1-based line where it starts.
#[derive(Debug, Clone)]
pub struct LocatedValue {
    pub line: usize,
    pub value: Value,
}

/// Values read from a file plus what could not be read (messages naming the line).
#[derive(Debug, Default)]
pub struct ParsedFile {
    pub values: Vec<LocatedValue>,
    pub problems: Vec<String>,
}

/// Reads every JSON value in `text`: one per line when each non-blank line is a value (JSONL),
/// otherwise a stream of values (a pretty-printed object, or several). A line that does not
/// parse is reported in `problems` and skipped, so that a truncated last line (a run killed
/// while writing) does not hide the runs before it.
pub fn parse_values(text: &str) -> ParsedFile {
    let clean = sanitize(text);
    let mut by_line = ParsedFile::default();
    let mut all_lines_ok = true;
    for (idx, line) in clean.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Value>(line) {
            Ok(value) => by_line.values.push(LocatedValue {
                line: idx + 1,
                value,
            }),
            Err(err) => {
                all_lines_ok = false;
                by_line.problems.push(format!(
                    "line {}: not valid JSON ({err}); line skipped",
                    idx + 1
                ));
            }
        }
    }
    if all_lines_ok {
        return by_line;
    }
    if let Some(values) = parse_stream(&clean) {
        return ParsedFile {
            values,
            problems: Vec::new(),
        };
    }
    by_line
}

/// Parses the whole text as a sequence of JSON values; `None` if any part is not JSON.
fn parse_stream(text: &str) -> Option<Vec<LocatedValue>> {
    let mut values = Vec::new();
    let mut stream = serde_json::Deserializer::from_str(text).into_iter::<Value>();
    let mut start = 0usize;
    loop {
        let value_start = start
            + text[start..]
                .find(|c: char| !c.is_whitespace())
                .unwrap_or(text.len() - start);
        match stream.next() {
            None => break,
            Some(Ok(value)) => {
                let line = text[..value_start].matches('\n').count() + 1;
                values.push(LocatedValue { line, value });
                start = stream.byte_offset();
            }
            Some(Err(_)) => return None,
        }
    }
    Some(values)
}

/// A number from a JSON value: numbers as they are; strings holding a number, `inf`,
/// `Infinity` or `-Infinity` parsed (servebench writes ∞ as the string `"inf"`, vLLM writes
/// `"inf"` for an unlimited request rate). NaN, `null`, booleans and other text give `None`.
pub fn as_f64(value: &Value) -> Option<f64> {
    let v = match value {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => parse_number_text(s)?,
        _ => return None,
    };
    if v.is_nan() {
        None
    } else {
        Some(v)
    }
}

fn parse_number_text(s: &str) -> Option<f64> {
    let t = s.trim();
    match t.to_ascii_lowercase().as_str() {
        "inf" | "+inf" | "infinity" | "+infinity" => Some(f64::INFINITY),
        "-inf" | "-infinity" => Some(f64::NEG_INFINITY),
        _ => t.parse::<f64>().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_replaces_tokens_outside_strings_only() {
        let text = r#"{"a": NaN, "b": Infinity, "c": -Infinity, "s": "NaN Infinity \" -Infinity", "d": [NaN,1]}"#;
        let clean = sanitize(text);
        assert_eq!(
            clean,
            r#"{"a": null, "b": "Infinity", "c": "-Infinity", "s": "NaN Infinity \" -Infinity", "d": [null,1]}"#
        );
        let v: Value = serde_json::from_str(&clean).unwrap();
        assert_eq!(as_f64(&v["b"]), Some(f64::INFINITY));
        assert_eq!(as_f64(&v["c"]), Some(f64::NEG_INFINITY));
        assert_eq!(as_f64(&v["a"]), None);
        assert_eq!(v["s"], "NaN Infinity \" -Infinity");
    }

    #[test]
    fn sanitize_keeps_escaped_backslash_before_quote() {
        // The string ends after `\\`; the NaN after it is outside the string.
        let clean = sanitize(r#"{"p": "C:\\", "x": NaN}"#);
        assert_eq!(clean, r#"{"p": "C:\\", "x": null}"#);
    }

    #[test]
    fn parses_jsonl_with_lines() {
        let parsed = parse_values("{\"a\": 1}\n\n{\"a\": Infinity}\n");
        assert!(parsed.problems.is_empty());
        assert_eq!(parsed.values.len(), 2);
        assert_eq!(parsed.values[0].line, 1);
        assert_eq!(parsed.values[1].line, 3);
        assert_eq!(as_f64(&parsed.values[1].value["a"]), Some(f64::INFINITY));
    }

    #[test]
    fn parses_pretty_printed_objects() {
        let parsed = parse_values("{\n  \"a\": 1,\n  \"b\": NaN\n}\n{\n \"a\": 2\n}\n");
        assert!(parsed.problems.is_empty(), "{:?}", parsed.problems);
        assert_eq!(parsed.values.len(), 2);
        assert_eq!(parsed.values[0].line, 1);
        assert_eq!(parsed.values[1].line, 5);
        assert_eq!(as_f64(&parsed.values[1].value["a"]), Some(2.0));
    }

    #[test]
    fn truncated_last_line_is_reported_and_earlier_lines_kept() {
        let parsed = parse_values("{\"a\": 1}\n{\"a\": 2, \"b\n");
        assert_eq!(parsed.values.len(), 1);
        assert_eq!(parsed.problems.len(), 1);
        assert!(
            parsed.problems[0].starts_with("line 2:"),
            "{}",
            parsed.problems[0]
        );
    }

    #[test]
    fn numbers_from_strings() {
        assert_eq!(as_f64(&Value::from("inf")), Some(f64::INFINITY));
        assert_eq!(as_f64(&Value::from(" 0.75 ")), Some(0.75));
        assert_eq!(as_f64(&Value::from("NaN")), None);
        assert_eq!(as_f64(&Value::from("fast")), None);
        assert_eq!(as_f64(&Value::Null), None);
        assert_eq!(as_f64(&Value::from(12)), Some(12.0));
    }
}
