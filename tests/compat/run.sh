#!/usr/bin/env bash
# Every differential (compat) suite against the real reference tools; exits non-zero when any of them finds an
# undocumented difference. Needs python3 (3.10+, venv) and PyPI the first time; venvs live in ignored folders.
#   sglang/          servebench bench vs the real sglang.bench_serving 0.5.9 on a scripted server (28 scenarios)
#   sglang_workload  the real sglang 0.5.9 sampling functions still draw tests/compat/fixtures/sglang_workload.json
#   evalscope/       GPQA under evalscope-0/-1 vs evalscope 0.12.1's code and evalscope 1.14.1 run for real
# (math_verify.sh is not a suite: it regenerates the grading fixtures' reference verdicts.)
# Usage: tests/compat/run.sh [sglang|sglang_workload|evalscope]...   (default: all)
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
suites=("$@")
[ ${#suites[@]} -eq 0 ] && suites=(sglang sglang_workload evalscope)
status=0
for suite in "${suites[@]}"; do
  echo "=== compat suite: $suite"
  start=$(date +%s)
  case "$suite" in
    sglang) "$here/sglang/run.sh" || status=1 ;;
    sglang_workload)
      py="$("$here/sglang/setup.sh")" && "$here/sglang_workload.sh" "$py" || status=1 ;;
    evalscope) "$here/evalscope/run.sh" || status=1 ;;
    *) echo "unknown suite $suite: use sglang, sglang_workload or evalscope" >&2; status=2 ;;
  esac
  echo "=== compat suite: $suite took $(( $(date +%s) - start )) s"
done
exit $status
