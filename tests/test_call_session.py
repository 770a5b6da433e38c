"""One call's media session on its own (no network): how a call ends and what it reports."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile
from test_stream_live import opener
from test_stream_model import export_tiny_model

from sscodec.common.audio import read_audio_blocks
from sscodec.stream.call_audio import DeviceAudio, FileSource
from sscodec.stream.call_session import CallSession
from sscodec.stream.call_wire import end_ack_message, end_message, media_message
from sscodec.stream.duplex import QUEUE_FRAMES
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


def _session(tmp_path: Path, silence_timeout_s: float = 60.0) -> tuple[CallSession, CodecModel, list[bytes]]:
    model = CodecModel(export_tiny_model())
    clip = tmp_path / "one_frame.wav"
    soundfile.write(clip, np.full(model.info.frame_size, 0.1, dtype=np.float32), model.info.sample_rate)
    info = model.info
    peer = Hello("tiny", model.fingerprint, info.sample_rate, info.frame_size, info.n_codebooks, 1)
    control: list[bytes] = []
    session = CallSession(model, info.n_codebooks, 1, peer, FileSource(read_audio_blocks(clip, info.sample_rate), info, 1), Recorder(),
                          lambda data: None, control.append, "call", min_playout_delay_ms=0.0,
                          silence_timeout_s=silence_timeout_s)
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


@pytest.mark.parametrize("gap", [None, 2])
def test_a_peer_that_goes_silent_is_not_counted_as_loss_after_its_last_packet(gap: int | None,
                                                                             tmp_path: Path) -> None:
    # Found from outside: a peer killed mid-call left the other side concealing until its silence timeout, and
    # those slots were reported as packets lost (525, 65.8 %) and written to the recording (10 s of it). After the
    # newest packet received nothing is known to have been sent (RFC 3550 counts loss up to the highest sequence
    # received): a gap before it is loss, what follows it is not, in the counts or in the file.
    session, model, _ = _session(tmp_path, silence_timeout_s=0.4)
    frame = model.info.frame_size

    async def peer_dies_after_six_packets() -> None:
        encoder = StreamEncoder(model, model.info.n_codebooks)
        await asyncio.sleep(0.05)  # the session has started
        for sequence in range(6):
            packet = encoder.encode(np.zeros(frame, np.float32))
            if sequence != gap:
                session.on_media(media_message(model.fingerprint, packet))
            await asyncio.sleep(0.02)

    async def both() -> str | None:
        peer = asyncio.ensure_future(peer_dies_after_six_packets())
        error = await asyncio.wait_for(session.run(), 10)
        await peer
        return error

    error = asyncio.run(both())
    assert error == "nothing from the peer for 0.4 s: the connection is lost"
    call = session.stats().call
    lost = 0 if gap is None else 1
    # A stretch (the buffer growing its delay) is concealed too.
    assert (call.packets_received, call.packets_lost, call.concealed) == (6 - lost, lost, lost + call.stretched), call
    assert call.loss == pytest.approx(lost / 6)
    recorded = sum(len(audio) for audio in session.sink.audio)
    assert recorded == call.start_offset_samples + (6 + call.stretched - call.compressed) * frame


def _call_on_a_fake_card(tmp_path: Path, seconds: float, **card: object) -> tuple[CallSession, DeviceAudio,
                                                                                  str | None, float]:
    """A call whose source and sink is DeviceAudio on live mode's fake sound card (`card`: opener faults), ended by
    `seconds` unless the device ends it first; (session, device, error, seconds it ran)."""
    model = CodecModel(export_tiny_model())
    info = model.info
    peer = Hello("tiny", model.fingerprint, info.sample_rate, info.frame_size, info.n_codebooks, 1)
    t = np.arange(16000 * 2) / 16000
    mic = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    streams: list = []
    fail_after = card.pop("fail_after", None)
    device = DeviceAudio(info, 1, open_stream=opener(streams, mic, fail_after=fail_after, **card),
                         choose_rate=lambda devices, rate: 16000, gone_s=1.0)
    session = CallSession(model, info.n_codebooks, 1, peer, device, device, lambda data: None, lambda data: None,
                          "call", silence_timeout_s=60.0)

    async def call() -> str | None:
        device.start()
        asyncio.get_running_loop().call_later(seconds, session.finish, "duration")
        try:
            return await asyncio.wait_for(session.run(), 20)
        finally:
            device.close()

    started = time.monotonic()
    error = asyncio.run(call())
    return session, device, error, time.monotonic() - started


@pytest.mark.parametrize(("latency", "kept"), [((0.04, 0.06), 1 + 4), ((0.5, 0.52), 1 + 26),
                                               ((1.04, 1.06), QUEUE_FRAMES)])  # at most what the ring holds
def test_a_call_queues_for_the_speaker_what_the_device_buffers(latency: tuple[float, float], kept: int) -> None:
    """Decoded audio waits to be played up to a chunk and 4 frames, or the device's output latency when longer
    (live mode's rule: at --latency 1 PulseAudio takes 13 blocks at once every 260 ms, and a 4-frame cap dropped
    the rest of every burst)."""
    info = CodecModel(export_tiny_model()).info
    t = np.arange(16000) / 16000
    mic = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    device = DeviceAudio(info, 1, open_stream=opener([], mic, latency=latency),
                         choose_rate=lambda devices, rate: 16000)  # opened, never started: nothing is played
    primed = device.callback.output_ring.available() // info.frame_size
    for _ in range(60):
        device.write(np.full(info.frame_size, 0.1, dtype=np.float32))
    assert device.callback.output_ring.available() // info.frame_size == kept
    assert device.dropped_frames == 60 - (kept - primed)


def test_a_call_reopens_a_device_stream_that_stops(tmp_path: Path) -> None:
    # Found from outside: a call on the sound card had no watchdog; a stream that stopped (a sound server
    # restarting) left the call running without audio until the peer hung up. Now live mode's watchdog reopens it.
    session, device, error, _ = _call_on_a_fake_card(tmp_path, 1.5, vanish_after=10)
    assert error is None and session.stats().call.ended_by == "duration"
    assert device.reopens == 1 and 0 < device.gap_ms < 1000
    assert session.stats().call.packets_sent > 20  # the reopened stream's audio was sent too (10 before it)


def test_a_call_whose_device_stays_gone_ends_with_a_one_line_error(tmp_path: Path) -> None:
    session, device, error, took = _call_on_a_fake_card(tmp_path, 30, vanish_after=10, fail_after=1)
    assert took < 10  # not the 30 s the call was given
    assert error is not None and error.startswith("no audio from the device for 1 s (disconnected, or its sound "
                                                  "server stopped?), and reopening did not help: cannot open")
    assert "\n" not in error and session.stats().call.ended_by == "the audio device stopped"
    assert device.reopens >= 1 and device.gap_ms >= 1000


def test_a_device_pause_skips_its_packets_so_what_follows_reaches_the_peer_on_time(tmp_path: Path) -> None:
    # Found from outside: PulseAudio's ALSA plugin paused 2 s at the start of a --mic call, and the packets after
    # it, numbered on from before it, all reached the peer 2 s late (224 of 349 late, concealed and discarded).
    # Numbered by capture time, the pause's packets are skipped: the peer conceals that second once.
    session, device, error, _ = _call_on_a_fake_card(tmp_path, 2.5, period_s=0.02, pause_at=25, pause_s=1.0)
    assert error is None and device.reopens == 0  # a pause shorter than the watchdog's stall time
    assert 45 <= session.capture_skipped <= 55, session.capture_skipped  # 1 s of 20 ms packets (fake timing ±)
    # Real time, no pause: nothing is skipped.
    session, device, error, _ = _call_on_a_fake_card(tmp_path, 1.5, period_s=0.02)
    assert error is None and session.capture_skipped == 0


def _call_with_peer(tmp_path: Path, peer_job) -> CallSession:
    """Our one-frame stream against `peer_job(session, model)`, which ends the peer's side; the call's stats."""
    session, model, _ = _session(tmp_path)

    async def both() -> None:
        peer = asyncio.ensure_future(peer_job(session, model))
        await asyncio.wait_for(session.run(), 20)
        await peer

    asyncio.run(both())
    return session


def test_a_stream_of_which_no_packet_arrived_is_all_lost(tmp_path: Path) -> None:
    # Found from outside: `--simulate loss=0.9999` dropped all 351 packets and the call reported "received 0
    # packets, lost 0 (0.0 %)"; the peer's END says how many it sent.
    async def peer_all_lost(session: CallSession, model: CodecModel) -> None:
        await asyncio.sleep(0.05)
        session.on_control(end_message(350, 351 * model.info.frame_size))
        await asyncio.sleep(0.2)
        session.on_control(end_ack_message())
        session.peer_closed()

    call = _call_with_peer(tmp_path, peer_all_lost).stats().call
    assert (call.packets_received, call.packets_lost, call.loss) == (0, 351, 1.0), call


def test_the_real_time_factor_counts_the_longer_of_the_two_streams(tmp_path: Path) -> None:
    # Found from outside: a caller that sent one frame and decoded the answerer's 7 s reported a real-time factor
    # of 11 (the decoding of 7 s over the 20 ms it sent).
    packets = 50

    async def peer_talks_longer(session: CallSession, model: CodecModel) -> None:
        encoder = StreamEncoder(model, model.info.n_codebooks)
        await asyncio.sleep(0.05)
        for _ in range(packets):
            packet = encoder.encode(np.zeros(model.info.frame_size, np.float32))
            session.on_media(media_message(model.fingerprint, packet))
            await asyncio.sleep(0.02)
        session.on_control(end_message(packets - 1, packets * model.info.frame_size))
        await asyncio.sleep(0.3)
        session.on_control(end_ack_message())
        session.peer_closed()

    session = _call_with_peer(tmp_path, peer_talks_longer)
    stats = session.stats()
    assert stats.frames == 1 and stats.call.packets_received == packets
    heard_ms = (packets + stats.call.stretched - stats.call.compressed) * stats.frame_ms
    compute_ms = sum(session._encode_ms) + sum(session._render_ms)
    assert stats.real_time_factor == pytest.approx(compute_ms / heard_ms)
