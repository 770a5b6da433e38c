"""Entropy-coded against raw bitstream size at 12 codebooks, per folder of speech (README, "Bitstream").

    python -m sscodec.benchmarks.bitstream_size [--model default] [--max-clips 20] FOLDER...
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from sscodec.common.audio import read_audio
from sscodec.export.calibration import audio_files
from sscodec.stream.file_codec import DEFAULT_PACKET_FRAMES, encode_file
from sscodec.stream.model import CodecModel
from sscodec.stream.model_dir import resolve_model_dir
from sscodec.stream.packet import CodingMode
from sscodec.stream.packing import packed_size


def measure(model: CodecModel, folder: Path, max_clips: int, packet_frames: int) -> dict:
    """Coded-codes and whole-file sizes of every clip in both modes; the worst packet's coded/raw ratio and the
    share of packets that the entropy-coded files sent raw (range coding would have made them larger)."""
    info = model.info
    code_ratio, file_ratio, worst, modes = [], [], 0.0, []
    with tempfile.TemporaryDirectory() as scratch:
        for path in audio_files(folder)[:max_clips]:
            audio = read_audio(path, info.sample_rate)
            sizes = {}
            for mode in CodingMode:
                summary = encode_file(model, audio, Path(scratch) / "f", info.n_codebooks, mode, packet_frames)
                sizes[mode] = summary
            raw = [packed_size(info.n_codebooks, f, info.bits_per_code) for f in sizes[CodingMode.RAW].frames]
            coded = sizes[CodingMode.ENTROPY].payload_bytes
            code_ratio.append(sum(coded) / sum(raw))
            file_ratio.append(sizes[CodingMode.ENTROPY].file_bytes / sizes[CodingMode.RAW].file_bytes)
            worst = max(worst, max(c / r for c, r in zip(coded, raw)))
            modes += sizes[CodingMode.ENTROPY].modes
    return {"clips": len(code_ratio), "codes": float(np.mean(code_ratio)), "files": float(np.mean(file_ratio)),
            "worst_packet": worst, "raw_packets": modes.count(CodingMode.RAW) / len(modes)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", type=Path)
    parser.add_argument("--model", default=None)
    parser.add_argument("--max-clips", type=int, default=20)
    parser.add_argument("--packet-frames", type=int, default=DEFAULT_PACKET_FRAMES)
    args = parser.parse_args()
    model = CodecModel(resolve_model_dir(args.model))
    print("| speech | clips | coded codes / raw codes (mean) | entropy file / raw file (mean) | worst packet | "
          "packets sent raw |")
    print("| --- | --- | --- | --- | --- | --- |")
    for folder in args.folders:
        row = measure(model, folder, args.max_clips, args.packet_frames)
        print(f"| {folder} | {row['clips']} | {row['codes']:.1%} | {row['files']:.1%} | {row['worst_packet']:.1%} | "
              f"{row['raw_packets']:.1%} |")


if __name__ == "__main__":
    main()
