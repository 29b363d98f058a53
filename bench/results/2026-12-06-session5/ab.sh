#!/usr/bin/env bash
# Quick side-by-side of the paced closed case (bench/README.md's issue-15 case: default-preset simulator on core 0,
# client on core 1, 1,000 requests x 64-token prompts x 256 output tokens, concurrency 256). Each round runs every
# client once, the order rotated by round; one line per run: "round N CLIENT user U sys S" (/usr/bin/time).
#   BIN=DIR ROUNDS=4 bash ab.sh base new raw     # BIN holds servebench-NAME for each NAME, and raw-reader
# Env: TOKENIZER, SHAREGPT, OUT (output tokens, 256). The simulator is BIN/servebench-new.
set -euo pipefail
BIN=${BIN:?BIN=dir with servebench-NAME binaries and raw-reader}
ROUNDS=${ROUNDS:-4}
TOK=${TOKENIZER:-/work/shared/tokenizers/qwen2}
SHAREGPT=${SHAREGPT:-/work/shared/datasets/sharegpt/sharegpt_v3_first1500.json}
OUTLEN=${OUT:-256}
D=$(mktemp -d)
trap 'rm -rf "$D"' EXIT
python3 - "$D/body.json" "$OUTLEN" <<'PY'
import json, sys
p = " ".join(["The quick brown fox jumps over the lazy dog."] * 6)
json.dump({"model": "servebench-sim", "prompt": p, "max_tokens": int(sys.argv[2]), "stream": True,
           "ignore_eos": True, "temperature": 0.0}, open(sys.argv[1], "w"))
PY
one() {
  local c=$1 port sim
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  taskset -c 0 "$BIN/servebench-new" sim --preset default --port "$port" --tokenizer heuristic > "$D/sim.log" 2>&1 &
  sim=$!
  for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.1; done
  if [ "$c" = raw ]; then
    /usr/bin/time -f "user %U sys %S" -o "$D/time" taskset -c 1 "$BIN/raw-reader" \
      --url "http://127.0.0.1:$port/v1/completions" --body-file "$D/body.json" --concurrency 256 --requests 1000 \
      > "$D/client.log" 2>&1
  else
    /usr/bin/time -f "user %U sys %S" -o "$D/time" taskset -c 1 "$BIN/servebench-$c" bench --backend vllm \
      --base-url "http://127.0.0.1:$port" --model servebench-sim --tokenizer "$TOK" --dataset-name random \
      --dataset-path "$SHAREGPT" --random-input-len 64 --random-output-len "$OUTLEN" --random-range-ratio 1 \
      --num-prompts 1000 --max-concurrency 256 --output-file "$D/res.jsonl" --disable-tqdm --json \
      > "$D/client.log" 2>&1
  fi
  kill "$sim" 2>/dev/null || true
  wait "$sim" 2>/dev/null || true
  echo "$c $(tail -1 "$D/time")"
}
clients=("$@")
for r in $(seq "$ROUNDS"); do
  clients=("${clients[@]:1}" "${clients[0]}")   # rotate
  for c in "${clients[@]}"; do
    echo "round $r $(one "$c")"
  done
done
