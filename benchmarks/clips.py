"""Speech clips for the benchmarks: every audio file in a folder, mono at the codec's rate."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sscodec.benchmarks.errors import BenchError
from sscodec.common.audio import AudioFileError, audio_files_below, probe_audio, read_audio
from sscodec.common.text import plural

# The shared speech the README names (read-only); the default for benchmarks that need real audio.
SHARED_VAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "telugu" / "val"


# What a clip needs to be scored: STOI (pystoi) needs 30 frames of 256 samples at 10 kHz with half overlap, 0.4 s,
# after it drops silent frames (a shorter clip scores its floor, 1e-5, with only a warning), and PESQ 0.25 s.
# The shortest clip of the held-out sets lasts 0.81 s.
SCORED_MIN_SECONDS = 0.5


def read_clips(directory: Path, sample_rate: int, min_seconds: float = 0.0) -> dict[str, np.ndarray]:
    """Path below `directory` (the file name for one at its top) → mono float32 audio at `sample_rate`, for every
    audio file in it and its sub-folders; files shorter than `min_seconds` are faults (see `read_clip_files`)."""
    if not directory.is_dir():
        raise BenchError(f"{directory}: audio folder not found")
    files = audio_files_below(directory)
    if not files:
        raise BenchError(f"{directory}: no audio files (.wav, .flac, .ogg, .mp3)")
    return read_clip_files(files, sample_rate, min_seconds, root=directory)


def read_clip_files(files: list[Path], sample_rate: int, min_seconds: float = 0.0,
                    root: Path | None = None) -> dict[str, np.ndarray]:
    """Name (the path below `root`, or the file name) → mono float32 audio at `sample_rate`, for each of `files`,
    each at least `min_seconds` long.

    Raises AudioFileError with the first fault and the names of the other files that cannot be used, after trying
    them all (a set is scored whole or not at all, and one error tells a user every file to fix, not one per run:
    found from outside, a count of the others took a run per file to find them)."""
    clips, faults = {}, []  # faults: (file, what is wrong with it)
    for path in files:
        try:
            audio = read_audio(path, sample_rate)
        except AudioFileError as error:
            faults.append((path, str(error)))
            continue
        if audio.size < min_seconds * sample_rate:
            short = (f"{path}: {audio.size / sample_rate:.3g} s of audio, shorter than the {min_seconds:g} s a "
                     "clip needs to be scored (STOI and PESQ)")
            faults.append((path, short))
        else:
            clips[str(path.relative_to(root)) if root else path.name] = audio
    if faults:
        others = (f" (and {len(faults) - 1} more of the {len(files)} files: "
                  f"{', '.join(str(path) for path, _ in faults[1:])})" if len(faults) > 1 else "")
        raise AudioFileError(f"{faults[0][1]}{others}")
    return clips


def conversion_notes(files: list[Path], sample_rate: int) -> list[str]:
    """What reading `files` at `sample_rate` changes that a score depends on: clips at a lower rate, upsampled (a
    narrowband source stays narrowband, in the input as in every output), and clips mixed down to mono."""
    infos = [probe_audio(path) for path in files]
    notes = []
    low = sorted({info.sample_rate for info in infos if info.sample_rate < sample_rate})
    if low:
        count = sum(info.sample_rate < sample_rate for info in infos)
        at = f"{low[0]} Hz" if len(low) == 1 else f"{low[0]}–{low[-1]} Hz"
        band = f"{low[0] // 2} Hz" if len(low) == 1 else "half their rate"
        notes.append(f"{count} of {len(files)} {plural(len(files), 'clip')} {'is' if count == 1 else 'are'} at {at}, "
                     f"upsampled to {sample_rate} Hz (their band above {band} is empty, in the input as in every "
                     "output)")
    several = [info.channels for info in infos if info.channels > 1]
    if several:
        of = "" if notes else f" of {len(files)} {plural(len(files), 'clip')}"
        channels = "/".join(map(str, sorted(set(several))))
        notes.append(f"{len(several)}{of} {'has' if len(several) == 1 else 'have'} {channels} channels, mixed down "
                     "to mono")
    return ["; ".join(notes)] if notes else []


def tile_to(clips: list[np.ndarray], samples: int) -> np.ndarray:
    """The clips joined end to end, repeated until `samples` long, cut to exactly that."""
    joined = np.concatenate(clips)
    return np.tile(joined, -(-samples // joined.size))[:samples]
