#!/usr/bin/env bash
# Fixed cost of a bench run: the paced case's command with 1-token outputs (startup, tokenizer, 1,000 prompts,
# 1,000 requests, results), whole-process user+sys from /usr/bin/time, client on core 1, simulator on core 0.
#   BIN=DIR (servebench-base, servebench-new, raw-reader) ROUNDS=5 bash fixed_cost.sh
set -euo pipefail
BIN=${BIN:?BIN=dir with servebench-base, servebench-new, raw-reader}
ROUNDS=${ROUNDS:-5}
TOK=${TOKENIZER:-/work/shared/tokenizers/qwen2}
SHAREGPT=${SHAREGPT:-/work/shared/datasets/sharegpt/sharegpt_v3_first1500.json}
PORT=${PORT:-18077}
taskset -c 0 "$BIN/servebench-new" sim --preset default --port "$PORT" --host 127.0.0.1 --tokenizer heuristic >/dev/null 2>&1 &
SIM=$!
trap 'kill $SIM' EXIT
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && break; sleep 0.1; done
BODY=$(mktemp)
python3 -c "import json,sys; print(json.dumps({'model':'servebench-sim','prompt':'The quick brown fox jumps over the lazy dog '*6,'max_tokens':1,'stream':True,'ignore_eos':True,'temperature':0.0}))" > "$BODY"
ARGS=(bench --backend vllm --base-url "http://127.0.0.1:$PORT" --model servebench-sim --tokenizer "$TOK"
  --dataset-name random --dataset-path "$SHAREGPT" --random-input-len 64 --random-output-len 1
  --random-range-ratio 1 --num-prompts 1000 --max-concurrency 256 --disable-tqdm --json --output-file /dev/null)
for r in $(seq "$ROUNDS"); do
  for who in base new raw; do
    if [[ $who == raw ]]; then
      /usr/bin/time -f "round=$r client=raw user=%U sys=%S" taskset -c 1 "$BIN/raw-reader" \
        --url "http://127.0.0.1:$PORT/v1/completions" --body-file "$BODY" --concurrency 256 --requests 1000 >/dev/null
    else
      /usr/bin/time -f "round=$r client=$who user=%U sys=%S" taskset -c 1 "$BIN/servebench-$who" "${ARGS[@]}" >/dev/null
    fi
  done
done 2>&1 | grep '^round='
