"""One call's media session on its own (no network): how a call ends and what it reports."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile
from test_stream_model import export_tiny_model

from sscodec.stream.call_audio import FileSource
from sscodec.stream.call_session import CallSession
from sscodec.stream.call_wire import end_ack_message, end_message, media_message
from sscodec.stream.encoder import StreamEncoder
from sscodec.stream.model import CodecModel
from sscodec.stream.signalling import Hello

pytest.importorskip("aiohttp")  # signalling's Hello lives with the call extra


class Recorder:
    """A timeline sink that keeps what it is given."""

    timeline = True

    def __init__(self) -> None:
        self.audio: list[np.ndarray] = []

    def write(self, audio: np.ndarray) -> None:
        self.audio.append(audio)


def _session(tmp_path: Path) -> tuple[CallSession, CodecModel, list[bytes]]:
    model = CodecModel(export_tiny_model())
    clip = tmp_path / "one_frame.wav"
    soundfile.write(clip, np.full(model.info.frame_size, 0.1, dtype=np.float32), model.info.sample_rate)
    info = model.info
    peer = Hello("tiny", model.fingerprint, info.sample_rate, info.frame_size, info.n_codebooks, 1)
    control: list[bytes] = []
    session = CallSession(model, info.n_codebooks, 1, peer, FileSource(clip, info, 1), Recorder(),
                          lambda data: None, control.append, "call", min_playout_delay_ms=0.0,
                          silence_timeout_s=60.0)
    return session, model, control


async def _peer_streams_one_packet(session: CallSession, model: CodecModel, acknowledge: bool) -> None:
    """The peer's one-packet stream and END; then it acknowledges our END, or not, and hangs up."""
    await asyncio.sleep(0.05)
    packet = StreamEncoder(model, model.info.n_codebooks).encode(np.zeros(model.info.frame_size, np.float32))
    session.on_media(media_message(model.fingerprint, packet))
    session.on_control(end_message(0, model.info.frame_size))
    await asyncio.sleep(0.2)  # our stream (one packet) is sent and ended by now
    if acknowledge:
        session.on_control(end_ack_message())
    session.peer_closed()


@pytest.mark.parametrize(("acknowledge", "ended_by"), [
    (True, "end of both streams"),
    # Found from outside: a side the peer had given up on (stalled past its silence timeout) reported a whole
    # call once the transport closed, though its END was never acknowledged.
    (False, "end of both streams, but the peer never acknowledged ours (it may not have heard all of it)"),
])
def test_a_call_is_whole_only_when_the_peer_acknowledged_our_end(acknowledge: bool, ended_by: str,
                                                                  tmp_path: Path) -> None:
    session, model, control = _session(tmp_path)

    async def both() -> None:
        peer = asyncio.ensure_future(_peer_streams_one_packet(session, model, acknowledge))
        await asyncio.wait_for(session.run(), 10)
        await peer

    asyncio.run(both())
    stats = session.stats()
    assert stats.call.ended_by == ended_by
    assert end_message(0, model.info.frame_size) in control  # our END was sent either way
    assert stats.call.packets_received == 1 and stats.call.peer_samples == model.info.frame_size


class _DeviceThatDies:
    """A live source that delivers `chunks` chunks and then nothing, as a sound card whose server died."""

    live = True

    def __init__(self, info, chunks: int) -> None:
        self.samples, self._left, self._size = 0, chunks, info.frame_size
        self._last = time.monotonic()

    def next_chunk(self) -> np.ndarray | None:
        if self._left == 0:
            return None
        self._left -= 1
        self.samples += self._size
        self._last = time.monotonic()
        return np.zeros(self._size, dtype=np.float32)

    def silent_s(self) -> float:
        return time.monotonic() - self._last


def test_a_call_whose_device_stops_delivering_ends_with_a_one_line_error(tmp_path: Path) -> None:
    # Found from outside: a sound server that died mid-call left the call running, silent, until the peer hung up.
    model = CodecModel(export_tiny_model())
    info = model.info
    peer = Hello("tiny", model.fingerprint, info.sample_rate, info.frame_size, info.n_codebooks, 1)
    session = CallSession(model, info.n_codebooks, 1, peer, _DeviceThatDies(info, 5), Recorder(), lambda data: None,
                          lambda data: None, "call", silence_timeout_s=60.0, device_gone_s=0.5)
    started = time.monotonic()
    error = asyncio.run(asyncio.wait_for(session.run(), 10))
    assert 0.5 <= time.monotonic() - started < 3
    assert error is not None and error.startswith("no audio from the device for 0.5 s (disconnected, or its sound "
                                                  "server stopped?); pick devices with --input-device")
    assert "\n" not in error
    stats = session.stats()
    assert stats.call.ended_by == "the audio device stopped" and stats.call.packets_sent == 5
