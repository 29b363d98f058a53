//! How long decoding one streamed event takes: the fast walk (with serde fallback) against serde alone.
//!   cargo bench -p servebench-core --bench decode
//! Prints a table: ns per event, median of 7 rounds (min–max), the two paths interleaved round by round.

use servebench_core::api::{Api, StreamDecoder};
use std::hint::black_box;
use std::time::Instant;

const EVENTS: &[(&str, Api, &str)] = &[
    (
        "vLLM completions chunk",
        Api::Completions,
        r#"{"id":"cmpl-8b1f3e0f2c8a4d6b9e7f1a2b3c4d5e6f","object":"text_completion","created":1764345600,"model":"deepseek-ai/DeepSeek-R1","choices":[{"index":0,"text":" the","logprobs":null,"finish_reason":null,"stop_reason":null}],"usage":null}"#,
    ),
    (
        "chat chunk (reasoning)",
        Api::Chat,
        r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1764345600,"model":"deepseek-ai/DeepSeek-R1","choices":[{"index":0,"delta":{"reasoning_content":" so","content":null},"logprobs":null,"finish_reason":null}]}"#,
    ),
    (
        "final chunk with usage",
        Api::Completions,
        r#"{"id":"cmpl-1","object":"text_completion","created":1764345600,"model":"m","choices":[{"index":0,"text":"","logprobs":null,"finish_reason":"length","stop_reason":null}],"usage":{"prompt_tokens":1024,"total_tokens":1280,"completion_tokens":256,"prompt_tokens_details":null}}"#,
    ),
];

fn time_ns(api: Api, ev: &[u8], n: usize, serde_only: bool) -> f64 {
    let mut d = StreamDecoder::new(api);
    let t = Instant::now();
    for _ in 0..n {
        let r = if serde_only {
            d.on_openai_event_serde_only(black_box(ev))
        } else {
            d.on_event(black_box(ev))
        };
        black_box(r.is_ok());
        if d.text.len() > 1 << 20 {
            d.text.clear();
            d.reasoning.clear();
        }
    }
    t.elapsed().as_nanos() as f64 / n as f64
}

fn median_range(mut v: Vec<f64>) -> String {
    v.sort_by(|a, b| a.total_cmp(b));
    format!("{:.0} ({:.0}–{:.0})", v[v.len() / 2], v[0], v[v.len() - 1])
}

fn main() {
    let n = 200_000;
    println!("| event | bytes | fast walk ns/event | serde ns/event | serde/fast |");
    println!("|---|---|---|---|---|");
    for (name, api, ev) in EVENTS {
        let (mut fast, mut serde) = (Vec::new(), Vec::new());
        for _ in 0..7 {
            fast.push(time_ns(*api, ev.as_bytes(), n, false));
            serde.push(time_ns(*api, ev.as_bytes(), n, true));
        }
        let ratio: Vec<f64> = serde.iter().zip(&fast).map(|(s, f)| s / f).collect();
        println!(
            "| {name} | {} | {} | {} | {} |",
            ev.len(),
            median_range(fast),
            median_range(serde),
            {
                let mut r = ratio;
                r.sort_by(|a, b| a.total_cmp(b));
                format!("{:.2}", r[r.len() / 2])
            }
        );
    }
}
