//! Property tests of the stream path's pure parts under arbitrary byte splits (and arbitrary bytes): the SSE
//! framing ([`crate::sse`]) and the JSON event walk ([`crate::api::StreamDecoder`]). Fixed seed; cases from
//! `PROPTEST_CASES` (default 512). How long they ran is in docs/reliability.md.

use crate::api::{Api, StreamDecoder};
use crate::sse::SseParser;
use proptest::prelude::*;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(512),
        rng_algorithm: proptest::test_runner::RngAlgorithm::ChaCha,
        rng_seed: proptest::test_runner::RngSeed::Fixed(0x55e_f022),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// `bytes` cut at the given positions (taken modulo the length, in order).
fn split<'a>(bytes: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut at: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    at.sort_unstable();
    let mut out = Vec::new();
    let mut last = 0;
    for c in at {
        out.push(&bytes[last..c]);
        last = c;
    }
    out.push(&bytes[last..]);
    out
}

fn events(reads: &[&[u8]]) -> Vec<Vec<u8>> {
    let mut p = SseParser::new();
    let mut out = Vec::new();
    for r in reads {
        p.feed(r, |e| out.push(e.to_vec()));
    }
    p.flush(|e| out.push(e.to_vec()));
    out
}

/// Text pieces with what breaks parsers: escapes, quotes, braces, CR/LF, multi-byte and astral characters.
fn text() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            Just("a".to_string()),
            Just(" the".to_string()),
            Just("\"".to_string()),
            Just("\\".to_string()),
            Just("{}[]".to_string()),
            Just("\n".to_string()),
            Just("\r\n".to_string()),
            Just("data: x".to_string()),
            Just("é".to_string()),
            Just("日本".to_string()),
            Just("😀".to_string()),
            Just("\u{0}".to_string()),
            any::<char>().prop_map(|c| c.to_string()),
        ],
        0..6,
    )
    .prop_map(|v| v.concat())
}

/// How events are framed on the wire.
#[derive(Debug, Clone, Copy)]
enum Framing {
    Lf,
    Crlf,
    Cr,
    /// `data:` lines ended by one `\n`, no blank line.
    Single,
}

fn framing() -> impl Strategy<Value = Framing> {
    prop_oneof![
        Just(Framing::Lf),
        Just(Framing::Crlf),
        Just(Framing::Cr),
        Just(Framing::Single)
    ]
}

/// A valid OpenAI completions stream of `texts` (comments and other fields mixed in), and its event data.
fn stream(texts: &[String], f: Framing, bom: bool, extras: bool) -> (Vec<u8>, Vec<String>) {
    let nl = match f {
        Framing::Lf | Framing::Single => "\n",
        Framing::Crlf => "\r\n",
        Framing::Cr => "\r",
    };
    let end = if matches!(f, Framing::Single) { "" } else { nl };
    let mut wire = String::new();
    let mut data = Vec::new();
    for (i, t) in texts.iter().enumerate() {
        let ev = serde_json::json!({"id": "c", "object": "text_completion",
            "choices": [{"index": 0, "text": t, "finish_reason": null}]})
        .to_string();
        if extras && !matches!(f, Framing::Single) {
            wire.push_str(&format!(": ping{nl}{nl}event: message{nl}id: {i}{nl}"));
        }
        wire.push_str(&format!("data: {ev}{nl}{end}"));
        data.push(ev);
    }
    wire.push_str(&format!("data: [DONE]{nl}{end}"));
    data.push("[DONE]".to_string());
    let mut bytes = if bom {
        vec![0xEF, 0xBB, 0xBF]
    } else {
        Vec::new()
    };
    bytes.extend_from_slice(wire.as_bytes());
    (bytes, data)
}

proptest! {
    #![proptest_config(config())]

    /// Arbitrary bytes in arbitrary reads: no panic, and the decoder never panics on any event.
    #[test]
    fn sse_and_decoder_never_panic_on_arbitrary_bytes(
        bytes in prop::collection::vec(any::<u8>(), 0..600),
        cuts in prop::collection::vec(any::<usize>(), 0..12),
    ) {
        let evs = events(&split(&bytes, &cuts));
        for api in [Api::Completions, Api::Chat, Api::SglangGenerate] {
            let mut d = StreamDecoder::new(api);
            for e in &evs {
                let _ = d.on_event(e);
            }
            let _ = StreamDecoder::new(api).on_event(&bytes);
            let _ = StreamDecoder::new(api).on_full_body(&bytes);
        }
    }

    /// Any split of a valid stream gives the events of the whole stream, and the decoder the whole text.
    #[test]
    fn any_split_of_a_valid_stream_parses_as_the_whole(
        texts in prop::collection::vec(text(), 1..8),
        f in framing(),
        bom in any::<bool>(),
        extras in any::<bool>(),
        cuts in prop::collection::vec(any::<usize>(), 0..16),
    ) {
        let (wire, data) = stream(&texts, f, bom, extras);
        let whole = events(&[&wire]);
        let expect: Vec<Vec<u8>> = data.iter().map(|d| d.as_bytes().to_vec()).collect();
        prop_assert_eq!(&whole, &expect);
        let reads = split(&wire, &cuts);
        prop_assert_eq!(&events(&reads), &expect);
        let bytes: Vec<&[u8]> = wire.chunks(1).collect();
        prop_assert_eq!(&events(&bytes), &expect);
        let mut d = StreamDecoder::new(Api::Completions);
        let mut done = false;
        for e in events(&reads) {
            done |= d.on_event(&e).expect("valid events decode").done;
        }
        prop_assert!(done);
        prop_assert_eq!(d.text, texts.concat());
    }

    /// The fast JSON walk and serde agree on chat deltas with hostile text.
    #[test]
    fn chat_deltas_decode_the_same_by_the_walk_and_serde(
        content in text(),
        reasoning in text(),
    ) {
        let ev = serde_json::json!({"id": "c", "object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": {"content": content, "reasoning_content": reasoning},
                         "finish_reason": null}]})
        .to_string();
        let mut fast = StreamDecoder::new(Api::Chat);
        let mut slow = StreamDecoder::new(Api::Chat);
        let a = fast.on_event(ev.as_bytes()).expect("decodes");
        let b = slow.on_openai_event_serde_only(ev.as_bytes()).expect("decodes");
        prop_assert_eq!(a, b);
        prop_assert_eq!(&fast.text, &content);
        prop_assert_eq!(&fast.reasoning, &reasoning);
        prop_assert_eq!(&slow.text, &content);
    }
}
