//! `/metrics` in Prometheus text format, with vLLM's metric names (`vllm:` prefix, label `model_name`), so
//! dashboards and scrapers written for vLLM read the simulator unchanged, plus `servebench_sim_*` metrics for what
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
    pub(crate) prompt_tokens: AtomicU64,
    pub(crate) generation_tokens: AtomicU64,
    pub(crate) success_stop: AtomicU64,
    pub(crate) success_length: AtomicU64,
    pub(crate) aborted: AtomicU64,
    pub(crate) rejected: AtomicU64,
    faults: [AtomicU64; 4],
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
        o
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
    }
}
