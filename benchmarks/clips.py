"""Speech clips for the benchmarks: every audio file in a folder, mono at the codec's rate."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sscodec.benchmarks.errors import BenchError
from sscodec.export.calibration import audio_files
from sscodec.common.audio import read_audio

# The shared speech the README names (read-only); the default for benchmarks that need real audio.
SHARED_VAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "telugu" / "val"


def read_clips(directory: Path, sample_rate: int) -> dict[str, np.ndarray]:
    """File name → mono float32 audio at `sample_rate`, for every audio file directly in `directory`."""
    if not directory.is_dir():
        raise BenchError(f"{directory}: audio folder not found")
    files = audio_files(directory)
    if not files:
        raise BenchError(f"{directory}: no audio files (.wav, .flac, .ogg, .mp3)")
    return {path.name: read_audio(path, sample_rate) for path in files}


def tile_to(clips: list[np.ndarray], samples: int) -> np.ndarray:
    """The clips joined end to end, repeated until `samples` long, cut to exactly that."""
    joined = np.concatenate(clips)
    return np.tile(joined, -(-samples // joined.size))[:samples]
