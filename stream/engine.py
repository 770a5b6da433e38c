"""The streaming engine: audio blocks in, packed codes across the 'wire', decoded audio out."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sscodec.stream.chunker import Chunker
from sscodec.stream.model_dir import ModelInfo, read_model_info, stream_graph_paths
from sscodec.stream.packing import pack_codes, unpack_codes
from sscodec.stream.runtime import RuntimeOptions, open_session
from sscodec.stream.stats import StatsRecorder, StreamStats


@dataclass(frozen=True)
class ChunkResult:
    """One chunk's round trip: what was sent, what came back, and what it cost."""

    payload: bytes  # the packed codes of `frames` frames
    audio: np.ndarray  # decoded float32 [frames * frame_size]
    frames: int
    compute_ms: float  # encode + pack + unpack + decode


class StreamEngine:
    """Runs encoder_stream.onnx and decoder_stream.onnx over a stream, `chunk_frames` frames per call."""

    def __init__(
        self,
        model_dir: Path,
        codebooks: int | None = None,
        chunk_frames: int = 1,
        runtime: RuntimeOptions | None = None,
        bitrate_kbps: float | None = None,
    ) -> None:
        """Load the stream graphs; send `codebooks` codebooks, or as many as `bitrate_kbps` allows, or all."""
        runtime = runtime or RuntimeOptions()
        encoder_path, decoder_path = stream_graph_paths(Path(model_dir))
        self._encoder = open_session(encoder_path, runtime)
        self._decoder = open_session(decoder_path, runtime)
        self.info: ModelInfo = read_model_info(self._encoder, self._decoder, Path(model_dir))
        self.codebooks = _codebook_count(self.info, codebooks, bitrate_kbps)
        if chunk_frames < 1:
            raise ValueError(f"chunk_frames must be >= 1, got {chunk_frames}")
        self.chunk_frames = chunk_frames
        self._chunker = Chunker(chunk_frames * self.info.frame_size, self.info.frame_size)
        self.reset()

    def reset(self) -> None:
        """Start a new stream: zero both graphs' states, drop buffered audio and restart the stats."""
        self._recorder = StatsRecorder(self.info.frame_ms, self.chunk_frames, self.codebooks)
        self._encoder_state = np.zeros((1, self.info.encoder_state_size), dtype=np.float32)
        self._decoder_state = np.zeros((1, self.info.decoder_state_size), dtype=np.float32)
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
        """Encode, pack, unpack and decode one chunk of whole frames."""
        start = time.perf_counter()
        payload = self.encode(audio)
        frames = audio.shape[0] // self.info.frame_size
        decoded = self.decode(payload, frames)
        compute_ms = (time.perf_counter() - start) * 1000.0
        self._recorder.add(frames, len(payload), compute_ms)
        return ChunkResult(payload, decoded, frames, compute_ms)

    def stats(self, underflows: int = 0, overflows: int = 0) -> StreamStats:
        """Statistics of the chunks processed since the last reset, with the caller's glitch counts."""
        return self._recorder.finish(underflows, overflows)

    def encode(self, audio: np.ndarray) -> bytes:
        """Packed codes of a chunk of whole frames [K * frame_size]; advances the encoder state."""
        if audio.ndim != 1 or audio.shape[0] == 0 or audio.shape[0] % self.info.frame_size:
            raise ValueError(f"a chunk must be whole {self.info.frame_size}-sample frames, got {audio.shape}")
        codes, self._encoder_state = self._encoder.run(
            None, {"audio": audio[None].astype(np.float32, copy=False), "state": self._encoder_state}
        )
        return pack_codes(codes[0, : self.codebooks], self.info.bits_per_code)

    def decode(self, payload: bytes, frames: int) -> np.ndarray:
        """Audio [frames * frame_size] of a packed chunk; advances the decoder state."""
        return self.decode_codes(unpack_codes(payload, self.codebooks, frames, self.info.bits_per_code))

    def decode_codes(self, codes: np.ndarray) -> np.ndarray:
        """Audio of codes [Q, K], checked to be valid codebook indices before ONNX Runtime sees them."""
        codes = np.asarray(codes)
        if codes.ndim != 2 or not 1 <= codes.shape[0] <= self.info.n_codebooks or codes.shape[1] < 1:
            raise ValueError(f"codes must be [1..{self.info.n_codebooks} codebooks, frames], got {codes.shape}")
        if not np.issubdtype(codes.dtype, np.integer):
            raise ValueError(f"codes must be integers, got {codes.dtype}")
        if codes.min() < 0 or codes.max() >= self.info.codebook_size:
            raise ValueError(f"codes must be in 0..{self.info.codebook_size - 1}")
        audio, self._decoder_state = self._decoder.run(
            None, {"codes": codes[None].astype(np.int64, copy=False), "state": self._decoder_state}
        )
        return audio[0]


def _codebook_count(info: ModelInfo, codebooks: int | None, bitrate_kbps: float | None) -> int:
    """Codebooks to send: as given, or the most whose bitrate fits `bitrate_kbps` (capped at all of them)."""
    if codebooks is not None and bitrate_kbps is not None:
        raise ValueError("give codebooks or bitrate_kbps, not both")
    if bitrate_kbps is not None:
        per_codebook = info.bits_per_code / info.frame_ms  # bits per millisecond = kbps
        codebooks = min(int(bitrate_kbps / per_codebook + 1e-9), info.n_codebooks)
        if codebooks < 1:
            raise ValueError(f"{bitrate_kbps:g} kbps is below one codebook ({per_codebook:g} kbps)")
    if codebooks is None:
        return info.n_codebooks
    if not 1 <= codebooks <= info.n_codebooks:
        raise ValueError(f"codebooks must be in 1..{info.n_codebooks} for this model, got {codebooks}")
    return codebooks
