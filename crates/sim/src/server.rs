//! The listener: accepts TCP connections (TCP_NODELAY on each), serves HTTP/1.1 with hyper, and applies the
//! connection-level faults (`close_keepalive`, `close_idle_after_ms`).

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, Request, Response};
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

use crate::answer_key::AnswerKey;
use crate::config::SimConfig;
use crate::metrics::{FaultKind, Metrics};
use crate::prompt::HeuristicCounter;
use crate::state::{sim_id, Shared, SimRequestNo};
use crate::trace::{now_ns, RequestTrace, TraceStatus, TraceStore};
use crate::{handlers, scheduler, RequestTrace as PubTrace, SimError};

/// Fixed-latency presets with `max_running` at or above this run without a concurrency limit.
const UNLIMITED_RUNNING: usize = 1 << 28;

/// A running simulator. Dropping it stops it too (abruptly); [`SimServer::shutdown`] lets responses finish for up to
/// a second.
pub struct SimServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: watch::Sender<bool>,
    accept: Option<JoinHandle<()>>,
    engine: Option<JoinHandle<()>>,
}

impl SimServer {
    /// Validate `config`, load the answer keys, bind `addr` (port 0 picks a free port), start serving and return.
    pub async fn start(config: SimConfig, addr: SocketAddr) -> Result<SimServer, SimError> {
        config.validate()?;
        let key = if config.answer_key_files.is_empty() {
            None
        } else {
            let mut k = AnswerKey::new();
            for path in &config.answer_key_files {
                let n = k.load_file(path)?;
                tracing::info!("answer key {}: {n} questions", path.display());
            }
            Some(k)
        };
        let listener = TcpListener::bind(addr).await.map_err(|e| SimError::Bind {
            addr: addr.to_string(),
            message: e.to_string(),
        })?;
        let local = listener.local_addr().map_err(|e| SimError::Bind {
            addr: addr.to_string(),
            message: e.to_string(),
        })?;
        let metrics = Arc::new(Metrics::default());
        let (engine_tx, engine) = if config.fixed_latency.is_none() {
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
            let spin = Duration::from_micros(config.timer_spin_us);
            let handle = tokio::spawn(scheduler::run(
                config.engine_params(),
                spin,
                rx,
                metrics.clone(),
            ));
            (Some(tx), Some(handle))
        } else {
            (None, None)
        };
        let permits = (config.fixed_latency.is_some() && config.max_running < UNLIMITED_RUNNING)
            .then(|| Arc::new(tokio::sync::Semaphore::new(config.max_running)));
        let counter = config
            .prompt_counter
            .clone()
            .unwrap_or_else(|| Arc::new(HeuristicCounter));
        let shared = Arc::new(Shared {
            traces: TraceStore::new(config.trace_capacity, config.trace_chunk_budget),
            cfg: config,
            metrics,
            key,
            engine: engine_tx,
            permits,
            counter,
            next_id: AtomicU64::new(1),
            started_unix: now_ns() / 1_000_000_000,
        });
        let router = handlers::router(shared.clone());
        let (shutdown, shutdown_rx) = watch::channel(false);
        let accept = tokio::spawn(accept_loop(listener, router, shared.clone(), shutdown_rx));
        Ok(SimServer {
            addr: local,
            shared,
            shutdown,
            accept: Some(accept),
            engine,
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://HOST:PORT` to reach the server (loopback when bound to an unspecified address).
    pub fn base_url(&self) -> String {
        let ip = self.addr.ip();
        let host = if ip.is_unspecified() {
            if ip.is_ipv4() {
                "127.0.0.1".to_string()
            } else {
                "[::1]".to_string()
            }
        } else if ip.is_ipv6() {
            format!("[{ip}]")
        } else {
            ip.to_string()
        };
        format!("http://{host}:{}", self.addr.port())
    }

    /// The configuration being served.
    pub fn config(&self) -> &SimConfig {
        &self.shared.cfg
    }

    /// Ground truth of finished requests, oldest first (the data of `GET /sim/traces`).
    pub fn traces(&self) -> Vec<PubTrace> {
        self.shared.traces.all()
    }

    /// The trace of one request by its `x-request-id` (or sim id), if finished and still kept.
    pub fn trace(&self, id: &str) -> Option<PubTrace> {
        self.shared.traces.get(id)
    }

    /// Stop accepting, let in-flight responses finish for up to a second, then stop everything.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        if let Some(accept) = self.accept.take() {
            let _ = accept.await;
        }
        if let Some(engine) = self.engine.take() {
            engine.abort();
        }
    }
}

impl Drop for SimServer {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        if let Some(a) = self.accept.take() {
            a.abort();
        }
        if let Some(e) = self.engine.take() {
            e.abort();
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    router: Router,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            r = listener.accept() => match r {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    conns.spawn(serve_connection(stream, router.clone(), shared.clone(), shutdown.clone()));
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off briefly instead of spinning.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
            _ = shutdown.changed() => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    drop(listener);
    let drain = async { while conns.join_next().await.is_some() {} };
    let _ = tokio::time::timeout(Duration::from_secs(1), drain).await;
    conns.abort_all();
}

/// Per-connection bookkeeping for the connection-level faults.
struct ConnState {
    requests: AtomicU32,
    in_flight: AtomicU32,
    /// Milliseconds since `base` of the last request start or response end.
    last_activity_ms: AtomicU64,
    base: Instant,
}

impl ConnState {
    fn touch(&self) {
        self.last_activity_ms
            .store(self.base.elapsed().as_millis() as u64, Relaxed);
    }
}

async fn serve_connection(
    stream: TcpStream,
    router: Router,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    let conn_state = Arc::new(ConnState {
        requests: AtomicU32::new(0),
        in_flight: AtomicU32::new(0),
        last_activity_ms: AtomicU64::new(0),
        base: Instant::now(),
    });
    let faults = shared.cfg.faults;
    let closer = IdleCloser {
        idle_limit: faults.close_idle_after_ms.map(Duration::from_millis),
        keepalive_grace: faults.close_keepalive.then_some(KEEPALIVE_GRACE),
    };
    let track = closer.active();
    let st = conn_state.clone();
    let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
        handle(req, router.clone(), shared.clone(), st.clone(), track)
    });
    let conn =
        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc);
    let mut conn = std::pin::pin!(conn);
    let mut closing = false;
    loop {
        tokio::select! {
            _ = conn.as_mut() => break,
            _ = shutdown.changed(), if !closing => {
                closing = true;
                conn.as_mut().graceful_shutdown();
            }
            _ = closer.expired(&conn_state), if track && !closing => {
                closing = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

/// With `close_keepalive`, a connection that served a response is closed once idle for this long; a request that
/// arrives on it before then is dropped unanswered. Stale connections thus do not pile up in a client's pool (it
/// sees them closed), while a client that reuses a connection right away meets the failure it must retry.
pub(crate) const KEEPALIVE_GRACE: Duration = Duration::from_millis(25);

/// When the connection-level faults close a keep-alive connection (silently: no `Connection: close`).
#[derive(Debug, Clone, Copy)]
struct IdleCloser {
    /// `close_idle_after_ms`: idle this long (before or after any request).
    idle_limit: Option<Duration>,
    /// `close_keepalive`: idle this long after at least one request.
    keepalive_grace: Option<Duration>,
}

impl IdleCloser {
    fn active(&self) -> bool {
        self.idle_limit.is_some() || self.keepalive_grace.is_some()
    }

    /// Resolves when a rule says the connection should close.
    async fn expired(&self, st: &ConnState) {
        let shortest = match (self.idle_limit, self.keepalive_grace) {
            (Some(a), Some(b)) => a.min(b),
            (Some(a), None) | (None, Some(a)) => a,
            (None, None) => return std::future::pending().await,
        };
        let tick = (shortest / 4).clamp(Duration::from_millis(1), Duration::from_millis(50));
        loop {
            tokio::time::sleep(tick).await;
            if st.in_flight.load(Relaxed) > 0 {
                continue;
            }
            let idle = Duration::from_millis(
                (st.base.elapsed().as_millis() as u64)
                    .saturating_sub(st.last_activity_ms.load(Relaxed)),
            );
            if self.idle_limit.is_some_and(|l| idle >= l) {
                return;
            }
            if self.keepalive_grace.is_some_and(|g| idle >= g) && st.requests.load(Relaxed) >= 1 {
                return;
            }
        }
    }
}

async fn handle(
    req: Request<Incoming>,
    mut router: Router,
    shared: Arc<Shared>,
    conn: Arc<ConnState>,
    track: bool,
) -> Result<Response<Body>, std::io::Error> {
    let nth = conn.requests.fetch_add(1, Relaxed);
    let client_id = req.headers().get("x-request-id").cloned();
    if shared.cfg.faults.close_keepalive && nth >= 1 {
        // Drop the request unanswered: hyper closes the connection when the service fails.
        shared.metrics.fault(FaultKind::KeepaliveDrop);
        let no = shared.next_request_no();
        let sid = sim_id(no);
        let id = client_id
            .as_ref()
            .and_then(|v| v.to_str().ok())
            .map_or_else(|| sid.clone(), str::to_string);
        let now = now_ns();
        let mut t = RequestTrace::new(
            id,
            sid,
            req.uri().path().trim_start_matches('/'),
            false,
            now,
        );
        t.status = TraceStatus::KeepaliveDropped;
        t.end_ns = Some(now);
        shared.traces.push(t);
        return Err(std::io::Error::other(
            "request dropped by --close-keepalive",
        ));
    }
    if track {
        conn.in_flight.fetch_add(1, Relaxed);
        conn.touch();
    }
    let no = shared.next_request_no();
    if req.method() == axum::http::Method::POST && resets_before_headers(&req, &shared, no) {
        // Closed unanswered after the request was read: hyper closes the connection when the service fails.
        shared.metrics.fault(FaultKind::KeepaliveDrop);
        if track {
            conn.touch();
            conn.in_flight.fetch_sub(1, Relaxed);
        }
        return Err(std::io::Error::other(
            "request dropped by fault reset_before_headers",
        ));
    }
    let mut req = req.map(Body::new);
    req.extensions_mut().insert(SimRequestNo(no));
    let mut resp = match tower_service::Service::call(&mut router, req).await {
        Ok(r) => r,
        Err(e) => match e {},
    };
    if let Ok(v) = HeaderValue::from_str(&sim_id(no)) {
        resp.headers_mut().insert("x-sim-request-id", v);
    }
    if let Some(v) = client_id {
        resp.headers_mut().insert("x-request-id", v);
    }
    if track {
        let (parts, body) = resp.into_parts();
        let tracked = TrackedBody {
            inner: body,
            _guard: InFlight(conn),
        };
        resp = Response::from_parts(parts, Body::new(tracked));
    }
    Ok(resp)
}

/// Whether request `no` gets the `reset_before_headers` fault (header or drawn rate).
fn resets_before_headers(req: &Request<Incoming>, shared: &Shared, no: u64) -> bool {
    let header = req
        .headers()
        .get(crate::faults::FAULT_HEADER)
        .and_then(|v| v.to_str().ok());
    crate::faults::matrix(&shared.cfg.faults, shared.cfg.seed, no, header)
        .is_ok_and(|m| m.has(crate::Fault::ResetBeforeHeaders))
}

/// Marks the end of a response on its connection when dropped.
struct InFlight(Arc<ConnState>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.touch();
        self.0.in_flight.fetch_sub(1, Relaxed);
    }
}

/// A response body that reports its end to the connection (for `close_idle_after_ms`).
struct TrackedBody {
    inner: Body,
    _guard: InFlight,
}

impl http_body::Body for TrackedBody {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
