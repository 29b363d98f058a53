#!/usr/bin/env bash
# Computes math-verify's reference verdicts for servebench's grading fixtures (see math_verify_verdicts.py).
# Needs python3 (3.10+) and PyPI access. The virtual environment lives outside the repository
# ($MATH_VERIFY_VENV, default ${TMPDIR:-/tmp}/servebench-math-verify-venv).
# Usage: tests/compat/math_verify.sh [--runs N]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="${MATH_VERIFY_VENV:-${TMPDIR:-/tmp}/servebench-math-verify-venv}"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check "math-verify==0.9.0" "antlr4-python3-runtime==4.13.2"
exec "$venv/bin/python" "$here/math_verify_verdicts.py" "$@"
