"""Summaries of per-chunk compute times: percentiles and real-time factor."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def summarize_ms(times_ms: Sequence[float], audio_ms_per_item: float) -> dict:
    """p50/p95/p99/max/mean in ms over `times_ms`, and the real-time factor (compute / audio time)."""
    times = np.asarray(times_ms, dtype=np.float64)
    p50, p95, p99 = (float(v) for v in np.percentile(times, [50, 95, 99]))
    return {
        "count": int(times.size),
        "p50": p50,
        "p95": p95,
        "p99": p99,
        "max": float(times.max()),
        "mean": float(times.mean()),
        "rtf": float(times.sum() / (audio_ms_per_item * times.size)),
    }
