#!/usr/bin/env bash
# Proves the base install is the torch-free edge runtime: a throwaway venv gets requirements/base.lock and
# `pip install .` (no extras), streams the bundled example, and must not be able to import torch.
# Prints the venv's size. Run by .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 -m venv "$work/venv"
"$work/venv/bin/python" -m pip install -q --require-hashes -r requirements/base.lock
"$work/venv/bin/python" -m pip install -q --no-deps "$root"
"$work/venv/bin/python" -m pip check >/dev/null
cd "$work"  # away from the checkout, so only the installed package can be imported
"$work/venv/bin/codec-stream" --input "$root/stream/examples/telugu_example.flac" --output out.wav \
  --stats-json stats.json
[ -s out.wav ] || { echo "base install: codec-stream wrote no audio" >&2; exit 1; }
if "$work/venv/bin/python" -c "import torch" 2>/dev/null; then
  echo "base install: torch is importable, but the runtime must not need it" >&2
  exit 1
fi
site=$("$work/venv/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
echo "base install OK (torch-free): venv $(du -sm "$work/venv" | cut -f1) MB, site-packages $(du -sm "$site" | cut -f1) MB"
