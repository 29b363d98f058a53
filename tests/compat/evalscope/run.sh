#!/usr/bin/env bash
# Differential suite: servebench's evalscope-0 and evalscope-1 GPQA protocols against the real evalscope code.
#
# - evalscope 1.14.1 is installed from PyPI into tests/compat/evalscope/.venv (git-ignored) and run for real
#   (run_task, its OpenAI-API model, its GPQA adapter and metric), unmodified.
# - evalscope 0.12.1's GPQA adapter, DataAdapter.gen_prompts, seed_everything and metric functions are loaded from its
#   PyPI wheel (downloaded with pip, unpacked under the run folder), with stand-ins only for modules a GPQA run
#   never calls for its numbers (see run_evalscope0.py).
# - All three talk to the same recording server on 127.0.0.1 (server.py), which answers each synthetic question
#   with the same scripted response (responses.py) whatever the tool and option order.
# - Data: tests/fixtures/eval/gpqa_synthetic.csv (40 invented questions in the GPQA CSV layout; no GPQA content).
# compare.py checks prompts byte for byte, option orders, extracted letters, verdicts and scores, and rewrites the
# expected values the cargo tests read (tests/fixtures/eval/evalscope_compat.json).
#
# Needs python3 (3.10+), PyPI access the first time, and cargo. Usage: tests/compat/evalscope/run.sh [RUN_DIR]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
runs="${1:-$(mktemp -d "${TMPDIR:-/tmp}/servebench-evalscope-compat.XXXXXX")}"
venv="$here/.venv"
csv="$repo/tests/fixtures/eval/gpqa_synthetic.csv"
mkdir -p "$runs"

if ! "$venv/bin/python" -c 'import evalscope, sys; sys.exit(evalscope.__version__ != "1.14.1")' 2>/dev/null; then
  python3 -m venv "$venv"
  start=$(date +%s)
  "$venv/bin/pip" install --quiet --disable-pip-version-check "evalscope==1.14.1"
  echo "installed evalscope 1.14.1 in $(( $(date +%s) - start )) s"
fi
py="$venv/bin/python"
if [ ! -d "$runs/evalscope-0.12.1/evalscope" ]; then
  "$venv/bin/pip" download --quiet --disable-pip-version-check --no-deps "evalscope==0.12.1" -d "$runs/wheel"
  "$py" -m zipfile -e "$runs/wheel/evalscope-0.12.1-py3-none-any.whl" "$runs/evalscope-0.12.1"
fi
(cd "$repo" && cargo build --quiet)
servebench="$repo/target/debug/servebench"

server_pid=""
start_server() {  # $1: record file
  rm -f "$runs/port"
  (cd "$here" && exec "$py" server.py --record "$1" --port-file "$runs/port") &
  server_pid=$!
  for _ in $(seq 100); do [ -s "$runs/port" ] && break; sleep 0.1; done
  port=$(cat "$runs/port")
}
stop_server() { kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; }
trap stop_server EXIT

run_servebench() {  # $1: protocol
  start_server "$runs/$1/servebench_requests.jsonl"
  "$servebench" eval --base-url "http://127.0.0.1:$port" --model recorded --datasets gpqa_diamond \
    --dataset-path "gpqa_diamond=$csv" --gpqa-protocol "$1" --max-tokens 256 --disable-stream --concurrency 4 \
    --retries 0 --output-dir "$runs/$1/servebench" --fresh --json > "$runs/$1/servebench_stdout.json"
  stop_server
}

for proto in evalscope-0 evalscope-1; do
  rm -rf "${runs:?}/$proto"
  mkdir -p "$runs/$proto"
done

start_server "$runs/evalscope-0/evalscope_requests.jsonl"
(cd "$here" && "$py" run_evalscope0.py --wheel-dir "$runs/evalscope-0.12.1" --csv "$csv" --port "$port" \
  --out "$runs/evalscope-0/evalscope.json") 2> "$runs/evalscope-0/evalscope.log"
stop_server
run_servebench evalscope-0

start_server "$runs/evalscope-1/evalscope_requests.jsonl"
(cd "$here" && "$py" run_evalscope1.py --csv "$csv" --port "$port" --work "$runs/evalscope-1/work" \
  --out "$runs/evalscope-1/evalscope.json") > "$runs/evalscope-1/evalscope.log" 2>&1
stop_server
run_servebench evalscope-1

"$py" "$here/compare.py" --csv "$csv" --runs "$runs" --fixture "$repo/tests/fixtures/eval/evalscope_compat.json"
echo "run folder: $runs"
