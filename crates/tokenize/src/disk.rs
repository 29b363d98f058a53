//! What servebench's on-disk caches share: the folder, the content keys entries are named for, the sealed
//! entry layout (magic, code version, keys, payload length and checksum), little-endian reads and writes,
//! atomic writes and pruning. The caches themselves: [`crate::byte_bpe::cache`] (loaded BPE models) and
//! [`crate::encoded_cache`] (encoded prompt corpora).
//!
//! - An entry is named for the content it was made from (two 64-bit hashes of different families and the
//!   length) and for the version of the code that wrote it (a hash of its sources), so an edited input or
//!   other code never meets an old entry, and two builds run in turn keep one entry each.
//! - An entry carries its length and a checksum; a damaged one is ignored and rebuilt, never a panic.
//! - Writes go to a temporary file renamed into place: concurrent runs never read half an entry. Writing is
//!   best-effort: a read-only or missing folder only costs the speed.
//! - A hit renews the entry's modification time; writing an entry removes the entries (and leftover
//!   temporary files) of its folder not used for [`PRUNE_AFTER`].
//!
//! The folder: `$SERVEBENCH_CACHE_DIR` (set but empty: no cache), else the user's cache folder's
//! `servebench` (`~/.cache/servebench` on Linux).

use rustc_hash::FxHashMap;
use std::hash::{BuildHasher, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Entries not used for this long are removed when another is written.
pub(crate) const PRUNE_AFTER: std::time::Duration = std::time::Duration::from_secs(30 * 24 * 3600);

/// The environment variable naming the cache folder.
pub(crate) const DIR_VAR: &str = "SERVEBENCH_CACHE_DIR";

/// The cache folder: `$SERVEBENCH_CACHE_DIR` (empty: none), else the user cache folder's `servebench`.
/// This crate's own unit tests use none unless the variable names one (their many edited tokenizers would
/// fill the user's folder; the cache's tests use folders of their own).
pub(crate) fn default_dir() -> Option<PathBuf> {
    match std::env::var_os(DIR_VAR) {
        Some(d) if d.is_empty() => None,
        Some(d) => Some(PathBuf::from(d)),
        None if cfg!(test) => None,
        None => dirs::cache_dir().map(|d| d.join("servebench")),
    }
}

/// What identifies some content (a `tokenizer.json`, a corpus text).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct Key {
    fx: u64,
    fold: u64,
    len: u64,
}

impl Key {
    pub(crate) fn of(bytes: &[u8]) -> Key {
        let mut fold = foldhash::quality::FixedState::with_seed(0x5eb0_5eb0).build_hasher();
        fold.write(bytes);
        Key {
            fx: fx_hash(bytes),
            fold: fold.finish(),
            len: bytes.len() as u64,
        }
    }

    /// The key in an entry's name: `<fx><fold>-<length>`.
    pub(crate) fn name(&self) -> String {
        format!("{:016x}{:016x}-{}", self.fx, self.fold, self.len)
    }

    pub(crate) fn write(&self, out: &mut Vec<u8>) {
        for v in [self.fx, self.fold, self.len] {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Option<Key> {
        Some(Key {
            fx: r.u64()?,
            fold: r.u64()?,
            len: r.u64()?,
        })
    }
}

/// A hash of the sources of the code that writes and reads an entry (and the crate version).
pub(crate) fn code_version(sources: &[&str]) -> u64 {
    let mut h = rustc_hash::FxHasher::default();
    for source in sources.iter().chain([&env!("CARGO_PKG_VERSION")]) {
        h.write(source.as_bytes());
        h.write_u8(0xff);
    }
    h.finish()
}

/// The bytes of an entry before its payload: magic, code version, keys, payload length and checksum.
pub(crate) const fn header_len(keys: usize) -> usize {
    16 + 8 + 24 * keys + 8 + 8
}

/// An entry: `payload` sealed with its magic, code version, keys, length and checksum.
pub(crate) fn seal(magic: &[u8; 16], version: u64, keys: &[&Key], payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(header_len(keys.len()) + payload.len());
    out.extend_from_slice(magic);
    out.extend_from_slice(&version.to_le_bytes());
    for k in keys {
        k.write(&mut out);
    }
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(&fx_hash(payload).to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// The payload of an entry [`seal`] made with the same magic, version and keys, if it is whole.
pub(crate) fn unseal<'a>(
    entry: &'a [u8],
    magic: &[u8; 16],
    version: u64,
    keys: &[&Key],
) -> Option<&'a [u8]> {
    let mut r = Reader(entry);
    if r.take(magic.len())? != magic || r.u64()? != version {
        return None;
    }
    for k in keys {
        if Key::read(&mut r)? != **k {
            return None;
        }
    }
    let (len, sum) = (r.u64()?, r.u64()?);
    (r.0.len() as u64 == len && fx_hash(r.0) == sum).then_some(r.0)
}

/// An entry's bytes, if the file can be read; a hit renews its modification time (not pruned for a while).
pub(crate) fn read_entry(path: &Path) -> Option<Vec<u8>> {
    let bytes = std::fs::read(path).ok()?;
    if let Ok(f) = std::fs::File::options().write(true).open(path) {
        let _ = f.set_modified(std::time::SystemTime::now());
    }
    Some(bytes)
}

/// Writes `entry` to `path` through a temporary file renamed into place, then prunes the folder; false where
/// that failed (a cache is an optimization: callers go on).
pub(crate) fn write_entry(path: &Path, entry: &[u8]) -> bool {
    let Some(folder) = path.parent() else {
        return false;
    };
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let stem = path
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let tmp = folder.join(format!(".{stem}.{}.{nanos}.tmp", std::process::id()));
    let written = std::fs::create_dir_all(folder)
        .and_then(|()| std::fs::File::create(&tmp))
        .and_then(|mut f| f.write_all(entry))
        .and_then(|()| std::fs::rename(&tmp, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    prune(folder, PRUNE_AFTER);
    written.is_ok()
}

/// Removes the entries and temporary files of `folder` not modified for `age`.
pub(crate) fn prune(folder: &Path, age: std::time::Duration) {
    let Ok(list) = std::fs::read_dir(folder) else {
        return;
    };
    let now = std::time::SystemTime::now();
    for entry in list.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if !name.ends_with(".bin") && !name.ends_with(".tmp") {
            continue;
        }
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|t| now.duration_since(t).is_ok_and(|d| d > age));
        if old {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// FxHash of some bytes: one of a key's hashes, and an entry's checksum.
pub(crate) fn fx_hash(bytes: &[u8]) -> u64 {
    let mut h = rustc_hash::FxHasher::default();
    h.write(bytes);
    h.finish()
}

/// Little-endian writes.
pub(crate) struct Writer(pub(crate) Vec<u8>);

impl Writer {
    pub(crate) fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    pub(crate) fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub(crate) fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub(crate) fn len(&mut self, n: usize) {
        self.u64(n as u64);
    }
    pub(crate) fn bytes(&mut self, b: &[u8]) {
        self.len(b.len());
        self.0.extend_from_slice(b);
    }
    pub(crate) fn str(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }
    /// A map of texts to ids, in key order.
    pub(crate) fn text_ids(&mut self, map: &FxHashMap<Box<str>, u32>) {
        let mut pairs: Vec<_> = map.iter().collect();
        pairs.sort_unstable();
        self.len(pairs.len());
        for (text, &id) in pairs {
            self.str(text);
            self.u32(id);
        }
    }
}

/// Checked little-endian reads: `None` past the end.
pub(crate) struct Reader<'a>(pub(crate) &'a [u8]);

impl<'a> Reader<'a> {
    pub(crate) fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.0.len() {
            return None;
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Some(head)
    }
    pub(crate) fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }
    pub(crate) fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    pub(crate) fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    pub(crate) fn bool(&mut self) -> Option<bool> {
        match self.u8()? {
            0 => Some(false),
            1 => Some(true),
            _ => None,
        }
    }
    /// A count of items of at least `item` bytes each, no more than the bytes left can hold (a damaged
    /// count never allocates much).
    pub(crate) fn count(&mut self, item: usize) -> Option<usize> {
        let n = usize::try_from(self.u64()?).ok()?;
        (n.checked_mul(item)? <= self.0.len()).then_some(n)
    }
    pub(crate) fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = self.count(1)?;
        self.take(n)
    }
    pub(crate) fn str(&mut self) -> Option<&'a str> {
        std::str::from_utf8(self.bytes()?).ok()
    }
    /// What [`Writer::text_ids`] wrote, into `map`.
    pub(crate) fn text_ids(&mut self, map: &mut FxHashMap<Box<str>, u32>) -> Option<()> {
        for _ in 0..self.count(12)? {
            let (text, id) = (self.str()?, self.u32()?);
            map.insert(text.into(), id);
        }
        Some(())
    }
}
