"""The streaming loopback: audio blocks in, StreamEncoder → packets → StreamDecoder, decoded audio out."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sscodec.stream.chunker import Chunker
from sscodec.stream.decoder import StreamDecoder
from sscodec.stream.encoder import StreamEncoder
from sscodec.stream.model import CodecModel
from sscodec.stream.model_dir import ModelInfo
from sscodec.stream.packet import Packet
from sscodec.stream.runtime import RuntimeOptions
from sscodec.stream.stats import StatsRecorder, StreamStats


@dataclass(frozen=True)
class ChunkResult:
    """One chunk's round trip: what was sent, what came back, and what it cost."""

    packet: Packet  # what crossed the wire: the codes of `frames` frames
    audio: np.ndarray  # decoded float32 [frames * frame_size]
    frames: int
    compute_ms: float  # encode + pack + unpack + decode


class StreamEngine:
    """A StreamEncoder and a StreamDecoder joined by their packets, `chunk_frames` frames per packet."""

    def __init__(
        self,
        model_dir: Path,
        codebooks: int | None = None,
        chunk_frames: int = 1,
        runtime: RuntimeOptions | None = None,
        bitrate_kbps: float | None = None,
    ) -> None:
        """Load the stream graphs; send `codebooks` codebooks, or as many as `bitrate_kbps` allows, or all."""
        self.model = CodecModel(Path(model_dir), runtime)
        self.info: ModelInfo = self.model.info
        self.codebooks = codebook_count(self.info, codebooks, bitrate_kbps)
        if chunk_frames < 1:
            raise ValueError(f"chunk_frames must be >= 1, got {chunk_frames}")
        self.chunk_frames = chunk_frames
        self.model.prepare(chunk_frames, self.codebooks)
        self.encoder = StreamEncoder(self.model, self.codebooks)
        self.decoder = StreamDecoder(self.model)
        self._chunker = Chunker(chunk_frames * self.info.frame_size, self.info.frame_size)
        self.reset()

    def reset(self) -> None:
        """Start a new stream: zero both graphs' states, drop buffered audio and restart the stats."""
        self._recorder = StatsRecorder(self.info.frame_ms, self.chunk_frames, self.codebooks)
        self.encoder.reset()
        self.decoder.reset()
        self._chunker.clear()

    def push(self, block: np.ndarray) -> list[ChunkResult]:
        """Feed mono float samples [n] (any n); returns the chunks this completed, oldest first."""
        block = np.asarray(block, dtype=np.float32)
        if block.ndim != 1:
            raise ValueError(f"expected a 1-D block of mono samples, got shape {block.shape}")
        if not np.isfinite(block).all():
            raise ValueError("audio block contains NaN or Inf")
        return [self.process_chunk(chunk) for chunk in self._chunker.push(block)]

    def flush(self) -> list[ChunkResult]:
        """End of input: the buffered partial chunk, zero-padded to whole frames, as a last shorter chunk."""
        tail = self._chunker.drain()
        return [] if tail is None else [self.process_chunk(tail)]

    def process_chunk(self, audio: np.ndarray) -> ChunkResult:
        """Encode one chunk of whole frames into a packet and decode that packet."""
        start = time.perf_counter()
        packet = self.encoder.encode(audio)
        decoded = self.decoder.decode(packet)
        compute_ms = (time.perf_counter() - start) * 1000.0
        # The bitrate counts the coded codes; the packet header is framing, like an RTP header.
        self._recorder.add(packet.frames, len(packet.payload), compute_ms)
        return ChunkResult(packet, decoded, packet.frames, compute_ms)

    def stats(self, underflows: int = 0, overflows: int = 0) -> StreamStats:
        """Statistics of the chunks processed since the last reset, with the caller's glitch counts."""
        return self._recorder.finish(underflows, overflows)


def codebook_count(info: ModelInfo, codebooks: int | None, bitrate_kbps: float | None) -> int:
    """Codebooks to send: as given, or the most whose bitrate fits `bitrate_kbps` (capped at all of them)."""
    if codebooks is not None and bitrate_kbps is not None:
        raise ValueError("give codebooks or bitrate_kbps, not both")
    if bitrate_kbps is not None:
        codebooks = info.codebooks_for_bitrate(bitrate_kbps)
    if codebooks is None:
        return info.n_codebooks
    if not 1 <= codebooks <= info.n_codebooks:
        raise ValueError(f"codebooks must be in 1..{info.n_codebooks} for this model, got {codebooks}")
    return codebooks


def bitrate_cap_note(info: ModelInfo, bitrate_kbps: float | None, doing: str = "sending") -> str | None:
    """The line that says a requested bitrate is above the model's highest, which `codebook_count` sends (or, with
    `doing` "coding", codes) instead (found from outside: --bitrate 100 sent 6 kbps without a word); None when it
    is not."""
    highest = info.bitrate_kbps(info.n_codebooks)
    if bitrate_kbps is None or bitrate_kbps <= highest:
        return None
    return (f"note: --bitrate {bitrate_kbps:g} kbps is above this model's highest, {highest:g} kbps (all "
            f"{info.n_codebooks} codebooks): {doing} that")
