//! Output paths checked before any work: a result must never be lost at the end of a run because its file
//! cannot be written (a directory given as a file, a parent that is a file, a folder without write permission).
//!
//! The checks change nothing that exists: an existing file is opened for appending (not truncated), a folder
//! is probed with a temporary file that is removed at once, and missing folders are not created (the nearest
//! existing one is checked instead).

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
#[error("cannot write {}: {reason}", path.display())]
pub struct OutputPathError {
    pub path: PathBuf,
    pub reason: String,
}

fn err(path: &Path, reason: impl Into<String>) -> OutputPathError {
    OutputPathError {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// `path` can be created or appended to as a file.
pub fn ensure_writable_file(path: &Path) -> Result<(), OutputPathError> {
    if path.as_os_str().is_empty() {
        return Err(err(path, "the path is empty: give a file name"));
    }
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => Err(err(
            path,
            "it is a directory; give a file path (e.g. DIR/result.jsonl)",
        )),
        Ok(_) => std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .map(drop)
            .map_err(|e| {
                err(
                    path,
                    format!("{e}; choose another file or fix its permissions"),
                )
            }),
        Err(_) => {
            let parent = path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            ensure_writable_dir(parent).map_err(|e| err(path, e.to_string()))
        }
    }
}

/// `path` is, or can be created as, a folder in which files can be written.
pub fn ensure_writable_dir(path: &Path) -> Result<(), OutputPathError> {
    if path.as_os_str().is_empty() {
        return ensure_writable_dir(Path::new("."));
    }
    // The nearest folder that exists: the one to probe.
    let mut existing = path;
    loop {
        match std::fs::metadata(existing) {
            Ok(m) if m.is_dir() => break,
            Ok(_) => {
                return Err(err(
                    path,
                    format!(
                        "{} is a file, not a folder; choose another path",
                        existing.display()
                    ),
                ))
            }
            // Missing, or under a file ("not a directory"): look further up.
            Err(e) => {
                existing = match existing.parent() {
                    Some(p) if !p.as_os_str().is_empty() => p,
                    Some(_) if existing != Path::new(".") => Path::new("."),
                    _ => return Err(err(path, e.to_string())),
                };
            }
        }
    }
    probe(existing).map_err(|e| {
        err(
            path,
            format!(
                "folder {} is not writable ({e}); choose another folder or fix its permissions",
                existing.display()
            ),
        )
    })
}

/// Creates and removes a uniquely named file in `dir`.
fn probe(dir: &Path) -> std::io::Result<()> {
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let p = dir.join(format!(
        ".servebench-write-check-{}-{n}",
        std::process::id()
    ));
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&p)?;
    std::fs::remove_file(&p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp() -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "sb-outpath-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn files_and_folders_that_can_be_written_pass_and_leave_nothing() {
        let d = tmp();
        ensure_writable_file(&d.join("r.jsonl")).unwrap();
        ensure_writable_file(&d.join("new/sub/r.jsonl")).unwrap();
        ensure_writable_dir(&d.join("new/sub")).unwrap();
        std::fs::write(d.join("old.jsonl"), "kept\n").unwrap();
        ensure_writable_file(&d.join("old.jsonl")).unwrap();
        assert_eq!(
            std::fs::read_to_string(d.join("old.jsonl")).unwrap(),
            "kept\n"
        );
        let left: Vec<_> = std::fs::read_dir(&d).unwrap().collect();
        assert_eq!(left.len(), 1, "only old.jsonl: {left:?}");
        assert!(!d.join("new").exists(), "no folder is created");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_directory_a_file_parent_and_an_empty_path_are_refused() {
        let d = tmp();
        let e = ensure_writable_file(&d).unwrap_err().to_string();
        assert!(e.contains("it is a directory"), "{e}");
        std::fs::write(d.join("f"), "").unwrap();
        let e = ensure_writable_file(&d.join("f/r.jsonl"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("f/r.jsonl") && e.contains("is a file, not a folder"),
            "{e}"
        );
        let e = ensure_writable_dir(&d.join("f/out"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("is a file, not a folder"), "{e}");
        let e = ensure_writable_file(Path::new("")).unwrap_err().to_string();
        assert!(e.contains("empty"), "{e}");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_folder_nobody_can_write_is_refused() {
        // /proc takes no new files, not even from root (a 0555 folder would not stop root).
        let e = ensure_writable_file(Path::new("/proc/servebench-result.jsonl"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("folder /proc is not writable") && e.contains("servebench-result.jsonl"),
            "{e}"
        );
    }
}
