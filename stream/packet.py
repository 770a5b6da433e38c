"""The packet: what crosses the wire between a StreamEncoder and a StreamDecoder (README, "Bitstream")."""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

# sequence number (u32), coding mode (u8), codebooks (u8), frames (u16); little-endian.
_HEADER = struct.Struct("<IBBH")
PACKET_HEADER_SIZE = _HEADER.size
MAX_PACKET_FRAMES = 0xFFFF
MAX_SEQUENCE = 0xFFFFFFFF


class CodingMode(enum.IntEnum):
    """How a packet's codes are written: fixed-width bit packing, range-coded with the model's static tables, or
    range-coded with its context model (each code given the previous frame and the frame's earlier codebooks)."""

    RAW = 0
    ENTROPY = 1
    CONTEXT = 2


@dataclass(frozen=True)
class Packet:
    """The codes of `frames` consecutive frames of one stream, decodable on its own given the model.

    `payload` holds `codebooks` x `frames` codes in `mode`; `sequence` counts packets from 0 (wraps at 2^32).
    """

    sequence: int
    codebooks: int
    frames: int
    mode: CodingMode
    payload: bytes

    def __post_init__(self) -> None:
        if not 0 <= self.sequence <= MAX_SEQUENCE:
            raise ValueError(f"sequence must be in 0..{MAX_SEQUENCE}, got {self.sequence}")
        if not 1 <= self.codebooks <= 0xFF:
            raise ValueError(f"codebooks must be in 1..255, got {self.codebooks}")
        if not 1 <= self.frames <= MAX_PACKET_FRAMES:
            raise ValueError(f"frames must be in 1..{MAX_PACKET_FRAMES}, got {self.frames}")

    def to_bytes(self) -> bytes:
        """The packet as sent: an 8-byte header, then the payload."""
        return _HEADER.pack(self.sequence, self.mode, self.codebooks, self.frames) + self.payload

    @classmethod
    def from_bytes(cls, data: bytes) -> Packet:
        """Parse `to_bytes`' output; ValueError (one line) for anything too short or out of range."""
        if len(data) < PACKET_HEADER_SIZE:
            raise ValueError(f"packet of {len(data)} bytes is shorter than its {PACKET_HEADER_SIZE}-byte header")
        sequence, mode, codebooks, frames = _HEADER.unpack_from(data)
        if mode not in CodingMode._value2member_map_:
            raise ValueError(f"packet {sequence}: unknown coding mode {mode}")
        return cls(sequence, codebooks, frames, CodingMode(mode), bytes(data[PACKET_HEADER_SIZE:]))
