"""Small GAN discriminators: multi-period (HiFi-GAN) and multi-resolution, multi-band complex STFT (DAC).

Sized so they do not dominate a training step on a CPU. Measured on this project's 2-core CPU machine (torch
2.11 eager, torch.set_num_threads(2), batch 8 x 8000 samples, median of 5, machine otherwise idle):

    Codec(preset("small")) forward + backward, L1 + VQ              0.19 s   (with multi-scale mel: 0.21 s)
    Discriminator.for_preset("small") (width 8, 0.3 M parameters)
        update: forward on real and fake, backward                 0.15 s   (periods 0.06 s, STFT 0.10 s)
        its part of the generator step (adversarial + features)    0.15 s
    width 16 (1.2 M parameters): update                             0.24 s
    Codec(preset("tiny")) forward + backward, L1 + VQ               0.07 s
    Discriminator.for_preset("tiny") (width 4): update               0.12 s   (per-op overhead bound)

So a full GAN step costs about 2.6 times a reconstruction-only one with `small`. With an unstrided first STFT
layer (as in DAC) the STFT part alone took 0.19 s; the five bands cost about twice one band (more, smaller ops).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from sscodec.codec.conv import weight_normed

# DAC's split of the frequency axis, as fractions of the bins: finer bands where speech has most energy.
DAC_BANDS: tuple[tuple[float, float], ...] = ((0.0, 0.1), (0.1, 0.25), (0.25, 0.5), (0.5, 0.75), (0.75, 1.0))
LEAKY_SLOPE = 0.1


@dataclass
class DiscriminatorOutput:
    """One sub-discriminator's verdict: logits map and the hidden feature maps (for feature matching)."""

    logits: Tensor
    features: list[Tensor]


def _conv2d(
    in_channels: int, out_channels: int, kernel: tuple[int, int], stride: tuple[int, int] = (1, 1)
) -> nn.Module:
    """Weight-normed Conv2d with 'same' padding (a discriminator need not be causal)."""
    padding = (kernel[0] // 2, kernel[1] // 2)
    return weight_normed(nn.Conv2d(in_channels, out_channels, kernel, stride=stride, padding=padding))


class PeriodDiscriminator(nn.Module):
    """2-D convs over the waveform folded into rows of `period` samples, strided along the rows."""

    def __init__(self, period: int, channels: tuple[int, ...]) -> None:
        super().__init__()
        self.period = period
        widths = (1, *channels)
        self.convs = nn.ModuleList(
            _conv2d(widths[i], widths[i + 1], (5, 1), stride=(3, 1)) for i in range(len(channels))
        )
        self.post = _conv2d(channels[-1], 1, (3, 1))

    def forward(self, audio: Tensor) -> DiscriminatorOutput:
        x = F.pad(audio, (0, -audio.shape[-1] % self.period))
        x = x.view(x.shape[0], 1, -1, self.period)
        features = []
        for conv in self.convs:
            x = F.leaky_relu(conv(x), LEAKY_SLOPE)
            features.append(x)
        return DiscriminatorOutput(self.post(x), features)


class MultiPeriodDiscriminator(nn.Module):
    """One `PeriodDiscriminator` per period; co-prime periods see different sample interleavings."""

    def __init__(
        self, periods: tuple[int, ...] = (2, 3, 5, 7, 11), channels: tuple[int, ...] = (8, 16, 32, 32)
    ) -> None:
        super().__init__()
        self.discriminators = nn.ModuleList(PeriodDiscriminator(p, channels) for p in periods)

    def forward(self, audio: Tensor) -> list[DiscriminatorOutput]:
        return [d(audio) for d in self.discriminators]


class STFTDiscriminator(nn.Module):
    """2-D convs over one complex STFT (real and imaginary parts as 2 channels), one conv stack per band.

    Layout [B, 2, frames, bins]. The first `depth` convs stride by 2 in both time and frequency (their
    kernels overlap, so every frame and bin is still seen): DAC strides in frequency only and keeps a
    full-resolution first layer, which on a 2-core CPU alone costs about as much as the generator step.
    """

    def __init__(
        self, window: int, channels: int, bands: tuple[tuple[float, float], ...], depth: int = 3
    ) -> None:
        super().__init__()
        self.window = window
        n_bins = window // 2 + 1
        self.band_bins = [(int(lo * n_bins), int(hi * n_bins)) for lo, hi in bands]
        if any(hi - lo < 2**depth for lo, hi in self.band_bins):
            raise ValueError(f"a band of {bands} has fewer than {2**depth} bins at window {window}")
        self.register_buffer("hann", torch.hann_window(window), persistent=False)
        widths = (2,) + (channels,) * depth
        self.stacks = nn.ModuleList(
            nn.ModuleList(
                [_conv2d(widths[i], widths[i + 1], (3, 9), stride=(2, 2)) for i in range(depth)]
                + [_conv2d(channels, channels, (3, 3))]
            )
            for _ in bands
        )
        self.post = _conv2d(channels, 1, (3, 3))

    def spectrogram(self, audio: Tensor) -> Tensor:
        """Complex STFT as [B, 2, frames, bins], normalised so every window size sees a similar scale."""
        with torch.autocast(device_type=audio.device.type, enabled=False):
            spec = torch.stft(
                audio.float(),
                self.window,
                hop_length=self.window // 4,
                window=self.hann,
                normalized=True,
                return_complex=True,
            )
        return torch.view_as_real(spec).permute(0, 3, 2, 1)

    def forward(self, audio: Tensor) -> DiscriminatorOutput:
        spec = self.spectrogram(audio)
        per_band = []
        for (lo, hi), stack in zip(self.band_bins, self.stacks, strict=True):
            x = spec[..., lo:hi]
            layers = []
            for conv in stack:
                x = F.leaky_relu(conv(x), LEAKY_SLOPE)
                layers.append(x)
            per_band.append(layers)
        # Bands are joined along frequency, layer by layer, so feature matching sees each layer whole.
        features = [torch.cat(layer, dim=-1) for layer in zip(*per_band, strict=True)]
        return DiscriminatorOutput(self.post(features[-1]), features)


class MultiResolutionSTFTDiscriminator(nn.Module):
    """One `STFTDiscriminator` per window size (hop = window / 4)."""

    def __init__(
        self,
        window_sizes: tuple[int, ...] = (256, 512, 1024),
        channels: int = 16,
        bands: tuple[tuple[float, float], ...] = DAC_BANDS,
    ) -> None:
        super().__init__()
        self.discriminators = nn.ModuleList(STFTDiscriminator(w, channels, bands) for w in window_sizes)

    def forward(self, audio: Tensor) -> list[DiscriminatorOutput]:
        return [d(audio) for d in self.discriminators]


class Discriminator(nn.Module):
    """Multi-period plus multi-resolution STFT discriminators; `width` scales every channel count.

    Unlike DAC, the input is not peak-normalised per clip: the discriminators see the output level, so they
    can push back on the quiet outputs (amplitude ratio well under 1) that reconstruction losses leave.
    """

    WIDTHS: ClassVar[dict[str, int]] = {"tiny": 4, "small": 8, "base": 32}

    def __init__(
        self,
        width: int = 8,
        periods: tuple[int, ...] = (2, 3, 5, 7, 11),
        window_sizes: tuple[int, ...] = (256, 512, 1024),
        bands: tuple[tuple[float, float], ...] = DAC_BANDS,
    ) -> None:
        super().__init__()
        self.period = MultiPeriodDiscriminator(periods, (width, 2 * width, 4 * width, 4 * width))
        self.stft = MultiResolutionSTFTDiscriminator(window_sizes, 2 * width, bands)

    @classmethod
    def for_preset(cls, name: str) -> Discriminator:
        """The discriminator sized for the codec preset `name` (tiny, small or base)."""
        try:
            return cls(width=cls.WIDTHS[name])
        except KeyError:
            raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(cls.WIDTHS)}") from None

    def forward(self, audio: Tensor) -> list[DiscriminatorOutput]:
        """One output per sub-discriminator: the periods first, then the STFT resolutions."""
        if audio.dim() != 2:
            raise ValueError(f"audio must be [batch, samples], got shape {tuple(audio.shape)}")
        return self.period(audio) + self.stft(audio)
