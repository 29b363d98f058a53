//! The streaming HTTP client: one request in, one [`RequestRecord`] out.
//!
//! Timestamps come from a monotonic clock read when each read of the body returns (several SSE events in one
//! read share its time). The body is serialized before the clock starts.

use bytes::Bytes;
use futures_util::StreamExt;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use servebench_core::api::{Api, Backend, StreamDecoder};
use servebench_core::record::{RequestRecord, TokenSource};
use servebench_core::sse::SseParser;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::http1::{Http1Error, Http1Pool};
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
    /// Per-request timeout (none: wait as long as the stream lasts).
    pub timeout: Option<Duration>,
    /// Re-send a request whose connection failed before any response byte (at most this many times).
    pub max_connection_retries: u32,
    /// Keep the generated text in records.
    pub keep_text: bool,
    /// Which HTTP implementation sends the timed requests.
    pub http_client: HttpClientKind,
    /// Native client on Linux: chunk times are the kernel's receive timestamps (false: when reads return).
    pub kernel_timestamps: bool,
}

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
            timeout: None,
            max_connection_retries: 2,
            keep_text: true,
            http_client: HttpClientKind::Auto,
            kernel_timestamps: true,
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

/// Whether an error of `send()` (before any response byte) is worth re-sending: the connection failed.
fn connection_failure(e: &reqwest::Error) -> bool {
    !e.is_timeout() && !e.is_builder() && !e.is_status() && (e.is_connect() || e.is_request())
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
            if let Some(t) = config.timeout {
                b = b.timeout(t);
            }
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

    /// Opens a connection with a cheap GET (pool warm-up); returns how long it took.
    pub async fn warm_connection(&self) -> Result<Duration, String> {
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

    /// Sends one request and measures it. Never fails: errors are recorded in the record.
    pub async fn execute(&self, req: &PreparedRequest, run_start: Instant) -> Outcome {
        let mut rec = RequestRecord {
            index: req.index,
            request_id: req.request_id.clone(),
            prompt: req.prompt_text.clone(),
            prompt_len_intended: req.prompt_len_intended,
            prompt_tokens: req.prompt_tokens,
            output_len_intended: req.output_len_intended,
            ..Default::default()
        };
        if let Some(n) = req.output_len_intended {
            rec.chunk_ms.reserve((n as usize).min(1 << 16));
            rec.chunk_text_end.reserve((n as usize).min(1 << 16));
        }
        let send_instant = match &self.native {
            Some(pool) => self.execute_native(pool, req, run_start, &mut rec).await,
            None => self.execute_reqwest(req, run_start, &mut rec).await,
        };
        Outcome {
            record: rec,
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
        let mut attempt = 0;
        loop {
            let send_instant = Self::stamp_send(rec, run_start);
            // A re-send goes out on a new connection: the pooled ones may all have been closed by the server.
            let http = if attempt == 0 {
                &self.http
            } else {
                &self.http_fresh
            };
            let sent = http
                .post(&self.url)
                .header("x-request-id", &req.request_id)
                .body(req.body.clone())
                .send()
                .await;
            let resp = match sent {
                Ok(r) => r,
                Err(e)
                    if attempt < self.config.max_connection_retries && connection_failure(&e) =>
                {
                    attempt += 1;
                    rec.retries = attempt;
                    continue;
                }
                Err(e) => {
                    rec.error = Some(if e.is_timeout() {
                        format!("timeout: {}", error_chain(&e))
                    } else {
                        format!("connection error: {}", error_chain(&e))
                    });
                    rec.e2e_ms = None;
                    return send_instant;
                }
            };
            let decoder = self
                .read_response(resp, req.stream, send_instant, rec)
                .await;
            self.finish(decoder, rec);
            return send_instant;
        }
    }

    async fn execute_native(
        &self,
        pool: &Http1Pool,
        req: &PreparedRequest,
        run_start: Instant,
        rec: &mut RequestRecord,
    ) -> Instant {
        let mut attempt = 0;
        loop {
            let send_instant = Self::stamp_send(rec, run_start);
            let mut st = StreamState::new(self.api(), rec);
            let outcome = match self.config.timeout {
                Some(t) => {
                    let fut =
                        self.native_attempt(pool, req, attempt > 0, send_instant, &mut st, rec);
                    match tokio::time::timeout(t, fut).await {
                        Ok(r) => r,
                        Err(_) => Err(NativeFailure::Timeout),
                    }
                }
                None => {
                    self.native_attempt(pool, req, attempt > 0, send_instant, &mut st, rec)
                        .await
                }
            };
            let after = ms(send_instant.elapsed());
            match outcome {
                Ok(()) => {}
                Err(NativeFailure::BeforeResponse(_))
                    if attempt < self.config.max_connection_retries =>
                {
                    attempt += 1;
                    rec.retries = attempt;
                    continue;
                }
                Err(NativeFailure::BeforeResponse(e)) => {
                    rec.error = Some(format!("connection error: {e}"));
                }
                Err(NativeFailure::Body(e)) => {
                    st.err = Some(format!("stream broken: {e} (after {after:.0} ms)"));
                }
                Err(NativeFailure::Timeout) if rec.http_status.is_none() => {
                    rec.error = Some(format!(
                        "timeout: no response (--timeout; after {after:.0} ms)"
                    ));
                }
                Err(NativeFailure::Timeout) => {
                    st.err = Some(format!(
                        "timeout: no end of stream (--timeout; after {after:.0} ms)"
                    ));
                }
            }
            let decoder = if st.streaming {
                // The end of a complete stream is when its last bytes arrived (kernel time where known).
                let end = st.end_ms.unwrap_or(after);
                st.end(end, rec)
            } else {
                if let Some(e) = st.err.take() {
                    rec.error = rec.error.take().or(Some(e));
                }
                st.decoder
            };
            self.finish(decoder, rec);
            return send_instant;
        }
    }

    /// One try on the native client. Errors before any response byte may be re-sent.
    async fn native_attempt(
        &self,
        pool: &Http1Pool,
        req: &PreparedRequest,
        fresh: bool,
        send: Instant,
        st: &mut StreamState,
        rec: &mut RequestRecord,
    ) -> Result<(), NativeFailure> {
        let mut conn = pool
            .checkout(fresh)
            .await
            .map_err(NativeFailure::BeforeResponse)?;
        conn.take_read_delay();
        let bytes = pool.request_bytes(
            "POST",
            &self.target,
            &[("x-request-id", &req.request_id)],
            &req.body,
        );
        conn.send(&bytes)
            .await
            .map_err(NativeFailure::BeforeResponse)?;
        drop(bytes);
        let head = conn.read_head(false).await.map_err(|e| {
            if e.before_response() {
                NativeFailure::BeforeResponse(e)
            } else {
                NativeFailure::Body(e)
            }
        })?;
        rec.http_status = Some(head.status);
        if !(200..300).contains(&head.status) {
            let (body, reusable) = conn.read_to_vec(&head, 64 * 1024).await.unwrap_or_default();
            rec.error = Some(format!(
                "HTTP {}: {}",
                head.status,
                snippet(&String::from_utf8_lossy(&body))
            ));
            if reusable {
                pool.checkin(conn);
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
                pool.checkin(conn);
            }
            return Ok(());
        }
        st.streaming = true;
        let read = conn
            .read_body(&head, |bytes, t| {
                st.feed(bytes, ms(t.saturating_duration_since(send)), rec)
            })
            .await;
        if let Some(d) = conn.take_read_delay() {
            rec.read_delay_ms = Some(ms(d.max));
            rec.timed_reads = d.reads;
            rec.late_reads = d.late;
        }
        let reusable = read.map_err(NativeFailure::Body)?;
        st.end_ms = Some(ms(conn.last_arrival().saturating_duration_since(send)));
        if reusable {
            pool.checkin(conn);
        }
        Ok(())
    }

    async fn read_response(
        &self,
        resp: reqwest::Response,
        stream: bool,
        send: Instant,
        rec: &mut RequestRecord,
    ) -> StreamDecoder {
        let status = resp.status();
        rec.http_status = Some(status.as_u16());
        let mut st = StreamState::new(self.api(), rec);
        if !status.is_success() {
            let text = resp.text().await.unwrap_or_default();
            rec.error = Some(format!("HTTP {}: {}", status.as_u16(), snippet(&text)));
            return st.decoder;
        }
        if !stream {
            match resp.bytes().await {
                Ok(body) => st.full_body(&body, ms(send.elapsed()), rec),
                Err(e) => rec.error = Some(format!("body read failed: {}", error_chain(&e))),
            }
            return st.decoder;
        }
        let mut body = resp.bytes_stream();
        while let Some(item) = body.next().await {
            let now = ms(send.elapsed());
            match item {
                Ok(bytes) => {
                    if !st.feed(&bytes, now, rec) {
                        break;
                    }
                }
                Err(e) if self.timed_out(&e, send) => {
                    st.err = Some(format!(
                        "timeout: no end of stream (--timeout; after {now:.0} ms)"
                    ));
                    break;
                }
                Err(e) => {
                    st.err = Some(format!(
                        "stream broken: {} (after {now:.0} ms)",
                        error_chain(&e)
                    ));
                    break;
                }
            }
        }
        st.end(ms(send.elapsed()), rec)
    }

    /// A body error caused by `--timeout` (reqwest reports it as a body decode error).
    fn timed_out(&self, e: &reqwest::Error, send: Instant) -> bool {
        e.is_timeout()
            || error_chain(e).contains("timed out")
            || self
                .config
                .timeout
                .is_some_and(|t| send.elapsed() + Duration::from_millis(2) >= t)
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

/// Why a native attempt did not complete.
enum NativeFailure {
    /// Nothing of the response arrived: safe to re-send.
    BeforeResponse(Http1Error),
    /// The response started and then broke.
    Body(Http1Error),
    Timeout,
}

/// SSE framing and event decoding of one response, shared by both HTTP clients.
struct StreamState {
    parser: SseParser,
    decoder: StreamDecoder,
    done: bool,
    err: Option<String>,
    sglang: bool,
    /// A streamed body was being read (end-of-stream rules apply).
    streaming: bool,
    /// When the last bytes of a complete stream arrived (ms after send).
    end_ms: Option<f64>,
}

impl StreamState {
    fn new(api: Api, rec: &RequestRecord) -> Self {
        let mut decoder = StreamDecoder::new(api);
        if let Some(n) = rec.output_len_intended {
            decoder.reserve((n as usize).saturating_mul(6).min(1 << 20));
        }
        StreamState {
            parser: SseParser::new(),
            decoder,
            done: false,
            err: None,
            sglang: api == Api::SglangGenerate,
            streaming: false,
            end_ms: None,
        }
    }

    /// A non-streamed body, read whole at `now` (ms after send).
    fn full_body(&mut self, body: &[u8], now: f64, rec: &mut RequestRecord) {
        if let Err(e) = self.decoder.on_full_body(body) {
            rec.error = Some(e.to_string());
        } else {
            rec.ttft_ms = Some(now);
            rec.e2e_ms = Some(now);
            rec.chunk_ms.push(now);
        }
    }

    /// Bytes of a streamed body that arrived at `now` (ms after send). False once the stream is in error.
    fn feed(&mut self, bytes: &[u8], now: f64, rec: &mut RequestRecord) -> bool {
        let StreamState {
            parser,
            decoder,
            done,
            err,
            sglang,
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
                    }
                    // SGLang native also times new tokens without new text (sglang splits that gap too).
                    let native_tokens =
                        *sglang && eff.tokens.is_some_and(|t| t > 0) && !decoder.text.is_empty();
                    if eff.carries_text() || native_tokens {
                        if rec.ttft_ms.is_none() {
                            rec.ttft_ms = Some(now);
                        }
                        rec.chunk_ms.push(now);
                        rec.chunk_text_end
                            .push(decoder.text.len().min(u32::MAX as usize) as u32);
                        if *sglang {
                            rec.chunk_tokens
                                .push(eff.tokens.unwrap_or(1).min(u32::MAX as u64) as u32);
                        }
                    }
                }
                Err(e) => *err = Some(e.to_string()),
            }
        });
        self.err.is_none()
    }

    /// The end of a streamed body at `end` (ms after send): end-of-stream checks; returns the decoder.
    fn end(mut self, end: f64, rec: &mut RequestRecord) -> StreamDecoder {
        if self.err.is_none() {
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
            // An error found before the body (HTTP status, connection) stays.
        } else if let Some(e) = self.err {
            rec.error = Some(e);
        } else if rec.ttft_ms.is_none() {
            rec.error = Some("the stream ended without any generated text".into());
        } else if !self.done && !self.sglang && self.decoder.finish_reason.is_none() {
            rec.error = Some("the stream ended before [DONE] and without a finish_reason".into());
        }
        rec.e2e_ms = Some(end);
        self.decoder
    }
}
