#!/usr/bin/env bash
# Prepare a training run on the lent GPU machine (the `device` tool; /work/.library/device/README.md), here, before
# any device time is spent. Writes .devdata/ (git-ignored), which `run` carries next to the working tree:
#   .devdata/whl/          Python 3.12 wheels of what the machine's image lacks for codec-train (its torch,
#                          numpy, scipy, numba, tensorboard, tqdm and click are used as they are), at the lock's
#                          versions
#   .devdata/data/shard-*  the training corpus as codec-pack shards (held-out clips left out), each at most
#                          SHARD_MB, so that one shard plus the tracked tree fits the 64 MiB a call carries
#   .devdata/val/          telugu/val, lossless (FLAC), for validation there
# Usage: bash scripts/device_prepare.sh [FORMAT KBPS SHARD_MB]   (default: opus 16 17; README, "Training on a
# lent GPU", has the measured cost of each format)
set -euo pipefail
cd "$(dirname "$0")/.."
format=${1:-opus}
kbps=${2:-16}
shard_mb=${3:-17}
shared=../shared/data
venv=.venv/bin

rm -rf .devdata/whl
mkdir -p .devdata/whl
# soundfile (its wheel bundles libsndfile) and cffi; soxr; librosa and what it imports that the image lacks.
for package in soundfile cffi pycparser soxr librosa audioread pooch platformdirs decorator; do
    version=$(grep -i -m1 "^${package}==" requirements/all.lock | sed 's/ .*//')
    "$venv/python" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 --platform any -d .devdata/whl "$version"
done

rm -rf .devdata/data .devdata/val
mkdir -p runs
args=(--out .devdata/data --format "$format" --shard-mb "$shard_mb" --exclude runs/heldout.txt
      --attribution ../shared/README.md)
[ "$format" = opus ] && args+=(--kbps "$kbps")
[ -f runs/heldout.txt ] || "$venv/codec-bench" heldout > runs/heldout.txt
"$venv/codec-pack" "$shared/telugu/train" "$shared/extra/commonvoice_indic" "$shared/extra/indicvoices" \
    "$shared/extra/librispeech_clean" "$shared/extra/librispeech_test_other" "$shared/extra/malayalam_msc" \
    "${args[@]}"
"$venv/codec-pack" "$shared/telugu/val" --out .devdata/val --attribution ../shared/README.md
du -sh .devdata/whl .devdata/val .devdata/data/shard-*
echo "tracked tree: $(git ls-files -z | xargs -0 du -cb | tail -1 | cut -f1) bytes (a call carries at most 67108864)"
