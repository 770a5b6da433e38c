"""Whole recordings to compressed files and back: StreamEncoder/StreamDecoder over the bitstream format."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from sscodec.common.chunks import chunks
from sscodec.common.errors import BitstreamError
from sscodec.common.files import atomic_output
from sscodec.common.text import plural
from sscodec.stream.bitstream import (
    NO_TABLES,
    FileHeader,
    read_header,
    read_packets,
    skip_packets,
    write_packet,
)
from sscodec.stream.decoder import StreamDecoder
from sscodec.stream.encoder import StreamEncoder
from sscodec.stream.model import CodecModel
from sscodec.stream.packet import CodingMode, Packet

DEFAULT_PACKET_FRAMES = 50  # 1 s: the range coder's 32-bit flushes cost little per packet (README, "Bitstream")
MAX_DECODER_MEMORY = 64  # frames: the longest decoder memory a seek measures (see decoder_memory_frames)
SEEK_TOLERANCE = 1e-5  # the largest difference from a whole decode that a seek's warm-up leaves


@dataclass(frozen=True)
class EncodeSummary:
    """What `encode_file` wrote."""

    packets: int
    file_bytes: int
    payload_bytes: list[int]  # coded codes per packet, without packet header and record framing
    frames: list[int]  # frames per packet
    modes: list[CodingMode]  # each packet's mode: in an entropy-coded file, RAW where that was smaller


def encode_file(model: CodecModel, audio: np.ndarray, path: Path, codebooks: int, mode: CodingMode,
                packet_frames: int = DEFAULT_PACKET_FRAMES) -> EncodeSummary:
    """Write mono float32 audio [samples] (at the model's rate, ≥ 1 sample) to `path`, `packet_frames` per packet.

    The last partial frame is zero-padded, as codec-stream pads it; the header keeps the exact sample count.
    The file is written beside `path` and renamed over it when complete: on any error `path` is left as it was.
    """
    encoder = StreamEncoder(model, codebooks, mode)
    header = file_header(encoder, int(audio.shape[0]), packet_frames)
    padded = np.zeros(header.frames * header.frame_size, dtype=np.float32)
    padded[: audio.shape[0]] = audio
    packets = (encoder.encode(chunk) for chunk in chunks(padded, packet_frames * header.frame_size))
    with atomic_output(path) as temp, open(temp, "wb") as stream:
        return write_file(stream, header, packets)


def file_header(encoder: StreamEncoder, samples: int, packet_frames: int) -> FileHeader:
    """The header of a file of `samples` samples that `encoder` (new, or just reset) codes, `packet_frames` per
    packet."""
    model, info = encoder.model, encoder.info
    return FileHeader(
        mode=encoder.mode, codebooks=encoder.codebooks, sample_rate=info.sample_rate, frame_size=info.frame_size,
        packet_frames=packet_frames, samples=samples, model_fingerprint=model.fingerprint,
        tables_fingerprint=coder_fingerprint(model, encoder.mode),
        model_name=model.name,
    )


def write_file(stream: BinaryIO, header: FileHeader, packets: Iterable[Packet]) -> EncodeSummary:
    """Write `header`, then `packets` (each full but the last, as the header says), to `stream`."""
    size = stream.write(header.to_bytes())
    payloads, frames, modes = [], [], []
    for packet in packets:
        size += write_packet(stream, packet)
        payloads.append(len(packet.payload))
        frames.append(packet.frames)
        modes.append(packet.mode)
    return EncodeSummary(len(payloads), size, payloads, frames, modes)


def decode_file(model: CodecModel, path: Path, start: int = 0, length: int | None = None) -> np.ndarray:
    """Audio float32 of a file written by `encode_file` with this model: all of it, or `length` samples (to the
    end at most) from sample `start` (see `FileReader.audio`).

    BitstreamError (one line, naming `path`) for a file that is not one, is damaged, or was made by another
    model or with other tables; memory grows with the packets actually present, never with header claims.
    """
    with FileReader(model, path) as reader:
        return np.concatenate(list(reader.audio(start, length)))


class FileReader:
    """An open file from `encode_file`, its header checked against `model`: decodes it whole or from any sample.

    BitstreamError (one line, naming the file) for a file that is not one, is damaged, or was made by another
    model or with other tables; OSError when it cannot be opened.
    """

    def __init__(self, model: CodecModel, path: Path) -> None:
        self.model = model
        self.source = str(path)
        self._stream = open(path, "rb")  # noqa: SIM115 -- closed by close() / the context manager
        try:
            self.header = read_header(self._stream, self.source)
            _check_model(self.header, model, self.source)
        except BaseException:
            self._stream.close()
            raise
        # A pipe (`cat x.sscb | codec-decode /dev/stdin ...`) cannot seek back: its packets are read once.
        self._packets_at = self._stream.tell() if self._stream.seekable() else 0
        self._read_once = False

    def __enter__(self) -> FileReader:  # noqa: PYI034 -- typing.Self needs Python 3.11
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._stream.close()

    @property
    def seconds(self) -> float:
        return self.header.samples / self.header.sample_rate

    def audio(self, start: int = 0, length: int | None = None) -> Iterator[np.ndarray]:
        """The decoded samples [start, start + length) (to the end when `length` is None or reaches past it), in
        pieces as packets decode; ValueError unless 0 <= start < samples and length >= 1.

        From `start` > 0 it seeks: it skips the packets before the one holding the warm-up frame, `start`'s frame
        less the decoder's memory (`decoder_memory_frames`), and decodes from there from a zero state; so the
        samples equal a whole decode's (to float rounding) while only what they need is read and checked.
        Reading to the end also checks that nothing follows the last packet.
        """
        header, info = self.header, self.model.info
        if not 0 <= start < header.samples or (length is not None and length < 1):
            raise ValueError(f"samples from {start} (length {length}) are not within the file's {header.samples}")
        end = header.samples if length is None else min(header.samples, start + length)
        first_frame = start // header.frame_size
        if first_frame:
            memory = decoder_memory_frames(self.model)
            first_frame = 0 if memory is None else max(0, first_frame - memory)
        first_packet = first_frame // header.packet_frames
        if self._stream.seekable():
            self._stream.seek(self._packets_at)
        elif self._read_once:
            raise BitstreamError(f"{self.source}: a pipe is read once: its audio cannot be read again")
        self._read_once = True
        skip_packets(self._stream, header, first_packet, info.bits_per_code, self.source)
        decoder = StreamDecoder(self.model)
        position = first_frame * header.frame_size  # the sample the decoder's next output starts at
        trim = first_frame - first_packet * header.packet_frames  # the first packet's frames before the warm-up
        packets = packet_codes(self.model, self._stream, header, self.source, first_packet)
        for index, codes in enumerate(packets, start=first_packet):
            try:
                audio = decoder.decode_codes(codes[:, trim:])
            except ValueError as error:
                raise BitstreamError(f"{self.source}: packet {index}: {error}") from None
            trim = 0
            piece = audio[max(0, start - position) : max(0, end - position)]
            position += audio.shape[0]
            if piece.size:
                yield piece
            if position >= end and end < header.samples:
                return


def read_checked(model: CodecModel, stream: BinaryIO, source: str,
                 for_remote: bool = False) -> tuple[FileHeader, Iterator[np.ndarray]]:
    """A file's header, checked against `model`, and its packets' codes [codebooks, frames] in order.

    BitstreamError (one line, starting with `source`) as for `decode_file`, the packets' errors as they are read;
    `for_remote`: the messages go to someone on another machine (the page's upload), so they name the model but
    not its folder or files on this one.
    """
    header = read_header(stream, source)
    _check_model(header, model, source, for_remote)
    return header, packet_codes(model, stream, header, source)


def packet_codes(model: CodecModel, stream: BinaryIO, header: FileHeader, source: str,
                 first: int = 0) -> Iterator[np.ndarray]:
    """The codes [codebooks, frames] of the packets from `first` on, the stream at that packet's record."""
    unpacker = StreamDecoder(model)
    for packet in read_packets(stream, header, model.info.bits_per_code, source, first):
        try:
            yield unpacker.unpack(packet)
        except ValueError as error:
            raise BitstreamError(f"{source}: packet {packet.sequence}: {error}") from None


def decoder_memory_frames(model: CodecModel) -> int | None:
    """Frames of codes after which a decoder started from a zero state gives (within SEEK_TOLERANCE) the samples
    of one that has decoded everything before: the warm-up a seek needs. None if that takes more than
    MAX_DECODER_MEMORY frames (a seek then decodes from the start).

    Measured on the model itself, once per model: random codes decoded whole and from frame MAX_DECODER_MEMORY
    on, and the last frame where the two differ. The decoder is convolutional, so past its receptive field the
    zero start leaves no trace (README, "Bitstream": 9 frames for the bundled model and `tiny`, 18 for `base`).
    """
    key = model.fingerprint
    if key not in _MEMORY:
        info, span = model.info, MAX_DECODER_MEMORY
        codes = np.random.default_rng(0).integers(0, info.codebook_size, (info.n_codebooks, 2 * span))
        whole = StreamDecoder(model).decode_codes(codes)[span * info.frame_size :]
        late = StreamDecoder(model).decode_codes(codes[:, span:])
        differs = np.flatnonzero(np.abs(whole - late).reshape(span, info.frame_size).max(axis=1) > SEEK_TOLERANCE)
        memory = int(differs[-1]) + 1 if differs.size else 0
        _MEMORY[key] = None if memory >= span else memory
    return _MEMORY[key]


_MEMORY: dict[bytes, int | None] = {}


def _check_model(header: FileHeader, model: CodecModel, source: str, for_remote: bool = False) -> None:
    """The file must be decoded by the model (and, entropy-coded, the tables) that encoded it; `for_remote` as
    for `read_checked`."""
    info = model.info
    if header.model_fingerprint != model.fingerprint:
        if for_remote:
            ours, remedy = f"this server's model is '{model.name}'", "serve the model that encoded it"
        else:
            # Found from outside: "by model 'm1' ..., but m1 is model 'm1'" for two models of one folder name.
            ours = (f"{model.directory} holds another model of that name" if header.model_name == model.name
                    else f"{model.directory} is model '{model.name}'")
            remedy = "decode with --model set to the model that encoded it"
        raise BitstreamError(
            f"{source}: encoded by model '{header.model_name}' ({header.model_fingerprint.hex()}), but "
            f"{ours} ({model.fingerprint.hex()}); {remedy}"
        )
    # Same graphs imply the same rate, frame and codebooks, unless the header lies: check anyway.
    if (header.sample_rate, header.frame_size) != (info.sample_rate, info.frame_size) or (
            header.codebooks > info.n_codebooks):
        raise BitstreamError(f"{source}: header ({header.sample_rate} Hz, {header.frame_size}-sample frames, "
                             f"{header.codebooks} {plural(header.codebooks, 'codebook')}) does not fit model '{model.name}'")
    if header.mode is not CodingMode.RAW and header.tables_fingerprint != coder_fingerprint(model, header.mode):
        what, path = (("tables", model.tables_path) if header.mode is CodingMode.ENTROPY
                      else ("context model", model.context_path))
        holder = f"model '{model.name}'" if for_remote else path
        # Found from outside: the message gave no way out. Same model, other tables: a re-run of
        # codec-export --tables-only (or another copy of the export) replaced the ones this file needs.
        remedy = ("serve the export that encoded it" if for_remote else
                  f"decode with --model set to the export that encoded it (the same model with the {what} it had)")
        raise BitstreamError(f"{source}: {header.mode.name.lower()}-coded with {what} "
                             f"{header.tables_fingerprint.hex()}, but {holder} holds {what} "
                             f"{coder_fingerprint(model, header.mode).hex()}; {remedy}")


def coder_fingerprint(model: CodecModel, mode: CodingMode) -> bytes:
    """What a file header names its coder by: the tables' or the context model's fingerprint; NO_TABLES if raw.
    ModelError when the model lacks them."""
    if mode is CodingMode.ENTROPY:
        return model.tables_fingerprint
    return model.context_fingerprint if mode is CodingMode.CONTEXT else NO_TABLES
