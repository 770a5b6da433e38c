#!/usr/bin/env bash
# Prepare a training run on the lent GPU machine (the `device` tool; /work/.library/device/README.md), here, before
# any device time is spent. Writes .devdata/ (git-ignored), which `run` carries next to the working tree:
#   .devdata/whl/          Python 3.12 wheels of what the machine's image lacks for codec-train (its torch,
#                          numpy, scipy, numba, tensorboard, tqdm and click are used as they are), at the lock's
#                          versions
#   .devdata/val/          telugu/val, lossless (FLAC), for validation there
#   .devdata/data/shard-*  the training corpus as codec-pack shards (held-out clips left out), each as large as
#                          the room that the tracked tree, the wheels and val/ leave in the 64 MiB a call carries
# Usage: bash scripts/device_prepare.sh [FORMAT [KBPS]]   (default: opus 12, which fits the corpus into one call;
# README, "Training data that must travel", has the measured cost of each format)
set -euo pipefail
cd "$(dirname "$0")/.."
format=${1:-opus}
kbps=${2:-12}
shared=../shared/data
venv=.venv/bin
carried=$((64 << 20))  # what one call carries: tracked files, untracked files git does not ignore, carried paths
margin=$((1 << 20))    # for the commits made between this preparation and the call

rm -rf .devdata
mkdir -p .devdata/whl runs
# soundfile (its wheel bundles libsndfile) and cffi; soxr; librosa and what it imports that the image lacks.
for package in soundfile cffi pycparser soxr librosa audioread pooch platformdirs decorator; do
    version=$(grep -i -m1 "^${package}==" requirements/all.lock | sed 's/ .*//')
    "$venv/python" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 --platform any -d .devdata/whl "$version"
done
"$venv/codec-pack" "$shared/telugu/val" --out .devdata/val --attribution ../shared/README.md

tree=$( (git ls-files -z; git ls-files -z --others --exclude-standard) | xargs -0 du -cb | tail -1 | cut -f1)
used=$((tree + $(du -sb .devdata | cut -f1) + margin))
room=$((carried - used))
if [ "$room" -lt $((1 << 20)) ]; then
    echo "device_prepare: the tree and the wheels leave $((room >> 10)) KiB of the 64 MiB a call carries" >&2
    exit 1
fi
args=(--out .devdata/data --format "$format" --shard-mb "$(printf '%d.%02d' $((room >> 20)) $(((room & 0xFFFFF) * 100 >> 20)))"
      --exclude runs/heldout.txt --attribution ../shared/README.md)
[ "$format" = opus ] && args+=(--kbps "$kbps")
[ -f runs/heldout.txt ] || "$venv/codec-bench" heldout > runs/heldout.txt
"$venv/codec-pack" "$shared/telugu/train" "$shared/extra/commonvoice_indic" "$shared/extra/indicvoices" \
    "$shared/extra/librispeech_clean" "$shared/extra/librispeech_test_other" "$shared/extra/malayalam_msc" \
    "${args[@]}"
shards=(.devdata/data/shard-*)
echo "tree $((tree >> 10)) KiB; .devdata $(du -sk .devdata | cut -f1) KiB; ${#shards[@]} shard(s)."
echo "Training call: carry=[\".devdata/whl\", \".devdata/val\", \"${shards[-1]}\"]"
if [ "${#shards[@]}" -gt 1 ]; then
    # The machine keeps ignored paths that earlier calls carried while it stays warm (30 s after a call).
    echo "before it, back to back (each within 30 s of the last): one call per other shard, carrying it alone," \
         "with the command 'true': ${shards[*]:0:${#shards[@]}-1}"
fi
