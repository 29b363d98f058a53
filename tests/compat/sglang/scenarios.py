"""The differential suite's scenarios: what the scripted server does, and the flags both tools get.

Each scenario is one server behaviour (see server.py for the options) and one set of `bench_serving` flags,
passed unchanged to `python -m sglang.bench_serving` and to `servebench bench` (the harness adds
`--base-url`, `--model`/`--tokenizer` (the SmolLM2 tokenizer folder), `--output-file` and `--disable-tqdm`).

Timing scenarios send one wave of 4 requests of 5 tokens (all in flight at once, so every token lands well
inside the first second and `max_output_tokens_per_s` does not depend on where a second's boundary falls).
`expect_faults` is checked against the server's own count, so a scenario that stopped exercising its fault
fails instead of passing vacuously.
"""

SHAREGPT = "tests/fixtures/sharegpt/sharegpt_small.json"

# One wave of 4 random prompts, 64 tokens in, 5 tokens out.
WAVE = [
    "--dataset-name", "random", "--dataset-path", SHAREGPT,
    "--random-input-len", "64", "--random-output-len", "5", "--random-range-ratio", "1.0",
    "--num-prompts", "4", "--max-concurrency", "4",
]


def wave(out_tokens):
    """WAVE with another output length."""
    a = list(WAVE)
    a[a.index("--random-output-len") + 1] = str(out_tokens)
    return a


FAST = {"ttft_ms": 20.0, "gap_ms": 20.0}  # bulk scenarios (lengths, not timing, are the point)


def _scenarios():
    s = [
        dict(name="plain", what="plain text stream, 5 events 100 ms apart (OpenAI completions)",
             backend="sglang-oai", server={}, args=WAVE),
        dict(name="crlf", what="SSE lines ended by CRLF", backend="sglang-oai",
             server={"line_end": "\r\n\r\n"}, args=WAVE),
        dict(name="lf", what="each data: line ended by a single \\n (no blank line)", backend="sglang-oai",
             server={"line_end": "\n"}, args=WAVE),
        dict(name="bom", what="a UTF-8 BOM before the first event (every other request)", backend="sglang-oai",
             server={"bom": "even"}, args=WAVE, expect_faults=True),
        dict(name="native", what="SGLang native /generate, 1 token per event", backend="sglang",
             server={}, args=WAVE),
        dict(name="native-multitoken",
             what="native /generate, 4 tokens per event plus one event with no new token; accept length",
             backend="sglang", server={"accept": "plain", "zero_token_event": True}, args=wave(20)),
        dict(name="oai-multitoken", what="OpenAI completions, 4 tokens per event, server accept length",
             backend="sglang-oai", server={"accept": "plain"}, args=wave(20)),
        dict(name="chat-multitoken-pd",
             what="OpenAI chat, 4 tokens per event, accept length in the PD {\"decode\": [...]} form",
             backend="sglang-oai-chat", server={"accept": "pd"}, args=wave(20)),
        dict(name="chat-reasoning", what="chat stream: 4 reasoning_content events, then 5 content events",
             backend="sglang-oai-chat", server={"events": 9, "reasoning_events": 4}, args=wave(9)),
        dict(name="usage-last",
             what="a last chunk with an empty text choice and usage, always sent; the server stops at 4 of 5",
             backend="sglang-oai", server={"usage": "last_text_chunk", "stop_after": 4}, args=WAVE),
        dict(name="chat-usage-last", what="as usage-last, on the chat API", backend="sglang-oai-chat",
             server={"usage": "last_text_chunk", "stop_after": 4}, args=WAVE),
        dict(name="error-midstream", what="an error event after 2 text events (every other request)",
             backend="sglang-oai", server={"fault": "error_midstream"}, args=WAVE, expect_faults=True),
        dict(name="error-midstream-native", what="as error-midstream, on native /generate",
             backend="sglang", server={"fault": "error_midstream"}, args=WAVE, expect_faults=True),
        dict(name="no-done", what="the stream ends without data: [DONE]", backend="sglang-oai",
             server={"done": False}, args=WAVE),
        dict(name="json-answer",
             what="a 200 application/json answer (not SSE) to a streamed request, 100 ms after it was read",
             backend="sglang-oai", server={"json_answer": True}, args=WAVE),
        dict(name="stall",
             what="a 1.25 s stall after the 2nd event, default settings (sglang has no --timeout flag: "
                  "its only limit is aiohttp's 6 h total, so both tools must wait it out)",
             backend="sglang-oai", server={"stall_after": 2, "stall_ms": 1250.0}, args=WAVE),
        dict(name="dropped", what="the server reads the request, waits 300 ms, closes (every other request)",
             backend="sglang-oai", server={"fault": "drop"}, args=WAVE, expect_faults=True),
    ]
    for seed in (1, 42):
        s.append(dict(
            name=f"sharegpt-s{seed}", what=f"ShareGPT, 40 conversations, seed {seed}", backend="sglang",
            server=FAST,
            args=["--dataset-name", "sharegpt", "--dataset-path", SHAREGPT, "--num-prompts", "40",
                  "--max-concurrency", "8", "--seed", str(seed)]))
    for inp, out, ratio in ((3500, 1500, 0.7), (5600, 1400, 0.8), (1024, 1024, 0.5)):
        for seed in (0, 1, 42):
            s.append(dict(
                name=f"random-{inp}-{out}-r{ratio}-s{seed}",
                what=f"random lengths, {inp}/{out} ratio {ratio}, seed {seed}", backend="sglang", server=FAST,
                args=["--dataset-name", "random", "--dataset-path", SHAREGPT, "--random-input-len", str(inp),
                      "--random-output-len", str(out), "--random-range-ratio", str(ratio),
                      "--num-prompts", "8", "--max-concurrency", "8", "--seed", str(seed)]))
    for seed in (1, 42):
        s.append(dict(
            name=f"arrivals-r8-s{seed}",
            what=f"--request-rate 8, seed {seed}: the same send offsets (NumPy's stream after the length draws)",
            backend="sglang", server=FAST, check_arrivals=True,
            args=["--dataset-name", "random", "--dataset-path", SHAREGPT, "--random-input-len", "256",
                  "--random-output-len", "8", "--random-range-ratio", "0.5", "--num-prompts", "12",
                  "--request-rate", "8", "--seed", str(seed)]))
    return s


SCENARIOS = _scenarios()
