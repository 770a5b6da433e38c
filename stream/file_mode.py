"""File mode: the live engine over a whole file, block by block, for reproducible runs."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sscodec.stream.engine import StreamEngine
from sscodec.stream.stats import StreamStats


@dataclass(frozen=True)
class FileResult:
    """Decoded audio with exactly the input's length, and what producing it cost."""

    audio: np.ndarray
    stats: StreamStats


def stream_audio(engine: StreamEngine, audio: np.ndarray, block_size: int | None = None) -> FileResult:
    """Stream mono audio at the engine's rate through a fresh stream, `block_size` samples at a time.

    The default block is one codec frame, as a sound card would deliver it; the last partial frame is
    zero-padded (as offline encoding pads) and the output trimmed back to the input's length.
    """
    block_size = block_size or engine.info.frame_size
    if block_size < 1:
        raise ValueError(f"block_size must be >= 1, got {block_size}")
    engine.reset()
    pieces = []
    for start in range(0, audio.shape[0], block_size):
        pieces += [result.audio for result in engine.push(audio[start : start + block_size])]
    pieces += [result.audio for result in engine.flush()]
    decoded = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.float32)
    return FileResult(decoded[: audio.shape[0]], engine.stats())
