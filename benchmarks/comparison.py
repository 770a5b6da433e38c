"""One clip, three ways, in one run: streamed one frame per call (codec-stream's path; at all the model's codebooks
and at half of them), our offline graphs over the whole clip, and libopus encode + decode; interleaved round by
round on one thread, so the ratios hold on any machine, loaded or not."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from sscodec.benchmarks.opus import opus_decode, opus_encode, opus_missing, opus_version
from sscodec.common.chunks import chunks
from sscodec.stream.engine import StreamEngine
from sscodec.stream.runtime import RuntimeOptions, open_session

CLIP_SECONDS = 10.0
ROUNDS = 7
OPUS_KBPS = (8.0, 12.0)
# Targets: streaming 1-frame chunks costs at most this much more than the offline graphs per second of audio,
# and at most libopus at this bitrate per frame.
MAX_STREAM_OVER_OFFLINE = 1.5
OPUS_REFERENCE_KBPS = 12.0


def compare(model_dir: Path, offline_dir: Path | None, audio: np.ndarray, rounds: int = ROUNDS) -> dict:
    """Per-frame time (wall and thread CPU, median over `rounds` interleaved rounds) of each way over the first
    CLIP_SECONDS of `audio`, and the two ratios of the targets."""
    engine = StreamEngine(model_dir, chunk_frames=1)
    info = engine.info
    frames = min(audio.size, int(CLIP_SECONDS * info.sample_rate)) // info.frame_size
    clip = np.ascontiguousarray(audio[: frames * info.frame_size], dtype=np.float32)
    ways: dict[str, Callable[[], object] | str] = {"stream, 1-frame chunks": _streamed(engine, clip)}
    half = info.n_codebooks // 2
    if half >= 1:  # a lower bitrate: the sender's encoder graph searches only its codebooks (codebook_search.py)
        lower = StreamEngine(model_dir, codebooks=half, chunk_frames=1)
        ways[f"stream, 1-frame chunks, {half} of {info.n_codebooks} codebooks ({info.bitrate_kbps(half):g} kbps)"] = (
            _streamed(lower, clip)
        )
    ways["offline graphs"] = (
        _offline(offline_dir, clip) if offline_dir else "no encoder.onnx/decoder.onnx beside it"
    )
    for kbps in OPUS_KBPS:
        ways[f"libopus {kbps:g} kbps"] = opus_missing() or (
            lambda kbps=kbps: opus_decode(opus_encode(clip, info.sample_rate, kbps))
        )
    runnable = {name: way for name, way in ways.items() if callable(way)}
    wall: dict[str, list[float]] = {name: [] for name in runnable}
    cpu: dict[str, list[float]] = {name: [] for name in runnable}
    for _ in range(rounds + 1):  # the first round warms up and is dropped
        for name, way in runnable.items():
            started, started_cpu = time.perf_counter(), time.thread_time()
            way()
            wall[name].append((time.perf_counter() - started) * 1e3 / frames)
            cpu[name].append((time.thread_time() - started_cpu) * 1e3 / frames)
    results = {
        name: {
            "ms_per_frame": statistics.median(wall[name][1:]),
            "cpu_ms_per_frame": statistics.median(cpu[name][1:]),
        }
        if name in runnable
        else {"skipped": way}
        for name, way in ways.items()
    }
    frame_ms = info.frame_ms
    for row in results.values():
        if "ms_per_frame" in row:
            row["rtf"] = row["ms_per_frame"] / frame_ms
    return {
        "clip_seconds": frames * frame_ms / 1000,
        "rounds": rounds,
        "libopus": opus_version(),
        "ways": results,
        "ratios": {
            "stream_over_offline": _ratio(results, "stream, 1-frame chunks", "offline graphs"),
            "stream_over_opus_12kbps": _ratio(
                results, "stream, 1-frame chunks", f"libopus {OPUS_REFERENCE_KBPS:g} kbps"
            ),
        },
        "targets": {"stream_over_offline_max": MAX_STREAM_OVER_OFFLINE, "stream_over_opus_12kbps_max": 1.0},
    }


def _streamed(engine: StreamEngine, clip: np.ndarray) -> Callable[[], None]:
    """A fresh stream over the clip, one frame per call: encode, pack, unpack, decode (codec-stream's compute)."""

    def run() -> None:
        engine.reset()
        for chunk in chunks(clip, engine.info.frame_size):
            engine.process_chunk(chunk)

    return run


def _offline(directory: Path, clip: np.ndarray) -> Callable[[], object]:
    """encoder.onnx then decoder.onnx over the whole clip, one thread (the stream graphs' session settings)."""
    encoder = open_session(directory / "encoder.onnx", RuntimeOptions())
    decoder = open_session(directory / "decoder.onnx", RuntimeOptions())
    x = clip[None]
    return lambda: decoder.run(None, {"codes": encoder.run(None, {"audio": x})[0]})


def _ratio(results: dict, numerator: str, denominator: str) -> dict | None:
    """Wall-clock and CPU-time ratio of two ways' per-frame cost, or None if either was skipped."""
    a, b = results[numerator], results[denominator]
    if "ms_per_frame" not in a or "ms_per_frame" not in b:
        return None
    return {
        "wall": a["ms_per_frame"] / b["ms_per_frame"],
        "cpu": a["cpu_ms_per_frame"] / b["cpu_ms_per_frame"],
    }
