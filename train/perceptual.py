"""PESQ-WB (ITU-T P.862.2) of a decoded clip against its original: what `codec-bench quality` reports and what
`codec-train --select_by pesq` keeps best.pt by. The `pesq` package (the bench extra) is imported on first use,
so training without it needs nothing more."""

from __future__ import annotations

import importlib.util

import numpy as np
import soxr

PESQ_RATE = 16_000  # P.862.2 scores wide-band speech at 16 kHz; other rates are resampled to it
PESQ_PACKAGE_HINT = "pip install 'streaming-speech-codec[bench]'"


def pesq_available() -> bool:
    """Whether the `pesq` package can be imported."""
    return importlib.util.find_spec("pesq") is not None


def pesq_wb(decoded: np.ndarray, reference: np.ndarray, sample_rate: int) -> float:
    """PESQ-WB (MOS-LQO, 1.04..4.64) of `decoded` against `reference`, both [T] float at `sample_rate` Hz
    (resampled to 16 kHz with soxr where it differs).

    NaN where PESQ finds no utterance or the clip is too short, and where either side is silent (the `pesq`
    package fails on a silent output, "cannot convert float NaN to integer", as a call whose every packet came
    too late gives, and divides by zero on a silent reference). ImportError without the `pesq` package.
    """
    from pesq import NoUtterancesError, PesqError, pesq

    if not (np.any(decoded) and np.any(reference)):
        return float("nan")
    if sample_rate != PESQ_RATE:
        decoded, reference = (soxr.resample(x, sample_rate, PESQ_RATE, quality="HQ") for x in (decoded, reference))
    try:
        return float(pesq(PESQ_RATE, reference, decoded, "wb"))
    except (NoUtterancesError, PesqError):
        return float("nan")
