//! The launched server's output: both pipes copied line by line into its log file with secrets scrubbed, and the
//! last lines kept in memory for error messages.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};

use crate::secrets::Redactor;

/// Lines kept for error messages.
pub const TAIL_LINES: usize = 20;

/// Copies a child's output into its log.
#[derive(Clone)]
pub(crate) struct LogPump {
    tail: Arc<Mutex<VecDeque<String>>>,
    file: Arc<Mutex<File>>,
    redactor: Arc<Redactor>,
}

impl LogPump {
    pub(crate) fn create(path: &Path, redactor: Redactor) -> std::io::Result<LogPump> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let file = File::create(path)?;
        Ok(LogPump {
            tail: Arc::new(Mutex::new(VecDeque::with_capacity(TAIL_LINES))),
            file: Arc::new(Mutex::new(file)),
            redactor: Arc::new(redactor),
        })
    }

    /// A line of servebench's own in the log (e.g. the command it launched).
    pub(crate) fn note(&self, line: &str) {
        self.push(&format!("[servebench] {line}"));
    }

    fn push(&self, line: &str) {
        let line = self.redactor.scrub(line);
        if let Ok(mut f) = self.file.lock() {
            let _ = writeln!(f, "{line}");
        }
        if let Ok(mut t) = self.tail.lock() {
            if t.len() == TAIL_LINES {
                t.pop_front();
            }
            t.push_back(line);
        }
    }

    /// Copies `from` into the log on its own thread until the pipe closes.
    pub(crate) fn pump(&self, from: impl Read + Send + 'static) {
        let me = self.clone();
        let spawned = std::thread::Builder::new()
            .name("server-log".into())
            .spawn(move || {
                let mut r = BufReader::new(from);
                let mut buf = Vec::new();
                loop {
                    buf.clear();
                    match r.read_until(b'\n', &mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {
                            let text = String::from_utf8_lossy(&buf);
                            me.push(text.trim_end_matches(['\n', '\r']));
                        }
                    }
                }
            });
        if let Err(e) = spawned {
            self.note(&format!("cannot copy the server's output: {e}"));
        }
    }

    /// The last lines written, oldest first.
    pub(crate) fn tail(&self) -> Vec<String> {
        self.tail
            .lock()
            .map(|t| t.iter().cloned().collect())
            .unwrap_or_default()
    }
}

/// Lines for an error message: "last lines of LOG:\n  …".
pub(crate) fn format_tail(path: &Path, lines: &[String]) -> String {
    if lines.is_empty() {
        return format!("its log {} is empty", path.display());
    }
    let mut s = format!("last lines of {}:", path.display());
    for l in lines {
        s.push_str("\n  ");
        s.push_str(l);
    }
    s
}
