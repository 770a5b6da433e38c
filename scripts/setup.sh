#!/usr/bin/env bash
# One-command set-up on Debian/Ubuntu, as root or as a user with sudo:
#   1. the system packages of requirements/system.txt (apt-get; only those missing),
#   2. .venv with every Python package pinned and hash-checked by requirements/all.lock, then this project,
#   3. the main job: the bundled Telugu example through the bundled default model, streamed chunk by chunk.
# `--no-run` stops after step 2 (.ci/run uses it before the tests).
set -euo pipefail
cd "$(dirname "$0")/.."
run_main_job=1
[ "${1:-}" = "--no-run" ] && run_main_job=0

if command -v apt-get >/dev/null 2>&1; then
  mapfile -t wanted < <(sed -e 's/#.*//' -e '/^\s*$/d' -e 's/\s//g' requirements/system.txt)
  missing=()
  for pkg in "${wanted[@]}"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  if [ ${#missing[@]} -gt 0 ]; then
    # Root needs no sudo (and Debian containers have none); a user needs it.
    as_root=()
    [ "$(id -u)" = 0 ] || as_root=(sudo)
    "${as_root[@]}" apt-get update -qq
    # jackd2 asks whether to allow realtime priority; noninteractive takes its default (no), also through sudo.
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
else
  echo "setup: no apt-get here; install the packages in requirements/system.txt with your package manager" >&2
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --require-hashes -r requirements/all.lock
.venv/bin/python -m pip install -q --no-deps -e .
.venv/bin/python -m pip check >/dev/null || { .venv/bin/python -m pip check >&2; exit 1; }

if [ "$run_main_job" = 1 ]; then
  .venv/bin/codec-stream --input stream/examples/telugu_example.flac --output telugu_decoded.wav \
    --stats-json telugu_stats.json
fi
