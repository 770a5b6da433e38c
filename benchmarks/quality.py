"""Rate against quality on the same clips: the codec at each codebook count, and Opus at each bitrate."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sscodec.benchmarks.metrics import METRICS, ClipScorer, spread
from sscodec.benchmarks.opus import commands, opus_missing, opus_roundtrip
from sscodec.export.runtime import open_session, run_stream
from sscodec.stream.model_dir import read_model_info, stream_graph_paths

CODEBOOKS = tuple(range(1, 13))
OPUS_KBPS = (6, 8, 12, 16)


def codec_conditions(model_dir: Path, clips: dict[str, np.ndarray], codebooks: tuple[int, ...]) -> list[dict]:
    """Encode each clip once, decode its first Q codebooks, for each Q, with the stream graphs.

    Each clip goes through in one call (all its frames as one chunk): the same samples as frame-by-frame
    streaming (parity-tested to 1e-4), and it needs only the graphs every installed model has.
    """
    encoder, decoder = (open_session(p) for p in stream_graph_paths(model_dir))
    info = read_model_info(encoder, decoder, model_dir)
    scorer = ClipScorer(info.sample_rate)
    frame = info.frame_size
    codes = {
        name: _whole(encoder, np.pad(audio, (0, -audio.size % frame))[None]) for name, audio in clips.items()
    }
    per_codebook_kbps = info.bits_per_code / info.frame_ms
    conditions = []
    for q in codebooks:
        scores = {
            name: scorer.score(_whole(decoder, codes[name][:, :q])[0, : audio.size], audio)
            for name, audio in clips.items()
        }
        conditions.append(_condition("codec", q * per_codebook_kbps, scores, {"codebooks": q}))
    return conditions


def _whole(session, x: np.ndarray) -> np.ndarray:
    """A stream graph over all of `x` in one chunk from a zero state."""
    return run_stream(session, x, chunk_frames=x.shape[-1])


def opus_conditions(clips: dict[str, np.ndarray], sample_rate: int, rates: tuple[float, ...]) -> list[dict]:
    """Opus at each bitrate on the same clips (skipped with the reason when opus-tools is missing)."""
    if opus_missing():
        return [{"codec": "opus", "kbps": kbps, "skipped": opus_missing()} for kbps in rates]
    scorer = ClipScorer(sample_rate)
    conditions = []
    for kbps in rates:
        scores, length_errors, file_bits = {}, 0, 0
        for name, audio in clips.items():
            result = opus_roundtrip(audio, sample_rate, kbps)
            length_errors += result.decoded_samples != audio.size
            file_bits += 8 * result.file_bytes
            scores[name] = scorer.score(result.audio, audio)
        seconds = sum(a.size for a in clips.values()) / sample_rate
        extra = {
            "commands": commands(kbps),
            "clips_with_length_mismatch": length_errors,
            "ogg_file_kbps": file_bits / seconds / 1000,
        }
        conditions.append(_condition("opus", kbps, scores, extra))
    return conditions


def _condition(codec: str, kbps: float, scores: dict[str, dict], extra: dict) -> dict:
    return {
        "codec": codec,
        "kbps": kbps,
        **extra,
        "summary": {metric: spread([s[metric] for s in scores.values()]) for metric in METRICS},
        "per_clip": scores,
    }
