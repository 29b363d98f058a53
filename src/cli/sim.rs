//! `servebench sim`: the simulated engine as an HTTP server (OpenAI API + SGLang `/generate`).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use servebench_sim::{FixedLatency, ReasoningMode, SimConfig, SimServer};
use servebench_tokenize::Tokenizer;

use crate::sim_counter::TokenizerCounter;

/// Flags of `servebench sim`. Every engine parameter starts from `--preset` and can be overridden.
#[derive(Debug, clap::Args)]
#[command(after_help = presets_help(), allow_negative_numbers = true)]
pub struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Port to listen on (0: any free port).
    #[arg(long, default_value_t = 30000)]
    pub port: u16,
    /// Model name served in /v1/models (requests may name any model; it is echoed back).
    #[arg(long, default_value = "servebench-sim")]
    pub model: String,
    /// default | h200-dsr1 | slow | fast | firehose | mock.
    #[arg(long, default_value = "default")]
    pub preset: String,
    /// Prompt token counting: a tokenizer.json file or a folder with one, `builtin` (the built-in SmolLM2
    /// tokenizer, as `servebench bench` uses by default) or `heuristic` (no tokenizer: words and punctuation runs).
    #[arg(long, default_value = "builtin")]
    pub tokenizer: String,
    /// Seed of every random choice (output words, EOS, answer-key verdicts, faults) (default: the preset's, listed below).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Longest prompt + output accepted (default: the preset's, listed below).
    #[arg(long)]
    pub max_model_len: Option<u32>,

    /// Sequences decoding at once; more requests queue (default: the preset's, listed below).
    #[arg(long)]
    pub max_running: Option<usize>,
    /// KV-cache capacity in tokens (a request is admitted when its prompt + output fit) (default: the preset's, listed below).
    #[arg(long)]
    pub kv_capacity_tokens: Option<u64>,
    /// Prompt tokens processed per engine step (default: the preset's, listed below).
    #[arg(long)]
    pub chunked_prefill_size: Option<u32>,
    /// Prefill time per prompt token, microseconds (default: the preset's, listed below).
    #[arg(long)]
    pub prefill_us_per_token: Option<f64>,
    /// Decode step = base + per_seq × batch + per_ctx × context tokens (default: the preset's, listed below).
    #[arg(long)]
    pub decode_base_ms: Option<f64>,
    /// Decode step time per running sequence, microseconds (default: the preset's, listed below).
    #[arg(long)]
    pub decode_per_seq_us: Option<f64>,
    /// Decode step time per context token of the batch, nanoseconds (default: the preset's, listed below).
    #[arg(long)]
    pub decode_per_ctx_token_ns: Option<f64>,
    /// Tokens per streamed chunk (as with speculative decoding) (default: the preset's, listed below).
    #[arg(long)]
    pub tokens_per_chunk: Option<u32>,
    /// Zero-latency streams only: at most this many ready SSE events per HTTP chunk / socket write (default 1, as
    /// engines write them; 64 for the firehose preset, so that the simulator is never the ceiling).
    #[arg(long)]
    pub chunks_per_write: Option<u32>,
    /// Busy-wait this long before each step deadline for sub-millisecond step times (costs CPU) (default: the preset's, listed below).
    #[arg(long)]
    pub timer_spin_us: Option<u64>,
    /// Fixed time to first chunk per request (switches to fixed-latency mode, no batching) (default: the preset's, listed below).
    #[arg(long)]
    pub ttft_ms: Option<f64>,
    /// Fixed gap between chunks per request (switches to fixed-latency mode, no batching) (default: the preset's, listed below).
    #[arg(long)]
    pub itl_ms: Option<f64>,
    /// Probability per token of an EOS (finish_reason "stop"); 0 = outputs run to max_tokens (default: the preset's, listed below).
    #[arg(long)]
    pub eos_prob: Option<f64>,
    /// Output length of a chat request without max_tokens (default: the preset's, listed below).
    #[arg(long)]
    pub default_max_tokens: Option<u32>,

    /// Imitate `transformers serve`: HTTP 422 on fields outside the OpenAI schema, no usage in streams.
    #[arg(long)]
    pub strict_openai: bool,
    /// Share of requests answered HTTP 500 (default: the preset's, listed below).
    #[arg(long)]
    pub fail_rate: Option<f64>,
    /// Share of responses whose connection is dropped midway (default: the preset's, listed below).
    #[arg(long)]
    pub disconnect_rate: Option<f64>,
    /// Share of streams with one malformed event (default: the preset's, listed below).
    #[arg(long)]
    pub malformed_rate: Option<f64>,
    /// Serve one request per connection; a further request on it is dropped unanswered.
    #[arg(long)]
    pub close_keepalive: bool,
    /// Close keep-alive connections idle for this long (default: the preset's, listed below).
    #[arg(long)]
    pub close_idle_after_ms: Option<u64>,
    /// Inject a fault of the matrix into this share of requests (RATE default 1); repeatable. A request's
    /// `x-sim-fault: NAME[,NAME…]` header picks its faults instead. Names: http_500, http_503, http_429,
    /// http_404_model, reset_before_headers, reset_mid_stream, stall_first, stall_mid, error_event,
    /// malformed_json, split_bytes, utf8_split, invalid_utf8, big_event, no_done, ping, crlf, single_newline, bom,
    /// wrong_content_type, byte_per_read, no_end_after_done (docs/reliability.md).
    #[arg(long = "fault", value_name = "NAME[=RATE]")]
    pub faults: Vec<String>,
    /// Largest request body accepted (HTTP 413 beyond) (default: the preset's, listed below).
    #[arg(long)]
    pub max_body_bytes: Option<usize>,

    /// Answer known questions from this file (JSONL with problem/question + answer, or GPQA CSV); repeatable
    /// (default: none).
    #[arg(long = "answer-key")]
    pub answer_key: Vec<PathBuf>,
    /// Probability of answering a known question correctly (default: the preset's, listed below).
    #[arg(long)]
    pub accuracy: Option<f64>,
    /// Share of wrong answers that are well-formed (a wrong \boxed{}); the rest have no boxed answer (default: the preset's, listed below).
    #[arg(long)]
    pub wrong_share: Option<f64>,
    /// Accuracy under load: the share of answer-key answers that flip (correct → wrong, wrong → correct)
    /// when the engine is busy at a request's arrival (default: the preset's, 0).
    #[arg(long)]
    pub load_flip_rate: Option<f64>,
    /// Other requests in flight at a request's arrival from which the engine counts as busy (default 2).
    #[arg(long)]
    pub load_flip_threshold: Option<u64>,
    /// Where answer-key reasoning goes: inline (<think>…</think>), field (reasoning_content) or none (default: the preset's, listed below).
    #[arg(long)]
    pub reasoning: Option<String>,
    /// Filler words of reasoning before an answer-key answer (default: the preset's, listed below).
    #[arg(long)]
    pub reasoning_tokens: Option<u32>,

    /// Request traces kept for /sim/traces (0 disables tracing) (default: the preset's, listed below).
    #[arg(long)]
    pub trace_capacity: Option<usize>,
    /// Chunk timestamps kept over all traces (default: the preset's, listed below).
    #[arg(long)]
    pub trace_chunk_budget: Option<usize>,
}

/// The engine parameters of every preset, for `--help`.
pub fn presets_help() -> String {
    let mut t = String::from(
        "Presets (the defaults of the engine flags):\n  preset      max_model_len max_running kv_capacity_tokens chunked_prefill prefill_us/tok decode_base_ms per_seq_us per_ctx_ns",
    );
    for name in SimConfig::preset_names() {
        let Ok(c) = SimConfig::preset(name) else {
            continue;
        };
        let cap = |v: u64| {
            if v >= u64::from(u32::MAX) {
                "unlimited".to_string()
            } else {
                v.to_string()
            }
        };
        t.push_str(&format!(
            "\n  {name:<11} {:>13} {:>11} {:>18} {:>15} {:>14} {:>14} {:>10} {:>10}",
            c.max_model_len,
            cap(c.max_running as u64),
            cap(c.kv_capacity_tokens),
            c.chunked_prefill_size,
            c.prefill_us_per_token,
            c.decode_base_ms,
            c.decode_per_seq_us,
            c.decode_per_ctx_token_ns,
        ));
    }
    let d = SimConfig::default();
    t.push_str(&format!(
        "\nEvery preset: seed {}, tokens_per_chunk {}, eos_prob {}, default_max_tokens {}, no faults, \
         max_body_bytes {}, accuracy {}, wrong_share {}, reasoning {}, reasoning_tokens {}, trace_capacity {}, \
         trace_chunk_budget {}, timer_spin_us {}, ttft_ms/itl_ms unset (batching engine){}",
        d.seed,
        d.tokens_per_chunk,
        d.eos_prob,
        d.default_max_tokens,
        d.max_body_bytes,
        d.accuracy,
        d.wrong_share,
        d.reasoning.as_str(),
        d.reasoning_tokens,
        d.trace_capacity,
        d.trace_chunk_budget,
        d.timer_spin_us,
        ". firehose: fixed latency 0 (ttft_ms 0, itl_ms 0) and 64 chunks per write; mock: fixed ttft_ms 50, \
         itl_ms 10, no batching; the others: chunks_per_write 1."
    ));
    t
}

/// The configuration these flags describe.
pub fn config(a: &Args) -> Result<SimConfig> {
    let mut c = SimConfig::preset(&a.preset)?;
    c.model = a.model.clone();
    macro_rules! set {
        ($($field:ident),*) => { $( if let Some(v) = a.$field.clone() { c.$field = v; } )* };
    }
    set!(
        seed,
        max_model_len,
        max_running,
        kv_capacity_tokens,
        chunked_prefill_size,
        prefill_us_per_token,
        decode_base_ms,
        decode_per_seq_us,
        decode_per_ctx_token_ns,
        tokens_per_chunk,
        chunks_per_write,
        timer_spin_us,
        eos_prob,
        default_max_tokens,
        max_body_bytes,
        accuracy,
        wrong_share,
        load_flip_rate,
        load_flip_threshold,
        reasoning_tokens,
        trace_capacity,
        trace_chunk_budget
    );
    if a.ttft_ms.is_some() || a.itl_ms.is_some() {
        let base = c.fixed_latency.unwrap_or(FixedLatency {
            ttft_ms: 0.0,
            itl_ms: 0.0,
        });
        c.fixed_latency = Some(FixedLatency {
            ttft_ms: a.ttft_ms.unwrap_or(base.ttft_ms),
            itl_ms: a.itl_ms.unwrap_or(base.itl_ms),
        });
    }
    c.strict_openai |= a.strict_openai;
    if let Some(v) = a.fail_rate {
        c.faults.fail_rate = v;
    }
    if let Some(v) = a.disconnect_rate {
        c.faults.disconnect_rate = v;
    }
    if let Some(v) = a.malformed_rate {
        c.faults.malformed_rate = v;
    }
    c.faults.close_keepalive |= a.close_keepalive;
    for spec in &a.faults {
        let (name, rate) = match spec.split_once('=') {
            Some((n, r)) => {
                let rate: f64 = r.trim().parse().map_err(|_| {
                    anyhow::anyhow!(
                        "--fault {spec}: the rate after '=' must be a number between 0 and 1"
                    )
                })?;
                (n, rate)
            }
            None => (spec.as_str(), 1.0),
        };
        c.faults.set_rate(servebench_sim::Fault::parse(name)?, rate);
    }
    if a.close_idle_after_ms.is_some() {
        c.faults.close_idle_after_ms = a.close_idle_after_ms;
    }
    if let Some(r) = &a.reasoning {
        c.reasoning = ReasoningMode::parse(r)?;
    }
    c.answer_key_files = a.answer_key.clone();
    c.prompt_counter = match a.tokenizer.as_str() {
        "heuristic" => None,
        "builtin" => Some(Arc::new(TokenizerCounter::new(Tokenizer::builtin()?)?)),
        path => {
            let tok = Tokenizer::from_path(path).with_context(|| format!("--tokenizer {path}"))?;
            Some(Arc::new(
                TokenizerCounter::new(tok).with_context(|| format!("--tokenizer {path}"))?,
            ))
        }
    };
    c.validate()?;
    Ok(c)
}

/// One line describing the timing of a configuration at low load.
pub fn describe(c: &SimConfig) -> String {
    let e = c.expected_latency(512, 128);
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
    match c.fixed_latency {
        Some(f) if f.ttft_ms == 0.0 && f.itl_ms == 0.0 => "zero compute: chunks as fast as clients read".to_string(),
        Some(f) => format!("fixed TTFT {} ms, ITL {} ms", f.ttft_ms, f.itl_ms),
        None => format!(
            "one 512-token prompt alone: TTFT {:.1} ms, TPOT {:.1} ms; max running {}, KV {} tokens",
            ms(e.ttft),
            ms(e.tpot),
            c.max_running,
            c.kv_capacity_tokens
        ),
    }
}

pub fn run(args: Args) -> Result<()> {
    let cfg = config(&args)?;
    let ip: IpAddr = match args.host.as_str() {
        "localhost" => IpAddr::from([127, 0, 0, 1]),
        h => h
            .parse()
            .with_context(|| format!("--host {h:?} is not an IP address"))?,
    };
    if args.preset == "firehose" && cfg.trace_capacity > 0 {
        tracing::info!("firehose with tracing on: pass --trace-capacity 0 for the cheapest chunks");
    }
    let rt = crate::cli::runtime()?;
    rt.block_on(async move {
        let line = describe(&cfg);
        let preset = cfg.preset.clone();
        let model = cfg.model.clone();
        let keys = cfg.answer_key_files.len();
        let server = SimServer::start(cfg, SocketAddr::new(ip, args.port)).await?;
        let keyed = if keys > 0 { format!(", answer keys: {keys} file(s)") } else { String::new() };
        println!(
            "servebench sim (simulated engine) ready at {} — preset {preset}, model {model}{keyed}; {line}",
            server.base_url()
        );
        if tokio::signal::ctrl_c().await.is_err() {
            bail!("cannot listen for Ctrl-C");
        }
        eprintln!("stopping");
        server.shutdown().await;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct T {
        #[command(flatten)]
        a: Args,
    }

    fn cfg(args: &[&str]) -> Result<SimConfig> {
        let mut argv = vec!["sim", "--tokenizer", "heuristic"];
        argv.extend_from_slice(args);
        config(&T::try_parse_from(argv)?.a)
    }

    #[test]
    fn flags_override_the_preset() {
        let c = cfg(&[
            "--preset",
            "slow",
            "--max-running",
            "7",
            "--decode-base-ms",
            "3.5",
            "--fail-rate",
            "0.1",
            "--answer-key",
            "a.jsonl",
            "--answer-key",
            "b.csv",
            "--reasoning",
            "field",
            "--seed",
            "9",
        ])
        .unwrap();
        assert_eq!(c.preset, "slow");
        assert_eq!((c.max_running, c.decode_base_ms, c.seed), (7, 3.5, 9));
        assert_eq!(
            c.prefill_us_per_token,
            SimConfig::preset("slow").unwrap().prefill_us_per_token
        );
        assert_eq!(c.faults.fail_rate, 0.1);
        assert_eq!(c.answer_key_files.len(), 2);
        assert_eq!(c.reasoning, ReasoningMode::Field);
        assert_eq!(c.model, "servebench-sim");
        assert!(c.prompt_counter.is_none());
    }

    #[test]
    fn fault_flags_set_the_matrix_rates() {
        use servebench_sim::Fault;
        let c = cfg(&["--fault", "ping=0.25", "--fault", "stall_mid"]).unwrap();
        assert_eq!(c.faults.rates[Fault::Ping as usize], 0.25);
        assert_eq!(c.faults.rates[Fault::StallMid as usize], 1.0);
        assert_eq!(c.faults.rates[Fault::Crlf as usize], 0.0);
        let e = cfg(&["--fault", "nope"]).unwrap_err().to_string();
        assert!(
            e.contains("unknown fault") && e.contains("byte_per_read"),
            "{e}"
        );
        let e = cfg(&["--fault", "ping=x"]).unwrap_err().to_string();
        assert!(e.contains("between 0 and 1"), "{e}");
        let e = format!("{:#}", cfg(&["--fault", "ping=2"]).unwrap_err());
        assert!(e.contains("probability"), "{e}");
    }

    #[test]
    fn latency_flags_switch_to_fixed_mode() {
        let c = cfg(&["--itl-ms", "5"]).unwrap();
        assert_eq!(
            c.fixed_latency,
            Some(FixedLatency {
                ttft_ms: 0.0,
                itl_ms: 5.0
            })
        );
        let m = cfg(&["--preset", "mock", "--ttft-ms", "7"]).unwrap();
        assert_eq!(
            m.fixed_latency,
            Some(FixedLatency {
                ttft_ms: 7.0,
                itl_ms: 10.0
            })
        );
        assert!(describe(&m).contains("fixed TTFT 7 ms"));
        assert!(describe(&cfg(&[]).unwrap()).contains("TTFT 20.5 ms"));
    }

    #[test]
    fn bad_values_are_refused() {
        assert!(cfg(&["--preset", "nope"]).is_err());
        assert!(cfg(&["--accuracy", "2"])
            .unwrap_err()
            .to_string()
            .contains("accuracy"));
        assert!(cfg(&["--reasoning", "maybe"]).is_err());
    }
}
