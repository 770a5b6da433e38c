"""The receiver: packets → codes → audio, with its own decoder state."""

from __future__ import annotations

import numpy as np

from sscodec.common.text import plural
from sscodec.stream.model import CodecModel
from sscodec.stream.model_dir import ModelInfo
from sscodec.stream.packet import Packet
from sscodec.stream.packing import unpack_codes
from sscodec.stream.runtime import StreamRunner


class StreamDecoder:
    """Runs decoder_stream.onnx on packets (or codes) in stream order; every code is checked before ONNX Runtime."""

    def __init__(self, model: CodecModel) -> None:
        self.model = model
        self._stream = StreamRunner(model.decoder_graph)
        self.reset()

    @property
    def info(self) -> ModelInfo:
        return self.model.info

    def reset(self) -> None:
        """Start a new stream from a zero state."""
        self._stream.reset()

    def unpack(self, packet: Packet) -> np.ndarray:
        """A packet's codes [codebooks, frames] (int64), each a valid codebook index; ValueError for a payload that
        does not hold them, ModelError for a range-coded packet when the model has no usable tables or context
        model."""
        if not 1 <= packet.codebooks <= self.info.n_codebooks:
            raise ValueError(f"packet {packet.sequence} has {packet.codebooks} {plural(packet.codebooks, 'codebook')}; this model has "
                             f"1..{self.info.n_codebooks}")
        coder = self.model.coder(packet.mode)
        if coder is not None:  # range-coded over the codebook's symbols: in range by construction
            return coder.decode(packet.payload, packet.codebooks, packet.frames)
        codes = unpack_codes(packet.payload, packet.codebooks, packet.frames, self.info.bits_per_code)
        if self.info.codebook_size < 1 << self.info.bits_per_code:  # the bits hold more values than the codebook
            self._check_range(codes)
        return codes

    def decode(self, packet: Packet) -> np.ndarray:
        """Audio float32 [frames * frame_size] of the next packet; advances the state."""
        # `unpack` gave valid indices: checking them again cost 3 % of a streamed 1-frame chunk (README, "Speed").
        return self._stream.run(self.unpack(packet)[None])[0]

    def decode_codes(self, codes: np.ndarray) -> np.ndarray:
        """Audio of codes [Q, K], checked to be valid codebook indices before ONNX Runtime sees them."""
        codes = np.asarray(codes)
        if codes.ndim != 2 or not 1 <= codes.shape[0] <= self.info.n_codebooks or codes.shape[1] < 1:
            raise ValueError(f"codes must be [1..{self.info.n_codebooks} codebooks, frames], got {codes.shape}")
        if not np.issubdtype(codes.dtype, np.integer):
            raise ValueError(f"codes must be integers, got {codes.dtype}")
        self._check_range(codes)
        return self._stream.run(codes[None].astype(np.int64, copy=False))[0]

    def _check_range(self, codes: np.ndarray) -> None:
        if codes.min() < 0 or codes.max() >= self.info.codebook_size:
            raise ValueError(f"codes must be in 0..{self.info.codebook_size - 1}")
