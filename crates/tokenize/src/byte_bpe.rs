//! Byte-level BPE read straight from a `tokenizer.json`: merges and decoding without building `tokenizers`.
//!
//! `tokenizers` builds its BPE model with a `String` per token three times over (vocabulary, reverse
//! vocabulary, the merged token of each merge): ~0.15 CPU-s for a 150k-token vocabulary, the largest fixed
//! cost of a bench run. [`ByteBpe`] reads the same vocabulary and merges in one pass into flat tables (one
//! byte arena, ids found by their bytes, a pair → (rank, id) map). It merges a word's bytes as `tokenizers`'
//! BPE merges the word's byte-level characters (the pair of lowest rank first, the leftmost of equal ones) and
//! decodes ids as `tokenizers`' `ByteLevel` decoder does. Only models it reads exactly get one (see
//! [`ByteBpe::from_file`]); [`crate::Tokenizer`] then uses it for the word cache's misses and for decoding,
//! and builds `tokenizers`' own pipeline only for what else is asked. Tests and `examples/word_cache.rs`
//! check ids and texts against `tokenizers`.

pub(crate) mod cache;

use hashbrown::HashTable;
use rustc_hash::{FxBuildHasher, FxHashMap};
use serde::de::{Deserializer, Error as _, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use std::borrow::Cow;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fmt;
use std::hash::BuildHasher;
use std::sync::OnceLock;

/// A JSON string, borrowed from the file where it has no escapes.
struct Str<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Str<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Str<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Str<'de>, E> {
                Ok(Str(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Str<'de>, E> {
                Ok(Str(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Str<'de>, E> {
                Ok(Str(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

/// The vocabulary object, in file order.
struct Vocab<'a>(Vec<(Cow<'a, str>, u32)>);

impl<'de: 'a, 'a> Deserialize<'de> for Vocab<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Vocab<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map of token to id")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut m: M) -> Result<Vocab<'a>, M::Error> {
                let mut v = Vec::with_capacity(m.size_hint().unwrap_or(0));
                while let Some((k, id)) = m.next_entry::<Str<'a>, u32>()? {
                    v.push((k.0, id));
                }
                Ok(Vocab(v))
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

/// One merge: `["a", "b"]`, or the older `"a b"` (`legacy`; `None` for `#version` lines, which are skipped).
struct Merge<'a> {
    pair: Option<(Cow<'a, str>, Cow<'a, str>)>,
    legacy: bool,
}

fn split_legacy<'a, E: serde::de::Error>(s: Cow<'a, str>) -> Result<Merge<'a>, E> {
    if s.starts_with("#version") {
        return Ok(Merge {
            pair: None,
            legacy: true,
        });
    }
    let bad = || E::custom(format!("merge {s:?} is not two tokens split by one space"));
    let (a, b) = s.split_once(' ').ok_or_else(bad)?;
    if b.contains(' ') {
        return Err(bad());
    }
    let pair = match s {
        Cow::Borrowed(s) => {
            let (a, b) = s.split_at(a.len());
            (Cow::Borrowed(a), Cow::Borrowed(&b[1..]))
        }
        Cow::Owned(_) => (Cow::Owned(a.to_owned()), Cow::Owned(b.to_owned())),
    };
    Ok(Merge {
        pair: Some(pair),
        legacy: true,
    })
}

impl<'de: 'a, 'a> Deserialize<'de> for Merge<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Merge<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a merge: [\"a\", \"b\"] or \"a b\"")
            }
            fn visit_borrowed_str<E: serde::de::Error>(self, v: &'de str) -> Result<Merge<'a>, E> {
                split_legacy(Cow::Borrowed(v))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Merge<'a>, E> {
                split_legacy(Cow::Owned(v.to_owned()))
            }
            fn visit_seq<S: SeqAccess<'de>>(self, mut s: S) -> Result<Merge<'a>, S::Error> {
                let a: Str<'a> = s.next_element()?.ok_or_else(|| S::Error::custom("merge"))?;
                let b: Str<'a> = s.next_element()?.ok_or_else(|| S::Error::custom("merge"))?;
                if s.next_element::<serde::de::IgnoredAny>()?.is_some() {
                    return Err(S::Error::custom("a merge has two tokens"));
                }
                Ok(Merge {
                    pair: Some((a.0, b.0)),
                    legacy: false,
                })
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

/// The model object of a `tokenizer.json`, as far as [`ByteBpe`] reads it.
#[derive(Deserialize)]
pub(crate) struct ModelJson<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<Str<'a>>,
    dropout: Option<f32>,
    #[serde(borrow)]
    continuing_subword_prefix: Option<Str<'a>>,
    #[serde(borrow)]
    end_of_word_suffix: Option<Str<'a>>,
    ignore_merges: Option<bool>,
    #[serde(borrow)]
    unk_token: Option<Str<'a>>,
    byte_fallback: Option<bool>,
    #[serde(borrow)]
    vocab: Vocab<'a>,
    #[serde(borrow)]
    merges: Vec<Merge<'a>>,
}

/// One entry of `added_tokens`, as far as [`ByteBpe`] reads it.
#[derive(Deserialize)]
pub(crate) struct AddedJson<'a> {
    id: u32,
    #[serde(borrow)]
    content: Str<'a>,
    #[serde(default)]
    special: bool,
}

/// An added token as `tokenizers` keeps it by id.
struct Added {
    content: Box<str>,
    /// What the byte-level decoder makes of it.
    bytes: Box<[u8]>,
    special: bool,
}

const ABSENT: (u32, u32) = (u32::MAX, 0);
/// A byte without a token of its own.
const NO_TOKEN: u32 = u32::MAX;

/// A byte-level BPE model with its added tokens (see the module documentation).
pub(crate) struct ByteBpe {
    /// Every model token's bytes as the byte-level decoder gives them, one after another.
    arena: Vec<u8>,
    /// Where each id's bytes are in `arena` (`ABSENT` for ids not in the vocabulary).
    spans: Vec<(u32, u32)>,
    /// The tables only encoding needs: built with the model when it is read from a file; for a model read
    /// from the on-disk cache, on first need (decoding, and counting through a warm word cache, never build
    /// them). None where they do not fit together (one id per token).
    tables: OnceLock<Option<Tables>>,
    /// A cache entry's merges, which `tables` is built from (empty for a model read from a file).
    pending_merges: Vec<(u64, u32, u32)>,
    /// Whether each id is a token written only in byte-level characters (found by its bytes).
    alpha: Vec<bool>,
    /// Byte-level characters to bytes (built once per model: loading looks up 150k merges).
    chars: CharBytes,
    /// Ids of the other model tokens (rare: no merge reaches them), by their text.
    other: FxHashMap<Box<str>, u32>,
    byte_ids: [u32; 256],
    ignore_merges: bool,
    vocab_len: usize,
    added: FxHashMap<u32, Added>,
    added_ids: FxHashMap<Box<str>, u32>,
    /// Model tokens and added tokens, counted once each (`get_vocab_size(true)`).
    vocab_with_added: usize,
}

/// What merging a word needs beyond the vocabulary.
struct Tables {
    /// Ids of the tokens written only in byte-level characters, found by their bytes.
    by_bytes: HashTable<Slot>,
    /// (left id, right id) → (rank, merged id).
    merges: FxHashMap<u64, (u32, u32)>,
}

/// GPT-2's byte-to-character table: printable Latin-1 bytes stand for themselves, the others for 256 + n.
pub(crate) fn byte_alphabet() -> [char; 256] {
    let printable = |b: u8| matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF);
    let mut table = ['\0'; 256];
    let mut next = 256u32;
    for b in 0..=255u8 {
        table[usize::from(b)] = if printable(b) {
            char::from(b)
        } else {
            next += 1;
            char::from_u32(next - 1).unwrap_or('\u{fffd}')
        };
    }
    table
}

/// The byte a byte-level character stands for (the inverse of [`byte_alphabet`]), indexed by code point.
#[derive(Clone, Copy)]
struct CharBytes([u16; 0x144]);

impl CharBytes {
    fn new() -> CharBytes {
        let mut t = [u16::MAX; 0x144];
        for (b, c) in byte_alphabet().iter().enumerate() {
            t[*c as usize] = b as u16;
        }
        CharBytes(t)
    }

    fn byte(&self, c: char) -> Option<u8> {
        self.0.get(c as usize).and_then(|&b| u8::try_from(b).ok())
    }

    /// A token's bytes when all its characters are byte-level ones.
    fn bytes_of(&self, token: &str, out: &mut Vec<u8>) -> bool {
        out.clear();
        for c in token.chars() {
            match self.byte(c) {
                Some(b) => out.push(b),
                None => return false,
            }
        }
        true
    }

    /// The byte-level decoder's bytes of one token: its characters' bytes, or its UTF-8 where any character
    /// is not a byte-level one.
    fn decode_into(&self, token: &str, out: &mut Vec<u8>) {
        let start = out.len();
        for c in token.chars() {
            match self.byte(c) {
                Some(b) => out.push(b),
                None => {
                    out.truncate(start);
                    out.extend_from_slice(token.as_bytes());
                    return;
                }
            }
        }
    }
}

/// An entry of the table of ids by bytes: a token's first 8 bytes and length kept in the entry, so that
/// most lookups compare without reading the arena (loading 150k merges is mostly these lookups).
#[derive(Clone, Copy)]
struct Slot {
    head: u64,
    len: u32,
    id: u32,
}

impl Slot {
    fn new(bytes: &[u8], id: u32) -> Slot {
        Slot {
            head: head_of(bytes),
            len: bytes.len() as u32,
            id,
        }
    }

    /// Whether this is the token of `bytes`.
    fn is(&self, bytes: &[u8], arena: &[u8], spans: &[(u32, u32)]) -> bool {
        self.len as usize == bytes.len()
            && self.head == head_of(bytes)
            && (bytes.len() <= 8 || span_of(arena, spans, self.id) == bytes)
    }
}

fn head_of(bytes: &[u8]) -> u64 {
    match bytes.first_chunk::<8>() {
        Some(h) => u64::from_le_bytes(*h),
        // Byte by byte: a copy of a variable length would be a `memcpy` call.
        None => bytes
            .iter()
            .rev()
            .fold(0u64, |h, &b| (h << 8) | u64::from(b)),
    }
}

fn hash(bytes: &[u8]) -> u64 {
    FxBuildHasher.hash_one(bytes)
}

fn pair(a: u32, b: u32) -> u64 {
    (u64::from(a) << 32) | u64::from(b)
}

impl ByteBpe {
    /// The model of a `tokenizer.json`'s bytes and the JSON of its other parts
    /// ([`crate::fast_load::FileParts::rest`]), where [`ByteBpe::from_file`] reads the model exactly.
    pub(crate) fn read_file(bytes: &[u8]) -> Option<(ByteBpe, String)> {
        let parts: crate::fast_load::FileParts<ModelJson> = serde_json::from_slice(bytes).ok()?;
        let added: Vec<AddedJson> = match parts.added_tokens {
            Some(raw) => serde_json::from_str(raw.get()).ok()?,
            None => Vec::new(),
        };
        let rest = parts.rest();
        Some((ByteBpe::from_file(parts.model, &added)?, rest))
    }

    /// The model of a `tokenizer.json` when [`ByteBpe`] reads it exactly: type BPE, no dropout, no subword
    /// prefix or word suffix (or empty ones), a byte without a token only where `tokenizers` would drop it,
    /// every merge of known tokens, one token per id and one id per token, ids not far past the vocabulary's
    /// size, and added tokens whose ids are the ones `tokenizers` gives them. None otherwise (`tokenizers` is
    /// used instead, and reports what is wrong with the file).
    pub(crate) fn from_file(model: ModelJson<'_>, added: &[AddedJson<'_>]) -> Option<ByteBpe> {
        if model.kind.as_ref().map(|k| k.0.as_ref()) != Some("BPE")
            || model.dropout.is_some_and(|d| d != 0.0)
            // An empty prefix or suffix changes nothing (GPT-2 style files write "").
            || model.continuing_subword_prefix.is_some_and(|p| !p.0.is_empty())
            || model.end_of_word_suffix.is_some_and(|p| !p.0.is_empty())
        {
            return None;
        }
        let mut bpe = Self::vocabulary(&model.vocab.0)?;
        // A byte without a token is left out of its word, as `tokenizers` does without an unknown token or
        // byte fallback (bytes UTF-8 never uses, some control characters); with either, its rules apply.
        if bpe.byte_ids.contains(&NO_TOKEN)
            && (model.unk_token.is_some() || model.byte_fallback == Some(true))
        {
            return None;
        }
        bpe.ignore_merges = model.ignore_merges.unwrap_or(false);
        bpe.read_merges(&model.merges)?;
        bpe.read_added(added)?;
        Some(bpe)
    }

    fn vocabulary(vocab: &[(Cow<'_, str>, u32)]) -> Option<ByteBpe> {
        let max = vocab
            .iter()
            .map(|(_, id)| *id)
            .max()
            .map_or(0, |m| m as usize + 1);
        // Ids index a table: a file with ids far past its size (a few huge ids) is left to `tokenizers`.
        if max > vocab.len().saturating_mul(2).saturating_add(1024) {
            return None;
        }
        let mut bpe = ByteBpe {
            arena: Vec::with_capacity(vocab.len() * 6),
            spans: vec![ABSENT; max],
            alpha: vec![false; max],
            tables: OnceLock::from(Some(Tables {
                by_bytes: HashTable::with_capacity(vocab.len()),
                merges: FxHashMap::default(),
            })),
            pending_merges: Vec::new(),
            other: FxHashMap::default(),
            byte_ids: [NO_TOKEN; 256],
            ignore_merges: false,
            vocab_len: vocab.len(),
            added: FxHashMap::default(),
            added_ids: FxHashMap::default(),
            vocab_with_added: vocab.len(),
            chars: CharBytes::new(),
        };
        let mut buf = Vec::new();
        for (k, id) in vocab {
            let id = *id;
            let slot = bpe.spans.get_mut(id as usize)?;
            if *slot != ABSENT {
                return None; // two tokens for one id
            }
            let start = u32::try_from(bpe.arena.len()).ok()?;
            bpe.chars.decode_into(k, &mut bpe.arena);
            let len = u32::try_from(bpe.arena.len()).ok()? - start;
            *slot = (start, len);
            // A repeated key (JSON allows it; `tokenizers` keeps the last) is left to `tokenizers`.
            if bpe.chars.bytes_of(k, &mut buf) {
                let (arena, spans) = (&bpe.arena, &bpe.spans);
                let by_bytes = &mut bpe.tables.get_mut()?.as_mut()?.by_bytes;
                let entry = by_bytes.entry(
                    hash(&buf),
                    |s| s.is(&buf, arena, spans),
                    |s| hash(span_of(arena, spans, s.id)),
                );
                match entry {
                    hashbrown::hash_table::Entry::Occupied(_) => return None,
                    hashbrown::hash_table::Entry::Vacant(v) => {
                        v.insert(Slot::new(&buf, id));
                    }
                }
                if let [b] = buf[..] {
                    bpe.byte_ids[usize::from(b)] = id;
                }
                bpe.alpha[id as usize] = true;
            } else if bpe.other.insert(k.as_ref().into(), id).is_some() {
                return None;
            }
        }
        Some(bpe)
    }

    fn read_merges(&mut self, merges: &[Merge<'_>]) -> Option<()> {
        let legacy = merges.first().is_some_and(|m| m.legacy);
        if merges.iter().any(|m| m.legacy != legacy) {
            return None; // `tokenizers` rejects a mixed list
        }
        let chars = self.chars;
        let (mut a_bytes, mut b_bytes) = (Vec::new(), Vec::new());
        self.tables_mut()?.merges.reserve(merges.len());
        let mut next_guess = u32::MAX;
        for (rank, (a, b)) in merges.iter().filter_map(|m| m.pair.as_ref()).enumerate() {
            if !chars.bytes_of(a, &mut a_bytes) || !chars.bytes_of(b, &mut b_bytes) {
                return None;
            }
            let a_id = self.id_of_bytes(&a_bytes)?;
            let b_id = self.id_of_bytes(&b_bytes)?;
            a_bytes.extend_from_slice(&b_bytes);
            // Most vocabularies number merged tokens in merge order (Qwen2: all 151,387 merges): the id after
            // the previous merge's is tried first, by its bytes, before the table.
            let guess = next_guess;
            let new_id = if self.alpha.get(guess as usize) == Some(&true)
                && self.span(guess) == Some(&a_bytes[..])
            {
                guess
            } else {
                self.id_of_bytes(&a_bytes)?
            };
            next_guess = new_id.wrapping_add(1);
            // A repeated pair: the last one counts (as when `tokenizers` collects its merge map).
            self.tables_mut()?
                .merges
                .insert(pair(a_id, b_id), (u32::try_from(rank).ok()?, new_id));
        }
        Some(())
    }

    /// Mirrors `tokenizers`' `add_tokens` (model ids for tokens in the vocabulary, new ids after it for the
    /// others, a repeated content keeping its id) and checks the ids against the file's.
    fn read_added(&mut self, added: &[AddedJson<'_>]) -> Option<()> {
        let chars = self.chars;
        let mut next = u32::try_from(self.vocab_len).ok()?;
        for t in added {
            let content = t.content.0.as_ref();
            if content.is_empty() {
                continue;
            }
            let id = match self
                .added_ids
                .get(content)
                .copied()
                .or_else(|| self.token_to_id_model(content))
            {
                Some(id) => id,
                None => {
                    next += 1;
                    next - 1
                }
            };
            if id != t.id {
                return None;
            }
            if !self.added_ids.contains_key(content) && self.token_to_id_model(content).is_none() {
                self.vocab_with_added += 1;
            }
            self.added_ids.insert(content.into(), id);
            let mut bytes = Vec::new();
            chars.decode_into(content, &mut bytes);
            self.added.insert(
                id,
                Added {
                    content: content.into(),
                    bytes: bytes.into(),
                    special: t.special,
                },
            );
        }
        Some(())
    }

    fn span(&self, id: u32) -> Option<&[u8]> {
        let &(start, len) = self.spans.get(id as usize)?;
        if (start, len) == ABSENT {
            return None;
        }
        self.arena
            .get(start as usize..start as usize + len as usize)
    }

    /// The tables encoding needs, built now from a cache entry's if they were not (see [`ByteBpe::tables`]).
    fn tables(&self) -> Option<&Tables> {
        self.tables
            .get_or_init(|| {
                Some(Tables {
                    by_bytes: cache::by_bytes(&self.arena, &self.spans, &self.alpha)?,
                    merges: self
                        .pending_merges
                        .iter()
                        .map(|&(ab, rank, id)| (ab, (rank, id)))
                        .collect(),
                })
            })
            .as_ref()
    }

    /// Whether the encoding tables were built (tests: a warm word cache never needs them).
    #[cfg(test)]
    pub(crate) fn tables_built(&self) -> bool {
        self.tables.get().is_some()
    }

    fn tables_mut(&mut self) -> Option<&mut Tables> {
        self.tables.get_mut()?.as_mut()
    }

    fn id_of_bytes(&self, bytes: &[u8]) -> Option<u32> {
        self.tables()?
            .by_bytes
            .find(hash(bytes), |s| s.is(bytes, &self.arena, &self.spans))
            .map(|s| s.id)
    }

    fn token_to_id_model(&self, token: &str) -> Option<u32> {
        let mut buf = Vec::new();
        if self.chars.bytes_of(token, &mut buf) {
            self.id_of_bytes(&buf)
        } else {
            self.other.get(token).copied()
        }
    }

    /// `tokenizers`' `token_to_id`: an added token's id, else the model's.
    pub(crate) fn token_to_id(&self, token: &str) -> Option<u32> {
        self.added_ids
            .get(token)
            .copied()
            .or_else(|| self.token_to_id_model(token))
    }

    /// The model's vocabulary size (`get_vocab_size(false)`).
    pub(crate) fn vocab_len(&self) -> usize {
        self.vocab_len
    }

    /// `get_vocab_size(true)`: model and added tokens, each text once.
    pub(crate) fn vocab_with_added(&self) -> usize {
        self.vocab_with_added
    }

    /// Whether `id` is an added token marked special.
    pub(crate) fn is_special(&self, id: u32) -> bool {
        self.added.get(&id).is_some_and(|a| a.special)
    }

    /// Every added token's text.
    pub(crate) fn added_contents(&self) -> Vec<String> {
        self.added.values().map(|a| a.content.to_string()).collect()
    }

    /// `tokenizers`' `decode(ids, false)` with a `ByteLevel` decoder: added tokens by their text, model tokens
    /// by their bytes, unknown ids left out, invalid UTF-8 replaced.
    pub(crate) fn decode(&self, ids: &[u32]) -> String {
        let mut out = Vec::with_capacity(ids.len() * 4);
        for &id in ids {
            if let Some(a) = self.added.get(&id) {
                out.extend_from_slice(&a.bytes);
            } else if let Some(s) = self.span(id) {
                out.extend_from_slice(s);
            }
        }
        match String::from_utf8(out) {
            Ok(s) => s,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        }
    }

    /// The ids of one pre-token (a word's bytes, not empty), as `tokenizers`' BPE gives them. None only for
    /// a model read from a cache entry whose tables do not fit together (a forged entry: the checksum
    /// passed); [`crate::Tokenizer`] reports it.
    pub(crate) fn word_ids(&self, word: &[u8]) -> Option<Vec<u32>> {
        let tables = self.tables()?;
        if self.ignore_merges {
            if let Some(id) = self.id_of_bytes(word) {
                return Some(vec![id]);
            }
        }
        Some(match word {
            [b] => match self.byte_ids[usize::from(*b)] {
                NO_TOKEN => Vec::new(),
                id => vec![id],
            },
            _ => Self::merge_all(&self.byte_ids, &tables.merges, word),
        })
    }

    /// `tokenizers`' `Word::merge_all` without dropout: a queue of (rank, position, merged id), stale entries
    /// skipped when popped.
    fn merge_all(
        byte_ids: &[u32; 256],
        merges: &FxHashMap<u64, (u32, u32)>,
        word: &[u8],
    ) -> Vec<u32> {
        const NONE: u32 = u32::MAX;
        let ids: Vec<u32> = word
            .iter()
            .map(|&b| byte_ids[usize::from(b)])
            .filter(|&id| id != NO_TOKEN)
            .collect();
        let n = ids.len() as u32;
        // (id, prev, next); a merged-away symbol has id NONE.
        let mut sym: Vec<(u32, u32, u32)> = ids
            .into_iter()
            .zip(0..)
            .map(|(id, i)| {
                let next = if i + 1 < n { i + 1 } else { NONE };
                let prev = if i == 0 { NONE } else { i - 1 };
                (id, prev, next)
            })
            .collect();
        let mut queue: BinaryHeap<Reverse<(u32, u32, u32)>> = BinaryHeap::with_capacity(word.len());
        for i in 0..sym.len().saturating_sub(1) {
            if let Some(&(rank, new)) = merges.get(&pair(sym[i].0, sym[i + 1].0)) {
                queue.push(Reverse((rank, i as u32, new)));
            }
        }
        while let Some(Reverse((_, pos, new))) = queue.pop() {
            let p = pos as usize;
            let (id, prev, next) = sym[p];
            if id == NONE || next == NONE {
                continue;
            }
            let n = next as usize;
            if merges
                .get(&pair(id, sym[n].0))
                .is_none_or(|&(_, m)| m != new)
            {
                continue; // stale
            }
            let after = sym[n].2;
            sym[p] = (new, prev, after);
            sym[n].0 = NONE;
            if after != NONE {
                sym[after as usize].1 = pos;
            }
            if prev != NONE {
                if let Some(&(rank, m)) = merges.get(&pair(sym[prev as usize].0, new)) {
                    queue.push(Reverse((rank, prev, m)));
                }
            }
            if after != NONE {
                if let Some(&(rank, m)) = merges.get(&pair(new, sym[after as usize].0)) {
                    queue.push(Reverse((rank, pos, m)));
                }
            }
        }
        sym.into_iter()
            .filter(|s| s.0 != NONE)
            .map(|s| s.0)
            .collect()
    }
}

fn span_of<'a>(arena: &'a [u8], spans: &[(u32, u32)], id: u32) -> &'a [u8] {
    match spans.get(id as usize) {
        Some(&(start, len)) if (start, len) != ABSENT => arena
            .get(start as usize..start as usize + len as usize)
            .unwrap_or(&[]),
        _ => &[],
    }
}
