"""Live mode: a full-duplex sound card stream at a rate the card supports, a worker thread resampling and running
the engine, and a watchdog that reopens a stream that stops or stalls."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from sscodec.common.errors import AudioDeviceError, first_line
from sscodec.common.resample import LIVE_QUALITY, StreamResampler
from sscodec.stream.devices import DEVICE_HINT, c_stderr_silenced, list_devices, sounddevice, supported_rate
from sscodec.stream.duplex import DuplexCallback
from sscodec.stream.engine import StreamEngine
from sscodec.stream.stats import LiveStats, StreamStats

# Opens a duplex stream, started later: (sample_rate, block_size, (input, output) devices, latency, callback).
StreamOpener = Callable[[int, int, tuple[Any, Any], "float | str", DuplexCallback], Any]
# The rate to open the (input, output) devices at, given the model's rate.
RateChooser = Callable[[tuple[Any, Any], int], int]
DEFAULT_LATENCY: float | str = "low"
# How long closing a stream may take before the device counts as hung (a working one closes in milliseconds).
CLOSE_TIMEOUT_S = 2.0
# A running stream that delivers no block for STALL_S is reopened (PulseAudio's ALSA plugin pauses about 2 s to
# recover from an underrun, and is left to), a fresh one that delivers none for START_S too (the same plugin took
# 1.8 s to start on a loaded 2-core VM); a device silent for GONE_S is gone.
STALL_S = 2.5
START_S = 5.0
GONE_S = 15.0


def parse_latency(text: str) -> float | str:
    """PortAudio's suggested latency from the command line: "low", "high" or a number of seconds in (0, 2];
    ValueError for anything else."""
    if text in ("low", "high"):
        return text
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not 0 < seconds <= 2:
        raise ValueError(f"expected low, high or seconds in (0, 2], got {text!r}")
    return seconds


@dataclass(frozen=True)
class LiveResult:
    """How a live run went: its stats, the recorded audio (if asked) and why it stopped."""

    stats: StreamStats  # with `live` set
    input_audio: np.ndarray  # what the engine was fed, at the model's rate (empty unless recording)
    output_audio: np.ndarray  # what the engine decoded, at the model's rate (empty unless recording)
    stop_reason: str  # "duration", "interrupted" or "error"
    error: str | None  # one line, when the device or the engine failed
    # A stream that would not close: PortAudio is stuck in it, and its exit-time clean-up would wait on it too.
    device_hung: bool = False


class EngineWorker(threading.Thread):
    """Takes device blocks from the callback's input ring, resamples them to the model's rate, runs the engine,
    resamples the decoded audio to the device's rate and queues it for playback.

    Decoded audio that arrives while `max_backlog` or more samples still wait to be played is dropped (and
    counted) so that a burst of late chunks cannot grow the delay without bound.
    """

    def __init__(self, engine: StreamEngine, callback: DuplexCallback, record: bool, max_backlog: int,
                 to_model: StreamResampler, to_device: StreamResampler) -> None:
        super().__init__(name="codec-engine", daemon=True)
        self.engine = engine
        self.callback = callback
        self.record = record
        self.dropped_frames = 0
        self.error: str | None = None
        self.inputs: list[np.ndarray] = []
        self.outputs: list[np.ndarray] = []
        self._max_backlog = max_backlog
        self._to_model, self._to_device = to_model, to_device
        self._stop_event = threading.Event()
        self._poll_s = engine.info.frame_ms / 1000 / 10

    def stop(self) -> None:
        """Ask the loop to finish after the current chunk."""
        self._stop_event.set()

    def run(self) -> None:
        block = np.zeros(self.callback.frame_size, dtype=np.float32)
        ring_in, ring_out = self.callback.input_ring, self.callback.output_ring
        try:
            while not self._stop_event.is_set():
                if not ring_in.read_into(block):
                    time.sleep(self._poll_s)
                    continue
                audio = self._to_model.process(block)
                if self.record and audio.size:
                    self.inputs.append(audio.copy())  # without resampling, `audio` is `block`, reused next time
                for result in self.engine.push(audio):
                    if self.record:
                        self.outputs.append(result.audio)
                    played = self._to_device.process(result.audio)
                    if ring_out.available() >= self._max_backlog or not ring_out.write(played):
                        self.dropped_frames += result.frames
        # Whatever stops the engine must end the stream with a message, not kill this thread silently.
        except Exception as error:  # noqa: BLE001
            self.error = f"engine failed: {first_line(error)}"


def open_sounddevice_stream(
    sample_rate: int, block_size: int, devices: tuple[Any, Any], latency: float | str, callback: DuplexCallback
) -> Any:
    """A mono float32 full-duplex PortAudio stream calling `callback` every `block_size` samples."""
    sd = sounddevice()
    list_devices()  # no devices at all deserves its own message, not PortAudio's "Error querying device -1"
    try:
        with c_stderr_silenced():  # PortAudio's failed-open diagnostics: the error below says it in one line
            return sd.Stream(
                samplerate=sample_rate,
                blocksize=block_size,
                device=devices,
                channels=1,
                dtype="float32",
                latency=latency,
                callback=callback,
            )
    except (sd.PortAudioError, ValueError) as error:
        raise AudioDeviceError(f"cannot open the audio devices ({first_line(error)}): {DEVICE_HINT}") from None


class ReopeningStream:
    """The device stream, replaced by a fresh one when it stops or stalls; counts the reopenings.

    `hung` once closing a stream did not finish within CLOSE_TIMEOUT_S: nothing is opened after that, since
    PortAudio is still inside the old stream.
    """

    def __init__(self, opener: Callable[[], Any]) -> None:
        self._opener = opener
        self.stream: Any = opener()  # the first open's error is the user's to see: wrong device, no PortAudio
        self.reopens = 0
        self.last_error: str | None = None
        self.hung = False

    @property
    def active(self) -> bool:
        return self.stream is not None and bool(self.stream.active)

    def start(self) -> None:
        self.stream.start()

    def reopen(self) -> None:
        """Close the current stream (it may already be gone) and try to open and start a new one; a close that
        hangs leaves nothing tried (and nothing counted: found from outside, the summary said "reopened: 1 time")."""
        self.close()
        if self.hung:
            return
        self.reopens += 1
        try:
            stream = self._opener()
        except AudioDeviceError as error:
            self.last_error = str(error).removesuffix(f": {DEVICE_HINT}")  # the run's error adds the hint once
            return
        try:
            with c_stderr_silenced():
                stream.start()
        except Exception as error:  # noqa: BLE001 -- PortAudio errors while a device comes back are expected
            self.last_error = first_line(error)
            close_stream(stream)
            return
        self.stream = stream

    def close(self) -> None:
        """Close the current stream, if any; a close that hangs sets `hung`."""
        if self.stream is not None:
            self.hung = not close_stream(self.stream)
            self.stream = None


def run_live(
    engine: StreamEngine,
    duration_s: float | None = None,
    devices: tuple[Any, Any] = (None, None),
    record: bool = False,
    open_stream: StreamOpener = open_sounddevice_stream,
    latency: float | str = DEFAULT_LATENCY,
    max_backlog_frames: int | None = None,
    stall_s: float = STALL_S,
    start_s: float = START_S,
    gone_s: float = GONE_S,
    choose_rate: RateChooser = supported_rate,
) -> LiveResult:
    """Run the codec live until `duration_s` of audio has passed, Ctrl-C, or a device failure.

    The devices run at `choose_rate`'s rate (the model's if they take it, else their own) and the audio is
    resampled in the worker, never in the callback. `latency` is PortAudio's suggested device latency ("low",
    "high" or seconds). A stream that stops, or delivers no block for `stall_s` (PulseAudio's ALSA plugin pauses
    about 2 s to recover from an underrun, and is left to), or no first block for `start_s` after opening (the
    same plugin took 1.8 s to start on a loaded 2-core VM), is closed and opened again; only a device that
    delivers nothing for `gone_s` ends the run. AudioDeviceError if the devices cannot be opened at all.
    """
    info = engine.info
    engine.reset()
    rate = choose_rate(devices, info.sample_rate)
    block = round(rate * info.frame_ms / 1000)
    to_model = StreamResampler(rate, info.sample_rate, LIVE_QUALITY)
    to_device = StreamResampler(info.sample_rate, rate, LIVE_QUALITY)
    # Output starts with what the resamplers will owe once running, so that their bursts never run it dry.
    owed = (-(-to_model.delay_samples(block) * rate // info.sample_rate)
            + to_device.delay_samples(engine.chunk_frames * info.frame_size))
    callback = DuplexCallback(block, engine.chunk_frames, extra_prime=owed)
    device = ReopeningStream(lambda: open_stream(rate, block, devices, latency, callback))
    device_latency = [_latency_ms(seconds) for seconds in getattr(device.stream, "latency", (0.0, 0.0))]
    backlog = (max_backlog_frames if max_backlog_frames is not None
               else output_queue_frames(engine.chunk_frames, device.stream, info.frame_ms))
    worker = EngineWorker(engine, callback, record, backlog * block + owed, to_model, to_device)
    target = None if duration_s is None else int(np.ceil(duration_s * 1000 / info.frame_ms))
    reason, error = "duration", None
    watchdog: DeviceWatchdog | None = None
    stop = threading.Event()
    worker.start()
    # PortAudio's own threads print C-level diagnostics while a device fails ("ALSA lib pcm.c: underrun
    # occurred", "Expression ... failed"); the run reports what happened in its stats and one error line.
    with c_stderr_silenced(), _signals_set(stop):
        try:
            device.start()
            watchdog = DeviceWatchdog(device, callback, stall_s, start_s, gone_s)
            reason, error = _watch(watchdog, worker, target, stop)
        except Exception as failure:  # noqa: BLE001 -- PortAudio errors must end the run, not lose its stats
            reason, error = "error", f"audio device failed: {first_line(failure)}; {DEVICE_HINT}"
        finally:
            device.close()
            worker.stop()
            worker.join()
    if reason == "interrupted" and watchdog is not None:
        watchdog.end_outage()
    gap_s = watchdog.gap_s if watchdog is not None else 0.0
    heard = _joined(worker.inputs)
    # The partial chunk the stop left buffered, coded as file mode codes a file's end: counted in the stats with
    # or without recordings (found from outside: 88 frames of 2 s without --record-output, 101 with it).
    flushed = [result.audio for result in engine.flush()]
    if record:
        worker.outputs += flushed
    stats = engine.stats(callback.underflows, callback.overflows + worker.dropped_frames)
    resampler_ms = owed / rate * 1000
    live = LiveStats(
        device_rate_hz=rate,
        input_latency_ms=device_latency[0],
        output_latency_ms=device_latency[1],
        resampler_delay_ms=resampler_ms,
        expected_latency_ms=(None if None in device_latency
                             else stats.algorithmic_latency_ms + resampler_ms + sum(device_latency)),
        reopens=device.reopens,
        reopen_gap_ms=gap_s * 1000,
    )
    # Cut to what was heard, as file mode cuts its output to the input: `--input` of the input recording then
    # gives the output recording exactly.
    return LiveResult(replace(stats, live=live), heard, _joined(worker.outputs)[: heard.size], reason, error,
                      device.hung)


@contextmanager
def _signals_set(stop: threading.Event) -> Iterator[None]:
    """Ctrl-C and SIGTERM set `stop` while the block runs, however many come, and the caller's handlers are back
    after it (found from outside: `timeout` signals the process and then its group, and the second signal, 1-10 ms
    after the first, interrupted the stop itself: no stats, no recordings, once a hang in PortAudio's close).
    Python runs signal handlers only in the main thread; elsewhere this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    signals = (signal.SIGINT, signal.SIGTERM)
    previous = {signum: signal.getsignal(signum) for signum in signals}
    for signum in signals:
        signal.signal(signum, lambda signum, frame: stop.set())
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _watch(watchdog: DeviceWatchdog, worker: EngineWorker, target: int | None,
           stop: threading.Event) -> tuple[str, str | None]:
    """Wait for the run to end, the device kept alive by `watchdog`; returns (reason, error)."""
    while True:
        if stop.wait(0.05):
            return "interrupted", None
        if worker.error:
            return "error", worker.error
        if target is not None and watchdog.callback.callbacks >= target:
            return "duration", None
        error = watchdog.check()
        if error is not None:
            return "error", error


class DeviceWatchdog:
    """Keeps a started device stream alive: one that stops, delivers no block for `stall_s`, or (fresh) none for
    `start_s`, is reopened (retried every `stall_s`); a device silent for `gone_s`, or whose close hangs, is gone.
    Live mode and calls on the sound card share it; `check` is called every few tens of milliseconds.
    """

    def __init__(self, device: ReopeningStream, callback: DuplexCallback, stall_s: float = STALL_S,
                 start_s: float = START_S, gone_s: float = GONE_S) -> None:
        self.device, self.callback = device, callback
        self.stall_s, self.start_s, self.gone_s = stall_s, start_s, gone_s
        self.gap_s = 0.0  # seconds without audio that reopening bridged (and the outage that ended the run)
        self._seen, self._last_progress = callback.callbacks, time.monotonic()
        self._opened_at, self._delivered = self._last_progress, False  # the current stream's start; ran since?
        self._outage_start: float | None = None  # the last callback before a stop or stall being bridged
        self._last_attempt = -float("inf")

    def end_outage(self) -> None:
        """The run ends (Ctrl-C) during an outage being bridged: it counts as time without audio up to now (found
        from outside: "stream reopened: 4 times (0 ms without audio)")."""
        if self._outage_start is not None:
            self.gap_s += time.monotonic() - self._outage_start
            self._outage_start = None

    def check(self) -> str | None:
        """Look once: reopen the stream if it stopped or stalled (this blocks for the close and the open); the
        one-line error when the device is gone or hung, else None."""
        now = time.monotonic()
        if self.callback.callbacks != self._seen:
            if self._outage_start is not None:
                self.gap_s += now - self._outage_start
                self._outage_start = None
            self._seen, self._last_progress, self._delivered = self.callback.callbacks, now, True
            return None
        quiet = now - max(self._last_progress, self._opened_at)
        if self.device.active and quiet <= (self.stall_s if self._delivered else self.start_s):
            return None
        if now - self._last_progress > self.gone_s:
            why = f": {self.device.last_error}" if self.device.last_error else ""
            # The outage that ends the run counts too: the summary's time without audio is all of it.
            self.gap_s += now - self._last_progress
            return (f"no audio from the device for {self.gone_s:g} s (disconnected, or its sound server "
                    f"stopped?), and reopening did not help{why}; {DEVICE_HINT}")
        if self.device.active or now - self._last_attempt > self.stall_s:  # a failed reopen: retried every stall_s
            self._outage_start = self._last_progress if self._outage_start is None else self._outage_start
            self.device.reopen()
            if self.device.hung:
                self.gap_s += time.monotonic() - self._outage_start
                return (f"the audio device stopped responding: closing its stream hung for {CLOSE_TIMEOUT_S:g} s "
                        f"(its sound server died?); {DEVICE_HINT}")
            self._last_attempt = self._opened_at = time.monotonic()
            self._delivered = False
        return None


def output_queue_frames(chunk_frames: int, stream: Any, frame_ms: float) -> int:
    """How many decoded frames may wait to be played before more are dropped: a chunk, plus 4 frames (80 ms) of
    callback jitter or the output latency PortAudio reports for `stream` when longer.

    A device with a long buffer takes its blocks in bursts (measured: PortAudio's ALSA host API on PulseAudio at
    --latency 1 reports 1.06 s out and calls back 13 times at once every 260 ms), and the queue must settle at a
    burst's worth instead of dropping the rest of every burst; at `low` (60 ms out) the cap stays at 80 ms, where
    a larger one let a start settle 160 ms later. Beyond the cap, or beyond what the output ring holds (the
    callback's QUEUE_FRAMES, 1 s: twice the bursts of --latency 2), a chunk is dropped rather than delaying
    everything after it."""
    output_latency_ms = _latency_ms(getattr(stream, "latency", (0.0, 0.0))[1]) or 0.0
    return chunk_frames + max(4, int(np.ceil(output_latency_ms / frame_ms)))


def _latency_ms(seconds: float) -> float | None:
    """A PortAudio-reported latency in ms, None when it is no plausible latency (beyond 10 s)."""
    return float(seconds) * 1000 if 0 <= seconds <= 10 else None


def close_stream(stream: Any, timeout_s: float = CLOSE_TIMEOUT_S) -> bool:
    """Stop and close the stream, waiting at most `timeout_s`; whether that finished.

    A device that already vanished may fail to close, which changes nothing, or hang there: after its JACK server
    was killed, PortAudio's JACK host API blocked in Pa_AbortStream for about 10 minutes, and a main thread
    blocked in C never runs the Ctrl-C handler. So the closing happens on a daemon thread that is left behind
    when it hangs.
    """
    def close() -> None:
        for action in (stream.abort, stream.close):
            try:
                action()
            except Exception:  # noqa: BLE001, S110
                pass

    closer = threading.Thread(target=close, name="codec-device-close", daemon=True)
    closer.start()
    closer.join(timeout_s)
    return not closer.is_alive()


def _joined(blocks: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(blocks) if blocks else np.zeros(0, dtype=np.float32)
