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
. "$(dirname "$0")/../../paced_case.sh"
printf '%-12s %10s %10s %12s %12s %10s %10s\n' client chunks recv_calls recv/chunk epoll/chunk futex write
for c in ${CLIENTS:-new raw}; do
  start_sim
  client_cmd "$c"
  taskset -c 1 strace -f -c -o "$D/strace.txt" -- "${CMD[@]}" > "$D/client.log" 2>&1
  stop_sim
  chunks=$((1000 * OUTLEN))
  recv=$(awk '$NF=="recvmsg"||$NF=="recvfrom" {n+=$4} END {print n+0}' "$D/strace.txt")
  epoll=$(awk '$NF=="epoll_wait" {print $4}' "$D/strace.txt")
  futex=$(awk '$NF=="futex" {print $4}' "$D/strace.txt")
  writes=$(awk '$NF=="write" {print $4}' "$D/strace.txt")
  printf '%-12s %10d %10d %12.3f %12.4f %10s %10s\n' "$c" "$chunks" "$recv" "$(echo "$recv/$chunks" | bc -l)" \
    "$(echo "${epoll:-0}/$chunks" | bc -l)" "${futex:-0}" "${writes:-0}"
done
