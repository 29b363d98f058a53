//! Incremental Server-Sent-Events framing (WHATWG rules that matter for LLM servers).
//!
//! Bytes are fed as they arrive from the socket; complete events come out. A line may end with `\n`, `\r\n`
//! or `\r` (also split across two reads), several `data:` lines form one event joined by `\n`, comment lines
//! (`:`) and other fields are ignored, and an event is dispatched on an empty line. Servers that omit the
//! blank line between `data:` lines (one JSON per line, as some do) are handled by [`SseParser::flush`] at the end
//! and by the `lenient` rule: a `data:` line that starts a new JSON object while the previous data is already
//! a complete JSON object dispatches the previous one.

use memchr::memchr2;

/// Streaming SSE parser. Reuses its buffers: no allocation per event once warmed up.
#[derive(Debug, Default)]
pub struct SseParser {
    /// Bytes of an incomplete line carried over from the previous read.
    partial: Vec<u8>,
    /// Data of the event being assembled.
    data: Vec<u8>,
    has_data: bool,
    /// The previous read ended with `\r`: a `\n` at the start of the next read belongs to that line end.
    skip_lf: bool,
}

impl SseParser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds bytes; calls `on_event` with the data of each complete event (UTF-8 lossless where valid).
    pub fn feed(&mut self, mut bytes: &[u8], mut on_event: impl FnMut(&[u8])) {
        if self.skip_lf {
            if let Some(rest) = bytes.strip_prefix(b"\n") {
                bytes = rest;
            }
            self.skip_lf = false;
        }
        while !bytes.is_empty() {
            // The common event, `data: ...\n\n`, whole in this read: handed out without copying.
            if self.partial.is_empty() && !self.has_data && bytes.starts_with(b"data:") {
                if let Some(pos) = memchr2(b'\n', b'\r', bytes) {
                    if bytes[pos] == b'\n' && bytes.get(pos + 1) == Some(&b'\n') {
                        let v = &bytes[5..pos];
                        on_event(v.strip_prefix(b" ").unwrap_or(v));
                        bytes = &bytes[pos + 2..];
                        continue;
                    }
                }
            }
            match memchr2(b'\n', b'\r', bytes) {
                None => {
                    self.partial.extend_from_slice(bytes);
                    return;
                }
                Some(pos) => {
                    let end_len = if bytes[pos] == b'\r' {
                        if pos + 1 < bytes.len() {
                            if bytes[pos + 1] == b'\n' {
                                2
                            } else {
                                1
                            }
                        } else {
                            self.skip_lf = true;
                            1
                        }
                    } else {
                        1
                    };
                    if self.partial.is_empty() {
                        self.line(&bytes[..pos], &mut on_event);
                    } else {
                        self.partial.extend_from_slice(&bytes[..pos]);
                        let line = std::mem::take(&mut self.partial);
                        self.line(&line, &mut on_event);
                        self.partial = line;
                        self.partial.clear();
                    }
                    bytes = &bytes[pos + end_len..];
                }
            }
        }
    }

    /// End of stream: dispatches an event left without its closing blank line.
    pub fn flush(&mut self, mut on_event: impl FnMut(&[u8])) {
        if !self.partial.is_empty() {
            let line = std::mem::take(&mut self.partial);
            self.line(&line, &mut on_event);
        }
        self.dispatch(&mut on_event);
    }

    fn dispatch(&mut self, on_event: &mut impl FnMut(&[u8])) {
        if self.has_data {
            on_event(&self.data);
            self.data.clear();
            self.has_data = false;
        }
    }

    fn line(&mut self, line: &[u8], on_event: &mut impl FnMut(&[u8])) {
        if line.is_empty() {
            self.dispatch(on_event);
            return;
        }
        if line[0] == b':' {
            return; // comment / keep-alive
        }
        let (field, value) = match memchr::memchr(b':', line) {
            Some(i) => {
                let v = &line[i + 1..];
                (&line[..i], v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (line, &b""[..]),
        };
        if field != b"data" {
            return; // event:, id:, retry: carry nothing we need
        }
        if self.has_data {
            // Lenient: a server that sends `data: {..}\ndata: {..}\n` without blank lines.
            let starts_new = value.first() == Some(&b'{') || value == b"[DONE]";
            if starts_new && looks_complete_json(&self.data) {
                self.dispatch(on_event);
            } else {
                self.data.push(b'\n');
            }
        }
        self.data.extend_from_slice(value);
        self.has_data = true;
    }
}

/// A cheap check that `data` is one complete JSON object (balanced braces outside strings).
fn looks_complete_json(data: &[u8]) -> bool {
    if data.first() != Some(&b'{') {
        return false;
    }
    let mut depth: i64 = 0;
    let mut in_str = false;
    let mut esc = false;
    for (i, &b) in data.iter().enumerate() {
        if in_str {
            if esc {
                esc = false;
            } else if b == b'\\' {
                esc = true;
            } else if b == b'"' {
                in_str = false;
            }
            continue;
        }
        match b {
            b'"' => in_str = true,
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth -= 1;
                if depth == 0 {
                    return data[i + 1..].iter().all(|c| c.is_ascii_whitespace());
                }
            }
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events_of(chunks: &[&[u8]]) -> Vec<String> {
        let mut p = SseParser::new();
        let mut out = Vec::new();
        for c in chunks {
            p.feed(c, |e| out.push(String::from_utf8_lossy(e).into_owned()));
        }
        p.flush(|e| out.push(String::from_utf8_lossy(e).into_owned()));
        out
    }

    #[test]
    fn simple_events() {
        let ev = events_of(&[b"data: {\"a\":1}\n\ndata: [DONE]\n\n"]);
        assert_eq!(ev, vec!["{\"a\":1}", "[DONE]"]);
    }

    #[test]
    fn split_anywhere_gives_same_events() {
        let whole: &[u8] = b"data: {\"x\":\"h\\u00e9llo\"}\r\n\r\n: keep-alive\r\n\r\ndata: line1\r\ndata: line2\r\n\r\ndata:[DONE]\r\n\r\n";
        let expect = vec!["{\"x\":\"h\\u00e9llo\"}", "line1\nline2", "[DONE]"];
        for cut in 0..whole.len() {
            let (a, b) = whole.split_at(cut);
            assert_eq!(events_of(&[a, b]), expect, "cut at {cut}");
        }
        // byte by byte
        let bytes: Vec<&[u8]> = whole.chunks(1).collect();
        assert_eq!(events_of(&bytes), expect);
    }

    /// `\n\n` events (the copy-free path) mixed with multi-line and other fields, split at every byte.
    #[test]
    fn lf_events_split_anywhere_give_same_events() {
        let whole: &[u8] =
            b"data: {\"a\":1}\n\ndata:b\n\nid: 1\ndata: c1\ndata: c2\n\n: ping\n\ndata: {\"d\":2}\n\ndata: [DONE]\n\n";
        let expect = vec!["{\"a\":1}", "b", "c1\nc2", "{\"d\":2}", "[DONE]"];
        assert_eq!(events_of(&[whole]), expect);
        for cut in 0..whole.len() {
            let (a, b) = whole.split_at(cut);
            assert_eq!(events_of(&[a, b]), expect, "cut at {cut}");
        }
        let bytes: Vec<&[u8]> = whole.chunks(1).collect();
        assert_eq!(events_of(&bytes), expect);
    }

    #[test]
    fn bare_cr_line_endings() {
        assert_eq!(events_of(&[b"data: a\r\rdata: b\r", b"\r"]), vec!["a", "b"]);
    }

    #[test]
    fn several_events_in_one_read_and_other_fields() {
        let ev =
            events_of(&[b"event: message\nid: 3\ndata: 1\n\nretry: 10\ndata: 2\n\ndata: 3\n\n"]);
        assert_eq!(ev, vec!["1", "2", "3"]);
    }

    #[test]
    fn missing_blank_lines_between_json_events() {
        let ev = events_of(&[b"data: {\"a\":1}\ndata: {\"b\":2}\ndata: [DONE]"]);
        assert_eq!(ev, vec!["{\"a\":1}", "{\"b\":2}", "[DONE]"]);
    }

    #[test]
    fn event_without_trailing_blank_line_is_flushed() {
        assert_eq!(events_of(&[b"data: tail"]), vec!["tail"]);
    }

    #[test]
    fn data_without_space_and_empty_data() {
        assert_eq!(events_of(&[b"data:x\n\ndata\n\n"]), vec!["x", ""]);
    }
}
