"""The context-entropy measurement on synthetic codes whose statistics are known."""

from __future__ import annotations

import numpy as np

from sscodec.benchmarks.context_entropy import (
    Context,
    adaptive_bits,
    evaluate,
    occurrences_before,
    static_log_probs,
    table_bytes,
)

SIZE = 1024


def markov_clips(seed: int, clips: int = 20, frames: int = 4000) -> list[np.ndarray]:
    """Two codebooks: codebook 0 stays in one of four bands of 256 codes, switching rarely (so the previous
    frame's band predicts the next code's band: 2 bits of 10 saved); codebook 1 copies codebook 0's band."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(clips):
        band = np.cumsum(rng.random(frames) < 0.05) % 4
        first = band * 256 + rng.integers(0, 256, frames)
        second = band * 256 + rng.integers(0, 256, frames)
        out.append(np.stack([first, second]))
    return out


def test_context_pays_where_the_codes_depend_on_it_and_not_elsewhere() -> None:
    train, held = markov_clips(0), {"held": markov_clips(1)}
    contexts = [Context("frame", 4), Context("codebook", 4)]
    rows = {r["model"]: r for r in evaluate(train, held, contexts, SIZE, 10.0, progress=lambda _: None)}
    static = rows["static"]["sets"]["held"]["per_codebook"]
    by_frame = rows["prev frame, 4 groups"]["sets"]["held"]["per_codebook"]
    by_book = rows["prev codebook, 4 groups"]["sets"]["held"]["per_codebook"]
    # Bands are used evenly: a static table needs all 10 bits; knowing the band leaves 8 (+ the rare switches).
    assert min(static) > 0.99
    assert all(0.80 < b < 0.86 for b in by_frame)
    assert by_book[0] == static[0] and 0.79 < by_book[1] < 0.82  # codebook 1's band is exactly codebook 0's


def test_occurrences_before_counts_within_windows() -> None:
    codes = np.array([5, 5, 7, 5, 7, 7, 5])
    np.testing.assert_array_equal(occurrences_before(codes, 7), [0, 1, 0, 2, 1, 2, 3])
    np.testing.assert_array_equal(occurrences_before(codes, 3), [0, 1, 0, 0, 0, 1, 0])


def test_adaptive_coding_learns_a_clip_the_static_table_does_not_know() -> None:
    """Each clip uses only 16 codes: an adaptive table learns them within the clip, the static one cannot."""
    rng = np.random.default_rng(2)
    clips = [rng.choice(rng.choice(SIZE, 16, replace=False), (1, 2000)) for _ in range(4)]
    static = static_log_probs(clips, SIZE)[0]
    frames = 4 * 2000
    static_bits = -sum(static[c[0]].sum() for c in clips) / frames
    assert static_bits > 5.9  # 64 codes in all, evenly: 6 bits
    assert adaptive_bits(clips, 0, static, 16.0, None) / frames < 4.3  # 4 bits, plus learning the 16
    assert adaptive_bits(clips, 0, static, 16.0, 50) / frames > adaptive_bits(clips, 0, static, 16.0, None) / frames


def test_table_sizes() -> None:
    assert table_bytes(None, 12, SIZE) == 12 * SIZE * 2
    assert table_bytes(Context("frame", 64), 12, SIZE) == 12 * (65 * SIZE * 2 + SIZE)
    assert table_bytes(Context("both", 8), 12, SIZE) == 12 * (65 * SIZE * 2 + 2 * SIZE)
    assert table_bytes(Context("frame", SIZE), 12, SIZE) == 12 * (SIZE + 1) * SIZE * 2
