//! Terminal output shared by the commands: progress bars and the bench summary table.

use serde_json::{json, Value};
use servebench_core::metrics::Metrics;
use std::io::IsTerminal;

/// A progress bar on a terminal (stderr), none in logs or when disabled.
pub fn progress_bar(total: u64, disabled: bool) -> Option<indicatif::ProgressBar> {
    if disabled || !std::io::stderr().is_terminal() {
        return None;
    }
    let pb = indicatif::ProgressBar::new(total);
    pb.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} requests ({per_sec}, ETA {eta})",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    Some(pb)
}

fn f(v: &Value, k: &str) -> String {
    match v.get(k) {
        Some(Value::Number(n)) if n.is_u64() || n.is_i64() => n.to_string(),
        Some(Value::Number(n)) => n.as_f64().map(|x| format!("{x:.2}")).unwrap_or_default(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => "n/a".into(),
        Some(other) => other.to_string(),
    }
}

fn line(label: &str, value: impl std::fmt::Display) {
    println!("{label:<40} {value:<10}");
}

/// One line per endpoint when the run used several (`endpoints` in the result).
fn print_endpoints(r: &Value) {
    let Some(eps) = r.get("endpoints").and_then(Value::as_array) else {
        return;
    };
    println!("{:-^50}", format!(" Endpoints ({}) ", f(r, "dispatch")));
    println!(
        "{:<3} {:>6} {:>6} {:>8} {:>10} {:>9} {:>9} {:>9}  url",
        "#", "ok", "failed", "req/s", "out tok/s", "med TTFT", "med TPOT", "p99 E2E"
    );
    for e in eps {
        println!(
            "{:<3} {:>6} {:>6} {:>8} {:>10} {:>9} {:>9} {:>9}  {}",
            f(e, "index"),
            f(e, "completed"),
            f(e, "failed"),
            f(e, "request_throughput"),
            f(e, "output_throughput"),
            f(e, "median_ttft_ms"),
            f(e, "median_tpot_ms"),
            f(e, "p99_e2e_latency_ms"),
            f(e, "url"),
        );
    }
}

/// Prints the summary in SGLang's layout, with failures and warnings after it.
pub fn print_bench_summary(r: &Value, m: &Metrics) {
    println!("\n{:=^50}", " Serving Benchmark Result ");
    if r.get("simulated") == Some(&json!(true)) {
        line("Engine:", "SIMULATED (servebench sim)");
    }
    line("Backend:", f(r, "backend"));
    line("Traffic request rate:", f(r, "request_rate"));
    line(
        "Max request concurrency:",
        r.get("max_concurrency")
            .and_then(|v| v.as_u64())
            .map(|c| c.to_string())
            .unwrap_or_else(|| "not set".into()),
    );
    line("Successful requests:", m.completed);
    if let Some(spec) = r.get("slo").and_then(Value::as_str) {
        line("SLO:", spec);
        line(
            "SLO attainment:",
            format!(
                "{:.4} (target {}; {})",
                r["slo_attainment"].as_f64().unwrap_or(0.0),
                r["slo_attainment_target"].as_f64().unwrap_or(0.0),
                if r["slo_met"] == json!(true) {
                    "met"
                } else {
                    "NOT met"
                }
            ),
        );
        line(
            "Goodput (good req/s):",
            format!("{:.2}", r["goodput"].as_f64().unwrap_or(0.0)),
        );
    }
    line("Failed requests:", m.failed);
    line("Benchmark duration (s):", format!("{:.2}", m.duration_s));
    line("Total input tokens:", m.total_input);
    line("Total generated tokens:", m.total_output);
    line(
        "Total generated tokens (retokenized):",
        m.total_output_retokenized,
    );
    line(
        "Request throughput (req/s):",
        format!("{:.2}", m.request_throughput),
    );
    line(
        "Input token throughput (tok/s):",
        format!("{:.2}", m.input_throughput),
    );
    line(
        "Output token throughput (tok/s):",
        format!("{:.2}", m.output_throughput),
    );
    line(
        "Total token throughput (tok/s):",
        format!("{:.2}", m.total_throughput),
    );
    line(
        "Peak output token throughput (tok/s):",
        format!("{:.2}", m.max_output_tokens_per_s),
    );
    line("Peak concurrent requests:", m.max_concurrent_requests);
    line("Concurrency:", format!("{:.2}", m.concurrency));
    if let Some(a) = r.get("accept_length").and_then(|v| v.as_f64()) {
        line("Accept length:", format!("{a:.2}"));
    }
    for (title, key) in [
        ("End-to-End Latency", "e2e_latency_ms"),
        ("Time to First Token", "ttft_ms"),
        ("Time per Output Token (excl. 1st token)", "tpot_ms"),
        ("Inter-Token Latency", "itl_ms"),
    ] {
        println!("{title:-^50}");
        let short = match key {
            "e2e_latency_ms" => "E2E Latency",
            "ttft_ms" => "TTFT",
            "tpot_ms" => "TPOT",
            _ => "ITL",
        };
        for (p, name) in [
            ("mean", "Mean"),
            ("median", "Median"),
            ("p90", "P90"),
            ("p99", "P99"),
        ] {
            line(
                &format!("{name} {short} (ms):"),
                f(r, &format!("{p}_{key}")),
            );
        }
        if key == "itl_ms" {
            line("Max ITL (ms):", f(r, "max_itl_ms"));
        }
    }
    if r.get("warmup_connections")
        .and_then(|v| v.as_u64())
        .unwrap_or(0)
        > 0
    {
        println!("{:-^50}", "Client");
        line("Warm connections opened:", f(r, "warmup_connections"));
        line("Mean connect+request (ms):", f(r, "mean_connect_ms"));
    }
    if r.get("request_rate").and_then(|v| v.as_f64()).is_some() {
        line(
            "Median TTFT from scheduled (ms):",
            f(r, "median_ttft_from_scheduled_ms"),
        );
        line("P99 send lag (ms):", f(r, "p99_send_lag_ms"));
    }
    line("P99 client event-loop lag (ms):", f(r, "p99_client_lag_ms"));
    if r.get("timestamp_source").and_then(|v| v.as_str()) == Some("kernel") {
        line(
            "Max client read delay (ms):",
            f(r, "max_client_read_delay_ms"),
        );
    }
    print_endpoints(r);
    println!("{}", "=".repeat(50));
    if !m.failure_reasons.is_empty() {
        println!("Failures:");
        for (reason, n) in &m.failure_reasons {
            match m.failure_examples.get(reason) {
                Some(e) => println!("  {n:>6} × {reason}  (e.g. {e})"),
                None => println!("  {n:>6} × {reason}"),
            }
        }
    }
    if let Some(w) = r.get("warnings").and_then(|v| v.as_array()) {
        for w in w {
            println!("warning: {}", w.as_str().unwrap_or_default());
        }
    }
}
