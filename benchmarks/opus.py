"""Opus, the reference codec: libopus through the `opuscodec` binding (which bundles libopus 1.6.1).

A clip goes in as 16-bit PCM at the codec's rate and comes back at that rate with exactly its length. The binding
writes Ogg Opus with libopus' default VBR at the requested bitrate (it exposes no hard-CBR switch), complexity 10,
20 ms frames; so the bits a clip really cost are reported beside the target (`ogg_kbps`, container included).
libopus decodes at 48 kHz; soxr (VHQ) brings it back to the input's rate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import soxr

from sscodec.benchmarks.errors import BenchError

DECODE_RATE = 48000
COMPLEXITY = 10
METHOD = (
    "libopus via the opuscodec binding: 16-bit PCM at 16 kHz in, Ogg Opus with VBR at the target bitrate, "
    f"complexity {COMPLEXITY}, 20 ms frames; decoded at {DECODE_RATE} Hz (pre-skip and end trimmed by the "
    "decoder) and resampled to 16 kHz with soxr VHQ"
)


@dataclass(frozen=True)
class OpusResult:
    """Decoded audio with the input's length, and the Ogg Opus stream's size."""

    audio: np.ndarray
    file_bytes: int  # the Ogg Opus stream, container overhead included


def opus_version() -> str | None:
    """The libopus version string of the installed binding, or None without it."""
    try:
        import opuscodec
    except ImportError:
        return None
    return opuscodec.opus_version()


def opus_missing() -> str | None:
    """Why Opus cannot run here, or None."""
    return None if opus_version() else "the opuscodec package is not installed (pip install opuscodec)"


def opus_roundtrip(audio: np.ndarray, sample_rate: int, kbps: float) -> OpusResult:
    """Encode mono float audio [T] at `sample_rate` to Opus at `kbps` and decode it back to [T] float32."""
    stream = opus_encode(audio, sample_rate, kbps)
    decoded = opus_decode(stream)
    if decoded.size * sample_rate != audio.size * DECODE_RATE:
        raise BenchError(f"libopus returned {decoded.size} samples at {DECODE_RATE} Hz for {audio.size} at {sample_rate} Hz")
    back = soxr.resample(decoded, DECODE_RATE, sample_rate, quality="VHQ")[: audio.size]
    return OpusResult(np.pad(back, (0, audio.size - back.size)).astype(np.float32), len(stream))


# libopus's bitrate range (OPUS_SET_BITRATE: 500 to 512,000 bit/s; it refuses others with "Invalid bitrate").
OPUS_MIN_KBPS, OPUS_MAX_KBPS = 0.5, 512.0


def opus_encode(audio: np.ndarray, sample_rate: int, kbps: float) -> bytes:
    """Mono float audio [T] at `sample_rate` as an Ogg Opus stream at `kbps` (libopus; see METHOD)."""
    if opus_missing():
        raise BenchError(opus_missing())
    import opuscodec

    pcm = np.round(np.clip(audio, -1.0, 1.0) * 32767).astype(np.int16).reshape(-1, 1)
    encoder = opuscodec.OpusBufferedEncoder(
        sample_rate=sample_rate, channels=1, bitrate=round(kbps * 1000), encoder_complexity=COMPLEXITY
    )
    return encoder.write(pcm) + encoder.flush()


def opus_decode(stream: bytes) -> np.ndarray:
    """An Ogg Opus stream decoded by libopus: mono float32 at DECODE_RATE, pre-skip and end trimmed."""
    import opuscodec

    return opuscodec.OpusBufferedDecoder().decode(stream)[:, 0].astype(np.float32) / 32768
