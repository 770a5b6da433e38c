"""The sender: audio → codes → packets, with its own encoder state and packet counter."""

from __future__ import annotations

import numpy as np

from sscodec.stream.model import CodecModel
from sscodec.stream.model_dir import ModelInfo
from sscodec.stream.packet import MAX_SEQUENCE, CodingMode, Packet
from sscodec.stream.packing import pack_codes
from sscodec.stream.runtime import StreamRunner


class StreamEncoder:
    """Runs encoder_stream.onnx over consecutive chunks and wraps each chunk's first `codebooks` codes in a Packet.

    `mode` ENTROPY needs the model's tables, CONTEXT its context model (ModelError from `model.coder` otherwise).
    """

    def __init__(self, model: CodecModel, codebooks: int, mode: CodingMode = CodingMode.RAW) -> None:
        # Searches those codebooks alone; ValueError for a count the model does not have.
        self._stream = StreamRunner(model.encoder_graph_for(codebooks))
        self.model = model
        self.codebooks = codebooks
        self.mode = CodingMode(mode)
        # Loaded now, so missing tables fail at construction and not on the first chunk.
        self._coder = model.coder(self.mode)
        self.reset()

    @property
    def info(self) -> ModelInfo:
        return self.model.info

    def reset(self) -> None:
        """Start a new stream: zero state, sequence numbers from 0."""
        self._stream.reset()
        self._sequence = 0

    def skip(self, packets: int) -> None:
        """Leave out the next `packets` sequence numbers: audio that was never captured, which the receiver then
        conceals as lost (`capture_clock`)."""
        if packets < 0:
            raise ValueError(f"packets must be >= 0, got {packets}")
        self._sequence = (self._sequence + packets) & MAX_SEQUENCE

    def encode_codes(self, audio: np.ndarray) -> np.ndarray:
        """Codes [codebooks, K] (int64) of whole frames of mono float32 audio [K * frame_size]; advances the state."""
        if audio.ndim != 1 or audio.shape[0] == 0 or audio.shape[0] % self.info.frame_size:
            raise ValueError(f"a chunk must be whole {self.info.frame_size}-sample frames, got {audio.shape}")
        codes = self._stream.run(audio[None].astype(np.float32, copy=False))
        return codes[0, : self.codebooks]

    def encode(self, audio: np.ndarray) -> Packet:
        """The next packet: the codes of audio [K * frame_size] (whole frames), coded in this encoder's mode
        (entropy-coded packets fall back to raw where that is smaller)."""
        return self.packet(self.encode_codes(audio))

    def packet(self, codes: np.ndarray) -> Packet:
        """The next packet holding codes [codebooks, K] (this encoder's, or computed elsewhere), as `encode`."""
        if codes.ndim != 2 or codes.shape[0] != self.codebooks:
            raise ValueError(f"codes must be [{self.codebooks}, frames], got {codes.shape}")
        mode, payload = CodingMode.RAW, pack_codes(codes, self.info.bits_per_code)
        if self._coder is not None:  # range coded: a packet that would cost more than raw goes raw
            mode, payload = self._coder.encode_or_raw(codes, payload)
        packet = Packet(self._sequence, self.codebooks, codes.shape[1], mode, payload)
        self._sequence = (self._sequence + 1) & MAX_SEQUENCE
        return packet
