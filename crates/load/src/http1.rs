//! The native HTTP/1.1 client for plain-TCP servers: one request per keep-alive connection at a time, the
//! response body read in the request's own task straight from the socket into one buffer per connection.
//!
//! Why not reqwest here: hyper hands body bytes from its connection task to the reader through a channel
//! (two wake-ups and one `Bytes` per read) and reqwest adds layers per frame; at hundreds of thousands of
//! chunks per second that is most of the client's CPU, and a burst of 1,024 sends queued behind each other
//! in hyper's pool delays the reading of first tokens. This client writes a request with one `write`, parses
//! the head with `httparse` (hyper's own parser), decodes the chunked framing in place and hands the payload
//! slices to the caller, stamped with the time the read returned. TLS and proxies stay with reqwest
//! ([`crate::client`] picks).

use crate::monitor::ReadLag;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncRead, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

/// First read buffer of a connection (a slow stream never needs more).
const BUF_START: usize = 4 * 1024;
/// The buffer doubles while reads fill it, up to this.
const BUF_MAX: usize = 64 * 1024;
/// A read that took bytes more than this after they arrived counts as late (the client was busy).
pub const LATE_READ: Duration = Duration::from_millis(1);
/// A kernel timestamp older than this is not trusted (a clock step): the read time is used.
const MAX_TRUSTED_DELAY: Duration = Duration::from_secs(10);
/// Largest response head (status line + headers) and chunk-size line accepted.
const MAX_HEAD: usize = 256 * 1024;
/// After the caller has all it needs ([`Flow::Finish`], e.g. at `[DONE]`), the rest of the body (usually the
/// chunked terminator, already on its way) is read for at most this long to keep the connection; a server that
/// never ends the body only costs this wait, and the connection is dropped.
pub const FINISH_TAIL: Duration = Duration::from_millis(100);

/// What the body reader does after handing out a piece.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Keep reading and handing out pieces.
    More,
    /// Stop now; the connection is not reused.
    Stop,
    /// The caller has the whole answer: hand out nothing more, read what is left of the body for at most
    /// [`FINISH_TAIL`] to keep the connection.
    Finish,
}

#[derive(Debug, thiserror::Error)]
pub enum Http1Error {
    #[error("cannot resolve {host}: {source}")]
    Resolve {
        host: String,
        source: std::io::Error,
    },
    #[error("connect to {addr} failed: {source}")]
    Connect {
        addr: String,
        source: std::io::Error,
    },
    #[error("sending the request failed: {0}")]
    Write(std::io::Error),
    #[error("the server closed the connection before answering")]
    ClosedBeforeResponse,
    #[error("the connection was reset before the server answered: {0}")]
    ResetBeforeResponse(std::io::Error),
    #[error("reading the response failed: {0}")]
    Read(std::io::Error),
    #[error("the connection closed in the middle of the response body")]
    Truncated,
    #[error("invalid HTTP response: {0}")]
    Protocol(String),
}

impl Http1Error {
    /// Failed before any response byte arrived: re-sending on a new connection is safe.
    pub fn before_response(&self) -> bool {
        matches!(
            self,
            Http1Error::Connect { .. }
                | Http1Error::Write(_)
                | Http1Error::ClosedBeforeResponse
                | Http1Error::ResetBeforeResponse(_)
        )
    }
}

/// Where to connect and what every request carries.
#[derive(Debug)]
pub struct Http1Pool {
    host: String,
    port: u16,
    /// `Host` header value.
    authority: String,
    addrs: tokio::sync::OnceCell<Vec<SocketAddr>>,
    /// Header lines sent with every request (`Name: value\r\n` each), after the request line.
    fixed_headers: Vec<u8>,
    idle: Mutex<Vec<Conn>>,
    /// Ask the kernel for receive timestamps (Linux).
    kernel_timestamps: bool,
    /// Samples the event-loop lag from the reads of this pool's connections (kernel timestamps).
    read_lag: Arc<ReadLag>,
}

/// How late the client read what the kernel had received (kernel timestamps only).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReadDelay {
    /// The longest arrival → read wait.
    pub max: Duration,
    /// Reads with a kernel timestamp.
    pub reads: u32,
    /// Of those, reads more than [`LATE_READ`] after the arrival.
    pub late: u32,
}

/// How the response body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    Chunked,
    Length(u64),
    UntilClose,
    Empty,
}

/// The response status line and the headers that matter.
#[derive(Debug, Clone)]
pub struct Head {
    pub status: u16,
    pub framing: Framing,
    pub keep_alive: bool,
    pub content_type: Option<String>,
    /// `Retry-After` (with 429/503 answers).
    pub retry_after: Option<String>,
}

/// One keep-alive connection with its read buffer (`buf[start..end]` is unread; `buf` is initialised).
#[derive(Debug)]
pub struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// Served a response before (a failure before the answer may be a server's idle close).
    pub reused: bool,
    /// How long the TCP handshake took (about one round trip).
    pub connect_time: Duration,
    /// When the bytes of the last read arrived: the kernel's receive time of its last segment when
    /// `kernel_ts`, else when the read returned.
    arrival: Instant,
    kernel_ts: bool,
    /// Waits between a segment's arrival and the read that took it, since the last `take_read_delay`.
    read_delay: Option<ReadDelay>,
    /// After a read shorter than its room, read again at once instead of waiting for the next readiness
    /// event (see `poll_read_stamped`).
    read_on: bool,
    /// The wall clock at a recent read's monotonic time (see [`WallRef`]).
    #[cfg(target_os = "linux")]
    wall_ref: Option<WallRef>,
    /// The pool's lag sampler, offered each kernel-timestamped read's wait.
    #[cfg(target_os = "linux")]
    read_lag: Option<Arc<ReadLag>>,
}

/// How long a [`WallRef`] is used before both clocks are read again: a step of the wall clock (`settimeofday`,
/// a leap second) reaches the read delays within this.
#[cfg(target_os = "linux")]
const WALL_REFRESH: Duration = Duration::from_millis(250);

/// The wall clock (since the Unix epoch) read together with the monotonic clock. Linux slews both clocks
/// alike (NTP adjusts their common rate); they move apart only when the wall clock is stepped. So the wall
/// time of a later monotonic instant is this one's plus the monotonic time elapsed, and a read needs one
/// clock read, not two, to set a kernel receive time (wall clock) against its own monotonic time.
#[cfg(target_os = "linux")]
#[derive(Debug, Clone, Copy)]
struct WallRef {
    mono: Instant,
    wall: Duration,
}

#[cfg(target_os = "linux")]
impl WallRef {
    /// Pairs `mono` (just read) with the wall clock read now.
    fn at(mono: Instant) -> Option<WallRef> {
        let wall = SystemTime::now().duration_since(UNIX_EPOCH).ok()?;
        Some(WallRef { mono, wall })
    }

    /// The wall time at `now`, or None when this reference is stale (older than [`WALL_REFRESH`]).
    fn wall_at(&self, now: Instant) -> Option<Duration> {
        let since = now.checked_duration_since(self.mono)?;
        (since < WALL_REFRESH).then(|| self.wall + since)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Chunk {
    #[default]
    /// Expecting a chunk-size line.
    Size,
    /// Bytes of chunk data left.
    Data(u64),
    /// Expecting the CRLF after chunk data.
    DataEnd,
    /// After the last chunk: trailer lines until an empty line.
    Trailers,
}

impl Http1Pool {
    /// `host` without brackets (IPv6 literal allowed), `authority` as sent in `Host`; `headers` are
    /// validated `(name, value)` pairs sent with every request.
    pub fn new(host: &str, port: u16, authority: &str, headers: &[(String, String)]) -> Self {
        let mut fixed = Vec::new();
        for (k, v) in headers {
            fixed.extend_from_slice(k.as_bytes());
            fixed.extend_from_slice(b": ");
            fixed.extend_from_slice(v.as_bytes());
            fixed.extend_from_slice(b"\r\n");
        }
        Http1Pool {
            host: host.to_string(),
            port,
            authority: authority.to_string(),
            addrs: tokio::sync::OnceCell::new(),
            fixed_headers: fixed,
            idle: Mutex::new(Vec::new()),
            kernel_timestamps: cfg!(target_os = "linux"),
            read_lag: Arc::default(),
        }
    }

    /// Whether chunk times come from the kernel's receive timestamps (false: from when reads return).
    pub fn set_kernel_timestamps(&mut self, on: bool) {
        self.kernel_timestamps = on && cfg!(target_os = "linux");
    }

    /// The sampler of event-loop lag from this pool's kernel-timestamped reads.
    pub fn read_lag(&self) -> &Arc<ReadLag> {
        &self.read_lag
    }

    /// Number of idle pooled connections.
    pub fn idle_count(&self) -> usize {
        self.idle.lock().map(|v| v.len()).unwrap_or(0)
    }

    async fn resolve(&self) -> Result<&[SocketAddr], Http1Error> {
        let addrs = self
            .addrs
            .get_or_try_init(|| async {
                let found: Vec<SocketAddr> =
                    tokio::net::lookup_host((self.host.as_str(), self.port))
                        .await
                        .map_err(|source| Http1Error::Resolve {
                            host: self.host.clone(),
                            source,
                        })?
                        .collect();
                if found.is_empty() {
                    return Err(Http1Error::Resolve {
                        host: self.host.clone(),
                        source: std::io::Error::new(
                            std::io::ErrorKind::NotFound,
                            "no address found",
                        ),
                    });
                }
                Ok(found)
            })
            .await?;
        Ok(addrs)
    }

    /// Opens a new connection.
    pub async fn connect(&self) -> Result<Conn, Http1Error> {
        let addrs = self.resolve().await?;
        let mut last = None;
        for addr in addrs {
            let t = Instant::now();
            match TcpStream::connect(addr).await {
                Ok(stream) => {
                    let _ = stream.set_nodelay(true);
                    let kernel_ts = self.kernel_timestamps && rx_time::enable(&stream);
                    return Ok(Conn {
                        stream,
                        buf: Vec::new(),
                        start: 0,
                        end: 0,
                        reused: false,
                        connect_time: t.elapsed(),
                        arrival: Instant::now(),
                        kernel_ts,
                        read_delay: None,
                        #[cfg(target_os = "linux")]
                        wall_ref: None,
                        #[cfg(target_os = "linux")]
                        read_lag: kernel_ts.then(|| self.read_lag.clone()),
                        read_on: false,
                    });
                }
                Err(e) => last = Some((addr, e)),
            }
        }
        let (addr, source) = last.ok_or_else(|| Http1Error::Resolve {
            host: self.host.clone(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no address found"),
        })?;
        Err(Http1Error::Connect {
            addr: addr.to_string(),
            source,
        })
    }

    /// An idle pooled connection that the server has not closed, or a new one (`fresh`: always new).
    pub async fn checkout(&self, fresh: bool) -> Result<Conn, Http1Error> {
        if !fresh {
            loop {
                let conn = match self.idle.lock() {
                    Ok(mut v) => v.pop(),
                    Err(_) => None,
                };
                let Some(mut conn) = conn else { break };
                if conn.still_open() {
                    conn.reused = true;
                    return Ok(conn);
                }
            }
        }
        self.connect().await
    }

    /// Returns a connection whose response was read to the end.
    pub fn checkin(&self, conn: Conn) {
        if let Ok(mut v) = self.idle.lock() {
            v.push(conn);
        }
    }

    /// The request bytes: request line, fixed headers, `extra` headers, `Content-Length`, then the body.
    pub fn request_bytes(
        &self,
        method: &str,
        target: &str,
        extra: &[(&str, &str)],
        body: &[u8],
    ) -> Vec<u8> {
        let mut out = Vec::with_capacity(256 + self.fixed_headers.len() + body.len());
        out.extend_from_slice(method.as_bytes());
        out.push(b' ');
        out.extend_from_slice(target.as_bytes());
        out.extend_from_slice(b" HTTP/1.1\r\nHost: ");
        out.extend_from_slice(self.authority.as_bytes());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&self.fixed_headers);
        for (k, v) in extra {
            out.extend_from_slice(k.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(v.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        if method != "GET" || !body.is_empty() {
            out.extend_from_slice(b"Content-Length: ");
            out.extend_from_slice(body.len().to_string().as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(body);
        out
    }
}

impl Conn {
    /// A pooled connection is usable when a non-blocking read finds nothing (no EOF, no stray bytes).
    fn still_open(&mut self) -> bool {
        if self.start < self.end {
            return false;
        }
        let mut probe = [0u8; 1];
        matches!(self.stream.try_read(&mut probe), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
    }

    /// Writes the whole request.
    pub async fn send(&mut self, request: &[u8]) -> Result<(), Http1Error> {
        self.stream
            .write_all(request)
            .await
            .map_err(Http1Error::Write)
    }

    /// Whether chunk times of this connection come from the kernel's receive timestamps.
    pub fn kernel_timestamps(&self) -> bool {
        self.kernel_ts
    }

    /// When the bytes of the last read arrived (see [`Conn::kernel_timestamps`]).
    pub fn last_arrival(&self) -> Instant {
        self.arrival
    }

    /// The longest arrival → read wait since the last call (kernel timestamps only): the client's own delay.
    pub fn take_read_delay(&mut self) -> Option<ReadDelay> {
        self.read_delay.take()
    }

    /// Reads more bytes into the buffer and stamps their arrival; returns how many (0 = EOF).
    async fn fill(&mut self) -> std::io::Result<usize> {
        std::future::poll_fn(|cx| self.poll_fill(cx)).await
    }

    /// [`Conn::fill`] as a poll function. A paced stream's every read polls down through each level of the
    /// request's future, each level one more cold cache line among hundreds of streams; as a poll function the
    /// read is one level, not two nested futures. Making room in the buffer is idempotent (a poll that finds
    /// nothing to read leaves the room made), so it is done on every poll.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<usize>> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.buf.is_empty() {
            self.buf.resize(BUF_START, 0);
        } else if self.end == self.buf.len() {
            // A head or chunk-size line longer than the buffer (bounded by MAX_HEAD in the callers).
            self.buf.resize(self.buf.len() * 2, 0);
        }
        let room = self.buf.len() - self.end;
        let n = ready!(self.poll_read_stamped(cx))?;
        self.end += n;
        if n == room && self.buf.len() < BUF_MAX {
            // Reads fill the buffer: the stream is fast, read more at a time.
            self.buf.resize(self.buf.len() * 2, 0);
        }
        Poll::Ready(Ok(n))
    }

    /// One read into the buffer's room, stamped with the time the read returned.
    fn poll_read_plain(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<usize>> {
        let mut room = ReadBuf::new(&mut self.buf[self.end..]);
        ready!(Pin::new(&mut self.stream).poll_read(cx, &mut room))?;
        let n = room.filled().len();
        self.arrival = Instant::now();
        Poll::Ready(Ok(n))
    }

    #[cfg(target_os = "linux")]
    fn poll_read_stamped(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<usize>> {
        if !self.kernel_ts {
            return self.poll_read_plain(cx);
        }
        loop {
            // `poll_read_ready` keeps one waker per socket; `readable()` would join and leave a locked list
            // of waiters on every read.
            ready!(self.stream.poll_read_ready(cx))?;
            let Conn {
                stream,
                buf,
                end,
                read_on,
                ..
            } = self;
            let room = buf.len() - *end;
            // A read shorter than the room drained the socket. On a paced stream (one event per decode step)
            // the next read would find nothing: so it is reported to tokio as "would block" (the bytes are
            // kept in `short`) and tokio forgets the readiness, as its own `read` does, and the next read waits
            // for the next event: one `recvmsg` per event. On a fire-hose stream more bytes have usually come
            // by the next read, and an epoll round would cost more than trying: after a read that filled its
            // room the connection reads on at once (`read_on`) until a read finds nothing.
            let mut short = None;
            let got = stream.try_io(tokio::io::Interest::READABLE, || {
                match rx_time::recv(stream, &mut buf[*end..]) {
                    Ok((n, stamp)) if n > 0 && n < room && !*read_on => {
                        short = Some((n, stamp));
                        Err(std::io::ErrorKind::WouldBlock.into())
                    }
                    Ok(got) => {
                        *read_on |= got.0 == room;
                        Ok(got)
                    }
                    Err(e) => {
                        if e.kind() == std::io::ErrorKind::WouldBlock {
                            *read_on = false;
                        }
                        Err(e)
                    }
                }
            });
            match (got, short) {
                (_, Some((n, stamp))) | (Ok((n, stamp)), None) => {
                    self.stamp(stamp);
                    return Poll::Ready(Ok(n));
                }
                (Err(e), None) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                (Err(e), None) => return Poll::Ready(Err(e)),
            }
        }
    }

    #[cfg(not(target_os = "linux"))]
    fn poll_read_stamped(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<usize>> {
        self.poll_read_plain(cx)
    }

    /// Sets `arrival` from a kernel receive time (wall clock since the epoch), or from now.
    #[cfg(target_os = "linux")]
    fn stamp(&mut self, kernel: Option<Duration>) {
        let now = Instant::now();
        self.arrival = now;
        let Some(kernel) = kernel else { return };
        let cached = self.wall_ref.and_then(|r| r.wall_at(now));
        let Some(wall) = cached.or_else(|| {
            self.wall_ref = WallRef::at(now);
            self.wall_ref.map(|r| r.wall)
        }) else {
            return;
        };
        let delay = wall.saturating_sub(kernel);
        if delay > MAX_TRUSTED_DELAY {
            return;
        }
        if let Some(t) = now.checked_sub(delay) {
            self.arrival = t;
            if let Some(lag) = &self.read_lag {
                lag.offer(now, delay);
            }
            let d = self.read_delay.get_or_insert(ReadDelay::default());
            d.max = d.max.max(delay);
            d.reads += 1;
            if delay > LATE_READ {
                d.late += 1;
            }
        }
    }

    /// Reads the response head (skipping `1xx` interim responses).
    pub async fn read_head(&mut self, request_was_head: bool) -> Result<Head, Http1Error> {
        let mut any = false;
        loop {
            if self.start < self.end {
                if let Some((used, head)) =
                    parse_head(&self.buf[self.start..self.end], request_was_head)?
                {
                    self.start += used;
                    if (100..200).contains(&head.status) {
                        continue;
                    }
                    return Ok(head);
                }
                if self.end - self.start > MAX_HEAD {
                    return Err(Http1Error::Protocol(format!(
                        "response head larger than {MAX_HEAD} bytes"
                    )));
                }
            }
            match self.fill().await {
                Ok(0) if !any && self.start == self.end => {
                    return Err(Http1Error::ClosedBeforeResponse)
                }
                Ok(0) => return Err(Http1Error::Truncated),
                Ok(_) => any = true,
                Err(e)
                    if !any
                        && matches!(
                            e.kind(),
                            std::io::ErrorKind::ConnectionReset
                                | std::io::ErrorKind::ConnectionAborted
                                | std::io::ErrorKind::BrokenPipe
                        ) =>
                {
                    return Err(Http1Error::ResetBeforeResponse(e))
                }
                Err(e) => return Err(Http1Error::Read(e)),
            }
        }
    }

    /// Reads the body to its end, calling `on_data(bytes, read_instant)` with each payload piece (pieces
    /// from one socket read share its instant); `on_data` says how to go on ([`Flow`]). Returns whether the body
    /// was read to its end and the connection can be reused.
    pub async fn read_body(
        &mut self,
        head: &Head,
        mut on_data: impl FnMut(&[u8], Instant) -> Flow,
    ) -> Result<bool, Http1Error> {
        // Pieces are stamped with the arrival of the read that brought them (`self.arrival`); bytes already
        // buffered came with the read that also brought the head.
        let mut tail: Option<tokio::time::Instant> = None;
        let mut hand = |piece: &[u8], at: Instant, tail: &mut Option<tokio::time::Instant>| {
            if tail.is_some() {
                return true;
            }
            match on_data(piece, at) {
                Flow::More => true,
                Flow::Stop => false,
                Flow::Finish => {
                    *tail = Some(tokio::time::Instant::now() + FINISH_TAIL);
                    true
                }
            }
        };
        match head.framing {
            Framing::Empty => Ok(head.keep_alive),
            Framing::Length(mut left) => loop {
                let avail = (self.end - self.start) as u64;
                if avail > 0 && left > 0 {
                    let take = avail.min(left) as usize;
                    let piece = &self.buf[self.start..self.start + take];
                    self.start += take;
                    left -= take as u64;
                    if !hand(piece, self.arrival, &mut tail) {
                        return Ok(false);
                    }
                }
                if left == 0 {
                    return Ok(head.keep_alive);
                }
                match self.more_until(tail).await {
                    Ok(true) => {}
                    Ok(false) if tail.is_some() => return Ok(false),
                    Ok(false) => return Err(Http1Error::Truncated),
                    Err(_) if tail.is_some() => return Ok(false),
                    Err(e) => return Err(e),
                }
            },
            Framing::UntilClose => loop {
                if self.start < self.end {
                    let piece = &self.buf[self.start..self.end];
                    self.start = self.end;
                    if !hand(piece, self.arrival, &mut tail) {
                        return Ok(false);
                    }
                }
                if tail.is_some() {
                    // Never reusable: nothing to wait for.
                    return Ok(false);
                }
                if !self.more().await? {
                    return Ok(false);
                }
            },
            Framing::Chunked => {
                let mut dec = ChunkedDecoder::default();
                loop {
                    let arrival = self.arrival;
                    let (used, status) = dec.decode(&self.buf[self.start..self.end], |p| {
                        hand(p, arrival, &mut tail)
                    })?;
                    self.start += used;
                    if let Some(done) = status {
                        return Ok(done && head.keep_alive);
                    }
                    match self.more_until(tail).await {
                        Ok(true) => {}
                        Ok(false) if tail.is_some() => return Ok(false),
                        Ok(false) => return Err(Http1Error::Truncated),
                        Err(_) if tail.is_some() => return Ok(false),
                        Err(e) => return Err(e),
                    }
                }
            }
        }
    }

    /// Reads more of the body; false at end of stream.
    async fn more(&mut self) -> Result<bool, Http1Error> {
        match std::future::poll_fn(|cx| self.poll_fill(cx)).await {
            Ok(n) => Ok(n > 0),
            Err(e) => Err(Http1Error::Read(e)),
        }
    }

    /// [`Conn::more`], given up (false) at `deadline` when there is one.
    async fn more_until(
        &mut self,
        deadline: Option<tokio::time::Instant>,
    ) -> Result<bool, Http1Error> {
        match deadline {
            None => self.more().await,
            Some(d) => tokio::time::timeout_at(d, self.more())
                .await
                .unwrap_or(Ok(false)),
        }
    }

    /// Reads a whole body (at most `limit` bytes kept).
    pub async fn read_to_vec(
        &mut self,
        head: &Head,
        limit: usize,
    ) -> Result<(Vec<u8>, bool), Http1Error> {
        let mut out = Vec::new();
        let reusable = self
            .read_body(head, |b, _| {
                let room = limit.saturating_sub(out.len());
                out.extend_from_slice(&b[..b.len().min(room)]);
                Flow::More
            })
            .await?;
        Ok((out, reusable))
    }
}

/// Decoder of the chunked transfer coding, fed whatever bytes have arrived (no I/O: fuzzed on its own).
#[derive(Debug, Clone, Default)]
pub struct ChunkedDecoder {
    state: Chunk,
}

impl ChunkedDecoder {
    /// Decodes from `avail`, calling `on_data` with each payload piece (false from it stops). Returns the bytes
    /// consumed and `Some(true)` when the body ended, `Some(false)` when `on_data` stopped, `None` when more
    /// bytes are needed (the unconsumed rest must be offered again with them).
    pub fn decode(
        &mut self,
        mut avail: &[u8],
        mut on_data: impl FnMut(&[u8]) -> bool,
    ) -> Result<(usize, Option<bool>), Http1Error> {
        let total = avail.len();
        let used = |rest: &[u8]| total - rest.len();
        loop {
            match self.state {
                Chunk::Data(left) => {
                    if avail.is_empty() {
                        return Ok((total, None));
                    }
                    let take = (avail.len() as u64).min(left) as usize;
                    let piece = &avail[..take];
                    avail = &avail[take..];
                    self.state = if take as u64 == left {
                        Chunk::DataEnd
                    } else {
                        Chunk::Data(left - take as u64)
                    };
                    if !on_data(piece) {
                        return Ok((used(avail), Some(false)));
                    }
                }
                Chunk::DataEnd => {
                    if avail.len() < 2 {
                        if avail == b"\n" {
                            avail = &avail[1..];
                            self.state = Chunk::Size;
                            continue;
                        }
                        return Ok((used(avail), None));
                    }
                    if avail.starts_with(b"\r\n") {
                        avail = &avail[2..];
                    } else if avail[0] == b'\n' {
                        avail = &avail[1..];
                    } else {
                        return Err(Http1Error::Protocol(
                            "chunk data is not followed by CRLF".into(),
                        ));
                    }
                    self.state = Chunk::Size;
                }
                Chunk::Size => match httparse::parse_chunk_size(avail) {
                    Ok(httparse::Status::Complete((n_used, 0))) => {
                        avail = &avail[n_used..];
                        self.state = Chunk::Trailers;
                    }
                    Ok(httparse::Status::Complete((n_used, n))) => {
                        avail = &avail[n_used..];
                        self.state = Chunk::Data(n);
                    }
                    Ok(httparse::Status::Partial) => {
                        if avail.len() > MAX_HEAD {
                            return Err(Http1Error::Protocol("chunk-size line too long".into()));
                        }
                        return Ok((used(avail), None));
                    }
                    Err(_) => {
                        return Err(Http1Error::Protocol(format!(
                            "invalid chunk-size line {:?}",
                            String::from_utf8_lossy(&avail[..avail.len().min(40)])
                        )))
                    }
                },
                Chunk::Trailers => {
                    let Some(nl) = memchr::memchr(b'\n', avail) else {
                        if avail.len() > MAX_HEAD {
                            return Err(Http1Error::Protocol("trailer line too long".into()));
                        }
                        return Ok((used(avail), None));
                    };
                    let empty = nl == 0 || (nl == 1 && avail[0] == b'\r');
                    avail = &avail[nl + 1..];
                    if empty {
                        return Ok((used(avail), Some(true)));
                    }
                }
            }
        }
    }
}

/// Parses a complete head; `None` when more bytes are needed.
fn parse_head(bytes: &[u8], request_was_head: bool) -> Result<Option<(usize, Head)>, Http1Error> {
    let mut headers = [httparse::EMPTY_HEADER; 96];
    let mut resp = httparse::Response::new(&mut headers);
    let used = match resp.parse(bytes) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(Http1Error::Protocol(e.to_string())),
    };
    let status = resp.code.unwrap_or(0);
    let http10 = resp.version == Some(0);
    let mut chunked = false;
    let mut length: Option<u64> = None;
    let mut close = http10;
    let mut content_type = None;
    let mut retry_after = None;
    for h in resp.headers.iter() {
        let name = h.name;
        if name.eq_ignore_ascii_case("transfer-encoding") {
            let v = String::from_utf8_lossy(h.value);
            chunked = v
                .rsplit(',')
                .next()
                .is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"));
        } else if name.eq_ignore_ascii_case("content-length") {
            let v = std::str::from_utf8(h.value)
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
                .ok_or_else(|| {
                    Http1Error::Protocol(format!(
                        "Content-Length {:?} is not a number",
                        String::from_utf8_lossy(h.value)
                    ))
                })?;
            if length.is_some_and(|l| l != v) {
                return Err(Http1Error::Protocol(
                    "conflicting Content-Length headers".into(),
                ));
            }
            length = Some(v);
        } else if name.eq_ignore_ascii_case("connection") {
            let v = String::from_utf8_lossy(h.value).to_ascii_lowercase();
            if v.split(',').any(|t| t.trim() == "close") {
                close = true;
            } else if v.split(',').any(|t| t.trim() == "keep-alive") {
                close = false;
            }
        } else if name.eq_ignore_ascii_case("content-type") {
            content_type = Some(String::from_utf8_lossy(h.value).into_owned());
        } else if name.eq_ignore_ascii_case("retry-after") {
            retry_after = Some(String::from_utf8_lossy(h.value).into_owned());
        }
    }
    let framing =
        if request_was_head || status == 204 || status == 304 || (100..200).contains(&status) {
            Framing::Empty
        } else if chunked {
            Framing::Chunked
        } else if let Some(n) = length {
            if n == 0 {
                Framing::Empty
            } else {
                Framing::Length(n)
            }
        } else {
            Framing::UntilClose
        };
    Ok(Some((
        used,
        Head {
            status,
            framing,
            keep_alive: !close && framing != Framing::UntilClose,
            content_type,
            retry_after,
        },
    )))
}

/// Kernel receive timestamps: `SO_TIMESTAMPNS` on the socket, read back with `recvmsg` (for TCP the kernel
/// reports the receive time of the last segment the call copied).
///
/// The receive is a direct `recvmsg` system call with the control space on the stack and its one message read in
/// place: nix's wrapper and its control-message iterator cost ~190 instructions a read, on every chunk of a
/// paced stream.
#[cfg(target_os = "linux")]
mod rx_time {
    use nix::sys::socket::{setsockopt, sockopt};
    use std::os::fd::AsRawFd;
    use std::time::Duration;
    use tokio::net::TcpStream;

    pub fn enable(stream: &TcpStream) -> bool {
        setsockopt(stream, sockopt::ReceiveTimestampns, &true).is_ok()
    }

    /// Control-message space: one `SCM_TIMESTAMPNS` needs `CMSG_SPACE(16)` = 32 bytes; room for two more
    /// messages of that size if the kernel ever adds one. Aligned as `cmsghdr` requires.
    #[repr(C, align(8))]
    struct Control([u8; 96]);

    /// One non-blocking receive: bytes read and the kernel's receive time (since the Unix epoch).
    pub fn recv(stream: &TcpStream, buf: &mut [u8]) -> std::io::Result<(usize, Option<Duration>)> {
        let mut control = std::mem::MaybeUninit::<Control>::uninit();
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        // SAFETY: an all-zero msghdr is valid (null name and control, no iovecs); the fields set below point
        // at `iov`, `buf` and `control`, which outlive the call, with their true lengths.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of::<Control>() as _;
        // The system call itself, not glibc's `recvmsg`: in a process with more than one thread glibc makes
        // every `recvmsg` a cancellation point (two atomic updates of the thread's cancel state around the
        // call, ~35 ns a read here); servebench never cancels threads, and the call does not block
        // (MSG_DONTWAIT).
        // SAFETY: `msg` is valid as above; the kernel writes at most `iov_len` bytes into `buf` and at most
        // `msg_controllen` bytes of control messages, and sets `msg_controllen` to what it wrote. The
        // arguments are those of recvmsg(2), as the ABI passes them to the system call.
        let n = unsafe {
            libc::syscall(
                libc::SYS_recvmsg,
                libc::c_long::from(stream.as_raw_fd()),
                &mut msg as *mut libc::msghdr,
                libc::c_long::from(libc::MSG_DONTWAIT),
            )
        };
        if n < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: the kernel initialised `msg_controllen` bytes of `control`; `timestamp_of` reads only
        // within them.
        let stamp = unsafe { timestamp_of(&msg) };
        Ok((n as usize, stamp))
    }

    /// The `SCM_TIMESTAMPNS` control message of a `recvmsg` result, if it holds a valid time.
    ///
    /// # Safety
    /// `msg.msg_control` points at `msg.msg_controllen` initialised bytes (as `recvmsg` leaves it).
    unsafe fn timestamp_of(msg: &libc::msghdr) -> Option<Duration> {
        let want = libc::CMSG_LEN(std::mem::size_of::<libc::timespec>() as u32) as usize;
        // SAFETY (all below): CMSG_FIRSTHDR / CMSG_NXTHDR return headers that lie within the control bytes
        // or null; a header's data is read only when its length says it holds a whole timespec.
        let mut c = unsafe { libc::CMSG_FIRSTHDR(msg) };
        while !c.is_null() {
            let h = unsafe { &*c };
            if h.cmsg_level == libc::SOL_SOCKET
                && h.cmsg_type == libc::SCM_TIMESTAMPNS
                && h.cmsg_len as usize >= want
            {
                let ts: libc::timespec =
                    unsafe { std::ptr::read_unaligned(libc::CMSG_DATA(c).cast()) };
                return (ts.tv_sec >= 0 && (0..1_000_000_000).contains(&ts.tv_nsec))
                    .then(|| Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32));
            }
            c = unsafe { libc::CMSG_NXTHDR(msg, c) };
        }
        None
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        /// A control area as `recvmsg` leaves it: messages of (level, type, data) in order.
        fn parsed(messages: &[(i32, i32, &[u8])]) -> Option<Duration> {
            let mut control = Control([0; 96]);
            let mut at = 0;
            for &(level, kind, data) in messages {
                // SAFETY: CMSG_SPACE / CMSG_LEN are pure size computations.
                let (space, len) = unsafe {
                    (
                        libc::CMSG_SPACE(data.len() as u32) as usize,
                        libc::CMSG_LEN(data.len() as u32) as usize,
                    )
                };
                let head = libc::cmsghdr {
                    cmsg_len: len as _,
                    cmsg_level: level,
                    cmsg_type: kind,
                };
                let head_len = std::mem::size_of::<libc::cmsghdr>();
                // SAFETY: the header is plain data, copied as bytes into the buffer.
                let bytes = unsafe {
                    std::slice::from_raw_parts(
                        (&head as *const libc::cmsghdr).cast::<u8>(),
                        head_len,
                    )
                };
                control.0[at..at + head_len].copy_from_slice(bytes);
                control.0[at + head_len..at + head_len + data.len()].copy_from_slice(data);
                at += space;
            }
            // SAFETY: as in `recv`, with the control area filled above.
            let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
            msg.msg_control = control.0.as_mut_ptr().cast();
            msg.msg_controllen = at as _;
            unsafe { timestamp_of(&msg) }
        }

        fn timespec_bytes(sec: i64, nsec: i64) -> Vec<u8> {
            [sec.to_ne_bytes(), nsec.to_ne_bytes()].concat()
        }

        #[test]
        fn the_timestamp_message_is_read_and_others_are_skipped() {
            let ts = timespec_bytes(1_765_000_000, 123_456_789);
            let want = Some(Duration::new(1_765_000_000, 123_456_789));
            let (sol, stamp) = (libc::SOL_SOCKET, libc::SCM_TIMESTAMPNS);
            assert_eq!(parsed(&[(sol, stamp, &ts)]), want);
            // After another message (IP_TOS-like, 4 bytes of data).
            assert_eq!(
                parsed(&[(libc::IPPROTO_IP, 1, &[7, 0, 0, 0]), (sol, stamp, &ts)]),
                want
            );
            // No control message, another kind only, a short one, an impossible time: no stamp.
            assert_eq!(parsed(&[]), None);
            assert_eq!(parsed(&[(sol, libc::SCM_TIMESTAMP, &ts)]), None);
            assert_eq!(parsed(&[(sol, stamp, &ts[..8])]), None);
            assert_eq!(
                parsed(&[(sol, stamp, &timespec_bytes(5, 1_000_000_000))]),
                None
            );
            assert_eq!(parsed(&[(sol, stamp, &timespec_bytes(-1, 0))]), None);
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod rx_time {
    pub fn enable(_stream: &tokio::net::TcpStream) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::io::AsyncReadExt;
    use tokio::net::TcpListener;

    /// A server that answers each connection's requests with the given raw responses, writing each response
    /// in the given pieces (with a short pause between pieces so they arrive as separate reads).
    async fn canned(
        responses: Vec<Vec<Vec<u8>>>,
    ) -> (Http1Pool, tokio::task::JoinHandle<Vec<Vec<u8>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            let (mut sock, _) = listener.accept().await.unwrap();
            let mut requests = Vec::new();
            for pieces in responses {
                let mut req = Vec::new();
                let mut b = [0u8; 4096];
                loop {
                    let n = sock.read(&mut b).await.unwrap();
                    req.extend_from_slice(&b[..n]);
                    if let Some(p) = req.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&req[..p]).to_ascii_lowercase();
                        let len: usize = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length: "))
                            .map(|v| v.trim().parse().unwrap())
                            .unwrap_or(0);
                        if req.len() >= p + 4 + len {
                            break;
                        }
                    }
                    if n == 0 {
                        break;
                    }
                }
                requests.push(req);
                for p in pieces {
                    sock.write_all(&p).await.unwrap();
                    sock.flush().await.unwrap();
                    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                }
            }
            requests
        });
        (
            Http1Pool::new(
                "127.0.0.1",
                port,
                &format!("127.0.0.1:{port}"),
                &[("X-A".into(), "1".into())],
            ),
            task,
        )
    }

    async fn body_of(conn: &mut Conn, head: &Head) -> (Vec<Vec<u8>>, bool) {
        let mut pieces = Vec::new();
        let reusable = conn
            .read_body(head, |b, _| {
                pieces.push(b.to_vec());
                Flow::More
            })
            .await
            .unwrap();
        (pieces, reusable)
    }

    #[tokio::test]
    async fn chunked_body_split_at_every_awkward_place() {
        let whole = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nx-trailer: 1\r\n\r\n".to_vec();
        // Split inside the head, inside a size line, between data and CRLF, and inside the trailers.
        let cuts = [20, 90, 95, 100, 108, 118, whole.len() - 4];
        let mut pieces = Vec::new();
        let mut last = 0;
        for c in cuts {
            pieces.push(whole[last..c].to_vec());
            last = c;
        }
        pieces.push(whole[last..].to_vec());
        let second = b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nabc".to_vec();
        let (pool, server) = canned(vec![pieces, vec![second]]).await;
        let mut conn = pool.checkout(false).await.unwrap();
        assert!(!conn.reused);
        let req = pool.request_bytes("POST", "/v1/completions", &[("x-request-id", "r1")], b"{}");
        conn.send(&req).await.unwrap();
        let head = conn.read_head(false).await.unwrap();
        assert_eq!(head.status, 200);
        assert_eq!(head.framing, Framing::Chunked);
        assert_eq!(head.content_type.as_deref(), Some("text/event-stream"));
        let (pieces, reusable) = body_of(&mut conn, &head).await;
        assert_eq!(pieces.concat(), b"hello world");
        assert!(
            pieces.len() >= 3,
            "data arrived in several reads: {pieces:?}"
        );
        assert!(reusable);
        pool.checkin(conn);
        assert_eq!(pool.idle_count(), 1);
        // The same connection carries the next request.
        let mut conn = pool.checkout(false).await.unwrap();
        assert!(conn.reused);
        conn.send(&pool.request_bytes("GET", "/v1/models", &[], b""))
            .await
            .unwrap();
        let head = conn.read_head(false).await.unwrap();
        assert_eq!(head.framing, Framing::Length(3));
        let (body, reusable) = conn.read_to_vec(&head, 100).await.unwrap();
        assert_eq!(body, b"abc");
        assert!(reusable);
        let reqs = server.await.unwrap();
        let first = String::from_utf8(reqs[0].clone()).unwrap();
        let port = pool.port;
        assert_eq!(
            first,
            format!("POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-A: 1\r\nx-request-id: r1\r\nContent-Length: 2\r\n\r\n{{}}")
        );
        let second = String::from_utf8(reqs[1].clone()).unwrap();
        assert!(
            second.starts_with("GET /v1/models HTTP/1.1\r\n"),
            "{second}"
        );
        assert!(!second.contains("Content-Length"), "{second}");
    }

    #[tokio::test]
    async fn interim_response_close_and_until_close_framing() {
        let resp = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nconnection: close\r\n\r\ndata: a\n\ndata: b\n\n".to_vec();
        let (pool, _server) = canned(vec![vec![resp]]).await;
        let mut conn = pool.checkout(false).await.unwrap();
        conn.send(&pool.request_bytes("POST", "/x", &[], b"{}"))
            .await
            .unwrap();
        let head = conn.read_head(false).await.unwrap();
        assert_eq!(head.status, 200);
        assert_eq!(head.framing, Framing::UntilClose);
        assert!(!head.keep_alive);
        let (pieces, reusable) = body_of(&mut conn, &head).await;
        assert_eq!(pieces.concat(), b"data: a\n\ndata: b\n\n");
        assert!(!reusable);
    }

    /// After [`Flow::Finish`] nothing more is handed out; a body end that comes soon keeps the connection, a body
    /// that never ends costs at most [`FINISH_TAIL`] and the connection.
    #[tokio::test]
    async fn finish_reads_only_a_short_tail() {
        let head = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
        let done = b"e\r\ndata: [DONE]\n\n\r\n".to_vec();
        let after = b"5\r\nextra\r\n0\r\n\r\n".to_vec();
        // The end arrives in a later read (the canned server pauses between pieces).
        let (pool, _server) = canned(vec![vec![head.clone(), done.clone(), after]]).await;
        let mut conn = pool.checkout(false).await.unwrap();
        conn.send(&pool.request_bytes("POST", "/x", &[], b"{}"))
            .await
            .unwrap();
        let h = conn.read_head(false).await.unwrap();
        let mut seen = Vec::new();
        let reusable = conn
            .read_body(&h, |b, _| {
                seen.extend_from_slice(b);
                if seen.ends_with(b"[DONE]\n\n") {
                    Flow::Finish
                } else {
                    Flow::More
                }
            })
            .await
            .unwrap();
        assert_eq!(
            seen, b"data: [DONE]\n\n",
            "nothing after Finish is handed out"
        );
        assert!(
            reusable,
            "the body's end came within the tail: the connection is kept"
        );

        // A body that never ends after [DONE].
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            let (mut sock, _) = listener.accept().await.unwrap();
            let mut b = [0u8; 4096];
            let _ = sock.read(&mut b).await.unwrap();
            sock.write_all(&[head, done].concat()).await.unwrap();
            tokio::time::sleep(Duration::from_secs(30)).await;
        });
        let pool = Http1Pool::new("127.0.0.1", port, "x", &[]);
        let mut conn = pool.connect().await.unwrap();
        conn.send(&pool.request_bytes("POST", "/x", &[], b"{}"))
            .await
            .unwrap();
        let h = conn.read_head(false).await.unwrap();
        let t = Instant::now();
        let reusable = conn.read_body(&h, |_, _| Flow::Finish).await.unwrap();
        let waited = t.elapsed();
        assert!(!reusable);
        assert!(
            waited >= FINISH_TAIL && waited < FINISH_TAIL * 20,
            "waited {waited:?}"
        );
        server.abort();
    }

    #[tokio::test]
    async fn truncated_bodies_and_early_close_are_errors() {
        let short = b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc".to_vec();
        let (pool, server) = canned(vec![vec![short]]).await;
        let mut conn = pool.checkout(false).await.unwrap();
        conn.send(&pool.request_bytes("POST", "/x", &[], b"{}"))
            .await
            .unwrap();
        let head = conn.read_head(false).await.unwrap();
        server.await.unwrap();
        let err = conn.read_to_vec(&head, 100).await.unwrap_err();
        assert!(matches!(err, Http1Error::Truncated), "{err}");
        assert!(!err.before_response());

        // A server that accepts and closes without answering: safe to re-send.
        let (pool, server) = canned(vec![vec![]]).await;
        let mut conn = pool.checkout(false).await.unwrap();
        conn.send(&pool.request_bytes("POST", "/x", &[], b"{}"))
            .await
            .unwrap();
        server.await.unwrap();
        let err = conn.read_head(false).await.unwrap_err();
        assert!(matches!(err, Http1Error::ClosedBeforeResponse), "{err}");
        assert!(err.before_response());
    }

    #[tokio::test]
    async fn endless_trailer_is_an_error_not_unbounded_memory() {
        let mut resp =
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n1\r\na\r\n0\r\nx-t: ".to_vec();
        resp.extend(std::iter::repeat_n(b'x', MAX_HEAD + 4096));
        let (pool, _server) = canned(vec![vec![resp]]).await;
        let mut conn = pool.checkout(false).await.unwrap();
        conn.send(&pool.request_bytes("GET", "/", &[], b""))
            .await
            .unwrap();
        let head = conn.read_head(false).await.unwrap();
        let err = conn.read_to_vec(&head, 10).await.unwrap_err();
        assert!(err.to_string().contains("trailer line too long"), "{err}");
    }

    #[tokio::test]
    async fn a_pooled_connection_closed_by_the_server_is_not_reused() {
        let resp = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok".to_vec();
        let (pool, server) = canned(vec![vec![resp]]).await;
        let mut conn = pool.checkout(false).await.unwrap();
        conn.send(&pool.request_bytes("GET", "/", &[], b""))
            .await
            .unwrap();
        let head = conn.read_head(false).await.unwrap();
        let (_, reusable) = conn.read_to_vec(&head, 10).await.unwrap();
        assert!(reusable);
        pool.checkin(conn);
        server.await.unwrap(); // the server task ends: its socket closes
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        // The closed one is dropped; a new connect is tried (and refused: the listener is gone).
        let err = pool.checkout(false).await.unwrap_err();
        assert!(matches!(err, Http1Error::Connect { .. }), "{err}");
        assert!(err.before_response());
        assert_eq!(pool.idle_count(), 0);
    }

    #[test]
    fn head_parsing_rules() {
        let h = |s: &str| parse_head(s.as_bytes(), false).unwrap().unwrap().1;
        assert_eq!(h("HTTP/1.1 200 OK\r\n\r\n").framing, Framing::UntilClose);
        assert_eq!(h("HTTP/1.1 204 No Content\r\n\r\n").framing, Framing::Empty);
        assert_eq!(
            h("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\nContent-Length: 5\r\n\r\n")
                .framing,
            Framing::Chunked
        );
        let ten = h("HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\n");
        assert!(!ten.keep_alive);
        assert!(
            h("HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 5\r\n\r\n").keep_alive
        );
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nContent-", false)
            .unwrap()
            .is_none());
        let err = parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", false).unwrap_err();
        assert!(err.to_string().contains("Content-Length"), "{err}");
        assert!(parse_head(
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            false
        )
        .is_err());
        assert!(parse_head(b"garbage\r\n\r\n", false).is_err());
    }

    mod fuzz {
        use super::super::ChunkedDecoder;
        use proptest::prelude::*;

        fn config() -> ProptestConfig {
            ProptestConfig {
                cases: std::env::var("PROPTEST_CASES")
                    .ok()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(512),
                rng_algorithm: proptest::test_runner::RngAlgorithm::ChaCha,
                rng_seed: proptest::test_runner::RngSeed::Fixed(0xC4_0ED),
                failure_persistence: None,
                ..ProptestConfig::default()
            }
        }

        /// Feeds `reads` as a connection does (the unconsumed rest is offered again with the next read):
        /// the payload, and whether the body ended.
        fn decode(reads: &[&[u8]]) -> Result<(Vec<u8>, bool), String> {
            let mut dec = ChunkedDecoder::default();
            let mut buf = Vec::new();
            let mut out = Vec::new();
            for r in reads {
                buf.extend_from_slice(r);
                let (used, status) = dec
                    .decode(&buf, |p| {
                        out.extend_from_slice(p);
                        true
                    })
                    .map_err(|e| e.to_string())?;
                buf.drain(..used);
                if status == Some(true) {
                    return Ok((out, true));
                }
            }
            Ok((out, false))
        }

        fn split<'a>(bytes: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
            let mut at: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
            at.sort_unstable();
            let mut out = Vec::new();
            let mut last = 0;
            for c in at {
                out.push(&bytes[last..c]);
                last = c;
            }
            out.push(&bytes[last..]);
            out
        }

        /// `payload` in chunks of the given sizes (hex in either case, some with extensions), then trailers.
        fn encode(
            payload: &[u8],
            sizes: &[usize],
            upper: bool,
            ext: bool,
            trailer: bool,
        ) -> Vec<u8> {
            let mut wire = Vec::new();
            let mut rest = payload;
            let mut i = 0;
            while !rest.is_empty() {
                let n = sizes.get(i).copied().unwrap_or(7).clamp(1, rest.len());
                i += 1;
                let size = if upper {
                    format!("{n:X}")
                } else {
                    format!("{n:x}")
                };
                wire.extend_from_slice(size.as_bytes());
                if ext && i % 2 == 0 {
                    wire.extend_from_slice(b";name=value");
                }
                wire.extend_from_slice(b"\r\n");
                wire.extend_from_slice(&rest[..n]);
                wire.extend_from_slice(b"\r\n");
                rest = &rest[n..];
            }
            wire.extend_from_slice(b"0\r\n");
            if trailer {
                wire.extend_from_slice(b"x-trailer: 1\r\n");
            }
            wire.extend_from_slice(b"\r\n");
            wire
        }

        proptest! {
            #![proptest_config(config())]

            /// Any split of a valid chunked body decodes to the whole payload and its end.
            #[test]
            fn any_split_of_a_chunked_body_decodes_as_the_whole(
                payload in prop::collection::vec(any::<u8>(), 0..3000),
                sizes in prop::collection::vec(1usize..700, 0..12),
                upper in any::<bool>(),
                ext in any::<bool>(),
                trailer in any::<bool>(),
                cuts in prop::collection::vec(any::<usize>(), 0..20),
            ) {
                let wire = encode(&payload, &sizes, upper, ext, trailer);
                let (out, done) = decode(&split(&wire, &cuts)).expect("valid framing");
                prop_assert!(done);
                prop_assert_eq!(&out, &payload);
                let bytes: Vec<&[u8]> = wire.chunks(1).collect();
                prop_assert_eq!(decode(&bytes).expect("valid framing"), (payload.clone(), true));
            }

            /// Arbitrary bytes in arbitrary reads: an error or a result, never a panic or a payload larger than
            /// the input.
            #[test]
            fn chunked_decoder_never_panics_on_arbitrary_bytes(
                bytes in prop::collection::vec(any::<u8>(), 0..800),
                cuts in prop::collection::vec(any::<usize>(), 0..12),
            ) {
                if let Ok((out, _)) = decode(&split(&bytes, &cuts)) {
                    prop_assert!(out.len() <= bytes.len());
                }
            }

            /// A valid body with one byte changed: no panic, and never more payload than bytes.
            #[test]
            fn chunked_decoder_survives_a_corrupted_body(
                payload in prop::collection::vec(any::<u8>(), 0..400),
                sizes in prop::collection::vec(1usize..90, 0..6),
                at in any::<usize>(),
                byte in any::<u8>(),
                cuts in prop::collection::vec(any::<usize>(), 0..12),
            ) {
                let mut wire = encode(&payload, &sizes, false, true, true);
                let i = at % wire.len();
                wire[i] = byte;
                if let Ok((out, _)) = decode(&split(&wire, &cuts)) {
                    prop_assert!(out.len() <= wire.len());
                }
            }
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_wall_reference_gives_the_wall_time_of_later_monotonic_instants() {
        let r = WallRef::at(Instant::now()).unwrap();
        assert_eq!(
            r.wall_at(r.mono + Duration::from_millis(100)),
            Some(r.wall + Duration::from_millis(100))
        );
        assert_eq!(r.wall_at(r.mono + WALL_REFRESH), None, "stale");
        assert_eq!(r.wall_at(r.mono - Duration::from_millis(1)), None);
        // Against the real wall clock 50 ms on: the same up to the two reads' skew.
        std::thread::sleep(Duration::from_millis(50));
        let wall = r.wall_at(Instant::now()).unwrap();
        let real = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        let skew = real.abs_diff(wall);
        // (A wrong reference would be off by the 50 ms slept; 10 ms leaves room for a preempted test thread.)
        assert!(skew < Duration::from_millis(10), "skew {skew:?}");
    }

    /// A read's kernel time is set against the cached wall reference while it is fresh, and against both
    /// clocks read again once it is stale: a wrong stale reference changes nothing.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn stamps_use_a_fresh_wall_reference_and_renew_a_stale_one() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move { listener.accept().await.map(|(s, _)| s) });
        let mut conn = Http1Pool::new("127.0.0.1", port, "x", &[])
            .connect()
            .await
            .unwrap();
        let wall_now = || SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        // The stamp says 5 ms before its read; a preempted test thread only adds to the time since.
        let about_5ms =
            |d: Duration| d >= Duration::from_millis(4) && d < Duration::from_millis(60);
        // Fresh (taken 50 ms ago): the bytes came 5 ms before the read.
        let ago = Duration::from_millis(50);
        conn.wall_ref = Some(WallRef {
            mono: Instant::now() - ago,
            wall: wall_now() - ago,
        });
        conn.stamp(Some(wall_now() - Duration::from_millis(5)));
        let before_read = Instant::now().duration_since(conn.arrival);
        assert!(about_5ms(before_read), "{before_read:?}");
        // Stale and wrong by 5 s: renewed, so the 5 ms still come out.
        conn.wall_ref = Some(WallRef {
            mono: Instant::now() - Duration::from_secs(1),
            wall: wall_now() - Duration::from_secs(6),
        });
        conn.stamp(Some(wall_now() - Duration::from_millis(5)));
        let before_read = Instant::now().duration_since(conn.arrival);
        assert!(about_5ms(before_read), "{before_read:?}");
        let renewed = conn.wall_ref.unwrap();
        assert!(
            renewed.wall.abs_diff(wall_now()) < Duration::from_millis(60),
            "{renewed:?}"
        );
        server.abort();
    }

    /// A busy client reads late; kernel timestamps still say when the bytes arrived.
    #[tokio::test]
    async fn kernel_timestamps_ignore_the_clients_own_delay() {
        for kernel in [true, false] {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = listener.local_addr().unwrap().port();
            let server = tokio::spawn(async move {
                let (mut sock, _) = listener.accept().await.unwrap();
                let mut b = [0u8; 4096];
                let _ = sock.read(&mut b).await.unwrap();
                sock.write_all(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n1\r\na\r\n")
                    .await
                    .unwrap();
                tokio::time::sleep(Duration::from_millis(60)).await;
                sock.write_all(b"1\r\nb\r\n0\r\n\r\n").await.unwrap();
                tokio::time::sleep(Duration::from_millis(300)).await;
            });
            let mut pool = Http1Pool::new("127.0.0.1", port, "x", &[]);
            pool.set_kernel_timestamps(kernel);
            let mut conn = pool.connect().await.unwrap();
            assert_eq!(
                conn.kernel_timestamps(),
                kernel && cfg!(target_os = "linux")
            );
            let t0 = Instant::now();
            conn.send(&pool.request_bytes("GET", "/", &[], b""))
                .await
                .unwrap();
            let head = conn.read_head(false).await.unwrap();
            // The client is busy elsewhere while "b" arrives at ~60 ms.
            tokio::time::sleep(Duration::from_millis(250)).await;
            let mut times = Vec::new();
            conn.read_body(&head, |piece, t| {
                times.push((piece.to_vec(), t.duration_since(t0)));
                Flow::More
            })
            .await
            .unwrap();
            let b = times.iter().find(|(p, _)| p == b"b").unwrap().1;
            if conn.kernel_timestamps() {
                assert!(
                    b >= Duration::from_millis(40) && b < Duration::from_millis(200),
                    "kernel arrival of b: {b:?}"
                );
                let delay = conn.take_read_delay().unwrap();
                assert!(
                    delay.max >= Duration::from_millis(100),
                    "read delay {delay:?}"
                );
                assert!(delay.reads >= 1 && delay.late >= 1, "{delay:?}");
            } else {
                assert!(
                    b >= Duration::from_millis(250),
                    "read-time stamp of b: {b:?}"
                );
                assert!(conn.take_read_delay().is_none());
            }
            server.abort();
        }
    }
}
