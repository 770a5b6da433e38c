"""Validation metrics: pure functions of tensors, computed in float32, one value per batch item.

Silence guard: every energy gets `POWER_FLOOR` (a mean square of 1e-10, -100 dBFS) added before a ratio is
taken. That keeps silent clips finite without hiding a real fault: a silent reference decoded to audible
noise still reads as a very low SNR and a very large amplitude ratio, and silence decoded to silence reads
as a perfect 1.0 amplitude ratio. On speech (mean square around 1e-3) the floor moves no value measurably.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

POWER_FLOOR = 1e-10
# A reference whose mean square is below this (-80 dBFS) is silent: digital silence or a muted channel, far below
# any recorded speech (a quiet talker is around -40 dBFS). Ratios against it (SNR, SI-SDR, amplitude ratio, STOI)
# describe the guard, not the codec, so means over clips leave such clips out, as PESQ-WB does (found from outside:
# one silent clip made a validation set's mean amplitude ratio 184 and hid the "output amplitude under 50%" sign).
SILENT_POWER = 1e-8


def snr_db(estimate: Tensor, reference: Tensor) -> Tensor:
    """Signal-to-noise ratio [B] in dB of `estimate` against `reference`, both [B, T]."""
    estimate, reference = _checked(estimate, reference)
    return _ratio_db(_power(reference), _power(estimate - reference))


def si_sdr_db(estimate: Tensor, reference: Tensor) -> Tensor:
    """Scale-invariant signal-to-distortion ratio [B] in dB (Le Roux et al. 2019; both signals zero-meaned)."""
    estimate, reference = _checked(estimate, reference)
    estimate = estimate - estimate.mean(dim=-1, keepdim=True)
    reference = reference - reference.mean(dim=-1, keepdim=True)
    scale = (estimate * reference).mean(dim=-1, keepdim=True) / (_power(reference)[:, None] + POWER_FLOOR)
    target = scale * reference
    return _ratio_db(_power(target), _power(estimate - target))


def amplitude_ratio(estimate: Tensor, reference: Tensor) -> Tensor:
    """RMS of `estimate` over RMS of `reference` [B]; 1 means the level is kept."""
    estimate, reference = _checked(estimate, reference)
    return ((_power(estimate) + POWER_FLOOR) / (_power(reference) + POWER_FLOOR)).sqrt()


def silent(reference: Tensor) -> Tensor:
    """[B] bool: which clips of `reference` [B, T] are silent (mean square below SILENT_POWER)."""
    return _power(reference.float()) < SILENT_POWER


@dataclass
class CodebookUsage:
    """Per-codebook code usage: perplexity (effective number of codes) and the share of codes used at all."""

    perplexity: list[float]
    used_fraction: list[float]


def codebook_usage(codes: Tensor, codebook_size: int) -> CodebookUsage:
    """Usage of each codebook over all items and frames of `codes` [B, Q, F]."""
    if codes.dim() != 3 or codes.dtype.is_floating_point or codes.shape[0] * codes.shape[2] == 0:
        raise ValueError(
            f"codes must be a non-empty integer [B, Q, F] tensor, got {codes.dtype} {codes.shape}"
        )
    if codes.min() < 0 or codes.max() >= codebook_size:
        raise ValueError(
            f"codes must be in 0..{codebook_size - 1}, got values in {int(codes.min())}..{int(codes.max())}"
        )
    perplexity, used_fraction = [], []
    for book in codes.transpose(0, 1).reshape(codes.shape[1], -1):
        counts = torch.bincount(book, minlength=codebook_size).float()
        probs = counts / counts.sum()
        entropy = -(probs * probs.clamp(min=1e-30).log()).sum()
        perplexity.append(float(entropy.exp()))
        used_fraction.append(float((counts > 0).float().mean()))
    return CodebookUsage(perplexity, used_fraction)


def _checked(estimate: Tensor, reference: Tensor) -> tuple[Tensor, Tensor]:
    if estimate.shape != reference.shape or estimate.dim() != 2 or estimate.shape[-1] == 0:
        raise ValueError(
            f"estimate and reference must both be [batch, samples] with samples > 0, "
            f"got {tuple(estimate.shape)} and {tuple(reference.shape)}"
        )
    return estimate.float(), reference.float()


def _power(signal: Tensor) -> Tensor:
    return signal.square().mean(dim=-1)


def _ratio_db(signal_power: Tensor, noise_power: Tensor) -> Tensor:
    return 10 * torch.log10((signal_power + POWER_FLOOR) / (noise_power + POWER_FLOOR))
