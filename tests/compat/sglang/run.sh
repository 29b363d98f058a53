#!/usr/bin/env bash
# The differential suite against the real sglang.bench_serving 0.5.9: prepares the venv (setup.sh), builds
# target/debug/servebench (as `cargo test` does), checks the harness itself (test_harness.py), then runs every
# scenario, or those matching --only GLOB. Exits non-zero on any difference not in docs/metrics.md's deviation table.
# Usage: tests/compat/sglang/run.sh [--only GLOB]... [--list]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
cd "$repo"
start=$(date +%s)
py="$("$here/setup.sh")"
echo "compat/sglang: venv ready ($(( $(date +%s) - start )) s)"
if [ -z "${SERVEBENCH:-}" ]; then
  # Built as `cargo test` builds it (the e2e tests need the binary): after CI's `cargo test` this is a no-op,
  # where `cargo build` would rebuild the dependencies with other features.
  cargo test --quiet --locked --no-run --test e2e
  SERVEBENCH="$repo/target/debug/servebench"
fi
if ! out="$("$py" "$here/test_harness.py" 2>&1)"; then
  echo "$out"
  echo "compat/sglang: the harness's own tests failed" >&2
  exit 1
fi
echo "compat/sglang: harness self-test: ${out##*$'\n'}"
status=0
"$py" "$here/run_suite.py" --python "$py" --servebench "$SERVEBENCH" \
  --tokenizer "$(dirname "$(dirname "$py")")/tokenizer" "$@" || status=$?
echo "compat/sglang: $(( $(date +%s) - start )) s in all"
exit $status
