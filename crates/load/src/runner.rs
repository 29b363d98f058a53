//! One timed run: pool warm-up, warm-up requests, then the requests on their schedule under the concurrency
//! limit; each finished request's record goes to a [`RecordSink`] on its own thread (token counting and file
//! writes stay off the async workers). Ctrl-C (the `stop` channel) stops sending, waits `grace` for requests in
//! flight, and returns what finished. `max_duration` stops sending the same way: requests in flight get `grace`,
//! then they are ended (counted in `ended_in_flight` and `not_finished`).

use crate::arrival;
use crate::client::{Client, PreparedRequest};
use crate::dispatch::{Dispatch, Dispatcher};
use crate::monitor::{LagMonitor, LagSource, SATURATED_P99_MS};
use crate::record_queue::{CloseOnDrop, RecordQueue};
use crate::LoadError;
use servebench_core::pyrandom::NumpyLegacy;
use servebench_core::record::RequestRecord;
use servebench_core::stats::Summary;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

/// How long a finished request's record may wait for the sink's thread (see [`crate::record_queue`]). Each
/// flush wakes that thread on the client's core: at 50 ms, 500 wake-ups and context switches in a 25 s paced
/// run, for records a quarter second sooner.
const RECORD_FLUSH_EVERY: Duration = Duration::from_millis(250);

/// Receives every finished record (on a dedicated thread), in completion order.
pub trait RecordSink: Send + 'static {
    /// May complete the record (e.g. token counts) before it is kept.
    fn record(&mut self, rec: &mut RequestRecord);
    /// Called once when the run is over.
    fn finish(&mut self) {}
}

/// A sink that does nothing.
pub struct NullSink;
impl RecordSink for NullSink {
    fn record(&mut self, _rec: &mut RequestRecord) {}
}

#[derive(Debug, Clone)]
pub struct RunConfig {
    pub max_concurrency: Option<usize>,
    /// Requests per second; infinity = all due at once.
    pub request_rate: f64,
    pub burstiness: f64,
    pub seed: u64,
    /// NumPy's legacy generator as the workload left it: arrival gaps continue its stream, as sglang's do
    /// (see [`arrival`]). `None`: seeded fresh with `seed` (a workload that drew nothing from NumPy).
    pub arrival_draws: Option<NumpyLegacy>,
    /// Open this many connections before the timed part (closed loop only; 0 = off).
    pub warm_connections: usize,
    /// How long to wait for requests in flight after a stop or the end of `max_duration`.
    pub grace: Duration,
    /// Stop sending after this long; requests in flight get `grace`, then are ended (not an interruption).
    pub max_duration: Option<Duration>,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            max_concurrency: None,
            request_rate: f64::INFINITY,
            burstiness: 1.0,
            seed: 1,
            arrival_draws: None,
            warm_connections: 0,
            grace: Duration::from_secs(5),
            max_duration: None,
        }
    }
}

/// What a run produced.
#[derive(Debug, Clone, Default)]
pub struct RunOutput {
    /// Finished requests, by index.
    pub records: Vec<RequestRecord>,
    /// First send → last completion, seconds.
    pub duration_s: f64,
    pub interrupted: bool,
    /// Sending stopped at `max_duration`.
    pub duration_limited: bool,
    /// Requests never sent or cut off by a stop.
    pub not_finished: u64,
    /// Requests in flight that were ended after the grace period (Ctrl-C or `max_duration`).
    pub ended_in_flight: u64,
    pub warmup_connections: u64,
    pub connect: Summary,
    pub client_lag: Summary,
    /// Where `client_lag`'s samples came from.
    pub client_lag_source: LagSource,
    pub client_saturated: bool,
    pub client_cpu_s: Option<f64>,
}

/// Opens `n` connections at once with cheap GETs; returns their times (ms).
pub async fn warm_pool(client: &Client, n: usize) -> Vec<f64> {
    let mut set = JoinSet::new();
    for _ in 0..n {
        let c = client.clone();
        set.spawn(async move { c.warm_connection().await });
    }
    let mut times = Vec::new();
    while let Some(r) = set.join_next().await {
        if let Ok(Ok(d)) = r {
            times.push(d.as_secs_f64() * 1000.0);
        }
    }
    times
}

/// Sends the warm-up requests (all at once) and fails when none succeeds.
pub async fn warmup(client: &Client, reqs: &[PreparedRequest]) -> Result<(), LoadError> {
    if reqs.is_empty() {
        return Ok(());
    }
    let mut set = JoinSet::new();
    for r in reqs {
        let r = r.clone();
        let c = client.clone();
        set.spawn(async move { c.execute(&r, Instant::now()).await.record });
    }
    let mut first_err = None;
    let mut ok = false;
    while let Some(r) = set.join_next().await {
        match r {
            Ok(rec) if rec.ok() => ok = true,
            Ok(rec) => first_err = first_err.or(rec.error),
            Err(e) => first_err = first_err.or(Some(e.to_string())),
        }
    }
    if ok {
        Ok(())
    } else {
        Err(LoadError::Warmup(first_err.unwrap_or_default()))
    }
}

/// Runs the timed part against one endpoint.
pub async fn run(
    client: &Client,
    requests: Vec<PreparedRequest>,
    cfg: &RunConfig,
    sink: Box<dyn RecordSink>,
    stop: watch::Receiver<bool>,
) -> Result<RunOutput, LoadError> {
    run_on(
        std::slice::from_ref(client),
        Dispatch::default(),
        requests,
        cfg,
        sink,
        stop,
    )
    .await
}

/// Runs the timed part against several endpoints (one [`Client`] each): each request goes to the endpoint
/// `dispatch` picks when it is sent (after its concurrency permit). With more than one endpoint every record
/// carries its endpoint's index; `cfg.warm_connections` are spread over the endpoints.
pub async fn run_on(
    clients: &[Client],
    dispatch: Dispatch,
    requests: Vec<PreparedRequest>,
    cfg: &RunConfig,
    sink: Box<dyn RecordSink>,
    mut stop: watch::Receiver<bool>,
) -> Result<RunOutput, LoadError> {
    if clients.is_empty() {
        return Err(LoadError::Config("no endpoint to send requests to".into()));
    }
    let n = requests.len();
    let mut np = match &cfg.arrival_draws {
        Some(np) => np.clone(),
        // An infinite rate draws nothing: any seed will do.
        None if cfg.request_rate.is_infinite() => NumpyLegacy::seed(0),
        None => NumpyLegacy::seed(u32::try_from(cfg.seed).map_err(|_| {
            LoadError::Config(format!(
                "--seed {} is too large: arrival times are drawn as sglang draws them, with NumPy, which takes 0 to 4294967295",
                cfg.seed
            ))
        })?),
    };
    let schedule = arrival::schedule(n, cfg.request_rate, cfg.burstiness, &mut np)?;
    let mut out = RunOutput::default();
    if cfg.request_rate.is_infinite() && cfg.warm_connections > 0 {
        let each = cfg.warm_connections.div_ceil(clients.len());
        let mut times = Vec::new();
        for client in clients {
            times.extend(warm_pool(client, each).await);
        }
        out.warmup_connections = times.len() as u64;
        out.connect = Summary::of(&mut times.clone());
    }
    let dispatcher = Dispatcher::new(dispatch, clients.len());
    let several = clients.len() > 1;

    // Records go to the sink's thread, in batches (`record_queue`).
    let queue = Arc::new(RecordQueue::<RequestRecord>::new(RECORD_FLUSH_EVERY));
    let close_queue = CloseOnDrop(queue.clone());
    let taken = queue.clone();
    let sink_thread = std::thread::spawn(move || {
        let mut sink = sink;
        let mut kept = Vec::new();
        while let Some(batch) = taken.take() {
            for mut rec in batch {
                sink.record(&mut rec);
                kept.push(rec);
            }
        }
        sink.finish();
        kept
    });

    let sem = cfg
        .max_concurrency
        .map(|c| Arc::new(Semaphore::new(c.clamp(1, Semaphore::MAX_PERMITS))));
    let lag = LagMonitor::start(clients.iter().filter_map(Client::read_lag).collect());
    let cpu0 = crate::monitor::process_cpu_seconds();
    let t0 = Instant::now();
    let last_end_us = Arc::new(AtomicU64::new(0));
    let first_send_us = Arc::new(AtomicU64::new(u64::MAX));
    let mut set = JoinSet::new();
    let mut stopped = *stop.borrow();
    let mut sent = 0usize;
    // `max_duration` ends sending even while waiting for a due time or a permit.
    let end_at = cfg
        .max_duration
        .and_then(|d| t0.checked_add(d))
        .map(tokio::time::Instant::from_std);
    let duration_over = async {
        match end_at {
            Some(t) => tokio::time::sleep_until(t).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(duration_over);
    for (req, due_s) in requests.into_iter().zip(schedule) {
        if stopped {
            break;
        }
        if end_at.is_some_and(|t| tokio::time::Instant::now() >= t) {
            out.duration_limited = true;
            break;
        }
        // The schedule comes from a validated rate, but a far-off due time must never panic: it saturates.
        let due = Duration::try_from_secs_f64(due_s)
            .ok()
            .and_then(|d| t0.checked_add(d))
            .unwrap_or_else(|| t0 + Duration::from_secs(1_000_000_000));
        if due > Instant::now() {
            tokio::select! {
                _ = tokio::time::sleep_until(due.into()) => {}
                _ = stop.changed() => { stopped = true; break; }
                _ = &mut duration_over => { out.duration_limited = true; break; }
            }
        }
        let permit = match &sem {
            Some(s) => {
                tokio::select! {
                    p = s.clone().acquire_owned() => match p {
                        Ok(p) => Some(p),
                        Err(_) => break,
                    },
                    _ = stop.changed() => { stopped = true; break; }
                    _ = &mut duration_over => { out.duration_limited = true; break; }
                }
            }
            None => None,
        };
        if end_at.is_some_and(|t| tokio::time::Instant::now() >= t) {
            out.duration_limited = true;
            break;
        }
        let queue_ms = due.elapsed().as_secs_f64() * 1000.0;
        let ticket = dispatcher.pick();
        let c = clients[ticket.index()].clone();
        let queue = queue.clone();
        let last_end = last_end_us.clone();
        let first_send = first_send_us.clone();
        set.spawn(async move {
            let outcome = c.execute(&req, t0).await;
            let end_us = t0.elapsed().as_micros() as u64;
            last_end.fetch_max(end_us, Ordering::Relaxed);
            let mut rec = outcome.record;
            if several {
                rec.endpoint = u32::try_from(ticket.index()).ok();
            }
            drop(ticket);
            first_send.fetch_min((rec.send_ms * 1000.0) as u64, Ordering::Relaxed);
            rec.scheduled_ms = due_s * 1000.0;
            rec.queue_ms = queue_ms;
            drop(permit);
            queue.push(rec);
        });
        sent += 1;
        // Reap finished tasks so the set does not grow with the whole run.
        while let Some(r) = set.try_join_next() {
            let _ = r;
        }
    }
    if stopped || out.duration_limited {
        out.interrupted = stopped;
        let deadline = tokio::time::sleep(cfg.grace);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                r = set.join_next() => if r.is_none() { break },
                _ = &mut deadline => { break; }
            }
        }
        out.ended_in_flight = set.len() as u64;
        if out.ended_in_flight > 0 {
            tracing::warn!(
                "{} requests still in flight after the {:.1}s grace period were ended",
                out.ended_in_flight,
                cfg.grace.as_secs_f64()
            );
        }
        set.abort_all();
    }
    while set.join_next().await.is_some() {}
    drop(close_queue);
    let (lags, lag_source) = lag.stop();
    let cpu1 = crate::monitor::process_cpu_seconds();
    let mut records = sink_thread
        .join()
        .map_err(|_| LoadError::Config("the record writer thread panicked".into()))?;
    records.sort_by_key(|r| r.index);
    let first = first_send_us.load(Ordering::Relaxed);
    let last = last_end_us.load(Ordering::Relaxed);
    out.duration_s = if first == u64::MAX || last < first {
        0.0
    } else {
        (last - first) as f64 / 1e6
    };
    out.not_finished = (n - records.len().min(n)) as u64;
    let _ = sent;
    out.records = records;
    out.client_lag = Summary::of(&mut lags.clone());
    out.client_lag_source = lag_source;
    out.client_saturated = out.client_lag.p99.is_some_and(|p| p > SATURATED_P99_MS);
    out.client_cpu_s = match (cpu0, cpu1) {
        (Some(a), Some(b)) => Some(b - a),
        _ => None,
    };
    Ok(out)
}
