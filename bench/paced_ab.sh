#!/usr/bin/env bash
# Quick side-by-side of the paced closed case (bench/README.md's issue-15 case: default-preset simulator on core 0,
# client on core 1, 1,000 requests x 64-token prompts x 256 output tokens, concurrency 256). Each round runs every
# client once, the order rotated by round; one line per run: "round N CLIENT user U sys S" (/usr/bin/time).
#   BIN=DIR ROUNDS=4 bash bench/paced_ab.sh base new raw     # BIN holds servebench-NAME for each NAME, and raw-reader
# Env: TOKENIZER, SHAREGPT, OUT (output tokens, 256). The simulator is BIN/servebench-new.
set -euo pipefail
ROUNDS=${ROUNDS:-4}
. "$(dirname "$0")/paced_case.sh"
one() {
  start_sim
  client_cmd "$1"
  /usr/bin/time -f "user %U sys %S" -o "$D/time" taskset -c 1 "${CMD[@]}" > "$D/client.log" 2>&1
  stop_sim
  echo "$1 $(tail -1 "$D/time")"
}
clients=("$@")
for r in $(seq "$ROUNDS"); do
  clients=("${clients[@]:1}" "${clients[0]}")   # rotate
  for c in "${clients[@]}"; do
    echo "round $r $(one "$c")"
  done
done
