"""Entropy coding of one packet's codes with constriction's range coder and static per-codebook tables."""

from __future__ import annotations

import constriction
import numpy as np

from sscodec.common.text import plural
from sscodec.stream.packet import CodingMode

# A valid range-coded payload can undercut the model's most optimistic cost only by the coder's rounding; this
# slack (bits) plus a 1 % margin on the probabilities keeps every real packet above the bound checked in `check`.
_SLACK_BITS = 64
_PROBABILITY_MARGIN = 1.01


class PacketCoder:
    """What every range coder of packets shares: the raw fallback and the checks on a payload before decoding.

    A subclass sets `mode`, `n_codebooks`, and codes one packet from a fresh coder state (`encode`, `decode`), so a
    packet decodes without any other; its payload is the range coder's 32-bit words, little-endian.
    """

    mode: CodingMode
    n_codebooks: int

    def __init__(self, max_probabilities: np.ndarray) -> None:
        """`max_probabilities` [n_codebooks]: the highest probability the model can give a code of each codebook;
        so the fewest bits any frame of codebook q can cost is every code drawn at that probability."""
        self._min_bits = -np.log2(np.minimum(1.0, np.asarray(max_probabilities, np.float64) * _PROBABILITY_MARGIN))

    def encode(self, codes: np.ndarray) -> bytes:
        raise NotImplementedError

    def encode_or_raw(self, codes: np.ndarray, raw_payload: bytes) -> tuple[CodingMode, bytes]:
        """The packet's mode and payload: range-coded when that is smaller than `raw_payload` (the same codes'
        raw packing), else the raw payload itself, so no packet ever costs more than raw (README, "Bitstream")."""
        payload = self.encode(codes)
        return (self.mode, payload) if len(payload) < len(raw_payload) else (CodingMode.RAW, raw_payload)

    def check(self, payload: bytes, codebooks: int, frames: int) -> np.ndarray:
        """The payload's 32-bit words, once it can hold `frames` frames of `codebooks` codes.

        ValueError when it cannot: codebooks out of range, not whole 32-bit words, or fewer bits than the
        cheapest possible frames need (this bounds the work a lying frame count can cause).
        """
        if not 1 <= codebooks <= self.n_codebooks:
            raise ValueError(f"codebooks must be in 1..{self.n_codebooks} for this model, got {codebooks}")
        if len(payload) % 4:
            raise ValueError(f"entropy-coded payload of {len(payload)} bytes is not whole 32-bit words")
        cheapest = frames * float(self._min_bits[:codebooks].sum()) - _SLACK_BITS
        if 8 * len(payload) < cheapest:
            raise ValueError(f"entropy-coded payload of {len(payload)} bytes is too short for {frames} frames of "
                             f"{codebooks} {plural(codebooks, 'codebook')}")
        return np.frombuffer(payload, dtype="<u4").astype(np.uint32)


def invalid_payload(error: AssertionError) -> ValueError:
    """constriction's error for words no encoder could have written (it raises AssertionError), as a ValueError."""
    return ValueError(f"not a valid range-coded payload ({' '.join(str(error).split())[:120]})")


class EntropyCoder(PacketCoder):
    """Codes [Q, K] ↔ bytes with one static categorical model per codebook (the first Q of the tables)."""

    mode = CodingMode.ENTROPY

    def __init__(self, counts: np.ndarray) -> None:
        """`counts` [n_codebooks, codebook_size]: positive occurrence counts (common/entropy_tables.py)."""
        probabilities = np.asarray(counts, dtype=np.float64)
        probabilities = probabilities / probabilities.sum(axis=1, keepdims=True)
        self.n_codebooks, self.codebook_size = probabilities.shape
        self._models = [constriction.stream.model.Categorical(p, perfect=False) for p in probabilities]
        super().__init__(probabilities.max(axis=1))

    def encode(self, codes: np.ndarray) -> bytes:
        """The range-coded payload of codes [Q, K] (Q ≤ n_codebooks), codebook after codebook."""
        encoder = constriction.stream.queue.RangeEncoder()
        for index, row in enumerate(np.asarray(codes)):
            encoder.encode(row.astype(np.int32), self._models[index])
        return encoder.get_compressed().astype("<u4").tobytes()

    def decode(self, payload: bytes, codebooks: int, frames: int) -> np.ndarray:
        """Codes [codebooks, frames] (int64) of an `encode` payload; ValueError as `PacketCoder.check`."""
        decoder = constriction.stream.queue.RangeDecoder(self.check(payload, codebooks, frames))
        try:
            rows = [decoder.decode(self._models[index], frames) for index in range(codebooks)]
        except AssertionError as error:
            raise invalid_payload(error) from None
        return np.stack(rows).astype(np.int64)
