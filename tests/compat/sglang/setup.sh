#!/usr/bin/env bash
# Prepares the differential suite's Python side, unattended: a venv (default tests/compat/.venv, ignored by git)
# with the real sglang 0.5.9 from PyPI and only the packages a random/sharegpt bench_serving run imports
# (requirements.txt, installed with --no-deps), stand-ins for two modules it imports but never calls
# (standins/README.md), and the SmolLM2 tokenizer as a folder transformers can load.
# Idempotent: does nothing when the venv already matches these files. Prints the venv's python path last.
# Needs python3 >= 3.10 with venv (Debian: apt-get install python3-venv) and PyPI access.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
venv="${COMPAT_VENV:-$repo/tests/compat/.venv}"
python="${PYTHON:-python3}"
assets="$repo/crates/tokenize/assets"

want="$(cat "$here/requirements.txt" "$here/tokenizer_config.json" "$assets/smollm2-tokenizer.json.gz" \
  "$assets/smollm2-chat_template.jinja" $(find "$here/standins" -type f -name '*.py' | sort) | sha256sum | cut -d' ' -f1)"
if [ -f "$venv/.compat-stamp" ] && [ "$(cat "$venv/.compat-stamp")" = "$want" ]; then
  echo "$venv/bin/python"
  exit 0
fi

"$python" - <<'PY' || { echo "setup.sh: sglang 0.5.9 needs Python >= 3.10 (set PYTHON=...)" >&2; exit 1; }
import sys
sys.exit(0 if sys.version_info >= (3, 10) else 1)
PY
if ! "$python" -m venv --clear "$venv" >&2; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup.sh: installing python3-venv" >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null) >&2
    "$python" -m venv --clear "$venv" >&2
  else
    echo "setup.sh: '$python -m venv' failed; install the venv module (Debian: apt-get install python3-venv)" >&2
    exit 1
  fi
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check --no-input --no-deps -r "$here/requirements.txt" >&2
site="$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
for m in IPython datasets; do
  rm -rf "${site:?}/$m"
  cp -r "$here/standins/$m" "$site/$m"
done
tok="$venv/tokenizer"
mkdir -p "$tok"
gzip -dc "$assets/smollm2-tokenizer.json.gz" > "$tok/tokenizer.json"
cp "$assets/smollm2-chat_template.jinja" "$tok/chat_template.jinja"
cp "$here/tokenizer_config.json" "$tok/tokenizer_config.json"
# The import a run does, and the tokenizer it loads, checked once here.
HF_HUB_OFFLINE=1 TRANSFORMERS_VERBOSITY=error "$venv/bin/python" - "$tok" <<'PY' >&2
import sys
import sglang.bench_serving as b
t = b.get_tokenizer(sys.argv[1])
ids = t.encode("Hello world, this is a test.")
assert ids == [19556, 905, 28, 451, 314, 253, 1028, 30], ids
PY
echo "$want" > "$venv/.compat-stamp"
echo "$venv/bin/python"
