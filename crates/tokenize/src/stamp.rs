//! Content keys known from a file's identity, so that a file met before is not read again to be named.
//!
//! Naming a `tokenizer.json` for the caches means hashing all of it (11 MB for Qwen2: reading it, faulting in
//! as much fresh memory, two hashes). A stamp records, for one file, its identity (device, inode, size,
//! modification and change times) and the content key it had; while the file keeps that identity its key is
//! known without reading it. Any write to the file, or a rename or link over it, changes its change time
//! (which no user call can set back), its inode or its size, so a stamp never names an edited file.
//!
//! A stamp is recorded only for a file that has settled: unchanged for [`SETTLED`], and the same before and
//! after it was read. A file written again within the file system's time granularity of the stamp (the
//! "racily clean" case of git's index) could otherwise keep its times while its content moved on.
//!
//! Stamps live in the cache folder's `stamps/`, one sealed entry per file, named for the file's canonical
//! path; they are pruned like other entries.

use crate::disk::{self, Key, Reader};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

/// A file changed less than this long ago gets no stamp.
pub(crate) const SETTLED: Duration = Duration::from_secs(2);

const MAGIC: &[u8; 16] = b"servebench-stamp";

fn code_version() -> u64 {
    static V: OnceLock<u64> = OnceLock::new();
    *V.get_or_init(|| disk::code_version(&[include_str!("stamp.rs"), include_str!("disk.rs")]))
}

/// What a file looks like to `stat`: device, inode, size, and modification and change times (seconds,
/// nanoseconds).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct Identity {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Identity {
    /// The identity of the file `path` names (links followed); None where it cannot be read or the system
    /// tells no inode and change time.
    #[cfg(unix)]
    pub(crate) fn of(path: &Path) -> Option<Identity> {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(path).ok()?;
        Some(Identity {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        })
    }

    #[cfg(not(unix))]
    pub(crate) fn of(_path: &Path) -> Option<Identity> {
        None
    }

    /// Whether neither time is within [`SETTLED`] of `now` (nor after it).
    fn settled(&self, now: SystemTime) -> bool {
        let Ok(now) = now.duration_since(SystemTime::UNIX_EPOCH) else {
            return false;
        };
        let newest = self.mtime.max(self.ctime);
        let (Ok(secs), Ok(nanos)) = (u64::try_from(newest.0), u32::try_from(newest.1)) else {
            return false;
        };
        if nanos >= 1_000_000_000 {
            return false;
        }
        now.checked_sub(Duration::new(secs, nanos))
            .is_some_and(|age| age >= SETTLED)
    }

    fn write(&self, out: &mut disk::Writer) {
        for v in [self.dev, self.ino, self.size] {
            out.u64(v);
        }
        for (s, ns) in [self.mtime, self.ctime] {
            out.u64(s as u64);
            out.u64(ns as u64);
        }
    }

    fn read(r: &mut Reader<'_>) -> Option<Identity> {
        let (dev, ino, size) = (r.u64()?, r.u64()?, r.u64()?);
        let mut time = || Some((r.u64()? as i64, r.u64()? as i64));
        let (mtime, ctime) = (time()?, time()?);
        Some(Identity {
            dev,
            ino,
            size,
            mtime,
            ctime,
        })
    }
}

/// The stamp file of `file` in the cache folder `dir`, and the key it is sealed with (the canonical path's).
fn entry_of(dir: &Path, file: &Path) -> Option<(PathBuf, Key)> {
    let canonical = std::fs::canonicalize(file).ok()?;
    let key = Key::of(canonical.as_os_str().as_encoded_bytes());
    Some((dir.join("stamps").join(format!("{}.bin", key.name())), key))
}

/// The content key recorded for `file` in `dir`, if the file still has the identity it had then.
pub(crate) fn known_key(dir: &Path, file: &Path) -> Option<Key> {
    let (path, path_key) = entry_of(dir, file)?;
    let entry = disk::read_entry(&path)?;
    let payload = disk::unseal(&entry, MAGIC, code_version(), &[&path_key])?;
    let mut r = Reader(payload);
    let (recorded, key) = (Identity::read(&mut r)?, Key::read(&mut r)?);
    (r.0.is_empty() && Some(recorded) == Identity::of(file)).then_some(key)
}

/// Removes `file`'s stamp (its content was found not to have the recorded key: a file system whose times
/// missed a write); the next load reads the file.
pub(crate) fn forget(dir: &Path, file: &Path) {
    if let Some((path, _)) = entry_of(dir, file) {
        let _ = std::fs::remove_file(path);
    }
}

/// Records `key` as the content key of `file`, read while it had identity `before`: only if it still has
/// it and has settled. Best-effort, like every cache write.
pub(crate) fn record(dir: &Path, file: &Path, before: Option<Identity>, key: &Key) {
    record_at(dir, file, before, key, SystemTime::now());
}

/// [`record`] with the clock read `now`.
fn record_at(dir: &Path, file: &Path, before: Option<Identity>, key: &Key, now: SystemTime) {
    let Some(before) = before else { return };
    if Identity::of(file) != Some(before) || !before.settled(now) {
        return;
    }
    let Some((path, path_key)) = entry_of(dir, file) else {
        return;
    };
    let mut payload = disk::Writer(Vec::with_capacity(80));
    before.write(&mut payload);
    key.write(&mut payload.0);
    let entry = disk::seal(MAGIC, code_version(), &[&path_key], &payload.0);
    disk::write_entry(&path, &entry);
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    /// A clock past the point where a file written now has settled.
    fn later() -> SystemTime {
        SystemTime::now() + SETTLED + Duration::from_secs(1)
    }

    fn write(path: &Path, content: &[u8]) -> Key {
        std::fs::write(path, content).unwrap();
        Key::of(content)
    }

    fn stamp_path(dir: &Path, file: &Path) -> PathBuf {
        entry_of(dir, file).unwrap().0
    }

    #[test]
    fn a_file_just_written_gets_no_stamp() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tokenizer.json");
        let key = write(&file, b"{}");
        record(dir.path(), &file, Identity::of(&file), &key);
        assert!(!stamp_path(dir.path(), &file).exists());
        assert_eq!(known_key(dir.path(), &file), None);
    }

    #[test]
    fn a_stamp_names_the_file_until_any_change() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("t.json");
        let key = write(&file, b"one");
        record_at(dir.path(), &file, Identity::of(&file), &key, later());
        assert_eq!(known_key(dir.path(), &file), Some(key));
        // The same file through another spelling of its path.
        let other = dir.path().join(".").join("t.json");
        assert_eq!(known_key(dir.path(), &other), Some(key));
        // Rewritten in place with content of the same size: the change time moves on.
        std::thread::sleep(Duration::from_millis(20));
        let two = write(&file, b"two");
        assert_eq!(known_key(dir.path(), &file), None);
        // Replaced by a rename.
        record_at(dir.path(), &file, Identity::of(&file), &two, later());
        assert_eq!(known_key(dir.path(), &file), Some(two));
        let tmp = dir.path().join("new");
        write(&tmp, b"333");
        std::fs::rename(&tmp, &file).unwrap();
        assert_eq!(known_key(dir.path(), &file), None);
        // Gone.
        std::fs::remove_file(&file).unwrap();
        assert_eq!(known_key(dir.path(), &file), None);
    }

    #[test]
    fn damaged_or_foreign_stamps_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("t.json");
        let key = write(&file, b"one");
        record_at(dir.path(), &file, Identity::of(&file), &key, later());
        let path = stamp_path(dir.path(), &file);
        let good = std::fs::read(&path).unwrap();
        for cut in 0..good.len() {
            std::fs::write(&path, &good[..cut]).unwrap();
            assert_eq!(known_key(dir.path(), &file), None, "cut at {cut}");
        }
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x40;
            std::fs::write(&path, &bad).unwrap();
            assert_eq!(known_key(dir.path(), &file), None, "byte {i} flipped");
        }
        std::fs::write(&path, &good).unwrap();
        assert_eq!(known_key(dir.path(), &file), Some(key));
        // Another file's stamp under this one's name.
        let second = dir.path().join("u.json");
        let other = write(&second, b"uno");
        record_at(dir.path(), &second, Identity::of(&second), &other, later());
        std::fs::copy(stamp_path(dir.path(), &second), &path).unwrap();
        assert_eq!(known_key(dir.path(), &file), None);
    }

    #[test]
    fn a_file_that_changed_while_read_gets_no_stamp() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("t.json");
        let key = write(&file, b"one");
        let before = Identity::of(&file);
        std::thread::sleep(Duration::from_millis(20));
        write(&file, b"two!");
        record_at(dir.path(), &file, before, &key, later());
        assert!(!stamp_path(dir.path(), &file).exists());
    }

    #[test]
    fn settled_needs_both_times_old_enough() {
        let id = |m: i64, c: i64| Identity {
            dev: 1,
            ino: 2,
            size: 3,
            mtime: (m, 0),
            ctime: (c, 0),
        };
        let at = |s: u64| SystemTime::UNIX_EPOCH + Duration::from_secs(s);
        assert!(id(100, 100).settled(at(102)));
        assert!(!id(100, 100).settled(at(101)));
        assert!(!id(100, 101).settled(at(102)));
        assert!(!id(101, 100).settled(at(102)));
        // A time in the future, or before the epoch, never settles.
        assert!(!id(200, 100).settled(at(102)));
        assert!(!id(-5, -5).settled(at(102)));
    }
}
