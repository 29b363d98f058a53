//! `/metrics` in Prometheus text format, with vLLM's metric names (`vllm:` prefix, label `model_name`) and
//! SGLang's (`sglang:` prefix), so dashboards and scrapers written for either read the simulator unchanged, plus `servebench_sim_*` metrics for what
//! only the simulator knows (injected faults, engine steps). Counters are updated once per request or per engine
//! step, never per chunk.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Fault kinds counted by `servebench_sim_faults_injected_total{kind=…}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FaultKind {
    Fail,
    Disconnect,
    Malformed,
    KeepaliveDrop,
}

#[derive(Debug, Default)]
pub(crate) struct Metrics {
    pub(crate) running: AtomicU64,
    pub(crate) waiting: AtomicU64,
    pub(crate) kv_used_tokens: AtomicU64,
    pub(crate) steps: AtomicU64,
    pub(crate) received: AtomicU64,
    /// Generation requests arrived and not yet ended (answers flip under load from this count).
    pub(crate) in_flight: AtomicU64,
    pub(crate) prompt_tokens: AtomicU64,
    pub(crate) generation_tokens: AtomicU64,
    pub(crate) success_stop: AtomicU64,
    pub(crate) success_length: AtomicU64,
    pub(crate) aborted: AtomicU64,
    pub(crate) rejected: AtomicU64,
    faults: [AtomicU64; 4],
    /// The last scrape's time and generated-token count, for `sglang:gen_throughput`.
    last_scrape: std::sync::Mutex<Option<(std::time::Instant, u64, f64)>>,
}

impl Metrics {
    pub(crate) fn fault(&self, kind: FaultKind) {
        self.faults[kind as usize].fetch_add(1, Relaxed);
    }

    pub(crate) fn finished(&self, prompt_tokens: u32, completion_tokens: u32, reason_stop: bool) {
        self.prompt_tokens
            .fetch_add(u64::from(prompt_tokens), Relaxed);
        self.generation_tokens
            .fetch_add(u64::from(completion_tokens), Relaxed);
        if reason_stop {
            self.success_stop.fetch_add(1, Relaxed);
        } else {
            self.success_length.fetch_add(1, Relaxed);
        }
    }

    /// Render the text exposition format.
    pub(crate) fn render(&self, model: &str, preset: &str, kv_capacity_tokens: u64) -> String {
        let m = escape_label(model);
        let mut o = String::with_capacity(4096);
        let mut metric = |name: &str, kind: &str, help: &str, samples: &[(&str, f64)]| {
            let _ = writeln!(o, "# HELP {name} {help}");
            let _ = writeln!(o, "# TYPE {name} {kind}");
            for (labels, v) in samples {
                let sep = if labels.is_empty() { "" } else { "," };
                let _ = writeln!(o, "{name}{{model_name=\"{m}\"{sep}{labels}}} {v}");
            }
        };
        let kv = if kv_capacity_tokens == u64::MAX || kv_capacity_tokens == 0 {
            0.0
        } else {
            self.kv_used_tokens.load(Relaxed) as f64 / kv_capacity_tokens as f64
        };
        let g = |a: &AtomicU64| a.load(Relaxed) as f64;
        metric(
            "vllm:num_requests_running",
            "gauge",
            "Number of requests in model execution batches.",
            &[("", g(&self.running))],
        );
        metric(
            "vllm:num_requests_waiting",
            "gauge",
            "Number of requests waiting to be processed.",
            &[("", g(&self.waiting))],
        );
        metric(
            "vllm:kv_cache_usage_perc",
            "gauge",
            "KV-cache usage. 1 means 100 percent usage.",
            &[("", kv)],
        );
        metric(
            "vllm:gpu_cache_usage_perc",
            "gauge",
            "KV-cache usage (older vLLM name). 1 means 100 percent usage.",
            &[("", kv)],
        );
        metric(
            "vllm:prompt_tokens_total",
            "counter",
            "Number of prefill tokens processed.",
            &[("", g(&self.prompt_tokens))],
        );
        metric(
            "vllm:generation_tokens_total",
            "counter",
            "Number of generation tokens processed.",
            &[("", g(&self.generation_tokens))],
        );
        metric(
            "vllm:request_success_total",
            "counter",
            "Count of successfully processed requests.",
            &[
                ("finished_reason=\"stop\"", g(&self.success_stop)),
                ("finished_reason=\"length\"", g(&self.success_length)),
            ],
        );
        metric(
            "servebench_sim_requests_received_total",
            "counter",
            "Generation requests received.",
            &[("", g(&self.received))],
        );
        metric(
            "servebench_sim_requests_aborted_total",
            "counter",
            "Requests whose client went away before the end.",
            &[("", g(&self.aborted))],
        );
        metric(
            "servebench_sim_requests_rejected_total",
            "counter",
            "Requests answered with HTTP 4xx.",
            &[("", g(&self.rejected))],
        );
        metric(
            "servebench_sim_engine_steps_total",
            "counter",
            "Engine steps run by the batch scheduler.",
            &[("", g(&self.steps))],
        );
        metric(
            "servebench_sim_faults_injected_total",
            "counter",
            "Faults injected on purpose.",
            &[
                ("kind=\"fail\"", g(&self.faults[FaultKind::Fail as usize])),
                (
                    "kind=\"disconnect\"",
                    g(&self.faults[FaultKind::Disconnect as usize]),
                ),
                (
                    "kind=\"malformed\"",
                    g(&self.faults[FaultKind::Malformed as usize]),
                ),
                (
                    "kind=\"keepalive_drop\"",
                    g(&self.faults[FaultKind::KeepaliveDrop as usize]),
                ),
            ],
        );
        let p = escape_label(preset);
        metric(
            "servebench_sim_info",
            "gauge",
            "The simulated engine (always 1).",
            &[(&format!("preset=\"{p}\",simulated=\"true\""), 1.0)],
        );
        self.render_sglang(&mut o, &m, kv, kv_capacity_tokens);
        o
    }

    /// SGLang's names for the same state (`sglang:` prefix, label `model_name`), so the scrapers and
    /// dashboards written for SGLang read the simulator too. The simulator has no prefix cache: its hit
    /// rate is 0. `gen_throughput` is generated tokens per second since the previous scrape.
    fn render_sglang(&self, o: &mut String, m: &str, kv: f64, kv_capacity_tokens: u64) {
        let g = |a: &AtomicU64| a.load(Relaxed) as f64;
        let gen_tokens = self.generation_tokens.load(Relaxed);
        let gen_throughput = self.gen_rate(gen_tokens);
        let capacity = if kv_capacity_tokens == u64::MAX {
            0.0
        } else {
            kv_capacity_tokens as f64
        };
        let gauges: [(&str, &str, &str, f64); 8] = [
            (
                "sglang:num_running_reqs",
                "gauge",
                "The number of running requests.",
                g(&self.running),
            ),
            (
                "sglang:num_queue_reqs",
                "gauge",
                "The number of requests in the waiting queue.",
                g(&self.waiting),
            ),
            (
                "sglang:num_used_tokens",
                "gauge",
                "The number of used tokens.",
                g(&self.kv_used_tokens),
            ),
            ("sglang:token_usage", "gauge", "The token usage.", kv),
            (
                "sglang:cache_hit_rate",
                "gauge",
                "The prefix cache hit rate.",
                0.0,
            ),
            (
                "sglang:gen_throughput",
                "gauge",
                "The generation throughput (token/s).",
                gen_throughput,
            ),
            (
                "sglang:max_total_num_tokens",
                "gauge",
                "Maximum total number of tokens in the KV cache.",
                capacity,
            ),
            (
                "sglang:prompt_tokens_total",
                "counter",
                "Number of prefill tokens processed.",
                g(&self.prompt_tokens),
            ),
        ];
        for (name, kind, help, v) in gauges {
            let _ = writeln!(
                o,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name}{{model_name=\"{m}\"}} {v}"
            );
        }
        let name = "sglang:generation_tokens_total";
        let _ = writeln!(
            o,
            "# HELP {name} Number of generation tokens processed.\n# TYPE {name} counter\n{name}{{model_name=\"{m}\"}} {gen_tokens}"
        );
    }

    /// Generated tokens per second since the previous call (0 on the first).
    fn gen_rate(&self, gen_tokens: u64) -> f64 {
        let now = std::time::Instant::now();
        let Ok(mut last) = self.last_scrape.lock() else {
            return 0.0;
        };
        let rate = match *last {
            Some((at, tokens, rate)) => {
                let dt = now.duration_since(at).as_secs_f64();
                if dt < 0.05 {
                    rate
                } else {
                    gen_tokens.saturating_sub(tokens) as f64 / dt
                }
            }
            None => 0.0,
        };
        if last.is_none_or(|(at, _, _)| now.duration_since(at).as_secs_f64() >= 0.05) {
            *last = Some((now, gen_tokens, rate));
        }
        rate
    }
}

fn escape_label(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_vllm_names_with_values() {
        let m = Metrics::default();
        m.running.store(3, Relaxed);
        m.kv_used_tokens.store(250, Relaxed);
        m.finished(10, 5, false);
        m.finished(20, 7, true);
        m.fault(FaultKind::Disconnect);
        let text = m.render("my\"model", "fast", 1000);
        assert!(
            text.contains("vllm:num_requests_running{model_name=\"my\\\"model\"} 3\n"),
            "{text}"
        );
        assert!(text.contains("vllm:kv_cache_usage_perc{model_name=\"my\\\"model\"} 0.25\n"));
        assert!(text.contains("vllm:prompt_tokens_total{model_name=\"my\\\"model\"} 30\n"));
        assert!(text.contains("vllm:generation_tokens_total{model_name=\"my\\\"model\"} 12\n"));
        assert!(text.contains("finished_reason=\"length\"} 1\n"));
        assert!(text.contains("kind=\"disconnect\"} 1\n"));
        assert!(text.contains("# TYPE vllm:num_requests_waiting gauge\n"));
        assert!(text.contains("simulated=\"true\"} 1\n"));
        assert!(
            text.contains("sglang:num_running_reqs{model_name=\"my\\\"model\"} 3\n"),
            "{text}"
        );
        assert!(text.contains("sglang:num_queue_reqs{model_name=\"my\\\"model\"} 0\n"));
        assert!(text.contains("sglang:token_usage{model_name=\"my\\\"model\"} 0.25\n"));
        assert!(text.contains("sglang:generation_tokens_total{model_name=\"my\\\"model\"} 12\n"));
        assert!(text.contains("# TYPE sglang:gen_throughput gauge\n"));
    }
}
