"""Live mode with a fake sound card: duration, Ctrl-C, a vanishing device and a failing engine."""

from __future__ import annotations

import _thread
import signal
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from test_stream_model import tiny_model  # noqa: F401 -- the fixture

from sscodec.stream.duplex import DuplexCallback
from sscodec.stream.engine import StreamEngine
from sscodec.stream.file_mode import stream_audio
from sscodec.stream.live import run_live

FRAME = 320


class FakeStream:
    """Calls the callback from its own thread like PortAudio, with a mic signal; can fail on cue."""

    def __init__(self, callback: DuplexCallback, mic: np.ndarray, period_s: float = 0.01,
                 vanish_after: int | None = None, stall_after: int | None = None,
                 interrupt_after: int | None = None) -> None:
        self.callback, self.mic, self.period_s = callback, mic, period_s
        self.vanish_after, self.stall_after, self.interrupt_after = vanish_after, stall_after, interrupt_after
        self.active = False
        self.played: list[np.ndarray] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self.active = True
        self._thread.start()

    def _run(self) -> None:
        status = SimpleNamespace(input_overflow=False, output_underflow=False)
        out = np.zeros((FRAME, 1), np.float32)
        for i in range(10**6):
            if self._stop.is_set() or i == self.vanish_after:
                self.active = self.active and i != self.vanish_after
                return
            if i == self.stall_after:
                return  # the device stays "active" but delivers nothing more
            if i == self.interrupt_after:
                _thread.interrupt_main()
            block = self.mic[(i * FRAME) % (self.mic.shape[0] - FRAME):][:FRAME].reshape(FRAME, 1)
            self.callback(block, out, FRAME, None, status)
            self.played.append(out[:, 0].copy())
            time.sleep(self.period_s)

    def abort(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        self.active = False

    def close(self) -> None:
        pass


def opener(streams: list[FakeStream], mic: np.ndarray, **faults: Any):
    def open_stream(rate: int, block: int, devices: tuple, latency: object, callback: DuplexCallback) -> FakeStream:
        assert (rate, block) == (16000, FRAME)
        streams.append(FakeStream(callback, mic, **faults))
        return streams[-1]

    return open_stream


@pytest.fixture
def mic() -> np.ndarray:
    t = np.arange(16000 * 2) / 16000
    return (0.3 * np.sin(2 * np.pi * 220 * t) * np.sin(2 * np.pi * 3 * t)).astype(np.float32)


@pytest.mark.parametrize("chunk_frames", [1, 2])
def test_live_run_equals_file_mode_on_what_it_heard(tiny_model: Path, mic: np.ndarray,  # noqa: F811
                                                    chunk_frames: int) -> None:
    engine = StreamEngine(tiny_model, codebooks=4, chunk_frames=chunk_frames)
    streams: list[FakeStream] = []
    live = run_live(engine, duration_s=0.6, record=True, open_stream=opener(streams, mic))
    assert live.stop_reason == "duration" and live.error is None
    heard, decoded = live.input_audio, live.output_audio
    assert live.stats.frames * FRAME == decoded.shape[0] and 0 <= heard.shape[0] - decoded.shape[0] < 2 * FRAME
    assert live.stats.frames >= 30 - chunk_frames and live.stats.bitrate_kbps == pytest.approx(2.0)
    offline = stream_audio(StreamEngine(tiny_model, codebooks=4, chunk_frames=chunk_frames), heard)
    np.testing.assert_allclose(decoded, offline.audio[: decoded.shape[0]], atol=1e-6, rtol=0)
    # What reached the speaker is the decoded stream, `chunk_frames` frames late (the priming silence).
    played = np.concatenate(streams[0].played)
    lag = chunk_frames * FRAME
    if live.stats.underflows == 0 and live.stats.overflows == 0:
        n = min(played.shape[0] - lag, decoded.shape[0])
        np.testing.assert_array_equal(played[:lag], 0.0)
        np.testing.assert_allclose(played[lag : lag + n], decoded[:n], atol=1e-6)


def test_vanishing_device_stops_with_a_message_and_keeps_stats(tiny_model: Path, mic: np.ndarray) -> None:  # noqa: F811
    live = run_live(StreamEngine(tiny_model), duration_s=10, record=True,
                    open_stream=opener([], mic, vanish_after=20))
    assert live.stop_reason == "error" and "disconnected" in live.error
    assert 15 <= live.stats.frames <= 20 and live.input_audio.shape[0] >= 15 * FRAME


def test_stalled_device_is_detected(tiny_model: Path, mic: np.ndarray) -> None:  # noqa: F811
    live = run_live(StreamEngine(tiny_model), duration_s=10, open_stream=opener([], mic, stall_after=10),
                    stall_s=0.3)
    assert live.stop_reason == "error" and "no audio from the device" in live.error
    assert live.stats.frames >= 5


def test_ctrl_c_stops_cleanly_with_stats(tiny_model: Path, mic: np.ndarray) -> None:  # noqa: F811
    # A job started in the background by a shell without job control inherits SIGINT ignored, and then
    # interrupt_main() does nothing and this run would never end: give SIGINT Python's handler for the test.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        live = run_live(StreamEngine(tiny_model), duration_s=None, open_stream=opener([], mic, interrupt_after=15))
    finally:
        signal.signal(signal.SIGINT, previous)
    assert live.stop_reason == "interrupted" and live.error is None
    assert live.stats.frames >= 5


def test_engine_failure_ends_the_run_with_a_message(tiny_model: Path, mic: np.ndarray) -> None:  # noqa: F811
    engine = StreamEngine(tiny_model)

    def broken(audio: np.ndarray) -> bytes:
        raise RuntimeError("boom")

    engine.encoder.encode = broken
    live = run_live(engine, duration_s=10, open_stream=opener([], mic))
    assert live.stop_reason == "error" and live.error == "engine failed: boom"


def test_slow_worker_glitches_are_counted_not_fatal(tiny_model: Path, mic: np.ndarray) -> None:  # noqa: F811
    engine = StreamEngine(tiny_model)
    process = engine.process_chunk

    def slow(audio: np.ndarray):
        time.sleep(0.03)  # three times the fake card's period: the worker cannot keep up
        return process(audio)

    engine.process_chunk = slow
    live = run_live(engine, duration_s=2.0, open_stream=opener([], mic))
    assert live.stop_reason == "duration" and live.error is None
    assert live.stats.underflows > 0 and live.stats.overflows > 0
