//! The streaming HTTP client: one request in, one [`RequestRecord`] out.
//!
//! Timestamps come from a monotonic clock read when each read of the body returns (several SSE events in one
//! read share its time). The body is serialized before the clock starts.

use bytes::Bytes;
use futures_util::StreamExt;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use servebench_core::api::{Api, Backend, StreamDecoder};
use servebench_core::record::{FailureCode, RequestRecord, TokenSource};
use servebench_core::sse::SseParser;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::guarded::{guarded, GuardCell};
use crate::http1::{Flow, Http1Error, Http1Pool};
use crate::LoadError;

/// How to reach the server.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// `http://host:port` (no trailing slash).
    pub base_url: String,
    pub backend: Backend,
    pub api_key: Option<String>,
    /// Extra headers (`--header K:V`).
    pub headers: Vec<(String, String)>,
    /// Time limits of every request (all on by default; see [`Timeouts`]).
    pub timeouts: Timeouts,
    /// Re-send a request whose reused keep-alive connection failed before any response byte (at most this many
    /// times; see [`Client::execute`]).
    pub max_connection_retries: u32,
    /// Keep the generated text in records.
    pub keep_text: bool,
    /// Which HTTP implementation sends the timed requests.
    pub http_client: HttpClientKind,
    /// Native client on Linux: chunk times are the kernel's receive timestamps (false: when reads return).
    pub kernel_timestamps: bool,
    /// Open a new connection for every request and close it after, as `sglang.bench_serving` does (its TTFT
    /// then includes the connect, which happens after the send time is taken); no keep-alive reuse.
    pub connection_per_request: bool,
}

/// Time limits of one request, all measured from its (first) send. A request over a limit fails with the
/// matching code (`timeout_connect`, `timeout_ttft`, `timeout_idle`, `timeout_total`) and the run goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Opening the TCP connection (`--connect-timeout`).
    pub connect: Duration,
    /// Send → first token of a streamed answer (`--ttft-timeout`). Queueing on a loaded server counts here.
    pub ttft: Duration,
    /// Longest gap without a byte after the first token (`--idle-timeout`; keep-alive comments count as bytes).
    pub idle: Duration,
    /// The whole request (`--timeout`; sglang's aiohttp limit is 6 h). A non-streamed request has only this
    /// and the connect limit.
    pub total: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(30),
            ttft: Duration::from_secs(1800),
            idle: Duration::from_secs(300),
            total: Duration::from_secs(6 * 3600),
        }
    }
}

impl Timeouts {
    /// Limits from seconds as given on the command line, each checked by `servebench_core::duration` (finite,
    /// > 0, at most its `MAX_SECONDS`); the error names the flag.
    pub fn from_secs(
        connect: f64,
        ttft: f64,
        idle: f64,
        total: f64,
    ) -> Result<Timeouts, LoadError> {
        let one = |flag: &str, v: f64| {
            servebench_core::duration::checked_seconds(
                flag,
                v,
                servebench_core::duration::Lower::Positive,
            )
            .map_err(|e| LoadError::Config(e.to_string()))
        };
        Ok(Timeouts {
            connect: one("--connect-timeout", connect)?,
            ttft: one("--ttft-timeout", ttft)?,
            idle: one("--idle-timeout", idle)?,
            total: one("--timeout", total)?,
        })
    }
}

/// A failure seen within this long of a write on a reused connection, before any response byte, is the server
/// closing an idle connection (the request was never read): that, and only that, is re-sent. The window is
/// this much plus three handshake times of the connection, so a server that takes a request and drops it
/// later (sglang counts that as a failure) is not sent it twice.
pub const RESEND_WINDOW: Duration = Duration::from_millis(100);

/// Which HTTP implementation sends the timed requests (`--http-client`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HttpClientKind {
    /// The native HTTP/1.1 client for `http://` URLs when no proxy is configured; reqwest otherwise.
    #[default]
    Auto,
    /// The native HTTP/1.1 client (plain `http://` only).
    Native,
    /// reqwest (hyper): TLS, proxies from the environment.
    Reqwest,
}

impl HttpClientKind {
    pub fn parse(s: &str) -> Result<Self, LoadError> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(HttpClientKind::Auto),
            "native" => Ok(HttpClientKind::Native),
            "reqwest" => Ok(HttpClientKind::Reqwest),
            _ => Err(LoadError::Config(format!(
                "--http-client '{s}': expected auto, native or reqwest"
            ))),
        }
    }
}

/// Proxy variables reqwest would follow (then `auto` leaves the request to reqwest).
fn proxy_configured() -> bool {
    ["HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"]
        .iter()
        .any(|k| std::env::var_os(k).is_some_and(|v| !v.is_empty()))
}

impl ClientConfig {
    pub fn new(base_url: &str, backend: Backend) -> Self {
        ClientConfig {
            base_url: base_url.trim_end_matches('/').to_string(),
            backend,
            api_key: None,
            headers: Vec::new(),
            timeouts: Timeouts::default(),
            max_connection_retries: 2,
            keep_text: true,
            http_client: HttpClientKind::Auto,
            kernel_timestamps: true,
            connection_per_request: false,
        }
    }
}

/// A request ready to send: the body is already serialized.
#[derive(Debug, Clone)]
pub struct PreparedRequest {
    pub index: u64,
    pub request_id: String,
    pub body: Bytes,
    pub stream: bool,
    /// For the record.
    pub prompt_text: String,
    pub prompt_len_intended: Option<u64>,
    pub prompt_tokens: Option<u64>,
    pub output_len_intended: Option<u64>,
}

/// The result of one request, before token counting on the client side.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub record: RequestRecord,
    /// Chunk arrival instants are relative to this send instant.
    pub send_instant: Instant,
}

/// The HTTP client shared by all requests of a run.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    /// Keeps no idle connections: a re-send after a failed reused connection goes out on a new one.
    http_fresh: reqwest::Client,
    url: String,
    /// The native HTTP/1.1 client, when it sends the timed requests.
    native: Option<Arc<Http1Pool>>,
    /// Request target (path) for the native client.
    target: String,
    config: ClientConfig,
}

fn snippet(s: &str) -> String {
    let s = s.trim();
    if s.len() > 300 {
        let mut end = 300;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}…", &s[..end])
    } else {
        s.to_string()
    }
}

/// Whether an error of reqwest's `send()` may be a reused connection closed by the server before it read the
/// request (reqwest does not say whether the connection was reused: a fresh connection fails with `is_connect`).
fn reused_connection_failure(e: &reqwest::Error) -> bool {
    !e.is_timeout() && !e.is_builder() && !e.is_status() && !e.is_connect() && e.is_request()
}

/// The code of a reqwest error.
fn reqwest_code(e: &reqwest::Error) -> FailureCode {
    match (e.is_connect(), e.is_timeout()) {
        (true, true) => FailureCode::TimeoutConnect,
        (true, false) => FailureCode::Connect,
        (false, true) => FailureCode::TimeoutTotal,
        // A body that broke: reqwest reports truncation and bad framing alike.
        _ => FailureCode::Reset,
    }
}

/// The code of a native-client error.
fn http1_code(e: &Http1Error) -> FailureCode {
    match e {
        Http1Error::Resolve { .. } | Http1Error::Connect { .. } => FailureCode::Connect,
        Http1Error::Protocol(_) => FailureCode::Protocol,
        Http1Error::Write(_)
        | Http1Error::ClosedBeforeResponse
        | Http1Error::ResetBeforeResponse(_)
        | Http1Error::Read(_)
        | Http1Error::Truncated => FailureCode::Reset,
    }
}

/// What a timeout's message says.
fn timeout_message(code: FailureCode, t: &Timeouts) -> String {
    let (what, limit, flag) = match code {
        FailureCode::TimeoutConnect => (
            "the connection was not open",
            t.connect,
            "--connect-timeout",
        ),
        FailureCode::TimeoutTtft => ("no first token", t.ttft, "--ttft-timeout"),
        FailureCode::TimeoutIdle => ("no byte from the server", t.idle, "--idle-timeout"),
        _ => ("the request did not end", t.total, "--timeout"),
    };
    format!("timeout: {what} within {}s ({flag})", limit.as_secs_f64())
}

/// `send + d`, or a time too far to matter when that does not fit.
fn deadline(send: Instant, d: Duration) -> Instant {
    send.checked_add(d)
        .unwrap_or_else(|| send + Duration::from_secs(100 * 365 * 86_400))
}

/// Where a request is, for its timeouts (read by the watchdog, written by the request: one relaxed store per
/// read, no timer per chunk).
struct Progress {
    phase: AtomicU8,
    /// Microseconds after send of the last bytes read.
    last_us: AtomicU64,
}

const CONNECTING: u8 = 0;
const WAITING: u8 = 1;
const STREAMING: u8 = 2;
/// Non-streamed answers: the total limit only.
const WHOLE: u8 = 3;

impl Progress {
    fn new(phase: u8) -> Self {
        Progress {
            phase: AtomicU8::new(phase),
            last_us: AtomicU64::new(0),
        }
    }

    fn set(&self, phase: u8) {
        self.phase.store(phase, Relaxed);
    }

    /// Bytes arrived at `now_ms` after send.
    fn touch(&self, now_ms: f64) {
        self.last_us.store((now_ms * 1000.0) as u64, Relaxed);
    }
}

/// Resolves with the timeout that expired first. Sleeps until the nearest deadline and re-checks there, so
/// a stream that keeps moving costs one wake-up per idle period, not one timer per chunk; raced with the
/// request through [`guarded`], it is not polled on the stream's own wake-ups either.
async fn watchdog(p: &Progress, t: &Timeouts, send: Instant) -> FailureCode {
    let total = deadline(send, t.total);
    loop {
        let (at, code) = match p.phase.load(Relaxed) {
            CONNECTING => (deadline(send, t.connect), FailureCode::TimeoutConnect),
            WAITING => (deadline(send, t.ttft), FailureCode::TimeoutTtft),
            STREAMING => {
                let last = Duration::from_micros(p.last_us.load(Relaxed));
                (
                    deadline(send, last.saturating_add(t.idle)),
                    FailureCode::TimeoutIdle,
                )
            }
            _ => (total, FailureCode::TimeoutTotal),
        };
        let (at, code) = if total <= at {
            (total, FailureCode::TimeoutTotal)
        } else {
            (at, code)
        };
        if Instant::now() >= at {
            return code;
        }
        tokio::time::sleep_until(at.into()).await;
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        let t = inner.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        src = inner.source();
    }
    s
}

/// The native client for `config`, when it applies, and its request target.
fn native_pool(
    config: &ClientConfig,
    headers: &HeaderMap,
) -> Result<(Option<Http1Pool>, String), LoadError> {
    let url = reqwest::Url::parse(&config.base_url).map_err(|e| {
        LoadError::Config(format!(
            "--base-url '{}': {e} (expected e.g. http://127.0.0.1:30000)",
            config.base_url
        ))
    })?;
    let prefix = url.path().trim_end_matches('/');
    let target = format!("{prefix}{}", config.backend.path());
    let plain = url.scheme() == "http";
    let use_native = match config.http_client {
        HttpClientKind::Reqwest => false,
        HttpClientKind::Native if !plain => {
            return Err(LoadError::Config(format!(
                "--http-client native speaks plain http:// only, not {}://; use --http-client auto or reqwest",
                url.scheme()
            )))
        }
        HttpClientKind::Native => true,
        HttpClientKind::Auto => plain && !proxy_configured(),
    };
    if !use_native {
        return Ok((None, target));
    }
    let (host, port) = match (url.host(), url.port_or_known_default()) {
        (Some(url::Host::Domain(d)), Some(p)) => (d.to_string(), p),
        (Some(url::Host::Ipv4(a)), Some(p)) => (a.to_string(), p),
        (Some(url::Host::Ipv6(a)), Some(p)) => (a.to_string(), p),
        _ => {
            return Err(LoadError::Config(format!(
                "--base-url '{}' has no host",
                config.base_url
            )))
        }
    };
    let authority = match url.port() {
        Some(p) => format!("{}:{p}", url.host_str().unwrap_or(&host)),
        None => url.host_str().unwrap_or(&host).to_string(),
    };
    let mut lines = vec![(
        "User-Agent".to_string(),
        concat!("servebench/", env!("CARGO_PKG_VERSION")).to_string(),
    )];
    for (k, v) in headers {
        // Validated by reqwest's header types above: no CR/LF can get in.
        let v = v
            .to_str()
            .map_err(|_| LoadError::Config(format!("header '{k}': value is not visible ASCII")))?;
        lines.push((k.as_str().to_string(), v.to_string()));
    }
    let mut pool = Http1Pool::new(&host, port, &authority, &lines);
    pool.set_kernel_timestamps(config.kernel_timestamps);
    Ok((Some(pool), target))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

impl Client {
    pub fn new(config: ClientConfig) -> Result<Client, LoadError> {
        crate::ensure_tls_provider();
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Some(key) = &config.api_key {
            let mut v = HeaderValue::from_str(&format!("Bearer {key}")).map_err(|_| {
                LoadError::Config("the API key has characters not allowed in an HTTP header".into())
            })?;
            v.set_sensitive(true);
            headers.insert(AUTHORIZATION, v);
        }
        for (k, v) in &config.headers {
            let name = HeaderName::from_bytes(k.as_bytes()).map_err(|_| {
                LoadError::Config(format!("--header '{k}': not a valid header name"))
            })?;
            let value = HeaderValue::from_str(v).map_err(|_| {
                LoadError::Config(format!("--header '{k}': value is not a valid header value"))
            })?;
            headers.insert(name, value);
        }
        let build = |idle: usize| {
            let mut b = reqwest::Client::builder()
                .default_headers(headers.clone())
                .tcp_nodelay(true)
                .pool_max_idle_per_host(idle)
                .pool_idle_timeout(Duration::from_secs(300))
                .http1_only()
                .user_agent(concat!("servebench/", env!("CARGO_PKG_VERSION")));
            b = b.connect_timeout(config.timeouts.connect);
            b.build().map_err(|e| LoadError::Http(error_chain(&e)))
        };
        let http = build(usize::MAX)?;
        let http_fresh = build(0)?;
        let url = format!("{}{}", config.base_url, config.backend.path());
        let (native, target) = native_pool(&config, &headers)?;
        Ok(Client {
            http,
            http_fresh,
            url,
            native: native.map(Arc::new),
            target,
            config,
        })
    }

    /// The sampler of event-loop lag from kernel-timestamped reads (the native client's; it samples only
    /// where its connections get kernel timestamps).
    pub fn read_lag(&self) -> Option<Arc<crate::monitor::ReadLag>> {
        self.native.as_ref().map(|pool| pool.read_lag().clone())
    }

    /// Where chunk times come from: "kernel" (receive timestamps of the native client on Linux) or "read"
    /// (when the client's read returned).
    pub fn timestamp_source(&self) -> &'static str {
        if self.native.is_some() && self.config.kernel_timestamps && cfg!(target_os = "linux") {
            "kernel"
        } else {
            "read"
        }
    }

    /// Which HTTP implementation sends the timed requests: "native" or "reqwest".
    pub fn http_client_name(&self) -> &'static str {
        if self.native.is_some() {
            "native"
        } else {
            "reqwest"
        }
    }

    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    pub fn api(&self) -> Api {
        self.config.backend.api
    }

    fn target_prefix(&self) -> &str {
        self.target
            .strip_suffix(self.config.backend.path())
            .unwrap_or("")
    }

    /// The underlying HTTP client (for side calls: /v1/models, /get_server_info, /flush_cache).
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// GET `path` on the server and parse JSON (None on any failure).
    pub async fn get_json(&self, path: &str) -> Option<serde_json::Value> {
        let resp = self
            .http
            .get(format!("{}{}", self.config.base_url, path))
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .ok()?;
        if !resp.status().is_success() {
            return None;
        }
        resp.json().await.ok()
    }

    /// Opens a connection with a cheap GET (pool warm-up); returns how long it took. Bounded by the connect
    /// timeout plus 30 s for the answer.
    pub async fn warm_connection(&self) -> Result<Duration, String> {
        let limit = self
            .config
            .timeouts
            .connect
            .saturating_add(Duration::from_secs(30));
        tokio::time::timeout(limit, self.warm_connection_unbounded())
            .await
            .unwrap_or_else(|_| Err(format!("no answer within {}s", limit.as_secs_f64())))
    }

    async fn warm_connection_unbounded(&self) -> Result<Duration, String> {
        let t = Instant::now();
        if let Some(pool) = &self.native {
            let mut conn = pool.connect().await.map_err(|e| e.to_string())?;
            let path = format!("{}/v1/models", self.target_prefix());
            conn.send(&pool.request_bytes("GET", &path, &[], b""))
                .await
                .map_err(|e| e.to_string())?;
            let head = conn.read_head(false).await.map_err(|e| e.to_string())?;
            let (_, reusable) = conn
                .read_to_vec(&head, 0)
                .await
                .map_err(|e| e.to_string())?;
            if reusable {
                pool.checkin(conn);
            }
            return Ok(t.elapsed());
        }
        let resp = self
            .http
            .get(format!("{}/v1/models", self.config.base_url))
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .map_err(|e| error_chain(&e))?;
        let _ = resp.bytes().await;
        Ok(t.elapsed())
    }

    /// Sends one request and measures it. Never fails: errors are recorded in the record, with a
    /// [`FailureCode`].
    ///
    /// Re-sends: only a request whose *reused* keep-alive connection failed before any response byte, within
    /// [`RESEND_WINDOW`] (plus three handshake times) of the write, is sent again on a new connection (whose own
    /// failure is final; reqwest: at most `max_connection_retries` times): the server closed an idle connection
    /// and never read it. The record keeps
    /// the first send time (all times are from it) and counts the re-sends in `retries`. Anything else is a
    /// failure.
    pub async fn execute(&self, req: &PreparedRequest, run_start: Instant) -> Outcome {
        // The record (and below, the stream state) live on the heap, not in the request's future: the
        // future's levels, each read on every chunk of a stream, then lie in fewer cache lines (cachegrind,
        // paced case: 2.2 fewer L1 misses a chunk).
        let mut rec = Box::new(RequestRecord {
            index: req.index,
            request_id: req.request_id.clone(),
            prompt: req.prompt_text.clone(),
            prompt_len_intended: req.prompt_len_intended,
            prompt_tokens: req.prompt_tokens,
            output_len_intended: req.output_len_intended,
            ..Default::default()
        });
        if let Some(n) = req.output_len_intended {
            rec.chunk_ms.reserve((n as usize).min(1 << 16));
            rec.chunk_text_end.reserve((n as usize).min(1 << 16));
        }
        let send_instant = match &self.native {
            Some(pool) => self.execute_native(pool, req, run_start, &mut rec).await,
            None => self.execute_reqwest(req, run_start, &mut rec).await,
        };
        Outcome {
            record: *rec,
            send_instant,
        }
    }

    fn stamp_send(rec: &mut RequestRecord, run_start: Instant) -> Instant {
        let send_instant = Instant::now();
        rec.send_ms = ms(send_instant.duration_since(run_start));
        rec.send_unix_ns = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        send_instant
    }

    async fn execute_reqwest(
        &self,
        req: &PreparedRequest,
        run_start: Instant,
        rec: &mut RequestRecord,
    ) -> Instant {
        let send_instant = Self::stamp_send(rec, run_start);
        let cell = GuardCell::new(Progress::new(WAITING));
        let progress = &cell.state;
        let mut st = StreamState::new(self.api(), rec);
        let timeouts = &self.config.timeouts;
        let attempt = self.reqwest_attempt(req, send_instant, progress, &mut st, rec);
        let failure = guarded(cell.clone(), async { attempt.await.err() }, async {
            let code = watchdog(progress, timeouts, send_instant).await;
            Some((code, timeout_message(code, timeouts)))
        })
        .await;
        st.give_back(rec);
        self.conclude(st, failure, send_instant, rec);
        send_instant
    }

    /// The reqwest path: sends (re-sending only what [`Client::execute`] allows) and reads the answer.
    async fn reqwest_attempt(
        &self,
        req: &PreparedRequest,
        send: Instant,
        progress: &Progress,
        st: &mut StreamState,
        rec: &mut RequestRecord,
    ) -> Result<(), (FailureCode, String)> {
        let mut attempt = 0;
        let resp = loop {
            // A re-send goes out on a new connection: the pooled ones may all have been closed by the server.
            let http = if attempt == 0 && !self.config.connection_per_request {
                &self.http
            } else {
                &self.http_fresh
            };
            let t = Instant::now();
            let sent = http
                .post(&self.url)
                .header("x-request-id", &req.request_id)
                .body(req.body.clone())
                .send()
                .await;
            match sent {
                Ok(r) => break r,
                Err(e)
                    if attempt < self.config.max_connection_retries
                        && reused_connection_failure(&e)
                        && t.elapsed() < RESEND_WINDOW =>
                {
                    attempt += 1;
                    rec.retries = attempt;
                }
                Err(e) => return Err((reqwest_code(&e), error_chain(&e))),
            }
        };
        let status = resp.status();
        rec.http_status = Some(status.as_u16());
        if !status.is_success() {
            let retry_after = resp
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let text = resp.text().await.unwrap_or_default();
            let code = status.as_u16();
            let msg = http_error_message(code, retry_after.as_deref(), text.as_bytes());
            rec.fail(FailureCode::of_status(code), msg, ms(send.elapsed()));
            return Ok(());
        }
        if !req.stream {
            progress.set(WHOLE);
            let body = resp
                .bytes()
                .await
                .map_err(|e| (reqwest_code(&e), error_chain(&e)))?;
            st.full_body(&body, ms(send.elapsed()), rec);
            return Ok(());
        }
        let content_type = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        if let Some(ct) = content_type.filter(|ct| !is_event_stream(ct)) {
            let text = resp.bytes().await.unwrap_or_default();
            rec.fail(
                FailureCode::ContentType,
                content_type_message(&ct, &text),
                ms(send.elapsed()),
            );
            return Ok(());
        }
        st.streaming = true;
        let mut body = resp.bytes_stream();
        let mut tail: Option<tokio::time::Instant> = None;
        loop {
            let item = match tail {
                None => body.next().await,
                // After [DONE]: the rest of the body only briefly (the connection is kept when it ends).
                Some(t) => match tokio::time::timeout_at(t, body.next()).await {
                    Ok(item) => item,
                    Err(_) => break,
                },
            };
            let Some(item) = item else { break };
            let now = ms(send.elapsed());
            match item {
                Ok(bytes) if tail.is_none() => match st.feed(&bytes, now, progress) {
                    Flow::More => {}
                    Flow::Stop => break,
                    Flow::Finish => {
                        tail = Some(tokio::time::Instant::now() + crate::http1::FINISH_TAIL);
                    }
                },
                Ok(_) => {}
                Err(_) if tail.is_some() => break,
                Err(e) => {
                    return Err((
                        reqwest_code(&e),
                        format!("stream broken: {}", error_chain(&e)),
                    ))
                }
            }
        }
        st.end_ms = Some(st.done_ms.unwrap_or_else(|| ms(send.elapsed())));
        Ok(())
    }

    async fn execute_native(
        &self,
        pool: &Http1Pool,
        req: &PreparedRequest,
        run_start: Instant,
        rec: &mut RequestRecord,
    ) -> Instant {
        let send_instant = Self::stamp_send(rec, run_start);
        let timeouts = &self.config.timeouts;
        let mut attempt = 0;
        loop {
            // One cell per attempt: the watchdog's progress starts over.
            let cell = GuardCell::new(Progress::new(CONNECTING));
            let progress = &cell.state;
            // Boxed for the same reason as the record (see `execute`).
            let mut st = Box::new(StreamState::new(self.api(), rec));
            let outcome = {
                let fut = self.native_attempt(
                    pool,
                    req,
                    attempt > 0 || self.config.connection_per_request,
                    send_instant,
                    progress,
                    &mut st,
                    rec,
                );
                guarded(cell.clone(), fut, async {
                    Err(NativeFailure::Timeout(
                        watchdog(progress, timeouts, send_instant).await,
                    ))
                })
                .await
            };
            st.give_back(rec);
            let failure = match outcome {
                Ok(()) => None,
                Err(NativeFailure::BeforeResponse { resend: true, .. })
                    if attempt < self.config.max_connection_retries =>
                {
                    attempt += 1;
                    rec.retries = attempt;
                    continue;
                }
                Err(NativeFailure::BeforeResponse { err, .. }) => {
                    Some((http1_code(&err), format!("connection error: {err}")))
                }
                Err(NativeFailure::Body(e)) => {
                    Some((http1_code(&e), format!("stream broken: {e}")))
                }
                Err(NativeFailure::Timeout(code)) => Some((code, timeout_message(code, timeouts))),
            };
            self.conclude(*st, failure, send_instant, rec);
            return send_instant;
        }
    }

    /// Records the end of a request: a failure (unless the answer was already whole at `[DONE]`), the
    /// end-of-stream checks, the decoded text and counts.
    fn conclude(
        &self,
        mut st: StreamState,
        failure: Option<(FailureCode, String)>,
        send: Instant,
        rec: &mut RequestRecord,
    ) {
        let after = ms(send.elapsed());
        if let Some((code, msg)) = failure {
            if !st.done {
                st.fail(code, msg, after);
            }
        }
        let decoder = if st.streaming {
            // The end of a complete stream is when its last bytes (or [DONE]) arrived (kernel time where known).
            let end = st.end_ms.unwrap_or(after);
            st.end(end, rec)
        } else {
            if let Some((code, msg, at)) = st.err.take() {
                rec.fail(code, msg, at);
            }
            st.decoder
        };
        self.finish(decoder, rec);
    }

    /// One try on the native client.
    #[allow(clippy::too_many_arguments)]
    async fn native_attempt(
        &self,
        pool: &Http1Pool,
        req: &PreparedRequest,
        fresh: bool,
        send: Instant,
        progress: &Progress,
        st: &mut StreamState,
        rec: &mut RequestRecord,
    ) -> Result<(), NativeFailure> {
        let mut conn = pool
            .checkout(fresh)
            .await
            .map_err(|err| NativeFailure::BeforeResponse { err, resend: false })?;
        progress.set(if req.stream { WAITING } else { WHOLE });
        conn.take_read_delay();
        let bytes = pool.request_bytes(
            "POST",
            &self.target,
            &[("x-request-id", &req.request_id)],
            &req.body,
        );
        let written = Instant::now();
        // Only an idle close of a reused connection, seen at once, may be re-sent.
        let window = RESEND_WINDOW.saturating_add(conn.connect_time.saturating_mul(3));
        let reused = conn.reused;
        let resend = |err: Http1Error| NativeFailure::BeforeResponse {
            resend: reused && err.before_response() && written.elapsed() < window,
            err,
        };
        conn.send(&bytes).await.map_err(resend)?;
        drop(bytes);
        let head = conn.read_head(false).await.map_err(|e| {
            if e.before_response() {
                resend(e)
            } else {
                NativeFailure::Body(e)
            }
        })?;
        rec.http_status = Some(head.status);
        if !(200..300).contains(&head.status) {
            let (body, reusable) = conn.read_to_vec(&head, 64 * 1024).await.unwrap_or_default();
            let msg = http_error_message(head.status, head.retry_after.as_deref(), &body);
            rec.fail(FailureCode::of_status(head.status), msg, ms(send.elapsed()));
            if reusable {
                self.keep(pool, conn);
            }
            return Ok(());
        }
        if !req.stream {
            let (body, reusable) = conn
                .read_to_vec(&head, usize::MAX)
                .await
                .map_err(NativeFailure::Body)?;
            let at = ms(conn.last_arrival().saturating_duration_since(send));
            st.full_body(&body, at, rec);
            if reusable {
                self.keep(pool, conn);
            }
            return Ok(());
        }
        if let Some(ct) = head
            .content_type
            .as_deref()
            .filter(|ct| !is_event_stream(ct))
        {
            let (body, _) = conn.read_to_vec(&head, 64 * 1024).await.unwrap_or_default();
            rec.fail(
                FailureCode::ContentType,
                content_type_message(ct, &body),
                ms(send.elapsed()),
            );
            return Ok(());
        }
        st.streaming = true;
        let read = conn
            .read_body(&head, |bytes, t| {
                st.feed(bytes, ms(t.saturating_duration_since(send)), progress)
            })
            .await;
        if let Some(d) = conn.take_read_delay() {
            rec.read_delay_ms = Some(ms(d.max));
            rec.timed_reads = d.reads;
            rec.late_reads = d.late;
        }
        let reusable = read.map_err(NativeFailure::Body)?;
        let last = ms(conn.last_arrival().saturating_duration_since(send));
        st.end_ms = Some(st.done_ms.unwrap_or(last));
        if reusable {
            self.keep(pool, conn);
        }
        Ok(())
    }

    /// Returns a connection whose answer was read to the end to the pool; with `connection_per_request` it is
    /// dropped (closed) instead.
    fn keep(&self, pool: &Http1Pool, conn: crate::http1::Conn) {
        if !self.config.connection_per_request {
            pool.checkin(conn);
        }
    }

    fn finish(&self, decoder: StreamDecoder, rec: &mut RequestRecord) {
        rec.prompt_tokens_server = decoder.usage.prompt_tokens;
        if let Some(c) = decoder.usage.completion_tokens {
            rec.output_tokens = Some(c);
            rec.output_tokens_source = TokenSource::Usage;
        }
        rec.finish_reason = decoder.finish_reason;
        if self.config.keep_text || rec.output_tokens.is_none() {
            rec.generated_text = decoder.text;
            rec.reasoning_text = decoder.reasoning;
        }
        if rec.error.is_some() {
            // A failed request has no end-to-end latency.
            rec.e2e_ms = None;
        }
    }
}

/// A `Content-Type` that announces Server-Sent Events.
fn is_event_stream(ct: &str) -> bool {
    ct.trim_start()
        .get(..17)
        .is_some_and(|p| p.eq_ignore_ascii_case("text/event-stream"))
}

fn http_error_message(status: u16, retry_after: Option<&str>, body: &[u8]) -> String {
    let text = snippet(&String::from_utf8_lossy(body));
    match retry_after {
        Some(r) => format!("HTTP {status} (Retry-After: {r}): {text}"),
        None => format!("HTTP {status}: {text}"),
    }
}

fn content_type_message(ct: &str, body: &[u8]) -> String {
    format!(
        "the server answered a streamed request (stream: true) with Content-Type {ct}, not text/event-stream: \
         it may not support streaming (try --disable-stream); body: {}",
        snippet(&String::from_utf8_lossy(body))
    )
}

/// Why a native attempt did not complete.
enum NativeFailure {
    /// Nothing of the response arrived; `resend`: the failure is an idle close of a reused connection.
    BeforeResponse {
        err: Http1Error,
        resend: bool,
    },
    /// The response started and then broke.
    Body(Http1Error),
    Timeout(FailureCode),
}

/// SSE framing and event decoding of one response, shared by both HTTP clients.
struct StreamState {
    parser: SseParser,
    decoder: StreamDecoder,
    done: bool,
    /// When `[DONE]` arrived (ms after send): the end of the request.
    done_ms: Option<f64>,
    /// Some generated text (answer or reasoning) arrived: the idle limit applies from now on.
    first_token: bool,
    /// The first failure: code, message, when (ms after send).
    err: Option<(FailureCode, String, f64)>,
    sglang: bool,
    /// A streamed body was being read (end-of-stream rules apply).
    streaming: bool,
    /// When the last bytes of a complete stream arrived (ms after send).
    end_ms: Option<f64>,
    /// The arrival time of the last bytes fed: bytes fed with the same time came in the same read.
    last_feed_ms: f64,
    /// The record's per-chunk fields while the answer streams (see [`ChunkLog`]).
    log: ChunkLog,
}

/// A record's per-chunk fields, held by the stream's state while it runs: taken from the record at the start
/// ([`StreamState::new`]) and given back when the attempt ends ([`StreamState::give_back`]). Beside the decoder
/// they share its cache lines; in the record (hundreds of bytes, apart from the stream state) they cost lines
/// of their own on every chunk.
#[derive(Default)]
struct ChunkLog {
    ttft_ms: Option<f64>,
    chunk_ms: Vec<f64>,
    chunk_text_end: Vec<u32>,
    chunk_tokens: Vec<u32>,
}

impl StreamState {
    fn new(api: Api, rec: &mut RequestRecord) -> Self {
        let mut decoder = StreamDecoder::new(api);
        if let Some(n) = rec.output_len_intended {
            decoder.reserve((n as usize).saturating_mul(6).min(1 << 20));
        }
        StreamState {
            parser: SseParser::new(),
            decoder,
            done: false,
            done_ms: None,
            first_token: false,
            err: None,
            sglang: api == Api::SglangGenerate,
            streaming: false,
            end_ms: None,
            last_feed_ms: f64::NAN,
            log: ChunkLog {
                ttft_ms: rec.ttft_ms.take(),
                chunk_ms: std::mem::take(&mut rec.chunk_ms),
                chunk_text_end: std::mem::take(&mut rec.chunk_text_end),
                chunk_tokens: std::mem::take(&mut rec.chunk_tokens),
            },
        }
    }

    /// Gives the per-chunk fields back to the record (once the attempt that fed this state is over).
    fn give_back(&mut self, rec: &mut RequestRecord) {
        let log = std::mem::take(&mut self.log);
        rec.ttft_ms = log.ttft_ms;
        rec.chunk_ms = log.chunk_ms;
        rec.chunk_text_end = log.chunk_text_end;
        rec.chunk_tokens = log.chunk_tokens;
    }

    /// A non-streamed body, read whole at `now` (ms after send).
    fn full_body(&mut self, body: &[u8], now: f64, rec: &mut RequestRecord) {
        if let Err(e) = self.decoder.on_full_body(body) {
            rec.fail(core_code(&e), e.to_string(), now);
        } else {
            self.log.ttft_ms = Some(now);
            rec.e2e_ms = Some(now);
            self.log.chunk_ms.push(now);
        }
    }

    /// The first failure wins.
    fn fail(&mut self, code: FailureCode, msg: String, at: f64) {
        if self.err.is_none() {
            self.err = Some((code, msg, at));
        }
    }

    /// Bytes of a streamed body that arrived at `now` (ms after send): [`Flow::Finish`] at `[DONE]`,
    /// [`Flow::Stop`] once the stream is in error.
    fn feed(&mut self, bytes: &[u8], now: f64, progress: &Progress) -> Flow {
        progress.touch(now);
        self.decoder.new_read(now == self.last_feed_ms);
        self.last_feed_ms = now;
        let had_token = self.first_token;
        let StreamState {
            parser,
            decoder,
            done,
            done_ms,
            err,
            sglang,
            first_token,
            log,
            ..
        } = self;
        parser.feed(bytes, |ev| {
            if err.is_some() || *done {
                return;
            }
            match decoder.on_event(ev) {
                Ok(eff) => {
                    if eff.done {
                        *done = true;
                        *done_ms = Some(now);
                    }
                    // SGLang native also times new tokens without new text (sglang splits that gap too).
                    let native_tokens =
                        *sglang && eff.tokens.is_some_and(|t| t > 0) && !decoder.text.is_empty();
                    if eff.carries_text() || native_tokens {
                        // Any generated text, answer or reasoning, ends the wait for a first token.
                        *first_token = true;
                        if log.ttft_ms.is_none() {
                            log.ttft_ms = Some(now);
                        }
                        log.chunk_ms.push(now);
                        log.chunk_text_end
                            .push(decoder.text.len().min(u32::MAX as usize) as u32);
                        if *sglang {
                            log.chunk_tokens
                                .push(eff.tokens.unwrap_or(1).min(u32::MAX as u64) as u32);
                        }
                    }
                }
                Err(e) => *err = Some((core_code(&e), e.to_string(), now)),
            }
        });
        if !had_token && self.first_token {
            progress.set(STREAMING);
        }
        if self.err.is_some() {
            Flow::Stop
        } else if self.done {
            Flow::Finish
        } else {
            Flow::More
        }
    }

    /// The end of a streamed body at `end` (ms after send): end-of-stream checks; returns the decoder.
    fn end(mut self, end: f64, rec: &mut RequestRecord) -> StreamDecoder {
        if self.err.is_none() && !self.done {
            let StreamState {
                parser,
                decoder,
                done,
                ..
            } = &mut self;
            parser.flush(|ev| {
                if let Ok(eff) = decoder.on_event(ev) {
                    *done |= eff.done;
                }
            });
        }
        if rec.error.is_some() {
            // An error found before the body (HTTP status, content type) stays.
        } else if let Some((code, msg, at)) = self.err {
            rec.fail(code, msg, at);
        } else if rec.ttft_ms.is_none() {
            rec.fail(
                FailureCode::NoOutput,
                "the stream ended without any generated text",
                end,
            );
        } else if !self.done && !self.sglang && self.decoder.finish_reason.is_none() {
            rec.fail(
                FailureCode::Incomplete,
                "the stream ended before [DONE] and without a finish_reason",
                end,
            );
        }
        rec.e2e_ms = Some(end);
        self.decoder
    }
}

/// The code of a decoding error.
fn core_code(e: &servebench_core::CoreError) -> FailureCode {
    match e {
        servebench_core::CoreError::ServerError(_) => FailureCode::StreamError,
        _ => FailureCode::Parse,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_requests_guard_flag_and_progress_share_one_cache_line() {
        // Read and written on every chunk of a paced stream: one line, not two (see `GuardCell`).
        assert_eq!(std::mem::size_of::<GuardCell<Progress>>(), 64);
        assert_eq!(std::mem::align_of::<GuardCell<Progress>>(), 64);
    }
}
