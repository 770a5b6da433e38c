#!/usr/bin/env bash
# Train on the lent GPU machine, in this checkout's copy there (the `device` tool's `run`; prepare .devdata/ here
# first with scripts/device_prepare.sh). Installs the carried wheels and this package, merges the carried shards,
# then runs codec-train for MINUTES with the given flags and leaves its log, metrics and checkpoints in $OUT.
# Usage: bash scripts/device_train.sh MINUTES [codec-train flags ...]
#   e.g. run(command="bash scripts/device_train.sh 7 --init_from default --losses l1+mel ...",
#            carry=[".devdata/whl", ".devdata/val", ".devdata/data/shard-000"], timeout_s=560)
# SHARES="train:0.6 malayalam_msc:0.08 ..." weighs the merged folders (by name) as codec-train's DIR:WEIGHT;
# without it they count by duration. PYTHON picks the interpreter (default python3: the machine's, which holds
# torch); OUT defaults to runs/device; DEVDATA to .devdata (its whl/, val/ and data/ as device_prepare.sh
# writes them; no wheels there: nothing installed but this package).
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=$1
shift
python=${PYTHON:-python3}
out=${OUT:-runs/device}
site=${SITE:-/tmp/site}
devdata=${DEVDATA:-.devdata}
mkdir -p "$out" "$site"
wheels=("$devdata"/whl/*.whl)
if [ -e "${wheels[0]}" ]; then
    "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$site" "${wheels[@]}"
fi
export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
if ! "$python" -c "import sscodec.train.cli" 2>/dev/null; then  # a bare machine: this checkout, built there
    "$python" -m pip install -q --no-index --no-deps --no-build-isolation --no-compile --no-cache-dir --target "$site" .
fi
data=$(mktemp -d)
for shard in "$devdata"/data/shard-*; do
    cp -r "$shard"/. "$data"/
done
folders=()
if [ -n "${SHARES:-}" ]; then
    for share in $SHARES; do
        folders+=(--data_dir "$data/$share")
    done
else
    for folder in "$data"/*/; do
        folders+=(--data_dir "${folder%/}")
    done
fi
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null || true
set +e
PYTHONUNBUFFERED=1 "$python" -c 'import sys; from sscodec.train.cli import main; main(sys.argv[1:])' "${folders[@]}" --val_dir "$devdata"/val/shard-000/val \
    --checkpoint_dir "$out/run" --max_minutes "$minutes" "$@" 2>&1 | tr '\r' '\n' | grep -v -E '^ *[0-9]+%\|' | tee "$out/train.log"
status=${PIPESTATUS[0]}
set -e
# What comes back: at most 8 files of 16 MiB (latest.pt, with the optimisers, is larger; best.pt is not).
mv "$out/run/metrics.jsonl" "$out/run/best.pt" "$out/" 2>/dev/null || true
rm -rf "$out/run" "$data"
exit "$status"
