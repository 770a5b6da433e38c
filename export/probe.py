"""A short deterministic speech-like signal for parity checks when no real audio is given."""

from __future__ import annotations

import numpy as np


def probe_signal(sample_rate: int, seconds: float, seed: int = 0) -> np.ndarray:
    """[T] float32: a gliding harmonic "voice" with syllable-rate bursts and breath noise, peak about 0.5."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(sample_rate * seconds)) / sample_rate
    f0 = 110.0 + 60.0 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / sample_rate
    voice = sum(np.sin(k * phase) / k for k in range(1, 16))
    syllables = 0.5 + 0.5 * np.sin(2 * np.pi * 4.0 * t) ** 2
    noise = 0.05 * rng.standard_normal(t.size)
    signal = voice * syllables + noise
    return (0.5 * signal / np.abs(signal).max()).astype(np.float32)
