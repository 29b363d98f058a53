# Sourced by bench/gpu_compare.sh and bench/gpu_order.sh (needs SGL_PY, LOG and a `say` function): makes
# sglang.bench_serving 0.5.9 importable on the GPU machine from the wheels carried in .rig/sgl, offline.
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 TRANSFORMERS_OFFLINE=1
if [ "$SGL_PY" = python3 ] && ls .rig/sgl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/sgl-site \
    .rig/sgl/*.whl >> "$LOG" 2>&1
  export PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}/tmp/sgl-site
fi
SGL_IMPORT='import sglang.bench_serving, aiohttp; print("ok, aiohttp", aiohttp.__version__)'
if ! $SGL_PY -c "$SGL_IMPORT" >> "$LOG" 2>&1; then
  # Last resort: bench_serving imports `datasets` (only for MMMU) and sglang.utils imports IPython.display (only for
  # notebooks) at module level; a random/custom-dataset run uses neither. Stand-ins that fail if ever called.
  mkdir -p /tmp/sgl-stub/datasets /tmp/sgl-stub/IPython
  echo 'def load_dataset(*a, **k): raise RuntimeError("datasets stand-in: not installed")' > /tmp/sgl-stub/datasets/__init__.py
  : > /tmp/sgl-stub/IPython/__init__.py
  printf 'def display(*a, **k): raise RuntimeError("IPython stand-in")\nclass HTML:\n    def __init__(self, *a, **k): raise RuntimeError("IPython stand-in")\n' > /tmp/sgl-stub/IPython/display.py
  export PYTHONPATH=${PYTHONPATH:-}:/tmp/sgl-stub
  say "sglang import failed with the wheels; using stand-ins for datasets/IPython (see run.log)"
fi
say "sglang import: $($SGL_PY -c "$SGL_IMPORT" 2>&1 | tail -1)"
