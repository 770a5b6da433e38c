"""The call's messages: round trips, and every byte string either parses or is refused with its reason."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sscodec.stream.call_wire import (
    MAX_MESSAGE_BYTES,
    End,
    EndAck,
    Kind,
    Probe,
    WireError,
    end_ack_message,
    end_message,
    media_message,
    parse_message,
    probe_message,
)
from sscodec.stream.packet import CodingMode, Packet
from sscodec.stream.signalling import Hello

FINGERPRINT = bytes(range(8))


def test_round_trips() -> None:
    packet = Packet(7, 4, 1, CodingMode.RAW, bytes(5))
    assert parse_message(media_message(FINGERPRINT, packet), FINGERPRINT) == packet
    assert parse_message(probe_message(Kind.PING, 3, 12.5), FINGERPRINT) == Probe(Kind.PING, 3, 12.5)
    assert parse_message(probe_message(Kind.PONG, 2**32 + 3, 1.0), FINGERPRINT) == Probe(Kind.PONG, 3, 1.0)
    assert parse_message(end_message(99, 31_999), FINGERPRINT) == End(99, 31_999)
    assert parse_message(end_ack_message(), FINGERPRINT) == EndAck()


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "malformed"),
        (bytes(MAX_MESSAGE_BYTES + 1), "oversized"),
        (bytes([0x21]) + FINGERPRINT + bytes(9), "malformed"),  # wire version 2
        (bytes([0x1F]), "malformed"),  # unknown kind
        (bytes([0x11]) + bytes(8) + bytes(9), "wrong_model"),
        (bytes([0x11]) + FINGERPRINT[:5], "malformed"),
        (bytes([0x11]) + FINGERPRINT + bytes(3), "malformed"),  # shorter than a packet header
        (bytes([0x11]) + FINGERPRINT + bytes([0, 0, 0, 0, 9, 4, 1, 0]), "malformed"),  # coding mode 9
        (bytes([0x12]) + bytes(11), "malformed"),
        (bytes([0x14]) + bytes(13), "malformed"),
        (bytes([0x15, 0]), "malformed"),
        ("text", "malformed"),
    ],
)
def test_refusals_name_their_reason(data: bytes, reason: str) -> None:
    with pytest.raises(WireError) as caught:
        parse_message(data, FINGERPRINT)
    assert caught.value.reason == reason and "\n" not in str(caught.value)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=MAX_MESSAGE_BYTES + 50))
def test_any_bytes_parse_or_are_refused(data: bytes) -> None:
    try:
        parse_message(data, FINGERPRINT)
    except WireError as error:
        assert error.reason in ("malformed", "oversized", "wrong_model")


def test_hello_checks_types_and_ranges() -> None:
    good = {
        "model": "m",
        "fingerprint": "00" * 8,
        "sample_rate": 16000,
        "frame_size": 320,
        "codebooks": 12,
        "chunk_frames": 1,
    }
    assert Hello.from_dict(good).to_dict() == good
    for bad in (
        {**good, "fingerprint": "zz" * 8},
        {**good, "fingerprint": "00" * 7},
        {**good, "codebooks": 0},
        {**good, "chunk_frames": 11},
        {**good, "sample_rate": True},
        {**good, "model": 3},
        {k: v for k, v in good.items() if k != "frame_size"},
        [],
        None,
    ):
        with pytest.raises((TypeError, ValueError)):
            Hello.from_dict(bad)
