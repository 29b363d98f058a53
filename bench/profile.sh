#!/usr/bin/env bash
# Profile the servebench client with perf on one ceiling point against the fire-hose simulator.
#   bench/profile.sh [CONCURRENCY] [NUM_PROMPTS] [OUTPUT_LEN] [extra `servebench sim` flags...]
# Env: PERF_FREQ (default 999), PERF_CALLGRAPH (e.g. dwarf,16384; default: flat), BENCH_EXTRA (more bench flags).
# Writes /tmp/sbb-profile/{perf.data,report.txt,client.log}. Needs `perf` (Debian: linux-perf) and
# /proc/sys/kernel/perf_event_paranoid <= 2 (user-space sampling of your own processes).
set -euo pipefail
cd "$(dirname "$0")/.."
C=${1:-256}; N=${2:-4000}; OUT=${3:-256}
shift $(( $# < 3 ? $# : 3 ))
SB=${SERVEBENCH:-target/release/servebench}
TOK=${TOKENIZER:-/work/shared/tokenizers/qwen2}
SHAREGPT=${SHAREGPT:-/work/shared/datasets/sharegpt/sharegpt_v3_first1500.json}
D=${PROFILE_DIR:-/tmp/sbb-profile}; mkdir -p "$D"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
taskset -c 0 "$SB" sim --preset firehose --port "$PORT" --tokenizer heuristic "$@" > "$D/sim.log" 2>&1 &
SIM=$!
trap 'kill $SIM 2>/dev/null || true' EXIT
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && break; sleep 0.1; done
rm -f "$D/result.jsonl"
CG=()
[ -n "${PERF_CALLGRAPH:-}" ] && CG=(--call-graph "$PERF_CALLGRAPH")
# shellcheck disable=SC2086
taskset -c 1 perf record -F "${PERF_FREQ:-999}" "${CG[@]}" -o "$D/perf.data" -- "$SB" bench --backend vllm \
  --base-url "http://127.0.0.1:$PORT" --model servebench-sim --tokenizer "$TOK" --dataset-name random \
  --dataset-path "$SHAREGPT" --random-input-len 32 --random-output-len "$OUT" --random-range-ratio 1 \
  --num-prompts "$N" --max-concurrency "$C" --output-file "$D/result.jsonl" --disable-tqdm ${BENCH_EXTRA:-} \
  > "$D/client.log" 2>&1
perf report -i "$D/perf.data" --no-children --sort dso,symbol --stdio > "$D/report.txt" 2>/dev/null || true
grep -v '^#' "$D/report.txt" | grep -v '^$' | head -40 || true
