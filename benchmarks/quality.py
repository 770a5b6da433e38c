"""Rate against quality on the same clips: the codec at each codebook count, Opus at each bitrate, and the input."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from sscodec.benchmarks.errors import BenchError
from sscodec.benchmarks.metrics import METRICS, ClipScorer, spread
from sscodec.benchmarks.opus import opus_missing, opus_roundtrip
from sscodec.export.errors import ExportError
from sscodec.export.runtime import quiet_session, run_stream
from sscodec.stream.encoder import StreamEncoder
from sscodec.stream.file_codec import DEFAULT_PACKET_FRAMES, file_header, write_file
from sscodec.stream.model import CodecModel
from sscodec.stream.model_dir import read_model_info, stream_graph_paths
from sscodec.stream.packet import CodingMode


class WholeClipCodec:
    """The stream graphs run over whole clips: each clip in one call (all its frames as one chunk) from a zero
    state, which gives the samples of frame-by-frame streaming (parity-tested to 1e-4) and needs only the graphs
    every installed model has."""

    def __init__(self, model_dir: Path) -> None:
        self.directory = Path(model_dir)
        try:
            self.encoder, self.decoder = (quiet_session(p) for p in stream_graph_paths(model_dir))
        except ExportError as error:  # found from outside: a damaged graph was a traceback here alone
            raise BenchError(str(error)) from None
        self.info = read_model_info(self.encoder, self.decoder, model_dir)

    def encode(self, audio: np.ndarray) -> np.ndarray:
        """Codes [1, n_codebooks, frames] of mono audio [T], zero-padded to whole frames."""
        return _whole(self.encoder, np.pad(audio, (0, -audio.size % self.info.frame_size))[None])

    def decode(self, codes: np.ndarray, codebooks: int, length: int) -> np.ndarray:
        """Audio [length] from the first `codebooks` codebooks of `codes`."""
        return _whole(self.decoder, codes[:, :codebooks])[0, :length]


def _whole(session, x: np.ndarray) -> np.ndarray:
    return run_stream(session, x, chunk_frames=x.shape[-1])


def codec_conditions(
    codec: WholeClipCodec, clips: dict[str, np.ndarray], codebooks: tuple[int, ...], scorer: ClipScorer
) -> list[dict]:
    """Encode each clip once and decode its first Q codebooks, for each Q; score every decode and measure the
    bits the clips' codec-encode files spend (`file_kbps`, raw, entropy- and context-coded; see `file_kbps`)."""
    codes = {name: codec.encode(audio) for name, audio in clips.items()}
    model = CodecModel(codec.directory)
    seconds = sum(a.size for a in clips.values()) / codec.info.sample_rate
    conditions = []
    for q in codebooks:
        scores = {
            name: scorer.score(codec.decode(codes[name], q, audio.size), audio) for name, audio in clips.items()
        }
        spent = file_kbps(model, {name: (codes[name][0, :q], audio.size) for name, audio in clips.items()}, seconds)
        conditions.append(_condition("codec", codec.info.bitrate_kbps(q), scores, {"codebooks": q, **spent}))
    return conditions


def file_kbps(model: CodecModel, clips: dict[str, tuple[np.ndarray, int]], seconds: float,
              packet_frames: int = DEFAULT_PACKET_FRAMES) -> dict:
    """The bitrate of the files codec-encode writes for each clip's codes [Q, frames] (and its sample count),
    header and packet framing included, summed over the clips: `file_kbps` {"raw", "entropy", "context"}.
    Without the model's entropy tables "entropy" is None and `entropy_skipped` says why; without its context
    model, the same for "context"."""
    files = {CodingMode.ENTROPY: (model.has_tables, model.tables_path),
             CodingMode.CONTEXT: (model.has_context_model, model.context_path)}
    modes = [CodingMode.RAW] + [mode for mode, (present, _) in files.items() if present]
    spent: dict = {"file_kbps": {"raw": None, "entropy": None, "context": None}}
    for mode in modes:
        total = 0
        for clip_codes, samples in clips.values():
            encoder = StreamEncoder(model, clip_codes.shape[0], mode)
            packets = (encoder.packet(clip_codes[:, start : start + packet_frames])
                       for start in range(0, clip_codes.shape[1], packet_frames))
            total += write_file(io.BytesIO(), file_header(encoder, samples, packet_frames), packets).file_bytes
        spent["file_kbps"][mode.name.lower()] = 8 * total / seconds / 1000
    for mode, (_, path) in files.items():
        if mode not in modes:
            spent[f"{mode.name.lower()}_skipped"] = f"{path.name} not in the model folder"
    return spent


def opus_conditions(
    clips: dict[str, np.ndarray], sample_rate: int, rates: tuple[float, ...], scorer: ClipScorer
) -> list[dict]:
    """Opus at each bitrate on the same clips (skipped with the reason when libopus is missing)."""
    if opus_missing():
        return [{"codec": "opus", "kbps": kbps, "skipped": opus_missing()} for kbps in rates]
    conditions = []
    seconds = sum(a.size for a in clips.values()) / sample_rate
    for kbps in rates:
        scores, file_bits = {}, 0
        for name, audio in clips.items():
            result = opus_roundtrip(audio, sample_rate, kbps)
            file_bits += 8 * result.file_bytes
            scores[name] = scorer.score(result.audio, audio)
        conditions.append(_condition("opus", kbps, scores, {"ogg_kbps": file_bits / seconds / 1000}))
    return conditions


def input_condition(clips: dict[str, np.ndarray], scorer: ClipScorer) -> dict:
    """The input scored against itself: the reference-free metrics (DNSMOS) of the speech as it came."""
    return _condition("input", float("nan"), {name: scorer.score(a, a) for name, a in clips.items()}, {})


def _condition(codec: str, kbps: float, scores: dict[str, dict], extra: dict) -> dict:
    return {
        "codec": codec,
        "kbps": kbps,
        **extra,
        "summary": {metric: spread([s[metric] for s in scores.values()]) for metric in METRICS},
        "per_clip": scores,
    }
