"""Live mode with a fake sound card: resampling to its rate, duration, Ctrl-C, reopening a stream that stops or
stalls, a device that stays gone, and a failing engine."""

from __future__ import annotations

import _thread
import os
import signal
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from test_stream_model import tiny_model  # noqa: F401 -- the fixture

from sscodec.common.errors import AudioDeviceError
from sscodec.common.resample import LIVE_QUALITY, StreamResampler
from sscodec.stream.duplex import DuplexCallback
from sscodec.stream.engine import StreamEngine
from sscodec.stream.file_mode import stream_audio
from sscodec.stream.live import CLOSE_TIMEOUT_S, LiveResult, run_live

FRAME = 320


class FakeStream:
    """Calls the callback from its own thread like PortAudio, with a mic signal; can fail on cue."""

    def __init__(self, callback: DuplexCallback, mic: np.ndarray, block: int, period_s: float = 0.01,
                 vanish_after: int | None = None, stall_after: int | None = None,
                 interrupt_after: int | None = None, abort_hangs: threading.Event | None = None,
                 pause_at: int | None = None, pause_s: float = 0.0, burst: int = 1,
                 latency: tuple[float, float] = (0.0, 0.0)) -> None:
        self.callback, self.mic, self.block, self.period_s = callback, mic, block, period_s
        # `burst` blocks back to back, then a pause as long as they last: a device with a long buffer
        self.burst, self.latency = burst, latency  # latency: PortAudio's reported (input, output) seconds
        self.vanish_after, self.stall_after, self.interrupt_after = vanish_after, stall_after, interrupt_after
        self.pause_at, self.pause_s = pause_at, pause_s  # delivers nothing for pause_s (that audio is lost)
        self.abort_hangs = abort_hangs  # abort blocks until this is set, as PortAudio's JACK host API did
        self.active = False
        self.played: list[np.ndarray] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self.active = True
        self._thread.start()

    def _run(self) -> None:
        status = SimpleNamespace(input_overflow=False, output_underflow=False)
        n = self.block
        out = np.zeros((n, 1), np.float32)
        for i in range(10**6):
            if self._stop.is_set() or i == self.vanish_after:
                self.active = self.active and i != self.vanish_after
                return
            if i == self.stall_after:
                return  # the device stays "active" but delivers nothing more
            if i == self.interrupt_after:
                _thread.interrupt_main()
            if i == self.pause_at:
                time.sleep(self.pause_s)
            block = self.mic[(i * n) % (self.mic.shape[0] - n):][:n].reshape(n, 1)
            self.callback(block, out, n, None, status)
            self.played.append(out[:, 0].copy())
            if (i + 1) % self.burst == 0:
                time.sleep(self.period_s * self.burst)

    def abort(self) -> None:
        if self.abort_hangs is not None:
            self.abort_hangs.wait()
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        self.active = False

    def close(self) -> None:
        pass


def opener(streams: list[FakeStream], mic: np.ndarray, rate: int = 16000, fail_after: int | None = None,
           **faults: Any):
    """A stream opener for a card at `rate` Hz; opens after the first `fail_after` fail as a vanished device's."""
    def open_stream(rate_: int, block: int, devices: tuple, latency: object, callback: DuplexCallback) -> FakeStream:
        assert (rate_, block) == (rate, rate // 50)  # 20 ms blocks at the device's rate
        if fail_after is not None and len(streams) >= fail_after:
            raise AudioDeviceError("cannot open the audio devices (Device unavailable)")
        streams.append(FakeStream(callback, mic, block, **faults if not streams else {}))
        return streams[-1]

    return open_stream


def live_run(engine: StreamEngine, streams: list[FakeStream], mic: np.ndarray, rate: int = 16000,
             fail_after: int | None = None, faults: dict | None = None, **options: Any) -> LiveResult:
    """run_live on a fake card at `rate` Hz; `faults` apply to the first stream only (a reopened one is sound)."""
    return run_live(engine, open_stream=opener(streams, mic, rate, fail_after, **(faults or {})),
                    choose_rate=lambda devices, model_rate: rate, **options)


@pytest.fixture
def mic() -> np.ndarray:
    t = np.arange(16000 * 2) / 16000
    return (0.3 * np.sin(2 * np.pi * 220 * t) * np.sin(2 * np.pi * 3 * t)).astype(np.float32)


@pytest.mark.parametrize(("chunk_frames", "rate"), [(1, 16000), (2, 16000), (1, 48000), (2, 44100),
                                                    (26, 48000)])  # found from outside: 26 was a traceback
def test_live_run_equals_file_mode_on_what_it_heard(tiny_model: Path, mic: np.ndarray,  # noqa: F811
                                                    chunk_frames: int, rate: int) -> None:
    engine = StreamEngine(tiny_model, codebooks=4, chunk_frames=chunk_frames)
    streams: list[FakeStream] = []
    card_mic = StreamResampler(16000, rate).process(mic, last=True)
    live = live_run(engine, streams, card_mic, rate, duration_s=0.6 + 0.02 * (chunk_frames - 1), record=True)
    assert live.stop_reason == "duration" and live.error is None
    heard, decoded = live.input_audio, live.output_audio
    # Found from outside: the output recording was up to a chunk shorter than the input one (the partial chunk
    # buffered at the stop), so `--input` of one did not give the other. Both are now all that was heard.
    assert decoded.shape[0] == heard.shape[0] and live.stats.frames == -(-heard.shape[0] // FRAME)
    assert live.stats.frames >= 30 - (rate != 16000) and live.stats.bitrate_kbps == pytest.approx(2.0, rel=0.05)
    offline = stream_audio(StreamEngine(tiny_model, codebooks=4, chunk_frames=chunk_frames), heard)
    assert offline.audio.shape == decoded.shape
    np.testing.assert_allclose(decoded, offline.audio, atol=1e-6, rtol=0)
    if rate != 16000:  # what the engine heard is the card's signal at the model's rate
        start = round(live.stats.live.resampler_delay_ms * 16)  # generous: the input side owes less than all of it
        np.testing.assert_allclose(heard[: heard.shape[0] - start], mic[: heard.shape[0] - start], atol=0.02)
    # What reached the speaker is the decoded stream at the card's rate, after a chunk of priming silence
    # and what the resamplers owe.
    d = live.stats.live
    assert d.device_rate_hz == rate and d.reopens == 0
    assert (d.resampler_delay_ms == 0) == (rate == 16000)
    assert d.expected_latency_ms == pytest.approx(chunk_frames * 20 + d.resampler_delay_ms)
    played = np.concatenate(streams[0].played)
    lag = round((chunk_frames * 20 + d.resampler_delay_ms) * rate / 1000)
    expected = StreamResampler(16000, rate, LIVE_QUALITY).process(decoded)
    if live.stats.underflows == 0 and live.stats.overflows == 0:
        n = min(played.shape[0] - lag, expected.shape[0])
        assert n > rate // 4
        np.testing.assert_array_equal(played[:lag], 0.0)
        np.testing.assert_allclose(played[lag : lag + n], expected[:n], atol=1e-6)


def test_a_stream_that_stops_is_reopened(tiny_model: Path, mic: np.ndarray) -> None:  # noqa: F811
    streams: list[FakeStream] = []
    live = live_run(StreamEngine(tiny_model), streams, mic, faults={"vanish_after": 20}, duration_s=1.0)
    assert live.stop_reason == "duration" and live.error is None
    assert len(streams) == 2 and live.stats.live.reopens == 1 and 0 < live.stats.live.reopen_gap_ms < 1000
    assert live.stats.frames >= 45


@pytest.mark.parametrize("stall_after", [0, 10])
def test_a_stalled_stream_is_reopened(tiny_model: Path, mic: np.ndarray, stall_after: int) -> None:  # noqa: F811
    """A stream that stops delivering (after 10 blocks: `stall_s`), or never starts (`start_s`), is reopened."""
    streams: list[FakeStream] = []
    started = time.monotonic()
    live = live_run(StreamEngine(tiny_model), streams, mic, faults={"stall_after": stall_after}, duration_s=1.0,
                    stall_s=0.3, start_s=0.6)
    assert live.stop_reason == "duration" and live.error is None
    assert len(streams) == 2 and live.stats.live.reopens == 1
    assert live.stats.live.reopen_gap_ms >= (300 if stall_after else 600)
    assert time.monotonic() - started < 3


def test_a_device_that_stays_gone_ends_the_run_with_a_message(tiny_model: Path, mic: np.ndarray) -> None:  # noqa: F811
    streams: list[FakeStream] = []
    started = time.monotonic()
    live = live_run(StreamEngine(tiny_model), streams, mic, fail_after=1, faults={"vanish_after": 20},
                    duration_s=10, record=True, stall_s=0.2, gone_s=1.0)
    assert live.stop_reason == "error" and "reopening did not help: cannot open the audio devices" in live.error
    assert "\n" not in live.error and time.monotonic() - started < 5
    # Found from outside: the hint came twice, and the summary said 0 ms without audio after 15 s of none.
    assert live.error.count("--list-devices") == 1, live.error
    assert 15 <= live.stats.frames <= 20 and live.input_audio.shape[0] >= 15 * FRAME
    assert live.stats.live.reopens >= 3  # retried every stall_s until gone_s had passed
    assert live.stats.live.reopen_gap_ms >= 1000  # the outage that ended the run (gone_s) is time without audio


def test_a_stream_that_hangs_when_closed_ends_the_run_with_everything_heard(tiny_model: Path,  # noqa: F811
                                                                            mic: np.ndarray) -> None:
    # Found from outside: after its JACK server was killed, closing the stream blocked in PortAudio for about 10
    # minutes, deaf to Ctrl-C, and the run ended with nothing written. Now the close is given CLOSE_TIMEOUT_S.
    streams: list[FakeStream] = []
    release = threading.Event()
    started = time.monotonic()
    try:
        live = live_run(StreamEngine(tiny_model), streams, mic, faults={"vanish_after": 20, "abort_hangs": release},
                        duration_s=10, record=True)
    finally:
        release.set()
    assert live.stop_reason == "error" and live.device_hung
    assert live.error.startswith("the audio device stopped responding: closing its stream hung for 2 s")
    assert "\n" not in live.error and live.error.count("--list-devices") == 1
    assert time.monotonic() - started < CLOSE_TIMEOUT_S + 3
    assert len(streams) == 1  # nothing is opened while PortAudio is inside the old stream
    assert live.stats.live.reopens == 0  # found from outside: the hung close counted as "reopened: 1 time"
    assert 15 <= live.stats.frames <= 20 and live.input_audio.shape[0] >= 15 * FRAME
    assert live.output_audio.shape == live.input_audio.shape
    assert live.stats.live.reopen_gap_ms >= CLOSE_TIMEOUT_S * 1000


def test_a_stream_that_closes_normally_is_not_hung(tiny_model: Path, mic: np.ndarray) -> None:  # noqa: F811
    live = live_run(StreamEngine(tiny_model), [], mic, duration_s=0.3)
    assert live.stop_reason == "duration" and not live.device_hung


@pytest.mark.usefixtures("python_sigint")  # else interrupt_main() could do nothing and the run never end
def test_ctrl_c_stops_cleanly_with_stats(tiny_model: Path, mic: np.ndarray) -> None:  # noqa: F811
    live = live_run(StreamEngine(tiny_model), [], mic, faults={"interrupt_after": 15}, duration_s=None)
    assert live.stop_reason == "interrupted" and live.error is None
    assert live.stats.frames >= 5


@pytest.mark.parametrize("record", [False, True])
def test_the_partial_chunk_at_the_stop_counts_with_or_without_recordings(tiny_model: Path, mic: np.ndarray,  # noqa: F811
                                                                         record: bool) -> None:
    # Found from outside: with --chunk-frames above 1 the stats said 88 frames for a 2 s run, 101 with
    # --record-output: the partial chunk buffered at the stop was coded only when recording.
    streams: list[FakeStream] = []
    live = live_run(StreamEngine(tiny_model, chunk_frames=4), streams, mic, duration_s=0.5, record=record)
    assert live.stop_reason == "duration" and live.stats.overflows == 0
    assert live.stats.frames == len(streams[0].played), (live.stats.frames, len(streams[0].played))


@pytest.mark.usefixtures("python_sigint")
def test_a_second_signal_right_after_the_first_does_not_cut_the_stop_short(tiny_model: Path,  # noqa: F811
                                                                           mic: np.ndarray) -> None:
    # Found from outside: `timeout` signals the process and then its group, so two signals came 1-10 ms apart; the
    # second interrupted the stop itself (no stats, no recordings, and once a hang in PortAudio's close).
    def twice() -> None:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.002)
        os.kill(os.getpid(), signal.SIGINT)

    timer = threading.Timer(0.5, twice)
    timer.start()
    try:
        live = live_run(StreamEngine(tiny_model), [], mic, duration_s=None, record=True)
    finally:
        timer.join()
    assert live.stop_reason == "interrupted" and live.error is None
    assert live.stats.frames >= 10 and live.input_audio.shape[0] >= 10 * FRAME
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the caller's handler is back


@pytest.mark.usefixtures("python_sigint")
def test_ctrl_c_during_an_outage_counts_it_as_time_without_audio(tiny_model: Path, mic: np.ndarray) -> None:  # noqa: F811
    # Found from outside: Ctrl-C while reopening a device whose sound server was killed printed "stream reopened:
    # 4 times (0 ms without audio)": the outage in progress was dropped with the watchdog.
    streams: list[FakeStream] = []
    timer = threading.Timer(1.2, _thread.interrupt_main)  # the device went quiet after 10 blocks (0.1 s)
    timer.start()
    try:
        live = live_run(StreamEngine(tiny_model), streams, mic, fail_after=1, faults={"vanish_after": 10},
                        duration_s=None, stall_s=0.2, gone_s=30.0)
    finally:
        timer.cancel()
    assert live.stop_reason == "interrupted" and live.error is None
    assert live.stats.live.reopens >= 2 and live.stats.live.reopen_gap_ms >= 800, live.stats.live


def test_engine_failure_ends_the_run_with_a_message(tiny_model: Path, mic: np.ndarray) -> None:  # noqa: F811
    engine = StreamEngine(tiny_model)

    def broken(audio: np.ndarray) -> bytes:
        raise RuntimeError("boom")

    engine.encoder.encode = broken
    live = live_run(engine, [], mic, duration_s=10)
    assert live.stop_reason == "error" and live.error == "engine failed: boom"


def test_a_device_that_takes_its_blocks_in_bursts_settles_without_glitches(tiny_model: Path,  # noqa: F811
                                                                          mic: np.ndarray) -> None:
    """Found from outside: at --latency 1 PortAudio's ALSA host API on PulseAudio reported 1.06 s of output
    latency and called back 13 times at once every 260 ms; the output queue, capped at 5 frames, dropped the rest
    of every burst: 196 underflows and 184 overflows in 6 s. Only the first burst may find the queue short."""
    engine = StreamEngine(tiny_model, codebooks=4)
    live = live_run(engine, [], mic, duration_s=2.6,
                    faults={"burst": 13, "latency": (1.04, 1.06), "period_s": 0.01})
    assert live.stop_reason == "duration" and live.error is None
    assert live.stats.frames >= 130
    assert live.stats.overflows == 0 and live.stats.underflows <= 13
    assert live.stats.live.output_latency_ms == pytest.approx(1060)


def test_slow_worker_glitches_are_counted_not_fatal(tiny_model: Path, mic: np.ndarray) -> None:  # noqa: F811
    engine = StreamEngine(tiny_model)
    process = engine.process_chunk

    def slow(audio: np.ndarray):
        time.sleep(0.03)  # three times the fake card's period: the worker cannot keep up
        return process(audio)

    engine.process_chunk = slow
    live = live_run(engine, [], mic, duration_s=2.0)
    assert live.stop_reason == "duration" and live.error is None
    assert live.stats.underflows > 0 and live.stats.overflows > 0
