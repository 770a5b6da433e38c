"""Soak: hours of speech through one continuous stream at full speed; length, memory and compute drift."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import psutil

from sscodec.common.text import duration
from sscodec.stream.engine import StreamEngine

SEGMENTS = 10
DRIFT_LIMIT = 1.5  # last segment's p99 over the first's; above this the compute time is called drifting
P99_CHUNKS = 100  # a segment's p99 rests on its slowest 1 % only from this many chunks; below, drift is not judged
RSS_LIMIT_MB = 20.0  # growth from the end of the first segment to the end of the run


def check_length(seconds: float, frame_ms: float, chunk_frames: int) -> None:
    """ValueError unless each of the SEGMENTS segments of a `seconds` run holds a whole chunk of `chunk_frames`
    frames (a segment's statistics need at least one chunk's time)."""
    frames = int(seconds * 1000 / frame_ms) // SEGMENTS
    if frames < chunk_frames:
        needed = SEGMENTS * chunk_frames * frame_ms / 1000
        raise ValueError(f"each of the {SEGMENTS} segments holds {frames} frames, fewer than one chunk of "
                         f"{chunk_frames}: stream at least {needed:g} s ({needed / 3600:.3g} hours), or send "
                         f"smaller chunks")


def run_soak(
    model_dir: Path,
    clips: list[np.ndarray],
    seconds: float,
    chunk_frames: int = 1,
    progress: Callable[[str], None] = lambda _: None,
) -> dict:
    """Feed `seconds` of the clips, repeated, one frame-sized block at a time as file mode does, through one
    stream that is never reset; decoded audio is measured and dropped rather than kept (keeping an hour of it
    would be the only thing the RSS showed). One sample past a whole frame makes the last frame partial, so the
    flush path and the trim to the input length are exercised.
    """
    engine = StreamEngine(model_dir, chunk_frames=chunk_frames)
    frame, rate = engine.info.frame_size, engine.info.sample_rate
    joined = np.concatenate(clips)
    looped = np.concatenate([joined, joined[:frame]])  # a block that wraps around is one slice
    total = int(seconds * rate) // frame * frame + 1
    bounds = np.linspace(0, total, SEGMENTS + 1).astype(int) // frame * frame
    bounds[-1] = total
    times = np.zeros(total // (chunk_frames * frame) + 2)
    process = psutil.Process()
    rss_start = process.memory_info().rss
    decoded, chunks, started = 0, 0, time.perf_counter()
    segments = []
    for s in range(SEGMENTS):
        first_chunk, energy_in, energy_out, finite = chunks, 0.0, 0.0, True
        for start in range(bounds[s], bounds[s + 1], frame):
            offset = start % joined.size
            block = looped[offset : offset + min(frame, total - start)]
            energy_in += float(np.dot(block, block))
            results = engine.push(block) + (engine.flush() if start + frame >= total else [])
            for result in results:
                times[chunks] = result.compute_ms
                chunks += 1
                decoded += result.audio.size
                energy_out += float(np.dot(result.audio, result.audio))
                finite &= bool(np.isfinite(result.audio).all())
        segment_times = times[first_chunk:chunks]
        segments.append(
            {
                "audio_seconds": (bounds[s + 1] - bounds[s]) / rate,
                "chunks": int(segment_times.size),
                "p50_ms": float(np.percentile(segment_times, 50)),
                "p99_ms": float(np.percentile(segment_times, 99)),
                "max_ms": float(segment_times.max()),
                "rss_mb": process.memory_info().rss / 2**20,
                "output_rms_over_input_rms": float(np.sqrt(energy_out / max(energy_in, 1e-20))),
                "finite": finite,
            }
        )
        progress(
            f"segment {s + 1}/{SEGMENTS}: p99 {segments[-1]['p99_ms']:.3f} ms, "
            f"RSS {segments[-1]['rss_mb']:.1f} MB, {duration(time.perf_counter() - started)} wall"
        )
    output = min(decoded, total)  # file mode's trim: the padded last frame is cut back to the input's length
    p99 = [s["p99_ms"] for s in segments]
    rss_growth = segments[-1]["rss_mb"] - segments[0]["rss_mb"]
    return {
        "chunk_frames": chunk_frames,
        "input_samples": total,
        "decoded_samples": decoded,
        "expected_decoded_samples": -(-total // frame) * frame,
        "output_samples": output,
        "length_exact": output == total and decoded == -(-total // frame) * frame,
        "wall_seconds": time.perf_counter() - started,
        "rss_start_mb": rss_start / 2**20,
        "rss_end_mb": process.memory_info().rss / 2**20,
        "rss_growth_after_first_segment_mb": rss_growth,
        "memory_flat": rss_growth < RSS_LIMIT_MB,
        "p99_last_over_first": p99[-1] / p99[0],
        "p99_drift": (p99[-1] / p99[0] > DRIFT_LIMIT) if min(s["chunks"] for s in segments) >= P99_CHUNKS else None,
        "all_finite": all(s["finite"] for s in segments),
        "stream_stats": engine.stats().to_dict(),
        "segments": segments,
    }
