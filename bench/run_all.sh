#!/usr/bin/env bash
# The whole measurement of bench/README.md: builds, then ceiling, fidelity, scale and large contexts, then tables.
#   bench/run_all.sh [OUT_DIR]        (default /tmp/sbb-YYYYmmdd-HHMM; about 30 minutes on 2 cores)
# Needs: 2+ cores (the simulator runs on core $SIM_CORE, clients on $CLIENT_CORE), python3, taskset,
# /usr/bin/time, and for the peer column sglang 0.5.9 in $SGL_PYTHON (default /tmp/sgl/bin/python):
#   python3 -m venv /tmp/sgl && /tmp/sgl/bin/pip install --no-deps sglang==0.5.9 &&
#   /tmp/sgl/bin/pip install aiohttp numpy tqdm requests transformers pybase64 IPython datasets pillow
# Env: RUNS (default 3), SKIP_BUILD=1, and those of bench/sbbench.py (TOKENIZER, SHAREGPT, SERVEBENCH, ...).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-/tmp/sbb-$(date +%Y%m%d-%H%M)}
RUNS=${RUNS:-3}
mkdir -p "$OUT"
if [ -z "${SKIP_BUILD:-}" ]; then
  cargo build --release --bin servebench
  (cd bench/raw-reader && CARGO_TARGET_DIR=../../target/raw-reader cargo build --release)
fi
ulimit -n "$(ulimit -Hn)"
{ echo "## Machine"; uptime; nproc; target/release/servebench env; git rev-parse HEAD; git status --short | wc -l; } > "$OUT/env.txt" 2>&1
P=(python3 bench/sbbench.py)
"${P[@]}" ceiling  --out "$OUT" --runs "$RUNS"
"${P[@]}" fidelity --out "$OUT" --runs "$RUNS" --clients servebench,raw
mkdir -p "$OUT/readts"
SB_BENCH_EXTRA=--read-timestamps "${P[@]}" fidelity --out "$OUT/readts" --runs "$RUNS" --clients servebench --conc 256,1024
"${P[@]}" fidelity --out "$OUT" --runs "$RUNS" --open-loop --clients servebench
"${P[@]}" scale    --out "$OUT" --runs "$RUNS" --stream-levels 1000,10000
"${P[@]}" scale    --out "$OUT" --runs 1 --clients sglang --stream-levels 10000
"${P[@]}" large    --out "$OUT" --runs "$RUNS" --only prompt --event-requests 64
"${P[@]}" large    --out "$OUT" --runs "$RUNS" --only event --file large_event.jsonl
"${P[@]}" table "$OUT"/readts/fidelity.jsonl | tee "$OUT/tables-readts.md"
"${P[@]}" table "$OUT"/ceiling.jsonl "$OUT"/fidelity.jsonl "$OUT"/fidelity_open.jsonl "$OUT"/scale.jsonl "$OUT"/large.jsonl "$OUT"/large_event.jsonl | tee "$OUT/tables.md"
