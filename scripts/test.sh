#!/usr/bin/env bash
# The test command of servebench: makes sure what the tests need is there, then runs `cargo test`.
#
#   scripts/test.sh [CARGO TEST ARGS...]     e.g. scripts/test.sh, scripts/test.sh --test e2e hardening
#   scripts/test.sh --find-chromium          only find (or install) Chromium and print its path
#
# The browser test (tests/e2e/report_browser.rs) renders report.html in headless Chromium. When no Chromium is
# on PATH (chromium, chromium-browser, google-chrome, google-chrome-stable) and SERVEBENCH_CHROMIUM does not
# name one, it is installed with apt-get (as root, or through sudo without a password). Where that is not
# possible the script says what to do and stops; SERVEBENCH_SKIP_BROWSER=1 runs everything else instead.
set -euo pipefail
cd "$(dirname "$0")/.."

find_chromium() {
  if [[ -n "${SERVEBENCH_CHROMIUM:-}" && -x "${SERVEBENCH_CHROMIUM}" ]]; then
    echo "$SERVEBENCH_CHROMIUM"
    return 0
  fi
  local name
  for name in chromium chromium-browser google-chrome google-chrome-stable; do
    if command -v "$name" >/dev/null 2>&1; then
      command -v "$name"
      return 0
    fi
  done
  return 1
}

install_chromium() {
  local sudo=()
  if [[ "$(id -u)" != 0 ]]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
      sudo=(sudo -n)
    else
      return 1
    fi
  fi
  command -v apt-get >/dev/null 2>&1 || return 1
  echo "test.sh: installing Chromium with apt-get (for the browser test)..." >&2
  "${sudo[@]}" apt-get update -qq >&2 || return 1
  # Debian's package is `chromium`; Ubuntu's is `chromium-browser`.
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq chromium >&2 \
    || DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq chromium-browser >&2 \
    || return 1
}

chromium_or_skip() {
  if [[ "${SERVEBENCH_SKIP_BROWSER:-}" == 1 ]]; then
    echo "test.sh: SERVEBENCH_SKIP_BROWSER=1: the browser test is skipped" >&2
    return 0
  fi
  local path
  if ! path=$(find_chromium); then
    if ! install_chromium || ! path=$(find_chromium); then
      cat >&2 <<'MSG'
test.sh: the browser test needs headless Chromium, which is not installed and could not be installed here
(apt-get needs root or password-less sudo, and network access). Install it (Debian: `apt-get install chromium`,
Ubuntu: `apt-get install chromium-browser`), or set SERVEBENCH_CHROMIUM=/path/to/chrome, or run
`SERVEBENCH_SKIP_BROWSER=1 scripts/test.sh` to run every other test.
MSG
      return 1
    fi
  fi
  export SERVEBENCH_CHROMIUM="$path"
  echo "$path"
}

if [[ "${1:-}" == --find-chromium ]]; then
  chromium_or_skip
  exit
fi
chromium_or_skip >/dev/null
# Loaded tokenizers are cached on disk (byte_bpe/cache.rs): the tests keep theirs inside target/, not in ~/.cache.
export SERVEBENCH_CACHE_DIR="${SERVEBENCH_CACHE_DIR-$PWD/target/servebench-cache}"
exec cargo test --locked "$@"
