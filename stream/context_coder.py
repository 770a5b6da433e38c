"""Entropy coding of one packet's codes with a learned context model, in integer arithmetic (README, "Bitstream").

Each code's probabilities come from a small network (common/context_model_file.py) that sees the previous frame's
codes and the codes of the codebooks already coded in this frame. An entropy decoder must compute exactly the
encoder's probabilities, and float arithmetic differs between BLAS builds and CPUs, so the network runs on
integers only: int16 weights, activations clipped to 15 bits, exact integer sums, right shifts for rescaling and
a lookup table for the softmax. The two matrix products run as float64 BLAS calls on integer-valued arrays: every
product is below 2^30 and every sum of at most 2^20 of them below 2^50, so each partial sum is an exact integer in
float64 whatever the summation order or fused multiply-adds, and the result is the integer one (tested against
pure Python integers).

The first layer's per-code lookups are products of int16 codebook vectors and projections, multiplied out when
the model loads: the same argument makes them exact.

A packet is coded frame by frame, codebook after codebook, from a fresh coder and no previous frame, so it decodes
alone; its first frame sees only its own coded codebooks.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import constriction
import numpy as np
from threadpoolctl import ThreadpoolController

from sscodec.stream.entropy import PacketCoder, invalid_payload
from sscodec.stream.packet import CodingMode

_ACTIVATION_MAX = 2**15 - 1
# The BLAS libraries numpy loaded (found once: a lookup costs about 0.2 ms, a limit through it about 7 µs).
_BLAS = ThreadpoolController()


@contextmanager
def one_blas_thread() -> Iterator[None]:
    """BLAS limited to one thread inside: the coder's products are small (a packet's frames x 1024 codes), and
    OpenBLAS's thread per core, waiting for each other while another process was busy, made a 12.8 s file 5-30x
    slower to encode on the 2-core VM (README, "Bitstream"). Results are exact integers whatever the thread
    count (module docstring), so overlapping limits from two threads can only cost speed."""
    with _BLAS.limit(limits=1, user_api="blas"):
        yield


class ContextCoder(PacketCoder):
    """Codes [Q, K] ↔ bytes with the context model `arrays` (common/context_model_file.py's, already checked)."""

    mode = CodingMode.CONTEXT

    def __init__(self, arrays: dict[str, np.ndarray]) -> None:
        self._a = dict(arrays)
        self.n_codebooks, self.codebook_size, _ = arrays["codebooks"].shape
        self.hidden_size = arrays["hidden"].shape[1]
        self._activation_bits, self._weight_bits, step_bits, codebook_bits, projection_bits = (
            int(s) for s in arrays["shifts"])
        # Per codebook and code, the first layer's lookups: vector x projection, in 2^-activation_bits units.
        vectors = arrays["codebooks"].astype(np.float64)
        for name in ("previous", "partial"):
            product = _exact(vectors @ arrays[f"{name}_projection"].astype(np.float64))
            self._a[name] = _shift(product, codebook_bits + projection_bits - self._activation_bits)
        self._logit_shift = self._activation_bits + self._weight_bits - step_bits
        self._hidden_t = arrays["hidden"].transpose(0, 2, 1).astype(np.float64)
        self._output = arrays["output"].astype(np.float64)
        self._family = constriction.stream.model.Categorical(perfect=False)
        table = arrays["exp_table"]
        # The most probable code gets at most table[0] of table[0] + (K - 1) * table[-1].
        super().__init__(np.full(self.n_codebooks, table[0] / (table[0] + (self.codebook_size - 1) * float(table[-1]))))

    def context(self, previous: np.ndarray | None) -> np.ndarray:
        """What a frame's first layer starts from [H] (integers), given the previous frame's codes [Q'] (None for a
        packet's first frame); codebook q then adds its bias and the lookups of the frame's codes before it."""
        a = self._a
        if previous is None:
            return a["previous_count"][0].copy()
        return a["previous_count"][previous.shape[0]] + a["previous"][np.arange(previous.shape[0]), previous].sum(0)

    def first_layer(self, start: np.ndarray, codes: np.ndarray) -> np.ndarray:
        """First-layer activations [Q', H] for each of a frame's codes [Q'] from its `context` [H]: codebook q sees
        codes[:q]."""
        seen = self._a["partial"][np.arange(codes.shape[0]), codes]
        return np.clip(start + self._a["bias"][: codes.shape[0]] + np.cumsum(seen, axis=0) - seen, 0,
                       _ACTIVATION_MAX)

    def logits(self, first: np.ndarray, codebook: int) -> np.ndarray:
        """Integer logits [N, K] of codes of `codebook` from first-layer activations [N, H]: the residual layers,
        then the codebook's output layer."""
        a = self._a
        hidden = first
        for weights, bias in zip(self._hidden_t, a["hidden_bias"]):
            update = _shift(_exact(hidden.astype(np.float64) @ weights) + bias, self._weight_bits)
            hidden = np.clip(hidden + np.maximum(update, 0), 0, _ACTIVATION_MAX)
        return _exact(hidden.astype(np.float64) @ self._output[codebook]) + a["output_bias"][codebook]

    def frequencies(self, first: np.ndarray, codebook: int) -> np.ndarray:
        """Integer frequencies [N, K] (each ≥ 1) of codes of `codebook` from first-layer activations [N, H]: the
        logits through the softmax lookup."""
        logits = self.logits(first, codebook)
        steps = (logits.max(axis=1, keepdims=True) - logits) >> self._logit_shift
        table = self._a["exp_table"]
        return table[np.minimum(steps, table.shape[0] - 1)]

    def packet_frequencies(self, codes: np.ndarray) -> np.ndarray:
        """Frequencies [K, Q, codebook_size] of every code of codes [Q, K]."""
        first = np.stack([self.first_layer(self.context(codes[:, t - 1] if t else None), codes[:, t])
                          for t in range(codes.shape[1])])
        return np.stack([self.frequencies(first[:, q], q) for q in range(codes.shape[0])], axis=1)

    def encode(self, codes: np.ndarray) -> bytes:
        """The range-coded payload of codes [Q, K] (Q ≤ n_codebooks), frame after frame."""
        codes = np.asarray(codes, dtype=np.int64)
        encoder = constriction.stream.queue.RangeEncoder()
        with one_blas_thread():
            probabilities = self.packet_frequencies(codes).reshape(-1, self.codebook_size).astype(np.float64)
        encoder.encode(codes.T.reshape(-1).astype(np.int32), self._family, probabilities)
        return encoder.get_compressed().astype("<u4").tobytes()

    def decode(self, payload: bytes, codebooks: int, frames: int) -> np.ndarray:
        """Codes [codebooks, frames] (int64) of an `encode` payload; ValueError as `PacketCoder.check`."""
        decoder = constriction.stream.queue.RangeDecoder(self.check(payload, codebooks, frames))
        with one_blas_thread():
            return self._decode(decoder, codebooks, frames)

    def _decode(self, decoder: constriction.stream.queue.RangeDecoder, codebooks: int, frames: int) -> np.ndarray:
        codes = np.zeros((codebooks, frames), dtype=np.int64)
        bias, partial = self._a["bias"], self._a["partial"]
        for t in range(frames):
            running = self.context(codes[:, t - 1] if t else None)  # + the lookups of the codes decoded so far
            for q in range(codebooks):
                first = np.clip(running + bias[q], 0, _ACTIVATION_MAX)[None]
                probabilities = self.frequencies(first, q).astype(np.float64)
                try:
                    codes[q, t] = decoder.decode(self._family, probabilities)[0]
                except AssertionError as error:
                    raise invalid_payload(error) from None
                running += partial[q, codes[q, t]]
        return codes


def _exact(product: np.ndarray) -> np.ndarray:
    """A float64 product of integer-valued arrays as int64: exact, as the module docstring shows."""
    return product.astype(np.int64)


def _shift(values: np.ndarray, bits: int) -> np.ndarray:
    """values / 2^bits rounded half up, in integers."""
    return (values + (1 << bits >> 1)) >> bits
