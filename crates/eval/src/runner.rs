//! Sends an eval's requests through the bench client (same HTTP/SSE layer) under a concurrency limit, retries
//! failed requests with exponential backoff, grades each response under its dataset's protocol and appends it to
//! the predictions log at once.
//!
//! Retried: connection failures, timeouts, broken streams, streams that ended without any text (an empty
//! completion), HTTP 408/429/5xx. Not retried (recorded as an error row straight away): other 4xx. Fatal (the run
//! stops with an error, nothing is recorded): HTTP 401, 403, 404 — a wrong key, model or URL would fail every
//! request the same way. Every row records how many requests it took (`attempts`) and is scored from what the
//! last one returned: a failure or an empty completion that outlasts the retries is an errored row, wrong in the
//! score by default (see `report`).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use servebench_core::api::{request_body, Api, GenParams, Message, Prompt};
use servebench_core::record::RequestRecord;
use servebench_load::client::{Client, PreparedRequest};
use servebench_load::dispatch::{Dispatch, Dispatcher};

use crate::dataset::Dataset;
use crate::error::EvalError;
use crate::grade::GradeOptions;
use crate::judge::judge_protocol;
use crate::predictions::{Prediction, PredictionWriter};
use crate::prompt::{self, PromptTemplate};

/// Settings of the requests and of their grading.
#[derive(Debug, Clone)]
pub struct RunConfig {
    pub model: String,
    /// Chat (the prompt is the one user message) or completions (the prompt is sent as raw text).
    pub api: Api,
    pub template: PromptTemplate,
    pub max_tokens: Option<u32>,
    pub temperature: f64,
    pub top_p: Option<f64>,
    /// Sent as `seed`; sample s of an item gets `seed + s` when temperature > 0.
    pub seed: Option<u64>,
    /// Samples per item.
    pub n: u32,
    pub concurrency: usize,
    /// Re-sends after a retryable failure.
    pub retries: u32,
    /// Delay before the first re-send; doubled each time, at most 60 s.
    pub backoff: Duration,
    pub stream: bool,
    pub grade: GradeOptions,
    /// Only the first `limit` items.
    pub limit: Option<usize>,
}

impl RunConfig {
    /// The seed sent with sample `s`.
    pub fn seed_for(&self, sample: u32) -> Option<u64> {
        self.seed.map(|s| {
            if self.temperature > 0.0 {
                s.wrapping_add(u64::from(sample))
            } else {
                s
            }
        })
    }

    /// The items a run covers.
    pub fn item_count(&self, ds: &Dataset) -> usize {
        self.limit.map_or(ds.items.len(), |l| l.min(ds.items.len()))
    }
}

/// One request to make: item index and sample number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Job {
    pub item: usize,
    pub sample: u32,
}

/// The jobs still to do, sample-major (every item's sample 0 first, so a partial run covers all items).
pub fn plan(ds: &Dataset, cfg: &RunConfig, finished: &HashSet<(String, u32)>) -> Vec<Job> {
    let items = cfg.item_count(ds);
    let mut jobs = Vec::new();
    for sample in 0..cfg.n {
        for (i, item) in ds.items[..items].iter().enumerate() {
            if !finished.contains(&(item.id.clone(), sample)) {
                jobs.push(Job { item: i, sample });
            }
        }
    }
    jobs
}

/// Receives progress; implementations must be cheap (called on the run's task).
pub trait Progress: Send + Sync {
    /// `total` samples in the run, `done` of them already finished (`correct` of those), before any request.
    fn begin(&self, dataset: &str, total: u64, done: u64, correct: u64);
    fn sample(&self, p: &Prediction);
    fn end(&self);
    /// A request failed and is sent again after `n.delay` (announce it: a run against a failing server must
    /// not look idle). Default: nothing.
    fn retry(&self, _n: &RetryNotice) {}
}

/// A failed request about to be re-sent.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryNotice {
    pub request_id: String,
    /// Why the last attempt failed.
    pub error: String,
    /// The attempt about to be made (2 for the first re-send) of `attempts` in all (`retries` + 1).
    pub next_attempt: u32,
    pub attempts: u32,
    pub delay: Duration,
}

impl std::fmt::Display for RetryNotice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "request {} failed ({}); attempt {} of {} in {} s",
            self.request_id,
            self.error,
            self.next_attempt,
            self.attempts,
            servebench_core::duration::show(self.delay.as_secs_f64())
        )
    }
}

/// Progress that shows nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn begin(&self, _: &str, _: u64, _: u64, _: u64) {}
    fn sample(&self, _: &Prediction) {}
    fn end(&self) {}
}

/// Counts of one run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunCounts {
    /// Samples written (with or without error).
    pub written: u64,
    pub errors: u64,
    /// Re-sends after retryable failures.
    pub retries: u64,
}

/// Builds the body of one request.
pub fn build_request(
    cfg: &RunConfig,
    index: u64,
    request_id: String,
    prompt_text: &str,
    sample: u32,
) -> PreparedRequest {
    let prompt = match cfg.api {
        Api::Chat => Prompt::Messages(vec![Message {
            role: "user".into(),
            content: prompt_text.to_string(),
        }]),
        _ => Prompt::Text(prompt_text.to_string()),
    };
    let params = GenParams {
        max_tokens: cfg.max_tokens,
        max_completion_tokens: false,
        temperature: Some(cfg.temperature),
        top_p: cfg.top_p,
        ignore_eos: false,
        min_tokens: None,
        stream: cfg.stream,
        include_usage: true,
        seed: cfg.seed_for(sample),
        extra: Default::default(),
    };
    let body = request_body(cfg.api, &cfg.model, &prompt, &params);
    PreparedRequest {
        index,
        request_id,
        body: bytes::Bytes::from(serde_json::to_vec(&body).unwrap_or_default()),
        stream: cfg.stream,
        prompt_text: prompt_text.to_string(),
        prompt_len_intended: None,
        prompt_tokens: None,
        output_len_intended: None,
    }
}

enum Failure {
    Retry,
    Record,
    Fatal,
}

fn classify(rec: &RequestRecord) -> Failure {
    match rec.http_status {
        Some(401 | 403 | 404) => Failure::Fatal,
        Some(408 | 429) => Failure::Retry,
        Some(s) if s >= 500 => Failure::Retry,
        Some(s) if (400..500).contains(&s) => Failure::Record,
        _ => Failure::Retry,
    }
}

/// Sends one request, re-sending retryable failures; returns the last record and the number of re-sends.
async fn send_with_retries(
    client: &Client,
    req: &PreparedRequest,
    cfg: &RunConfig,
    run_start: Instant,
    progress: &dyn Progress,
) -> Result<(RequestRecord, u32), EvalError> {
    let mut attempt = 0u32;
    loop {
        let rec = client.execute(req, run_start).await.record;
        let Some(err) = rec.error.clone() else {
            return Ok((rec, attempt));
        };
        match classify(&rec) {
            Failure::Fatal => {
                return Err(EvalError::Fatal(format!(
                    "{err}. Check --base-url, --model and --api-key (or OPENAI_API_KEY)"
                )))
            }
            Failure::Record => return Ok((rec, attempt)),
            Failure::Retry if attempt >= cfg.retries => return Ok((rec, attempt)),
            Failure::Retry => {
                let delay = cfg
                    .backoff
                    .saturating_mul(1u32 << attempt.min(16))
                    .min(Duration::from_secs(60));
                progress.retry(&RetryNotice {
                    request_id: req.request_id.clone(),
                    error: err,
                    next_attempt: attempt + 2,
                    attempts: cfg.retries + 1,
                    delay,
                });
                tokio::time::sleep(delay).await;
                attempt += 1;
            }
        }
    }
}

/// The row for a finished request (`attempts`: requests sent for it, re-sends included).
pub fn prediction_of(
    ds: &Dataset,
    job: Job,
    prompt_text: &str,
    rec: &RequestRecord,
    opts: &GradeOptions,
    attempts: u32,
) -> Prediction {
    let item = &ds.items[job.item];
    let base = Prediction {
        dataset: ds.name.clone(),
        id: item.id.clone(),
        sample: job.sample,
        prompt: prompt_text.to_string(),
        response: rec.generated_text.clone(),
        reasoning: (!rec.reasoning_text.is_empty()).then(|| rec.reasoning_text.clone()),
        extracted: None,
        gold: item.gold.clone(),
        correct: false,
        rule: "error".into(),
        finish_reason: rec.finish_reason.clone(),
        prompt_tokens: rec.prompt_tokens_server,
        completion_tokens: rec.output_tokens,
        latency_ms: rec.e2e_ms,
        error: rec.error.clone(),
        protocol: ds.protocol.as_str().to_string(),
        attempts,
        endpoint: rec.endpoint,
    };
    if rec.error.is_some() {
        return base;
    }
    let j = judge_protocol(
        ds.protocol,
        ds.grader,
        &rec.generated_text,
        &rec.reasoning_text,
        &item.gold,
        opts,
    );
    Prediction {
        reasoning: j.reasoning,
        extracted: j.extracted,
        correct: j.correct,
        rule: j.rule,
        ..base
    }
}

/// Runs `jobs`, appending each graded sample to `writer` as it finishes. Stops at the first fatal error (rows
/// already written stay).
pub async fn run(
    client: &Client,
    ds: &Dataset,
    cfg: &RunConfig,
    jobs: Vec<Job>,
    writer: &mut PredictionWriter,
    progress: &dyn Progress,
) -> Result<RunCounts, EvalError> {
    run_on(
        std::slice::from_ref(client),
        Dispatch::default(),
        ds,
        cfg,
        jobs,
        writer,
        progress,
    )
    .await
}

/// [`run`] over several endpoints serving the same model: each sample goes to the endpoint `dispatch` picks
/// when it is sent (its re-sends go to the same one); with more than one endpoint every row records its
/// `endpoint`.
pub async fn run_on(
    clients: &[Client],
    dispatch: Dispatch,
    ds: &Dataset,
    cfg: &RunConfig,
    jobs: Vec<Job>,
    writer: &mut PredictionWriter,
    progress: &dyn Progress,
) -> Result<RunCounts, EvalError> {
    if clients.is_empty() {
        return Err(EvalError::Fatal("no endpoint to send requests to".into()));
    }
    let dispatcher = &Dispatcher::new(dispatch, clients.len());
    let several = clients.len() > 1;
    let run_start = Instant::now();
    let prompts: Vec<String> = ds.items[..cfg.item_count(ds)]
        .iter()
        .map(|i| prompt::render_for(ds.protocol, cfg.template, i))
        .collect();
    let prompts = &prompts;
    let mut counts = RunCounts::default();
    let mut results = futures_util::stream::iter(jobs.into_iter().enumerate())
        .map(|(k, job)| async move {
            let id = format!("eval-{}-{}-{}", ds.name, job.item, job.sample);
            let req = build_request(cfg, k as u64, id, &prompts[job.item], job.sample);
            let ticket = dispatcher.pick();
            let client = &clients[ticket.index()];
            let (mut rec, retries) =
                send_with_retries(client, &req, cfg, run_start, progress).await?;
            if several {
                rec.endpoint = u32::try_from(ticket.index()).ok();
            }
            Ok::<_, EvalError>((job, rec, retries))
        })
        .buffer_unordered(cfg.concurrency.max(1));
    while let Some(res) = results.next().await {
        let (job, rec, retries) = res?;
        let p = prediction_of(ds, job, &prompts[job.item], &rec, &cfg.grade, retries + 1);
        writer.append(&p)?;
        counts.written += 1;
        counts.errors += u64::from(p.is_error());
        counts.retries += u64::from(retries);
        progress.sample(&p);
    }
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::{GraderKind, Item};

    fn cfg() -> RunConfig {
        RunConfig {
            model: "m".into(),
            api: Api::Chat,
            template: PromptTemplate::DeepseekMath,
            max_tokens: Some(64),
            temperature: 0.6,
            top_p: Some(0.95),
            seed: Some(7),
            n: 2,
            concurrency: 4,
            retries: 3,
            backoff: Duration::from_millis(1),
            stream: true,
            grade: GradeOptions::default(),
            limit: None,
        }
    }

    fn ds() -> Dataset {
        Dataset {
            name: "t".into(),
            source: "t.jsonl".into(),
            source_sha256: String::new(),
            grader: GraderKind::Math,
            protocol: crate::protocol::Protocol::Servebench,
            items: (0..3)
                .map(|i| Item {
                    id: format!("i{i}"),
                    question: format!("Q{i}"),
                    choices: None,
                    gold: i.to_string(),
                })
                .collect(),
        }
    }

    #[test]
    fn plan_is_sample_major_and_skips_finished() {
        let mut done = HashSet::new();
        done.insert(("i1".to_string(), 0));
        let jobs = plan(&ds(), &cfg(), &done);
        let pairs: Vec<(usize, u32)> = jobs.iter().map(|j| (j.item, j.sample)).collect();
        assert_eq!(pairs, [(0, 0), (2, 0), (0, 1), (1, 1), (2, 1)]);
        let limited = RunConfig {
            limit: Some(1),
            n: 1,
            ..cfg()
        };
        assert_eq!(
            plan(&ds(), &limited, &HashSet::new()),
            [Job { item: 0, sample: 0 }]
        );
    }

    #[test]
    fn seeds_differ_per_sample_only_when_sampling() {
        assert_eq!(cfg().seed_for(0), Some(7));
        assert_eq!(cfg().seed_for(3), Some(10));
        let greedy = RunConfig {
            temperature: 0.0,
            ..cfg()
        };
        assert_eq!(greedy.seed_for(3), Some(7));
        let none = RunConfig {
            seed: None,
            ..cfg()
        };
        assert_eq!(none.seed_for(1), None);
    }

    #[test]
    fn chat_body_has_one_user_message_and_sampling_fields() {
        let req = build_request(&cfg(), 5, "r".into(), "User: hi\n\nAssistant:", 1);
        let v: serde_json::Value = serde_json::from_slice(&req.body).unwrap();
        assert_eq!(
            v["messages"],
            serde_json::json!([{"role": "user", "content": "User: hi\n\nAssistant:"}])
        );
        assert_eq!(v["model"], "m");
        assert_eq!(v["max_tokens"], 64);
        assert_eq!(v["temperature"], 0.6);
        assert_eq!(v["top_p"], 0.95);
        assert_eq!(v["seed"], 8);
        assert_eq!(v["stream"], true);
        assert_eq!(v["stream_options"]["include_usage"], true);
        assert!(v.get("ignore_eos").is_none());
        let text = build_request(
            &RunConfig {
                api: Api::Completions,
                ..cfg()
            },
            0,
            "r".into(),
            "P",
            0,
        );
        let v: serde_json::Value = serde_json::from_slice(&text.body).unwrap();
        assert_eq!(v["prompt"], "P");
    }

    #[test]
    fn failures_are_classified() {
        let rec = |s: Option<u16>| RequestRecord {
            http_status: s,
            error: Some("x".into()),
            ..Default::default()
        };
        assert!(matches!(classify(&rec(Some(500))), Failure::Retry));
        assert!(matches!(classify(&rec(Some(429))), Failure::Retry));
        assert!(matches!(classify(&rec(None)), Failure::Retry));
        assert!(matches!(classify(&rec(Some(400))), Failure::Record));
        assert!(matches!(classify(&rec(Some(401))), Failure::Fatal));
        assert!(matches!(classify(&rec(Some(404))), Failure::Fatal));
    }

    #[test]
    fn rows_of_successes_and_errors() {
        let d = ds();
        let ok = RequestRecord {
            generated_text: "<think>hmm</think>\\boxed{2}".into(),
            finish_reason: Some("stop".into()),
            output_tokens: Some(9),
            prompt_tokens_server: Some(20),
            e2e_ms: Some(33.0),
            ..Default::default()
        };
        let p = prediction_of(
            &d,
            Job { item: 2, sample: 1 },
            "P",
            &ok,
            &GradeOptions::default(),
            1,
        );
        assert_eq!((p.id.as_str(), p.sample, p.correct), ("i2", 1, true));
        assert_eq!(p.reasoning.as_deref(), Some("hmm"));
        assert_eq!(p.extracted.as_deref(), Some("2"));
        assert_eq!(
            (p.prompt_tokens, p.completion_tokens, p.latency_ms),
            (Some(20), Some(9), Some(33.0))
        );
        let bad = RequestRecord {
            error: Some("HTTP 500: x".into()),
            http_status: Some(500),
            ..Default::default()
        };
        let p = prediction_of(
            &d,
            Job { item: 0, sample: 0 },
            "P",
            &bad,
            &GradeOptions::default(),
            4,
        );
        assert!(p.is_error() && !p.correct && p.extracted.is_none());
        assert_eq!(
            (p.rule.as_str(), p.attempts, p.protocol.as_str()),
            ("error", 4, "servebench")
        );
    }
}
