#!/usr/bin/env bash
# Every differential (compat) suite; exits non-zero when any of them finds an undocumented difference.
# Today: sglang/ (servebench bench vs the real sglang.bench_serving 0.5.9). Arguments go to each suite.
# (math_verify.sh is not a suite: it regenerates the grading fixtures' reference verdicts.)
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
status=0
for suite in sglang; do
  echo "=== compat suite: $suite"
  "$here/$suite/run.sh" "$@" || status=1
done
exit $status
