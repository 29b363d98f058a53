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
# shellcheck source=bench/gpu_sglang_env.sh
. bench/gpu_sglang_env.sh
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
