//! Incremental Server-Sent-Events framing (WHATWG rules that matter for LLM servers).
//!
//! Bytes are fed as they arrive from the socket; complete events come out. A line may end with `\n`, `\r\n`
//! or `\r` (also split across two reads), several `data:` lines form one event joined by `\n`, comment lines
//! (`:`) and other fields are ignored, and an event is dispatched on an empty line. Servers that omit the
//! blank line between `data:` lines (one JSON per line, as some do) are handled by [`SseParser::flush`] at the end
//! and by the `lenient` rule: a `data:` line that starts a new JSON object while the previous data is already
//! a complete JSON object dispatches the previous one.
//!
//! Timing: an event whose data is already a complete JSON object (or `[DONE]`) when a read has been framed is
//! dispatched at once, without waiting for the blank line: a server that ends each `data:` line with a single `\n`
//! (and sends the blank line later, or never) gets each event timed by the read that brought it, as
//! `sglang.bench_serving` reacts per line. A UTF-8 byte-order mark at the start of the stream is skipped (WHATWG),
//! also when it is split across reads.

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
    /// Past the start of the stream (a byte-order mark can only come first).
    started: bool,
    /// Bytes of a byte-order mark matched so far at the start of the stream.
    bom: u8,
}

const BOM: &[u8; 3] = b"\xEF\xBB\xBF";

impl SseParser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds bytes; calls `on_event` with the data of each complete event (UTF-8 lossless where valid).
    pub fn feed(&mut self, mut bytes: &[u8], mut on_event: impl FnMut(&[u8])) {
        if !self.started {
            let Some(rest) = self.skip_bom(bytes) else {
                return;
            };
            bytes = rest;
        }
        self.frame(bytes, &mut on_event);
        // An event left without its blank line at the end of a read: dispatched now when it is already whole.
        if self.has_data && is_whole_event(&self.data) {
            self.dispatch(&mut on_event);
        }
    }

    /// At the start of the stream: consumes a (possibly split) byte-order mark. None: all of `bytes` was a
    /// prefix of the mark.
    fn skip_bom<'a>(&mut self, bytes: &'a [u8]) -> Option<&'a [u8]> {
        let need = &BOM[self.bom as usize..];
        let n = need.len().min(bytes.len());
        if bytes[..n] == need[..n] {
            self.bom += n as u8;
            if (self.bom as usize) < BOM.len() {
                return None;
            }
            self.started = true;
            return Some(&bytes[n..]);
        }
        // Not a mark: the bytes taken for one are data.
        self.started = true;
        let taken = self.bom as usize;
        self.partial.extend_from_slice(&BOM[..taken]);
        Some(bytes)
    }

    fn frame(&mut self, mut bytes: &[u8], on_event: &mut impl FnMut(&[u8])) {
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
                        (*on_event)(v.strip_prefix(b" ").unwrap_or(v));
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
                        self.line(&bytes[..pos], on_event);
                    } else {
                        self.partial.extend_from_slice(&bytes[..pos]);
                        let line = std::mem::take(&mut self.partial);
                        self.line(&line, on_event);
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
        if !self.started && self.bom > 0 {
            // The stream was only part of a byte-order mark.
            self.started = true;
            self.partial.extend_from_slice(&BOM[..self.bom as usize]);
        }
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

/// An event that no further `data:` line can extend into anything valid: `[DONE]` or a complete JSON object.
fn is_whole_event(data: &[u8]) -> bool {
    data == b"[DONE]" || looks_complete_json(data)
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

    /// Events per read: what each `feed` dispatched.
    fn per_read(chunks: &[&[u8]]) -> Vec<Vec<String>> {
        let mut p = SseParser::new();
        chunks
            .iter()
            .map(|c| {
                let mut out = Vec::new();
                p.feed(c, |e| out.push(String::from_utf8_lossy(e).into_owned()));
                out
            })
            .collect()
    }

    #[test]
    fn a_whole_json_line_ended_by_one_newline_is_dispatched_by_its_own_read() {
        let reads: [&[u8]; 4] = [
            b"data: {\"a\":1}\n",
            b"\ndata: {\"b\":",
            b"2}\n",
            b"data: [DONE]\n",
        ];
        assert_eq!(
            per_read(&reads),
            vec![vec!["{\"a\":1}"], vec![], vec!["{\"b\":2}"], vec!["[DONE]"]]
        );
        // CRLF servers too.
        let crlf: [&[u8]; 2] = [b"data: {\"a\":1}\r\n", b"\r\ndata: [DONE]\r\n\r\n"];
        assert_eq!(per_read(&crlf), vec![vec!["{\"a\":1}"], vec!["[DONE]"]]);
        // Data that is not yet a whole object waits for its blank line (multi-line events still join).
        let multi: [&[u8]; 3] = [b"data: {\"a\":\n", b"data: 1}\n", b"\n"];
        assert_eq!(per_read(&multi), vec![vec![], vec!["{\"a\":\n1}"], vec![]]);
        let text: [&[u8]; 2] = [b"data: hello\n", b"\n"];
        assert_eq!(per_read(&text), vec![vec![], vec!["hello"]]);
    }

    #[test]
    fn a_leading_byte_order_mark_is_skipped_even_split() {
        let whole: &[u8] = b"\xEF\xBB\xBFdata: {\"a\":1}\n\ndata: [DONE]\n\n";
        let expect = vec!["{\"a\":1}", "[DONE]"];
        for cut in 0..whole.len() {
            let (a, b) = whole.split_at(cut);
            assert_eq!(events_of(&[a, b]), expect, "cut at {cut}");
        }
        let bytes: Vec<&[u8]> = whole.chunks(1).collect();
        assert_eq!(events_of(&bytes), expect);
        // Only at the start; and bytes that merely begin like a mark are kept.
        assert_eq!(events_of(&[b"\xEFdata: x\n\n"]), Vec::<String>::new());
        assert_eq!(events_of(&[b"\xEF", b"\xBB"]), Vec::<String>::new());
        let later = events_of(&[b"data: a\n\n\xEF\xBB\xBFdata: b\n\n"]);
        assert_eq!(later, vec!["a"]);
    }

    #[test]
    fn data_without_space_and_empty_data() {
        assert_eq!(events_of(&[b"data:x\n\ndata\n\n"]), vec!["x", ""]);
    }
}
