#!/usr/bin/env bash
# servebench and sglang.bench_serving side by side against a real engine (`transformers serve` on one GPU).
# Runs on the device machine from the repo root, with `.rig` carried (bench/README.md, "Real GPU engine", says how
# to fill it: the rig from ../shared/rig, its wheels in .rig/whl, sglang's wheels in .rig/sgl, a stripped
# servebench as .rig/servebench, the ShareGPT file as .rig/sharegpt.json).
#   bash bench/gpu_compare.sh            # writes under $OUT (default /tmp/gpu-out)
# Env: DEADLINE_S (default 525: points that would not fit are skipped), POINTS ("conc:num_prompts ..."),
#      BASE_URL (default http://127.0.0.1:8000; set it to skip starting the engine, e.g. to test against
#      `servebench sim --strict-openai --port 8000`), MODEL (default /tmp/model), SB, SGL_PY.
set -u
T0=$(date +%s)
DEADLINE_S=${DEADLINE_S:-525}
OUT=${OUT:-/tmp/gpu-out}
mkdir -p "$OUT"
LOG=$OUT/run.log
POINTS=${POINTS:-"1:2 16:16 64:64 256:256"}
SB=${SB:-.rig/servebench}
SGL_PY=${SGL_PY:-python3}
MODEL=${MODEL:-/tmp/model}
DATA=${DATA:-.rig/sharegpt.json}
left() { echo $(( DEADLINE_S - ($(date +%s) - T0) )); }
say() { echo "[$(( $(date +%s) - T0 ))s] $*" | tee -a "$LOG"; }

if [ -z "${BASE_URL:-}" ]; then
  BASE_URL=http://127.0.0.1:8000
  say "starting transformers serve"
  bash .rig/gpu_serve.sh >> "$LOG" 2>&1 || { say "engine did not start"; tail -50 "$OUT/serve.log"; exit 1; }
  export PYTHONPATH=/tmp/site
fi
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 TRANSFORMERS_OFFLINE=1
if [ "$SGL_PY" = python3 ] && ls .rig/sgl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/sgl-site \
    .rig/sgl/*.whl >> "$LOG" 2>&1
  export PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}/tmp/sgl-site
fi
SGL_IMPORT='import sglang.bench_serving, aiohttp; print("ok, aiohttp", aiohttp.__version__)'
if ! $SGL_PY -c "$SGL_IMPORT" >> "$LOG" 2>&1; then
  # Last resort: bench_serving imports `datasets` (only for MMMU) and sglang.utils imports IPython.display (only for
  # notebooks) at module level; neither is used by a random-dataset run. Stand-ins that fail if ever called.
  mkdir -p /tmp/sgl-stub/datasets /tmp/sgl-stub/IPython
  echo 'def load_dataset(*a, **k): raise RuntimeError("datasets stand-in: not installed")' > /tmp/sgl-stub/datasets/__init__.py
  : > /tmp/sgl-stub/IPython/__init__.py
  printf 'def display(*a, **k): raise RuntimeError("IPython stand-in")\nclass HTML:\n    def __init__(self, *a, **k): raise RuntimeError("IPython stand-in")\n' > /tmp/sgl-stub/IPython/display.py
  export PYTHONPATH=$PYTHONPATH:/tmp/sgl-stub
  say "sglang import failed with the wheels; using stand-ins for datasets/IPython (see run.log)"
fi
say "sglang import: $($SGL_PY -c "$SGL_IMPORT" 2>&1 | tail -1)"
"$SB" env --json > "$OUT/env.json" 2>> "$LOG"
{ nvidia-smi; python3 -c 'import transformers, torch; print("transformers", transformers.__version__, "torch", torch.__version__)'; } >> "$LOG" 2>&1

# transformers serve answers 422 to fields outside the OpenAI schema; sglang 0.5.9 always sends ignore_eos.
code=$(curl -s -o /dev/null -w '%{http_code}' "$BASE_URL/v1/completions" -H 'Content-Type: application/json' \
  -d "{\"model\":\"$MODEL\",\"prompt\":\"hi\",\"max_tokens\":1,\"ignore_eos\":false}")
if [ "$code" = 422 ]; then
  SGL=("$SGL_PY" bench/sglang_bench_strict.py); say "server rejects ignore_eos (422): sglang runs through bench/sglang_bench_strict.py"
else
  SGL=("$SGL_PY" -m sglang.bench_serving); say "server accepts ignore_eos (HTTP $code): plain sglang.bench_serving"
fi

COMMON=(--backend vllm --base-url "$BASE_URL" --model "$MODEL" --tokenizer "$MODEL" --disable-ignore-eos
        --dataset-name random --dataset-path "$DATA" --random-input-len 1024 --random-range-ratio 1 --disable-tqdm)

# Untimed engine warm-up (first batches allocate caches).
timeout 60 "$SB" bench "${COMMON[@]}" --num-prompts 8 --max-concurrency 8 --random-output-len 16 \
  --output-file /tmp/warm.jsonl >> "$LOG" 2>&1; say "engine warm-up done (rc $?)"

# Rough engine rates (output tok/s) to skip points that cannot finish in time.
rate() { case $1 in 1) echo 33;; 16) echo 230;; 64) echo 470;; *) echo 700;; esac; }
for p in $POINTS; do
  c=${p%%:*}; n=${p##*:}
  need=$(( 2 * n * 256 / $(rate "$c") + 40 ))
  if [ "$(left)" -lt "$need" ]; then say "skip c=$c n=$n: needs ~${need}s, $(left)s left"; continue; fi
  say "servebench c=$c n=$n"
  timeout $(( $(left) - 5 )) "$SB" bench "${COMMON[@]}" --random-output-len 256 --num-prompts "$n" --max-concurrency "$c" \
    --output-file "$OUT/servebench.jsonl" --output-details --tag "gpu-c$c" >> "$LOG" 2>&1
  say "servebench c=$c rc=$?"
  [ "$(left)" -lt 20 ] && { say "out of time"; break; }
  say "sglang c=$c n=$n"
  timeout $(( $(left) - 5 )) "${SGL[@]}" "${COMMON[@]}" --random-output-len 256 --num-prompts "$n" --max-concurrency "$c" \
    --output-file "$OUT/sglang.jsonl" --output-details >> "$LOG" 2>&1
  say "sglang c=$c rc=$?"
done
python3 bench/sbbench.py gpu-table "$OUT/servebench.jsonl" "$OUT/sglang.jsonl" > "$OUT/table.md" 2>> "$LOG"
cat "$OUT/table.md"
say "done"
