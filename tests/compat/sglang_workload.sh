#!/usr/bin/env bash
# Checks that the real sglang.bench_serving 0.5.9 still draws the workloads recorded in
# tests/compat/fixtures/sglang_workload.json (servebench's `cargo test` checks itself against that file).
# Usage: tests/compat/sglang_workload.sh PYTHON [--write]
#   PYTHON: a Python with sglang==0.5.9, transformers and numpy installed (torch not needed), e.g.
#           python3 -m venv /tmp/sg && /tmp/sg/bin/pip install sglang==0.5.9 transformers==4.57.1 numpy
#   --write: regenerate the fixtures instead of comparing.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [ $# -lt 1 ]; then
  sed -n '2,7p' "$0" >&2
  exit 2
fi
python="$1"
shift
exec "$python" "$here/sglang_workload.py" "$@"
