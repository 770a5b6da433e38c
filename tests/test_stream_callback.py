"""The audio callback adapter as a pure object: fake blocks, fake PortAudio status flags."""

from __future__ import annotations

import tracemalloc
from types import SimpleNamespace

import numpy as np
import pytest

from sscodec.stream.duplex import QUEUE_FRAMES, DuplexCallback
from sscodec.stream.stats import StatsRecorder

FRAME = 320


def flags(input_overflow: bool = False, output_underflow: bool = False) -> SimpleNamespace:
    return SimpleNamespace(input_overflow=input_overflow, output_underflow=output_underflow)


def call(cb: DuplexCallback, block: np.ndarray, status: SimpleNamespace | None = None) -> np.ndarray:
    out = np.full((FRAME, 1), 7.0, dtype=np.float32)
    cb(block.reshape(FRAME, 1), out, FRAME, None, status or flags())
    return out[:, 0]


def ramp(i: int) -> np.ndarray:
    return np.arange(i * FRAME, (i + 1) * FRAME, dtype=np.float32) / 1e5


@pytest.mark.parametrize("chunk_frames", [1, 3])
def test_plays_one_chunk_of_silence_then_what_the_worker_queued(chunk_frames: int) -> None:
    cb = DuplexCallback(FRAME, chunk_frames)
    for i in range(chunk_frames):
        np.testing.assert_array_equal(call(cb, ramp(i)), 0.0)
    assert cb.underflows == 0
    block = np.zeros(FRAME, dtype=np.float32)
    for i in range(chunk_frames):  # the mic blocks reached the input ring in order
        assert cb.input_ring.read_into(block)
        np.testing.assert_array_equal(block, ramp(i))
    cb.output_ring.write(ramp(5))
    np.testing.assert_array_equal(call(cb, ramp(9)), ramp(5))
    assert (cb.callbacks, cb.underflows, cb.overflows) == (chunk_frames + 1, 0, 0)


def test_output_underflow_plays_silence_and_is_counted() -> None:
    cb = DuplexCallback(FRAME, 1)
    call(cb, ramp(0))
    np.testing.assert_array_equal(call(cb, ramp(1)), 0.0)  # the worker has queued nothing
    assert cb.underflows == 1 and cb.overflows == 0


def test_input_overflow_drops_the_block_and_is_counted() -> None:
    cb = DuplexCallback(FRAME, 1, queue_frames=2)
    for i in range(3):  # nobody reads the input ring: the third block does not fit
        call(cb, ramp(i))
    assert cb.overflows == 1
    assert cb.input_ring.available() == 2 * FRAME


def test_portaudio_status_flags_are_counted() -> None:
    cb = DuplexCallback(FRAME, 1)
    call(cb, ramp(0), flags(input_overflow=True))
    cb.output_ring.write(ramp(1))
    call(cb, ramp(1), flags(output_underflow=True))
    assert (cb.overflows, cb.underflows) == (1, 1)


def test_steady_state_callback_allocates_no_sample_memory() -> None:
    cb = DuplexCallback(FRAME, 1)
    block = ramp(0).reshape(FRAME, 1)
    out = np.zeros((FRAME, 1), dtype=np.float32)
    spare = np.zeros(FRAME, dtype=np.float32)
    status = flags()

    def cycle() -> None:
        cb.output_ring.write(block[:, 0])  # the worker's side
        cb(block, out, FRAME, None, status)
        cb.input_ring.read_into(spare)

    for _ in range(50):
        cycle()
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        for _ in range(500):
            cycle()
        after, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Views of numpy arrays are small Python objects; one block of samples would be 1280 bytes.
    assert peak - before < FRAME * 4
    assert after - before < 256


def test_stats_keys_and_arithmetic() -> None:
    recorder = StatsRecorder(frame_ms=20.0, chunk_frames=2, codebooks=4)
    for ms in (1.0, 2.0, 3.0, 4.0):
        recorder.add(frames=2, payload_bytes=10, compute_ms=ms)
    stats = recorder.finish(underflows=3, overflows=1)
    assert list(stats.to_dict()) == [
        "frames", "frame_ms", "algorithmic_latency_ms", "compute_ms", "real_time_factor", "bitrate_kbps",
        "codebooks", "underflows", "overflows",
    ]
    assert list(stats.to_dict()["compute_ms"]) == ["p50", "p95", "p99", "max"]
    assert stats.frames == 8 and stats.algorithmic_latency_ms == 40.0
    assert stats.bitrate_kbps == pytest.approx(40 * 8 / 160)  # 40 bytes over 160 ms
    assert stats.real_time_factor == pytest.approx(10.0 / 160)
    assert stats.compute_ms.max == 4.0 and stats.compute_ms.p50 == 2.5
    assert "underflows: 3, overflows: 1" in stats.summary()
    assert StatsRecorder(20.0, 1, 12).finish().real_time_factor == 0.0


@pytest.mark.parametrize(("chunk_frames", "extra_prime"), [(1, 0), (26, 0), (25, 1860), (500, 960)])
def test_the_rings_hold_two_chunks_of_any_size_the_cli_takes(chunk_frames: int, extra_prime: int) -> None:
    # Found from outside: codec-stream --mic --chunk-frames 26 (the help allows 1..500) died with a traceback,
    # "queue_frames (50) must hold at least two chunks of 26 and 0 samples" (at 48 kHz, from 25 on).
    cb = DuplexCallback(FRAME, chunk_frames, extra_prime=extra_prime)
    for ring in (cb.input_ring, cb.output_ring):
        assert ring.capacity >= max(QUEUE_FRAMES * FRAME, 2 * chunk_frames * FRAME + extra_prime)
    assert cb.output_ring.available() == chunk_frames * FRAME + extra_prime  # the priming silence
