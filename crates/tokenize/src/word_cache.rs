//! Token ids through a cache of pre-tokens, for byte-level BPE tokenizers.
//!
//! A byte-level BPE tokenizer (GPT-2, Llama 3, Qwen2, SmolLM2, DeepSeek V3/R1) encodes a text without added
//! tokens in three steps: a regex (or several in turn: DeepSeek's) splits it into pre-tokens ("words"), each word's bytes are mapped to the byte-level alphabet,
//! and BPE merges each word alone. So the ids of a text are the concatenation of the ids of its words, and a
//! word seen once need not be merged again. [`WordCache`] does exactly these steps with the tokenizer's own
//! regex and its own BPE model, and keeps each word's ids: counting the 256,000 output tokens of a bench run
//! costs one regex pass and one hash lookup per word instead of `tokenizers`' full pipeline (alignments for
//! every byte, a `String` per token, an `Encoding`). Only tokenizers that are exactly this pipeline get a
//! cache ([`WordCache::new`]), and only texts it covers use it ([`WordCache::prepared`]): no added token in the
//! text; where a Unicode normal form is configured, text not surely in that form is normalized first, as the
//! normalizer would. Everything else goes through `tokenizers`, and tests check both ways give the same ids. A word not in the cache is
//! merged by [`crate::byte_bpe::ByteBpe`] where the tokenizer has one, else by `tokenizers`' own model.

mod ascii_split;

use crate::byte_bpe::{byte_alphabet, ByteBpe};
use aho_corasick::AhoCorasick;
use ascii_split::{AsciiSplit, Found};
use hashbrown::HashTable;
use serde_json::Value;
use std::cell::RefCell;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use tokenizers::Model;
use unicode_normalization_alignments as unf;

/// The pre-tokenizer regex of `ByteLevel` with `use_regex: true` (GPT-2's published pattern, which
/// `tokenizers` compiles internally and does not serialize).
const GPT2_PATTERN: &str =
    r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

/// Words kept per shard; past this, new words are merged every time (bounded memory on endless new text).
const SHARD_CAPACITY: usize = 1 << 15;
const SHARDS: usize = 16;

/// A shard's words and their ids, found by the word's [`word_hash`] (computed once a word: it also picks the shard).
type Shard = Mutex<HashTable<(Box<str>, Box<[u32]>)>>;

/// Caches told apart in [`THREAD_REGEXES`].
static NEXT_ID: AtomicU64 = AtomicU64::new(0);
/// Regexes kept per thread (the most recent few caches).
const THREAD_REGEXES_KEPT: usize = 4;

thread_local! {
    /// Each thread's own copy of a cache's regex: a regex's scratch space comes from a pool that is fast for
    /// the thread that used it first and takes a lock for every other (prompts are cut on one thread, outputs
    /// counted on another).
    static THREAD_REGEXES: RefCell<Vec<(u64, Vec<Splitter>)>> = const { RefCell::new(Vec::new()) };
}

/// The word splitter, the byte-level alphabet and the cache of one tokenizer.
pub(crate) struct WordCache {
    id: u64,
    /// One splitter per `Split` of the pre-tokenizer, applied in turn to each piece of the one before.
    splitters: Vec<Splitter>,
    /// Every added token's text: a text that contains one is left to `tokenizers`.
    added: Option<AhoCorasick>,
    /// The Unicode normal forms the normalizer applies: only text already in them is covered.
    forms: Vec<Form>,
    byte_char: [char; 256],
    shards: Vec<Shard>,
}

/// A Unicode normal form of the normalizer.
#[derive(Clone, Copy, Debug)]
enum Form {
    Nfc,
    Nfkc,
    Nfd,
    Nfkd,
}

impl Form {
    fn of(name: &str) -> Option<Form> {
        Some(match name {
            "NFC" => Form::Nfc,
            "NFKC" => Form::Nfkc,
            "NFD" => Form::Nfd,
            "NFKD" => Form::Nfkd,
            _ => return None,
        })
    }

    /// `text` in this form, as `tokenizers`' normalizer gives it (the same crate and call).
    fn apply(self, text: &str) -> String {
        use unf::UnicodeNormalization;
        match self {
            Form::Nfc => text.nfc().map(|(c, _)| c).collect(),
            Form::Nfkc => text.nfkc().map(|(c, _)| c).collect(),
            Form::Nfd => text.nfd().map(|(c, _)| c).collect(),
            Form::Nfkd => text.nfkd().map(|(c, _)| c).collect(),
        }
    }

    /// Whether `text` is surely in this form already (the quick check of the same Unicode tables
    /// `tokenizers` normalizes with; its "maybe" counts as no).
    fn holds(self, text: &str) -> bool {
        let quick = match self {
            Form::Nfc => unf::is_nfc_quick(text.chars()),
            Form::Nfkc => unf::is_nfkc_quick(text.chars()),
            Form::Nfd => unf::is_nfd_quick(text.chars()),
            Form::Nfkd => unf::is_nfkd_quick(text.chars()),
        };
        quick == unf::IsNormalized::Yes
    }
}

/// Who merges a word the cache has not seen.
#[derive(Clone, Copy)]
pub(crate) enum Merger<'a> {
    Bpe(&'a ByteBpe),
    Model(&'a tokenizers::ModelWrapper),
}

impl WordCache {
    /// A cache when `tok` is exactly regex split + byte-level map + BPE without dropout (see the module
    /// documentation); None otherwise.
    pub(crate) fn for_tokenizer(tok: &tokenizers::Tokenizer) -> Option<WordCache> {
        let tokenizers::ModelWrapper::BPE(bpe) = tok.get_model() else {
            return None;
        };
        if bpe.dropout.is_some_and(|d| d > 0.0) {
            return None;
        }
        let added = tok
            .get_added_tokens_decoder()
            .into_values()
            .map(|t| t.content)
            .collect();
        Self::new(tok, added)
    }

    /// A cache for the pipeline of `tok` (its model aside: the caller checks it is BPE without dropout) with
    /// these added tokens; None where the pipeline is not regex split + byte-level map.
    pub(crate) fn new(tok: &tokenizers::Tokenizer, added: Vec<String>) -> Option<WordCache> {
        if tok.get_truncation().is_some() || tok.get_padding().is_some() {
            return None;
        }
        let forms = normal_forms(tok)?
            .iter()
            .map(|f| Form::of(f))
            .collect::<Option<Vec<_>>>()?;
        let splitters = split_patterns(tok)?
            .iter()
            .map(|p| Splitter::new(p))
            .collect();
        let added: Vec<String> = added.into_iter().filter(|c| !c.is_empty()).collect();
        let added = if added.is_empty() {
            None
        } else {
            Some(AhoCorasick::new(&added).ok()?)
        };
        Some(WordCache {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            splitters,
            added,
            forms,
            byte_char: byte_alphabet(),
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
        })
    }

    /// Whether words are found with the `regex` crate (see [`Splitter`]).
    #[cfg(test)]
    pub(crate) fn splitter_has_fast_path(&self) -> bool {
        self.splitters.iter().all(|s| s.fast.is_some())
    }

    /// Whether this cache gives `text`'s ids (else `tokenizers` must): no added token in it.
    pub(crate) fn covers(&self, text: &str) -> bool {
        self.added.as_ref().is_none_or(|a| !a.is_match(text))
    }

    /// The text whose words give `text`'s ids: `text` itself, or, where the normalizer would change it, the
    /// normalized text (the normalizer runs before the split). None where the cache does not cover `text`.
    pub(crate) fn prepared<'a>(&self, text: &'a str) -> Option<std::borrow::Cow<'a, str>> {
        if !self.covers(text) {
            return None;
        }
        // Every normal form leaves ASCII as it is; the quick check spares the rest most of the work.
        if self.forms.is_empty() || text.is_ascii() || self.forms.iter().all(|f| f.holds(text)) {
            return Some(std::borrow::Cow::Borrowed(text));
        }
        let normal = self.forms.iter().fold(text.to_string(), |t, f| f.apply(&t));
        // An added token the normal form made (a compatibility form can) is left to `tokenizers` too.
        self.covers(&normal)
            .then_some(std::borrow::Cow::Owned(normal))
    }

    /// Keeps these words and their ids (read back from the on-disk cache: the ids this cache would give
    /// them), as far as the shards have room.
    pub(crate) fn seed(&self, words: Vec<(Box<str>, Box<[u32]>)>) {
        for (word, ids) in words {
            let hash = word_hash(&word);
            let Ok(mut m) = self.shards[shard_of(hash)].lock() else {
                continue;
            };
            if m.len() < SHARD_CAPACITY {
                let is_word = |(w, _): &(Box<str>, Box<[u32]>)| *w == word;
                let rehash = |(w, _): &(Box<str>, Box<[u32]>)| word_hash(w);
                if let hashbrown::hash_table::Entry::Vacant(v) = m.entry(hash, is_word, rehash) {
                    v.insert((word, ids));
                }
            }
        }
    }

    /// Calls `each` with the ids of every word of `text`, in order (a text [`Self::covers`]).
    pub(crate) fn for_each_word(
        &self,
        model: Merger<'_>,
        text: &str,
        mut each: impl FnMut(&[u32]),
    ) -> Result<(), String> {
        self.for_each_word_text(model, text, |_, ids| each(ids))
    }

    /// [`Self::for_each_word`] with each word's text too.
    pub(crate) fn for_each_word_text<'t>(
        &self,
        model: Merger<'_>,
        text: &'t str,
        mut each: impl FnMut(&'t str, &[u32]),
    ) -> Result<(), String> {
        THREAD_REGEXES.with(|cell| {
            let mut kept = cell.borrow_mut();
            let at = match kept.iter().position(|(id, _)| *id == self.id) {
                Some(at) => at,
                None => {
                    if kept.len() == THREAD_REGEXES_KEPT {
                        kept.remove(0);
                    }
                    kept.push((self.id, self.splitters.clone()));
                    kept.len() - 1
                }
            };
            self.split(model, &kept[at].1, text, &mut each)
        })
    }

    /// Splits `text` with the first splitter, each piece (matches and the text between them, as `Split` with
    /// `Isolated` keeps both) with the next, and so on; the pieces of the last are the words.
    fn split<'t>(
        &self,
        model: Merger<'_>,
        splitters: &[Splitter],
        text: &'t str,
        each: &mut impl FnMut(&'t str, &[u32]),
    ) -> Result<(), String> {
        let Some((splitter, rest)) = splitters.split_first() else {
            return self.word(model, text, each);
        };
        let mut piece = |p: &'t str| {
            if rest.is_empty() {
                self.word(model, p, each)
            } else {
                self.split(model, rest, p, each)
            }
        };
        let mut prev = 0;
        let mut at = 0;
        while let Some((start, end)) = splitter.next_match(text, at) {
            if start > prev {
                piece(&text[prev..start])?;
            }
            if end > start {
                piece(&text[start..end])?;
            }
            prev = end;
            // An empty match moves on by one character (none of these patterns has one).
            at = if end > start {
                end
            } else {
                match text[end..].chars().next() {
                    Some(c) => end + c.len_utf8(),
                    None => break,
                }
            };
        }
        if prev < text.len() {
            piece(&text[prev..])?;
        }
        Ok(())
    }

    fn word<'t>(
        &self,
        model: Merger<'_>,
        word: &'t str,
        each: &mut impl FnMut(&'t str, &[u32]),
    ) -> Result<(), String> {
        let hash = word_hash(word);
        let shard = &self.shards[shard_of(hash)];
        let is_word = |(w, _): &(Box<str>, Box<[u32]>)| &**w == word;
        // A hit is handed over under the lock (the callers only copy or count the ids): no copy per word.
        if let Ok(m) = shard.lock() {
            if let Some((_, ids)) = m.find(hash, is_word) {
                each(word, ids);
                return Ok(());
            }
        }
        let ids: Box<[u32]> = match model {
            Merger::Bpe(bpe) => bpe
                .word_ids(word.as_bytes())
                .ok_or_else(|| {
                    format!(
                        "the tokenizer model read from servebench's on-disk cache is damaged (two tokens \
                         with the same bytes): remove the `tokenizers` folder under ${} (default \
                         ~/.cache/servebench) and run again",
                        crate::disk::DIR_VAR
                    )
                })?
                .into(),
            Merger::Model(model) => {
                let mapped: String = word
                    .bytes()
                    .map(|b| self.byte_char[usize::from(b)])
                    .collect();
                model
                    .tokenize(&mapped)
                    .map_err(|e| e.to_string())?
                    .into_iter()
                    .map(|t| t.id)
                    .collect()
            }
        };
        each(word, &ids);
        if let Ok(mut m) = shard.lock() {
            if m.len() < SHARD_CAPACITY {
                // Another thread may have added it meanwhile (with the same ids).
                let rehash = |(w, _): &(Box<str>, Box<[u32]>)| word_hash(w);
                if let hashbrown::hash_table::Entry::Vacant(v) = m.entry(hash, is_word, rehash) {
                    v.insert((word.into(), ids));
                }
            }
        }
        Ok(())
    }
}

/// The pre-tokenizer's word regex. Its last two branches are almost always `\s+(?!\S)|\s+` (GPT-2, Llama 3,
/// Qwen2): one look-ahead that sends `fancy_regex` to its backtracking VM for every word. So where the rest
/// of the pattern has no look-around, words are found with the `regex` crate and those two branches as
/// `\s+`, which gives the same word except for one case: a run of two or more whitespace characters followed
/// by more text, where the look-ahead leaves the last one to the next word (and where an earlier branch
/// may have matched instead). There, and only there, the original pattern decides.
///
/// Words are searched anchored first: these patterns cover every character, so the next word almost always
/// starts where the last one ended, and an anchored search finds it with one forward pass (an unanchored one
/// also runs backwards to find the start). Where no word starts there, the unanchored search decides; both
/// give the leftmost-first match.
#[derive(Clone)]
pub(crate) struct Splitter {
    /// Words of ASCII text found by hand, for Llama 3's, Qwen2's and DeepSeek's patterns ([`AsciiSplit`]).
    ascii: Option<AsciiSplit>,
    /// The pattern as `tokenizers` compiles it, built on first need (~15M instructions): only a whitespace run
    /// the `regex` crate's match leaves ambiguous needs it (ShareGPT's corpus has a few; text without such
    /// runs never compiles it). The pattern is
    /// the one `tokenizers` compiled with the same crate when it read the pre-tokenizer, so it compiles.
    /// Shared by the threads' copies of the splitter (compiled once, not once a thread).
    exact: std::sync::Arc<std::sync::OnceLock<Option<fancy_regex::Regex>>>,
    pattern: String,
    fast: Option<regex_automata::meta::Regex>,
    /// `fast` is the pattern with its look-ahead tail rewritten (else it is the pattern itself).
    rewritten: bool,
}

const LOOKAHEAD_TAIL: &str = r"|\s+(?!\S)|\s+";

impl Splitter {
    fn new(pattern: &str) -> Splitter {
        let rewritten = pattern
            .strip_suffix(LOOKAHEAD_TAIL)
            .and_then(|head| regex_automata::meta::Regex::new(&format!(r"{head}|\s+")).ok());
        // A pattern without look-around (DeepSeek's digit and CJK splits) compiles as it is: `fancy_regex`
        // hands such a pattern to the `regex` crate too, so the matches are the same.
        let (fast, rewritten) = match rewritten {
            Some(r) => (Some(r), true),
            None => (regex_automata::meta::Regex::new(pattern).ok(), false),
        };
        Splitter {
            ascii: AsciiSplit::for_pattern(pattern),
            exact: Default::default(),
            pattern: pattern.to_string(),
            fast,
            rewritten,
        }
    }

    /// The next match at or after byte `at`, as `tokenizers` finds it; None at the end, or where the
    /// backtracking VM gives up (`tokenizers` then ends the split there too).
    fn next_match(&self, text: &str, at: usize) -> Option<(usize, usize)> {
        match self.ascii.map(|a| a.next_word(text.as_bytes(), at)) {
            Some(Found::Word(start, end)) => return Some((start, end)),
            Some(Found::NoWord) => return None,
            Some(Found::Undecided) | None => {}
        }
        if let Some(fast) = &self.fast {
            let input = regex_automata::Input::new(text).range(at..);
            let m = fast
                .search(&input.clone().anchored(regex_automata::Anchored::Yes))
                .or_else(|| fast.search(&input))?;
            let piece = &text[m.start()..m.end()];
            let ambiguous = self.rewritten
                && m.end() < text.len()
                && piece.chars().nth(1).is_some()
                && piece.chars().all(char::is_whitespace);
            if !ambiguous {
                return Some((m.start(), m.end()));
            }
            return self.exact_at(text, m.start());
        }
        self.exact_at(text, at)
    }

    fn exact_at(&self, text: &str, at: usize) -> Option<(usize, usize)> {
        let exact = self
            .exact
            .get_or_init(|| fancy_regex::Regex::new(&self.pattern).ok());
        match exact.as_ref()?.find_from_pos(text, at) {
            Ok(Some(m)) => Some((m.start(), m.end())),
            _ => None,
        }
    }
}

fn word_hash(word: &str) -> u64 {
    rustc_hash::FxBuildHasher.hash_one(word)
}

/// The shard of a word: bits of its hash that the shard's table does not use for its buckets (the low bits) or
/// its control bytes (the top 7).
fn shard_of(hash: u64) -> usize {
    (hash >> 40) as usize % SHARDS
}

fn json<T: serde::Serialize>(v: Option<&T>) -> Value {
    v.and_then(|v| serde_json::to_value(v).ok())
        .unwrap_or(Value::Null)
}

fn kind(v: &Value) -> &str {
    v.get("type").and_then(Value::as_str).unwrap_or("")
}

/// The Unicode normal forms the normalizer applies: empty without one, None when it does anything else.
pub(crate) fn normal_forms(tok: &tokenizers::Tokenizer) -> Option<Vec<String>> {
    let n = json(tok.get_normalizer());
    let form = |v: &Value| {
        let k = kind(v);
        matches!(k, "NFC" | "NFKC" | "NFD" | "NFKD").then(|| k.to_string())
    };
    match &n {
        Value::Null => Some(Vec::new()),
        v if kind(v) == "Sequence" => v.get("normalizers")?.as_array()?.iter().map(form).collect(),
        v => form(v).map(|f| vec![f]),
    }
}

/// The word regexes, in order, when the pre-tokenizer is byte-level after regex splits: `ByteLevel` with its
/// own regex, or one or more `Split`s (isolated, not inverted) followed by `ByteLevel` without one (DeepSeek
/// V3/R1: digits, then CJK runs, then words); never with a prefix space.
pub(crate) fn split_patterns(tok: &tokenizers::Tokenizer) -> Option<Vec<String>> {
    let pre = json(tok.get_pre_tokenizer());
    let byte_level = |v: &Value, regex: bool| {
        kind(v) == "ByteLevel"
            && v.get("add_prefix_space") == Some(&Value::Bool(false))
            && v.get("use_regex") == Some(&Value::Bool(regex))
    };
    if byte_level(&pre, true) {
        return Some(vec![GPT2_PATTERN.to_string()]);
    }
    if kind(&pre) != "Sequence" {
        return None;
    }
    let (bl, splits) = pre.get("pretokenizers")?.as_array()?.split_last()?;
    if splits.is_empty() || !byte_level(bl, false) {
        return None;
    }
    splits
        .iter()
        .map(|split| {
            let ok = kind(split) == "Split"
                && split.get("behavior").and_then(Value::as_str) == Some("Isolated")
                && split.get("invert") == Some(&Value::Bool(false));
            if !ok {
                return None;
            }
            split
                .get("pattern")?
                .get("Regex")?
                .as_str()
                .map(str::to_string)
        })
        .collect()
}
