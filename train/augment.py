"""Training-crop augmentation: random gain, band-limiting (with or without codec-like resampling), additive noise,
and quiet background crops (digital silence or faint coloured noise) in place of speech.

Every function takes mono float32 audio [T] and returns a new array [T]; randomness comes only from the
`numpy.random.Generator` passed in, so a caller that seeds it from (seed, rank, step) gets the same augmented
batch on resume. `augment` applies each effect with its probability; the others are usable on their own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import soxr

# A noise source: (generator, length in samples) → mono float32 noise [length].
NoiseSource = Callable[[np.random.Generator, int], np.ndarray]


@dataclass(frozen=True)
class Augmentation:
    """Which effects `augment` applies, how often (probabilities in [0, 1]) and over which ranges.

    gain_db: relative gain in dB, uniform over the range. lowpass_hz: cut-off, uniform over the range;
    `resample_share` of the band-limited crops go down to twice the cut-off and back up with soxr (a codec-like
    band limit with its anti-alias filter), the rest through a spectral low-pass. noise_snr_db: speech-to-noise
    ratio of the added noise, uniform over the range. quiet_prob: share of crops replaced by a pause as a
    codec meets it between words: digital silence (`silence_share` of them) or white, pink or brown noise at an
    RMS level uniform over `quiet_dbfs` (dB re full scale). The target is the quiet crop itself, so the loss sees
    any tone or frame-rate pattern the decoder adds where there is nothing to code.
    """

    gain_prob: float = 0.0
    gain_db: tuple[float, float] = (-40.0, 6.0)
    lowpass_prob: float = 0.0
    lowpass_hz: tuple[float, float] = (3400.0, 8000.0)
    resample_share: float = 0.5
    noise_prob: float = 0.0
    noise_snr_db: tuple[float, float] = (10.0, 30.0)
    quiet_prob: float = 0.0
    quiet_dbfs: tuple[float, float] = (-80.0, -40.0)
    silence_share: float = 0.25

    @property
    def active(self) -> bool:
        return self.gain_prob > 0 or self.lowpass_prob > 0 or self.noise_prob > 0 or self.quiet_prob > 0


def apply_gain(audio: np.ndarray, gain_db: float) -> np.ndarray:
    """`audio` scaled by `gain_db` dB, clipped to [-1, 1] as a recording would be."""
    return np.clip(audio * np.float32(10 ** (gain_db / 20)), -1.0, 1.0).astype(np.float32, copy=False)


def lowpass(audio: np.ndarray, sample_rate: int, cutoff_hz: float) -> np.ndarray:
    """Zero-phase low-pass: full gain up to 0.9 × `cutoff_hz`, a raised-cosine roll-off to silence at it.

    A spectral mask on the whole crop (no filter state): the crop is the unit of training, and the smooth
    roll-off keeps the ringing of a brick-wall mask out of the data.
    """
    if cutoff_hz >= sample_rate / 2:
        return audio.astype(np.float32, copy=True)
    spectrum = np.fft.rfft(audio)
    freqs = np.fft.rfftfreq(len(audio), 1 / sample_rate)
    edge = 0.9 * cutoff_hz
    ramp = np.clip((freqs - edge) / (cutoff_hz - edge), 0.0, 1.0)
    mask = 0.5 * (1 + np.cos(np.pi * ramp))
    return np.fft.irfft(spectrum * mask, n=len(audio)).astype(np.float32)


def resample_band_limit(audio: np.ndarray, sample_rate: int, cutoff_hz: float) -> np.ndarray:
    """Down to 2 × `cutoff_hz` and back up to `sample_rate` with soxr: the band limit of a narrower codec."""
    low_rate = round(2 * float(cutoff_hz))
    if low_rate >= sample_rate:
        return audio.astype(np.float32, copy=True)
    down = soxr.resample(audio, sample_rate, low_rate, quality="HQ")
    up = soxr.resample(down, low_rate, sample_rate, quality="HQ").astype(np.float32, copy=False)
    out = np.zeros_like(audio, dtype=np.float32)
    out[: min(len(up), len(audio))] = up[: len(audio)]
    return out


def add_noise(audio: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """`audio` plus `noise` [T] scaled to `snr_db` below the audio's power (silent audio or noise: unchanged)."""
    speech_power = float(np.mean(np.square(audio, dtype=np.float64)))
    noise_power = float(np.mean(np.square(noise, dtype=np.float64)))
    if speech_power <= 1e-10 or noise_power <= 1e-10:
        return audio.astype(np.float32, copy=True)
    scale = np.sqrt(speech_power / noise_power / 10 ** (snr_db / 10))
    return np.clip(audio + scale * noise, -1.0, 1.0).astype(np.float32)


def coloured_noise(rng: np.random.Generator, length: int, slope: float, rms_dbfs: float) -> np.ndarray:
    """Gaussian noise [length] whose power falls `slope` dB per octave (0 white, 3 pink, 6 brown), at `rms_dbfs`.

    Shaped in the frequency domain (power ∝ f^(-slope / 3.01), the DC bin set to zero), then scaled to the RMS level.
    """
    spectrum = np.fft.rfft(rng.standard_normal(length))
    freqs = np.fft.rfftfreq(length)
    shape = np.zeros_like(freqs)
    shape[1:] = freqs[1:] ** (-slope / (20 * np.log10(2)))
    shaped = np.fft.irfft(spectrum * shape, n=length)
    rms = np.sqrt(np.mean(np.square(shaped)))
    return (shaped * (10 ** (rms_dbfs / 20) / max(rms, 1e-12))).astype(np.float32)


def augment(
    audio: np.ndarray,
    rng: np.random.Generator,
    settings: Augmentation,
    sample_rate: int,
    noise: NoiseSource | None = None,
) -> np.ndarray:
    """Band-limit, add noise, then change the gain of `audio` [T], each with its probability in `settings`; or,
    with probability `settings.quiet_prob`, return a quiet background crop of the same length instead.

    The generator is drawn from the same number of times whichever effects fire, so one crop's augmentation
    never shifts the next one's. Raises ValueError when `settings.noise_prob` > 0 and there is no `noise`.
    """
    if settings.noise_prob > 0 and noise is None:
        raise ValueError("noise_prob > 0 needs a noise source")
    u_lowpass, u_resample, u_noise, u_gain = rng.random(4)
    cutoff = rng.uniform(*settings.lowpass_hz)
    snr = rng.uniform(*settings.noise_snr_db)
    gain = rng.uniform(*settings.gain_db)
    noise_seed = rng.integers(2**63)
    u_quiet, u_silence = rng.random(2)
    quiet_level = rng.uniform(*settings.quiet_dbfs)
    quiet_slope = rng.choice((0.0, 3.0, 6.0))
    if u_quiet < settings.quiet_prob:
        if u_silence < settings.silence_share:
            return np.zeros(len(audio), dtype=np.float32)
        return coloured_noise(np.random.default_rng(noise_seed), len(audio), quiet_slope, quiet_level)
    out = audio.astype(np.float32, copy=True)
    if u_lowpass < settings.lowpass_prob:
        band_limit = resample_band_limit if u_resample < settings.resample_share else lowpass
        out = band_limit(out, sample_rate, cutoff)
    if u_noise < settings.noise_prob:
        out = add_noise(out, noise(np.random.default_rng(noise_seed), len(out)), snr)
    if u_gain < settings.gain_prob:
        out = apply_gain(out, gain)
    return out
