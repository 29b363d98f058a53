#!/usr/bin/env bash
# Per-chunk user-space instructions and simulated L1-data misses of clients on the paced closed case
# (bench/README.md, issue 15: default-preset simulator on core 0, client on core 1, 1,000 requests x 64-token
# prompts, concurrency 256), under cachegrind: each client runs twice, with 64-token and with 1-token outputs, and
# bench/cg_per_chunk.py takes the difference (fixed costs cancel) per chunk. Counts, not times: this VM's noise
# (+-10% CPU-s round to round) does not move them. Valgrind slows the client ~50x; at this pacing it still reads
# each event by its own receive (the receive call's instructions per chunk stay those of one call).
#   BIN=DIR bash bench/cachegrind_per_chunk.sh raw NAME...   # BIN/servebench-NAME (a `--profile profiling`
#                                                              # build names the functions) and BIN/raw-reader
# Env: TOKENIZER, SHAREGPT, TOP (functions listed, 12). Needs valgrind. Writes DIR/cg_NAME_{64,1}.out.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
OUTDIR=${OUTDIR:-$(mktemp -d)}
mkdir -p "$OUTDIR"
for who in "$@"; do
  for out in 64 1; do
    OUT=$out
    (
      . "$HERE/paced_case.sh"
      start_sim
      client_cmd "$who"
      taskset -c 1 valgrind --tool=cachegrind --cache-sim=yes \
        --cachegrind-out-file="$OUTDIR/cg_${who}_$out.out" "${CMD[@]}" > "$OUTDIR/cg_${who}_$out.log" 2>&1 || true
      stop_sim
    )
  done
  echo "== $who"
  python3 "$HERE/cg_per_chunk.py" "$OUTDIR/cg_${who}_64.out" "$OUTDIR/cg_${who}_1.out" $((1000 * 63)) "${TOP:-12}"
done
echo "cachegrind outputs: $OUTDIR"
