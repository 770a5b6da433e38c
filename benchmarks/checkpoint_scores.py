"""Score a training checkpoint on a folder of clips: the training metrics plus PESQ-WB and STOI.

Training validation tracks SNR, SI-SDR, mel distance and level; PESQ and STOI are slower and live here,
so an ablation can compare recipes on the measures listeners' tests track too.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from sscodec.benchmarks.metrics import METRICS, ClipScorer, spread
from sscodec.codec.checkpoint import read_checkpoint


@dataclass(frozen=True)
class CheckpointScores:
    """Mean/std/min/max over clips of every metric, for one checkpoint at one codebook count."""

    checkpoint: str
    step: int | None
    codebooks: int
    kbps: float
    clips: int
    summary: dict[str, dict[str, float]]

    def to_dict(self) -> dict:
        return asdict(self)


def score_checkpoint(path: Path, clips: list[np.ndarray]) -> CheckpointScores:
    """Encode and decode every clip whole with the checkpoint's codec at all its codebooks, and score it."""
    from sscodec.benchmarks.model_source import load_model

    model = load_model(path)
    config = model.config
    q = config.n_codebooks
    scorer = ClipScorer(config.sample_rate)
    scores = []
    with torch.inference_mode():
        for audio in clips:
            decoded = model(torch.from_numpy(audio)[None], n_codebooks=q).audio[0].numpy()
            scores.append(scorer.score(decoded, audio))
    step = read_checkpoint(path).get("step")
    return CheckpointScores(
        checkpoint=str(path),
        step=int(step) if step is not None else None,
        codebooks=q,
        kbps=config.bitrate_kbps(q),
        clips=len(clips),
        summary={metric: spread([s[metric] for s in scores]) for metric in METRICS},
    )
