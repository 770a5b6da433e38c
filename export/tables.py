"""Entropy-coding tables for the bitstream, estimated from speech with the exported encoder_stream.onnx itself."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from sscodec.common.audio import read_audio
from sscodec.common.entropy_tables import TABLES_FILE, estimate_counts, save_tables
from sscodec.common.model_files import ENCODER_STREAM
from sscodec.export.errors import ExportError
from sscodec.export.runtime import quiet_session, run_stream

MAX_TABLE_CLIPS = 2000
# Chunks of 5 s keep ONNX Runtime's per-call cost negligible; any chunking gives the same codes.
_CHUNK_FRAMES = 250


def _clips(files: Sequence[Path], sample_rate: int, frame_size: int) -> Iterator[np.ndarray]:
    """Mono float32 clips at `sample_rate`, cut to whole frames, read one at a time (AudioFileError if unreadable);
    ExportError at the end if none held a whole frame (found from outside: the tables were replaced by ones
    counted from 0 frames, and the context model's training raised a traceback)."""
    found = False
    for path in files:
        audio = read_audio(path, sample_rate)
        whole = len(audio) // frame_size * frame_size
        if whole:
            found = True
            yield audio[:whole]
    if not found:
        which = f"{files[0]}, the only clip," if len(files) == 1 else f"each of the {len(files)} clips in {files[0].parent}"
        raise ExportError(f"{which} is shorter than one {1000 * frame_size / sample_rate:g} ms frame: there is no "
                          "speech to learn the codes' statistics from")


def clip_codes(model_dir: Path, files: Sequence[Path]) -> tuple[Iterator[np.ndarray], dict[str, int]]:
    """Codes [n_codebooks, frames] of each clip in `files` (whole frames; clips shorter than one frame are left
    out), computed lazily by `model_dir`/encoder_stream.onnx, and the graph's metadata (`n_codebooks`,
    `codebook_size`). AudioFileError for an unreadable clip, when it is reached."""
    session = quiet_session(model_dir / ENCODER_STREAM)
    meta = session.get_modelmeta().custom_metadata_map
    sizes = {"n_codebooks": int(meta["n_codebooks"]), "codebook_size": int(meta["codebook_size"])}
    clips = _clips(files, int(meta["sample_rate"]), int(meta["frame_size"]))
    return (run_stream(session, clip[None], _CHUNK_FRAMES)[0] for clip in clips), sizes


def write_tables(model_dir: Path, files: Sequence[Path], into: Path | None = None) -> tuple[Path, int]:
    """Code the speech in `files` with `model_dir`/encoder_stream.onnx; write the per-codebook counts to `into`
    (default `model_dir`).

    Returns the tables file and the number of frames counted. The codes are the stream graph's own, so the
    tables describe exactly what the runtime will code. AudioFileError for an unreadable clip.
    """
    clips, sizes = clip_codes(model_dir, files)
    frames = 0

    def counted() -> Iterator[np.ndarray]:
        nonlocal frames
        for codes in clips:
            frames += codes.shape[1]
            yield codes

    counts = estimate_counts(counted(), sizes["n_codebooks"], sizes["codebook_size"])
    path = (into or model_dir) / TABLES_FILE
    save_tables(path, counts)
    return path, frames
