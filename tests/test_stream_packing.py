"""Bit-packing of codes: every value round-trips, sizes are exact, malformed payloads are refused."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sscodec.stream.packing import pack_codes, packed_size, unpack_codes

BITS = 10


def test_every_code_value_round_trips() -> None:
    codes = np.arange(1024).reshape(8, 128)  # each value 0..1023 once
    payload = pack_codes(codes, BITS)
    assert len(payload) == packed_size(8, 128, BITS) == 8 * 128 * 10 // 8
    np.testing.assert_array_equal(unpack_codes(payload, 8, 128, BITS), codes)


@pytest.mark.parametrize("q", range(1, 13))
@pytest.mark.parametrize("k", [1, 4])
def test_size_is_ten_bits_per_code_rounded_up_to_a_byte(q: int, k: int) -> None:
    codes = np.random.default_rng(q * k).integers(0, 1024, (q, k))
    payload = pack_codes(codes, BITS)
    assert len(payload) == -(-q * k * 10 // 8)
    np.testing.assert_array_equal(unpack_codes(payload, q, k, BITS), codes)


def test_frames_are_packed_one_after_the_other() -> None:
    # Frame-major: the first frame's Q codes come first, so a chunk is its frames' bits concatenated.
    codes = np.array([[1, 3], [2, 4]])
    bits = "".join(f"{v:010b}" for v in (1, 2, 3, 4))
    assert pack_codes(codes, BITS) == int(bits, 2).to_bytes(5, "big")


@pytest.mark.parametrize(
    ("payload", "message"),
    [(b"", "need exactly 15"), (b"\x00" * 14, "need exactly 15"), (b"\x00" * 16, "need exactly 15")],
)
def test_wrong_length_is_refused(payload: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        unpack_codes(payload, 12, 1, BITS)


def test_nonzero_padding_is_refused() -> None:
    with pytest.raises(ValueError, match="padding"):
        unpack_codes(b"\x00\x01", 1, 1, BITS)  # 10 code bits + 6 padding bits, the last one set


def test_out_of_range_codes_cannot_be_packed() -> None:
    with pytest.raises(ValueError, match="0..1023"):
        pack_codes(np.array([[1024]]), BITS)
    with pytest.raises(ValueError, match="0..1023"):
        pack_codes(np.array([[-1]]), BITS)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64), st.integers(1, 12), st.integers(1, 6))
def test_unpack_arbitrary_bytes_gives_valid_codes_or_value_error(payload: bytes, q: int, k: int) -> None:
    try:
        codes = unpack_codes(payload, q, k, BITS)
    except ValueError:
        return
    assert codes.shape == (q, k) and codes.dtype == np.int64
    assert codes.min() >= 0 and codes.max() <= 1023
    assert pack_codes(codes, BITS) == payload


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 12), st.integers(1, 8), st.integers(0, 2**32 - 1))
def test_pack_unpack_round_trip(q: int, k: int, seed: int) -> None:
    codes = np.random.default_rng(seed).integers(0, 1024, (q, k))
    np.testing.assert_array_equal(unpack_codes(pack_codes(codes, BITS), q, k, BITS), codes)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 24), st.integers(1, 12), st.integers(1, 20), st.integers(0, 2**32 - 1))
def test_any_code_width_packs_as_its_bits_written_out_frame_by_frame(bits: int, q: int, k: int, seed: int) -> None:
    codes = np.random.default_rng(seed).integers(0, 1 << bits, (q, k), dtype=np.uint32)
    written = "".join(f"{v:0{bits}b}" for v in codes.T.ravel())
    written += "0" * (-len(written) % 8)
    payload = pack_codes(codes, bits)
    assert payload == int(written, 2).to_bytes(len(written) // 8, "big")
    unpacked = unpack_codes(payload, q, k, bits)
    assert unpacked.dtype == np.int64 and unpacked.flags.c_contiguous
    np.testing.assert_array_equal(unpacked, codes)


@pytest.mark.parametrize("codes", [np.array([[1.0]]), np.array([[True]]), np.array([1, 2])])
def test_codes_that_are_not_an_integer_matrix_cannot_be_packed(codes: np.ndarray) -> None:
    with pytest.raises(ValueError, match="integer array"):
        pack_codes(codes, BITS)
