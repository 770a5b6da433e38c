"""Opus through opus-tools (libopus): a clip in, the decoded clip out, at 16 kHz with 20 ms frames."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile

from sscodec.benchmarks.errors import BenchError

# Constant bitrate so each rate is exactly the one compared (VBR would average around it); 20 ms frames as the
# codec's; complexity 10, the libopus default and best quality.
ENCODE = "opusenc --bitrate {kbps} --hard-cbr --framesize 20 --comp 10 --quiet {src} {dst}"
# Decoding straight to 16 kHz float; opusdec drops the pre-skip and trims the end by the final granule position,
# so the output has the input's length (checked and reported, never silently assumed).
DECODE = "opusdec --rate 16000 --float --quiet {src} {dst}"


@dataclass(frozen=True)
class OpusResult:
    """Decoded audio cut or padded to the input's length, and what the round trip took."""

    audio: np.ndarray
    decoded_samples: int  # before alignment; equals the input's length when opusdec trimmed correctly
    file_bytes: int  # the Ogg Opus file, container overhead included


def opus_missing() -> str | None:
    """Why Opus cannot run here, or None."""
    missing = [tool for tool in ("opusenc", "opusdec") if shutil.which(tool) is None]
    return f"{' and '.join(missing)} not found (apt-get install opus-tools)" if missing else None


def commands(kbps: float | str) -> list[str]:
    """The two command lines one round trip runs, with placeholder file names."""
    return [
        ENCODE.format(kbps=kbps, src="in.wav", dst="out.opus"),
        DECODE.format(src="out.opus", dst="out.wav"),
    ]


def opus_roundtrip(audio: np.ndarray, sample_rate: int, kbps: float) -> OpusResult:
    """Encode mono float audio at `sample_rate` (16 kHz) to Opus at `kbps` and decode it back."""
    reason = opus_missing()
    if reason:
        raise BenchError(reason)
    with tempfile.TemporaryDirectory(prefix="codec-bench-opus-") as tmp:
        src, coded, dst = Path(tmp) / "in.wav", Path(tmp) / "out.opus", Path(tmp) / "out.wav"
        soundfile.write(src, audio, sample_rate, subtype="FLOAT")
        _run(ENCODE.format(kbps=kbps, src=src, dst=coded))
        _run(DECODE.format(src=coded, dst=dst))
        decoded, rate = soundfile.read(dst, dtype="float32")
        file_bytes = coded.stat().st_size
    if rate != sample_rate:
        raise BenchError(f"opusdec wrote {rate} Hz, expected {sample_rate}")
    aligned = np.zeros_like(audio)
    aligned[: min(audio.size, decoded.size)] = decoded[: audio.size]
    return OpusResult(aligned, int(decoded.size), file_bytes)


def _run(command: str) -> None:
    result = subprocess.run(shlex.split(command), capture_output=True, text=True, check=False)
    if result.returncode:
        detail = (result.stderr or result.stdout).strip().splitlines()
        raise BenchError(f"{command.split()[0]} failed ({detail[-1] if detail else result.returncode})")
