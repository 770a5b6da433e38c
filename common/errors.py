"""Runtime errors the CLI reports as one line: a bad model directory, provider or audio device."""

from __future__ import annotations


class StreamError(Exception):
    """A problem the user can fix, reported without a traceback."""


class ModelError(StreamError):
    """A model directory that is missing, incomplete, corrupt or not a streaming codec."""


class ProviderError(StreamError):
    """An ONNX Runtime execution provider that was asked for but cannot run here: `reason`, then the user's way
    out (`advice`), which names codec-stream's flag."""

    def __init__(self, reason: str, advice: str) -> None:
        super().__init__(f"{reason}; {advice}")
        self.reason = reason


class AudioDeviceError(StreamError):
    """No PortAudio, no usable device, or a device that stopped mid-stream."""


def first_line(error: BaseException, limit: int = 300) -> str:
    """The first line of an exception's message (or its type name), for one-line reports."""
    text = str(error).strip()
    return text.splitlines()[0][:limit] if text else type(error).__name__


class BitstreamError(StreamError):
    """A compressed file that is not one, is damaged or truncated, or was made for another model."""
