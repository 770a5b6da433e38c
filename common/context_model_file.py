"""The context model file: the integer network that gives the entropy coder each code's probabilities.

codec-export writes it (export/context_model.py) and the stream runtime reads it (stream/context_coder.py), so its
format is defined here, once, without torch or the coder. Like the tables file it is a NumPy .npz of plain integer
arrays, always loaded with `allow_pickle=False`, every shape and range checked, so a hostile file cannot run code
or make the runtime allocate what the model does not need.

The arrays (Q codebooks, K codes per codebook, D dimensions per codebook vector, H hidden units; README,
"Bitstream"):

- `codebooks` [Q, K, D] int16: the quantizer's vectors; `previous_projection` [Q, D, H] int16 and
  `partial_projection` [Q, D, H] int16: per codebook, what a code's vector adds to the first layer as part of the
  previous frame and as a codebook already coded in this frame (the runtime multiplies them out into per-code
  lookups once, in exact integers: stored factored, they take a sixth of the lookups' size);
- `bias` [Q, H] int32: per codebook being predicted; `previous_count` [Q + 1, H] int32: per number of codebooks
  the previous frame holds (0 for a packet's first frame, which has none);
- `hidden` [L, H, H] int16 and `hidden_bias` [L, H] int64: L residual layers (a + ReLU(W a + b));
- `output` [Q, H, K] int16 and `output_bias` [Q, K] int64: the logits per codebook;
- `exp_table` [T] int64: the softmax as a lookup, frequency of a code `d` logit steps below the best one
  (decreasing, all ≥ 1, so every code stays codable);
- `shifts` [5] int64: fractional bits of the first layer's activations, of the weights, of a logit step, of the
  codebook vectors and of the projections.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from sscodec.common.errors import ModelError
from sscodec.common.npz_file import load_versioned

CONTEXT_FILE = "context_model.npz"
CONTEXT_VERSION = 1
# Activations are clipped to 15 bits and weights are int16, so a product stays below 2^30 and a sum of at most
# 2^(53-30) of them stays an exact integer in float64 (stream/context_coder.py relies on it): at most this many.
MAX_HIDDEN = 2**20
MAX_DIM = 2**20
MAX_LAYERS = 64
MAX_EXP_TABLE = 1 << 16
ARRAYS = ("codebooks", "previous_projection", "partial_projection", "bias", "previous_count", "hidden", "hidden_bias", "output", "output_bias",
          "exp_table", "shifts")


def context_shapes(n_codebooks: int, codebook_size: int, dim: int, hidden: int, layers: int,
                   table: int) -> dict[str, tuple[int, ...]]:
    """Each array's shape for a model of `n_codebooks` x `codebook_size` codes of `dim`-dimensional vectors,
    `hidden` units, `layers` residual layers and a `table`-entry softmax lookup."""
    q, k, d, h = n_codebooks, codebook_size, dim, hidden
    return {"codebooks": (q, k, d), "previous_projection": (q, d, h), "partial_projection": (q, d, h),
            "bias": (q, h), "previous_count": (q + 1, h), "hidden": (layers, h, h), "hidden_bias": (layers, h),
            "output": (q, h, k), "output_bias": (q, k), "exp_table": (table,), "shifts": (5,)}


def save_context_model(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write the integer arrays (the module docstring's) as a versioned context model file."""
    np.savez_compressed(path, version=np.int64(CONTEXT_VERSION), **{name: arrays[name] for name in ARRAYS})


def load_context_model(path: Path, n_codebooks: int, codebook_size: int) -> dict[str, np.ndarray]:
    """The arrays of a context model file, checked against the model's codebooks; ModelError naming `path` if the
    file is unreadable, another version, or holds an array of the wrong shape, type or range."""
    arrays = load_versioned(path, ARRAYS, CONTEXT_VERSION, "context model")
    layers, hidden = arrays["hidden"].shape[:1], arrays["hidden"].shape[1:2]
    table, dim = arrays["exp_table"].shape[:1], arrays["codebooks"].shape[2:3]
    if not (layers and hidden and table and dim and 1 <= layers[0] <= MAX_LAYERS and 1 <= hidden[0] <= MAX_HIDDEN
            and 1 <= table[0] <= MAX_EXP_TABLE and 1 <= dim[0] <= MAX_DIM):
        raise ModelError(f"{path}: context model of {layers} layers of {hidden} hidden units, {dim} dimensions and "
                         f"{table} softmax entries")
    expected = context_shapes(n_codebooks, codebook_size, dim[0], hidden[0], layers[0], table[0])
    for name, array in arrays.items():
        if array.shape != expected[name] or not np.issubdtype(array.dtype, np.integer):
            raise ModelError(f"{path}: {name} is {array.dtype} {array.shape}, the model needs integers "
                             f"{expected[name]}")
    limits = {"codebooks": 2**15, "previous_projection": 2**15, "partial_projection": 2**15, "hidden": 2**15,
              "output": 2**15, "bias": 2**31,
              "previous_count": 2**31, "hidden_bias": 2**40, "output_bias": 2**40}
    for name, limit in limits.items():
        if np.abs(arrays[name].astype(np.int64)).max() >= limit:
            raise ModelError(f"{path}: {name} holds values beyond ±{limit}")
    exp_table, shifts = arrays["exp_table"].astype(np.int64), arrays["shifts"].astype(np.int64)
    if exp_table.min() < 1 or exp_table.max() >= 2**24 or np.any(np.diff(exp_table) > 0):
        raise ModelError(f"{path}: exp_table must decrease from below 2^24 and stay at 1 or more")
    if (shifts.min() < 0 or shifts[1] > 30 or shifts[2] > shifts[0] + shifts[1] or shifts[3] > 30 or shifts[4] > 30
            or shifts[0] > shifts[3] + shifts[4]):
        raise ModelError(f"{path}: shifts {shifts.tolist()} out of range")
    return {name: array.astype(np.int64) for name, array in arrays.items()}


def context_fingerprint(arrays: dict[str, np.ndarray]) -> bytes:
    """8 bytes identifying a context model: encoder and decoder must compute the very same probabilities."""
    digest = hashlib.sha256()
    for name in ARRAYS:
        digest.update(name.encode() + np.ascontiguousarray(arrays[name], dtype="<i8").tobytes())
    return digest.digest()[:8]
