"""The entropy-coding tables file: per-codebook code counts that codec-export writes beside the ONNX graphs.

Export writes it and the stream runtime reads it, so its format is defined here, once, without torch or the coder.
The file is a NumPy .npz holding plain integer arrays only and is always loaded with `allow_pickle=False`, so a
hostile file cannot run code.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from sscodec.common.errors import ModelError
from sscodec.common.npz_file import load_versioned

TABLES_FILE = "entropy_tables.npz"
TABLES_VERSION = 1
# Every count is raised by this floor, so a code never seen while estimating can still be coded (at a high cost).
COUNT_FLOOR = 1


def estimate_counts(codes: Iterable[np.ndarray], n_codebooks: int, codebook_size: int) -> np.ndarray:
    """Per-codebook occurrence counts [n_codebooks, codebook_size] (int64) of codes [n_codebooks, frames] arrays.

    The floor is included, so every entry is at least COUNT_FLOOR. ValueError for codes of the wrong shape or range.
    """
    counts = np.full((n_codebooks, codebook_size), COUNT_FLOOR, dtype=np.int64)
    for clip in codes:
        clip = np.asarray(clip)
        if clip.ndim != 2 or clip.shape[0] != n_codebooks:
            raise ValueError(f"codes must be [{n_codebooks}, frames], got {clip.shape}")
        if clip.size and (clip.min() < 0 or clip.max() >= codebook_size):
            raise ValueError(f"codes must be in 0..{codebook_size - 1}")
        for index in range(n_codebooks):
            counts[index] += np.bincount(clip[index], minlength=codebook_size)
    return counts


def save_tables(path: Path, counts: np.ndarray) -> None:
    """Write `counts` [n_codebooks, codebook_size] (positive integers) as a versioned tables file."""
    counts = np.asarray(counts, dtype=np.int64)
    if counts.ndim != 2 or counts.min() < 1:
        raise ValueError("counts must be a 2-D array of positive integers")
    np.savez_compressed(path, version=np.int64(TABLES_VERSION), counts=counts)


def load_tables(path: Path, n_codebooks: int, codebook_size: int) -> np.ndarray:
    """Counts [n_codebooks, codebook_size] (int64, all >= 1) from a tables file; ModelError naming `path` if unusable."""
    counts = load_versioned(path, ["counts"], TABLES_VERSION, "entropy tables")["counts"]
    if counts.shape != (n_codebooks, codebook_size) or not np.issubdtype(counts.dtype, np.integer):
        raise ModelError(f"{path}: tables hold {counts.dtype} {counts.shape}, the model needs integer counts "
                         f"[{n_codebooks}, {codebook_size}]")
    if counts.min() < 1 or counts.sum(axis=1).max() >= 2**62:
        raise ModelError(f"{path}: tables hold a zero, negative or overflowing count")
    return counts.astype(np.int64)


def tables_fingerprint(counts: np.ndarray) -> bytes:
    """8 bytes identifying a set of tables: the coder on both ends must use the very same counts."""
    return hashlib.sha256(np.ascontiguousarray(counts, dtype="<i8").tobytes()).digest()[:8]
