#!/usr/bin/env bash
# The simulator's own ceiling: `servebench sim --preset firehose` on core 0, the raw reader (bench/raw-reader) on
# core 1, the ceiling workload of sbbench.py (/v1/completions, ~32-token prompts, 256-token outputs, ignore_eos,
# one text chunk per token). Uses sbbench.py's one_run, so chunks, windows and CPU are counted exactly as in
# `sbbench.py ceiling` (chunks from the simulator's ground truth, CPU from /proc; others' CPU from /proc/stat).
#
#   bench/sim_ceiling.sh OUT_DIR [RUNS] [CONCURRENCY_LIST] [extra `servebench sim` flags...]
#   e.g. bench/sim_ceiling.sh /tmp/simspeed/after 3 1,64,256,1024,4096
#        SERVEBENCH=/tmp/sb-before bench/sim_ceiling.sh /tmp/simspeed/before 3 1,64 --chunks-per-write 1
#
# Env: SERVEBENCH, RAW_READER, SIM_CORE, CLIENT_CORE, QUIET_CORES, QUIET_WAIT_S as for sbbench.py;
# SECONDS_PER_RUN (default 3) and RATE_GUESS (chunks/s, default 4000000) set the request count (at least 2x
# concurrency). The simulator keeps 8M chunk times by default (--trace-chunk-budget): a run with more chunks would
# lose its oldest traces and undercount, so the script raises --trace-capacity/--trace-chunk-budget to fit the run;
# MAX_OTHERS (default 15): a run during which other processes used more than this % of a core is repeated, up to
# TRIES (default 3) times; the table keeps the last try of each run.
# Appends one JSON line per try to OUT_DIR/sim_ceiling.jsonl and prints the table of medians (min-max).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:?usage: bench/sim_ceiling.sh OUT_DIR [RUNS] [CONCURRENCY_LIST] [sim flags...]}
RUNS=${2:-3}
CONC=${3:-1,64,256,1024,4096}
shift $(( $# < 3 ? $# : 3 ))
mkdir -p "$OUT"
python3 - "$OUT" "$RUNS" "$CONC" "$@" <<'EOF'
import json, os, statistics, sys
sys.path.insert(0, "bench")
import sbbench as sb

out, runs, conc = sys.argv[1], int(sys.argv[2]), [int(c) for c in sys.argv[3].split(",")]
extra = sys.argv[4:]
res = os.path.join(out, "sim_ceiling.jsonl")
seconds = float(os.environ.get("SECONDS_PER_RUN", "3"))
rate_guess = float(os.environ.get("RATE_GUESS", "4000000"))
max_others = float(os.environ.get("MAX_OTHERS", "15"))
tries = int(os.environ.get("TRIES", "3"))
sb.raise_nofile()
recs = []
for run_idx in range(runs):
    for c in conc:
        n = max(2 * c, int(rate_guess * seconds / 256), 4)
        fit = ["--trace-capacity", str(n + 1000), "--trace-chunk-budget", str((n + 1000) * 256)]
        for t in range(tries):
            rec = sb.one_run("sim_ceiling", "raw", c, n, 32, 256, out, run_idx, "firehose", sim_extra=fit + extra)
            rec["sim_binary"] = sb.SERVEBENCH
            rec["try"] = t
            sb.append(res, rec)
            sb.summarize_line(rec)
            if (rec.get("others_cpu_pct") or 0) <= max_others:
                break
        recs.append(rec)

def cell(vals, fmt):
    vals = [v for v in vals if v is not None]
    if not vals:
        return "-"
    return f"{fmt(statistics.median(vals))} ({fmt(min(vals))}–{fmt(max(vals))})"

big = lambda v: f"{v:,.0f}"
pct = lambda v: f"{v:.0f}"
print()
print(f"sim flags: {' '.join(extra) or '(preset defaults)'}; binary {sb.SERVEBENCH}")
print("| conc | sim chunks/s | sim chunks/CPU-s | sim CPU % | raw-reader CPU % | others CPU % (max) | runs |")
print("|---|---|---|---|---|---|---|")
for c in conc:
    rs = [r for r in recs if r["concurrency"] == c and r.get("chunks_per_s")]
    others = [r["others_cpu_pct"] for r in rs if r.get("others_cpu_pct") is not None]
    print(f"| {c} | {cell([r['chunks_per_s'] for r in rs], big)} | "
          f"{cell([r.get('sim_chunks_per_cpu_s') for r in rs], big)} | {cell([r.get('sim_cpu_pct') for r in rs], pct)} | "
          f"{cell([r.get('client_cpu_pct') for r in rs], pct)} | {max(others, default=float('nan')):.0f} | {len(rs)} |")
EOF
