"""The compressed file format: a checksummed header, then length-prefixed, checksummed packets (README, "Bitstream").

Written and read front to back, so a file decodes as it arrives; every packet but the last holds the header's
frames per packet, so a reader finds the packet of any time and skips to it by reading the length prefixes before
it. Nothing read from a file sizes an allocation: every length is checked against the header's limits first, and
reads take only the bytes that are there.

Version 2 lets an entropy-coded file carry raw packets (each packet says its mode): the encoder sends a packet raw
when range coding would make it larger, so no packet exceeds its raw packing. Version 3 adds the context mode
(codes range-coded with the model's context model, which restarts every packet); its header's tables fingerprint
is the context model's. Version 1 and 2 files are still read.
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from sscodec.common.errors import BitstreamError
from sscodec.stream.packet import MAX_SEQUENCE, PACKET_HEADER_SIZE, CodingMode, Packet
from sscodec.stream.packing import packed_size

MAGIC = b"SSCB"
FORMAT_VERSION = 3
READ_VERSIONS = (1, 2, 3)
CONTEXT_VERSION = 3  # the first version with CodingMode.CONTEXT
MAX_PACKET_FRAMES = 3000  # 60 s of 20 ms frames: bounds one packet's memory whatever a header claims
# magic, version, mode, codebooks, name length, sample rate, frame size, packet frames, samples, two fingerprints.
_FIXED = struct.Struct("<4sBBBBIIIQ8s8s")
_CRC = struct.Struct("<I")
_RECORD = struct.Struct("<II")  # packet length, CRC-32 of the packet
RECORD_SIZE = _RECORD.size  # what a file adds to each packet
# No coder spends more than 32 bits on one code (constriction's probabilities have 24-bit precision): the bound
# on a version 1 packet, whose range-coded payload could exceed raw packing.
_MAX_BITS_PER_CODE = 32
NO_TABLES = bytes(8)  # the tables fingerprint of a raw-mode file


@dataclass(frozen=True)
class FileHeader:
    """What a decoder must know before the first packet; `tables_fingerprint` identifies the entropy tables (in
    entropy mode) or the context model (in context mode), and is 8 zero bytes in raw mode."""

    mode: CodingMode
    codebooks: int
    sample_rate: int
    frame_size: int
    packet_frames: int  # the most frames one packet holds (the last packet may hold fewer)
    samples: int  # the exact length of the encoded audio
    model_fingerprint: bytes
    tables_fingerprint: bytes
    model_name: str  # for messages only: the directory name of the model that encoded the file
    version: int = FORMAT_VERSION

    @property
    def frames(self) -> int:
        """Frames the packets hold in all: the samples rounded up to whole frames."""
        return -(-self.samples // self.frame_size)

    def max_packet_bytes(self, bits_per_code: int) -> int:
        """The most bytes a valid packet (header included) takes: its raw packing at `bits_per_code` bits per code
        (version 1: at the 32 bits no coder exceeds)."""
        bits = bits_per_code if self.version >= 2 else _MAX_BITS_PER_CODE
        return PACKET_HEADER_SIZE + packed_size(self.codebooks, self.packet_frames, bits)

    def to_bytes(self) -> bytes:
        """The header as written: the fixed fields, the UTF-8 model name (≤ 255 bytes), a CRC-32 of both."""
        name = self.model_name.encode("utf-8")[:255].decode("utf-8", "ignore").encode("utf-8")
        fixed = _FIXED.pack(MAGIC, self.version, self.mode, self.codebooks, len(name), self.sample_rate,
                            self.frame_size, self.packet_frames, self.samples, self.model_fingerprint,
                            self.tables_fingerprint)
        return fixed + name + _CRC.pack(zlib.crc32(fixed + name))


def read_header(stream: BinaryIO, source: str) -> FileHeader:
    """Parse and check a file header; BitstreamError starting with `source` if it is not a valid one."""
    fixed = stream.read(_FIXED.size)
    if len(fixed) < len(MAGIC) or fixed[: len(MAGIC)] != MAGIC:
        raise BitstreamError(f"{source}: not a codec-encode file (no {MAGIC.decode()} signature)")
    if len(fixed) < _FIXED.size:
        raise BitstreamError(f"{source}: truncated header")
    (_, version, mode, codebooks, name_length, sample_rate, frame_size, packet_frames, samples, model_fp,
     tables_fp) = _FIXED.unpack(fixed)
    if version not in READ_VERSIONS:
        raise BitstreamError(f"{source}: format version {version}; this decoder reads versions "
                             f"{', '.join(map(str, READ_VERSIONS))}")
    name = stream.read(name_length)
    checksum = stream.read(_CRC.size)
    if len(name) < name_length or len(checksum) < _CRC.size:
        raise BitstreamError(f"{source}: truncated header")
    if _CRC.unpack(checksum)[0] != zlib.crc32(fixed + name):
        raise BitstreamError(f"{source}: header checksum mismatch (damaged file)")
    if mode not in CodingMode._value2member_map_ or (mode == CodingMode.CONTEXT and version < CONTEXT_VERSION):
        raise BitstreamError(f"{source}: unknown coding mode {mode}")
    if min(codebooks, sample_rate, frame_size, samples) < 1 or not 1 <= packet_frames <= MAX_PACKET_FRAMES:
        raise BitstreamError(f"{source}: header fields out of range (codebooks {codebooks}, sample rate "
                             f"{sample_rate}, frame size {frame_size}, packet frames {packet_frames}, samples "
                             f"{samples})")
    # The name only ever appears in messages: a hostile one must not break them across lines.
    printable = "".join(c if c.isprintable() else "?" for c in name.decode("utf-8", "replace"))
    return FileHeader(CodingMode(mode), codebooks, sample_rate, frame_size, packet_frames, samples, model_fp,
                      tables_fp, printable, version)


def write_packet(stream: BinaryIO, packet: Packet) -> int:
    """Append one packet as a record (length, CRC-32, packet bytes); returns the bytes written."""
    data = packet.to_bytes()
    stream.write(_RECORD.pack(len(data), zlib.crc32(data)) + data)
    return _RECORD.size + len(data)


def skip_packets(stream: BinaryIO, header: FileHeader, count: int, bits_per_code: int, source: str) -> None:
    """Move past the next `count` packet records without reading their packets (their checksums are not checked:
    a seek reads only what it decodes); BitstreamError for a length out of bounds or a file that ends first."""
    limit = header.max_packet_bytes(bits_per_code)
    for index in range(count):
        record = stream.read(_RECORD.size)
        if len(record) < _RECORD.size:
            raise BitstreamError(f"{source}: truncated before packet {index}")
        length = _RECORD.unpack(record)[0]
        if not PACKET_HEADER_SIZE <= length <= limit:
            raise BitstreamError(f"{source}: packet {index} claims {length} bytes, outside "
                                 f"{PACKET_HEADER_SIZE}..{limit} (damaged file)")
        if stream.seekable():
            stream.seek(length, io.SEEK_CUR)
        elif len(stream.read(length)) < length:
            raise BitstreamError(f"{source}: truncated in packet {index}")


def read_packets(stream: BinaryIO, header: FileHeader, bits_per_code: int, source: str,
                 first: int = 0) -> Iterator[Packet]:
    """The file's packets in order from packet `first` (the stream positioned at its record, e.g. by
    `skip_packets`), each checked against the header; BitstreamError at the first bad one.

    Stops after the last packet; a file that ends early, holds more frames than the header's sample count,
    or has bytes after its last packet is an error.
    """
    limit = header.max_packet_bytes(bits_per_code)
    frames = first * header.packet_frames
    index = first
    while frames < header.frames:
        record = stream.read(_RECORD.size)
        if len(record) < _RECORD.size:
            raise BitstreamError(f"{source}: truncated before packet {index} ({frames} of {header.frames} frames)")
        length, checksum = _RECORD.unpack(record)
        if not PACKET_HEADER_SIZE <= length <= limit:
            raise BitstreamError(f"{source}: packet {index} claims {length} bytes, outside "
                                 f"{PACKET_HEADER_SIZE}..{limit} (damaged file)")
        data = stream.read(length)
        if len(data) < length:
            raise BitstreamError(f"{source}: truncated in packet {index}")
        if zlib.crc32(data) != checksum:
            raise BitstreamError(f"{source}: packet {index} checksum mismatch (damaged file)")
        try:
            packet = Packet.from_bytes(data)
        except ValueError as error:
            raise BitstreamError(f"{source}: packet {index}: {error}") from None
        _check_packet(packet, index, header, frames, source)
        frames += packet.frames
        index += 1
        yield packet
    if stream.read(1):
        raise BitstreamError(f"{source}: unexpected bytes after the last packet ({header.frames} frames)")


def _check_packet(packet: Packet, index: int, header: FileHeader, frames_before: int, source: str) -> None:
    """A packet must continue the file: next sequence number, the header's codebooks, its mode (or raw, from
    version 2), and the header's frames per packet (fewer only in the last)."""
    if packet.sequence != index & MAX_SEQUENCE:
        raise BitstreamError(f"{source}: packet {index} has sequence number {packet.sequence} (spliced file?)")
    fallback = header.version >= 2 and packet.mode is CodingMode.RAW
    if packet.codebooks != header.codebooks or (packet.mode != header.mode and not fallback):
        raise BitstreamError(f"{source}: packet {index} holds {packet.codebooks} codebooks in {packet.mode.name} "
                             f"mode; the header says {header.codebooks} in {header.mode.name}")
    expected = min(header.packet_frames, header.frames - frames_before)
    if packet.frames != expected:
        raise BitstreamError(f"{source}: packet {index} holds {packet.frames} frames; the header implies {expected}")
