"""Buffering audio blocks of any size into chunks of whole codec frames."""

from __future__ import annotations

import numpy as np


class Chunker:
    """Collects samples from blocks of any size and hands out full chunks of `chunk_size` samples."""

    def __init__(self, chunk_size: int, frame_size: int) -> None:
        if chunk_size < 1 or frame_size < 1 or chunk_size % frame_size:
            raise ValueError(f"chunk_size ({chunk_size}) must be a positive multiple of frame_size ({frame_size})")
        self._buffer = np.zeros(chunk_size, dtype=np.float32)
        self._frame_size = frame_size
        self._filled = 0

    @property
    def pending(self) -> int:
        """Samples buffered that do not yet make a full chunk."""
        return self._filled

    def push(self, block: np.ndarray) -> list[np.ndarray]:
        """Add a 1-D block; return the chunks it completed (copies, oldest first)."""
        chunks = []
        size = self._buffer.shape[0]
        offset = 0
        while offset < block.shape[0]:
            take = min(size - self._filled, block.shape[0] - offset)
            self._buffer[self._filled : self._filled + take] = block[offset : offset + take]
            self._filled += take
            offset += take
            if self._filled == size:
                chunks.append(self._buffer.copy())
                self._filled = 0
        return chunks

    def drain(self) -> np.ndarray | None:
        """The buffered samples zero-padded to whole frames (None when empty); empties the buffer."""
        if self._filled == 0:
            return None
        padded = -(-self._filled // self._frame_size) * self._frame_size
        tail = np.zeros(padded, dtype=np.float32)
        tail[: self._filled] = self._buffer[: self._filled]
        self._filled = 0
        return tail

    def clear(self) -> None:
        """Drop whatever is buffered."""
        self._filled = 0
