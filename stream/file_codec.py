"""Whole recordings to compressed files and back: StreamEncoder/StreamDecoder over the bitstream format."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from sscodec.common.chunks import chunks
from sscodec.common.errors import BitstreamError
from sscodec.stream.bitstream import NO_TABLES, FileHeader, read_header, read_packets, write_packet
from sscodec.stream.decoder import StreamDecoder
from sscodec.stream.encoder import StreamEncoder
from sscodec.stream.model import CodecModel
from sscodec.stream.packet import CodingMode

DEFAULT_PACKET_FRAMES = 50  # 1 s: the range coder's 32-bit flushes cost little per packet (README, "Bitstream")


@dataclass(frozen=True)
class EncodeSummary:
    """What `encode_file` wrote."""

    packets: int
    file_bytes: int
    payload_bytes: list[int]  # coded codes per packet, without packet header and record framing
    frames: list[int]  # frames per packet


def encode_file(model: CodecModel, audio: np.ndarray, path: Path, codebooks: int, mode: CodingMode,
                packet_frames: int = DEFAULT_PACKET_FRAMES) -> EncodeSummary:
    """Write mono float32 audio [samples] (at the model's rate, ≥ 1 sample) to `path`, `packet_frames` per packet.

    The last partial frame is zero-padded, as codec-stream pads it; the header keeps the exact sample count.
    """
    info = model.info
    encoder = StreamEncoder(model, codebooks, mode)
    header = FileHeader(
        mode=encoder.mode, codebooks=codebooks, sample_rate=info.sample_rate, frame_size=info.frame_size,
        packet_frames=packet_frames, samples=int(audio.shape[0]), model_fingerprint=model.fingerprint,
        tables_fingerprint=model.tables_fingerprint if encoder.mode is CodingMode.ENTROPY else NO_TABLES,
        model_name=model.name,
    )
    padded = np.zeros(header.frames * info.frame_size, dtype=np.float32)
    padded[: audio.shape[0]] = audio
    payloads, frames = [], []
    with open(path, "wb") as stream:
        size = stream.write(header.to_bytes())
        for chunk in chunks(padded, packet_frames * info.frame_size):
            packet = encoder.encode(chunk)
            size += write_packet(stream, packet)
            payloads.append(len(packet.payload))
            frames.append(packet.frames)
    return EncodeSummary(len(payloads), size, payloads, frames)


def decode_file(model: CodecModel, path: Path) -> np.ndarray:
    """Audio float32 [samples] of a file written by `encode_file` with this model.

    BitstreamError (one line, naming `path`) for a file that is not one, is damaged, or was made by another
    model or with other tables; memory grows with the packets actually present, never with header claims.
    """
    source = str(path)
    with open(path, "rb") as stream:
        header, packets = read_checked(model, stream, source)
        decoder = StreamDecoder(model)
        pieces = []
        for index, codes in enumerate(packets):
            try:
                pieces.append(decoder.decode_codes(codes))
            except ValueError as error:
                raise BitstreamError(f"{source}: packet {index}: {error}") from None
    return np.concatenate(pieces)[: header.samples]


def read_checked(model: CodecModel, stream: BinaryIO, source: str) -> tuple[FileHeader, Iterator[np.ndarray]]:
    """A file's header, checked against `model`, and its packets' codes [codebooks, frames] in order.

    BitstreamError (one line, starting with `source`) as for `decode_file`, the packets' errors as they are read.
    """
    header = read_header(stream, source)
    _check_model(header, model, source)
    unpacker = StreamDecoder(model)

    def codes() -> Iterator[np.ndarray]:
        for packet in read_packets(stream, header, source):
            try:
                yield unpacker.unpack(packet)
            except ValueError as error:
                raise BitstreamError(f"{source}: packet {packet.sequence}: {error}") from None

    return header, codes()


def _check_model(header: FileHeader, model: CodecModel, source: str) -> None:
    """The file must be decoded by the model (and, entropy-coded, the tables) that encoded it."""
    info = model.info
    if header.model_fingerprint != model.fingerprint:
        raise BitstreamError(
            f"{source}: encoded by model '{header.model_name}' ({header.model_fingerprint.hex()}), but "
            f"{model.directory} is model '{model.name}' ({model.fingerprint.hex()}); decode with --model set to "
            "the model that encoded it"
        )
    # Same graphs imply the same rate, frame and codebooks, unless the header lies: check anyway.
    if (header.sample_rate, header.frame_size) != (info.sample_rate, info.frame_size) or (
            header.codebooks > info.n_codebooks):
        raise BitstreamError(f"{source}: header ({header.sample_rate} Hz, {header.frame_size}-sample frames, "
                             f"{header.codebooks} codebooks) does not fit model '{model.name}'")
    if header.mode is CodingMode.ENTROPY and header.tables_fingerprint != model.tables_fingerprint:
        raise BitstreamError(f"{source}: entropy-coded with tables {header.tables_fingerprint.hex()}, but "
                             f"{model.tables_path} holds tables {model.tables_fingerprint.hex()}")
