"""Speech clips from a folder, for int8 calibration and for measuring the quality cost of fp16/int8."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sscodec.common.audio import read_audio

CALIBRATION_CLIPS = 12  # int8 calibration's clips (`load_clips`' default)


def load_clips(
    files: list[Path], sample_rate: int, frame_size: int, max_clips: int = CALIBRATION_CLIPS, max_seconds: float = 8.0
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
