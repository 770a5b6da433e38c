"""Where a call's audio comes from and goes to: a file pair (tests, experiments) or the sound card (README, "Calls").

A source hands out chunks of whole frames at the model's rate; a sink takes the decoded audio. A file source has
no clock of its own (the call paces it in real time); the sound card's source is live and paced by the device.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any, Protocol

import numpy as np

from sscodec.common.audio import AudioWriter, audio_output
from sscodec.common.resample import LIVE_QUALITY, StreamResampler
from sscodec.stream.chunker import Chunker
from sscodec.stream.devices import abandon_portaudio, supported_rate
from sscodec.stream.duplex import DuplexCallback
from sscodec.stream.live import (
    GONE_S,
    DeviceWatchdog,
    RateChooser,
    ReopeningStream,
    StreamOpener,
    open_sounddevice_stream,
    output_queue_frames,
)
from sscodec.stream.model_dir import ModelInfo


class CallSource(Protocol):
    """Audio to send. `live` sources produce chunks on their own clock; others are read as fast as asked."""

    live: bool
    samples: int  # samples handed out so far, before padding (a file's exact length once exhausted)

    def next_chunk(self) -> np.ndarray | None:
        """The next chunk [chunk_frames · frame_size] float32, or None: nothing yet (live) or the end (file)."""
        ...

    def check_device(self) -> str | None:
        """A live source's device kept alive (a stream that stopped or stalled reopened); the one-line error that
        ends the call once the device is gone or hung, else None (always None for a file)."""
        ...


class CallSink(Protocol):
    """Audio received. A `timeline` sink also gets the silence before the first frame (a file of the call)."""

    timeline: bool

    def write(self, audio: np.ndarray) -> None:
        """Take decoded audio [n] float32 at the model's rate."""
        ...


class FileSource:
    """An audio file's blocks (`read_audio_blocks` at the model's rate) in chunks; the last is zero-padded to whole
    frames. AudioFileError from `next_chunk` for a file that cannot be decoded."""

    live = False

    def __init__(self, blocks: Iterator[np.ndarray], info: ModelInfo, chunk_frames: int) -> None:
        self._blocks = blocks
        self._chunker = Chunker(chunk_frames * info.frame_size, info.frame_size)
        self._ready: deque[np.ndarray] = deque()
        self._ended = False
        self.samples = 0

    def next_chunk(self) -> np.ndarray | None:
        while not self._ready and not self._ended:
            block = next(self._blocks, None)
            if block is None:
                self._ended = True
                tail = self._chunker.drain()
                if tail is not None:
                    self._ready.append(tail)
            else:
                self.samples += block.shape[0]
                self._ready.extend(self._chunker.push(block))
        return self._ready.popleft() if self._ready else None

    def check_device(self) -> str | None:
        return None


class FileSink:
    """Writes what is played to an audio file (mono, model rate, format from the extension) as it comes.

    The file is created at the first audio played, beside `path` (`audio_output`), and renamed over it at
    `close`: a call that never played anything (refused, silent peer) leaves no file and a previous one at `path`
    untouched, while a call that failed half way keeps what was heard, which tells what went wrong. "-" is a WAV
    on standard output, sent at `close`.
    """

    timeline = True

    def __init__(self, path: str | os.PathLike, sample_rate: int) -> None:
        self._path = path
        self._sample_rate = sample_rate
        self._open = ExitStack()
        self._writer: AudioWriter | None = None

    def write(self, audio: np.ndarray) -> None:
        if audio.size == 0:
            return
        if self._writer is None:
            # Kept only once both are open: a writer that cannot start deletes its temp file, not renames it.
            with ExitStack() as opening:
                temp = opening.enter_context(audio_output(self._path))
                self._writer = opening.enter_context(AudioWriter(temp, self._sample_rate))
                self._open = opening.pop_all()
        self._writer.write(audio)

    def close(self) -> None:
        self._open.close()


class DeviceAudio:
    """The sound card as both source and sink: one full-duplex PortAudio stream (live mode's callback and rings),
    resampled to and from the model's rate here, outside the callback.

    Decoded audio that finds live mode's `output_queue_frames` still queued for the speaker is dropped and counted,
    as in live mode, so the delay cannot grow; a stream that stops or stalls is reopened by live mode's
    DeviceWatchdog (`check_device`). AudioDeviceError when the devices cannot be opened. `open_stream` and
    `choose_rate` are live mode's (tests pass a fake sound card), as is `gone_s`.
    """

    live = True
    timeline = False

    def __init__(
        self,
        info: ModelInfo,
        chunk_frames: int,
        devices: tuple[Any, Any] = (None, None),
        latency: float | str = "low",
        open_stream: StreamOpener = open_sounddevice_stream,
        choose_rate: RateChooser = supported_rate,
        gone_s: float = GONE_S,
    ) -> None:
        rate = choose_rate(devices, info.sample_rate)
        block = round(rate * info.frame_ms / 1000)
        self._to_model = StreamResampler(rate, info.sample_rate, LIVE_QUALITY)
        self._to_device = StreamResampler(info.sample_rate, rate, LIVE_QUALITY)
        owed = -(
            -self._to_model.delay_samples(block) * rate // info.sample_rate
        ) + self._to_device.delay_samples(chunk_frames * info.frame_size)
        self.callback = DuplexCallback(block, chunk_frames, extra_prime=owed)
        self._block = np.zeros(block, dtype=np.float32)
        self._chunker = Chunker(chunk_frames * info.frame_size, info.frame_size)
        self._ready: deque[np.ndarray] = deque()
        self.device_rate = rate
        self.dropped_frames = 0
        self.samples = 0
        self._frame_size = info.frame_size
        self.device = ReopeningStream(lambda: open_stream(rate, block, devices, latency, self.callback))
        self._backlog = output_queue_frames(chunk_frames, self.device.stream, info.frame_ms) * block + owed
        self._watchdog: DeviceWatchdog | None = None
        self._gone_s = gone_s

    def start(self) -> None:
        self.device.start()
        self._watchdog = DeviceWatchdog(self.device, self.callback, gone_s=self._gone_s)

    def check_device(self) -> str | None:
        # Found from outside: a sound server that died mid-call left the call running, silent, until the peer
        # hung up. A reopen blocks the caller for the close and the open (milliseconds; at most CLOSE_TIMEOUT_S).
        return None if self._watchdog is None else self._watchdog.check()

    @property
    def reopens(self) -> int:
        """Device streams that stopped or stalled and were opened again."""
        return self.device.reopens

    @property
    def gap_ms(self) -> float:
        """Time without audio from the device that reopening bridged (and the outage that ended the call)."""
        return 0.0 if self._watchdog is None else self._watchdog.gap_s * 1000

    def close(self) -> None:
        """Close the device stream; one that hangs in PortAudio is left behind, with its exit-time clean-up."""
        self.device.close()
        if self.device.hung:
            abandon_portaudio()

    def next_chunk(self) -> np.ndarray | None:
        while self.callback.input_ring.read_into(self._block):
            audio = self._to_model.process(self._block)
            self.samples += audio.shape[0]
            self._ready.extend(self._chunker.push(audio))
        return self._ready.popleft() if self._ready else None

    def write(self, audio: np.ndarray) -> None:
        played = self._to_device.process(audio)
        ring = self.callback.output_ring
        if ring.available() >= self._backlog or not ring.write(played):
            self.dropped_frames += max(1, audio.shape[0] // self._frame_size)
