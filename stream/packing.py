"""Bit-packing of codec codes: a chunk of codes [Q, K] ↔ the bytes that would be sent."""

from __future__ import annotations

import math

import numpy as np


def packed_size(n_codebooks: int, n_frames: int, bits: int) -> int:
    """Bytes that `n_frames` frames of `n_codebooks` codes of `bits` bits each occupy."""
    return math.ceil(n_codebooks * n_frames * bits / 8)


def pack_codes(codes: np.ndarray, bits: int) -> bytes:
    """Pack integer codes [Q, K] into bytes, frame by frame, most significant bit first.

    Only the last byte can hold padding (zero bits), so the size is `packed_size(Q, K, bits)`.
    """
    codes = np.asarray(codes)
    if codes.ndim != 2 or not np.issubdtype(codes.dtype, np.integer):
        raise ValueError(f"codes must be an integer array [codebooks, frames], got {codes.dtype} {codes.shape}")
    if codes.size and (codes.min() < 0 or codes.max() >= 1 << bits):
        raise ValueError(f"codes must be in 0..{(1 << bits) - 1} to fit {bits} bits")
    # Frame-major order: a chunk's bytes are its frames' codes one after the other.
    flat = codes.T.reshape(-1).astype(np.uint32)
    shifts = np.arange(bits - 1, -1, -1, dtype=np.uint32)
    bit_array = ((flat[:, None] >> shifts) & 1).astype(np.uint8)
    return np.packbits(bit_array.reshape(-1)).tobytes()


def unpack_codes(payload: bytes, n_codebooks: int, n_frames: int, bits: int) -> np.ndarray:
    """Codes [Q, K] (int64) from bytes made by `pack_codes`; ValueError for any malformed payload."""
    if not isinstance(payload, (bytes, bytearray, memoryview)):
        raise TypeError(f"payload must be bytes, got {type(payload).__name__}")
    if n_codebooks < 1 or n_frames < 1 or bits < 1:
        raise ValueError(f"need n_codebooks, n_frames and bits >= 1, got {n_codebooks}, {n_frames}, {bits}")
    expected = packed_size(n_codebooks, n_frames, bits)
    if len(payload) != expected:
        raise ValueError(
            f"payload has {len(payload)} bytes; {n_codebooks} codebooks x {n_frames} frames x {bits} bits "
            f"need exactly {expected}"
        )
    n_bits = n_codebooks * n_frames * bits
    bit_array = np.unpackbits(np.frombuffer(payload, dtype=np.uint8))
    if bit_array[n_bits:].any():
        raise ValueError("payload padding bits are not zero (corrupt or misaligned payload)")
    weights = np.left_shift(1, np.arange(bits - 1, -1, -1), dtype=np.int64)
    flat = bit_array[:n_bits].reshape(-1, bits).astype(np.int64) @ weights
    return np.ascontiguousarray(flat.reshape(n_frames, n_codebooks).T)
