"""File mode: the live engine over a signal or a file, block by block, for reproducible runs."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from sscodec.common.audio import AudioWriter, LevelWatch, audio_output, read_audio_blocks
from sscodec.common.chunks import chunks
from sscodec.stream.engine import StreamEngine
from sscodec.stream.stats import StreamStats


@dataclass(frozen=True)
class FileResult:
    """Decoded audio with exactly the input's length, and what producing it cost."""

    audio: np.ndarray
    stats: StreamStats


def stream_audio(engine: StreamEngine, audio: np.ndarray, block_size: int | None = None) -> FileResult:
    """Stream mono audio [T] at the engine's rate through a fresh stream, `block_size` samples at a time.

    The default block is one codec frame, as a sound card would deliver it; the last partial frame is
    zero-padded (as offline encoding pads) and the output trimmed back to the input's length.
    """
    block_size = block_size or engine.info.frame_size
    pieces: list[np.ndarray] = []
    stats = stream_blocks(engine, chunks(audio, block_size), pieces.append)
    decoded = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.float32)
    return FileResult(decoded, stats)


def stream_file(engine: StreamEngine, input_path: str | os.PathLike, output_path: str | os.PathLike | None = None,
                level: LevelWatch | None = None) -> StreamStats:
    """Stream an audio file from disk through a fresh stream, writing the decoded audio as it comes.

    The input (any format, rate and channel count) is decoded, mixed down and resampled to the model's rate
    block by block, so memory stays constant for any length; the output (mono, model rate, format from the
    extension) has exactly as many samples as the input has at the model's rate. AudioFileError for an input
    that cannot be decoded or an output that cannot be written. The output is written whole or not at all: to a
    temp file beside it, renamed over it when complete (`audio_output`), so a failure or an interruption leaves
    a previous file at that path untouched; "-" is a WAV on standard output, sent once complete. `level` is shown
    every input block.
    """
    blocks = read_audio_blocks(input_path, engine.info.sample_rate)
    if level is not None:
        blocks = map(level.add, blocks)
    if output_path is None:
        return stream_blocks(engine, blocks, lambda audio: None)
    with audio_output(output_path) as temp, AudioWriter(temp, engine.info.sample_rate) as writer:
        return stream_blocks(engine, blocks, writer.write)


def stream_blocks(engine: StreamEngine, blocks: Iterable[np.ndarray], sink: Callable[[np.ndarray], None]
                  ) -> StreamStats:
    """Feed mono blocks at the engine's rate through a fresh stream and hand each decoded piece to `sink`.

    The pieces add up to exactly the input's length: the engine only completes chunks of audio it was given,
    and the zero-padded last chunk that `flush` returns is cut at the input's end.
    """
    engine.reset()
    consumed, produced = 0, 0
    for block in blocks:
        consumed += block.shape[0]
        for result in engine.push(block):
            sink(result.audio)
            produced += result.audio.shape[0]
    for result in engine.flush():
        sink(result.audio[: consumed - produced])
    return engine.stats()
