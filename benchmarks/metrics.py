"""Quality of one decoded clip against its original: the training metrics plus PESQ-WB and STOI."""

from __future__ import annotations

import math

import numpy as np
import torch
from pystoi import stoi

from sscodec.benchmarks.dnsmos import METRICS as DNSMOS_METRICS
from sscodec.benchmarks.dnsmos import Dnsmos
from sscodec.train.losses import MultiScaleMelLoss
from sscodec.train.metrics import amplitude_ratio, si_sdr_db, silent, snr_db
from sscodec.train.perceptual import pesq_wb

METRICS = ("snr_db", "si_sdr_db", "mel_distance", "pesq_wb", "stoi", "amplitude_ratio", *DNSMOS_METRICS)
MEL_DEFINITION = "sscodec.train.losses.MultiScaleMelLoss.distance (log10 mel L1, windows 64..1024, as in training)"


class ClipScorer:
    """Scores decoded clips; holds the mel filterbanks (and the DNSMOS models, if given) so they load once."""

    def __init__(self, sample_rate: int, dnsmos: Dnsmos | None = None) -> None:
        self.sample_rate = sample_rate
        self.mel = MultiScaleMelLoss(sample_rate)
        self.dnsmos = dnsmos

    def score(self, decoded: np.ndarray, reference: np.ndarray) -> dict[str, float]:
        """Every metric in METRICS for one clip (NaN where PESQ finds no utterance, the clip is too short, no
        DNSMOS model was given, or, for the ratios against it and STOI, the reference is silent)."""
        est, ref = torch.from_numpy(decoded)[None].float(), torch.from_numpy(reference)[None].float()
        with torch.no_grad():
            mel = (
                float(self.mel.distance(est, ref)[0]) if ref.shape[1] >= self.mel.min_length else float("nan")
            )
        # A silent reference: ratios against it measure nothing, NaN as PESQ-WB (train.metrics.SILENT_POWER).
        quiet = bool(silent(ref)[0])
        return {
            "snr_db": math.nan if quiet else float(snr_db(est, ref)[0]),
            "si_sdr_db": math.nan if quiet else float(si_sdr_db(est, ref)[0]),
            "mel_distance": mel,
            "pesq_wb": pesq_wb(decoded, reference, self.sample_rate),
            "stoi": math.nan if quiet else float(stoi(reference, decoded, self.sample_rate, extended=False)),
            "amplitude_ratio": math.nan if quiet else float(amplitude_ratio(est, ref)[0]),
            **(self.dnsmos.score(decoded) if self.dnsmos else dict.fromkeys(DNSMOS_METRICS, float("nan"))),
        }


def spread(values: list[float]) -> dict[str, float]:
    """Mean, standard deviation, min and max over clips, ignoring NaN; n counts the finite values."""
    finite = np.asarray([v for v in values if np.isfinite(v)], dtype=np.float64)
    if not finite.size:
        return {"mean": float("nan"), "std": float("nan"), "min": float("nan"), "max": float("nan"), "n": 0}
    return {
        "mean": float(finite.mean()),
        "std": float(finite.std()),
        "min": float(finite.min()),
        "max": float(finite.max()),
        "n": int(finite.size),
    }
