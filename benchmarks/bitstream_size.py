"""Range-coded against raw bitstream size at 12 codebooks, per folder of speech (README, "Bitstream").

    python -m sscodec.benchmarks.bitstream_size [--model default] [--max-clips 20] [--json FILE] FOLDER...

Each clip is written by `encode_file` (what codec-encode writes) raw, entropy-coded with the static tables, and
context-coded when the model has a context model; the context-coded files are decoded again and must give the
encoder's codes. With --json, also writes FILE with .md (machine and library versions included) and .png.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from sscodec.benchmarks.errors import BenchError
from sscodec.benchmarks.machine import describe, machine_info
from sscodec.benchmarks.results import result_paths, write_results
from sscodec.common.audio import audio_files_below, read_audio
from sscodec.stream.file_codec import DEFAULT_PACKET_FRAMES, encode_file, read_checked
from sscodec.stream.model import CodecModel
from sscodec.stream.model_dir import resolve_model_dir
from sscodec.stream.packet import CodingMode
from sscodec.stream.packing import packed_size


def measure(model: CodecModel, folder: Path, max_clips: int, packet_frames: int) -> dict:
    """Per range-coding mode: coded-codes and whole-file sizes against raw (means over clips), the worst packet's
    coded/raw ratio, the share of packets sent raw (range coding would have made them larger), and the CPU
    seconds per second of audio to read the file back to codes."""
    info = model.info
    modes = [CodingMode.ENTROPY, *([CodingMode.CONTEXT] if model.has_context_model else [])]
    found = {mode: {"codes": [], "files": [], "worst": 0.0, "modes": [], "read_seconds": 0.0} for mode in modes}
    seconds = 0.0
    with tempfile.TemporaryDirectory() as scratch:
        for path in audio_files_below(folder)[:max_clips]:
            audio = read_audio(path, info.sample_rate)
            seconds += audio.shape[0] / info.sample_rate
            file = Path(scratch) / "f"
            raw = encode_file(model, audio, file, info.n_codebooks, CodingMode.RAW, packet_frames)
            expected = _codes(model, file)
            raw_codes = [packed_size(info.n_codebooks, f, info.bits_per_code) for f in raw.frames]
            for mode in modes:
                summary = encode_file(model, audio, file, info.n_codebooks, mode, packet_frames)
                started = time.process_time()
                codes = _codes(model, file)
                found[mode]["read_seconds"] += time.process_time() - started
                if not np.array_equal(codes, expected):
                    raise AssertionError(f"{path}: {mode.name} file decodes to other codes")
                coded = summary.payload_bytes
                found[mode]["codes"].append(sum(coded) / sum(raw_codes))
                found[mode]["files"].append(summary.file_bytes / raw.file_bytes)
                found[mode]["worst"] = max(found[mode]["worst"], max(c / r for c, r in zip(coded, raw_codes)))
                found[mode]["modes"] += summary.modes
    return {"clips": len(found[modes[0]]["codes"]), "seconds": seconds, "modes": {
        mode.name.lower(): {"codes": float(np.mean(f["codes"])), "files": float(np.mean(f["files"])),
                            "worst_packet": f["worst"],
                            "raw_packets": f["modes"].count(CodingMode.RAW) / len(f["modes"]),
                            "read_cpu_per_audio_second": f["read_seconds"] / seconds}
        for mode, f in found.items()}}


def _codes(model: CodecModel, path: Path) -> np.ndarray:
    """All the codes [Q, frames] a file holds, read back through its packets' coders."""
    with open(path, "rb") as stream:
        return np.concatenate(list(read_checked(model, stream, str(path))[1]), axis=1)


def markdown(rows: dict[str, dict]) -> str:
    lines = [("| speech | clips | mode | coded codes / raw codes (mean) | file / raw file (mean) | worst packet | "
             "packets sent raw | CPU ms to read codes per s of audio |"),
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for folder, row in rows.items():
        for mode, m in row["modes"].items():
            lines.append(f"| {folder} | {row['clips']} | {mode} | {m['codes']:.1%} | {m['files']:.1%} | "
                         f"{m['worst_packet']:.1%} | {m['raw_packets']:.1%} | {1000 * m['read_cpu_per_audio_second']:.1f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", type=Path)
    parser.add_argument("--model", default=None)
    parser.add_argument("--max-clips", type=int, default=20)
    parser.add_argument("--packet-frames", type=int, default=DEFAULT_PACKET_FRAMES)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    model = CodecModel(resolve_model_dir(args.model))
    rows = {f"{folder.parent.name}/{folder.name}": measure(model, folder, args.max_clips, args.packet_frames)
            for folder in args.folders}
    table = markdown(rows)
    print(table)
    if args.json:
        data = {"model": str(model.directory), "packet_frames": args.packet_frames, "machine": machine_info(),
                "rows": rows}
        report = (f"# Bitstream size\n\nModel `{model.directory}`, {model.info.n_codebooks} codebooks, "
                  f"{args.packet_frames}-frame packets, at most {args.max_clips} clips per folder. Machine: "
                  f"{describe(machine_info())}.\n\n{table}\n")
        try:
            write_results(result_paths("bitstream_size", args.json), data, report, figure(rows))
        except BenchError as error:  # one line, as from the CLIs (a missing folder is created, not a traceback)
            sys.exit(f"bitstream_size: error: {error}")


def figure(rows: dict[str, dict]) -> Figure:
    """Files against raw files per folder, one bar per mode, with the 85 % target as a line."""
    modes = list(next(iter(rows.values()))["modes"])
    fig = Figure(figsize=(2 + 1.5 * len(rows), 4))
    ax = fig.subplots()
    width = 0.8 / len(modes)
    for index, mode in enumerate(modes):
        ax.bar(np.arange(len(rows)) + index * width, [100 * row["modes"][mode]["files"] for row in rows.values()],
               width, label=mode)
    ax.axhline(85, color="black", linestyle="--", linewidth=1, label="85 % target")
    ax.set_xticks(np.arange(len(rows)) + 0.4 - width / 2, list(rows), fontsize=8)
    ax.set_ylabel("file size, % of the raw file")
    ax.set_ylim(0, 100)
    ax.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    return fig


if __name__ == "__main__":
    main()
