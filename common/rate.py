"""A codec's bitrate arithmetic, in one place: codebooks × bits per code × frames per second.

`CodecConfig` (the torch model's config) and `ModelInfo` (what the runtime reads from the ONNX metadata) both
answer bitrate questions through this class, so training, export, the runtime and the benchmarks agree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class CodeRate:
    """The facts a raw bitrate follows from. Rates in Hz, sizes in samples and codebook entries."""

    sample_rate: int
    frame_size: int  # samples per code frame (the hop)
    n_codebooks: int
    codebook_size: int

    @property
    def frame_rate(self) -> float:
        """Code frames per second."""
        return self.sample_rate / self.frame_size

    @property
    def frame_ms(self) -> float:
        """Duration of one frame in milliseconds (the algorithmic latency of one-frame streaming)."""
        return 1000.0 * self.frame_size / self.sample_rate

    @property
    def bits_per_code(self) -> int:
        """Bits of one code in raw packing: ceil(log2(codebook_size))."""
        return math.ceil(math.log2(self.codebook_size))

    def bitrate_kbps(self, codebooks: int) -> float:
        """Raw bitrate when sending the first `codebooks` codebooks. ValueError outside 1..n_codebooks."""
        if not 1 <= codebooks <= self.n_codebooks:
            raise ValueError(f"n_codebooks must be in 1..{self.n_codebooks}, got {codebooks}")
        return codebooks * self.bits_per_code * self.frame_rate / 1000.0

    def codebooks_for_bitrate(self, kbps: float) -> int:
        """The most codebooks whose raw bitrate fits `kbps`, at most all of them.

        ValueError when `kbps` is below one codebook's bitrate.
        """
        per_codebook = self.bitrate_kbps(1)
        if kbps >= self.bitrate_kbps(self.n_codebooks):  # also a kbps so large that the ratio below overflows
            return self.n_codebooks
        count = math.floor(kbps / per_codebook + 1e-9)
        if count < 1:
            raise ValueError(
                f"{kbps:g} kbps is below one codebook ({per_codebook:g} kbps), the lowest bitrate"
            )
        return min(count, self.n_codebooks)
