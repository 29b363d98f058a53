#!/usr/bin/env bash
# Run order, warm-up and "what each tool sends": servebench and sglang.bench_serving take turns against a real
# engine (`transformers serve --continuous-batching` on one GPU), after an untimed warm-up at each concurrency.
# Runs on the device machine from the repo root with `.rig` carried (bench/README.md, "Real GPU engine"), like
# bench/gpu_compare.sh, whose engine start and sglang install it repeats.
#   DEADLINE_S=545 bash bench/gpu_order.sh      # everything under $OUT (default /tmp/gpu-order)
#   python3 bench/sbbench.py gpu-order DIR       # tables, DIR = the unpacked order.tar.gz
#
# Plan (phases that would not fit before DEADLINE_S are skipped and logged):
#   warm16   servebench c=16, C16_N prompts, full output length: untimed engine warm-up at the measured shape
#   c=16     sb1 sgl1 sgl2 sb2 (ABBA), then the prompt swap: sbX = servebench sending sglang's prompts of sgl1
#            (custom dataset), sglX = sglang sending servebench's prompts (custom dataset)
#   warm1    servebench c=1, 2 prompts: untimed warm-up at batch size 1
#   c=1      sb1 sgl1 sgl2 sb2 (ABBA), C1_N prompts each
# PLAN=concurrent instead runs the two tools at the same time (c=C16_N/2 each, so the engine batches 16), twice,
# after the same warm-up: both see the same engine steps, so engine noise cancels and any difference between
# their numbers is the clients' own. A CPU-speed probe (a fixed Python loop every 0.5 s) runs beside both plans.
# Every run keeps its per-request records: servebench --details-file (prompt, send time, chunk times),
# sglang --output-details (ttfts, itls, generated texts) plus a trace of what sglang put on the wire (send time,
# prompt, body fields; bench/sglang_bench_strict.py's field drop included). Beside them: the engine's log, the
# engine process's per-thread CPU (/proc, every 0.5 s), GPU utilisation/clock/power (nvidia-smi, every 1 s), and
# server-side token counts of every prompt and output (the engine's own tokenizer, at the end).
# Env: PLAN (order | concurrent, default order), DEADLINE_S (default 545), BASE_URL (set it to skip the engine start, e.g. a local
#      `servebench sim --strict-openai`), MODEL (default /tmp/model), SB, SGL_PY, TOK_PY (python with
#      transformers, default python3), OUT_LEN (default 256), C16_N (default 16), C1_N (default 3).
set -u
T0=$(date +%s)
DEADLINE_S=${DEADLINE_S:-545}
OUT=${OUT:-/tmp/gpu-order}
W=${WORK_DIR:-/tmp/gpu-order-work}
rm -rf "$W"; mkdir -p "$OUT" "$W"
LOG=$OUT/run.log
SB=${SB:-.rig/servebench}
SGL_PY=${SGL_PY:-python3}
TOK_PY=${TOK_PY:-python3}
MODEL=${MODEL:-/tmp/model}
DATA=${DATA:-.rig/sharegpt.json}
OUT_LEN=${OUT_LEN:-256}
C16_N=${C16_N:-16}
C1_N=${C1_N:-3}
PLAN=${PLAN:-order}
left() { echo $(( DEADLINE_S - ($(date +%s) - T0) )); }
say() { echo "[$(( $(date +%s) - T0 ))s $(date +%s.%N | cut -c1-14)] $*" | tee -a "$LOG"; }

PIDS=()
pack() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  cp "$LOG" "$W/run.log" 2>/dev/null
  tar czf "$OUT/order.tar.gz" -C "$W" . 2>> "$LOG"
  ls -la "$W" >> "$LOG"
}
trap pack EXIT

if [ -z "${BASE_URL:-}" ]; then
  BASE_URL=http://127.0.0.1:8000
  say "starting transformers serve"
  OUT=$W bash .rig/gpu_serve.sh >> "$LOG" 2>&1 || { say "engine did not start"; tail -50 "$W/serve.log"; exit 1; }
  export PYTHONPATH=/tmp/site
  LOCAL=0
else
  LOCAL=1
fi
# shellcheck source=bench/gpu_sglang_env.sh
. bench/gpu_sglang_env.sh
"$SB" env --json > "$W/env.json" 2>> "$LOG"
{ nvidia-smi; python3 -c 'import transformers, torch; print("transformers", transformers.__version__, "torch", torch.__version__)'; } >> "$LOG" 2>&1
say "nvidia-smi before: $(nvidia-smi --query-gpu=name,driver_version,utilization.gpu,memory.used,clocks.sm,power.draw,temperature.gpu --format=csv,noheader 2>&1)"

code=$(curl -s -o /dev/null -w '%{http_code}' "$BASE_URL/v1/completions" -H 'Content-Type: application/json' \
  -d "{\"model\":\"$MODEL\",\"prompt\":\"hi\",\"max_tokens\":1,\"ignore_eos\":false}")
say "server answers HTTP $code to ignore_eos:false (sglang's field drop below is on either way)"

# sglang through a trace wrapper: bench/sglang_bench_strict.py's drop of `"ignore_eos": false`, plus one line per
# request with the wall-clock send time (when aiohttp's request starts: sglang's own `st` is taken just before,
# and its TTFT counts from there, TCP connect included), when the response headers came, and the body sent.
# `seq` is the order of sending: 0 is sglang's warm-up request (a copy of prompt 0 with at most 32 output
# tokens); then the timed requests in sglang's own order (its tasks start in order and each enters aiohttp at
# once), so timed request i is seq i+1. Lines are written when headers arrive, so sort by seq.
cat > "$W/sgl_trace.py" <<'EOF'
import json, os, runpy, sys, time
import aiohttp
TRACE = os.environ["GPU_ORDER_TRACE"]
_orig = aiohttp.ClientSession._request
_seq = [0]
async def _request(self, method, url, **kw):
    body = kw.get("json")
    if isinstance(body, dict) and body.get("ignore_eos") is False:
        body = dict(body); del body["ignore_eos"]; kw["json"] = body
    traced = isinstance(body, dict) and "prompt" in body
    t = time.time_ns(); seq = _seq[0]; _seq[0] += traced
    resp = await _orig(self, method, url, **kw)
    if traced:
        rec = {"seq": seq, "send_unix_ns": t, "headers_unix_ns": time.time_ns(), "status": resp.status,
               "body": {k: v for k, v in body.items() if k != "prompt"}, "prompt": body["prompt"]}
        with open(TRACE, "a") as f:
            f.write(json.dumps(rec) + "\n")
    return resp
aiohttp.ClientSession._request = _request
sys.argv = ["sglang.bench_serving", *sys.argv[1:]]
runpy.run_module("sglang.bench_serving", run_name="__main__", alter_sys=True)
EOF

# Monitors: the engine process's threads (CPU ticks) and machine-wide CPU, every 0.5 s; the GPU every 1 s.
cat > "$W/procmon.py" <<'EOF'
import json, os, sys, time
pid, path, period = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
prev = {}
with open(path, "w") as out:
    out.write(json.dumps({"pid": pid, "hz": os.sysconf("SC_CLK_TCK"), "ncpu": os.cpu_count()}) + "\n")
    while os.path.exists(f"/proc/{pid}"):
        t = time.time(); th = {}
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{tid}/stat") as f:
                    s = f.read()
                rest = s[s.rindex(")") + 2:].split()
                th[tid] = (s[s.index("(") + 1:s.rindex(")")], int(rest[11]) + int(rest[12]))
            except (OSError, ValueError):
                pass
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:9]]
        rec = {"t": round(t, 3), "busy": sum(v) - v[3] - v[4], "total": sum(v),
               "thr": {k: x for k, x in th.items() if prev.get(k) != x}}
        prev = th
        out.write(json.dumps(rec) + "\n"); out.flush()
        time.sleep(period)
EOF
PORT=${BASE_URL##*:}; PORT=${PORT%%/*}
SPID=$(ss -Hltnp "sport = :$PORT" 2>/dev/null | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2)
[ -z "$SPID" ] && [ "$LOCAL" = 0 ] && SPID=$(pgrep -f 'transformers serve' | head -1)
say "engine pid: ${SPID:-unknown}"
if [ -n "$SPID" ]; then python3 "$W/procmon.py" "$SPID" "$W/proc.jsonl" 0.5 & PIDS+=($!); fi
if command -v nvidia-smi >/dev/null; then
  ( while :; do echo "$(date +%s.%N | cut -c1-14),$(nvidia-smi --query-gpu=utilization.gpu,clocks.sm,power.draw,temperature.gpu,memory.used --format=csv,noheader,nounits)"; sleep 1; done > "$W/gpu.csv" ) & PIDS+=($!)
fi

BASE=(--backend vllm --base-url "$BASE_URL" --model "$MODEL" --tokenizer "$MODEL" --disable-ignore-eos --disable-tqdm)
RAND=(--dataset-name random --dataset-path "$DATA" --random-input-len 1024 --random-range-ratio 1
      --random-output-len "$OUT_LEN")
phase() { echo "{\"tag\":\"$1\",\"tool\":\"$2\",\"conc\":$3,\"n\":$4,\"prompts\":\"$5\",\"start\":$6,\"end\":$(date +%s.%N | cut -c1-14),\"rc\":$7}" >> "$W/phases.jsonl"; }
# est: rough seconds a run needs (engine ~190 tok/s at c=16, ~45 at c=1; sglang adds ~20 s of start-up).
fits() { if [ "$(left)" -lt "$1" ]; then say "skip $2: needs ~$1 s, $(left) s left"; return 1; fi; }
sb() {  # sb TAG CONC N PROMPTS [dataset args...]
  local tag=$1 c=$2 n=$3 pr=$4; shift 4
  local t=$(date +%s.%N | cut -c1-14)
  say "servebench $tag c=$c n=$n prompts=$pr"
  timeout $(( $(left) - 3 )) "$SB" bench "${BASE[@]}" "$@" --num-prompts "$n" --max-concurrency "$c" \
    --output-file "$W/sb-$tag.jsonl" --details-file "$W/sb-$tag.details.jsonl" --tag "$tag" > "$W/sb-$tag.log" 2>&1
  local rc=$?; phase "$tag" servebench "$c" "$n" "$pr" "$t" "$rc"; say "servebench $tag rc=$rc"
}
sgl() {  # sgl TAG CONC N PROMPTS [dataset args...]
  local tag=$1 c=$2 n=$3 pr=$4; shift 4
  local t=$(date +%s.%N | cut -c1-14)
  say "sglang $tag c=$c n=$n prompts=$pr"
  GPU_ORDER_TRACE="$W/sgl-$tag.trace.jsonl" timeout $(( $(left) - 3 )) $SGL_PY "$W/sgl_trace.py" "${BASE[@]}" "$@" \
    --num-prompts "$n" --max-concurrency "$c" --output-file "$W/sgl-$tag.jsonl" --output-details > "$W/sgl-$tag.log" 2>&1
  local rc=$?; phase "$tag" sglang "$c" "$n" "$pr" "$t" "$rc"; say "sglang $tag rc=$rc"
}
SB16=$(( C16_N * OUT_LEN / 190 + 8 )); SG16=$(( SB16 + 22 ))
SB1=$(( C1_N * OUT_LEN / 45 + 6 )); SG1=$(( SB1 + 22 ))

# CPU-speed probe: wall time of a fixed Python loop, every 0.5 s (host-side slowdowns show up here too).
cat > "$W/cpuprobe.py" <<'EOF'
import sys, time
with open(sys.argv[1], "w") as out:
    while True:
        t0 = time.perf_counter(); x = 0
        for i in range(200000):
            x += i * i
        out.write(f"{time.time():.3f},{(time.perf_counter() - t0) * 1000:.3f}\n"); out.flush()
        time.sleep(0.5)
EOF
python3 "$W/cpuprobe.py" "$W/cpuprobe.csv" & PIDS+=($!)

if [ "$PLAN" = concurrent ]; then
  # sglang first (it spends ~20 s starting); servebench starts once sglang's warm-up request is on the wire, so
  # both tools' timed requests begin within about a second of each other and share the engine's batches.
  both() {  # both TAG N
    local tag=$1 n=$2 t=$(date +%s.%N | cut -c1-14)
    say "both $tag: sglang and servebench at the same time, c=$n and n=$n each"
    GPU_ORDER_TRACE="$W/sgl-$tag.trace.jsonl" timeout $(( $(left) - 3 )) $SGL_PY "$W/sgl_trace.py" "${BASE[@]}" "${RAND[@]}" \
      --num-prompts "$n" --max-concurrency "$n" --output-file "$W/sgl-$tag.jsonl" --output-details > "$W/sgl-$tag.log" 2>&1 &
    local sp=$!
    for i in $(seq 1 600); do [ -s "$W/sgl-$tag.trace.jsonl" ] && break; kill -0 "$sp" 2>/dev/null || break; sleep 0.1; done
    sleep "${SB_DELAY:-0.5}"
    sb "$tag" "$n" "$n" servebench "${RAND[@]}"
    wait "$sp"; local rc=$?
    phase "$tag" sglang "$n" "$n" sglang "$t" "$rc"; say "sglang $tag rc=$rc"
  }
  H=$(( C16_N / 2 ))
  fits $(( SB16 + 2 * SG16 )) warm16 && sb warm16 16 "$C16_N" servebench "${RAND[@]}"
  fits "$SG16" both1 && both both1 "$H"
  fits "$SG16" both2 && both both2 "$H"
  say "nvidia-smi after: $(nvidia-smi --query-gpu=name,driver_version,utilization.gpu,memory.used,clocks.sm,power.draw,temperature.gpu --format=csv,noheader 2>&1)"
  say "done"
  exit 0
fi

# ---- concurrency 16
fits $(( SB16 + 2 * SB16 + 2 * SG16 )) warm16 && sb warm16 16 "$C16_N" servebench "${RAND[@]}"
fits $(( SB16 + 2 * SG16 )) c16-sb1 && sb c16-sb1 16 "$C16_N" servebench "${RAND[@]}"
fits $(( SG16 + SB16 )) c16-sgl1 && sgl c16-sgl1 16 "$C16_N" sglang "${RAND[@]}"
fits "$SG16" c16-sgl2 && sgl c16-sgl2 16 "$C16_N" sglang "${RAND[@]}"
fits "$SB16" c16-sb2 && sb c16-sb2 16 "$C16_N" servebench "${RAND[@]}"
# The prompt swap. sglang's prompts (from its trace; the first line is its warm-up, a copy of prompt 0) go to
# servebench as a custom JSONL; servebench's prompts (from its details) go to sglang as a custom JSONL.
python3 - "$W" "$OUT_LEN" <<'EOF'
import json, os, sys
w, out_len = sys.argv[1], int(sys.argv[2])
def lines(p):
    return [json.loads(l) for l in open(p)] if os.path.exists(p) else []
tr = sorted(lines(f"{w}/sgl-c16-sgl1.trace.jsonl"), key=lambda r: r["seq"])[1:]
with open(f"{w}/prompts-sglang.jsonl", "w") as f:
    for r in tr:
        f.write(json.dumps({"prompt": r["prompt"], "output_len": out_len}) + "\n")
det = sorted(lines(f"{w}/sb-c16-sb1.details.jsonl"), key=lambda r: r["index"])
with open(f"{w}/prompts-servebench.jsonl", "w") as f:
    for r in det:
        f.write(json.dumps({"conversations": [{"value": r["prompt"]}, {"value": "-"}]}) + "\n")
print(f"prompt swap files: {len(tr)} sglang prompts, {len(det)} servebench prompts")
EOF
[ -s "$W/prompts-sglang.jsonl" ] && fits $(( SB16 + SG16 )) c16-sbX && \
  sb c16-sbX 16 "$C16_N" sglang-prompts --dataset-name custom --dataset-path "$W/prompts-sglang.jsonl"
[ -s "$W/prompts-servebench.jsonl" ] && fits "$SG16" c16-sglX && \
  sgl c16-sglX 16 "$C16_N" servebench-prompts --dataset-name custom --dataset-path "$W/prompts-servebench.jsonl" \
    --sharegpt-output-len "$OUT_LEN"

# ---- concurrency 1
fits $(( 6 + 2 * SB1 + 2 * SG1 )) warm1 && sb warm1 1 2 servebench "${RAND[@]}"
fits $(( 2 * SB1 + 2 * SG1 )) c1-sb1 && sb c1-sb1 1 "$C1_N" servebench "${RAND[@]}"
fits $(( SG1 + SB1 )) c1-sgl1 && sgl c1-sgl1 1 "$C1_N" sglang "${RAND[@]}"
fits "$SG1" c1-sgl2 && sgl c1-sgl2 1 "$C1_N" sglang "${RAND[@]}"
fits "$SB1" c1-sb2 && sb c1-sb2 1 "$C1_N" servebench "${RAND[@]}"

say "nvidia-smi after: $(nvidia-smi --query-gpu=name,driver_version,utilization.gpu,memory.used,clocks.sm,power.draw,temperature.gpu --format=csv,noheader 2>&1)"
# Server-side token counts: every prompt and output through the engine's own tokenizer, as the engine calls it
# (`tokenizer(prompt)` for prompts; outputs without special tokens, as both tools retokenize).
if fits 12 tokcount; then
  timeout $(( $(left) - 2 )) $TOK_PY - "$W" "$MODEL" > "$W/tokcount.log" 2>&1 <<'EOF'
import glob, json, os, sys
from transformers import AutoTokenizer
w, model = sys.argv[1], sys.argv[2]
tok = AutoTokenizer.from_pretrained(model)
n_in = lambda s: len(tok(s)["input_ids"])
n_out = lambda s: len(tok.encode(s, add_special_tokens=False))
res = {}
for p in sorted(glob.glob(f"{w}/sb-*.details.jsonl")):
    tag = os.path.basename(p)[3:-len(".details.jsonl")]
    recs = sorted((json.loads(l) for l in open(p)), key=lambda r: r["index"])
    res[tag] = {"prompt_tokens_server": [n_in(r["prompt"]) for r in recs],
                "output_tokens_retok": [n_out(r.get("generated_text") or "") for r in recs]}
for p in sorted(glob.glob(f"{w}/sgl-*.trace.jsonl")):
    tag = os.path.basename(p)[4:-len(".trace.jsonl")]
    recs = sorted((json.loads(l) for l in open(p)), key=lambda r: r["seq"])
    res[tag] = {"prompt_tokens_server": [n_in(r["prompt"]) for r in recs]}
    try:
        d = json.loads(open(f"{w}/sgl-{tag}.jsonl").readline().replace("Infinity", "null").replace("NaN", "null"))
        res[tag]["output_tokens_retok"] = [n_out(t or "") for t in d.get("generated_texts", [])]
    except (OSError, ValueError) as e:
        res[tag]["error"] = str(e)
json.dump(res, open(f"{w}/tokcount.json", "w"))
print("token counts for", sorted(res))
EOF
  say "tokcount rc=$?"
fi
# The engine's serving and continuous-batching sources, for reading its defaults afterwards.
if [ "$LOCAL" = 0 ]; then
  TD=$(python3 -c 'import os, transformers; print(os.path.dirname(transformers.__file__))' 2>/dev/null)
  [ -n "$TD" ] && tar czf "$W/transformers-src.tar.gz" -C "$TD" cli commands generation/continuous_batching 2>/dev/null
  cp "$MODEL/tokenizer.json" "$MODEL/tokenizer_config.json" "$MODEL/config.json" "$W/" 2>/dev/null
fi
say "done"
