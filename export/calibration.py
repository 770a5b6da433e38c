"""Speech clips from a folder, for int8 calibration and for measuring the quality cost of fp16/int8."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sscodec.common.audio import AUDIO_SUFFIXES, read_audio


def audio_files(directory: Path) -> list[Path]:
    """Audio files directly in `directory` (sorted, so calibration is reproducible)."""
    return sorted(p for p in directory.iterdir() if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)


def load_clips(
    files: list[Path], sample_rate: int, frame_size: int, max_clips: int = 12, max_seconds: float = 8.0
) -> list[np.ndarray]:
    """Up to `max_clips` mono float32 clips, each cut to at most `max_seconds` and to whole frames.

    The caps keep calibration to a few seconds of CPU time; a dozen utterances already pin the ranges.
    """
    clips = []
    for path in files[:max_clips]:
        audio = read_audio(path, sample_rate)[: int(max_seconds * sample_rate)]
        whole = len(audio) // frame_size * frame_size
        if whole:
            clips.append(audio[:whole])
    return clips
