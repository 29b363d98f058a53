//! HTTP routes and handlers.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Extension, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::json;
use tokio::time::Instant;

use crate::body::{ChunkWriter, FixedClock, Source, SseBody, StreamOptions};
use crate::fault_body;
use crate::faults::{self, Fault, FaultSet, FAULT_HEADER};
use crate::framing::{Api, Framer};
use crate::metrics::FaultKind;
use crate::output::{self, OutputPlan, TextCursor};
use crate::request::{self, BadRequest};
use crate::scheduler::Submit;
use crate::state::{sim_id, RunningGuard, Shared, SimRequestNo, TraceGuard};
use crate::trace::{now_ns, RequestTrace, TraceStatus};

type AppState = Arc<Shared>;

pub(crate) fn router(shared: AppState) -> Router {
    let limit = shared.cfg.max_body_bytes;
    let mut r = Router::new()
        .route("/v1/completions", post(completions))
        .route("/v1/chat/completions", post(chat))
        .route("/v1/models", get(models))
        .route("/health", get(health))
        .route("/health_generate", get(health))
        .route("/version", get(version))
        .route("/get_model_info", get(model_info))
        .route("/get_server_info", get(server_info))
        .route("/server_info", get(server_info))
        .route("/metrics", get(metrics))
        .route("/flush_cache", post(flush).get(flush))
        .route("/reset_prefix_cache", post(flush))
        .route("/sim/trace", get(trace_one))
        .route("/sim/traces", get(trace_all));
    if !shared.cfg.strict_openai {
        r = r.route("/generate", post(generate));
    }
    r.fallback(not_found)
        .layer(DefaultBodyLimit::max(limit))
        .with_state(shared)
}

fn json_response(status: StatusCode, body: serde_json::Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn error_response(status: u16, message: &str) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    if status == 422 {
        // FastAPI's shape, as `transformers serve` answers.
        return json_response(code, json!({ "detail": message }));
    }
    let kind = match status {
        500..=599 => "InternalServerError",
        404 => "NotFoundError",
        _ => "BadRequestError",
    };
    json_response(
        code,
        json!({"object": "error", "message": message, "type": kind, "param": null, "code": status}),
    )
}

async fn not_found() -> Response {
    error_response(404, "no such route on the simulated engine")
}

async fn completions(
    State(s): State<AppState>,
    Extension(no): Extension<SimRequestNo>,
    h: HeaderMap,
    body: Bytes,
) -> Response {
    generation(Api::Completions, s, no, h, body).await
}

async fn chat(
    State(s): State<AppState>,
    Extension(no): Extension<SimRequestNo>,
    h: HeaderMap,
    body: Bytes,
) -> Response {
    generation(Api::Chat, s, no, h, body).await
}

async fn generate(
    State(s): State<AppState>,
    Extension(no): Extension<SimRequestNo>,
    h: HeaderMap,
    body: Bytes,
) -> Response {
    generation(Api::Generate, s, no, h, body).await
}

fn reject(guard: &mut TraceGuard, e: &BadRequest) -> Response {
    guard.publish(TraceStatus::Rejected, now_ns());
    error_response(e.status, &e.message)
}

/// Every generation endpoint: parse, plan, inject faults, then stream or answer at once.
async fn generation(
    api: Api,
    shared: AppState,
    no: SimRequestNo,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let arrival_ns = now_ns();
    let arrival = Instant::now();
    shared
        .metrics
        .received
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let sid = sim_id(no.0);
    let client_id = headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let cfg = &shared.cfg;
    let parsed = request::parse(api, &body, cfg.strict_openai, shared.counter.as_ref());
    let trace_id = match (&client_id, &parsed) {
        (Some(c), _) => c.clone(),
        (None, Ok(r)) => r.rid.clone().unwrap_or_else(|| sid.clone()),
        (None, Err(_)) => sid.clone(),
    };
    let stream = parsed.as_ref().is_ok_and(|r| r.stream);
    let mut guard = TraceGuard::new(
        shared.clone(),
        RequestTrace::new(trace_id, sid.clone(), api.name(), stream, arrival_ns),
    );
    let req = match parsed {
        Ok(r) => r,
        Err(e) => return reject(&mut guard, &e),
    };
    let busy = cfg.load_flip_rate > 0.0 && guard.others_in_flight >= cfg.load_flip_threshold;
    let plan = match output::plan(&req, cfg, shared.key.as_ref(), busy) {
        Ok(p) => p,
        Err(e) => return reject(&mut guard, &e),
    };
    if let Some(t) = guard.get() {
        t.prompt_tokens = req.prompt_tokens;
        t.finish_reason = Some(plan.finish.as_str().to_string());
    }
    let batched = shared.engine.is_some();
    let need = u64::from(req.prompt_tokens) + u64::from(plan.tokens);
    if batched && need > cfg.kv_capacity_tokens {
        let e = BadRequest {
            status: 400,
            message: format!(
                "this request needs {need} KV-cache tokens ({} prompt + {} output) but the simulated KV cache holds {} \
                 (raise --kv-capacity-tokens or lower max_tokens)",
                req.prompt_tokens, plan.tokens, cfg.kv_capacity_tokens
            ),
        };
        return reject(&mut guard, &e);
    }
    let k = cfg.tokens_per_chunk.max(1);
    let chunks = plan.tokens.div_ceil(k);
    let mut fault = faults::decide(&cfg.faults, cfg.seed, no.0, chunks);
    let header = headers.get(FAULT_HEADER).and_then(|v| v.to_str().ok());
    let matrix = match faults::matrix(&cfg.faults, cfg.seed, no.0, header) {
        Ok(m) => m,
        Err(e) => {
            let e = BadRequest {
                status: 400,
                message: format!("{FAULT_HEADER}: {e}"),
            };
            return reject(&mut guard, &e);
        }
    };
    if let Some(r) = matrix_error(&matrix, req.model.as_deref().unwrap_or(&cfg.model)) {
        shared.metrics.fault(FaultKind::Fail);
        guard.publish(TraceStatus::FailInjected, now_ns());
        return r;
    }
    if matrix.has(Fault::ResetMidStream) {
        fault.disconnect_after = Some((chunks / 2).max(1));
    }
    if matrix.has(Fault::MalformedJson) {
        fault.malformed_at = Some(chunks.saturating_sub(1).min(1));
    }
    if fault.fail {
        shared.metrics.fault(FaultKind::Fail);
        guard.publish(TraceStatus::FailInjected, now_ns());
        return error_response(500, "simulated internal server error (--fail-rate)");
    }
    let model = req.model.clone().unwrap_or_else(|| cfg.model.clone());
    let framer_id = match (api, &req.rid) {
        (Api::Generate, Some(rid)) => rid.clone(),
        _ => sid.clone(),
    };
    let created = arrival_ns / 1_000_000_000;
    let framer = Framer::new(
        api,
        &framer_id,
        created,
        &model,
        req.prompt_tokens,
        plan.max_tokens,
    );

    // Hand the request to the engine (or start its fixed-latency clock).
    let src = if let Some(engine) = &shared.engine {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        if engine
            .send(Submit {
                prompt_tokens: req.prompt_tokens,
                output_tokens: plan.tokens,
                tx,
            })
            .is_err()
        {
            return error_response(503, "the simulated engine is shutting down");
        }
        Source::Engine(rx)
    } else {
        let permit = match &shared.permits {
            Some(sem) => match sem.clone().acquire_owned().await {
                Ok(p) => Some(p),
                Err(_) => return error_response(503, "the simulated engine is shutting down"),
            },
            None => None,
        };
        let f = cfg.fixed_latency.unwrap_or(crate::FixedLatency {
            ttft_ms: 0.0,
            itl_ms: 0.0,
        });
        let first = Instant::now() + Duration::from_secs_f64(f.ttft_ms / 1e3);
        let itl = Duration::from_secs_f64(f.itl_ms / 1e3);
        Source::Fixed(FixedClock::new(
            first,
            itl,
            permit,
            RunningGuard::new(shared.clone()),
        ))
    };

    if req.stream && !matrix.has(Fault::WrongContentType) {
        let include_usage = req.include_usage && !cfg.strict_openai;
        let opts = StreamOptions {
            chat_role: api == Api::Chat,
            include_usage,
            tokens_per_chunk: k,
            malformed_at: fault.malformed_at,
            disconnect_after: fault.disconnect_after,
            chunks_per_write: cfg.chunks_per_write as usize,
            arrival,
            text_suffix: (matrix.has(Fault::Utf8Split) || matrix.has(Fault::InvalidUtf8))
                .then_some("é"),
            big_first: matrix.has(Fault::BigEvent),
        };
        let body = SseBody::new(src, ChunkWriter::new(framer, &plan, opts), guard);
        let body = if fault_body::applies(matrix) {
            Body::from_stream(fault_body::wrap(body, matrix))
        } else {
            Body::from_stream(body)
        };
        return Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, "text/event-stream")
            .header(header::CACHE_CONTROL, "no-cache")
            .body(body)
            .unwrap_or_else(|_| error_response(500, "could not build the response"));
    }
    non_streaming(src, framer, &plan, guard, fault, arrival, chunks).await
}

/// The HTTP error a matrix fault answers with, if any.
fn matrix_error(set: &FaultSet, model: &str) -> Option<Response> {
    let with_retry_after = |mut r: Response| {
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        r
    };
    if set.has(Fault::Http500) {
        Some(error_response(
            500,
            "simulated internal server error (fault http_500)",
        ))
    } else if set.has(Fault::Http503) {
        Some(with_retry_after(error_response(
            503,
            "simulated overload: service unavailable (fault http_503)",
        )))
    } else if set.has(Fault::Http429) {
        Some(with_retry_after(json_response(
            StatusCode::TOO_MANY_REQUESTS,
            json!({"object": "error", "message": "simulated rate limit (fault http_429)",
                   "type": "RateLimitError", "param": null, "code": 429}),
        )))
    } else if set.has(Fault::Http404Model) {
        Some(error_response(
            404,
            &format!("The model `{model}` does not exist. (fault http_404_model)"),
        ))
    } else {
        None
    }
}

/// Wait for the whole output, then answer with one JSON body.
async fn non_streaming(
    src: Source,
    framer: Framer,
    plan: &OutputPlan,
    mut guard: TraceGuard,
    fault: faults::FaultPlan,
    arrival: Instant,
    chunks: u32,
) -> Response {
    match src {
        Source::Engine(mut rx) => {
            let mut first = true;
            loop {
                let Some(e) = rx.recv().await else {
                    return error_response(503, "the simulated engine stopped");
                };
                if first {
                    first = false;
                    if let Some(t) = guard.get() {
                        t.prefill_start_ns = Some(e.prefill_start_ns);
                        t.prefill_end_ns = Some(e.step_end_ns);
                    }
                }
                if e.upto >= plan.tokens {
                    break;
                }
            }
        }
        Source::Fixed(clock) => {
            let (first, itl) = clock.schedule();
            tokio::time::sleep_until(first + itl * chunks.saturating_sub(1)).await;
            drop(clock);
        }
    }
    let mut content = String::new();
    let mut reasoning = String::new();
    TextCursor::new(plan).next(plan.tokens, &mut content, &mut reasoning);
    let mut bytes = framer.full_response(
        &content,
        &reasoning,
        plan.tokens,
        plan.finish,
        arrival.elapsed().as_secs_f64(),
    );
    let shared = guard.shared().clone();
    let t = now_ns();
    if let Some(tr) = guard.get() {
        tr.chunk(t, plan.tokens);
    }
    let response = |body: Body| {
        Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, "application/json")
            .body(body)
            .unwrap_or_else(|_| error_response(500, "could not build the response"))
    };
    if fault.disconnect_after.is_some() {
        shared.metrics.fault(FaultKind::Disconnect);
        guard.publish(TraceStatus::DisconnectInjected, t);
        bytes.truncate(bytes.len() / 2);
        let half = Bytes::from(bytes);
        // Send the first half, yield once so that it is flushed, then break the connection.
        let broken = futures_util::stream::unfold(0u8, move |step| {
            let half = half.clone();
            async move {
                match step {
                    0 => Some((Ok(half), 1)),
                    1 => {
                        tokio::task::yield_now().await;
                        Some((
                            Err(std::io::Error::other(
                                "connection dropped by --disconnect-rate",
                            )),
                            2,
                        ))
                    }
                    _ => None,
                }
            }
        });
        return response(Body::from_stream(broken));
    }
    if fault.malformed_at.is_some() {
        shared.metrics.fault(FaultKind::Malformed);
        bytes.truncate(bytes.len() / 2);
        guard.publish(TraceStatus::MalformedInjected, t);
    } else {
        guard.publish(TraceStatus::Ok, t);
    }
    response(Body::from(bytes))
}

async fn health() -> StatusCode {
    StatusCode::OK
}

async fn flush() -> Response {
    json_response(
        StatusCode::OK,
        json!({"success": true, "message": "simulated engine: nothing cached"}),
    )
}

async fn version() -> Response {
    json_response(
        StatusCode::OK,
        json!({"version": format!("servebench-sim {}", env!("CARGO_PKG_VERSION"))}),
    )
}

async fn models(State(s): State<AppState>) -> Response {
    let c = &s.cfg;
    json_response(
        StatusCode::OK,
        json!({"object": "list", "data": [{
            "id": c.model, "object": "model", "created": s.started_unix, "owned_by": "servebench-sim",
            "root": c.model, "parent": null, "max_model_len": c.max_model_len, "simulated": true
        }]}),
    )
}

async fn model_info(State(s): State<AppState>) -> Response {
    json_response(
        StatusCode::OK,
        json!({"model_path": s.cfg.model, "tokenizer_path": null, "is_generation": true, "simulated": true}),
    )
}

async fn server_info(State(s): State<AppState>) -> Response {
    let c = &s.cfg;
    let fixed = c
        .fixed_latency
        .map(|f| json!({"ttft_ms": f.ttft_ms, "itl_ms": f.itl_ms}));
    json_response(
        StatusCode::OK,
        json!({
            "simulated": true,
            "engine": "servebench-sim",
            "version": env!("CARGO_PKG_VERSION"),
            "preset": c.preset,
            "model_path": c.model,
            "served_model_name": c.model,
            "seed": c.seed,
            "context_length": c.max_model_len,
            "max_running_requests": if c.max_running == usize::MAX { None } else { Some(c.max_running) },
            "max_total_num_tokens": if c.kv_capacity_tokens == u64::MAX { None } else { Some(c.kv_capacity_tokens) },
            "chunked_prefill_size": c.chunked_prefill_size,
            "prefill_us_per_token": c.prefill_us_per_token,
            "decode_base_ms": c.decode_base_ms,
            "decode_per_seq_us": c.decode_per_seq_us,
            "decode_per_ctx_token_ns": c.decode_per_ctx_token_ns,
            "tokens_per_chunk": c.tokens_per_chunk,
            "fixed_latency": fixed,
            "chunks_per_write": c.chunks_per_write,
            "eos_prob": c.eos_prob,
            "strict_openai": c.strict_openai,
            "answer_key_questions": s.key.as_ref().map_or(0, |k| k.len()),
            "accuracy": c.accuracy,
            "wrong_share": c.wrong_share,
            "reasoning": c.reasoning.as_str(),
            "faults": {
                "fail_rate": c.faults.fail_rate,
                "disconnect_rate": c.faults.disconnect_rate,
                "malformed_rate": c.faults.malformed_rate,
                "close_keepalive": c.faults.close_keepalive,
                "close_idle_after_ms": c.faults.close_idle_after_ms,
            },
        }),
    )
}

async fn metrics(State(s): State<AppState>) -> Response {
    let text = s
        .metrics
        .render(&s.cfg.model, &s.cfg.preset, s.cfg.kv_capacity_tokens);
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4"),
        )],
        text,
    )
        .into_response()
}

#[derive(Debug, Deserialize)]
struct TraceQuery {
    id: Option<String>,
}

async fn trace_one(State(s): State<AppState>, Query(q): Query<TraceQuery>) -> Response {
    let Some(id) = q.id else {
        return error_response(400, "give the request id: /sim/trace?id=ID");
    };
    match s.traces.get(&id) {
        Some(t) => json_response(StatusCode::OK, serde_json::to_value(&t).unwrap_or_default()),
        None => error_response(
            404,
            &format!("no trace for request id {id:?} (not finished yet, or evicted)"),
        ),
    }
}

async fn trace_all(State(s): State<AppState>) -> Response {
    let mut out = String::new();
    for t in s.traces.all() {
        if let Ok(line) = serde_json::to_string(&t) {
            out.push_str(&line);
            out.push('\n');
        }
    }
    ([(header::CONTENT_TYPE, "application/x-ndjson")], out).into_response()
}
