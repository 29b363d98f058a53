#!/usr/bin/env bash
# System calls and event-loop wake-ups per streamed chunk, servebench beside the raw reader (issue 15).
# Counts do not depend on machine noise the way CPU seconds do. Paced closed case of bench/README.md:
# default-preset simulator on core 0, client on core 1, 1,000 requests x 64-token prompts x 256 output tokens,
# concurrency 256. Needs strace.
#   BIN=DIR bash bench/results/2026-12-06-session5/wakeups.sh   # DIR holds servebench-new, raw-reader
# Columns: receive calls (recvmsg/recvfrom) and epoll_wait calls per chunk; futex and write calls in all.
# Env: CLIENTS (default "new raw"; any servebench-NAME in BIN, or raw), OUT (output tokens, 256),
#      TOKENIZER, SHAREGPT.
set -euo pipefail
BIN=${BIN:?BIN=dir with servebench-new and raw-reader}
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
printf '%-12s %10s %10s %12s %12s %10s %10s\n' client chunks recv_calls recv/chunk epoll/chunk futex write
for c in ${CLIENTS:-new raw}; do
  PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  taskset -c 0 "$BIN/servebench-new" sim --preset default --port "$PORT" --tokenizer heuristic > "$D/sim.log" 2>&1 &
  SIM=$!
  for _ in $(seq 50); do curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && break; sleep 0.1; done
  if [ "$c" = raw ]; then
    cmd=("$BIN/raw-reader" --url "http://127.0.0.1:$PORT/v1/completions" --body-file "$D/body.json"
         --concurrency 256 --requests 1000)
  else
    cmd=("$BIN/servebench-$c" bench --backend vllm --base-url "http://127.0.0.1:$PORT" --model servebench-sim
         --tokenizer "$TOK" --dataset-name random --dataset-path "$SHAREGPT" --random-input-len 64
         --random-output-len "$OUTLEN" --random-range-ratio 1 --num-prompts 1000 --max-concurrency 256
         --output-file "$D/res.jsonl" --disable-tqdm --json)
  fi
  taskset -c 1 strace -f -c -o "$D/strace.txt" -- "${cmd[@]}" > "$D/client.log" 2>&1
  kill "$SIM" 2>/dev/null || true
  wait "$SIM" 2>/dev/null || true
  chunks=$((1000 * OUTLEN))
  recv=$(awk '$NF=="recvmsg"||$NF=="recvfrom" {n+=$4} END {print n+0}' "$D/strace.txt")
  epoll=$(awk '$NF=="epoll_wait" {print $4}' "$D/strace.txt")
  futex=$(awk '$NF=="futex" {print $4}' "$D/strace.txt")
  writes=$(awk '$NF=="write" {print $4}' "$D/strace.txt")
  printf '%-12s %10d %10d %12.3f %12.4f %10s %10s\n' "$c" "$chunks" "$recv" "$(echo "$recv/$chunks" | bc -l)" \
    "$(echo "${epoll:-0}/$chunks" | bc -l)" "${futex:-0}" "${writes:-0}"
done
