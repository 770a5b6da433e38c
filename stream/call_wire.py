"""What a call's data channels carry (README, "Calls"): codec packets tagged with the model's fingerprint, round-trip
probes, and the end of a stream. One message is one data-channel message; every byte string either parses or
raises WireError saying why, and nothing is sized by a field read from the wire.

Message layout (little-endian), after a first byte holding the format version (high 4 bits) and the kind:
- MEDIA: model fingerprint (8 bytes), then one packet as `Packet.to_bytes` writes it (8-byte header + payload).
- PING and PONG: probe id (u32), the pinging side's clock (f64 seconds); a PONG echoes its PING unchanged.
- END: the last packet's sequence number (u32) and the exact number of samples the stream carried (u64).
- END_ACK: nothing; the receiver of an END answers with it, so the sender knows everything it sent before the END
  has left (aiortc's hang-up aborts the association, dropping whatever is still queued).
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

from sscodec.stream.packet import Packet

WIRE_VERSION = 1
# The media channel is unordered with no retransmission (a late packet is useless); control is reliable and ordered.
MEDIA_CHANNEL = "codec"
CONTROL_CHANNEL = "control"
# One SCTP chunk's user data in aiortc: a message this small is never fragmented. A 10-frame packet of 12 raw
# codebooks is 167 bytes; anything near this limit is not a packet of ours.
MAX_MESSAGE_BYTES = 1200
FINGERPRINT_BYTES = 8
_PROBE = struct.Struct("<Id")
_END = struct.Struct("<IQ")


class Kind(enum.IntEnum):
    """The message kinds, in the low 4 bits of the first byte."""

    MEDIA = 1
    PING = 2
    PONG = 3
    END = 4
    END_ACK = 5


class WireError(ValueError):
    """A message that is not one of ours; `reason` is the counter it goes to."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason  # "oversized", "malformed" or "wrong_model"


@dataclass(frozen=True)
class Probe:
    """A PING or PONG: `probe_id` and the sender's clock in seconds when the PING left."""

    kind: Kind
    probe_id: int
    sent_s: float


@dataclass(frozen=True)
class EndAck:
    """The peer has received our END."""


@dataclass(frozen=True)
class End:
    """The end of the sender's stream: its last packet and its exact length in samples."""

    last_sequence: int
    samples: int


def _first_byte(kind: Kind) -> bytes:
    return bytes([(WIRE_VERSION << 4) | kind])


def media_message(fingerprint: bytes, packet: Packet) -> bytes:
    """A MEDIA message: `packet` for the model with this 8-byte fingerprint."""
    if len(fingerprint) != FINGERPRINT_BYTES:
        raise ValueError(f"a model fingerprint is {FINGERPRINT_BYTES} bytes, got {len(fingerprint)}")
    return _first_byte(Kind.MEDIA) + fingerprint + packet.to_bytes()


def probe_message(kind: Kind, probe_id: int, sent_s: float) -> bytes:
    """A PING (or the PONG answering it)."""
    if kind not in (Kind.PING, Kind.PONG):
        raise ValueError(f"a probe is a PING or a PONG, not {kind.name}")
    return _first_byte(kind) + _PROBE.pack(probe_id & 0xFFFFFFFF, sent_s)


def end_message(last_sequence: int, samples: int) -> bytes:
    """An END: the stream's last packet sequence number (u32) and its exact sample count."""
    return _first_byte(Kind.END) + _END.pack(last_sequence & 0xFFFFFFFF, samples)


def end_ack_message() -> bytes:
    """An END_ACK."""
    return _first_byte(Kind.END_ACK)


def parse_message(data: bytes, fingerprint: bytes) -> Packet | Probe | End | EndAck:
    """One received message; WireError for anything oversized, malformed or made for another model."""
    if not isinstance(data, (bytes, bytearray)):
        raise WireError("malformed", f"expected binary messages, got {type(data).__name__}")
    if len(data) > MAX_MESSAGE_BYTES:
        raise WireError("oversized", f"message of {len(data)} bytes (at most {MAX_MESSAGE_BYTES})")
    if not data:
        raise WireError("malformed", "empty message")
    version, kind = data[0] >> 4, data[0] & 0x0F
    if version != WIRE_VERSION:
        raise WireError("malformed", f"wire version {version}, expected {WIRE_VERSION}")
    body = bytes(data[1:])
    if kind == Kind.MEDIA:
        if len(body) < FINGERPRINT_BYTES:
            raise WireError("malformed", "media message shorter than a fingerprint")
        if body[:FINGERPRINT_BYTES] != fingerprint:
            raise WireError("wrong_model", f"packet for model {body[:FINGERPRINT_BYTES].hex()}")
        try:
            return Packet.from_bytes(body[FINGERPRINT_BYTES:])
        except ValueError as error:
            raise WireError("malformed", str(error)) from None
    if kind in (Kind.PING, Kind.PONG):
        if len(body) != _PROBE.size:
            raise WireError("malformed", f"{Kind(kind).name} of {len(body)} bytes, expected {_PROBE.size}")
        probe_id, sent_s = _PROBE.unpack(body)
        return Probe(Kind(kind), probe_id, sent_s)
    if kind == Kind.END:
        if len(body) != _END.size:
            raise WireError("malformed", f"END of {len(body)} bytes, expected {_END.size}")
        return End(*_END.unpack(body))
    if kind == Kind.END_ACK:
        if body:
            raise WireError("malformed", f"END_ACK with {len(body)} bytes of body")
        return EndAck()
    raise WireError("malformed", f"unknown message kind {kind}")
