#!/usr/bin/env bash
# The dependency lock: every package the README installs, pinned with hashes, for Linux x86_64 and Python >= 3.10.
#   scripts/lock.sh             after editing pyproject.toml: add, drop or move what changed, keep every other pin
#   scripts/lock.sh --upgrade   refresh deliberately: the newest versions pyproject.toml allows, for everything
#   scripts/lock.sh --check     fail if pyproject.toml's dependencies no longer match the committed lock
# The locks are resolved for the lowest supported Python (3.10), so one file installs on 3.10 and later; for
# another platform, run the same `uv pip compile` with your --python-platform.
set -euo pipefail
cd "$(dirname "$0")/.."
uv=$(command -v uv || echo .venv/bin/uv)
# uv reads the package index from its own settings (PyPI by default), never from this machine's pip mirrors.
compile() {  # compile OUTPUT [EXTRA...] [uv flags]
  local out=$1; shift
  "$uv" pip compile pyproject.toml --quiet --python-version 3.10 --python-platform x86_64-manylinux_2_28 \
    --generate-hashes --no-header --annotation-style line "$@" -o "$out"
}
if [ "${1:-}" = "--check" ]; then
  tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
  for lock in base all; do
    cp "requirements/$lock.lock" "$tmp/$lock.lock"
    # Starting from the committed lock, uv keeps its pins; anything it adds, drops or moves is a stale lock.
    if [ "$lock" = all ]; then compile "$tmp/$lock.lock" --all-extras; else compile "$tmp/$lock.lock"; fi
    if ! diff <(grep -E '^[a-z0-9]' "requirements/$lock.lock" | cut -d' ' -f1) \
              <(grep -E '^[a-z0-9]' "$tmp/$lock.lock" | cut -d' ' -f1) >"$tmp/diff"; then
      echo "requirements/$lock.lock is stale: pyproject.toml's dependencies changed. Run scripts/lock.sh and commit the lock." >&2
      cat "$tmp/diff" >&2
      exit 1
    fi
  done
  echo "requirements/*.lock match pyproject.toml"
  exit 0
fi
upgrade=()
[ "${1:-}" = "--upgrade" ] && upgrade=(--upgrade)
# Without --upgrade, uv starts from the committed pins and changes only what pyproject.toml requires.
compile requirements/base.lock "${upgrade[@]}"
compile requirements/all.lock --all-extras "${upgrade[@]}"
echo "wrote requirements/base.lock and requirements/all.lock"
