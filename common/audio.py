"""Reading and writing audio files without torch: soundfile to decode, soxr to resample."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile
import soxr

from sscodec.common.errors import first_line

MIN_RATE, MAX_RATE = 1000, 768_000  # Hz: beyond any real recording, so outside is a damaged header
# Samples × channels decoded at once (2 GiB of float32, 3 hours of 48 kHz mono): a damaged header can
# declare billions of frames, and allocating them is a crash, not an error message.
MAX_VALUES = 2**29


class AudioFileError(ValueError):
    """An audio file that cannot be used: missing, unreadable, empty or not finite."""


@dataclass(frozen=True)
class AudioInfo:
    """What a file's header declares: `frames` per channel at `sample_rate` Hz, `channels` channels."""

    frames: int
    sample_rate: int
    channels: int

    @property
    def seconds(self) -> float:
        return self.frames / self.sample_rate


def _check_readable(path: Path) -> None:
    if not path.exists():
        raise AudioFileError(f"{path}: no such file")
    if path.is_dir():
        raise AudioFileError(f"{path}: is a directory, not an audio file")
    try:
        path.open("rb").close()  # libsndfile reports a file it may not read only as "System error."
    except OSError as error:
        raise AudioFileError(f"{path}: cannot read ({error.strerror or error})") from None


def probe_audio(path: str | os.PathLike) -> AudioInfo:
    """Read only the header of `path`; AudioFileError if it is not usable audio (no frames, absurd rate)."""
    path = Path(path)
    _check_readable(path)
    try:
        with soundfile.SoundFile(path) as handle:
            info = AudioInfo(handle.frames, handle.samplerate, handle.channels)
    except (soundfile.LibsndfileError, RuntimeError, OSError, ValueError, TypeError) as error:
        raise AudioFileError(f"{path}: cannot decode audio ({first_line(error)})") from None
    if info.frames <= 0 or info.channels <= 0:
        raise AudioFileError(f"{path}: no audio samples")
    if not MIN_RATE <= info.sample_rate <= MAX_RATE:
        raise AudioFileError(
            f"{path}: unsupported sample rate {info.sample_rate} Hz (expected {MIN_RATE}..{MAX_RATE})"
        )
    return info


def read_frames(path: str | os.PathLike, start: int, frames: int) -> np.ndarray:
    """Frames [start, start + frames) of `path` as float32 [T, channels], T ≤ `frames` near the end.

    Seeks instead of decoding from the start (exact for WAV, FLAC and OGG; see the README on mp3).
    Raises AudioFileError for a file that cannot be opened or decoded there, or a range over `MAX_VALUES`.
    """
    path = Path(path)
    try:
        with soundfile.SoundFile(path) as handle:
            too_many = frames * handle.channels > MAX_VALUES
            if not too_many:
                handle.seek(start)
                data = handle.read(frames, dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError, OSError, ValueError, TypeError, MemoryError) as error:
        raise AudioFileError(f"{path}: cannot decode audio ({first_line(error)})") from None
    if too_many:
        raise AudioFileError(f"{path}: {frames:,} frames are more than {MAX_VALUES:,} values to decode at once")
    return data


def read_audio(path: str | os.PathLike, sample_rate: int) -> np.ndarray:
    """Decode any soundfile-readable file to mono float32 at `sample_rate`, shape [T]."""
    path = Path(path)
    _check_readable(path)
    try:
        with soundfile.SoundFile(path) as handle:
            declared = handle.frames * handle.channels
            rate = handle.samplerate
            data = handle.read(dtype="float32", always_2d=True) if declared <= MAX_VALUES else None
    except (soundfile.LibsndfileError, RuntimeError, OSError, ValueError, TypeError, MemoryError) as error:
        raise AudioFileError(f"{path}: cannot decode audio ({first_line(error)})") from None
    if data is None:
        raise AudioFileError(f"{path}: declares {declared:,} samples, more than {MAX_VALUES:,} to decode at once")
    return to_mono_rate(data, rate, sample_rate, name=str(path))


def to_mono_rate(data: np.ndarray, rate: int, sample_rate: int, name: str = "audio") -> np.ndarray:
    """Mix [T, C] (or [T]) audio to mono float32 and resample from `rate` to `sample_rate`."""
    data = np.asarray(data, dtype=np.float32)
    if data.ndim not in (1, 2):
        raise AudioFileError(f"{name}: expected [samples] or [samples, channels], got {data.shape}")
    if data.size == 0:
        raise AudioFileError(f"{name}: no audio samples")
    if not np.isfinite(data).all():
        raise AudioFileError(f"{name}: contains NaN or Inf samples")
    # A garbled header can claim any rate; 1 Hz upsampled to 16 kHz would need 16000x the memory.
    if not MIN_RATE <= rate <= MAX_RATE:
        raise AudioFileError(f"{name}: unsupported sample rate {rate} Hz (expected {MIN_RATE}..{MAX_RATE})")
    if data.ndim == 2:
        # Summing pre-scaled channels cannot overflow float32 where a plain mean of huge samples would.
        data = (data / np.float32(data.shape[1])).sum(axis=1, dtype=np.float32)
    if rate != sample_rate:
        data = soxr.resample(data, rate, sample_rate, quality="HQ").astype(np.float32, copy=False)
    if data.size == 0:
        raise AudioFileError(f"{name}: shorter than one sample at {sample_rate} Hz")
    if not np.isfinite(data).all():
        raise AudioFileError(f"{name}: samples too large to resample (beyond float32 range)")
    return np.ascontiguousarray(data)


def write_audio(path: str | os.PathLike, audio: np.ndarray, sample_rate: int, exact: bool = False) -> None:
    """Write mono float audio; the format follows the file extension (wav as 16-bit PCM).

    `exact` keeps the float32 samples bit for bit where the format can hold them (WAV, AIFF, CAF, W64), so a
    recording can be replayed through the codec and give the same output.
    """
    path = Path(path)
    subtype = "PCM_16" if path.suffix.lower() in {".wav", ".flac"} else None
    container = path.suffix.lstrip(".").upper()
    if exact and container in soundfile.available_formats() and soundfile.check_format(container, "FLOAT"):
        subtype = "FLOAT"
    try:
        soundfile.write(path, np.clip(audio, -1.0, 1.0), sample_rate, subtype=subtype)
    except (soundfile.LibsndfileError, RuntimeError, OSError, TypeError, ValueError) as error:
        raise AudioFileError(f"{path}: cannot write audio ({first_line(error)})") from None
