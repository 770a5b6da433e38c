"""A call's WebRTC transport through aiortc (README, "Calls"): ICE to find a path, DTLS to encrypt it, SCTP data
channels on top. The media channel is unordered with no retransmission, as real-time audio wants; the control
channel (the END of a stream) is reliable.

No STUN or TURN server is configured: calls reach what the hosts' own addresses reach (a LAN, a VPN, the same
machine). aiortc gathers candidates on every interface except loopback, so two peers on one machine meet on its
LAN address.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from aiortc import RTCConfiguration, RTCDataChannel, RTCPeerConnection, RTCSessionDescription

from sscodec.common.errors import first_line
from sscodec.stream.call_wire import CONTROL_CHANNEL, MEDIA_CHANNEL

# Messages queued in SCTP beyond this are dropped at the sender: a stalled path must not grow memory or delay.
MAX_BUFFERED_BYTES = 64 * 1024


class OfferError(ValueError):
    """An offer this side cannot answer (not SDP, no data channel, or refused by aiortc)."""


class PeerLink:
    """One RTCPeerConnection with its two channels, once both are open.

    `on_media` / `on_control` receive the channels' messages and `on_closed` is called once when the connection
    closes or fails; set them before `opened` is awaited. `send_media` / `send_control` never raise: a message
    for a closed or congested channel is dropped and counted in `unsent`.
    """

    def __init__(self) -> None:
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.media: RTCDataChannel | None = None
        self.control: RTCDataChannel | None = None
        self.on_media: Callable[[object], None] = lambda data: None
        self.on_control: Callable[[object], None] = lambda data: None
        self.on_closed: Callable[[], None] = lambda: None
        self.unsent = 0
        self._open = asyncio.Event()
        self._closed = False
        self.pc.on("connectionstatechange", self._state_changed)

    # ---- caller ----

    async def create_offer(self) -> str:
        """Open both channels on our side and return the offer SDP (ICE candidates gathered, no trickle)."""
        self._attach(self.pc.createDataChannel(MEDIA_CHANNEL, ordered=False, maxRetransmits=0))
        self._attach(self.pc.createDataChannel(CONTROL_CHANNEL))
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return self.pc.localDescription.sdp

    async def accept_answer(self, sdp: str) -> None:
        """Apply the answering side's SDP; OfferError when aiortc refuses it."""
        try:
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
        except Exception as error:  # noqa: BLE001 -- aiortc raises many types for bad SDP
            raise OfferError(f"unusable answer: {first_line(error)}") from None

    # ---- answering side ----

    async def answer(self, offer_sdp: str) -> str:
        """Apply the caller's offer and return our answer SDP; OfferError for an offer that cannot make a call."""
        if "m=application" not in offer_sdp or "webrtc-datachannel" not in offer_sdp:
            raise OfferError("the offer has no data channel")
        self.pc.on("datachannel", self._attach)
        try:
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
            await self.pc.setLocalDescription(await self.pc.createAnswer())
        except Exception as error:  # noqa: BLE001 -- aiortc raises many types for bad SDP
            raise OfferError(f"unusable offer: {first_line(error)}") from None
        return self.pc.localDescription.sdp

    # ---- both ----

    async def opened(self, timeout_s: float) -> bool:
        """Wait until both channels are open; False after `timeout_s` or if the connection failed first."""
        try:
            await asyncio.wait_for(self._open.wait(), timeout_s)
        except asyncio.TimeoutError:
            return False
        return not self._closed

    def send_media(self, data: bytes) -> None:
        self._send(self.media, data)

    def send_control(self, data: bytes) -> None:
        self._send(self.control, data)

    async def close(self, timeout_s: float = 5.0) -> None:
        """Hang up: close the connection (the peer sees its channels close)."""
        try:
            await asyncio.wait_for(self.pc.close(), timeout_s)
        except (asyncio.TimeoutError, Exception):  # noqa: BLE001, S110 -- closing a broken connection may fail
            pass

    def _send(self, channel: RTCDataChannel | None, data: bytes) -> None:
        if channel is None or channel.readyState != "open" or channel.bufferedAmount > MAX_BUFFERED_BYTES:
            self.unsent += 1
            return
        try:
            channel.send(data)
        except Exception:  # noqa: BLE001 -- a channel closing under us: the message is lost, like any other
            self.unsent += 1

    def _attach(self, channel: RTCDataChannel) -> None:
        if channel.label == MEDIA_CHANNEL and self.media is None:
            self.media = channel
            channel.on("message", lambda data: self.on_media(data))
        elif channel.label == CONTROL_CHANNEL and self.control is None:
            self.control = channel
            channel.on("message", lambda data: self.on_control(data))
        else:
            channel.close()  # a channel we did not ask for: refused
            return
        channel.on("open", self._check_open)
        channel.on("close", self._lost)
        self._check_open()

    def _check_open(self) -> None:
        if all(c is not None and c.readyState == "open" for c in (self.media, self.control)):
            self._open.set()

    def _state_changed(self) -> None:
        if self.pc.connectionState in ("failed", "closed"):
            self._lost()

    def _lost(self) -> None:
        if not self._closed:
            self._closed = True
            self._open.set()  # wake whoever waits for the channels: they will not open now
            self.on_closed()
