"""A preallocated single-producer single-consumer ring buffer of float32 samples."""

from __future__ import annotations

import numpy as np


class RingBuffer:
    """Fixed-capacity sample FIFO shared by one writer thread and one reader thread.

    Writes and reads copy into or out of one preallocated array and never allocate sample memory, so the
    audio callback can use it. Each counter is advanced by one side only, after its copy is complete, which is
    what makes one producer and one consumer safe without a lock.
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self._data = np.zeros(capacity, dtype=np.float32)
        self._capacity = capacity
        self._written = 0  # total samples ever written; only the writer changes it
        self._read = 0  # total samples ever read; only the reader changes it

    @property
    def capacity(self) -> int:
        """Samples it holds at most."""
        return self._capacity

    def available(self) -> int:
        """Samples that can be read now."""
        return self._written - self._read

    def free(self) -> int:
        """Samples that can be written now."""
        return self._capacity - (self._written - self._read)

    def write(self, samples: np.ndarray) -> bool:
        """Append all of `samples` [n]; if they do not fit, write nothing and return False."""
        n = samples.shape[0]
        if n > self.free():
            return False
        start = self._written % self._capacity
        first = min(n, self._capacity - start)
        self._data[start : start + first] = samples[:first]
        if first < n:
            self._data[: n - first] = samples[first:]
        self._written += n
        return True

    def read_into(self, out: np.ndarray) -> bool:
        """Fill `out` [n] with the oldest samples; if fewer than n are there, read nothing and return False."""
        n = out.shape[0]
        if n > self.available():
            return False
        start = self._read % self._capacity
        first = min(n, self._capacity - start)
        out[:first] = self._data[start : start + first]
        if first < n:
            out[first:] = self._data[: n - first]
        self._read += n
        return True
