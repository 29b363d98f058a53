# Sourced by bench/paced_ab.sh, bench/cachegrind_per_chunk.sh and results/2026-12-06-session5/wakeups.sh: the
# paced closed case of bench/README.md (issue 15), set up once.
# Needs BIN (servebench-NAME binaries and raw-reader). Env: TOKENIZER, SHAREGPT, OUT (output tokens, 256).
# Gives: D (a temporary folder, removed at exit), OUTLEN, start_sim / stop_sim (PORT, SIM: the default-preset
# simulator BIN/servebench-new on core 0), client_cmd NAME (the array CMD: raw-reader for "raw", else
# BIN/servebench-NAME bench with 1,000 requests x 64-token prompts x OUTLEN output tokens at concurrency 256).
BIN=${BIN:?BIN=dir with servebench-NAME binaries and raw-reader}
TOK=${TOKENIZER:-/work/shared/tokenizers/qwen2}
SHAREGPT=${SHAREGPT:-/work/shared/datasets/sharegpt/sharegpt_v3_first1500.json}
OUTLEN=${OUT:-256}
D=$(mktemp -d)
trap 'rm -rf "$D"' EXIT
# The raw reader's request: about 64 tokens of prompt, OUTLEN tokens out, streamed.
python3 - "$D/body.json" "$OUTLEN" <<'PY'
import json, sys
p = " ".join(["The quick brown fox jumps over the lazy dog."] * 6)
json.dump({"model": "servebench-sim", "prompt": p, "max_tokens": int(sys.argv[2]), "stream": True,
           "ignore_eos": True, "temperature": 0.0}, open(sys.argv[1], "w"))
PY

start_sim() {
  PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  taskset -c 0 "$BIN/servebench-new" sim --preset default --port "$PORT" --tokenizer heuristic > "$D/sim.log" 2>&1 &
  SIM=$!
  for _ in $(seq 50); do curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && break; sleep 0.1; done
}

stop_sim() {
  kill "$SIM" 2>/dev/null || true
  wait "$SIM" 2>/dev/null || true
}

client_cmd() {
  if [ "$1" = raw ]; then
    CMD=("$BIN/raw-reader" --url "http://127.0.0.1:$PORT/v1/completions" --body-file "$D/body.json"
         --concurrency 256 --requests 1000)
  else
    CMD=("$BIN/servebench-$1" bench --backend vllm --base-url "http://127.0.0.1:$PORT" --model servebench-sim
         --tokenizer "$TOK" --dataset-name random --dataset-path "$SHAREGPT" --random-input-len 64
         --random-output-len "$OUTLEN" --random-range-ratio 1 --num-prompts 1000 --max-concurrency 256
         --output-file "$D/res.jsonl" --disable-tqdm --json)
  fi
}
