//! Checks and times the word cache on real text: every string of a JSON file (nested anywhere: ShareGPT
//! conversations, model answers) is encoded with the cache and through `tokenizers`' whole pipeline; the ids
//! must be equal. Decoding (whole texts and 7-token pieces), vocabulary sizes and special flags are checked
//! against the pipeline too. Prints one JSON line per tokenizer.
//!
//!     cargo run --release -p servebench-tokenize --example word_cache -- TEXTS.json TOKENIZER [TOKENIZER...]

use servebench_tokenize::Tokenizer;
use std::time::Instant;

fn strings(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::String(s) => out.push(s.clone()),
        serde_json::Value::Array(a) => a.iter().for_each(|x| strings(x, out)),
        serde_json::Value::Object(o) => o.values().for_each(|x| strings(x, out)),
        _ => {}
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [texts, toks @ ..] = args.as_slice() else {
        return Err("usage: word_cache TEXTS.json TOKENIZER [TOKENIZER...]".into());
    };
    let raw = std::fs::read_to_string(texts)?;
    let mut all = Vec::new();
    for line in raw.lines().filter(|l| !l.trim().is_empty()) {
        match serde_json::from_str::<serde_json::Value>(line) {
            Ok(v) => strings(&v, &mut all),
            Err(_) => {
                strings(&serde_json::from_str(&raw)?, &mut all);
                break;
            }
        }
    }
    let bytes: usize = all.iter().map(String::len).sum();
    for path in toks {
        let file = std::path::Path::new(path).join("tokenizer.json");
        // WORD_CACHE_LOAD_ONLY=1: only the load (for profiling it).
        let load_only = std::env::var_os("WORD_CACHE_LOAD_ONLY").is_some();
        let fast_load_same =
            !load_only && servebench_tokenize::fast_load_matches(&std::fs::read(&file)?)?;
        let t0 = Instant::now();
        let tok = Tokenizer::from_path(path)?;
        let load_s = t0.elapsed().as_secs_f64();
        if load_only {
            println!(
                "{}",
                serde_json::json!({"tokenizer": path, "load_s": load_s, "built_at_load": tok.pipeline_built()})
            );
            continue;
        }
        let t1 = Instant::now();
        let mut tokens = 0usize;
        for s in &all {
            tokens += tok.count(s)?;
        }
        let cached_s = t1.elapsed().as_secs_f64();
        // Whether counting every text needed `tokenizers`' model (a text the word cache does not cover).
        let built_by_counting = tok.pipeline_built();
        let disagreements = tok.disagreements_with_pipeline()?;
        // Decoding: whole texts and 7-token pieces (cut through multi-byte characters).
        let mut decode_mismatches = 0usize;
        for s in &all {
            let ids = tok.encode_uncached(s)?;
            for piece in std::iter::once(&ids[..]).chain(ids.chunks(7)) {
                if tok.decode(piece)? != tok.decode_uncached(piece)? {
                    decode_mismatches += 1;
                }
            }
        }
        let t2 = Instant::now();
        let mut mismatches = 0usize;
        for s in &all {
            if tok.encode(s)? != tok.encode_uncached(s)? {
                mismatches += 1;
            }
        }
        let both_s = t2.elapsed().as_secs_f64();
        let t3 = Instant::now();
        let mut tokens2 = 0usize;
        for s in &all {
            tokens2 += tok.encode_uncached(s)?.len();
        }
        let uncached_s = t3.elapsed().as_secs_f64();
        println!(
            "{}",
            serde_json::json!({"tokenizer": path, "word_cache": tok.has_word_cache(), "fast_load_same": fast_load_same,
                "built_by_counting": built_by_counting, "disagreements": disagreements,
                "decode_mismatches": decode_mismatches, "texts": all.len(),
                "bytes": bytes, "tokens": tokens, "tokens_uncached": tokens2, "mismatches": mismatches,
                "load_s": load_s, "count_first_s": cached_s, "encode_both_s": both_s, "uncached_s": uncached_s})
        );
    }
    Ok(())
}
