"""Streaming sample-rate conversion with soxr's ResampleStream, and the delay it adds."""

from __future__ import annotations

import numpy as np
import soxr

# Files: soxr's high quality, the same samples as a one-shot `soxr.resample` of the whole signal.
FILE_QUALITY = "HQ"
# Sound cards: the least delay among soxr's filtered qualities. Running on 20 ms blocks between 48 and 16 kHz,
# "LQ" owes at most 20 ms each way (it emits in steps of 300 output samples at 16 kHz), "HQ" 37 ms ("QQ" is
# cubic interpolation without an anti-alias filter). Measured with python-soxr 1.1 by `delay_samples`.
LIVE_QUALITY = "LQ"


class StreamResampler:
    """Mono float32 blocks at `in_rate` in, blocks at `out_rate` out, with state carried between calls.

    Any block sizes give the same samples as one call on the whole signal (soxr's streaming contract). Equal
    rates pass blocks through unchanged, with no delay.
    """

    def __init__(self, in_rate: int, out_rate: int, quality: str = FILE_QUALITY) -> None:
        if in_rate <= 0 or out_rate <= 0:
            raise ValueError(f"sample rates must be positive, got {in_rate} and {out_rate} Hz")
        self.in_rate, self.out_rate, self.quality = in_rate, out_rate, quality
        self._stream = (
            None if in_rate == out_rate else soxr.ResampleStream(in_rate, out_rate, 1, dtype="float32", quality=quality)
        )

    def process(self, block: np.ndarray, last: bool = False) -> np.ndarray:
        """Resample `block` [n] float32; `last` flushes what soxr holds back (the end of the signal)."""
        if self._stream is None:
            return block
        return self._stream.resample_chunk(np.ascontiguousarray(block, dtype=np.float32), last=last)

    def clear(self) -> None:
        """Forget the signal so far: the next block starts a new one."""
        if self._stream is not None:
            self._stream.clear()

    def delay_samples(self, block: int) -> int:
        """Most output samples (at `out_rate`) this configuration owes, running, on `block`-sample input blocks.

        Measured, not computed: soxr's filter length depends on the quality and the rate ratio, and some
        configurations emit in bursts, so a fresh resampler is fed silence and the largest shortfall over the
        second half of 50 blocks (past the start-up) is taken. It is the latency the resampler adds to a live
        stream, and the silence an output queue needs up front not to run dry.
        """
        if self._stream is None:
            return 0
        probe = soxr.ResampleStream(self.in_rate, self.out_rate, 1, dtype="float32", quality=self.quality)
        silence = np.zeros(block, dtype=np.float32)
        produced, owed = 0, 0
        for i in range(1, 51):
            produced += probe.resample_chunk(silence).shape[0]
            if i > 25:
                owed = max(owed, int(np.ceil(i * block * self.out_rate / self.in_rate)) - produced)
        return owed
