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
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

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
        Ok(Client {
            http,
            http_fresh,
            url,
            config,
        })
    }

    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    pub fn api(&self) -> Api {
        self.config.backend.api
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
        let mut attempt = 0;
        loop {
            let send_instant = Instant::now();
            rec.send_ms = ms(send_instant.duration_since(run_start));
            rec.send_unix_ns = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0);
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
                    return Outcome {
                        record: rec,
                        send_instant,
                    };
                }
            };
            self.read_response(resp, req.stream, send_instant, &mut rec)
                .await;
            return Outcome {
                record: rec,
                send_instant,
            };
        }
    }

    async fn read_response(
        &self,
        resp: reqwest::Response,
        stream: bool,
        send: Instant,
        rec: &mut RequestRecord,
    ) {
        let status = resp.status();
        rec.http_status = Some(status.as_u16());
        if !status.is_success() {
            let text = resp.text().await.unwrap_or_default();
            rec.error = Some(format!("HTTP {}: {}", status.as_u16(), snippet(&text)));
            return;
        }
        let mut decoder = StreamDecoder::new(self.api());
        if let Some(n) = rec.output_len_intended {
            decoder.reserve((n as usize).saturating_mul(6).min(1 << 20));
        }
        if !stream {
            match resp.bytes().await {
                Ok(body) => {
                    let t = ms(send.elapsed());
                    if let Err(e) = decoder.on_full_body(&body) {
                        rec.error = Some(e.to_string());
                    } else {
                        rec.ttft_ms = Some(t);
                        rec.e2e_ms = Some(t);
                        rec.chunk_ms.push(t);
                    }
                }
                Err(e) => rec.error = Some(format!("body read failed: {}", error_chain(&e))),
            }
            self.finish(decoder, rec);
            return;
        }
        let mut parser = SseParser::new();
        let mut body = resp.bytes_stream();
        let mut done = false;
        let mut err: Option<String> = None;
        let sglang = self.api() == Api::SglangGenerate;
        while let Some(item) = body.next().await {
            let now = ms(send.elapsed());
            match item {
                Ok(bytes) => {
                    parser.feed(&bytes, |ev| {
                        if err.is_some() || done {
                            return;
                        }
                        match decoder.on_event(ev) {
                            Ok(eff) => {
                                if eff.done {
                                    done = true;
                                }
                                if eff.carries_text() {
                                    if rec.ttft_ms.is_none() {
                                        rec.ttft_ms = Some(now);
                                    }
                                    rec.chunk_ms.push(now);
                                    if sglang {
                                        rec.chunk_tokens.push(
                                            eff.tokens.unwrap_or(1).min(u32::MAX as u64) as u32,
                                        );
                                    }
                                }
                            }
                            Err(e) => err = Some(e.to_string()),
                        }
                    });
                    if err.is_some() {
                        break;
                    }
                }
                Err(e) if self.timed_out(&e, send) => {
                    err = Some(format!(
                        "timeout: no end of stream after {now:.0} ms (--timeout)"
                    ));
                    break;
                }
                Err(e) => {
                    err = Some(format!(
                        "stream broken after {:.0} ms: {}",
                        now,
                        error_chain(&e)
                    ));
                    break;
                }
            }
        }
        let end = ms(send.elapsed());
        if err.is_none() {
            parser.flush(|ev| {
                if let Ok(eff) = decoder.on_event(ev) {
                    done |= eff.done;
                }
            });
        }
        if let Some(e) = err {
            rec.error = Some(e);
        } else if rec.ttft_ms.is_none() {
            rec.error = Some("the stream ended without any generated text".into());
        } else if !done && !sglang && decoder.finish_reason.is_none() {
            rec.error = Some("the stream ended before [DONE] and without a finish_reason".into());
        }
        rec.e2e_ms = Some(end);
        self.finish(decoder, rec);
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
            rec.e2e_ms = rec.e2e_ms.filter(|_| false);
        }
    }
}
