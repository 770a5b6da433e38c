"""Signalling for a call (README, "Calls"): the answering side's small HTTP endpoint takes the caller's WebRTC offer
and returns its answer. Only a caller that presents the token gets an answer; everything else is refused and
counted, and nothing it sends reaches WebRTC.

`POST /offer` with `Authorization: Bearer TOKEN` and a JSON body {"type": "offer", "sdp": ..., "codec": HELLO}
→ 200 {"type": "answer", "sdp": ..., "codec": HELLO}. Refusals, each with a JSON {"error": ...}: 403 wrong or
missing token (checked before the body is read), 413 a body over 64 KiB, 400 a body that is not such an offer or a
request that is not HTTP (aiohttp's own answer, counted as malformed), 409 another model or a call already under
way. HELLO describes a side's stream: {"model": name, "fingerprint": 16 hex
digits, "sample_rate": Hz, "frame_size": samples, "codebooks": Q, "chunk_frames": K}.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import secrets
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass

import ifaddr
from aiohttp import ClientError, ClientSession, ClientTimeout, web
from aiohttp.http_exceptions import HttpProcessingError

from sscodec.common.errors import StreamError, first_line

MAX_OFFER_BYTES = 64 * 1024
# Refused offers printed by an answering side; more are only counted (a caller retrying in a loop, or a scan,
# would otherwise flood the terminal).
MAX_ANNOUNCED_REFUSALS = 10
MAX_CALL_CHUNK_FRAMES = 10  # 200 ms per packet: more is no call, and keeps every packet in one small message
OFFER_PATH = "/offer"


def caller_urls(host: str, port: int) -> list[str]:
    """The URLs a caller can use to reach signalling bound to `host`:`port`: the bound address itself, or, for the
    wildcard addresses (0.0.0.0: every IPv4 interface; ::, every interface), this machine's own addresses other
    than loopback and link-local (from its network interfaces), loopback alone where it has no other."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:  # a host name
        return [_url(host, port)]
    if not address.is_unspecified:
        return [_url(host, port)]
    found = []
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            text = ip.ip if isinstance(ip.ip, str) else ip.ip[0]  # IPv6 comes as (address, flowinfo, scope)
            candidate = ipaddress.ip_address(text)
            if candidate.version == 6 and address.version == 4:
                continue
            if not (candidate.is_loopback or candidate.is_link_local):
                found.append(_url(text, port))
    return sorted(set(found), key=found.index) or [_url("127.0.0.1", port)]


def _url(host: str, port: int) -> str:
    return f"http://{host if ':' not in host else f'[{host}]'}:{port}"


@dataclass(frozen=True)
class Hello:
    """One side's stream, as declared in signalling."""

    model: str
    fingerprint: str  # 16 hex digits: CodecModel.fingerprint
    sample_rate: int
    frame_size: int
    codebooks: int
    chunk_frames: int

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: object) -> Hello:
        """Parse and range-check a HELLO; TypeError or ValueError (one line) for anything else."""
        if not isinstance(data, dict):
            raise TypeError("codec: expected an object")
        values = {}
        for name, kind in (
            ("model", str),
            ("fingerprint", str),
            ("sample_rate", int),
            ("frame_size", int),
            ("codebooks", int),
            ("chunk_frames", int),
        ):
            value = data.get(name)
            if not isinstance(value, kind) or isinstance(value, bool):
                raise TypeError(f"codec.{name}: expected {kind.__name__}")
            values[name] = value
        hello = cls(**values)
        if len(hello.model) > 255:
            raise ValueError("codec.model: longer than 255 characters")
        try:
            if len(bytes.fromhex(hello.fingerprint)) != 8:
                raise ValueError
        except ValueError:
            raise ValueError("codec.fingerprint: expected 16 hex digits") from None
        if not (
            1 <= hello.codebooks <= 255
            and 1 <= hello.chunk_frames <= MAX_CALL_CHUNK_FRAMES
            and 0 < hello.sample_rate <= 768_000
            and 0 < hello.frame_size <= 65_536
        ):
            raise ValueError("codec: codebooks, chunk_frames, sample_rate or frame_size out of range")
        return hello


class OfferRefused(Exception):
    """What the answering side's offer handler raises to refuse an offer: an HTTP status and a one-line reason."""

    def __init__(self, status: int, reason: str, counter: str) -> None:
        super().__init__(reason)
        self.status = status
        self.counter = counter  # the refused_offers key it is counted under


# Takes the caller's SDP and HELLO, returns this side's answer SDP and HELLO; raises OfferRefused.
OfferHandler = Callable[[str, Hello], Awaitable[tuple[str, Hello]]]


def token_problem(token: str) -> str | None:
    """Why no caller could present `token`, or None: it travels as `Authorization: Bearer TOKEN`, an HTTP field
    whose value loses the spaces at its ends and may hold no control character (RFC 9110, 5.5)."""
    if token == token.strip() and all(character.isprintable() for character in token):
        return None
    return (f"--token {token!r}: no spaces at its ends and no control characters (it travels in an HTTP header, "
            "which drops the one and refuses the other)")


def new_token() -> str:
    """A fresh call token: 128 random bits, URL-safe (22 characters)."""
    return secrets.token_urlsafe(16)


class SignallingServer:
    """The HTTP endpoint on (host, port); `refused` counts refusals by reason. Port 0 picks a free port."""

    def __init__(self, host: str, port: int, token: str, on_offer: OfferHandler,
                 announce: Callable[[str], None] | None = None) -> None:
        """`announce` gets one line per refused offer (the first MAX_ANNOUNCED_REFUSALS; all are counted)."""
        self.host, self.port = host, port
        self._token = token.encode("utf-8")
        self._on_offer = on_offer
        self._announce = announce
        self.refused: Counter[str] = Counter()
        self._runner: web.AppRunner | None = None
        # aiohttp reports a request it cannot parse to its server logger, with a traceback that Python's last-resort
        # handler printed on stderr (found from outside: a bare-LF request). This logger counts and announces it.
        # Its own Logger, outside logging's registry (no parent, not kept after this server), at DEBUG: aiohttp logs a
        # first request that is not HTTP at debug level.
        self._http_log = logging.Logger(f"{__name__}.http", logging.DEBUG)  # noqa: LOG001 -- see above
        self._http_log.addHandler(_ParseErrorHandler(self.count_refusal, announce))

    async def start(self) -> str:
        """Listen; returns the URL callers use (with the port actually bound). StreamError if it cannot bind."""
        app = web.Application(client_max_size=MAX_OFFER_BYTES)
        app.router.add_post(OFFER_PATH, self._handle)
        # No access log: a refused caller's requests are counted, not printed.
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, logger=self._http_log)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        try:
            await site.start()
        except OSError as error:
            await self._runner.cleanup()
            raise StreamError(
                f"cannot listen on {self.host}:{self.port} ({error.strerror or error})"
            ) from None
        host, port = self._runner.addresses[0][:2]
        self.port = port
        return _url(host, port)

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _handle(self, request: web.Request) -> web.Response:
        presented = request.headers.get("Authorization", "")
        scheme, _, token = presented.partition(" ")
        if scheme.lower() != "bearer" or not secrets.compare_digest(
            token.strip().encode("utf-8"), self._token
        ):
            return self._refuse(request, 403, "wrong or missing token", "token")
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return self._refuse(request, 413, f"offer larger than {MAX_OFFER_BYTES} bytes", "malformed")
        try:
            offer = json.loads(body)
            if (
                not isinstance(offer, dict)
                or offer.get("type") != "offer"
                or not isinstance(offer.get("sdp"), str)
            ):
                raise ValueError('expected {"type": "offer", "sdp": ..., "codec": ...}')
            hello = Hello.from_dict(offer.get("codec"))
        except (ValueError, TypeError, RecursionError) as error:
            return self._refuse(request, 400, f"malformed offer: {first_line(error)}", "malformed")
        try:
            sdp, answer_hello = await self._on_offer(offer["sdp"], hello)
        except OfferRefused as refusal:
            return self._refuse(request, refusal.status, str(refusal), refusal.counter)
        return web.json_response({"type": "answer", "sdp": sdp, "codec": answer_hello.to_dict()})

    def _refuse(self, request: web.Request, status: int, reason: str, counter: str) -> web.Response:
        self.count_refusal(f"an offer from {request.remote}", status, reason, counter)
        return web.json_response({"error": reason}, status=status)

    def count_refusal(self, what: str, status: int, reason: str, counter: str) -> None:
        """Count a refusal under `counter` and announce it ("refused WHAT: REASON (HTTP STATUS)") while fewer than
        MAX_ANNOUNCED_REFUSALS have been."""
        self.refused[counter] += 1
        refusals = sum(self.refused.values())
        if self._announce is not None and refusals <= MAX_ANNOUNCED_REFUSALS:
            more = "; further refusals are counted, not printed" if refusals == MAX_ANNOUNCED_REFUSALS else ""
            self._announce(f"refused {what}: {reason} (HTTP {status}){more}")


class _ParseErrorHandler(logging.Handler):
    """aiohttp's server log for one SignallingServer: a request it could not parse (it has answered 400 and closed
    the connection) is a refusal, counted as malformed; any other error is one line, never a traceback."""

    def __init__(self, count_refusal: Callable[[str, int, str, str], None],
                 announce: Callable[[str], None] | None) -> None:
        super().__init__(logging.DEBUG)
        self._count_refusal, self._announce = count_refusal, announce

    def emit(self, record: logging.LogRecord) -> None:
        error = record.exc_info[1] if record.exc_info else None
        remote = record.args[0] if isinstance(record.args, tuple) and record.args else "a client"
        if isinstance(error, HttpProcessingError):
            self._count_refusal(f"a request from {remote}", error.code, "not a well-formed HTTP request", "malformed")
        elif record.levelno >= logging.ERROR and self._announce is not None:
            self._announce(f"signalling: {record.getMessage()}" + (f" ({first_line(error)})" if error else ""))


async def send_offer(
    url: str, token: str | None, sdp: str, hello: Hello, timeout_s: float = 20.0
) -> tuple[str, Hello]:
    """POST the offer to the answering side at `url`; its answer SDP and HELLO. StreamError (one line) when it
    cannot be reached, refuses, or answers with something that is not an answer."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    target = url.rstrip("/") + OFFER_PATH
    body = {"type": "offer", "sdp": sdp, "codec": hello.to_dict()}
    try:
        async with (
            ClientSession(timeout=ClientTimeout(total=timeout_s)) as session,
            session.post(target, json=body, headers=headers) as response,
        ):
            text = await response.text()
            status = response.status
    except (ClientError, asyncio.TimeoutError, ValueError) as error:
        raise StreamError(
            f"cannot reach {url} ({first_line(error)}); is codec-stream --answer running there?"
        ) from None
    try:
        reply = json.loads(text)
    except ValueError:
        reply = None
    if status != 200:
        if not (isinstance(reply, dict) and isinstance(reply.get("error"), str)):
            # Found from outside: another server's error page was quoted ("<!DOCTYPE HTML>", "Exception").
            raise StreamError(f"{url} is not codec-stream --answer (it answered the offer with HTTP {status}); is "
                              "codec-stream --answer running there?")
        raise StreamError(f"{url} refused the call (HTTP {status}): {first_line(Exception(reply['error']))}")
    try:
        if (
            not isinstance(reply, dict)
            or reply.get("type") != "answer"
            or not isinstance(reply.get("sdp"), str)
        ):
            raise ValueError("not a WebRTC answer")
        return reply["sdp"], Hello.from_dict(reply.get("codec"))
    except (ValueError, TypeError) as error:
        raise StreamError(f"{url} answered with {first_line(error)}") from None
