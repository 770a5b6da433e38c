"""The wire: Packet bytes, StreamEncoder → packets → StreamDecoder, and the range coder on its own."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_stream_model import tiny_model  # noqa: F401 -- the fixture

from sscodec.common.entropy_tables import estimate_counts
from sscodec.stream.decoder import StreamDecoder
from sscodec.stream.encoder import StreamEncoder
from sscodec.stream.engine import StreamEngine
from sscodec.stream.entropy import EntropyCoder
from sscodec.stream.file_mode import stream_audio
from sscodec.stream.model import CodecModel
from sscodec.stream.packet import PACKET_HEADER_SIZE, CodingMode, Packet

FRAME = 320


@settings(max_examples=200, deadline=None)
@given(sequence=st.integers(0, 2**32 - 1), codebooks=st.integers(1, 255), frames=st.integers(1, 65535),
       mode=st.sampled_from(list(CodingMode)), payload=st.binary(max_size=64))
def test_packet_bytes_round_trip(sequence: int, codebooks: int, frames: int, mode: CodingMode,
                                 payload: bytes) -> None:
    packet = Packet(sequence, codebooks, frames, mode, payload)
    data = packet.to_bytes()
    assert len(data) == PACKET_HEADER_SIZE + len(payload)
    assert Packet.from_bytes(data) == packet


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=40))
def test_any_bytes_are_a_packet_or_a_value_error(data: bytes) -> None:
    try:
        packet = Packet.from_bytes(data)
    except ValueError as error:
        assert "\n" not in str(error)
    else:
        assert packet.to_bytes() == data


def test_packet_fields_are_checked() -> None:
    for args in ((-1, 1, 1), (2**32, 1, 1), (0, 0, 1), (0, 256, 1), (0, 1, 0), (0, 1, 65536)):
        with pytest.raises(ValueError):
            Packet(*args, CodingMode.RAW, b"")
    with pytest.raises(ValueError, match="unknown coding mode 7"):
        Packet.from_bytes(bytes([0, 0, 0, 0, 7, 1, 1, 0]))
    with pytest.raises(ValueError, match="shorter than its 8-byte header"):
        Packet.from_bytes(b"\x00" * 7)


def test_sender_and_receiver_are_separate_objects(tiny_model: Path) -> None:  # noqa: F811
    """Packets from one object decode in another exactly as the loopback engine decodes them."""
    audio = np.random.default_rng(3).uniform(-0.5, 0.5, 9 * FRAME).astype(np.float32)
    reference = stream_audio(StreamEngine(tiny_model, codebooks=5, chunk_frames=3), audio).audio
    sender = StreamEncoder(CodecModel(tiny_model), codebooks=5)
    packets = [sender.encode(audio[i : i + 3 * FRAME]) for i in range(0, audio.size, 3 * FRAME)]
    assert [(p.sequence, p.codebooks, p.frames, p.mode) for p in packets] == [
        (i, 5, 3, CodingMode.RAW) for i in range(3)]
    assert all(len(p.payload) == 5 * 3 * 10 // 8 + 1 for p in packets)  # 150 bits in 19 bytes
    receiver = StreamDecoder(CodecModel(tiny_model))
    decoded = np.concatenate([receiver.decode(Packet.from_bytes(p.to_bytes())) for p in packets])
    np.testing.assert_array_equal(decoded, reference)
    sender.reset()
    assert sender.encode(audio[:FRAME]).sequence == 0


def test_receiver_refuses_packets_it_cannot_hold(tiny_model: Path) -> None:  # noqa: F811
    receiver = StreamDecoder(CodecModel(tiny_model))
    with pytest.raises(ValueError, match="13 codebooks; this model has 1..12"):
        receiver.decode(Packet(0, 13, 1, CodingMode.RAW, bytes(17)))
    with pytest.raises(ValueError, match="need exactly 2"):
        receiver.decode(Packet(0, 1, 1, CodingMode.RAW, bytes(3)))


def _skewed_codes(rng: np.random.Generator, codebooks: int, frames: int) -> np.ndarray:
    """Codes drawn from a different peaked distribution per codebook, as a trained quantizer's are."""
    probabilities = rng.dirichlet(np.full(1024, 0.2), size=codebooks)
    return np.stack([rng.choice(1024, frames, p=p) for p in probabilities])


def test_range_coder_is_bit_exact_and_compresses() -> None:
    rng = np.random.default_rng(0)
    training = _skewed_codes(np.random.default_rng(1), 12, 5000)
    coder = EntropyCoder(estimate_counts([training], 12, 1024))
    for codebooks, frames in ((12, 50), (12, 1), (3, 7)):
        codes = training[:codebooks, rng.integers(0, 5000, frames)]
        payload = coder.encode(codes)
        np.testing.assert_array_equal(coder.decode(payload, codebooks, frames), codes)
    payload = coder.encode(training[:, :50])
    assert len(payload) < 0.85 * 12 * 50 * 10 / 8  # peaked tables: well below the raw 10 bits per code


def test_codes_never_seen_are_still_codable_and_cost_more() -> None:
    seen = np.zeros((2, 100), np.int64)  # only code 0 was seen while estimating
    coder = EntropyCoder(estimate_counts([seen], 2, 1024))
    unseen = np.arange(1, 101).reshape(2, 50)
    np.testing.assert_array_equal(coder.decode(coder.encode(unseen), 2, 50), unseen)
    assert len(coder.encode(unseen)) > len(coder.encode(seen[:, :50]))


def test_cheapest_payload_passes_and_a_lying_frame_count_is_refused() -> None:
    seen = np.zeros((12, 1000), np.int64)
    coder = EntropyCoder(estimate_counts([seen], 12, 1024))
    cheapest = np.zeros((12, 500), np.int64)  # every code the most probable one
    payload = coder.encode(cheapest)
    np.testing.assert_array_equal(coder.decode(payload, 12, 500), cheapest)
    with pytest.raises(ValueError, match="too short for 60000 frames"):
        coder.decode(payload, 12, 60000)
    with pytest.raises(ValueError, match="not whole 32-bit words"):
        coder.decode(payload[:-1], 12, 500)
    with pytest.raises(ValueError, match="codebooks must be in 1..12"):
        coder.decode(payload, 13, 1)


@settings(max_examples=300, deadline=None)
@given(payload=st.binary(max_size=64).map(lambda b: b[: len(b) // 4 * 4]), codebooks=st.integers(1, 12),
       frames=st.integers(1, 20))
def test_range_decoder_on_arbitrary_words_gives_codes_or_a_value_error(payload: bytes, codebooks: int,
                                                                      frames: int) -> None:
    coder = _garbage_coder()
    try:
        codes = coder.decode(payload, codebooks, frames)
    except ValueError:
        return
    assert codes.shape == (codebooks, frames) and codes.min() >= 0 and codes.max() < 1024


@functools.lru_cache(maxsize=1)
def _garbage_coder() -> EntropyCoder:
    return EntropyCoder(estimate_counts([_skewed_codes(np.random.default_rng(2), 12, 2000)], 12, 1024))
