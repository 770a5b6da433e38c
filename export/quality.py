"""Quality cost of a reduced-precision export: SNR and an 80-band log-mel distance of its decoded audio.

The 80-band figure (`mel80_distance`: one 1024-point scale, HTK mel) compares two exports of one model; it is not
the multi-scale `mel_distance` that training and the benchmarks report (train.losses.MultiScaleMelLoss).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import librosa
import numpy as np

N_FFT = 1024
HOP = 256
N_MELS = 80
LOG_FLOOR = 1e-5


@dataclass(frozen=True)
class QualityCost:
    """A variant's decoded audio against the fp32 export's, over a set of clips."""

    snr_db: float  # fp32 export's output as the reference: the higher, the smaller the cost
    mel80_distance: float  # mean |log10 mel| difference on 80 bands: 0 means no cost
    code_agreement: float  # share of encoder codes equal to the fp32 encoder's

    def summary(self) -> str:
        return (
            f"SNR {self.snr_db:.1f} dB, 80-band mel distance {self.mel80_distance:.4f}, "
            f"codes equal {100 * self.code_agreement:.1f}%"
        )


def snr_db(reference: np.ndarray, test: np.ndarray) -> float:
    """10·log10 of reference energy over error energy; inf when equal."""
    noise = float(np.sum((reference.astype(np.float64) - test) ** 2))
    signal = float(np.sum(reference.astype(np.float64) ** 2))
    return float("inf") if noise == 0 else 10.0 * np.log10(max(signal, 1e-20) / noise)


def mel80_distance(reference: np.ndarray, test: np.ndarray, sample_rate: int) -> float:
    """Mean absolute difference of log10 mel spectrograms (1024-point STFT, hop 256, 80 mels)."""
    return float(np.mean(np.abs(log_mel(reference, sample_rate) - log_mel(test, sample_rate))))


def log_mel(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """log10 mel magnitude spectrogram [frames, N_MELS] of mono audio [T]."""
    padded = np.pad(audio.astype(np.float64), (N_FFT // 2, N_FFT // 2))
    if padded.size < N_FFT:
        padded = np.pad(padded, (0, N_FFT - padded.size))
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP]
    magnitude = np.abs(np.fft.rfft(frames * np.hanning(N_FFT), axis=-1))
    return np.log10(np.maximum(magnitude @ mel_filterbank(sample_rate).T, LOG_FLOOR))


@lru_cache(maxsize=4)
def mel_filterbank(sample_rate: int) -> np.ndarray:
    """[N_MELS, N_FFT // 2 + 1] triangular filters, evenly spaced on the HTK mel scale up to Nyquist, peak 1
    (librosa's `filters.mel` with htk=True and no area normalisation)."""
    return librosa.filters.mel(
        sr=sample_rate, n_fft=N_FFT, n_mels=N_MELS, fmin=0.0, fmax=sample_rate / 2, htk=True, norm=None,
        dtype=np.float64,
    )
