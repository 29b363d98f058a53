//! JSONL question sets (AIME, MATH-500, GSM8K, custom): one JSON object a line; blank lines are skipped.

use std::collections::HashMap;
use std::path::Path;

use serde_json::{Map, Value};

use super::{GraderKind, Item};
use crate::error::EvalError;

const QUESTION_FIELDS: [&str; 5] = ["problem", "question", "Problem", "Question", "input"];
const ANSWER_FIELDS: [&str; 2] = ["answer", "Answer"];
const ID_FIELDS: [&str; 5] = ["id", "unique_id", "idx", "ID", "Id"];

/// One parsed row: its 1-based line number, its 0-based row number and the object.
struct Row {
    line: usize,
    index: usize,
    obj: Map<String, Value>,
}

fn rows(path: &Path, bytes: &[u8]) -> Result<Vec<Row>, EvalError> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        EvalError::data(
            path,
            None,
            format!("not UTF-8 text ({e}); a JSONL file is expected"),
        )
    })?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        let trimmed = line.trim();
        if trimmed.is_empty() {
            continue;
        }
        let value: Value = serde_json::from_str(trimmed)
            .map_err(|e| EvalError::data(path, Some(line_no), format!("not valid JSON: {e}")))?;
        let Value::Object(obj) = value else {
            return Err(EvalError::data(
                path,
                Some(line_no),
                "expected a JSON object",
            ));
        };
        out.push(Row {
            line: line_no,
            index: out.len(),
            obj,
        });
    }
    if out.is_empty() {
        return Err(EvalError::data(path, None, "no rows: the file is empty"));
    }
    Ok(out)
}

fn text_field(path: &Path, row: &Row, fields: &[&str], what: &str) -> Result<String, EvalError> {
    for f in fields {
        match row.obj.get(*f) {
            Some(Value::String(s)) => return Ok(s.clone()),
            Some(Value::Number(n)) => return Ok(n.to_string()),
            Some(Value::Null) | None => continue,
            Some(other) => {
                return Err(EvalError::data(
                    path,
                    Some(row.line),
                    format!("field '{f}' ({what}) must be a string or a number, found {other}"),
                ))
            }
        }
    }
    Err(EvalError::data(
        path,
        Some(row.line),
        format!("no {what} field: expected one of {}", fields.join(", ")),
    ))
}

fn id_of(row: &Row) -> String {
    for f in ID_FIELDS {
        match row.obj.get(f) {
            Some(Value::String(s)) if !s.trim().is_empty() => return s.trim().to_string(),
            Some(Value::Number(n)) => return n.to_string(),
            _ => {}
        }
    }
    row.index.to_string()
}

/// Refuses two rows with the same id (resuming and scoring key on ids).
fn check_unique(path: &Path, items: &[(usize, Item)]) -> Result<(), EvalError> {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (line, item) in items {
        if let Some(first) = seen.insert(item.id.as_str(), *line) {
            return Err(EvalError::data(
                path,
                Some(*line),
                format!(
                    "id '{}' already used on line {first}: item ids must be unique",
                    item.id
                ),
            ));
        }
    }
    Ok(())
}

fn parse_with(
    path: &Path,
    bytes: &[u8],
    mut gold_of: impl FnMut(&Row) -> Result<String, EvalError>,
) -> Result<Vec<Item>, EvalError> {
    let mut items = Vec::new();
    for row in rows(path, bytes)? {
        let question = text_field(path, &row, &QUESTION_FIELDS, "question")?
            .trim()
            .to_string();
        if question.is_empty() {
            return Err(EvalError::data(
                path,
                Some(row.line),
                "the question is empty",
            ));
        }
        let gold = gold_of(&row)?;
        items.push((
            row.line,
            Item {
                id: id_of(&row),
                question,
                choices: None,
                gold,
            },
        ));
    }
    check_unique(path, &items)?;
    Ok(items.into_iter().map(|(_, i)| i).collect())
}

fn plain_gold(path: &Path, row: &Row) -> Result<String, EvalError> {
    let gold = text_field(path, row, &ANSWER_FIELDS, "answer")?
        .trim()
        .to_string();
    if gold.is_empty() {
        return Err(EvalError::data(path, Some(row.line), "the answer is empty"));
    }
    Ok(gold)
}

/// AIME / MATH-500 layout: `problem` (or `question`), `answer` (kept as a string: AIME's "025" stays "025").
pub fn parse_math(path: &Path, bytes: &[u8]) -> Result<Vec<Item>, EvalError> {
    parse_with(path, bytes, |row| plain_gold(path, row))
}

/// GSM8K layout: `question`, `answer` = worked solution then `#### N`; the gold is the text after the last `####`.
/// A bare number in `answer` is accepted as the gold.
pub fn parse_gsm8k(path: &Path, bytes: &[u8]) -> Result<Vec<Item>, EvalError> {
    parse_with(path, bytes, |row| {
        let answer = text_field(path, row, &ANSWER_FIELDS, "answer")?;
        let gold = match answer.rsplit_once("####") {
            Some((_, after)) => after.trim().to_string(),
            None if answer.trim().replace(',', "").parse::<f64>().is_ok() => {
                answer.trim().to_string()
            }
            None => {
                return Err(EvalError::data(
                    path,
                    Some(row.line),
                    "the answer has no '#### N' final line (GSM8K layout) and is not a number",
                ))
            }
        };
        if gold.is_empty() {
            return Err(EvalError::data(
                path,
                Some(row.line),
                "nothing after '####' in the answer",
            ));
        }
        Ok(gold)
    })
}

/// Normalizes a multiple-choice gold answer (`B`, `(b)`, ` B. `) to its upper-case letter.
fn choice_gold(s: &str) -> Option<String> {
    let t = s
        .trim()
        .trim_matches(|c| matches!(c, '(' | ')' | '.' | ' '));
    let mut chars = t.chars();
    let c = chars.next()?.to_ascii_uppercase();
    (chars.next().is_none() && ('A'..='D').contains(&c)).then(|| c.to_string())
}

/// Custom set: `question` or `problem`, `answer`; optional `id`. For `mcq` the answer must be a letter A–D.
pub fn parse_custom(path: &Path, bytes: &[u8], grader: GraderKind) -> Result<Vec<Item>, EvalError> {
    parse_with(path, bytes, |row| {
        let gold = plain_gold(path, row)?;
        if grader == GraderKind::Choice {
            return choice_gold(&gold).ok_or_else(|| {
                EvalError::data(
                    path,
                    Some(row.line),
                    format!(
                        "answer '{gold}' is not a choice letter A-D (the mcq grader needs one)"
                    ),
                )
            });
        }
        Ok(gold)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p() -> &'static Path {
        Path::new("set.jsonl")
    }

    #[test]
    fn aime_rows_keep_string_answers_and_ids() {
        let data = br#"{"id":60,"problem":"  Find x. ","answer":"025"}

{"id":"2025-I-2","question":"Q2","answer":"70"}
"#;
        let items = parse_math(p(), data).unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].id, "60");
        assert_eq!(items[0].question, "Find x.");
        assert_eq!(items[0].gold, "025");
        assert_eq!(items[1].id, "2025-I-2");
        assert_eq!(items[1].question, "Q2");
    }

    #[test]
    fn math500_uses_unique_id_and_numeric_answers_become_strings() {
        let data = br#"{"problem":"P","answer":12,"unique_id":"test/algebra/1.json"}"#;
        let items = parse_math(p(), data).unwrap();
        assert_eq!(items[0].id, "test/algebra/1.json");
        assert_eq!(items[0].gold, "12");
    }

    #[test]
    fn rows_without_id_are_numbered_from_zero() {
        let data = b"{\"problem\":\"a\",\"answer\":\"1\"}\n{\"problem\":\"b\",\"answer\":\"2\"}\n";
        let ids: Vec<String> = parse_math(p(), data)
            .unwrap()
            .into_iter()
            .map(|i| i.id)
            .collect();
        assert_eq!(ids, ["0", "1"]);
    }

    #[test]
    fn gsm8k_gold_is_after_the_last_marker() {
        let data = concat!(
            r#"{"question":"Q","answer":"3 + 4 = <<3+4=7>>7\n"#,
            "#### 7\",\"idx\":0}\n",
            r#"{"question":"R","answer":""#,
            "#### 1,200\",\"idx\":1}\n",
            r#"{"question":"S","answer":"42"}"#
        )
        .as_bytes();
        let items = parse_gsm8k(p(), data).unwrap();
        assert_eq!(items[0].gold, "7");
        assert_eq!(items[1].gold, "1,200");
        assert_eq!(items[2].gold, "42");
        assert_eq!(items[2].id, "2");
    }

    #[test]
    fn gsm8k_without_marker_names_the_line() {
        let data = b"{\"question\":\"Q\",\"answer\":\"#### 1\"}\n{\"question\":\"Q2\",\"answer\":\"seven\"}\n";
        let e = parse_gsm8k(p(), data).unwrap_err().to_string();
        assert!(e.starts_with("set.jsonl:2: "), "{e}");
        assert!(e.contains("####"), "{e}");
    }

    #[test]
    fn bad_json_names_file_and_line() {
        let data = b"{\"problem\":\"a\",\"answer\":\"1\"}\n{\"problem\": oops}\n";
        let e = parse_math(p(), data).unwrap_err().to_string();
        assert!(e.starts_with("set.jsonl:2: not valid JSON"), "{e}");
    }

    #[test]
    fn missing_fields_are_named() {
        let e = parse_math(p(), br#"{"problem":"a"}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("set.jsonl:1: no answer field"), "{e}");
        let e = parse_math(p(), br#"{"answer":"a"}"#)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("no question field: expected one of problem, question"),
            "{e}"
        );
        let e = parse_math(p(), br#"{"problem":"a","answer":["x"]}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("must be a string or a number"), "{e}");
        let e = parse_math(p(), b"[1,2]").unwrap_err().to_string();
        assert!(e.contains("expected a JSON object"), "{e}");
        let e = parse_math(p(), b"\n\n").unwrap_err().to_string();
        assert!(e.contains("empty"), "{e}");
    }

    #[test]
    fn duplicate_ids_are_refused() {
        let data = b"{\"id\":1,\"problem\":\"a\",\"answer\":\"1\"}\n{\"id\":1,\"problem\":\"b\",\"answer\":\"2\"}\n";
        let e = parse_math(p(), data).unwrap_err().to_string();
        assert!(
            e.contains("set.jsonl:2: id '1' already used on line 1"),
            "{e}"
        );
    }

    #[test]
    fn custom_mcq_normalizes_letters_and_refuses_others() {
        let data = br#"{"question":"Pick","answer":"(b)"}"#;
        let items = parse_custom(p(), data, GraderKind::Choice).unwrap();
        assert_eq!(items[0].gold, "B");
        let e = parse_custom(
            p(),
            br#"{"question":"Pick","answer":"E"}"#,
            GraderKind::Choice,
        )
        .unwrap_err();
        assert!(e.to_string().contains("not a choice letter A-D"), "{e}");
        let items = parse_custom(
            p(),
            br#"{"problem":"Say hi","answer":" hi "}"#,
            GraderKind::Exact,
        )
        .unwrap();
        assert_eq!(items[0].gold, "hi");
    }
}
