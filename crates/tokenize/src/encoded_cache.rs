//! The on-disk cache of encoded corpora: a prompt corpus's token ids and word starts, with the ids of the
//! words met encoding it, kept per (tokenizer content, corpus text) so that the next run with the same
//! tokenizer and corpus skips the encoding. For servebench's `random` corpus (400 kB of ShareGPT prompts,
//! ~90k Qwen2 tokens) that is ~100M instructions, a third of a short bench run's fixed cost; and with the
//! corpus's words back in the word cache, cutting prompts (which re-encodes their first and last words) merges
//! no word, so the BPE tables are never built ([`crate::byte_bpe`]).
//!
//! - An entry is named for the tokenizer file's content key, the text's content key and the version of the
//!   code that encodes (a hash of the tokenizer, word cache, splitter, BPE and cache sources): an edited
//!   tokenizer, another corpus or other code never meets it.
//! - Its ids are checked to be in the vocabulary and its word starts to fit its ids before use; a damaged
//!   entry is ignored (the text is encoded again and the entry rewritten), never a panic.
//! - Folder, checksums, atomic writes and pruning: [`crate::disk`] (the entries live in `encoded/`).

use crate::disk::{Key, Reader, Writer};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

const MAGIC: &[u8; 16] = b"servebench-enc\n\0";

/// A text's ids, word starts and the words (with their ids) its encoding met.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Encoded {
    pub(crate) ids: Vec<u32>,
    pub(crate) starts: Vec<bool>,
    pub(crate) words: Vec<(Box<str>, Box<[u32]>)>,
}

/// A hash of the code whose output an entry holds.
fn code_version() -> u64 {
    static VERSION: OnceLock<u64> = OnceLock::new();
    *VERSION.get_or_init(|| {
        crate::disk::code_version(&[
            include_str!("encoded_cache.rs"),
            include_str!("tokenizer.rs"),
            include_str!("word_cache.rs"),
            include_str!("word_cache/ascii_split.rs"),
            include_str!("byte_bpe.rs"),
            include_str!("fast_load.rs"),
        ])
    })
}

fn entry_file(dir: &Path, tokenizer: &Key, text: &Key) -> PathBuf {
    dir.join("encoded").join(format!(
        "{}-{}-{:016x}.bin",
        tokenizer.name(),
        text.name(),
        code_version()
    ))
}

/// The encoding of the text `text` names by the tokenizer `tokenizer` names, if `dir` holds a sound entry
/// (every id below `vocab`).
pub(crate) fn load(dir: &Path, tokenizer: &Key, text: &Key, vocab: usize) -> Option<Encoded> {
    let entry = crate::disk::read_entry(&entry_file(dir, tokenizer, text))?;
    decode(&entry, tokenizer, text, vocab)
}

/// Keeps `enc` for the next run; false where that failed (callers go on).
pub(crate) fn store(dir: &Path, tokenizer: &Key, text: &Key, enc: &Encoded) -> bool {
    let entry = encode(tokenizer, text, enc);
    crate::disk::write_entry(&entry_file(dir, tokenizer, text), &entry)
}

fn encode(tokenizer: &Key, text: &Key, enc: &Encoded) -> Vec<u8> {
    let words: usize = enc
        .words
        .iter()
        .map(|(w, ids)| w.len() + 4 * ids.len() + 16)
        .sum();
    let mut w = Writer(Vec::with_capacity(enc.ids.len() * 5 + words + 64));
    w.len(enc.ids.len());
    for &id in &enc.ids {
        w.u32(id);
    }
    for bits in enc.starts.chunks(8) {
        w.u8(bits.iter().rev().fold(0, |b, &s| (b << 1) | u8::from(s)));
    }
    w.len(enc.words.len());
    for (word, ids) in &enc.words {
        w.str(word);
        w.len(ids.len());
        for &id in ids.iter() {
            w.u32(id);
        }
    }
    crate::disk::seal(MAGIC, code_version(), &[tokenizer, text], &w.0)
}

/// An entry's encoding, if it is whole, for these keys, from this code, and every id is below `vocab`.
fn decode(entry: &[u8], tokenizer: &Key, text: &Key, vocab: usize) -> Option<Encoded> {
    let payload = crate::disk::unseal(entry, MAGIC, code_version(), &[tokenizer, text])?;
    let mut r = Reader(payload);
    let ids = read_ids(&mut r, vocab)?;
    let packed = r.take(ids.len().div_ceil(8))?;
    let starts = (0..ids.len())
        .map(|i| (packed[i / 8] >> (i % 8)) & 1 == 1)
        .collect();
    let n = r.count(16)?;
    let mut words = Vec::with_capacity(n);
    for _ in 0..n {
        let word = r.str()?;
        if word.is_empty() {
            return None;
        }
        words.push((word.into(), read_ids(&mut r, vocab)?.into()));
    }
    r.0.is_empty().then_some(Encoded { ids, starts, words })
}

/// A count and that many ids, each below `vocab`.
fn read_ids(r: &mut Reader<'_>, vocab: usize) -> Option<Vec<u32>> {
    let n = r.count(4)?;
    let ids: Vec<u32> = r
        .take(n * 4)?
        .chunks_exact(4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    ids.iter().all(|&id| (id as usize) < vocab).then_some(ids)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const VOCAB: usize = 1000;

    fn sample() -> (Key, Key, Encoded) {
        let enc = Encoded {
            ids: (0..21).map(|i| i * 37 % 1000).collect(),
            starts: (0..21).map(|i| i % 3 == 0 || i == 20).collect(),
            words: vec![
                ("hello".into(), vec![7u32].into()),
                (" wörld".into(), vec![999u32, 0, 12].into()),
                ("\u{1}".into(), Vec::new().into()),
            ],
        };
        (Key::of(b"a tokenizer.json"), Key::of(b"a corpus"), enc)
    }

    #[test]
    fn an_entry_reads_back_as_written() {
        let (tok, text, enc) = sample();
        let entry = encode(&tok, &text, &enc);
        assert_eq!(decode(&entry, &tok, &text, VOCAB), Some(enc));
        let empty = Encoded::default();
        let entry = encode(&tok, &text, &empty);
        assert_eq!(decode(&entry, &tok, &text, VOCAB), Some(empty));
    }

    #[test]
    fn entries_of_other_tokenizers_texts_or_vocabularies_are_not_used() {
        let (tok, text, enc) = sample();
        let entry = encode(&tok, &text, &enc);
        let other = Key::of(b"another");
        assert!(decode(&entry, &other, &text, VOCAB).is_none());
        assert!(decode(&entry, &tok, &other, VOCAB).is_none());
        assert!(decode(&entry, &text, &tok, VOCAB).is_none(), "keys swapped");
        // An id the vocabulary does not have (in the ids, or in a word's ids).
        assert!(decode(&entry, &tok, &text, 999).is_none());
        let mut high = enc;
        high.ids[3] = 5000;
        high.words.truncate(1);
        assert!(decode(&encode(&tok, &text, &high), &tok, &text, VOCAB).is_none());
    }

    #[test]
    fn damaged_entries_are_refused() {
        let (tok, text, enc) = sample();
        let entry = encode(&tok, &text, &enc);
        for cut in 0..entry.len() {
            assert!(
                decode(&entry[..cut], &tok, &text, VOCAB).is_none(),
                "cut at {cut}"
            );
        }
        for at in 0..entry.len() {
            let mut e = entry.clone();
            e[at] ^= 0x04;
            assert!(decode(&e, &tok, &text, VOCAB).is_none(), "byte {at}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]
        /// Any payload under a right checksum: an encoding whose ids are in the vocabulary and whose starts fit
        /// them, or a refusal; never a panic.
        #[test]
        fn any_payload_is_read_or_refused_without_a_panic(
            payload in proptest::collection::vec(any::<u8>(), 0..200),
            from_sample in any::<bool>(),
        ) {
            let (tok, text, enc) = sample();
            let payload = if from_sample {
                let entry = encode(&tok, &text, &enc);
                let mut p = entry[crate::disk::header_len(2)..].to_vec();
                for (i, b) in payload.iter().enumerate().take(8) {
                    let at = (usize::from(*b) * 7 + i) % p.len();
                    p[at] = payload[(i + 1) % payload.len()];
                }
                p
            } else {
                payload
            };
            let entry = crate::disk::seal(MAGIC, code_version(), &[&tok, &text], &payload);
            if let Some(e) = decode(&entry, &tok, &text, VOCAB) {
                prop_assert_eq!(e.ids.len(), e.starts.len());
                prop_assert!(e.ids.iter().all(|&i| (i as usize) < VOCAB));
                prop_assert!(e.words.iter().all(|(_, ids)| ids.iter().all(|&i| (i as usize) < VOCAB)));
            }
        }
    }

    #[test]
    fn store_then_load_in_a_folder() {
        let (tok, text, enc) = sample();
        let dir = tempfile::tempdir().unwrap();
        assert!(load(dir.path(), &tok, &text, VOCAB).is_none());
        assert!(store(dir.path(), &tok, &text, &enc));
        assert_eq!(load(dir.path(), &tok, &text, VOCAB), Some(enc));
        let files: Vec<_> = std::fs::read_dir(dir.path().join("encoded"))
            .unwrap()
            .map(|f| f.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(files.len(), 1, "one entry, no temporary file: {files:?}");
        assert!(files[0].starts_with(&format!("{}-{}-", tok.name(), text.name())));
        assert!(load(dir.path(), &tok, &Key::of(b"other"), VOCAB).is_none());
    }
}
