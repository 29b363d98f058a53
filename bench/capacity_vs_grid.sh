#!/usr/bin/env bash
# Capacity search against the full grid on a simulated engine with a max-running-requests limit.
#
# The simulator (`default` preset: a mid-size model on one GPU, TPOT ~9-15 ms) runs at most MAX_RUNNING
# requests at a time, like sglang's --max-running-requests; above that, requests queue and miss the TTFT
# limit. The grid is the seed's concurrency list; the search brackets and bisects. Both use the same
# prompts per run and SLO; the table gives runs, GPU-seconds (duration x GPUS) and the knee found.
#
# Usage: bench/capacity_vs_grid.sh [OUT_DIR, default bench/out/capacity_vs_grid]   (env: SB, MAX_RUNNING, GRID, SLO, GPUS, IN, OUTLEN)
set -euo pipefail
cd "$(dirname "$0")/.."
SB=${SB:-target/debug/servebench}
OUT=${1:-bench/out/capacity_vs_grid}
MAX_RUNNING=${MAX_RUNNING:-32}
GRID=${GRID:-1,4,8,16,32,64,80,128,256,350,512}
SLO=${SLO:-ttft_ms=500}
GPUS=${GPUS:-8}
IN=${IN:-256}
OUTLEN=${OUTLEN:-64}
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
rm -rf "$OUT"; mkdir -p "$OUT"
"$SB" sim --preset default --max-running "$MAX_RUNNING" --port "$PORT" >"$OUT/sim.log" 2>&1 &
SIM=$!
trap 'kill $SIM 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/v1/models" >/dev/null && break; sleep 0.1; done
common=(--base-url "http://127.0.0.1:$PORT" --backend sglang-oai --dataset-name random
  --random-input-len "$IN" --random-output-len "$OUTLEN" --random-range-ratio 1
  --slo "$SLO" --prompts-per-load 2 --min-prompts 8 --gpus "$GPUS" --metrics-interval 0.25 --json)
"$SB" capacity "${common[@]}" --grid "$GRID" --output-dir "$OUT/grid" >"$OUT/grid.json"
"$SB" capacity "${common[@]}" --output-dir "$OUT/search" >"$OUT/search.json"
python3 - "$OUT" "$MAX_RUNNING" "$SLO" <<'PY'
import json, sys
out, mr, slo = sys.argv[1:]
g, s = (json.load(open(f"{out}/{m}.json")) for m in ("grid", "search"))
print(f"simulator: default preset, max_running {mr}; SLO {slo} for 99% of requests")
print("| mode | runs | loads run | GPU-seconds | knee (capacity) | first failing | stopped |")
print("|---|---:|---|---:|---:|---:|---|")
for name, r in (("grid", g), ("search", s)):
    loads = ",".join(f"{x['load']:g}" for x in r["run_log"])
    print(f"| {name} | {r['runs']} | {loads} | {r['gpu_seconds']:.1f} | {r['capacity']} | {r['first_failing']} | {r['stopped']} |")
print(f"search / grid GPU time: {s['gpu_seconds'] / g['gpu_seconds']:.1%}")
PY
