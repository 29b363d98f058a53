//! GPQA (CSV in the published layout: `Question`, `Correct Answer`, `Incorrect Answer 1..3`, optional `Record ID`).
//!
//! The option order and clean-up follow the run's protocol ([`GpqaShuffle`]):
//!
//! - **`evalscope-0`** (evalscope 0.12.1): each option is cleaned (Python `strip()`; ` [title]` → `. `; every `[…]`
//!   closed on its line removed; double spaces → single, one pass); the list `[incorrect 1, incorrect 2,
//!   incorrect 3, correct]` is shuffled with Python's global `random` after `seed_everything(42)` (=
//!   `random.seed(42)`), one `random.shuffle` per row in file order — so a row's order depends on its position in
//!   the file, and `--limit` keeps the first rows' orders.
//! - **`evalscope-1`** (evalscope 1.14.1): options are only stripped; the same list is shuffled with
//!   `random.Random(seed)`, seed = the first 8 bytes (big-endian) of SHA-256 of the stripped `Question`.
//! - In both, the gold is the first position holding the correct answer's text (Python's `list.index`).
//! - **`seeded`** (the `servebench` protocol): cleaned as evalscope 0.x; seed = the first 8 bytes (big-endian) of
//!   SHA-256 of the `Question` cell as is; SplitMix64 (Steele, Lea & Flood 2014) Fisher–Yates over `[correct,
//!   incorrect 1..3]` (for i = 3, 2, 1: j = next() mod (i + 1), swap i and j).
//! - **`none`**: `[correct, incorrect 1..3]`, so the correct answer is always (A).

use std::collections::HashMap;
use std::path::Path;

use servebench_core::pyrandom::PyRandom;

use super::{sha256_hex, Item};
use crate::error::EvalError;

/// How GPQA options are cleaned and ordered (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GpqaShuffle {
    /// servebench's deterministic per-question shuffle.
    #[default]
    Seeded,
    /// Correct answer first: always (A).
    None,
    /// evalscope 0.x: `random.seed(42)`, then one `random.shuffle` per row in file order.
    Evalscope0,
    /// evalscope 1.x: `random.Random(SHA-256 of the stripped question)` per row.
    Evalscope1,
}

impl GpqaShuffle {
    pub fn parse(s: &str) -> Result<GpqaShuffle, EvalError> {
        match s {
            "seeded" => Ok(GpqaShuffle::Seeded),
            "none" => Ok(GpqaShuffle::None),
            "evalscope-0" => Ok(GpqaShuffle::Evalscope0),
            "evalscope-1" => Ok(GpqaShuffle::Evalscope1),
            other => Err(EvalError::Config(format!(
                "unknown --gpqa-shuffle '{other}': use seeded or none (evalscope orders come with --gpqa-protocol)"
            ))),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            GpqaShuffle::Seeded => "seeded",
            GpqaShuffle::None => "none",
            GpqaShuffle::Evalscope0 => "evalscope-0",
            GpqaShuffle::Evalscope1 => "evalscope-1",
        }
    }
}

/// SplitMix64: a tiny, fully specified 64-bit generator (same output on every platform and Rust version).
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// The shuffle seed of a question: the first 8 bytes of SHA-256 of its text, big-endian.
pub fn question_seed(question: &str) -> u64 {
    use sha2::{Digest, Sha256};
    let d = Sha256::digest(question.as_bytes());
    let mut b = [0u8; 8];
    b.copy_from_slice(&d[..8]);
    u64::from_be_bytes(b)
}

/// Python's `str.strip()` with no argument: Unicode white space plus the separators U+001C–U+001F.
pub fn py_strip(s: &str) -> &str {
    s.trim_matches(|c: char| c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c))
}

/// evalscope 1.x's per-question seed: the first 8 bytes (big-endian) of SHA-256 of the stripped question.
pub fn evalscope1_seed(question: &str) -> u64 {
    question_seed(py_strip(question))
}

/// Shuffles `[incorrect 1, incorrect 2, incorrect 3, correct]` (indices 1, 2, 3, 0) as evalscope does, with
/// CPython's `random.shuffle` on `rng`: `order[k]` is the index (0 = correct) of the option shown as letter k.
pub fn evalscope_order(rng: &mut PyRandom) -> [usize; 4] {
    let mut order = [1, 2, 3, 0];
    rng.shuffle(&mut order);
    order
}

/// The presentation order: `order[k]` is the index (0 = correct, 1..3 = incorrect 1..3) of the option shown as
/// letter k.
///
/// For `evalscope-0` the order depends on the row's position in the file: use [`parse_csv`]; here it is the order
/// of the first row.
pub fn option_order(question: &str, shuffle: GpqaShuffle) -> [usize; 4] {
    let mut order = [0, 1, 2, 3];
    if shuffle == GpqaShuffle::Evalscope0 {
        return evalscope_order(&mut PyRandom::from_int(42));
    }
    if shuffle == GpqaShuffle::Evalscope1 {
        let seed = i128::from(evalscope1_seed(question));
        return evalscope_order(&mut PyRandom::from_int(seed));
    }
    if shuffle == GpqaShuffle::Seeded {
        let mut rng = SplitMix64::new(question_seed(question));
        for i in (1..4).rev() {
            let j = (rng.next_u64() % (i as u64 + 1)) as usize;
            order.swap(i, j);
        }
    }
    order
}

/// evalscope's option clean-up (shared with the simulator's answer key).
pub use servebench_core::gpqa::clean_option;

const REQUIRED: [&str; 5] = [
    "Question",
    "Correct Answer",
    "Incorrect Answer 1",
    "Incorrect Answer 2",
    "Incorrect Answer 3",
];

/// Parses a GPQA-layout CSV into items with shuffled options and a letter gold.
pub fn parse_csv(path: &Path, bytes: &[u8], shuffle: GpqaShuffle) -> Result<Vec<Item>, EvalError> {
    let mut reader = csv::ReaderBuilder::new().flexible(false).from_reader(bytes);
    let headers = reader
        .headers()
        .map_err(|e| EvalError::data(path, Some(1), format!("cannot read the CSV header: {e}")))?
        .clone();
    let col = |name: &str| headers.iter().position(|h| h.trim() == name);
    let mut cols = [0usize; 5];
    for (k, name) in REQUIRED.iter().enumerate() {
        cols[k] = col(name).ok_or_else(|| {
            EvalError::data(
                path,
                Some(1),
                format!(
                    "no '{name}' column: a GPQA CSV needs the columns {}",
                    REQUIRED.join(", ")
                ),
            )
        })?;
    }
    let id_col = col("Record ID");
    let mut items = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    // evalscope 0.x: the global generator after seed_everything(42), one shuffle per row in file order.
    let mut global = PyRandom::from_int(42);
    for rec in reader.records() {
        let rec = rec.map_err(|e| {
            let line = e.position().map(|p| p.line() as usize);
            EvalError::data(path, line, format!("malformed CSV record: {e}"))
        })?;
        let line = rec.position().map(|p| p.line() as usize);
        let cell = |i: usize| rec.get(i).unwrap_or("");
        let question = cell(cols[0]).to_string();
        if question.trim().is_empty() {
            return Err(EvalError::data(path, line, "empty 'Question' cell"));
        }
        let mut options: [String; 4] = Default::default();
        for k in 0..4 {
            let raw = cell(cols[k + 1]);
            let o = match shuffle {
                GpqaShuffle::Evalscope1 => py_strip(raw).to_string(),
                _ => clean_option(raw),
            };
            if o.is_empty() {
                return Err(EvalError::data(
                    path,
                    line,
                    format!("empty '{}' cell", REQUIRED[k + 1]),
                ));
            }
            options[k] = o;
        }
        let order = match shuffle {
            GpqaShuffle::Evalscope0 => evalscope_order(&mut global),
            other => option_order(&question, other),
        };
        let choices: [String; 4] = std::array::from_fn(|k| options[order[k]].clone());
        let gold_pos = match shuffle {
            // Python's `choices.index(correct)`: the first option with the correct answer's text.
            GpqaShuffle::Evalscope0 | GpqaShuffle::Evalscope1 => {
                choices.iter().position(|c| *c == options[0]).unwrap_or(0)
            }
            _ => order.iter().position(|&o| o == 0).unwrap_or(0),
        };
        let gold = char::from(b'A' + gold_pos as u8).to_string();
        let id = match id_col.map(|c| cell(c).trim()) {
            Some(rid) if !rid.is_empty() => rid.to_string(),
            _ => format!("q-{}", &sha256_hex(question.as_bytes())[..12]),
        };
        if let Some(first) = seen.insert(id.clone(), line.unwrap_or(0)) {
            return Err(EvalError::data(
                path,
                line,
                format!(
                    "id '{id}' already used by the record on line {first}: duplicate question?"
                ),
            ));
        }
        items.push(Item {
            id,
            question,
            choices: Some(choices),
            gold,
        });
    }
    if items.is_empty() {
        return Err(EvalError::data(
            path,
            None,
            "no questions: the CSV has a header but no records",
        ));
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CSV: &str = "Record ID,Question,Correct Answer,Incorrect Answer 1,Incorrect Answer 2,Incorrect Answer 3,Subdomain\n\
recA,What colour is a synthetic zorb?,Blue,Red,Green,Yellow,Zorbology\n\
,\"How many legs, on a synthetic glimp?\",\"Four [note]\",Three,Two,One,Glimpology\n";

    #[test]
    fn splitmix64_reference_values() {
        // First outputs for seed 0 (as java.util.SplittableRandom / the reference C implementation give them).
        let mut r = SplitMix64::new(0);
        assert_eq!(r.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(r.next_u64(), 0x6E78_9E6A_A1B9_65F4);
        assert_eq!(r.next_u64(), 0x06C4_5D18_8009_454F);
    }

    #[test]
    fn order_is_a_permutation_and_deterministic() {
        for q in ["a", "b", "What is 2+2?", "ünïcödé"] {
            let o = option_order(q, GpqaShuffle::Seeded);
            let mut s = o;
            s.sort_unstable();
            assert_eq!(s, [0, 1, 2, 3]);
            assert_eq!(o, option_order(q, GpqaShuffle::Seeded));
        }
        assert_eq!(option_order("anything", GpqaShuffle::None), [0, 1, 2, 3]);
    }

    #[test]
    fn correct_letter_is_roughly_uniform() {
        // 4000 synthetic questions: each letter expected 1000 times, sd ~27; allow ±4 sd.
        let mut counts = [0usize; 4];
        for i in 0..4000 {
            let o = option_order(
                &format!("Synthetic question number {i}?"),
                GpqaShuffle::Seeded,
            );
            counts[o.iter().position(|&x| x == 0).unwrap()] += 1;
        }
        for c in counts {
            assert!((890..=1110).contains(&c), "{counts:?}");
        }
        // Every one of the 24 permutations shows up.
        let mut perms = std::collections::HashSet::new();
        for i in 0..400 {
            perms.insert(option_order(&format!("q{i}"), GpqaShuffle::Seeded));
        }
        assert_eq!(perms.len(), 24);
    }

    /// `[i1, i2, i3, C]` as indices 1, 2, 3, 0.
    fn names(order: [usize; 4]) -> [&'static str; 4] {
        order.map(|o| ["C", "i1", "i2", "i3"][o])
    }

    #[test]
    fn evalscope0_orders_equal_pythons_seed_42_sequence() {
        // Python: random.seed(42); then random.shuffle(['i1','i2','i3','C']) six times.
        let expect = [
            ["i3", "i2", "C", "i1"],
            ["C", "i3", "i1", "i2"],
            ["i2", "C", "i3", "i1"],
            ["i2", "i3", "i1", "C"],
            ["i2", "i3", "C", "i1"],
            ["i2", "C", "i3", "i1"],
        ];
        let mut rng = PyRandom::from_int(42);
        for e in expect {
            assert_eq!(names(evalscope_order(&mut rng)), e);
        }
        // In a file, row k gets the k-th shuffle whatever its question.
        let mut csv = String::from(
            "Question,Correct Answer,Incorrect Answer 1,Incorrect Answer 2,Incorrect Answer 3\n",
        );
        for k in 0..6 {
            csv.push_str(&format!("Synthetic q{k}?,C,i1,i2,i3\n"));
        }
        let items = parse_csv(Path::new("g.csv"), csv.as_bytes(), GpqaShuffle::Evalscope0).unwrap();
        for (item, e) in items.iter().zip(expect) {
            let ch = item.choices.as_ref().unwrap();
            assert_eq!(ch.each_ref().map(String::as_str), e);
            assert_eq!(ch[(item.gold.as_bytes()[0] - b'A') as usize], "C");
        }
    }

    #[test]
    fn evalscope1_orders_equal_pythons_per_question_seed() {
        // Python: seed = int.from_bytes(sha256(q.strip().encode()).digest()[:8], 'big');
        // random.Random(seed).shuffle(['i1','i2','i3','C']).
        let cases = [
            (
                "What colour is a synthetic zorb?",
                10427400873348500680u64,
                ["i3", "C", "i2", "i1"],
            ),
            (
                "  How many legs, on a synthetic glimp?\n",
                18143469920609566964,
                ["i2", "C", "i1", "i3"],
            ),
            ("ünïcödé?", 13439072481273258254, ["C", "i1", "i3", "i2"]),
        ];
        for (q, seed, e) in cases {
            assert_eq!(evalscope1_seed(q), seed, "{q:?}");
            assert_eq!(names(option_order(q, GpqaShuffle::Evalscope1)), e, "{q:?}");
        }
    }

    #[test]
    fn evalscope_gold_is_the_first_option_with_the_correct_text() {
        // Python's list.index: a distractor identical to the correct answer takes the gold if it comes first.
        let csv = "Question,Correct Answer,Incorrect Answer 1,Incorrect Answer 2,Incorrect Answer 3\nq?,same,same,b,c\n";
        let items = parse_csv(Path::new("g.csv"), csv.as_bytes(), GpqaShuffle::Evalscope0).unwrap();
        let ch = items[0].choices.as_ref().unwrap();
        let first = ch.iter().position(|c| c == "same").unwrap();
        assert_eq!(items[0].gold, char::from(b'A' + first as u8).to_string());
        // 1.x only strips: brackets stay.
        let csv = "Question,Correct Answer,Incorrect Answer 1,Incorrect Answer 2,Incorrect Answer 3\nq?, Four [note] ,b,c,d\n";
        let items = parse_csv(Path::new("g.csv"), csv.as_bytes(), GpqaShuffle::Evalscope1).unwrap();
        assert!(items[0]
            .choices
            .as_ref()
            .unwrap()
            .contains(&"Four [note]".to_string()));
        assert_eq!(py_strip("\u{1c} x \u{3000}"), "x");
    }

    #[test]
    fn options_are_cleaned_like_evalscope() {
        assert_eq!(clean_option("  Four [note] legs "), "Four legs");
        assert_eq!(clean_option("A [title] B"), "A. B");
        assert_eq!(clean_option("[a [b] c"), " c");
        assert_eq!(clean_option("keep [open\nline] x"), "keep [open\nline] x");
    }

    #[test]
    fn parses_layout_with_ids_and_gold_letters() {
        let items = parse_csv(Path::new("g.csv"), CSV.as_bytes(), GpqaShuffle::Seeded).unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].id, "recA");
        assert!(
            items[1].id.starts_with("q-") && items[1].id.len() == 14,
            "{}",
            items[1].id
        );
        for (item, correct) in items.iter().zip(["Blue", "Four "]) {
            // evalscope trims before removing "[note]", so a space stays behind.
            let ch = item.choices.as_ref().unwrap();
            let k = (item.gold.as_bytes()[0] - b'A') as usize;
            assert_eq!(ch[k], correct);
        }
        assert_eq!(items[1].question, "How many legs, on a synthetic glimp?");
        let none = parse_csv(Path::new("g.csv"), CSV.as_bytes(), GpqaShuffle::None).unwrap();
        assert!(none.iter().all(|i| i.gold == "A"));
        assert_eq!(
            none[0].choices.as_ref().unwrap(),
            &["Blue", "Red", "Green", "Yellow"].map(String::from)
        );
    }

    #[test]
    fn layout_errors_name_file_and_line() {
        let e = parse_csv(
            Path::new("g.csv"),
            b"Question,Correct Answer\nq,a\n",
            GpqaShuffle::Seeded,
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("g.csv:1: no 'Incorrect Answer 1' column"),
            "{e}"
        );
        let bad = "Question,Correct Answer,Incorrect Answer 1,Incorrect Answer 2,Incorrect Answer 3\nq,a,b,c,d\nr,a,,c,d\n";
        let e = parse_csv(Path::new("g.csv"), bad.as_bytes(), GpqaShuffle::Seeded).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("g.csv:3: empty 'Incorrect Answer 1' cell"),
            "{e}"
        );
        let ragged = "Question,Correct Answer,Incorrect Answer 1,Incorrect Answer 2,Incorrect Answer 3\nq,a,b\n";
        let e = parse_csv(Path::new("g.csv"), ragged.as_bytes(), GpqaShuffle::Seeded).unwrap_err();
        assert!(
            e.to_string().contains("g.csv:2: malformed CSV record"),
            "{e}"
        );
    }
}
