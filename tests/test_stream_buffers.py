"""The sample ring shared with the audio callback, and the chunker that makes whole frames."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sscodec.stream.chunker import Chunker
from sscodec.stream.ring import RingBuffer


def test_ring_is_fifo_across_the_wrap() -> None:
    ring = RingBuffer(5)
    out = np.zeros(3, dtype=np.float32)
    assert ring.write(np.array([1, 2, 3], dtype=np.float32))
    assert ring.read_into(out[:2]) and list(out[:2]) == [1, 2]
    assert ring.write(np.array([4, 5, 6, 7], dtype=np.float32))  # wraps around the end
    assert ring.available() == 5 and ring.free() == 0
    assert ring.read_into(out) and list(out) == [3, 4, 5]
    assert ring.read_into(out[:2]) and list(out[:2]) == [6, 7]


def test_ring_refuses_whole_blocks_it_cannot_take_or_give() -> None:
    ring = RingBuffer(4)
    assert not ring.write(np.zeros(5, dtype=np.float32))
    assert ring.available() == 0
    out = np.full(2, 9.0, dtype=np.float32)
    assert not ring.read_into(out)
    assert list(out) == [9.0, 9.0]  # untouched


def test_chunker_emits_whole_chunks_and_pads_the_tail() -> None:
    chunker = Chunker(chunk_size=6, frame_size=3)
    assert chunker.push(np.arange(4, dtype=np.float32)) == []
    (chunk,) = chunker.push(np.arange(4, 8, dtype=np.float32))
    np.testing.assert_array_equal(chunk, np.arange(6))
    assert chunker.pending == 2
    np.testing.assert_array_equal(chunker.drain(), [6, 7, 0])  # padded to one whole frame, not a chunk
    assert chunker.drain() is None


def test_chunker_needs_whole_frames_per_chunk() -> None:
    with pytest.raises(ValueError, match="multiple"):
        Chunker(chunk_size=7, frame_size=3)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 50), max_size=30), st.integers(1, 4))
def test_chunker_preserves_the_signal_for_any_block_sizes(sizes: list[int], frames: int) -> None:
    signal = np.arange(sum(sizes), dtype=np.float32)
    chunker = Chunker(chunk_size=frames * 5, frame_size=5)
    pieces, start = [], 0
    for size in sizes:
        pieces += chunker.push(signal[start : start + size])
        start += size
    tail = chunker.drain()
    out = np.concatenate([*pieces, tail] if tail is not None else pieces or [np.zeros(0)])
    assert out.shape[0] % 5 == 0 and out.shape[0] - signal.shape[0] < 5
    np.testing.assert_array_equal(out[: signal.shape[0]], signal)
