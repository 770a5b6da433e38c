"""Entropy coding of one packet's codes with constriction's range coder and static per-codebook tables."""

from __future__ import annotations

import constriction
import numpy as np

from sscodec.stream.packet import CodingMode

# A valid range-coded payload can undercut the tables' most optimistic cost only by the coder's rounding; this
# slack (bits) plus a 1 % margin on the probabilities keeps every real packet above the bound checked in `decode`.
_SLACK_BITS = 64
_PROBABILITY_MARGIN = 1.01


class EntropyCoder:
    """Codes [Q, K] ↔ bytes with one static categorical model per codebook (the first Q of the tables).

    Each call codes one packet from a fresh coder state, so a packet decodes without any other. The payload is
    the range coder's 32-bit words, little-endian.
    """

    def __init__(self, counts: np.ndarray) -> None:
        """`counts` [n_codebooks, codebook_size]: positive occurrence counts (common/entropy_tables.py)."""
        probabilities = np.asarray(counts, dtype=np.float64)
        probabilities = probabilities / probabilities.sum(axis=1, keepdims=True)
        self.n_codebooks, self.codebook_size = probabilities.shape
        self._models = [constriction.stream.model.Categorical(p, perfect=False) for p in probabilities]
        # The fewest bits any frame of codebook q can cost: every code drawn as the most probable one.
        self._min_bits = -np.log2(np.minimum(1.0, probabilities.max(axis=1) * _PROBABILITY_MARGIN))

    def encode(self, codes: np.ndarray) -> bytes:
        """The range-coded payload of codes [Q, K] (Q ≤ n_codebooks), codebook after codebook."""
        encoder = constriction.stream.queue.RangeEncoder()
        for index, row in enumerate(np.asarray(codes)):
            encoder.encode(row.astype(np.int32), self._models[index])
        return encoder.get_compressed().astype("<u4").tobytes()

    def encode_or_raw(self, codes: np.ndarray, raw_payload: bytes) -> tuple[CodingMode, bytes]:
        """The packet's mode and payload: range-coded when that is smaller than `raw_payload` (the same codes'
        raw packing), else the raw payload itself, so no packet ever costs more than raw (README, "Bitstream")."""
        payload = self.encode(codes)
        return (CodingMode.ENTROPY, payload) if len(payload) < len(raw_payload) else (CodingMode.RAW, raw_payload)

    def decode(self, payload: bytes, codebooks: int, frames: int) -> np.ndarray:
        """Codes [codebooks, frames] (int64) of an `encode` payload.

        ValueError when the payload cannot hold that many codes: not whole 32-bit words, or fewer bits than the
        tables' cheapest possible frames need (this bounds the work a lying frame count can cause).
        """
        if not 1 <= codebooks <= self.n_codebooks:
            raise ValueError(f"codebooks must be in 1..{self.n_codebooks} for these tables, got {codebooks}")
        if len(payload) % 4:
            raise ValueError(f"entropy-coded payload of {len(payload)} bytes is not whole 32-bit words")
        cheapest = frames * float(self._min_bits[:codebooks].sum()) - _SLACK_BITS
        if 8 * len(payload) < cheapest:
            raise ValueError(f"entropy-coded payload of {len(payload)} bytes is too short for {frames} frames of "
                             f"{codebooks} codebooks")
        decoder = constriction.stream.queue.RangeDecoder(np.frombuffer(payload, dtype="<u4").astype(np.uint32))
        rows = [decoder.decode(self._models[index], frames) for index in range(codebooks)]
        return np.stack(rows).astype(np.int64)
