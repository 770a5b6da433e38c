"""Training losses: multi-scale log-mel, L1 waveform, and least-squares GAN with feature matching.

The adversarial losses take what `sscodec.train.discriminators.Discriminator` returns, one `DiscriminatorOutput` per
sub-discriminator, and sum over sub-discriminators (and layers, for feature matching) as HiFi-GAN and DAC do,
so their published weights (DAC: mel 15, adversarial 1, feature matching 2) carry over.
"""

from __future__ import annotations

from collections.abc import Sequence

import librosa
import numpy as np
import torch
from torch import Tensor, nn

from sscodec.train.discriminators import DiscriminatorOutput


class MultiScaleMelLoss(nn.Module):
    """L1 between log10 mel spectrograms at several window sizes, averaged over the scales (DAC-style).

    Each scale uses a periodic Hann window of `n_fft` samples, hop `n_fft // 4` and `n_fft // 8` mel bands
    (the most that leaves no band empty, as the tests check) from 0 Hz to Nyquist, with the Slaney mel scale
    and Slaney area normalisation: librosa's default filterbank (`librosa.filters.mel`), built once per scale
    as a buffer. The defaults, 64 to 1024 samples at 16 kHz (4 to 64 ms), span the time range of DAC's 32 to
    2048 samples at 44.1 kHz.

    Magnitudes (power=1), not powers: as in DAC, whose mel distances are then comparable with ours, and a log
    magnitude spreads speech over half the range of a log power so quiet bands are not drowned out.
    Unpadded frames (center=False): every frame holds only real samples (no mirrored or zero padding at the
    edges), so the input must be at least as long as the largest window (`min_length`).

    The values equal those of torchaudio's `MelSpectrogram` with the same settings, which this class used
    before (tests/test_train_losses.py holds reference values from it), so old mel distances stay comparable.
    """

    def __init__(
        self,
        sample_rate: int = 16000,
        window_sizes: tuple[int, ...] = (64, 128, 256, 512, 1024),
        clamp_eps: float = 1e-5,
    ) -> None:
        super().__init__()
        if not window_sizes or any(w < 16 for w in window_sizes):
            raise ValueError(f"window_sizes must be a non-empty tuple of sizes >= 16, got {window_sizes}")
        self.clamp_eps = clamp_eps
        self.min_length = max(window_sizes)
        self.window_sizes = tuple(window_sizes)
        for window in self.window_sizes:
            filterbank = librosa.filters.mel(
                sr=sample_rate, n_fft=window, n_mels=window // 8, fmin=0.0, fmax=sample_rate / 2,
                htk=False, norm="slaney", dtype=np.float32,
            )
            # Not persistent: derived from the config, so checkpoints and state dicts stay as they were.
            self.register_buffer(f"filterbank_{window}", torch.from_numpy(filterbank), persistent=False)
            self.register_buffer(f"window_{window}", torch.hann_window(window), persistent=False)

    def filterbank(self, window: int) -> Tensor:
        """The Slaney mel filterbank [window // 8, window // 2 + 1] of the scale with this window size."""
        return getattr(self, f"filterbank_{window}")

    def mel_spectrogram(self, audio: Tensor, window: int) -> Tensor:
        """Mel magnitudes [B, window // 8, frames] of float32 `audio` [B, T] at the scale with this window."""
        spectrum = torch.stft(
            audio, n_fft=window, hop_length=window // 4, window=getattr(self, f"window_{window}"),
            center=False, return_complex=True,
        ).abs()
        return torch.matmul(self.filterbank(window), spectrum)

    def log_mels(self, audio: Tensor) -> list[Tensor]:
        """log10 mel magnitudes [B, n_mels, frames] of `audio` [B, T] at every scale, in float32."""
        if audio.dim() != 2 or audio.shape[-1] < self.min_length:
            raise ValueError(
                f"mel loss needs [batch, samples] audio of at least {self.min_length} samples, "
                f"got shape {tuple(audio.shape)}"
            )
        # bf16 STFTs lose the quiet bands the log is meant to weigh, so the whole transform runs in float32.
        with torch.autocast(device_type=audio.device.type, enabled=False):
            audio = audio.float()
            return [
                self.mel_spectrogram(audio, window).clamp(min=self.clamp_eps).log10()
                for window in self.window_sizes
            ]

    def distance(self, pred: Tensor, target: Tensor) -> Tensor:
        """Per-item mean log-mel L1 [B], averaged over scales (the `mel_distance` metric)."""
        if pred.shape != target.shape:
            raise ValueError(f"pred and target shapes differ: {tuple(pred.shape)} vs {tuple(target.shape)}")
        per_scale = [
            (p - t).abs().mean(dim=(1, 2))
            for p, t in zip(self.log_mels(pred), self.log_mels(target), strict=True)
        ]
        return torch.stack(per_scale).mean(dim=0)

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        """Scalar loss: `distance` averaged over the batch."""
        return self.distance(pred, target).mean()


def l1_waveform_loss(pred: Tensor, target: Tensor) -> Tensor:
    """Mean absolute sample difference."""
    if pred.shape != target.shape:
        raise ValueError(f"pred and target shapes differ: {tuple(pred.shape)} vs {tuple(target.shape)}")
    return (pred - target).abs().mean()


def discriminator_loss(
    real_outputs: Sequence[DiscriminatorOutput], fake_outputs: Sequence[DiscriminatorOutput]
) -> Tensor:
    """LSGAN discriminator loss: push real logits to 1 and fake ones to 0 (fakes from detached audio)."""
    _check_pairs(real_outputs, fake_outputs)
    per_discriminator = [
        ((1 - real.logits.float()) ** 2).mean() + (fake.logits.float() ** 2).mean()
        for real, fake in zip(real_outputs, fake_outputs, strict=True)
    ]
    return torch.stack(per_discriminator).sum()


def generator_adversarial_loss(fake_outputs: Sequence[DiscriminatorOutput]) -> Tensor:
    """LSGAN generator loss: push the discriminators' logits on generated audio to 1."""
    if not fake_outputs:
        raise ValueError("no discriminator outputs")
    return torch.stack([((1 - fake.logits.float()) ** 2).mean() for fake in fake_outputs]).sum()


def feature_matching_loss(
    real_outputs: Sequence[DiscriminatorOutput], fake_outputs: Sequence[DiscriminatorOutput]
) -> Tensor:
    """Sum over sub-discriminators and layers of the mean L1 between fake and (detached) real features."""
    _check_pairs(real_outputs, fake_outputs)
    total = fake_outputs[0].logits.new_zeros((), dtype=torch.float32)
    for real, fake in zip(real_outputs, fake_outputs, strict=True):
        if len(real.features) != len(fake.features):
            raise ValueError("real and fake outputs have different numbers of feature maps")
        for real_feature, fake_feature in zip(real.features, fake.features, strict=True):
            total = total + (fake_feature.float() - real_feature.detach().float()).abs().mean()
    return total


def _check_pairs(
    real_outputs: Sequence[DiscriminatorOutput], fake_outputs: Sequence[DiscriminatorOutput]
) -> None:
    if not real_outputs or len(real_outputs) != len(fake_outputs):
        raise ValueError(
            f"need one real and one fake output per sub-discriminator, got {len(real_outputs)} real "
            f"and {len(fake_outputs)} fake"
        )
