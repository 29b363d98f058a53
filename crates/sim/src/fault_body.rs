//! The byte-level faults of the matrix: a wrapper around a stream's SSE bytes that re-frames, decorates, splits,
//! paces or stalls them ([`crate::Fault`]).

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};

use crate::faults::{Fault, FaultSet};
use crate::framing::DONE;

/// How long a stalled stream waits (the client gives up first; the task ends when the connection does or the
/// server shuts down).
const STALL: Duration = Duration::from_secs(3600);
/// Pause between the pieces of `byte_per_read`.
const BYTE_PACE: Duration = Duration::from_millis(1);
/// Pause between the halves of a split character (`utf8_split`).
const UTF8_PACE: Duration = Duration::from_millis(5);
/// Two-byte UTF-8 character (é) the text faults use.
const E_ACUTE: [u8; 2] = [0xC3, 0xA9];

const ERROR_EVENT: &[u8] = b"data: {\"error\": {\"message\": \"simulated error in the stream (fault error_event)\", \"type\": \"InternalServerError\", \"param\": null, \"code\": 500}}\n\n";

/// Faults applied here (the others act before the body or inside the chunk writer).
pub(crate) fn applies(set: FaultSet) -> bool {
    [
        Fault::StallFirst,
        Fault::StallMid,
        Fault::ErrorEvent,
        Fault::SplitBytes,
        Fault::Utf8Split,
        Fault::InvalidUtf8,
        Fault::NoDone,
        Fault::Ping,
        Fault::Crlf,
        Fault::SingleNewline,
        Fault::Bom,
        Fault::BytePerRead,
        Fault::NoEndAfterDone,
    ]
    .into_iter()
    .any(|f| set.has(f))
}

struct State<S> {
    inner: S,
    set: FaultSet,
    /// Pieces to send, each with whether to pause before it.
    queue: VecDeque<(Bytes, bool)>,
    pace: Option<Duration>,
    frames: u32,
    ended: bool,
}

/// Wraps `inner` (a stream of SSE frames) with the byte-level faults of `set`.
pub(crate) fn wrap<S>(
    inner: S,
    set: FaultSet,
) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static
where
    S: Stream<Item = Result<Bytes, std::io::Error>> + Send + Unpin + 'static,
{
    let pace = if set.has(Fault::BytePerRead) {
        Some(BYTE_PACE)
    } else if set.has(Fault::Utf8Split) {
        Some(UTF8_PACE)
    } else {
        None
    };
    let st = State {
        inner,
        set,
        queue: VecDeque::new(),
        pace,
        frames: 0,
        ended: false,
    };
    futures_util::stream::unfold(st, |mut st| async move {
        loop {
            if let Some((b, pause)) = st.queue.pop_front() {
                if let Some(p) = st.pace.filter(|_| pause) {
                    tokio::time::sleep(p).await;
                }
                return Some((Ok(b), st));
            }
            if st.ended {
                return None;
            }
            if (st.frames == 0 && st.set.has(Fault::StallFirst))
                || (st.frames == 1 && st.set.has(Fault::StallMid))
            {
                tokio::time::sleep(STALL).await;
                return None;
            }
            if st.frames == 1 && st.set.has(Fault::ErrorEvent) {
                st.ended = true;
                let mut tail = ERROR_EVENT.to_vec();
                tail.extend_from_slice(DONE);
                st.push(tail);
                continue;
            }
            match st.inner.next().await {
                None => {
                    if st.set.has(Fault::NoEndAfterDone) {
                        tokio::time::sleep(STALL).await;
                    }
                    return None;
                }
                Some(Err(e)) => {
                    st.ended = true;
                    return Some((Err(e), st));
                }
                Some(Ok(frame)) => {
                    st.frames += 1;
                    let v = transform(&frame, st.set, st.frames == 1);
                    st.push(v);
                }
            }
        }
    })
}

impl<S> State<S> {
    /// Queues `v` as the pieces its faults ask for (pauses only inside a frame: frames keep their times).
    fn push(&mut self, v: Vec<u8>) {
        if self.set.has(Fault::SplitBytes) || self.set.has(Fault::BytePerRead) {
            self.queue.extend(
                v.iter()
                    .enumerate()
                    .map(|(i, b)| (Bytes::copy_from_slice(&[*b]), i > 0)),
            );
        } else if self.set.has(Fault::Utf8Split) {
            let mut start = 0;
            for i in 1..v.len() {
                if v[i - 1] == E_ACUTE[0] && v[i] == E_ACUTE[1] {
                    self.queue
                        .push_back((Bytes::copy_from_slice(&v[start..i]), start > 0));
                    start = i;
                }
            }
            self.queue
                .push_back((Bytes::copy_from_slice(&v[start..]), start > 0));
        } else if !v.is_empty() {
            self.queue.push_back((Bytes::from(v), false));
        }
    }
}

/// One frame's bytes with the re-framing faults applied.
fn transform(frame: &[u8], set: FaultSet, first: bool) -> Vec<u8> {
    let mut v = frame.to_vec();
    if set.has(Fault::NoDone) {
        v = replace(&v, DONE, b"");
    }
    if set.has(Fault::Ping) && !v.is_empty() {
        let mut p = b": ping\n\n".to_vec();
        p.extend_from_slice(&v);
        v = p;
    }
    if set.has(Fault::SingleNewline) {
        v = replace(&v, b"\n\n", b"\n");
    }
    if set.has(Fault::Crlf) {
        v = replace(&v, b"\n", b"\r\n");
    }
    if set.has(Fault::InvalidUtf8) {
        // 0xC3 followed by '(' is not UTF-8.
        if let Some(i) = v.windows(2).position(|w| w == E_ACUTE) {
            v[i + 1] = b'(';
        }
    }
    if set.has(Fault::Bom) && first {
        let mut b = vec![0xEF, 0xBB, 0xBF];
        b.extend_from_slice(&v);
        v = b;
    }
    v
}

fn replace(v: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.len() + v.len() / 8);
    let mut i = 0;
    while i < v.len() {
        if v[i..].starts_with(from) {
            out.extend_from_slice(to);
            i += from.len();
        } else {
            out.push(v[i]);
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(faults: &[Fault]) -> FaultSet {
        let mut s = FaultSet::default();
        for f in faults {
            s.insert(*f);
        }
        s
    }

    #[test]
    fn reframing_faults() {
        let frame = b"data: {\"a\":\"\xC3\xA9\"}\n\ndata: [DONE]\n\n";
        let t = |f: &[Fault], first| {
            String::from_utf8_lossy(&transform(frame, set(f), first)).into_owned()
        };
        assert_eq!(t(&[Fault::NoDone], false), "data: {\"a\":\"é\"}\n\n");
        assert_eq!(
            t(&[Fault::Crlf, Fault::Ping], false),
            ": ping\r\n\r\ndata: {\"a\":\"é\"}\r\n\r\ndata: [DONE]\r\n\r\n"
        );
        assert_eq!(
            t(&[Fault::SingleNewline], false),
            "data: {\"a\":\"é\"}\ndata: [DONE]\n"
        );
        assert!(transform(frame, set(&[Fault::Bom]), true).starts_with(b"\xEF\xBB\xBFdata"));
        assert!(transform(frame, set(&[Fault::Bom]), false).starts_with(b"data"));
        let bad = transform(frame, set(&[Fault::InvalidUtf8]), false);
        assert!(std::str::from_utf8(&bad).is_err());
    }

    #[tokio::test]
    async fn splits_stalls_and_error_events() {
        let frames = || {
            futures_util::stream::iter(vec![
                Ok(Bytes::from_static(b"data: {\"t\":\"\xC3\xA9\"}\n\n")),
                Ok(Bytes::from_static(b"data: [DONE]\n\n")),
            ])
        };
        let all = |f: &[Fault]| {
            let s = wrap(frames(), set(f));
            async move { s.map(|r| r.unwrap().to_vec()).collect::<Vec<_>>().await }
        };
        let bytes = all(&[Fault::SplitBytes]).await;
        assert!(bytes.iter().all(|b| b.len() == 1));
        assert_eq!(
            bytes.concat(),
            b"data: {\"t\":\"\xC3\xA9\"}\n\ndata: [DONE]\n\n"
        );
        let halves = all(&[Fault::Utf8Split]).await;
        assert_eq!(halves.len(), 3, "split inside the character: {halves:?}");
        assert!(halves[0].ends_with(&[0xC3]) && halves[1].starts_with(&[0xA9]));
        let err = all(&[Fault::ErrorEvent]).await.concat();
        assert!(String::from_utf8_lossy(&err).contains("\"error\""));
        assert!(err.ends_with(DONE));
        let stalled =
            tokio::time::timeout(Duration::from_millis(100), all(&[Fault::StallMid])).await;
        assert!(stalled.is_err(), "a stalled stream does not end");
    }
}
