#!/usr/bin/env bash
# Regenerates tests/fixtures/sglang/bench_serving_0.5.9_result.jsonl: one result line written by the real
# `python -m sglang.bench_serving` (sglang 0.5.9 from PyPI) against `servebench sim` on 127.0.0.1.
#
#   tests/compat/sglang_result_line.sh [PYTHON]     (default: /work/venv-sglang/bin/python)
#
# PYTHON needs sglang==0.5.9 (no torch), transformers 4.57.1, numpy, aiohttp. `datasets` is replaced by a
# stand-in (bench_serving imports it only for MMMU), and the SmolLM2 tokenizer's config is rewritten to name
# PreTrainedTokenizerFast (transformers 4.57 does not know the newer TokenizersBackend class).
set -euo pipefail
PY=${1:-/work/venv-sglang/bin/python}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
WORK=$(mktemp -d)
trap 'kill "${SIM_PID:-}" 2>/dev/null || true; rm -rf "$WORK"' EXIT
mkdir -p "$WORK/stub/datasets" "$WORK/tok"
printf 'def load_dataset(*a, **k):\n    raise RuntimeError("stand-in: MMMU only")\n' >"$WORK/stub/datasets/__init__.py"
SRC=${SMOLLM2_DIR:-/work/shared/tokenizers/smollm2}
cp "$SRC"/tokenizer.json "$SRC"/tokenizer_config.json "$WORK/tok/"
"$PY" - "$WORK/tok/tokenizer_config.json" <<'PYEOF'
import json, sys
p = sys.argv[1]
c = json.load(open(p))
c["tokenizer_class"] = "PreTrainedTokenizerFast"
json.dump(c, open(p, "w"))
PYEOF
PORT=31777
"$ROOT/target/debug/servebench" sim --port $PORT --preset fast --seed 1 >"$WORK/sim.log" 2>&1 &
SIM_PID=$!
sleep 2
OUT="$ROOT/tests/fixtures/sglang/bench_serving_0.5.9_result.jsonl"
rm -f "$OUT"
PYTHONPATH="$WORK/stub" HF_HUB_OFFLINE=1 "$PY" -m sglang.bench_serving --backend sglang \
  --base-url http://127.0.0.1:$PORT --model servebench-sim --tokenizer "$WORK/tok" \
  --dataset-name random --dataset-path "$ROOT/tests/fixtures/sharegpt/sharegpt_small.json" \
  --random-input-len 64 --random-output-len 16 --random-range-ratio 0.5 --num-prompts 4 \
  --max-concurrency 2 --seed 1 --output-file "$OUT" --disable-tqdm
