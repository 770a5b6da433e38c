"""Live mode: a full-duplex sound card stream, a worker thread running the engine, and a watchdog."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from sscodec.common.errors import AudioDeviceError, first_line
from sscodec.stream.devices import DEVICE_HINT, list_devices, sounddevice
from sscodec.stream.duplex import DuplexCallback
from sscodec.stream.engine import StreamEngine
from sscodec.stream.stats import StreamStats

# Opens a duplex stream, started later: (sample_rate, block_size, (input, output) devices, latency, callback).
StreamOpener = Callable[[int, int, tuple[Any, Any], "float | str", DuplexCallback], Any]


@dataclass(frozen=True)
class LiveResult:
    """How a live run went: its stats, the recorded audio (if asked) and why it stopped."""

    stats: StreamStats
    input_audio: np.ndarray  # what the engine was fed (empty unless recording)
    output_audio: np.ndarray  # what the engine decoded (empty unless recording)
    stop_reason: str  # "duration", "interrupted" or "error"
    error: str | None  # one line, when the device or the engine failed


class EngineWorker(threading.Thread):
    """Takes frames from the callback's input ring, runs the engine, queues decoded audio for playback.

    Decoded audio that arrives while more than `max_backlog_frames` frames still wait to be played is dropped
    (and counted) so that a burst of late chunks cannot grow the delay without bound.
    """

    def __init__(
        self, engine: StreamEngine, callback: DuplexCallback, record: bool, max_backlog_frames: int
    ) -> None:
        super().__init__(name="codec-engine", daemon=True)
        self.engine = engine
        self.callback = callback
        self.record = record
        self.dropped_frames = 0
        self.error: str | None = None
        self.inputs: list[np.ndarray] = []
        self.outputs: list[np.ndarray] = []
        self._max_backlog = max_backlog_frames * callback.frame_size
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
                if self.record:
                    self.inputs.append(block.copy())
                for result in self.engine.push(block):
                    if self.record:
                        self.outputs.append(result.audio)
                    if ring_out.available() >= self._max_backlog or not ring_out.write(result.audio):
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


def run_live(
    engine: StreamEngine,
    duration_s: float | None = None,
    devices: tuple[Any, Any] = (None, None),
    record: bool = False,
    open_stream: StreamOpener = open_sounddevice_stream,
    latency: float | str = "low",
    max_backlog_frames: int | None = None,
    stall_s: float = 5.0,
) -> LiveResult:
    """Run the codec live until `duration_s` of audio has passed, Ctrl-C, or a device failure.

    `latency` is PortAudio's suggested device latency ("low", "high" or seconds). A device that delivers no
    block for `stall_s` counts as gone: PulseAudio's ALSA plugin can pause about 2 s to recover from an underrun.
    """
    info = engine.info
    engine.reset()
    callback = DuplexCallback(info.frame_size, engine.chunk_frames)
    # Up to 4 frames (80 ms) of queued output absorb callback jitter (PulseAudio delivers blocks in bursts);
    # beyond that a chunk is dropped rather than delaying everything after it.
    backlog = max_backlog_frames if max_backlog_frames is not None else engine.chunk_frames + 4
    worker = EngineWorker(engine, callback, record, backlog)
    stream = open_stream(info.sample_rate, info.frame_size, devices, latency, callback)
    target = None if duration_s is None else int(np.ceil(duration_s * 1000 / info.frame_ms))
    reason, error = "duration", None
    worker.start()
    try:
        stream.start()
        reason, error = _watch(stream, callback, worker, target, stall_s)
    except KeyboardInterrupt:
        reason = "interrupted"
    except Exception as failure:  # noqa: BLE001 -- PortAudio errors must end the run, not lose its stats
        reason, error = "error", f"audio device failed: {first_line(failure)}; {DEVICE_HINT}"
    finally:
        _close_quietly(stream)
        worker.stop()
        worker.join()
    stats = engine.stats(callback.underflows, callback.overflows + worker.dropped_frames)
    return LiveResult(stats, _joined(worker.inputs), _joined(worker.outputs), reason, error)


def _watch(
    stream: Any, callback: DuplexCallback, worker: EngineWorker, target: int | None, stall_s: float
) -> tuple[str, str | None]:
    """Wait for the run to end; a stream that stops or stalls on its own means the device went away."""
    seen, last_progress = 0, time.monotonic()
    while True:
        time.sleep(0.05)
        if worker.error:
            return "error", worker.error
        if target is not None and callback.callbacks >= target:
            return "duration", None
        if not stream.active:
            return "error", f"the audio stream stopped on its own (device disconnected?); {DEVICE_HINT}"
        if callback.callbacks != seen:
            seen, last_progress = callback.callbacks, time.monotonic()
        elif time.monotonic() - last_progress > stall_s:
            return "error", f"no audio from the device for {stall_s:g} s (device disconnected?); {DEVICE_HINT}"


def _close_quietly(stream: Any) -> None:
    """Stop and close the stream; a device that already vanished may fail to close, which changes nothing."""
    for action in (stream.abort, stream.close):
        try:
            action()
        except Exception:  # noqa: BLE001, S110
            pass


def _joined(blocks: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(blocks) if blocks else np.zeros(0, dtype=np.float32)
