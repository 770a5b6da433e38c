"""Feeding a signal to a stream chunk by chunk: the one loop that the runtime, the exporter's checks and the
benchmarks share."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np


def chunks(x: np.ndarray, size: int) -> Iterator[np.ndarray]:
    """Consecutive pieces of `x`, `size` long along its last axis (the last piece may be shorter), in order."""
    if size < 1:
        raise ValueError(f"chunk size must be >= 1, got {size}")
    return (x[..., start : start + size] for start in range(0, x.shape[-1], size))


def session_steps(
    session: Any, x: np.ndarray, size: int
) -> Iterator[tuple[dict[str, np.ndarray], np.ndarray]]:
    """Feed a stream graph's ONNX Runtime session `size` columns of `x` per call from a zero state, the state of
    each call going into the next: yields each call's inputs and first output.

    `session` has the contract's inputs (the chunk, then `state` [B, S]); plain `session.run` calls, the
    reference that the runtime's faster path (stream.runtime.StreamRunner) is tested against.
    """
    first, state_input = session.get_inputs()
    state = np.zeros((x.shape[0], state_input.shape[1]), dtype=np.float32)
    for chunk in chunks(x, size):
        feeds = {first.name: chunk, state_input.name: state}
        output, state = session.run(None, feeds)
        yield feeds, output
