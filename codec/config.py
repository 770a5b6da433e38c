"""The codec's configuration: one dataclass, saved inside every checkpoint and ONNX file."""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any

from sscodec.common.rate import CodeRate


@dataclass(frozen=True)
class CodecConfig:
    """Shape of a causal streaming codec; `frame_size` samples per code frame."""

    sample_rate: int = 16_000
    phases: int = 4  # space-to-depth factor of the front end: the waveform is folded into this many phases
    channels: int = 32  # width after the front end; doubles at every encoder stride
    strides: tuple[int, ...] = (2, 5, 8)
    dilations: tuple[int, ...] = (1,)  # one residual unit per dilation, in every block
    kernel_size: int = 7
    latent_dim: int = 64
    n_codebooks: int = 12
    codebook_size: int = 1024
    quantizer_dropout: float = 0.5  # fraction of a batch trained with a random number of codebooks
    # Decoder upsampling constrained so a constant latent decodes to a constant waveform (codec/conv.py
    # EqualPhaseSums): no frame-rate buzz or sample_rate / phases line in pauses.
    checkerboard_free: bool = False
    # The phase fold alone so constrained (the conv into `phases` channels + depth-to-space, the last upsampling
    # layer): no sample_rate / phases line, whatever the latent; the transposed convs stay free. Implied by
    # checkerboard_free.
    fold_free: bool = False
    preset: str = field(default="custom", compare=False)

    def __post_init__(self) -> None:
        if self.phases < 1 or any(s < 1 for s in self.strides) or not self.strides:
            raise ValueError(f"phases and strides must be positive, got {self.phases} and {self.strides}")
        if self.kernel_size % 2 == 0 or self.kernel_size < 3:
            raise ValueError(f"kernel_size must be odd and >= 3, got {self.kernel_size}")
        if not 1 <= self.n_codebooks <= 32 or self.codebook_size < 2:
            raise ValueError("n_codebooks must be in 1..32 and codebook_size >= 2")
        if self.checkerboard_free and self.fold_free:
            raise ValueError("checkerboard_free implies fold_free: set one of them")
        if not 0.0 <= self.quantizer_dropout <= 1.0:
            raise ValueError(f"quantizer_dropout must be in [0, 1], got {self.quantizer_dropout}")

    @property
    def frame_size(self) -> int:
        """Samples per code frame (the hop): phases times the product of the strides."""
        return self.phases * math.prod(self.strides)

    @property
    def rate(self) -> CodeRate:
        """The bitrate arithmetic of this configuration (common/rate.py)."""
        return CodeRate(self.sample_rate, self.frame_size, self.n_codebooks, self.codebook_size)

    def bitrate_kbps(self, n_codebooks: int) -> float:
        """Raw bitrate when sending the first `n_codebooks` codebooks (see `CodeRate.bitrate_kbps`)."""
        return self.rate.bitrate_kbps(n_codebooks)

    def codebooks_for_bitrate(self, kbps: float) -> int:
        """The most codebooks whose raw bitrate fits `kbps` (see `CodeRate.codebooks_for_bitrate`)."""
        return self.rate.codebooks_for_bitrate(kbps)

    def differences(self, other: CodecConfig) -> str:
        """The fields in which this config differs from `other`, e.g. "channels 30, not 16; strides 2,5,8, not 4,5,4"
        ('' when the two build the same codec: the preset's name is not compared)."""
        def shown(value: object) -> str:
            return ",".join(map(str, value)) if isinstance(value, tuple) else str(value)

        return "; ".join(f"{f.name} {shown(getattr(self, f.name))}, not {shown(getattr(other, f.name))}"
                         for f in dataclasses.fields(self) if f.compare and getattr(self, f.name) != getattr(other, f.name))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CodecConfig:
        """Build from a dict (e.g. read from a checkpoint); unknown keys are an error."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown codec config keys: {', '.join(unknown)}")
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        return cls(**values)

    @classmethod
    def from_json(cls, text: str) -> CodecConfig:
        return cls.from_dict(json.loads(text))


PRESETS: dict[str, CodecConfig] = {
    # Trains in minutes on a CPU; for tests and smoke runs.
    "tiny": CodecConfig(channels=16, latent_dim=32, preset="tiny"),
    # The edge default: within 0.5 GMAC per second of audio for encode + decode.
    "small": CodecConfig(channels=30, latent_dim=64, preset="small"),
    # Wider and deeper, for users who train on GPUs.
    "base": CodecConfig(channels=64, dilations=(1, 3, 9), latent_dim=256, preset="base"),
}


def preset(name: str) -> CodecConfig:
    """The named preset's config."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}") from None
