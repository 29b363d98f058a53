//! The on-disk cache of loaded byte-level BPE models: what reading a `tokenizer.json` gives, kept per file
//! content so that the next run skips the reading.
//!
//! Reading a 150k-token `tokenizer.json` (11 MB of JSON, 150k merges looked up by their tokens' bytes) costs
//! ~0.1 CPU-s, the largest fixed cost of a bench run. What it gives — [`ByteBpe`]'s tables and the JSON of the
//! file's other parts ([`crate::fast_load::FileParts::rest`]) — is written once to
//! `<folder>/tokenizers/<content hash>-<length>.bin` and read back in a few milliseconds.
//!
//! - The file's bytes are read and hashed (two 64-bit hashes of different families, ~2 ms) on every load: an
//!   edited file never meets an old entry. The entry is named for the loader's own version too (a hash of
//!   this file, `byte_bpe.rs`, `fast_load.rs` and the crate version).
//! - Its tables are checked to fit together (every span in the arena, every id in range, one id per token)
//!   before use: a damaged entry is ignored and rebuilt, never a panic.
//! - Folder, naming, checksums, atomic writes and pruning: [`crate::disk`].

use super::{pair, Added, ByteBpe, CharBytes, Slot, ABSENT, NO_TOKEN};
use crate::disk::{Key, Reader, Writer};
use hashbrown::HashTable;
use rustc_hash::FxHashMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

const MAGIC: &[u8; 16] = b"servebench-bpe\n\0";
/// Magic, loader version, key, payload length and checksum.
#[cfg(test)]
const HEADER_LEN: usize = crate::disk::header_len(1);

/// The entry for the file `key` names.
fn entry_file(dir: &Path, key: &Key) -> PathBuf {
    dir.join("tokenizers")
        .join(format!("{}-{:016x}.bin", key.name(), loader_version()))
}

/// A hash of the code that reads a file into a [`ByteBpe`] and writes and reads entries.
fn loader_version() -> u64 {
    static VERSION: OnceLock<u64> = OnceLock::new();
    *VERSION.get_or_init(|| {
        crate::disk::code_version(&[
            include_str!("../byte_bpe.rs"),
            include_str!("cache.rs"),
            include_str!("../fast_load.rs"),
        ])
    })
}

/// The model and the other parts' JSON of the file `key` names, if `dir` holds a sound entry for it.
pub(crate) fn load(dir: &Path, key: &Key) -> Option<(ByteBpe, String)> {
    decode(&crate::disk::read_entry(&entry_file(dir, key))?, key)
}

/// Keeps the model and the other parts' JSON of the file `key` names in `dir`; false where that failed (the
/// cache is an optimization: callers go on).
pub(crate) fn store(dir: &Path, key: &Key, bpe: &ByteBpe, rest: &str) -> bool {
    crate::disk::write_entry(&entry_file(dir, key), &encode(key, bpe, rest))
}

/// An entry's bytes.
fn encode(key: &Key, bpe: &ByteBpe, rest: &str) -> Vec<u8> {
    let mut w = Writer(Vec::with_capacity(bpe.arena.len() * 4 + rest.len() + 4096));
    w.str(rest);
    bpe.write(&mut w);
    crate::disk::seal(MAGIC, loader_version(), &[key], &w.0)
}

/// An entry's model and JSON, if it is whole, for `key`, from this loader, and its tables fit together.
fn decode(bytes: &[u8], key: &Key) -> Option<(ByteBpe, String)> {
    let mut r = Reader(crate::disk::unseal(bytes, MAGIC, loader_version(), &[key])?);
    let rest = r.str()?.to_string();
    let bpe = ByteBpe::read(&mut r)?;
    r.0.is_empty().then_some((bpe, rest))
}

impl ByteBpe {
    /// Every table but `by_bytes` (rebuilt from the arena when first needed); maps in key order.
    fn write(&self, w: &mut Writer) {
        w.len(self.vocab_len);
        w.len(self.vocab_with_added);
        w.u8(u8::from(self.ignore_merges));
        w.bytes(&self.arena);
        w.len(self.spans.len());
        for (&(start, len), &alpha) in self.spans.iter().zip(&self.alpha) {
            w.u32(start);
            w.u32(len);
            w.u8(u8::from(alpha));
        }
        for id in self.byte_ids {
            w.u32(id);
        }
        w.text_ids(&self.other);
        // A model read from an entry whose tables do not fit together is never written back (only models
        // read from a file are stored): it would write no merges.
        let mut merges: Vec<_> = self
            .tables()
            .map(|t| t.merges.iter().collect())
            .unwrap_or_default();
        merges.sort_unstable();
        w.len(merges.len());
        for (&ab, &(rank, id)) in merges {
            w.u64(ab);
            w.u32(rank);
            w.u32(id);
        }
        let mut added: Vec<_> = self.added.iter().collect();
        added.sort_unstable_by_key(|(&id, _)| id);
        w.len(added.len());
        for (&id, a) in added {
            w.u32(id);
            w.str(&a.content);
            w.bytes(&a.bytes);
            w.u8(u8::from(a.special));
        }
        w.text_ids(&self.added_ids);
    }

    /// The tables [`ByteBpe::write`] wrote, if they fit together.
    fn read(r: &mut Reader<'_>) -> Option<ByteBpe> {
        let vocab_len = usize::try_from(r.u64()?).ok()?;
        let vocab_with_added = usize::try_from(r.u64()?).ok()?;
        let ignore_merges = r.bool()?;
        let arena = r.bytes()?.to_vec();
        let n = r.count(9)?;
        let (mut spans, mut alpha) = (Vec::with_capacity(n), Vec::with_capacity(n));
        for _ in 0..n {
            let span = (r.u32()?, r.u32()?);
            let is_alpha = r.bool()?;
            let end = u64::from(span.0) + u64::from(span.1);
            if (span != ABSENT && end > arena.len() as u64) || (span == ABSENT && is_alpha) {
                return None;
            }
            spans.push(span);
            alpha.push(is_alpha);
        }
        let mut bpe = ByteBpe {
            tables: OnceLock::new(),
            pending_merges: Vec::new(),
            arena,
            spans,
            alpha,
            chars: CharBytes::new(),
            other: FxHashMap::default(),
            byte_ids: [NO_TOKEN; 256],
            ignore_merges,
            vocab_len,
            added: FxHashMap::default(),
            added_ids: FxHashMap::default(),
            vocab_with_added,
        };
        for b in 0..=255u8 {
            let id = r.u32()?;
            if id != NO_TOKEN && bpe.span(id) != Some(&[b][..]) {
                return None;
            }
            bpe.byte_ids[usize::from(b)] = id;
        }
        bpe.read_maps(r)?;
        Some(bpe)
    }

    /// `other`, `merges`, `added` and `added_ids`.
    fn read_maps(&mut self, r: &mut Reader<'_>) -> Option<()> {
        r.text_ids(&mut self.other)?;
        let n = r.count(16)?;
        let mut merges = Vec::with_capacity(n);
        let known = |id: u32| self.alpha.get(id as usize) == Some(&true);
        for _ in 0..n {
            let (ab, rank, id) = (r.u64()?, r.u32()?, r.u32()?);
            if !known((ab >> 32) as u32) || !known(ab as u32) || !known(id) {
                return None;
            }
            merges.push((pair((ab >> 32) as u32, ab as u32), rank, id));
        }
        self.pending_merges = merges;
        let n = r.count(21)?;
        for _ in 0..n {
            let id = r.u32()?;
            let (content, bytes, special) = (r.str()?, r.bytes()?, r.bool()?);
            let added = Added {
                content: content.into(),
                bytes: bytes.into(),
                special,
            };
            self.added.insert(id, added);
        }
        r.text_ids(&mut self.added_ids)?;
        Some(())
    }
}

/// The ids of the byte-level tokens by their bytes; None where two share their bytes.
pub(super) fn by_bytes(
    arena: &[u8],
    spans: &[(u32, u32)],
    alpha: &[bool],
) -> Option<HashTable<Slot>> {
    let mut table = HashTable::with_capacity(alpha.iter().filter(|&&a| a).count());
    for (id, _) in alpha.iter().enumerate().filter(|(_, &a)| a) {
        let id = u32::try_from(id).ok()?;
        let bytes = super::span_of(arena, spans, id);
        let entry = table.entry(
            super::hash(bytes),
            |s: &Slot| s.is(bytes, arena, spans),
            |s| super::hash(super::span_of(arena, spans, s.id)),
        );
        match entry {
            hashbrown::hash_table::Entry::Occupied(_) => return None,
            hashbrown::hash_table::Entry::Vacant(v) => {
                v.insert(Slot::new(bytes, id));
            }
        }
    }
    Some(table)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::io::Read;

    fn builtin_bytes() -> Vec<u8> {
        let mut raw = Vec::new();
        flate2::read::GzDecoder::new(crate::tokenizer::BUILTIN_GZ)
            .read_to_end(&mut raw)
            .unwrap();
        raw
    }

    /// The built-in `tokenizer.json`'s key and entry, read once (reading it is slow in a debug build).
    fn builtin_entry() -> &'static (Vec<u8>, Key, Vec<u8>) {
        static ENTRY: OnceLock<(Vec<u8>, Key, Vec<u8>)> = OnceLock::new();
        ENTRY.get_or_init(|| {
            let bytes = builtin_bytes();
            let (bpe, rest) = ByteBpe::read_file(&bytes).unwrap();
            let key = Key::of(&bytes);
            let entry = encode(&key, &bpe, &rest);
            (bytes, key, entry)
        })
    }

    /// What a load reads from the built-in `tokenizer.json` (the model and the other parts' JSON), by way of
    /// its entry.
    fn read_builtin() -> (Vec<u8>, ByteBpe, String) {
        let (bytes, key, entry) = builtin_entry();
        let (bpe, rest) = decode(entry, key).unwrap();
        (bytes.clone(), bpe, rest)
    }

    /// The payload of an entry with its checksum made right again (to reach the table checks).
    fn resealed(mut entry: Vec<u8>) -> Vec<u8> {
        let sum = crate::disk::fx_hash(&entry[HEADER_LEN..]);
        entry[HEADER_LEN - 8..HEADER_LEN].copy_from_slice(&sum.to_le_bytes());
        entry
    }

    fn assert_same_model(a: &ByteBpe, b: &ByteBpe) {
        assert_eq!(a.vocab_len(), b.vocab_len());
        assert_eq!(a.vocab_with_added(), b.vocab_with_added());
        let ids: Vec<u32> = (0..a.vocab_with_added() as u32 + 8).collect();
        assert_eq!(a.decode(&ids), b.decode(&ids));
        for id in ids {
            assert_eq!(a.is_special(id), b.is_special(id), "{id}");
            // Every token's text finds its id again in both.
            let text = a.decode(&[id]);
            assert_eq!(a.token_to_id(&text), b.token_to_id(&text), "{id}");
        }
        let mut added = (a.added_contents(), b.added_contents());
        added.0.sort();
        added.1.sort();
        assert_eq!(added.0, added.1);
        for word in [
            "hello",
            " world",
            "incomprehensibilities",
            "12345",
            " \u{1f680}\u{1f680}",
            "\u{4e2d}\u{6587}",
        ] {
            assert_eq!(
                a.word_ids(word.as_bytes()),
                b.word_ids(word.as_bytes()),
                "{word}"
            );
        }
    }

    #[test]
    fn an_entry_reads_back_as_the_model_it_was_written_from() {
        let bytes = builtin_bytes();
        let (bpe, rest) = ByteBpe::read_file(&bytes).unwrap();
        let key = Key::of(&bytes);
        let entry = encode(&key, &bpe, &rest);
        let (back, back_rest) = decode(&entry, &key).expect("a sound entry");
        assert_eq!(back_rest, rest);
        // Decoding needs no encoding tables: they are built on the first word to merge.
        let hello = bpe.token_to_id("hello").unwrap_or(u32::MAX);
        assert_eq!(back.decode(&[hello]), "hello");
        assert!(
            back.tables.get().is_none(),
            "built before any word was merged"
        );
        assert_eq!(back.word_ids(b"hello"), Some(vec![hello]));
        assert!(back.tables.get().is_some_and(Option::is_some));
        assert_same_model(&bpe, &back);
        // Written again, the entry is the same bytes (maps in key order).
        assert_eq!(encode(&key, &back, &back_rest), entry);
        assert!(
            rest.contains("\"pre_tokenizer\":") && rest.starts_with(r#"{"model":{"type":"BPE""#)
        );
    }

    #[test]
    fn entries_of_other_files_or_other_loaders_are_not_used() {
        let (bytes, bpe, rest) = read_builtin();
        let key = Key::of(&bytes);
        let entry = encode(&key, &bpe, &rest);
        let mut edited = bytes.clone();
        edited[100] ^= 1;
        assert_ne!(Key::of(&edited), key);
        assert!(decode(&entry, &Key::of(&edited)).is_none());
        let mut other_loader = entry.clone();
        other_loader[16] ^= 1; // the loader version
        assert!(decode(&other_loader, &key).is_none());
        let mut bad_magic = entry.clone();
        bad_magic[0] = b'S';
        assert!(decode(&bad_magic, &key).is_none());
    }

    #[test]
    fn damaged_entries_are_refused() {
        let (bytes, bpe, rest) = read_builtin();
        let key = Key::of(&bytes);
        let entry = encode(&key, &bpe, &rest);
        // Cut short anywhere, or one byte changed anywhere: refused (length, checksum or header).
        for cut in (0..entry.len()).step_by(entry.len() / 97) {
            assert!(decode(&entry[..cut], &key).is_none(), "cut at {cut}");
        }
        for at in (0..entry.len()).step_by(entry.len() / 89) {
            let mut e = entry.clone();
            e[at] ^= 0x20;
            assert!(decode(&e, &key).is_none(), "byte {at}");
        }
        let mut longer = entry.clone();
        longer.push(0);
        assert!(decode(&longer, &key).is_none());
    }

    /// Tables that do not fit together are refused even under a right checksum.
    #[test]
    fn tables_that_do_not_fit_together_are_refused() {
        let (bytes, bpe, rest) = read_builtin();
        let key = Key::of(&bytes);
        let refused = |edit: &dyn Fn(&mut ByteBpe)| {
            let (_, mut b, _) = read_builtin();
            edit(&mut b);
            decode(&resealed(encode(&key, &b, &rest)), &key).is_none()
        };
        let id = bpe.token_to_id("hello").unwrap() as usize;
        let other = bpe.token_to_id("world").unwrap() as usize;
        assert!(
            refused(&|b| b.spans[id] = (u32::MAX - 2, 9)),
            "a span past the arena"
        );
        // Two ids for one token: found when the encoding tables are first built (a read model that only
        // decodes never builds them); encoding then refuses, and the tokenizer reports the damaged entry.
        let (_, mut twice, _) = read_builtin();
        twice.spans[other] = twice.spans[id];
        let (back, _) = decode(&resealed(encode(&key, &twice, &rest)), &key).expect("read");
        assert_eq!(back.word_ids(b"hello"), None, "two ids for one token");
        assert_eq!(bpe.word_ids(b"hello"), Some(vec![id as u32]));
        assert!(
            refused(&|b| b.alpha[id] = false | {
                b.spans[id] = ABSENT;
                true
            }),
            "absent yet a token"
        );
        assert!(
            refused(&|b| b.byte_ids[usize::from(b'a')] = id as u32),
            "a byte's id of another token"
        );
        assert!(
            refused(&|b| {
                let n = b.spans.len() as u32;
                assert!(b.tables().is_some());
                b.tables_mut()
                    .unwrap()
                    .merges
                    .insert(pair(1, 2), (0, n + 5));
            }),
            "a merge into an unknown id"
        );
        // Unchanged, the same path reads it.
        assert!(!refused(&|_| {}));
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
        /// Any bytes under a right checksum: an answer or a refusal, never a panic.
        #[test]
        fn any_payload_is_read_or_refused_without_a_panic(
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
            cut in any::<prop::sample::Index>(),
        ) {
            let (_, key, entry) = builtin_entry();
            let mut entry = entry.clone();
            let payload = entry.len() - HEADER_LEN;
            for (at, value) in edits {
                entry[HEADER_LEN + at.index(payload)] = value;
            }
            entry.truncate(HEADER_LEN + cut.index(payload + 1));
            let len = (entry.len() - HEADER_LEN) as u64;
            entry[HEADER_LEN - 16..HEADER_LEN - 8].copy_from_slice(&len.to_le_bytes());
            let _ = decode(&resealed(entry), key);
        }
    }

    #[test]
    fn store_then_load_in_a_folder() {
        let (bytes, bpe, rest) = read_builtin();
        let key = Key::of(&bytes);
        let dir = tempfile::tempdir().unwrap();
        assert!(load(dir.path(), &key).is_none());
        assert!(store(dir.path(), &key, &bpe, &rest));
        let (back, back_rest) = load(dir.path(), &key).expect("stored");
        assert_eq!(back_rest, rest);
        assert_same_model(&bpe, &back);
        // One entry, no temporary file left; named for the content and this loader.
        let files: Vec<_> = std::fs::read_dir(dir.path().join("tokenizers"))
            .unwrap()
            .collect();
        assert_eq!(files.len(), 1);
        let name = entry_file(dir.path(), &key)
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        assert!(
            name.ends_with(&format!("-{}-{:016x}.bin", bytes.len(), loader_version())),
            "{name}"
        );
        // Entries and leftovers unused for long are removed when an entry is written; a used one stays.
        let folder = dir.path().join("tokenizers");
        let entry = entry_file(dir.path(), &key);
        let aged = |name: &str| {
            let p = folder.join(name);
            let f = std::fs::File::create(&p).unwrap();
            f.set_modified(std::time::SystemTime::now() - crate::disk::PRUNE_AFTER * 2)
                .unwrap();
            p
        };
        let (old, leftover) = (aged("0123-4-5.bin"), aged(".0123.1.2.tmp"));
        let other = folder.join("notes.txt");
        std::fs::File::create(&other)
            .unwrap()
            .set_modified(std::time::SystemTime::now() - crate::disk::PRUNE_AFTER * 2)
            .unwrap();
        std::fs::File::options()
            .write(true)
            .open(&entry)
            .unwrap()
            .set_modified(std::time::SystemTime::now() - crate::disk::PRUNE_AFTER * 2)
            .unwrap();
        assert!(load(dir.path(), &key).is_some(), "a hit renews the entry");
        assert!(store(dir.path(), &Key::of(b"another file"), &bpe, &rest));
        assert!(!old.exists() && !leftover.exists());
        assert!(entry.exists() && other.exists());
        // A folder that cannot be made: false, nothing else.
        let blocked = dir.path().join("a-file");
        std::fs::write(&blocked, b"x").unwrap();
        assert!(!store(&blocked, &key, &bpe, &rest));
    }
}
