//! Loading `tokenizer.json` and counting tokens.

use crate::byte_bpe::cache as bpe_cache;
use crate::byte_bpe::ByteBpe;
use crate::disk::Key;
use crate::encoded_cache;
use crate::word_cache::{Merger, WordCache};
use crate::{ChatTemplate, TokenizeError};
use serde_json::Value;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use tokenizers::processors::template::TemplateProcessing;

pub(crate) const BUILTIN_GZ: &[u8] = include_bytes!("../assets/smollm2-tokenizer.json.gz");
const BUILTIN_TEMPLATE: &str = include_str!("../assets/smollm2-chat_template.jinja");
const BUILTIN_CONFIG: &str = include_str!("../assets/smollm2-tokenizer_config.json");

/// A tokenizer plus what the model folder says about chat formatting.
pub struct Tokenizer {
    pipeline: Pipeline,
    /// Where it came from (a path, or "builtin:smollm2").
    pub source: String,
    pub chat_template: Option<ChatTemplate>,
    /// `clean_up_tokenization_spaces` from `tokenizer_config.json` (transformers applies it in `decode`).
    pub clean_up_spaces: bool,
    /// Ids by word for byte-level BPE tokenizers (`encode`, `count`): the same ids, without `tokenizers`'
    /// per-byte bookkeeping.
    words: Option<WordCache>,
    /// The on-disk cache folder and this tokenizer file's content key (None: no cache).
    disk: Option<(PathBuf, Key)>,
}

/// `tokenizers`' pipeline: built at load, or, for a byte-level BPE that [`ByteBpe`] reads, on first need.
enum Pipeline {
    Built(Box<tokenizers::Tokenizer>),
    Lazy(Box<LazyPipeline>),
}

/// A byte-level BPE tokenizer whose counting, cutting and decoding need no `tokenizers` model: the rare
/// texts the word cache does not cover, and the calls only `tokenizers` answers, build it then.
struct LazyPipeline {
    bpe: ByteBpe,
    /// Every part but the model and the added tokens (normalizer, pre-tokenizer, post-processor, decoder).
    shell: tokenizers::Tokenizer,
    /// The decoder is `ByteLevel` alone: [`ByteBpe::decode`] decodes as it does.
    byte_decoder: bool,
    /// The file's content (or where to read it) and name, for the full build.
    source: Source,
    file: String,
    /// The post-processor the tokenizer class asks for (see `class_post_processor`).
    class_post: Option<TemplateProcessing>,
    full: OnceLock<Result<tokenizers::Tokenizer, String>>,
    /// Whether the model came from the on-disk cache ([`bpe_cache`]).
    from_cache: bool,
}

impl LazyPipeline {
    /// None where [`ByteBpe`] does not read the file exactly or no word cache applies (the caller builds
    /// `tokenizers`' pipeline at once, which also reports what is wrong with the file).
    fn try_new(
        source: &mut Source,
        config: &Value,
        file: &str,
        cache: Option<(&Path, Key)>,
    ) -> Result<Option<(LazyPipeline, WordCache)>, TokenizeError> {
        let hit = cache.and_then(|(dir, key)| bpe_cache::load(dir, &key));
        let from_cache = hit.is_some();
        let (bpe, rest) = match hit {
            Some(hit) => hit,
            None => {
                let Some(read) = ByteBpe::read_file(source.bytes()?) else {
                    return Ok(None);
                };
                if let Some((dir, key)) = cache {
                    bpe_cache::store(dir, &key, &read.0, &read.1);
                }
                read
            }
        };
        let Some(mut shell) = crate::fast_load::shell_of(&rest) else {
            return Ok(None);
        };
        let Some(words) = WordCache::new(&shell, bpe.added_contents()) else {
            return Ok(None);
        };
        let class_post = class_post_processor(config, file, |t| bpe.token_to_id(t))?;
        if let Some(pp) = &class_post {
            shell.with_post_processor(Some(pp.clone()));
        }
        let byte_decoder = json_kind(shell.get_decoder()) == Some("ByteLevel".into());
        let lazy = LazyPipeline {
            bpe,
            shell,
            byte_decoder,
            source: Source::Read(Vec::new()),
            file: file.to_string(),
            class_post,
            full: OnceLock::new(),
            from_cache,
        };
        Ok(Some((lazy, words)))
    }

    fn full(&self) -> Result<&tokenizers::Tokenizer, TokenizeError> {
        // A file that cannot be read again, or changed, is reported as such (and not kept: a later call
        // tries again).
        let bytes = match self.full.get() {
            Some(_) => Default::default(),
            None => self.source.read()?,
        };
        let built = self.full.get_or_init(|| {
            let mut t =
                crate::fast_load::tokenizer_from_bytes(&bytes).map_err(|e| e.to_string())?;
            if let Some(pp) = &self.class_post {
                t.with_post_processor(Some(pp.clone()));
            }
            Ok(t)
        });
        built.as_ref().map_err(|message| TokenizeError::Parse {
            path: self.file.clone(),
            message: message.clone(),
        })
    }
}

/// The `type` of a serialized part.
fn json_kind<T: serde::Serialize>(part: Option<&T>) -> Option<String> {
    let v = serde_json::to_value(part?).ok()?;
    v.get("type")?.as_str().map(str::to_string)
}

/// `tokenizers`' pipeline of a file's bytes, with the word cache where one applies: lazily for a byte-level
/// BPE [`ByteBpe`] reads, else built now (errors name `file`).
fn pipeline_of(
    mut source: Source,
    config: &Value,
    file: &str,
    cache: Option<(&Path, Key)>,
) -> Result<(Pipeline, Option<WordCache>), TokenizeError> {
    if let Some((mut lazy, words)) = LazyPipeline::try_new(&mut source, config, file, cache)? {
        lazy.source = source;
        return Ok((Pipeline::Lazy(Box::new(lazy)), Some(words)));
    }
    let mut inner = crate::fast_load::tokenizer_from_bytes(source.bytes()?).map_err(|e| {
        TokenizeError::Parse {
            path: file.to_string(),
            message: e.to_string(),
        }
    })?;
    if let Some(pp) = class_post_processor(config, file, |t| inner.token_to_id(t))? {
        inner.with_post_processor(Some(pp));
    }
    let words = WordCache::for_tokenizer(&inner);
    Ok((Pipeline::Built(Box::new(inner)), words))
}

/// A `tokenizer.json`'s content: read, or known by its content key ([`crate::stamp`], in the cache folder
/// `dir`) and read on first need.
enum Source {
    Read(Vec<u8>),
    Known {
        path: PathBuf,
        key: Key,
        dir: PathBuf,
    },
}

impl Source {
    /// The content, read now if it was not (and checked against its key).
    fn bytes(&mut self) -> Result<&[u8], TokenizeError> {
        if let Source::Known { .. } = self {
            *self = Source::Read(self.read()?.into_owned());
        }
        match self {
            Source::Read(bytes) => Ok(bytes),
            Source::Known { .. } => unreachable!("read just above"),
        }
    }

    /// The content, read from the file where it is not held (and checked against its key: content without
    /// it is refused, and the stamp that named it forgotten, so that the next load reads the file).
    fn read(&self) -> Result<std::borrow::Cow<'_, [u8]>, TokenizeError> {
        match self {
            Source::Read(bytes) => Ok(bytes.into()),
            Source::Known { path, key, dir } => {
                let bytes = read_maybe_gz(path)?;
                if Key::of(&bytes) != *key {
                    crate::stamp::forget(dir, path);
                    return Err(TokenizeError::Changed(path.display().to_string()));
                }
                Ok(bytes.into())
            }
        }
    }
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer")
            .field("source", &self.source)
            .field("chat_template", &self.chat_template.is_some())
            .finish()
    }
}

fn io_err(path: &Path, source: std::io::Error) -> TokenizeError {
    TokenizeError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// A tokenizer file's content and, with a cache folder, its content key: known from the file's stamp without
/// reading it where the file is unchanged since it was last read, else read (and stamped).
fn content_of(file: &Path, cache: Option<&Path>) -> Result<(Source, Option<Key>), TokenizeError> {
    let Some(dir) = cache else {
        return Ok((Source::Read(read_maybe_gz(file)?), None));
    };
    if let Some(key) = crate::stamp::known_key(dir, file) {
        let (path, dir) = (file.to_path_buf(), dir.to_path_buf());
        return Ok((Source::Known { path, key, dir }, Some(key)));
    }
    let before = crate::stamp::Identity::of(file);
    let bytes = read_maybe_gz(file)?;
    let key = Key::of(&bytes);
    crate::stamp::record(dir, file, before, &key);
    Ok((Source::Read(bytes), Some(key)))
}

#[cfg(test)]
thread_local! {
    /// Tokenizer files read by this thread (tests: a stamped file is not read).
    static FILE_READS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

fn read_maybe_gz(path: &Path) -> Result<Vec<u8>, TokenizeError> {
    #[cfg(test)]
    FILE_READS.with(|n| n.set(n.get() + 1));
    let raw = std::fs::read(path).map_err(|e| io_err(path, e))?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(raw.as_slice())
            .read_to_end(&mut out)
            .map_err(|e| io_err(path, e))?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

/// Token string of a `tokenizer_config.json` entry (a string or an `AddedToken` object).
fn token_str(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => o
            .get("content")
            .and_then(|c| c.as_str())
            .map(str::to_string),
        _ => None,
    }
}

/// The chat template in a `tokenizer_config.json` (a string, or a list of named templates: "default" wins).
fn template_in_config(cfg: &Value) -> Option<String> {
    match cfg.get("chat_template")? {
        Value::String(s) => Some(s.clone()),
        Value::Array(list) => {
            let named = |n: &str| {
                list.iter().find_map(|t| {
                    (t.get("name")?.as_str()? == n)
                        .then(|| t.get("template")?.as_str().map(str::to_string))
                        .flatten()
                })
            };
            named("default").or_else(|| {
                list.first()
                    .and_then(|t| t.get("template")?.as_str().map(str::to_string))
            })
        }
        _ => None,
    }
}

impl Tokenizer {
    /// Loads from a `tokenizer.json` (or `.json.gz`) file, or from a folder holding one. A byte-level BPE
    /// model is kept in the on-disk cache (`$SERVEBENCH_CACHE_DIR`, else `~/.cache/servebench`; set but
    /// empty: none) for the next load of the same content.
    pub fn from_path(path: impl AsRef<Path>) -> Result<Tokenizer, TokenizeError> {
        Self::from_path_with_cache(path, crate::disk::default_dir().as_deref())
    }

    /// [`Tokenizer::from_path`] with the cache in `cache` (None: no cache).
    pub fn from_path_with_cache(
        path: impl AsRef<Path>,
        cache: Option<&Path>,
    ) -> Result<Tokenizer, TokenizeError> {
        let path = path.as_ref();
        match Self::load(path, cache) {
            // A stamp that named other content is forgotten by then: the file is read this time.
            Err(TokenizeError::Changed(_)) => Self::load(path, cache),
            loaded => loaded,
        }
    }

    fn load(path: &Path, cache: Option<&Path>) -> Result<Tokenizer, TokenizeError> {
        let (file, dir): (PathBuf, Option<PathBuf>) = if path.is_dir() {
            let f = path.join("tokenizer.json");
            if !f.exists() {
                return Err(TokenizeError::NoTokenizerInFolder(
                    path.display().to_string(),
                ));
            }
            (f, Some(path.to_path_buf()))
        } else {
            (path.to_path_buf(), path.parent().map(Path::to_path_buf))
        };
        let (source, key) = content_of(&file, cache)?;
        let mut config = Value::Null;
        let mut template = None;
        if let Some(dir) = dir {
            let cfg_path = dir.join("tokenizer_config.json");
            if cfg_path.exists() {
                let text = std::fs::read_to_string(&cfg_path).map_err(|e| io_err(&cfg_path, e))?;
                config = serde_json::from_str(&text).map_err(|e| TokenizeError::Parse {
                    path: cfg_path.display().to_string(),
                    message: e.to_string(),
                })?;
            }
            let jinja = dir.join("chat_template.jinja");
            template = if jinja.exists() {
                Some(std::fs::read_to_string(&jinja).map_err(|e| io_err(&jinja, e))?)
            } else {
                template_in_config(&config)
            };
        }
        let disk = cache.zip(key).map(|(dir, key)| (dir.to_path_buf(), key));
        let cache = disk.as_ref().map(|(dir, key)| (dir.as_path(), *key));
        let (pipeline, words) = pipeline_of(source, &config, &file.display().to_string(), cache)?;
        let chat_template = template
            .map(|t| {
                ChatTemplate::new(
                    &t,
                    token_str(config.get("bos_token")),
                    token_str(config.get("eos_token")),
                )
            })
            .transpose()?;
        Ok(Tokenizer {
            pipeline,
            words,
            disk,
            source: path.display().to_string(),
            chat_template,
            clean_up_spaces: config
                .get("clean_up_tokenization_spaces")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        })
    }

    /// The built-in SmolLM2-135M-Instruct tokenizer (used when the user gives none).
    pub fn builtin() -> Result<Tokenizer, TokenizeError> {
        Self::builtin_with_cache(crate::disk::default_dir().as_deref())
    }

    /// [`Tokenizer::builtin`] with the on-disk cache in `cache` (None: no cache).
    pub fn builtin_with_cache(cache: Option<&Path>) -> Result<Tokenizer, TokenizeError> {
        let mut bytes = Vec::new();
        flate2::read::GzDecoder::new(BUILTIN_GZ)
            .read_to_end(&mut bytes)
            .map_err(|e| TokenizeError::Encode(e.to_string()))?;
        let disk = cache.map(|dir| (dir.to_path_buf(), Key::of(&bytes)));
        let cache = disk.as_ref().map(|(dir, key)| (dir.as_path(), *key));
        let (pipeline, words) =
            pipeline_of(Source::Read(bytes), &Value::Null, "builtin:smollm2", cache)?;
        let cfg: Value = serde_json::from_str(BUILTIN_CONFIG).unwrap_or(Value::Null);
        let chat_template = Some(ChatTemplate::new(
            BUILTIN_TEMPLATE,
            token_str(cfg.get("bos_token")),
            token_str(cfg.get("eos_token")),
        )?);
        Ok(Tokenizer {
            pipeline,
            words,
            disk,
            source: "builtin:smollm2".into(),
            chat_template,
            clean_up_spaces: false,
        })
    }

    /// Whether the model came from the on-disk cache (`$SERVEBENCH_CACHE_DIR`, else `~/.cache/servebench`).
    pub fn model_from_cache(&self) -> bool {
        matches!(&self.pipeline, Pipeline::Lazy(l) if l.from_cache)
    }

    /// `tokenizers`' whole pipeline (built now if it was not).
    fn full(&self) -> Result<&tokenizers::Tokenizer, TokenizeError> {
        match &self.pipeline {
            Pipeline::Built(t) => Ok(t),
            Pipeline::Lazy(l) => l.full(),
        }
    }

    /// Every part but the model: normalizer, pre-tokenizer, post-processor, decoder.
    fn parts(&self) -> &tokenizers::Tokenizer {
        match &self.pipeline {
            Pipeline::Built(t) => t,
            Pipeline::Lazy(l) => &l.shell,
        }
    }

    /// The word cache and the text its words come from, where it covers `text`.
    fn cached<'a>(&self, text: &'a str) -> Option<(&WordCache, std::borrow::Cow<'a, str>)> {
        let words = self.words.as_ref()?;
        Some((words, words.prepared(text)?))
    }

    /// Builds `tokenizers`' pipeline now if it is built lazily (for a server that must not pause on a
    /// request that needs it: a chat prompt holds added tokens).
    pub fn build_pipeline(&self) -> Result<(), TokenizeError> {
        self.full().map(|_| ())
    }

    fn merger(&self) -> Merger<'_> {
        match &self.pipeline {
            Pipeline::Built(t) => Merger::Model(t.get_model()),
            Pipeline::Lazy(l) => Merger::Bpe(&l.bpe),
        }
    }

    /// Token ids of `text`, without special tokens added (the prompt's own tokens).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, TokenizeError> {
        if let Some((words, text)) = self.cached(text) {
            let mut ids = Vec::with_capacity(text.len() / 3);
            words
                .for_each_word(self.merger(), &text, |w| ids.extend_from_slice(w))
                .map_err(TokenizeError::Encode)?;
            return Ok(ids);
        }
        self.encode_uncached(text)
    }

    /// Whether `encode` and `count` go through a word cache for this tokenizer (byte-level BPE).
    pub fn has_word_cache(&self) -> bool {
        self.words.is_some()
    }

    /// Whether `tokenizers`' model was built (a byte-level BPE read by servebench's own reader builds it only
    /// for texts and calls that need it).
    pub fn pipeline_built(&self) -> bool {
        match &self.pipeline {
            Pipeline::Built(_) => true,
            Pipeline::Lazy(l) => l.full.get().is_some(),
        }
    }

    /// [`Self::decode`] through `tokenizers`' whole pipeline (for checks).
    #[doc(hidden)]
    pub fn decode_uncached(&self, ids: &[u32]) -> Result<String, TokenizeError> {
        self.full()?
            .decode(ids, false)
            .map_err(|e| TokenizeError::Encode(e.to_string()))
    }

    /// Where this tokenizer's own answers differ from `tokenizers`' whole pipeline (empty: nowhere), over
    /// the vocabulary sizes, the special-token count, and every id's special flag and decoded text (and
    /// a few ids past the vocabulary); for checks on real tokenizers.
    #[doc(hidden)]
    pub fn disagreements_with_pipeline(&self) -> Result<Vec<String>, TokenizeError> {
        let full = self.full()?;
        let mut out = Vec::new();
        let mut same = |what: &str, ours: String, theirs: String| {
            if ours != theirs && out.len() < 20 {
                out.push(format!("{what}: {ours:?} vs {theirs:?}"));
            }
        };
        same(
            "base vocab",
            self.base_vocab_size().to_string(),
            full.get_vocab_size(false).to_string(),
        );
        same(
            "vocab",
            self.vocab_size().to_string(),
            full.get_vocab_size(true).to_string(),
        );
        let pp = full
            .get_post_processor()
            .map_or(0, |p| tokenizers::PostProcessor::added_tokens(p, false));
        same(
            "special tokens added",
            self.num_special_tokens_to_add().to_string(),
            pp.to_string(),
        );
        let specials = full.get_added_tokens_decoder();
        for id in 0..self.vocab_size() as u32 + 16 {
            let theirs = specials.get(&id).is_some_and(|t| t.special);
            same(
                &format!("special {id}"),
                self.is_special(id).to_string(),
                theirs.to_string(),
            );
            let text = full
                .decode(&[id], false)
                .map_err(|e| TokenizeError::Encode(e.to_string()))?;
            same(&format!("decode {id}"), self.decode(&[id])?, text);
        }
        Ok(out)
    }

    /// [`Self::encode`] through `tokenizers`' whole pipeline, never the word cache (for checks).
    pub fn encode_uncached(&self, text: &str) -> Result<Vec<u32>, TokenizeError> {
        self.full()?
            .encode_fast(text, false)
            .map(|e| e.get_ids().to_vec())
            .map_err(|e| TokenizeError::Encode(e.to_string()))
    }

    /// Number of tokens of `text`, without special tokens added.
    pub fn count(&self, text: &str) -> Result<usize, TokenizeError> {
        if let Some((words, text)) = self.cached(text) {
            let mut n = 0;
            words
                .for_each_word(self.merger(), &text, |w| n += w.len())
                .map_err(TokenizeError::Encode)?;
            return Ok(n);
        }
        self.full()?
            .encode_fast(text, false)
            .map(|e| e.len())
            .map_err(|e| TokenizeError::Encode(e.to_string()))
    }

    /// Token ids of `text` (no special tokens added) and, for each, whether it begins a pre-token (a word of
    /// the pre-tokenizer; BPE merges never cross one).
    pub fn encode_word_starts(&self, text: &str) -> Result<(Vec<u32>, Vec<bool>), TokenizeError> {
        self.encode_with_words(text).map(|e| (e.ids, e.starts))
    }

    /// [`Tokenizer::encode_word_starts`] of a prompt corpus, through the on-disk cache of encoded corpora
    /// ([`crate::encoded_cache`]): the next run with the same tokenizer file and text reads the ids back
    /// instead of encoding, and finds the text's words in the word cache.
    pub fn encode_corpus(&self, text: &str) -> Result<(Vec<u32>, Vec<bool>), TokenizeError> {
        let Some((dir, key)) = &self.disk else {
            return self.encode_word_starts(text);
        };
        let text_key = Key::of(text.as_bytes());
        if let Some(hit) = encoded_cache::load(dir, key, &text_key, self.vocab_size()) {
            if let Some(words) = &self.words {
                words.seed(hit.words);
            }
            return Ok((hit.ids, hit.starts));
        }
        let enc = self.encode_with_words(text)?;
        encoded_cache::store(dir, key, &text_key, &enc);
        Ok((enc.ids, enc.starts))
    }

    /// [`Tokenizer::encode_word_starts`] and, where the word cache covers the text, its words (each once) with
    /// their ids: only this text's, not whatever else the cache holds by now (a study's earlier outputs).
    fn encode_with_words(&self, text: &str) -> Result<encoded_cache::Encoded, TokenizeError> {
        let Some((cache, prepared)) = self.cached(text) else {
            // `encode_fast` leaves the word ids out; the byte-offset encode keeps them.
            let enc = self
                .full()?
                .encode(text, false)
                .map_err(|e| TokenizeError::Encode(e.to_string()))?;
            let words = enc.get_word_ids();
            let starts = (0..words.len())
                .map(|i| i == 0 || words[i - 1] != words[i])
                .collect();
            return Ok(encoded_cache::Encoded {
                ids: enc.get_ids().to_vec(),
                starts,
                words: Vec::new(),
            });
        };
        let (mut ids, mut starts, mut words) = (Vec::new(), Vec::new(), Vec::new());
        let mut seen = rustc_hash::FxHashSet::default();
        cache
            .for_each_word_text(self.merger(), &prepared, |word, w| {
                ids.extend_from_slice(w);
                starts.extend((0..w.len()).map(|i| i == 0));
                if seen.insert(word) {
                    words.push((word.into(), w.into()));
                }
            })
            .map_err(TokenizeError::Encode)?;
        Ok(encoded_cache::Encoded { ids, starts, words })
    }

    /// Whether a run of whole pre-tokens cut from an encoded text re-encodes to the same ids everywhere but
    /// near its two ends, which a caller must check (`TextSource::exact` encodes the first and last words).
    /// True for byte-level BPE tokenizers (GPT-2, Llama 3, Qwen2, SmolLM2, DeepSeek V3/R1): byte-level decoding
    /// (a run's text is its tokens' bytes, so the corpus text itself), no normalizer or only an idempotent Unicode
    /// normal form, and regex passes (one, or several in turn) that split words without looking behind (`(?<`,
    /// `\b`, anchors), so the words of the run are the corpus's words. Anything else (Metaspace, WordPiece) is
    /// false.
    pub fn cuts_at_word_starts(&self) -> bool {
        let parts = self.parts();
        if json_kind(parts.get_decoder()).as_deref() != Some("ByteLevel") {
            return false;
        }
        // NFD/NFKD are idempotent too, but decoded NFD text is not the corpus's bytes.
        let composed = || {
            crate::word_cache::normal_forms(parts)
                .is_some_and(|forms| forms.iter().all(|f| matches!(f.as_str(), "NFC" | "NFKC")))
        };
        let forward_only = |p: &str| {
            // The usual look-ahead tail looks forward only; the rest, where the `regex` crate parses it, must
            // use no look-around at all (anchors, word boundaries).
            let head = p.strip_suffix(r"|\s+(?!\S)|\s+").unwrap_or(p);
            if let Ok(hir) = regex_syntax::parse(head) {
                return hir.properties().look_set().is_empty();
            }
            // `[^` negates a class; any other `^` is an anchor.
            let p = p.replace("[^", "[");
            !["(?<", "\\b", "\\B", "^", "$", "\\A", "\\z", "\\G"]
                .iter()
                .any(|m| p.contains(m))
        };
        composed()
            && crate::word_cache::split_patterns(parts)
                .is_some_and(|ps| ps.iter().all(|p| forward_only(p)))
    }

    /// Text of token ids (special tokens kept, as servers decode prompts).
    pub fn decode(&self, ids: &[u32]) -> Result<String, TokenizeError> {
        if let Pipeline::Lazy(l) = &self.pipeline {
            if l.byte_decoder {
                return Ok(l.bpe.decode(ids));
            }
        }
        self.decode_uncached(ids)
    }

    /// Token ids as transformers' `tokenizer.encode(text)` gives them: with the special tokens the
    /// post-processor adds (e.g. a BOS), as SGLang counts ShareGPT prompts.
    pub fn encode_with_special(&self, text: &str) -> Result<Vec<u32>, TokenizeError> {
        self.full()?
            .encode_fast(text, true)
            .map(|e| e.get_ids().to_vec())
            .map_err(|e| TokenizeError::Encode(e.to_string()))
    }

    /// Number of tokens of `text` with the special tokens the post-processor adds (`len(tokenizer.encode(text))`).
    pub fn count_with_special(&self, text: &str) -> Result<usize, TokenizeError> {
        self.full()?
            .encode_fast(text, true)
            .map(|e| e.len())
            .map_err(|e| TokenizeError::Encode(e.to_string()))
    }

    /// transformers' `tokenizer.num_special_tokens_to_add()`: how many tokens the post-processor adds to one
    /// sequence (1 for a tokenizer that prepends a BOS, 0 without a post-processor).
    pub fn num_special_tokens_to_add(&self) -> usize {
        self.parts()
            .get_post_processor()
            .map_or(0, |p| tokenizers::PostProcessor::added_tokens(p, false))
    }

    /// transformers' `tokenizer.decode(ids)` (special tokens kept): the text, with
    /// `clean_up_tokenization_spaces` applied when the tokenizer's config sets it.
    pub fn decode_like_transformers(&self, ids: &[u32]) -> Result<String, TokenizeError> {
        let text = self.decode(ids)?;
        Ok(if self.clean_up_spaces {
            clean_up_tokenization(&text)
        } else {
            text
        })
    }

    /// transformers' `tokenizer.vocab_size`: the base vocabulary, without added tokens.
    pub fn base_vocab_size(&self) -> usize {
        match &self.pipeline {
            Pipeline::Built(t) => t.get_vocab_size(false),
            Pipeline::Lazy(l) => l.bpe.vocab_len(),
        }
    }

    pub fn vocab_size(&self) -> usize {
        match &self.pipeline {
            Pipeline::Built(t) => t.get_vocab_size(true),
            Pipeline::Lazy(l) => l.bpe.vocab_with_added(),
        }
    }

    /// Whether `id` is a special (added, special) token.
    pub fn is_special(&self, id: u32) -> bool {
        match &self.pipeline {
            Pipeline::Built(t) => t
                .get_added_tokens_decoder()
                .get(&id)
                .is_some_and(|t| t.special),
            Pipeline::Lazy(l) => l.bpe.is_special(id),
        }
    }
}

/// The transformers tokenizer classes whose constructor rebuilds the post-processor from `add_bos_token` /
/// `add_eos_token` (their `update_post_processor`), with those flags' defaults: (bos, eos).
fn class_bos_eos_defaults(tokenizer_class: &str) -> Option<(bool, bool)> {
    // AutoTokenizer loads the fast class for a slow name ("LlamaTokenizer" → LlamaTokenizerFast).
    match tokenizer_class
        .strip_suffix("Fast")
        .unwrap_or(tokenizer_class)
    {
        "LlamaTokenizer" | "CodeLlamaTokenizer" | "GemmaTokenizer" | "CohereTokenizer" => {
            Some((true, false))
        }
        "GPTNeoXTokenizer" => Some((false, false)),
        _ => None,
    }
}

/// What transformers does when it loads a Llama-family tokenizer (`tokenizer_class` in `tokenizer_config.json`):
/// the post-processor of `tokenizer.json` is replaced by one that adds the BOS (`add_bos_token`, default true)
/// and/or EOS (`add_eos_token`, default false). Without this, a model such as DeepSeek-R1 (LlamaTokenizerFast,
/// add_bos_token true) would count one special token fewer than transformers and sglang.
/// `id_of` is the tokenizer's `token_to_id`; None where the class keeps the file's post-processor.
fn class_post_processor(
    config: &Value,
    file: &str,
    id_of: impl Fn(&str) -> Option<u32>,
) -> Result<Option<TemplateProcessing>, TokenizeError> {
    let Some((bos_default, eos_default)) = config
        .get("tokenizer_class")
        .and_then(Value::as_str)
        .and_then(class_bos_eos_defaults)
    else {
        return Ok(None);
    };
    let flag = |k: &str, d: bool| config.get(k).and_then(Value::as_bool).unwrap_or(d);
    let (add_bos, add_eos) = (
        flag("add_bos_token", bos_default),
        flag("add_eos_token", eos_default),
    );
    let parse_err = |message: String| TokenizeError::Parse {
        path: file.to_string(),
        message,
    };
    let special = |key: &str, on: bool| -> Result<Option<(String, u32)>, TokenizeError> {
        if !on {
            return Ok(None);
        }
        let t = token_str(config.get(key)).ok_or_else(|| {
            parse_err(format!(
                "tokenizer_config.json sets {key} on (add_{key}) but names no {key}"
            ))
        })?;
        let id =
            id_of(&t).ok_or_else(|| parse_err(format!("{key} {t:?} is not in the vocabulary")))?;
        Ok(Some((t, id)))
    };
    let (bos, eos) = (
        special("bos_token", add_bos)?,
        special("eos_token", add_eos)?,
    );
    let piece = |t: &Option<(String, u32)>, seq: u8| {
        t.as_ref()
            .map(|(s, _)| format!("{s}:{seq}"))
            .unwrap_or_default()
    };
    let join = |parts: &[String]| {
        parts
            .iter()
            .filter(|p| !p.is_empty())
            .cloned()
            .collect::<Vec<_>>()
            .join(" ")
    };
    let single = join(&[piece(&bos, 0), "$A:0".into(), piece(&eos, 0)]);
    let pair = join(&[
        single.clone(),
        piece(&bos, 1),
        "$B:1".into(),
        piece(&eos, 1),
    ]);
    let tokens: Vec<(String, u32)> = bos.into_iter().chain(eos).collect();
    let pp = TemplateProcessing::builder()
        .try_single(single.as_str())
        .and_then(|b| b.try_pair(pair.as_str()))
        .map_err(|e| parse_err(format!("cannot build the BOS/EOS template: {e}")))?
        .special_tokens(tokens)
        .build()
        .map_err(|e| parse_err(format!("cannot build the BOS/EOS template: {e}")))?;
    Ok(Some(pp))
}

/// transformers' `clean_up_tokenization`: drops the space before punctuation and English contractions.
fn clean_up_tokenization(text: &str) -> String {
    const RULES: [(&str, &str); 10] = [
        (" .", "."),
        (" ?", "?"),
        (" !", "!"),
        (" ,", ","),
        (" ' ", "'"),
        (" n't", "n't"),
        (" 'm", "'m"),
        (" 's", "'s"),
        (" 've", "'ve"),
        (" 're", "'re"),
    ];
    RULES
        .iter()
        .fold(text.to_string(), |t, (from, to)| t.replace(from, to))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_matches_llama_cpp_ids() {
        let t = Tokenizer::builtin().unwrap();
        assert_eq!(
            t.encode("Hello world, this is a test.").unwrap(),
            vec![19556, 905, 28, 451, 314, 253, 1028, 30]
        );
        assert_eq!(t.count("Hello world, this is a test.").unwrap(), 8);
        assert!(t.chat_template.is_some());
        assert_eq!(t.decode(&[19556, 905]).unwrap(), "Hello world");
    }

    /// The built-in tokenizer with a post-processor that prepends `<|im_start|>` (id 1), as a folder whose
    /// config asks for transformers' decode clean-up.
    fn bos_variant(dir_name: &str) -> Tokenizer {
        let mut tok = builtin_json();
        let bos = serde_json::json!({"SpecialToken": {"id": "<|im_start|>", "type_id": 0}});
        let seq = |id: &str, t: u32| serde_json::json!({"Sequence": {"id": id, "type_id": t}});
        tok["post_processor"] = serde_json::json!({
            "type": "TemplateProcessing",
            "single": [bos.clone(), seq("A", 0)],
            "pair": [bos, seq("A", 0), seq("B", 1)],
            "special_tokens": {"<|im_start|>": {"id": "<|im_start|>", "ids": [1], "tokens": ["<|im_start|>"]}}
        });
        let dir = std::env::temp_dir().join(format!("{dir_name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("tokenizer.json"), tok.to_string()).unwrap();
        std::fs::write(
            dir.join("tokenizer_config.json"),
            r#"{"clean_up_tokenization_spaces": true}"#,
        )
        .unwrap();
        Tokenizer::from_path(&dir).unwrap()
    }

    /// The built-in tokenizer with its JSON edited by `edit`, saved as `tokenizer.json` in a fresh folder.
    fn edited(name: &str, edit: impl Fn(&mut Value)) -> Tokenizer {
        Tokenizer::from_path(edited_dir(name, edit)).unwrap()
    }

    /// The built-in `tokenizer.json` as JSON.
    fn builtin_json() -> Value {
        let mut raw = String::new();
        flate2::read::GzDecoder::new(BUILTIN_GZ)
            .read_to_string(&mut raw)
            .unwrap();
        serde_json::from_str(&raw).unwrap()
    }

    /// A fresh folder holding the built-in `tokenizer.json` edited by `edit`.
    fn edited_dir(name: &str, edit: impl Fn(&mut Value)) -> PathBuf {
        let mut tok = builtin_json();
        edit(&mut tok);
        let dir = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("tokenizer.json"), tok.to_string()).unwrap();
        dir
    }

    #[test]
    fn word_starts_mark_the_first_token_of_each_pre_token() {
        let t = Tokenizer::builtin().unwrap();
        let text = "Hello world, incomprehensibilities abound.";
        let (ids, starts) = t.encode_word_starts(text).unwrap();
        assert_eq!(ids, t.encode(text).unwrap());
        assert_eq!(ids.len(), starts.len());
        // Words: "Hello", " world", ",", " incomprehensibilities" (several tokens), " abound", ".".
        assert_eq!(starts.iter().filter(|&&s| s).count(), 6, "{starts:?}");
        assert!(starts[0] && starts.iter().any(|&s| !s));
        // Each word re-encodes alone to its own tokens.
        let firsts: Vec<usize> = (0..ids.len()).filter(|&i| starts[i]).collect();
        for (k, &a) in firsts.iter().enumerate() {
            let b = firsts.get(k + 1).copied().unwrap_or(ids.len());
            let word = t.decode(&ids[a..b]).unwrap();
            assert_eq!(t.encode(&word).unwrap(), ids[a..b], "{word:?}");
        }
    }

    #[test]
    fn which_tokenizers_allow_cutting_at_word_starts() {
        assert!(Tokenizer::builtin().unwrap().cuts_at_word_starts());
        // Qwen2 / Llama 3 layout: one forward-only regex split, then byte-level without its own regex.
        let qwen = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
        let split = |pattern: &str| {
            let pattern = pattern.to_string();
            move |t: &mut Value| {
                t["pre_tokenizer"] = serde_json::json!({"type": "Sequence", "pretokenizers": [
                    {"type": "Split", "pattern": {"Regex": pattern}, "behavior": "Isolated", "invert": false},
                    {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false}]});
            }
        };
        assert!(edited("sb-cut-qwen", split(qwen)).cuts_at_word_starts());
        // A look-behind, a word boundary or an anchor makes a word depend on the text before it.
        assert!(!edited("sb-cut-lb", split(r"(?<=a)\p{L}+|\s+")).cuts_at_word_starts());
        assert!(!edited("sb-cut-b", split(r"\b\p{L}+|\s+")).cuts_at_word_starts());
        assert!(!edited("sb-cut-anchor", split(r"^\s+|\p{L}+|\s+")).cuts_at_word_starts());
        // A prefix space changes the first word; other decoders and normalizers are not byte-exact.
        assert!(!edited("sb-cut-prefix", |t| {
            t["pre_tokenizer"]["add_prefix_space"] = Value::Bool(true)
        })
        .cuts_at_word_starts());
        assert!(!edited("sb-cut-lower", |t| {
            t["normalizer"] = serde_json::json!({"type": "Lowercase"})
        })
        .cuts_at_word_starts());
        assert!(edited("sb-cut-nfc", |t| {
            t["normalizer"] =
                serde_json::json!({"type": "Sequence", "normalizers": [{"type": "NFC"}]})
        })
        .cuts_at_word_starts());
        assert!(!edited("sb-cut-meta", |t| {
            t["decoder"] = serde_json::json!({"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always", "split": true})
        })
        .cuts_at_word_starts());
    }

    const QWEN2_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
    const LLAMA3_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

    /// The built-in vocabulary behind a Qwen2 / Llama 3 style pre-tokenizer (regex split, then byte-level).
    fn split_variant(name: &str, pattern: &str, edit: impl Fn(&mut Value)) -> Tokenizer {
        let pattern = pattern.to_string();
        edited(name, move |t| {
            t["pre_tokenizer"] = serde_json::json!({"type": "Sequence", "pretokenizers": [
                {"type": "Split", "pattern": {"Regex": pattern}, "behavior": "Isolated", "invert": false},
                {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false}]});
            edit(t);
        })
    }

    /// Texts that reach every branch of the word regexes: contractions in any case, letters after a
    /// symbol, digit runs, punctuation with line ends, whitespace runs before words and at the end,
    /// non-ASCII letters, emoji, a lone combining accent, and added tokens inside words.
    fn tricky_texts() -> Vec<String> {
        let mut v: Vec<String> = [
            "",
            " ",
            "  ",
            "\n",
            "Hello world",
            "I'LL be there, they'Re 're",
            "x  y   z    ",
            "tabs\tand\r\nlines\n\n\nend",
            "12345678 + 3.14159 = 1e10",
            "(a)[b]{c}!!!\n\n",
            "naïve café — déjà vu",
            "中文字符和 日本語のテキスト",
            "emoji 🚀🚀 ok",
            "e\u{301} accent",
            "<|im_start|>user\nhi<|im_end|>",
            "a<|im_end|>b",
            "  leading and trailing  ",
            "x\u{a0}nbsp",
            "don't STOP'S",
            "$$\\frac{1}{2}$$ \\boxed{42}",
            // Control characters (some have no token of their own in SmolLM2's vocabulary).
            "a\u{4}b\u{14}\u{16}c \u{1d}\u{6}",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        v.push("The quick brown fox jumps over the lazy dog. ".repeat(50));
        // Long words: the merge queue of one pre-token of thousands of bytes.
        v.push("a".repeat(3000));
        v.push("abab".repeat(700) + " " + &"=-".repeat(900));
        v
    }

    fn assert_same_ids(t: &Tokenizer, text: &str) {
        let pipeline = t.encode_uncached(text).unwrap();
        assert_eq!(t.encode(text).unwrap(), pipeline, "{text:?}");
        assert_eq!(t.count(text).unwrap(), pipeline.len(), "{text:?}");
        let (ids, starts) = t.encode_word_starts(text).unwrap();
        assert_eq!(ids, pipeline, "{text:?}");
        // Word starts as the pipeline's word ids give them.
        let enc = t.full().unwrap().encode(text, false).unwrap();
        let words = enc.get_word_ids();
        let pipeline_starts: Vec<bool> = (0..words.len())
            .map(|i| i == 0 || words[i - 1] != words[i])
            .collect();
        assert_eq!(starts, pipeline_starts, "{text:?}");
    }

    /// An NFC normalizer (in a `Sequence`, as files write it).
    fn nfc(t: &mut Value) {
        t["normalizer"] = serde_json::json!({"type": "Sequence", "normalizers": [{"type": "NFC"}]})
    }

    /// DeepSeek V3/R1's pre-tokenizer: three `Split`s in turn (digit groups, CJK runs, words), then byte-level.
    fn deepseek_variant(name: &str) -> Tokenizer {
        edited(name, |t| {
            let split = |re: &str| serde_json::json!({"type": "Split", "pattern": {"Regex": re}, "behavior": "Isolated", "invert": false});
            t["pre_tokenizer"] = serde_json::json!({"type": "Sequence", "pretokenizers": [
                split(r"\p{N}{1,3}"),
                split("[\u{4e00}-\u{9fa5}\u{3040}-\u{309f}\u{30a0}-\u{30ff}]+"),
                split(DEEPSEEK_WORDS),
                {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false}]});
        })
    }

    /// Texts where DeepSeek's digit and CJK splits cut inside what its word regex alone would keep whole.
    const DIGIT_CJK_TEXTS: [&str; 4] = [
        "1234567 apples, 89 pears; 2024-12-06T10:00",
        "价格是123元，日本語テキスト456と中文",
        "x=12+345*6789 (2) [3]",
        "mixed日本123abc def",
    ];

    const DEEPSEEK_WORDS: &str = r##"[!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"##;

    #[test]
    fn a_pre_tokenizer_of_several_splits_gets_a_word_cache_with_the_pipeline_ids() {
        let t = deepseek_variant("sb-wc-deepseek");
        let words = t.words.as_ref().expect("a word cache");
        assert!(words.splitter_has_fast_path());
        assert!(
            !t.pipeline_built(),
            "read by byte_bpe, pipeline left unbuilt"
        );
        let mut texts = tricky_texts();
        texts.extend(DIGIT_CJK_TEXTS.map(String::from));
        for text in &texts {
            assert_same_ids(&t, text);
            assert_same_ids(&t, text);
        }
        // The digit split is applied first: the last split alone would keep "1234567" whole.
        let one_level = split_variant("sb-wc-deepseek-one", DEEPSEEK_WORDS, |_| {});
        let (_, starts) = t.encode_word_starts("1234567").unwrap();
        let (_, starts_one) = one_level.encode_word_starts("1234567").unwrap();
        assert!(
            starts.iter().filter(|&&b| b).count() > starts_one.iter().filter(|&&b| b).count(),
            "{starts:?} vs {starts_one:?}"
        );
    }

    #[test]
    fn with_several_splits_any_run_of_whole_words_re_encodes_to_its_ids() {
        // What cutting at word starts relies on, for DeepSeek's three splits: the text of ids[a..b], a and b
        // word starts, encodes to ids[a..b] (digit groups, CJK runs and words keep their bounds when cut).
        let t = deepseek_variant("sb-cut-deepseek");
        assert!(t.cuts_at_word_starts());
        let mut text = tricky_texts()
            .into_iter()
            // No added tokens, and no control characters (bytes without a token of their own are dropped).
            .filter(|x| {
                !x.contains("<|") && !x.chars().any(|c| c.is_control() && !c.is_whitespace())
            })
            .collect::<Vec<_>>()
            .join(" ");
        for extra in DIGIT_CJK_TEXTS {
            text.push(' ');
            text.push_str(extra);
        }
        let (ids, starts) = t.encode_word_starts(&text).unwrap();
        let firsts: Vec<usize> = (0..ids.len()).filter(|&i| starts[i]).collect();
        assert!(firsts.len() > 100, "{}", firsts.len());
        for (k, &a) in firsts.iter().enumerate() {
            for &b in firsts[k + 1..].iter().step_by(7).chain([&ids.len()]) {
                let piece = t.decode(&ids[a..b]).unwrap();
                assert_eq!(t.encode(&piece).unwrap(), ids[a..b], "{piece:?}");
            }
        }
    }

    #[test]
    fn the_word_cache_gives_the_pipeline_ids() {
        let toks = [
            Tokenizer::builtin().unwrap(),
            split_variant("sb-wc-qwen", QWEN2_SPLIT, |_| {}),
            split_variant("sb-wc-llama", LLAMA3_SPLIT, |t| {
                t["model"]["ignore_merges"] = Value::Bool(true)
            }),
            split_variant("sb-wc-nfc", QWEN2_SPLIT, nfc),
        ];
        for t in &toks {
            let words = t.words.as_ref().expect("a word cache");
            assert!(words.splitter_has_fast_path(), "{}", t.source);
            for text in tricky_texts() {
                // Twice: the second time every word comes from the cache.
                assert_same_ids(t, &text);
                assert_same_ids(t, &text);
            }
        }
        // Added tokens are left to the pipeline; with a normal form, text not surely in it is normalized first.
        let w = toks[3].words.as_ref().unwrap();
        assert!(w.covers("plain ascii") && w.covers("café 中文") && !w.covers("a<|im_end|>"));
        assert_eq!(
            w.prepared("cafe\u{301}").as_deref(),
            Some("café"),
            "NFC composes é"
        );
        assert_eq!(
            toks[1]
                .words
                .as_ref()
                .unwrap()
                .prepared("cafe\u{301}")
                .as_deref(),
            Some("cafe\u{301}")
        );
        for text in [
            "cafe\u{301} and café",
            "Å (A\u{30a}) ﬁ ①",
            // Combining marks whose quick check says "maybe": Devanagari nukta, Bengali vowel sign, Hangul jamo.
            "क\u{93c} ক\u{9be} \u{1100}\u{1161}\u{11a8} 한국어",
        ] {
            assert_same_ids(&toks[3], text);
        }
    }

    #[test]
    fn byte_level_bpe_counts_cuts_and_decodes_without_building_the_pipeline() {
        let toks = [
            Tokenizer::builtin().unwrap(),
            split_variant("sb-lazy-llama", LLAMA3_SPLIT, |t| {
                t["model"]["ignore_merges"] = Value::Bool(true)
            }),
            split_variant("sb-lazy-nfc", QWEN2_SPLIT, nfc),
            // Empty subword prefix and word suffix (GPT-2 style files) change nothing.
            edited("sb-lazy-empty-affixes", |t| {
                t["model"]["continuing_subword_prefix"] = serde_json::json!("");
                t["model"]["end_of_word_suffix"] = serde_json::json!("");
            }),
        ];
        for t in &toks {
            assert!(!t.pipeline_built(), "{}", t.source);
            let text = "Hello world, café 中文 \u{4} 12345 🚀";
            let ids = t.encode(text).unwrap();
            assert_eq!(t.count(text).unwrap(), ids.len());
            assert_eq!(t.decode(&ids).unwrap(), text.replace('\u{4}', ""));
            let _ = t.encode_word_starts(text).unwrap();
            let _ = (t.base_vocab_size(), t.vocab_size(), t.is_special(0));
            let _ = (t.num_special_tokens_to_add(), t.cuts_at_word_starts());
            // Text the normal form changes (decomposed é, a Devanagari nukta) is normalized, not piped.
            let _ = t.count("cafe\u{301} क\u{93c}").unwrap();
            assert!(!t.pipeline_built(), "{}: built by a covered call", t.source);
            // Then against `tokenizers` (which builds it): every id's text, special flag, vocabulary sizes.
            assert_eq!(
                t.disagreements_with_pipeline().unwrap(),
                Vec::<String>::new()
            );
            assert!(t.pipeline_built());
            for text in tricky_texts() {
                assert_same_ids(t, &text);
                let ids = t.encode_uncached(&text).unwrap();
                for piece in std::iter::once(&ids[..]).chain(ids.chunks(3)) {
                    assert_eq!(t.decode(piece).unwrap(), t.decode_uncached(piece).unwrap());
                }
            }
        }
        // A text with an added token goes to the pipeline, which is built then.
        let t = Tokenizer::builtin().unwrap();
        assert_eq!(t.count("a<|im_end|>b").unwrap(), 3);
        assert!(t.pipeline_built());
    }

    #[test]
    fn byte_level_bpe_is_read_only_where_it_reads_exactly() {
        let lazy = |t: &Tokenizer| !t.pipeline_built();
        // The older "a b" merges are read the same.
        let legacy = edited("sb-lazy-legacy", |t| {
            let merges = t["model"]["merges"].as_array().unwrap().clone();
            t["model"]["merges"] = merges
                .iter()
                .map(|m| {
                    Value::String(format!(
                        "{} {}",
                        m[0].as_str().unwrap(),
                        m[1].as_str().unwrap()
                    ))
                })
                .collect();
        });
        assert!(lazy(&legacy));
        for text in tricky_texts() {
            assert_same_ids(&legacy, &text);
        }
        // What it does not read exactly builds `tokenizers`' pipeline at load (same ids either way).
        type Edit = (&'static str, fn(&mut Value));
        let built: [Edit; 7] = [
            // A subword prefix: only the choice (`tokenizers` 0.22 panics building this byte-level model).
            ("sb-built-prefix", |t| {
                t["model"]["continuing_subword_prefix"] = serde_json::json!("##")
            }),
            ("sb-built-suffix", |t| {
                t["model"]["end_of_word_suffix"] = serde_json::json!("</w>")
            }),
            // SmolLM2 has bytes without a token: with an unknown token or byte fallback, their rules apply.
            ("sb-built-unk", |t| {
                t["model"]["unk_token"] = serde_json::json!("<|endoftext|>")
            }),
            ("sb-built-fallback", |t| {
                t["model"]["byte_fallback"] = Value::Bool(true)
            }),
            // A huge id (the id table would be huge).
            ("sb-built-sparse", |t| {
                t["model"]["vocab"]["zzzz-sparse"] = serde_json::json!(4_000_000_000u32)
            }),
            // An added token whose id is not the one `tokenizers` gives it.
            ("sb-built-added-id", |t| {
                t["added_tokens"]
                    .as_array_mut()
                    .unwrap()
                    .push(serde_json::json!({
                    "id": 60000, "content": "<extra>", "single_word": false, "lstrip": false,
                    "rstrip": false, "normalized": false, "special": true}))
            }),
            ("sb-built-type", |t| {
                t["model"]["type"] = serde_json::json!("Unigram")
            }),
        ];
        for (name, edit) in built {
            if matches!(name, "sb-built-type" | "sb-built-prefix") {
                // Only the choice is checked (`tokenizers` cannot read these).
                let mut json = builtin_json();
                edit(&mut json);
                let text = json.to_string();
                let parts: crate::fast_load::FileParts<crate::byte_bpe::ModelJson> =
                    serde_json::from_str(&text).unwrap();
                assert!(ByteBpe::from_file(parts.model, &[]).is_none());
                continue;
            }
            let t = edited(name, edit);
            assert!(t.pipeline_built(), "{name}");
            for text in tricky_texts() {
                assert_same_ids(&t, &text);
            }
        }
    }

    #[test]
    fn patterns_without_the_usual_tail_or_with_other_look_arounds_split_exactly() {
        // No `\s+(?!\S)|\s+` tail, and a look-ahead elsewhere: both split with the backtracking VM only.
        for (name, pattern) in [
            (
                "sb-wc-notail",
                r"\p{L}+|\p{N}|\s+(?!\S)|[^\p{L}\p{N}\s]+|\s+",
            ),
            (
                "sb-wc-ahead",
                r"\p{L}+(?=\s)|\p{L}+|\p{N}+|[^\p{L}\p{N}\s]+|\s+(?!\S)|\s+",
            ),
        ] {
            let t = split_variant(name, pattern, |_| {});
            let words = t.words.as_ref().expect("a word cache");
            assert!(!words.splitter_has_fast_path(), "{name}");
            for text in tricky_texts() {
                assert_same_ids(&t, &text);
            }
        }
    }

    #[test]
    fn only_exact_byte_level_bpe_tokenizers_get_a_word_cache() {
        let none = |name: &str, edit: fn(&mut Value)| {
            let t = edited(name, edit);
            assert!(t.words.is_none(), "{name}");
            for text in tricky_texts() {
                assert_same_ids(&t, &text);
            }
        };
        none("sb-wc-prefix", |t| {
            t["pre_tokenizer"]["add_prefix_space"] = Value::Bool(true)
        });
        none("sb-wc-lower", |t| {
            t["normalizer"] = serde_json::json!({"type": "Lowercase"})
        });
        // Dropout merges at random: no two encodes need agree, so only the choice is checked.
        let dropout = edited("sb-wc-dropout", |t| {
            t["model"]["dropout"] = serde_json::json!(0.5)
        });
        assert!(dropout.words.is_none());
        none(
            "sb-wc-trunc",
            |t| t["truncation"] = serde_json::json!({"direction": "Right", "max_length": 8, "strategy": "LongestFirst", "stride": 0}),
        );
        // Splits in turn are covered (DeepSeek's pre-tokenizer): a digit split, then a whitespace one.
        let two = edited("sb-wc-two-splits", |t| {
            t["pre_tokenizer"] = serde_json::json!({"type": "Sequence", "pretokenizers": [
                {"type": "Split", "pattern": {"Regex": "\\p{N}{1,3}"}, "behavior": "Isolated", "invert": false},
                {"type": "Split", "pattern": {"Regex": "\\s+"}, "behavior": "Isolated", "invert": false},
                {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false}]});
        });
        assert!(two.words.is_some());
        for text in tricky_texts() {
            assert_same_ids(&two, &text);
        }
        // A split that is not isolated, or inverted, is not.
        none("sb-wc-merged-split", |t| {
            t["pre_tokenizer"] = serde_json::json!({"type": "Sequence", "pretokenizers": [
                {"type": "Split", "pattern": {"Regex": "\\p{N}{1,3}"}, "behavior": "MergedWithPrevious", "invert": false},
                {"type": "Split", "pattern": {"Regex": "\\s+"}, "behavior": "Isolated", "invert": false},
                {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false}]});
        });
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(300))]
        /// Any mix of the characters the regexes treat differently encodes alike both ways.
        #[test]
        fn word_cache_ids_equal_the_pipeline_on_any_text(
            text in "[a-zA-Z0-9 '\n\t\r.,!?()$\\\\\u{a0}\u{3000}é中🚀<|>_\u{301}\u{93c}क\u{1161}ﬁ]{0,80}",
        ) {
            static TOKS: std::sync::OnceLock<[Tokenizer; 4]> = std::sync::OnceLock::new();
            let toks = TOKS.get_or_init(|| {
                let nfc = |t: &mut Value| {
                    t["normalizer"] = serde_json::json!({"type": "NFC"})
                };
                [
                    Tokenizer::builtin().unwrap(),
                    split_variant("sb-wc-prop", QWEN2_SPLIT, |_| {}),
                    split_variant("sb-wc-prop-nfc", QWEN2_SPLIT, nfc),
                    deepseek_variant("sb-wc-prop-deepseek"),
                ]
            });
            for t in toks {
                proptest::prop_assert_eq!(t.encode(&text).unwrap(), t.encode_uncached(&text).unwrap());
            }
        }
    }

    #[test]
    fn special_tokens_the_post_processor_adds() {
        let plain = Tokenizer::builtin().unwrap();
        assert_eq!(plain.num_special_tokens_to_add(), 0);
        assert_eq!(plain.count_with_special("Hello world").unwrap(), 2);
        assert!(!plain.clean_up_spaces);
        let bos = bos_variant("sb-tok-bos");
        assert_eq!(bos.num_special_tokens_to_add(), 1);
        assert_eq!(
            bos.encode_with_special("Hello world").unwrap(),
            vec![1, 19556, 905]
        );
        assert_eq!(bos.count_with_special("Hello world").unwrap(), 3);
        // The prompt's own tokens are unchanged.
        assert_eq!(bos.count("Hello world").unwrap(), 2);
        assert_eq!(bos.base_vocab_size(), 49_152);
    }

    #[test]
    fn llama_classes_add_bos_and_eos_as_transformers_does() {
        let dir = std::env::temp_dir().join(format!("sb-tok-llama-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut raw = Vec::new();
        flate2::read::GzDecoder::new(BUILTIN_GZ)
            .read_to_end(&mut raw)
            .unwrap();
        std::fs::write(dir.join("tokenizer.json"), raw).unwrap();
        let load = |cfg: &str| {
            std::fs::write(dir.join("tokenizer_config.json"), cfg).unwrap();
            Tokenizer::from_path(&dir)
        };
        // Expected ids printed by transformers 4.57.1 loading the same folder.
        let names = r#""bos_token": "<|im_start|>", "eos_token": "<|im_end|>""#;
        let t = load(&format!(
            r#"{{"tokenizer_class": "LlamaTokenizerFast", {names}}}"#
        ))
        .unwrap();
        assert_eq!(t.num_special_tokens_to_add(), 1);
        assert_eq!(
            t.encode_with_special("Hello world").unwrap(),
            vec![1, 19556, 905]
        );
        let t = load(&format!(
            r#"{{"tokenizer_class": "LlamaTokenizer", "add_eos_token": true, {names}}}"#
        ))
        .unwrap();
        assert_eq!(t.num_special_tokens_to_add(), 2);
        assert_eq!(
            t.encode_with_special("Hello world").unwrap(),
            vec![1, 19556, 905, 2]
        );
        let t = load(&format!(
            r#"{{"tokenizer_class": "GPTNeoXTokenizerFast", "add_bos_token": true, {names}}}"#
        ))
        .unwrap();
        assert_eq!(t.num_special_tokens_to_add(), 1);
        let t = load(&format!(
            r#"{{"tokenizer_class": "LlamaTokenizerFast", "add_bos_token": false, {names}}}"#
        ))
        .unwrap();
        assert_eq!(t.num_special_tokens_to_add(), 0);
        // Other classes keep tokenizer.json's post-processor.
        let t = load(&format!(
            r#"{{"tokenizer_class": "Qwen2TokenizerFast", {names}}}"#
        ))
        .unwrap();
        assert_eq!(t.num_special_tokens_to_add(), 0);
        let e = load(r#"{"tokenizer_class": "LlamaTokenizerFast", "bos_token": "<nope>"}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("not in the vocabulary"), "{e}");
    }

    #[test]
    fn decode_cleans_up_spaces_when_the_config_says_so() {
        assert_eq!(
            clean_up_tokenization("a , b . I 'm sure it 's not n't ' x ' ?"),
            "a, b. I'm sure it's notn't'x '?" // Python's own output
        );
        let bos = bos_variant("sb-tok-clean");
        assert!(bos.clean_up_spaces);
        let ids = bos.encode("Hello , world .").unwrap();
        assert_eq!(bos.decode(&ids).unwrap(), "Hello , world .");
        assert_eq!(bos.decode_like_transformers(&ids).unwrap(), "Hello, world.");
        let plain = Tokenizer::builtin().unwrap();
        assert_eq!(
            plain.decode_like_transformers(&ids).unwrap(),
            "Hello , world ."
        );
    }

    /// A model from the on-disk cache tokenizes, counts, cuts and decodes as the file read afresh; a damaged
    /// entry is rebuilt, and an edited file gets an entry of its own.
    #[test]
    fn a_cached_model_gives_what_the_file_gives() {
        let dir = edited_dir("sb-cached-model", |_| {});
        let cache = tempfile::tempdir().unwrap();
        let fresh = Tokenizer::from_path_with_cache(&dir, None).unwrap();
        let first = Tokenizer::from_path_with_cache(&dir, Some(cache.path())).unwrap();
        let cached = Tokenizer::from_path_with_cache(&dir, Some(cache.path())).unwrap();
        assert!(!fresh.model_from_cache() && !first.model_from_cache());
        assert!(cached.model_from_cache());
        for text in tricky_texts() {
            let ids = fresh.encode(&text).unwrap();
            assert_eq!(cached.encode(&text).unwrap(), ids, "{text:?}");
            assert_eq!(cached.encode_uncached(&text).unwrap(), ids, "{text:?}");
            assert_eq!(
                cached.encode_word_starts(&text).unwrap(),
                fresh.encode_word_starts(&text).unwrap()
            );
            assert_eq!(
                cached.count_with_special(&text).unwrap(),
                fresh.count_with_special(&text).unwrap()
            );
            assert_eq!(cached.decode(&ids).unwrap(), fresh.decode(&ids).unwrap());
        }
        assert_eq!(cached.vocab_size(), fresh.vocab_size());
        assert_eq!(cached.cuts_at_word_starts(), fresh.cuts_at_word_starts());
        let entries = || -> Vec<PathBuf> {
            std::fs::read_dir(cache.path().join("tokenizers"))
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect()
        };
        // Damaged: not used, written again.
        let entry = entries().pop().unwrap();
        let len = std::fs::metadata(&entry).unwrap().len();
        std::fs::write(&entry, &std::fs::read(&entry).unwrap()[..len as usize / 2]).unwrap();
        let rebuilt = Tokenizer::from_path_with_cache(&dir, Some(cache.path())).unwrap();
        assert!(!rebuilt.model_from_cache());
        assert_eq!(std::fs::metadata(&entry).unwrap().len(), len);
        assert!(Tokenizer::from_path_with_cache(&dir, Some(cache.path()))
            .unwrap()
            .model_from_cache());
        // An edited file: a miss, then its own entry; its own ids.
        let edited = edited_dir("sb-cached-model-edited", |t| {
            t["added_tokens"]
                .as_array_mut()
                .unwrap()
                .push(serde_json::json!({"id": 49152,
                "content": "<new>", "single_word": false, "lstrip": false, "rstrip": false,
                "normalized": false, "special": true}))
        });
        assert!(
            !Tokenizer::from_path_with_cache(&edited, Some(cache.path()))
                .unwrap()
                .model_from_cache()
        );
        let t = Tokenizer::from_path_with_cache(&edited, Some(cache.path())).unwrap();
        assert!(t.model_from_cache());
        assert_eq!(
            t.encode_with_special("a<new>").unwrap().last(),
            Some(&49152)
        );
        assert_eq!(entries().len(), 2);
    }

    /// A settled file met before is named by its stamp, not read: read only for the full pipeline (checked
    /// against its key there), and read again once it changed.
    #[test]
    fn a_settled_tokenizer_file_is_not_read_again() {
        let dir = edited_dir("sb-stamped", |_| {});
        let cache = tempfile::tempdir().unwrap();
        // A file changed less than `SETTLED` ago gets no stamp (its change time cannot be set back).
        std::thread::sleep(crate::stamp::SETTLED + std::time::Duration::from_millis(200));
        let fresh = Tokenizer::from_path_with_cache(&dir, None).unwrap();
        let reads = || FILE_READS.with(std::cell::Cell::get);
        let load = || Tokenizer::from_path_with_cache(&dir, Some(cache.path())).unwrap();
        let before = reads();
        let first = load();
        assert_eq!(reads(), before + 1);
        let second = load();
        assert_eq!(reads(), before + 1, "a stamped file was read");
        assert!(second.model_from_cache() && !first.model_from_cache());
        for text in tricky_texts() {
            assert_eq!(second.encode(&text).unwrap(), fresh.encode(&text).unwrap());
        }
        // The full pipeline reads the file then, and it is the same file.
        second.build_pipeline().unwrap();
        assert_eq!(reads(), before + 2);
        assert_eq!(
            second.encode_with_special("a<|im_start|>b").unwrap(),
            fresh.encode_with_special("a<|im_start|>b").unwrap()
        );
        // Edited while a load still holds only its key: the full pipeline refuses the new content.
        let third = load();
        assert_eq!(reads(), before + 2);
        let mut tok = builtin_json();
        tok["added_tokens"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({"id": 49152,
            "content": "<new>", "single_word": false, "lstrip": false, "rstrip": false,
            "normalized": false, "special": true}));
        std::fs::write(dir.join("tokenizer.json"), tok.to_string()).unwrap();
        assert!(matches!(
            third.build_pipeline(),
            Err(TokenizeError::Changed(p)) if p.ends_with("tokenizer.json")
        ));
        // The next load reads the edited file.
        let edited = load();
        assert_eq!(reads(), before + 4);
        assert!(!edited.model_from_cache());
        assert_eq!(
            edited.encode_with_special("a<new>").unwrap().last(),
            Some(&49152)
        );
        // A stamp whose key the content does not have (times that missed a write): the load that meets it
        // forgets it and reads the file.
        let file = dir.join("tokenizer.json");
        std::thread::sleep(crate::stamp::SETTLED + std::time::Duration::from_millis(200));
        let wrong = Key::of(b"not this file");
        crate::stamp::record(
            cache.path(),
            &file,
            crate::stamp::Identity::of(&file),
            &wrong,
        );
        assert_eq!(crate::stamp::known_key(cache.path(), &file), Some(wrong));
        let reads_before = reads();
        let healed = load();
        assert!(healed.model_from_cache());
        // Read once to find the mismatch, once by the load that starts again without the stamp.
        assert_eq!(reads(), reads_before + 2);
        assert_eq!(
            crate::stamp::known_key(cache.path(), &file),
            Some(Key::of(&std::fs::read(&file).unwrap()))
        );
    }

    /// A corpus encoded once is read back by the next load of the same file: the same ids and word starts,
    /// and its words in the word cache (cutting prompts from it re-encodes words without merging any).
    #[test]
    fn an_encoded_corpus_is_read_back_with_its_words() {
        let dir = edited_dir("sb-encoded-corpus", |_| {});
        let cache = tempfile::tempdir().unwrap();
        // No added token in it: the word cache encodes it (a text with one goes through `tokenizers`).
        let text: Vec<String> = tricky_texts()
            .into_iter()
            .filter(|t| !t.contains("<|"))
            .collect();
        let text = text.join(" ");
        let fresh = Tokenizer::from_path_with_cache(&dir, None).unwrap();
        let expected = fresh.encode_word_starts(&text).unwrap();
        let first = Tokenizer::from_path_with_cache(&dir, Some(cache.path())).unwrap();
        // A word the cache met before, not in the corpus: not kept with the corpus's entry.
        first.encode(" quagga").unwrap();
        assert_eq!(first.encode_corpus(&text).unwrap(), expected);
        let entries = || -> Vec<PathBuf> {
            std::fs::read_dir(cache.path().join("encoded"))
                .map(|d| d.map(|e| e.unwrap().path()).collect())
                .unwrap_or_default()
        };
        assert_eq!(entries().len(), 1);
        let lazy_tables = |t: &Tokenizer| match &t.pipeline {
            Pipeline::Lazy(l) => l.bpe.tables_built(),
            Pipeline::Built(_) => panic!("a byte-level BPE is read lazily"),
        };
        let next = Tokenizer::from_path_with_cache(&dir, Some(cache.path())).unwrap();
        assert!(next.model_from_cache() && !lazy_tables(&next));
        assert_eq!(next.encode_corpus(&text).unwrap(), expected);
        for part in [" quick brown fox", " The quick", " lazy dog."] {
            assert_eq!(next.encode(part).unwrap(), fresh.encode(part).unwrap());
        }
        assert!(!lazy_tables(&next), "a word of the corpus was merged again");
        assert_eq!(
            next.encode(" quagga").unwrap(),
            fresh.encode(" quagga").unwrap()
        );
        assert!(
            lazy_tables(&next),
            "a word from outside the corpus was kept with it"
        );
        // Another text: its own entry. A damaged entry: encoded again and rewritten.
        let other = Tokenizer::from_path_with_cache(&dir, Some(cache.path())).unwrap();
        assert_eq!(
            other.encode_corpus("other text").unwrap(),
            fresh.encode_word_starts("other text").unwrap()
        );
        assert_eq!(entries().len(), 2);
        for e in entries() {
            let len = std::fs::metadata(&e).unwrap().len();
            std::fs::write(&e, &std::fs::read(&e).unwrap()[..len as usize - 3]).unwrap();
        }
        let again = Tokenizer::from_path_with_cache(&dir, Some(cache.path())).unwrap();
        assert_eq!(again.encode_corpus(&text).unwrap(), expected);
        assert!(lazy_tables(&again), "a damaged entry is not used");
        let last = Tokenizer::from_path_with_cache(&dir, Some(cache.path())).unwrap();
        assert_eq!(last.encode_corpus(&text).unwrap(), expected);
        assert!(!lazy_tables(&last), "the entry was written again");
        // Without a cache folder: encoded every time, the same ids.
        assert_eq!(fresh.encode_corpus(&text).unwrap(), expected);
    }

    #[test]
    fn a_file_tokenizers_panics_on_is_an_error() {
        // `tokenizers` 0.22 slices a merge's second token past its end when the subword prefix is longer.
        let dir = edited_dir("sb-panicky", |t| {
            t["model"]["continuing_subword_prefix"] = serde_json::json!("##")
        });
        let err = Tokenizer::from_path(&dir).unwrap_err().to_string();
        assert!(err.contains("is not a valid tokenizer.json"), "{err}");
        assert!(err.contains("tokenizers library failed"), "{err}");
    }

    #[test]
    fn missing_file_error_says_what_to_do() {
        let e = Tokenizer::from_path("/nonexistent/tokenizer.json").unwrap_err();
        assert!(e.to_string().contains("--tokenizer"), "{e}");
    }

    #[test]
    fn config_templates() {
        let cfg = serde_json::json!({"chat_template": [{"name": "tool_use", "template": "T"}, {"name": "default", "template": "D"}]});
        assert_eq!(template_in_config(&cfg).as_deref(), Some("D"));
        let cfg = serde_json::json!({"bos_token": {"content": "<s>"}});
        assert_eq!(token_str(cfg.get("bos_token")).as_deref(), Some("<s>"));
    }
}
