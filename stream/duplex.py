"""The audio callback: moves blocks between the sound card and two preallocated rings, nothing else."""

from __future__ import annotations

from typing import Any

import numpy as np

from sscodec.stream.ring import RingBuffer

QUEUE_FRAMES = 50  # blocks each ring holds at least (1 s of 20 ms frames): room for a late worker or callback


class DuplexCallback:
    """A `sounddevice.Stream` callback: speaker block ← output ring, mic block → input ring.

    It never allocates sample memory, touches files or runs the model; the engine runs in a worker thread that
    reads `input_ring` and writes `output_ring`. Counters are in frames (callback blocks) and are only written
    here, so the worker and the main thread may read them without a lock.
    """

    def __init__(self, frame_size: int, chunk_frames: int, queue_frames: int | None = None,
                 extra_prime: int = 0) -> None:
        """`frame_size`: samples per callback block at the device's rate (one codec frame's duration);
        `extra_prime`: samples of silence queued for output beyond one chunk (what resamplers hold back);
        `queue_frames`: each ring's capacity in blocks, by default QUEUE_FRAMES or two chunks and the prime if
        more (found from outside: a fixed 50 made --chunk-frames 26 a traceback)."""
        if queue_frames is None:
            queue_frames = max(QUEUE_FRAMES, 2 * chunk_frames + -(-extra_prime // frame_size))
        if queue_frames * frame_size < 2 * chunk_frames * frame_size + extra_prime:
            raise ValueError(f"queue_frames ({queue_frames}) must hold at least two chunks of {chunk_frames} "
                             f"and {extra_prime} samples")
        self.frame_size = frame_size
        self.input_ring = RingBuffer(queue_frames * frame_size)
        self.output_ring = RingBuffer(queue_frames * frame_size)
        # The first decoded chunk exists only after a whole chunk of input has arrived (and has passed through
        # the resamplers), so play that much silence first; without it every chunk would be late and underflow.
        self.output_ring.write(np.zeros(chunk_frames * frame_size + extra_prime, dtype=np.float32))
        self.callbacks = 0
        self.underflows = 0
        self.overflows = 0

    def __call__(self, indata: np.ndarray, outdata: np.ndarray, frames: int, time: Any, status: Any) -> None:
        """Handle one block: `indata`/`outdata` are [frames, 1] float32."""
        if status.input_overflow:
            self.overflows += 1
        if status.output_underflow:
            self.underflows += 1
        # Output before input: the worker then cannot produce this block's output before the previous one
        # has been taken, which keeps the output ring's fill level a true measure of added delay.
        if not self.output_ring.read_into(outdata[:, 0]):
            outdata.fill(0.0)
            self.underflows += 1
        if not self.input_ring.write(indata[:, 0]):
            self.overflows += 1
        self.callbacks += 1
