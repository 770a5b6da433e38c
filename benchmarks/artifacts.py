"""Probes for the codec's audible faults, each a number a test can hold to a target.

1. Frame-rate buzz: the output of 5 s of white noise at −60 dBFS (RMS) should have no narrowband peak far above
   the median of its spectrum (`noise_peak_over_median_db`), and digital silence should decode to silence
   (`silence_dbfs`, RMS).
2. The 4 kHz line (a quarter of 16 kHz: the 4-phase fold): in the outputs of silence and quiet noise, the
   spectrum at 4 kHz against the spectrum 200 Hz either side (`tone_4k_db`).
3. Quiet talkers: SNR of a speech clip scaled to peak at −40 dBFS against the same clip at −6 dBFS
   (`quiet_snr_drop_db`).
4. Hiss on band-limited input: speech low-passed at 4 kHz; the output above 4.5 kHz against the speech band
   (`bandlimited_leak_db`, negative: how far below).
Spectra are Welch averages (Hann, 4096 samples, half overlap) in power per bin.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import signal

from sscodec.benchmarks.quality import WholeClipCodec

NFFT = 4096
TARGETS = {  # the faults' right values: (metric, comparison, bound)
    "noise_peak_over_median_db": ("<=", 20.0),
    "silence_dbfs": ("<=", -70.0),
    "tone_4k_db": ("<=", 10.0),
    "quiet_snr_drop_db": ("<=", 3.0),
    "bandlimited_leak_db": ("<=", -45.0),
}


@dataclass(frozen=True)
class Artifacts:
    """The probes' values for one model at one codebook count (all in dB)."""

    noise_peak_over_median_db: float
    silence_dbfs: float
    tone_4k_db: float
    quiet_snr_drop_db: float
    bandlimited_leak_db: float

    def failures(self) -> dict[str, float]:
        """The probes that miss their TARGETS, with their values."""
        values = asdict(self)
        return {name: values[name] for name, (_, bound) in TARGETS.items() if not values[name] <= bound}


PCM16_NOISE_POWER = 2.0**-30 / 12  # the quantisation noise of 16-bit PCM: step 2^-15 of full scale, step²/12


def _spectrum(audio: np.ndarray, rate: int) -> tuple[np.ndarray, np.ndarray]:
    """Welch power spectral density plus the density of 16-bit PCM's quantisation noise (white, one-sided).

    The floor is what any 16-bit file of the output would hold anyway: a line is only a line above it. Without
    it a decoder that answers silence with an exact constant gets ratios of float32 rounding patterns (~-190 dB).
    """
    freqs, power = signal.welch(audio.astype(np.float64), fs=rate, window="hann", nperseg=NFFT)
    return freqs, power + 2 * PCM16_NOISE_POWER / rate


def _dbfs(audio: np.ndarray) -> float:
    return float(10 * np.log10(np.mean(audio.astype(np.float64) ** 2) + 1e-20))


def peak_over_median_db(audio: np.ndarray, rate: int, low: float = 40.0) -> float:
    """Highest bin above `low` Hz against the median of the spectrum, in dB."""
    freqs, power = _spectrum(audio, rate)
    band = power[(freqs >= low) & (freqs <= 0.49 * rate)]
    return float(10 * np.log10(band.max() / np.median(band)))


def line_db(audio: np.ndarray, rate: int, frequency: float, side: float = 200.0) -> float:
    """The spectrum within 30 Hz of `frequency` against its median from 50 to `side` Hz on either side, in dB."""
    freqs, power = _spectrum(audio, rate)
    line = power[np.abs(freqs - frequency) <= 30].max()
    near = power[(np.abs(freqs - frequency) >= 50) & (np.abs(freqs - frequency) <= side)]
    return float(10 * np.log10(line / np.median(near)))


MAX_SNR_DB = 100.0  # beyond this a codec is transparent; it keeps a lossless stand-in's SNR finite


def snr_db(reference: np.ndarray, estimate: np.ndarray) -> float:
    """Signal-to-error ratio in dB, at most MAX_SNR_DB."""
    signal_energy = np.sum(reference.astype(np.float64) ** 2)
    error = np.sum((reference.astype(np.float64) - estimate) ** 2)
    return float(min(MAX_SNR_DB, 10 * np.log10(signal_energy / max(error, signal_energy * 10 ** (-MAX_SNR_DB / 10)))))


def lowpass(audio: np.ndarray, rate: int, cutoff: float) -> np.ndarray:
    """Zero-phase low-pass with a stop band 60 dB down from 1.05 × `cutoff` (Kaiser FIR)."""
    taps = signal.firwin(1023, cutoff, window=("kaiser", 8.0), fs=rate)
    return signal.filtfilt(taps, [1.0], audio.astype(np.float64)).astype(np.float32)


def measure(codec: WholeClipCodec, speech: np.ndarray, codebooks: int, seed: int = 0) -> Artifacts:
    """Run every probe through `codec` at `codebooks`, with `speech` (mono, the model's rate) for 3 and 4."""
    rate = codec.info.sample_rate

    def code(audio: np.ndarray) -> np.ndarray:
        return codec.decode(codec.encode(audio.astype(np.float32)), codebooks, audio.size)

    noise = np.random.default_rng(seed).standard_normal(5 * rate)
    noise = (noise / np.sqrt(np.mean(noise**2)) * 10 ** (-60 / 20)).astype(np.float32)
    noise_out, silence_out = code(noise), code(np.zeros(5 * rate, dtype=np.float32))
    # Skip the first frames: the decoder starts from a zero state.
    steady = slice(rate // 2, None)
    peaks = [line_db(out[steady], rate, rate / 4) for out in (noise_out, silence_out)]
    scaled = {peak: speech / np.abs(speech).max() * 10 ** (peak / 20) for peak in (-40, -6)}
    snrs = {peak: snr_db(audio, code(audio)) for peak, audio in scaled.items()}
    limited = lowpass(scaled[-6], rate, 4000)
    freqs, power = _spectrum(code(limited), rate)
    speech_band = power[(freqs >= 100) & (freqs <= 4000)].mean()
    leak = power[freqs >= 4500].mean()
    return Artifacts(
        noise_peak_over_median_db=peak_over_median_db(noise_out[steady], rate),
        silence_dbfs=_dbfs(silence_out[steady]),
        tone_4k_db=max(peaks),
        quiet_snr_drop_db=snrs[-6] - snrs[-40],
        bandlimited_leak_db=float(10 * np.log10(leak / speech_band)),
    )
