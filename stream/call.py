"""`codec-stream --answer HOST:PORT` and `codec-stream --call URL` (README, "Calls"): signalling, the WebRTC link,
the audio ends and one CallSession, from the first line printed to the hang-up.

The answering side prints where it listens and the token, answers the first caller that presents the token and
whose model matches, and exits when that call ends. Ctrl-C (or SIGTERM) hangs up cleanly on either side: the
peer sees the call end, and the stats and output are written.
"""

from __future__ import annotations

import asyncio
import shlex
import signal
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from sscodec.common.audio import read_audio_blocks
from sscodec.common.errors import StreamError
from sscodec.common.text import decimal, plural
from sscodec.stream.call_audio import CallSink, CallSource, DeviceAudio, FileSink, FileSource
from sscodec.stream.call_peer import OfferError, PeerLink
from sscodec.stream.call_session import CallSession
from sscodec.stream.concealment import ConcealMethod
from sscodec.stream.devices import c_stderr_silenced, supported_rate
from sscodec.stream.engine import bitrate_cap_note, codebook_count
from sscodec.stream.jitter import DEFAULT_MIN_DELAY_MS
from sscodec.stream.model import CodecModel
from sscodec.stream.netsim import NetworkConditions
from sscodec.stream.runtime import RuntimeOptions
from sscodec.stream.signalling import (
    OFFER_PATH,
    Hello,
    OfferRefused,
    SignallingServer,
    caller_urls,
    new_token,
    send_offer,
)
from sscodec.stream.stats import StreamStats

DEFAULT_HOST = "127.0.0.1"


@dataclass(frozen=True)
class CallSetup:
    """Everything `codec-stream` was asked for a call. `address` is HOST:PORT to answer on, or the URL to call."""

    role: str  # "answer" or "call"
    address: str
    token: str | None
    model_dir: Path
    runtime: RuntimeOptions
    codebooks: int | None
    bitrate_kbps: float | None
    chunk_frames: int
    input_path: Path | None  # None: the microphone (and the speakers)
    output_path: Path | None
    devices: tuple[Any, Any] = (None, None)
    latency: float | str = "low"
    duration_s: float | None = None
    concealment: ConcealMethod = ConcealMethod.REPEAT
    simulate: NetworkConditions | None = None
    min_playout_delay_ms: float = DEFAULT_MIN_DELAY_MS
    connect_timeout_s: float = 20.0


@dataclass(frozen=True)
class CallOutcome:
    """The stats (None when no call was connected) and a one-line error when the call failed or never happened."""

    stats: StreamStats | None
    error: str | None


class CodebookChoiceError(ValueError):
    """--codebooks or --bitrate does not fit the model (a usage error)."""


def parse_listen_address(text: str) -> tuple[str, int]:
    """HOST:PORT, [IPv6]:PORT, or a bare PORT (then 127.0.0.1); ValueError (one line) otherwise."""
    if "/" in text:  # a URL such as http://HOST:PORT, which is what --call takes
        raise ValueError(f"--answer takes HOST:PORT, not a URL: got {text!r}")
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = DEFAULT_HOST, text
    host = host.strip("[]") or DEFAULT_HOST
    number = decimal(port)
    if number is None or number > 65535:
        raise ValueError(f"expected HOST:PORT (port 0-65535), got {text!r}")
    return host, number


def check_call_url(text: str) -> str:
    """An http://HOST:PORT URL (the answering side serves plain HTTP); ValueError (one line) otherwise."""
    # Found from outside: no port called port 80, port 0 was tried, a malformed IPv6 address was "Invalid IPv6
    # URL" and credentials were a network failure in aiohttp's words: each is a usage error here.
    try:
        parts = urlsplit(text)
        valid = parts.scheme == "http" and bool(parts.hostname) and bool(parts.port) and "@" not in parts.netloc
    except ValueError:  # a malformed IPv6 address; a port out of 0..65535 or not a number
        valid = False
    if not valid:
        raise ValueError(f"expected http://HOST:PORT (port 1-65535), got {text!r}")
    # Found from outside: the README's `POST /offer` pasted into the URL was called at /offer/offer, and the 404
    # was reported as "is not codec-stream --answer".
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"expected http://HOST:PORT without a path or query (the offer goes to its "
                         f"{OFFER_PATH}), got {text!r}")
    return text


def run_call(setup: CallSetup, announce: Callable[[str], None]) -> CallOutcome:
    """Answer or place one call and run it to its end; `announce` prints progress lines (the CLI's stdout, or stderr
    when standard output carries the audio or the stats)."""
    return asyncio.run(_run(setup, announce))


async def _run(setup: CallSetup, announce: Callable[[str], None]) -> CallOutcome:
    model = CodecModel(setup.model_dir, setup.runtime)
    info = model.info
    try:
        codebooks = codebook_count(info, setup.codebooks, setup.bitrate_kbps)
    except ValueError as error:
        raise CodebookChoiceError(str(error)) from None
    if (note := bitrate_cap_note(info, setup.bitrate_kbps)) is not None:
        announce(note)
    piped: Iterator[np.ndarray] | None = None
    if setup.input_path is not None:
        blocks = read_audio_blocks(setup.input_path, info.sample_rate)  # opened: a file that is not audio fails now
        if setup.input_path.is_file():
            # Decoded once through now (constant memory), as it will be sent: an unreadable, empty or damaged
            # input, or one with NaN or Inf samples (the check every file reader makes), fails before listening or
            # calling, not once the peer is waiting.
            for _block in blocks:
                pass
        else:
            # A pipe can be read only once: its header is checked now and the call sends it as it flows (found
            # from outside: the check above read piped WAV to its end, and the accepted call then failed).
            piped = blocks
    else:  # --mic: no PortAudio, no sound card or an unusable device fails now, not once the call is accepted
        supported_rate(setup.devices, info.sample_rate)
    hello = Hello(
        model.name, model.fingerprint.hex(), info.sample_rate, info.frame_size, codebooks, setup.chunk_frames
    )
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    server: SignallingServer | None = None
    try:
        if setup.role == "answer":
            token = setup.token or new_token()
            answerer = _Answerer(hello, setup.connect_timeout_s)
            server = SignallingServer(*parse_listen_address(setup.address), token, answerer.on_offer, announce)
            url = await server.start()
            shown = shlex.quote(token)  # pasted into a shell as printed, whatever characters the token has
            announce(f"waiting for a call at {url} (token {shown})")
            for reachable in caller_urls(server.host, server.port):
                announce(f"  call it with: codec-stream --call {reachable} --token {shown} --mic (or --input FILE)")
            link, peer = await answerer.wait(stop, announce)
        else:
            link, peer = await _call(setup, hello, stop, announce)
        if link is None:  # Ctrl-C before a call connected
            refused = ", ".join(f"{k} {v}" for k, v in sorted(server.refused.items())) if server else ""
            announce(f"no call{f' (offers refused: {refused})' if refused else ''}")
            return CallOutcome(None, None)
        outcome = await _converse(setup, model, codebooks, link, peer, stop, announce, piped)
    finally:
        if server is not None:
            await server.close()
    if server is not None and outcome.stats is not None:
        call = replace(outcome.stats.call, refused_offers=dict(server.refused))
        outcome = replace(outcome, stats=replace(outcome.stats, call=call))
    return outcome


class _Answerer:
    """The answering side's half of signalling: one call at a time, our model only, and a pending offer that does
    not connect within the timeout frees the line again."""

    def __init__(self, hello: Hello, connect_timeout_s: float) -> None:
        self.hello = hello
        self.connect_timeout_s = connect_timeout_s
        self._busy = False
        self._pending: asyncio.Queue[tuple[PeerLink, Hello]] = asyncio.Queue(maxsize=1)

    async def on_offer(self, sdp: str, caller: Hello) -> tuple[str, Hello]:
        if self._busy:
            raise OfferRefused(409, "busy: a call is already being set up or under way", "busy")
        if caller.fingerprint != self.hello.fingerprint:
            raise OfferRefused(
                409,
                f"the caller's model {caller.model!r} ({caller.fingerprint}) is not this "
                f"side's {self.hello.model!r} ({self.hello.fingerprint})",
                "model",
            )
        self._busy = True
        link = PeerLink()
        try:
            answer = await link.answer(sdp)
        except OfferError as error:
            self._busy = False
            await link.close()
            raise OfferRefused(400, str(error), "malformed") from None
        self._pending.put_nowait((link, caller))
        return answer, self.hello

    async def wait(
        self, stop: asyncio.Event, announce: Callable[[str], None]
    ) -> tuple[PeerLink | None, Hello | None]:
        """The first call that connects; (None, None) after Ctrl-C."""
        while True:
            got = asyncio.ensure_future(self._pending.get())
            stopped = asyncio.ensure_future(stop.wait())
            await asyncio.wait({got, stopped}, return_when=asyncio.FIRST_COMPLETED)
            stopped.cancel()
            if not got.done():
                got.cancel()
                return None, None
            link, caller = got.result()
            if await _connected(link, self.connect_timeout_s, stop):
                announce(
                    f"connected to {caller.model!r} ({caller.codebooks} {plural(caller.codebooks, 'codebook')}, {caller.chunk_frames} "
                    f"{plural(caller.chunk_frames, 'frame')} per packet)"
                )
                return link, caller
            await link.close()
            self._busy = False
            if stop.is_set():
                return None, None


async def _call(
    setup: CallSetup, hello: Hello, stop: asyncio.Event, announce: Callable[[str], None]
) -> tuple[PeerLink | None, Hello | None]:
    """Send the offer and connect; StreamError when refused or unreachable."""
    link = PeerLink()
    try:
        offer = await link.create_offer()
        answer, peer = await send_offer(setup.address, setup.token, offer, hello)
        if peer.fingerprint != hello.fingerprint:
            raise StreamError(
                f"{setup.address} runs model {peer.model!r} ({peer.fingerprint}), not this side's "
                f"{hello.model!r} ({hello.fingerprint})"
            )
        await link.accept_answer(answer)
    except (StreamError, OfferError) as error:
        await link.close()
        raise StreamError(str(error)) from None
    if not await _connected(link, setup.connect_timeout_s, stop):
        await link.close()
        if stop.is_set():
            return None, None
        raise StreamError(
            f"no connection to {setup.address} within {setup.connect_timeout_s:g} s (ICE or DTLS "
            "failed: are both hosts on one network?)"
        )
    announce(f"connected to {peer.model!r} at {setup.address}")
    return link, peer


async def _connected(link: PeerLink, timeout_s: float, stop: asyncio.Event) -> bool:
    opened = asyncio.ensure_future(link.opened(timeout_s))
    stopped = asyncio.ensure_future(stop.wait())
    await asyncio.wait({opened, stopped}, return_when=asyncio.FIRST_COMPLETED)
    stopped.cancel()
    if not opened.done():
        opened.cancel()
        return False
    return opened.result()


async def _converse(
    setup: CallSetup,
    model: CodecModel,
    codebooks: int,
    link: PeerLink,
    peer: Hello,
    stop: asyncio.Event,
    announce: Callable[[str], None],
    piped: Iterator[np.ndarray] | None,
) -> CallOutcome:
    """Run the connected call to its end and hang up; `piped`: the input's blocks when it is a pipe, opened
    already (a file is opened again here)."""
    device: DeviceAudio | None = None
    file_sink: FileSink | None = None
    quiet = ExitStack()
    try:
        if setup.input_path is None:
            # As in live mode: PortAudio's threads print C-level diagnostics while a device glitches or fails ("ALSA
            # lib pcm.c: underrun occurred"); the call reports those in its stats (found from outside: they showed).
            quiet.enter_context(c_stderr_silenced())
            device = DeviceAudio(model.info, setup.chunk_frames, setup.devices, setup.latency)
            source: CallSource = device
            sink: CallSink = device
        else:
            blocks = piped or read_audio_blocks(setup.input_path, model.info.sample_rate)
            source = FileSource(blocks, model.info, setup.chunk_frames)
            file_sink = FileSink(setup.output_path, model.info.sample_rate) if setup.output_path else None
            sink = file_sink if file_sink is not None else _Discard()
        session = CallSession(
            model,
            codebooks,
            setup.chunk_frames,
            peer,
            source,
            sink,
            link.send_media,
            link.send_control,
            setup.role,
            setup.concealment,
            setup.simulate,
            setup.min_playout_delay_ms,
        )
        link.on_media, link.on_control, link.on_closed = (
            session.on_media,
            session.on_control,
            session.peer_closed,
        )
        if device is not None:
            device.start()
        watcher = asyncio.ensure_future(_hang_up_on(stop, session))
        timer = (
            asyncio.get_running_loop().call_later(setup.duration_s, session.finish, "duration")
            if setup.duration_s
            else None
        )
        try:
            error = await session.run()
        finally:
            watcher.cancel()
            if timer is not None:
                timer.cancel()
    finally:
        await link.close()
        if device is not None:
            device.close()
        quiet.close()
        if file_sink is not None:
            file_sink.close()
    underflows = device.callback.underflows if device else 0
    overflows = device.callback.overflows + device.dropped_frames if device else 0
    stats = session.stats(underflows, overflows)
    if device is not None:
        stats = replace(stats, call=replace(stats.call, device_reopens=device.reopens, device_gap_ms=device.gap_ms,
                                            capture_skipped=session.capture_skipped))
    announce(f"call ended: {stats.call.ended_by}")
    return CallOutcome(stats, error)


async def _hang_up_on(stop: asyncio.Event, session: CallSession) -> None:
    await stop.wait()
    session.finish("interrupted")


class _Discard:
    """A sink for `--input` without `--output`: the received audio is decoded (and counted) but not kept."""

    timeline = False

    def write(self, audio: np.ndarray) -> None:
        pass
