"""codec-encode / codec-decode as users run them, the file format's checks, and a fuzzer on hostile files."""

from __future__ import annotations

import functools
import io
import shutil
import struct
import subprocess
import sys
import tempfile
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pytest
import soundfile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_stream_model import copy_model, export_tiny_model

from sscodec.common.audio import read_audio
from sscodec.common.bundled import EXAMPLE_CLIP
from sscodec.common.errors import StreamError
from sscodec.export.tables import write_tables
from sscodec.stream.bitstream import MAGIC, FileHeader, read_header, read_packets
from sscodec.stream.decoder import StreamDecoder
from sscodec.stream.encoder import StreamEncoder
from sscodec.stream.file_codec import decode_file, encode_file
from sscodec.stream.model import CodecModel
from sscodec.stream.packet import CodingMode

BIN = Path(sys.executable).parent
FRAME = 320


@functools.lru_cache(maxsize=1)
def tiny_with_tables() -> Path:
    """The tiny test model with entropy tables counted on the bundled example clip."""
    folder = Path(tempfile.mkdtemp(prefix="bitstream-tiny-"))
    model = copy_model(export_tiny_model(), folder / "tiny")
    write_tables(model, [EXAMPLE_CLIP])
    return model


@pytest.fixture(scope="module")
def model_dir() -> Path:
    return tiny_with_tables()


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2.3 s of the example as 22.05 kHz stereo: resampled, mixed down, not a whole number of frames."""
    audio, rate = soundfile.read(EXAMPLE_CLIP, dtype="float32")
    path = tmp_path_factory.mktemp("clip") / "talk.wav"
    piece = audio[rate : rate + int(2.3 * 22050) + 7]
    soundfile.write(path, np.stack([piece, 0.5 * piece], axis=1), 22050)
    return path


def run(command: str, *args: object) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / command), *map(str, args)], capture_output=True, text=True, timeout=240,
                          check=False)


@pytest.mark.parametrize(("flags", "codebooks"), [([], 12), (["--raw"], 12), (["--codebooks", "4"], 4),
                                                  (["--bitrate", "2.4", "--packet-frames", "3"], 4)])
def test_decode_of_encode_equals_codec_stream(model_dir: Path, clip: Path, tmp_path: Path, flags: list[str],
                                              codebooks: int) -> None:
    done = run("codec-encode", clip, tmp_path / "talk.sscb", "--model", model_dir, *flags)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    mode = "raw" if "--raw" in flags else "entropy"
    assert f"{codebooks} codebooks, {mode}" in done.stdout
    done = run("codec-decode", tmp_path / "talk.sscb", tmp_path / "decoded.wav", "--model", model_dir)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    done = run("codec-stream", "--input", clip, "--output", tmp_path / "streamed.wav", "--model", model_dir,
               "--codebooks", codebooks)
    assert done.returncode == 0, done.stderr
    decoded, rate = soundfile.read(tmp_path / "decoded.wav", dtype="float32")
    streamed, _ = soundfile.read(tmp_path / "streamed.wav", dtype="float32")
    assert rate == 16000 and decoded.shape == streamed.shape == read_audio(clip, 16000).shape
    np.testing.assert_allclose(decoded, streamed, atol=1e-4, rtol=0)


@pytest.mark.parametrize("mode", list(CodingMode))
def test_decoded_codes_are_the_encoders_codes(model_dir: Path, tmp_path: Path, mode: CodingMode) -> None:
    model = CodecModel(model_dir)
    audio = soundfile.read(EXAMPLE_CLIP, dtype="float32")[0][: 77 * FRAME + 5]
    summary = encode_file(model, audio, tmp_path / "f.sscb", 12, mode, packet_frames=10)
    assert summary.frames == [10] * 7 + [8]
    padded = np.zeros(78 * FRAME, np.float32)
    padded[: audio.size] = audio
    expected = StreamEncoder(model, 12).encode_codes(padded)
    with open(tmp_path / "f.sscb", "rb") as stream:
        header = read_header(stream, "f")
        assert (header.mode, header.samples, header.codebooks, header.packet_frames) == (mode, audio.size, 12, 10)
        decoder = StreamDecoder(model)
        codes = np.concatenate([decoder.unpack(p) for p in read_packets(stream, header, "f")], axis=1)
    np.testing.assert_array_equal(codes, expected)
    assert decode_file(model, tmp_path / "f.sscb").shape == audio.shape


def test_wrong_model_is_refused_with_both_names(model_dir: Path, clip: Path, tmp_path: Path) -> None:
    assert run("codec-encode", clip, tmp_path / "t.sscb", "--model", model_dir).returncode == 0
    done = run("codec-decode", tmp_path / "t.sscb", tmp_path / "o.wav")  # the bundled default model
    assert done.returncode == 1 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "encoded by model 'tiny'" in done.stderr and "is model 'default'" in done.stderr
    assert not (tmp_path / "o.wav").exists()


def test_other_tables_and_missing_tables(model_dir: Path, clip: Path, tmp_path: Path) -> None:
    assert run("codec-encode", clip, tmp_path / "t.sscb", "--model", model_dir).returncode == 0
    other = copy_model(model_dir, tmp_path / "other")
    write_tables(other, [clip])
    done = run("codec-decode", tmp_path / "t.sscb", tmp_path / "o.wav", "--model", other)
    assert done.returncode == 1 and "entropy-coded with tables" in done.stderr and "holds tables" in done.stderr
    bare = copy_model(model_dir, tmp_path / "bare")
    done = run("codec-decode", tmp_path / "t.sscb", tmp_path / "o.wav", "--model", bare)
    assert done.returncode == 1 and "entropy_tables.npz: missing" in done.stderr
    done = run("codec-encode", clip, tmp_path / "r.sscb", "--model", bare)
    assert done.returncode == 0 and done.stderr.strip() == (
        f"codec-encode: note: {bare / 'entropy_tables.npz'} not found: writing raw 10-bit codes")
    assert ", raw," in done.stdout
    assert run("codec-decode", tmp_path / "r.sscb", tmp_path / "r.wav", "--model", bare).returncode == 0


@pytest.mark.parametrize(
    ("command", "args", "code", "message"),
    [
        ("codec-encode", ["{tmp}/missing.wav", "{tmp}/o.sscb"], 2, "does not exist"),
        ("codec-encode", ["{tmp}", "{tmp}/o.sscb"], 2, "is a directory"),
        ("codec-encode", ["{clip}", "{tmp}"], 2, "is a directory"),
        ("codec-encode", ["{clip}", "{tmp}/no/dir/o.sscb"], 1, "No such file or directory"),
        ("codec-encode", ["{garbage}", "{tmp}/o.sscb"], 1, "cannot decode audio"),
        ("codec-encode", ["{clip}", "{tmp}/o.sscb", "--codebooks", "2", "--bitrate", "1"], 2, "not both"),
        ("codec-encode", ["{clip}", "{tmp}/o.sscb", "--codebooks", "13"], 2, "codebooks must be in 1..12"),
        ("codec-encode", ["{clip}", "{tmp}/o.sscb", "--bitrate", "0.2"], 2, "below one codebook"),
        ("codec-encode", ["{clip}", "{tmp}/o.sscb", "--packet-frames", "0"], 2, "--packet-frames"),
        ("codec-encode", ["{clip}", "{tmp}/o.sscb", "--model", "{tmp}/none"], 2, "does not exist"),
        ("codec-encode", ["{clip}"], 2, "Missing argument 'OUTPUT'"),
        ("codec-decode", ["{tmp}/missing.sscb", "{tmp}/o.wav"], 2, "does not exist"),
        ("codec-decode", ["{garbage}", "{tmp}/o.wav"], 1, "not a codec-encode file"),
        ("codec-decode", ["{tmp}/empty.sscb", "{tmp}/o.wav"], 1, "not a codec-encode file"),
        ("codec-decode", ["{tmp}/future.sscb", "{tmp}/o.wav"], 1, "format version 9"),
        ("codec-decode", ["{tmp}/empty.sscb", "{tmp}/o.wav", "--bogus"], 2, "No such option"),
    ],
)
def test_user_mistakes_are_one_line_errors(command: str, args: list[str], code: int, message: str,
                                           model_dir: Path, clip: Path, tmp_path: Path) -> None:
    (tmp_path / "garbage.wav").write_bytes(b"RIFF nothing like audio")
    (tmp_path / "empty.sscb").write_bytes(b"")
    (tmp_path / "future.sscb").write_bytes(MAGIC + bytes([9]) + bytes(60))
    names = {"tmp": tmp_path, "clip": clip, "garbage": tmp_path / "garbage.wav"}
    args = [arg.format(**names) for arg in args]
    if "--model" not in args:
        args += ["--model", str(model_dir)]
    done = run(command, *args)
    assert done.returncode == code, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and done.stderr.startswith(f"{command}: error: ")
    assert message in done.stderr and "Traceback" not in done.stderr


@functools.lru_cache(maxsize=1)
def valid_files() -> tuple[bytes, ...]:
    """Short valid files of the tiny model: entropy-coded and raw, 12 and 3 codebooks, 2- and 3-frame packets."""
    model = CodecModel(tiny_with_tables())
    audio = soundfile.read(EXAMPLE_CLIP, dtype="float32")[0][16000 : 16000 + 9 * FRAME + 100]
    files = []
    with tempfile.TemporaryDirectory() as folder:
        for index, (mode, codebooks, packet_frames) in enumerate(
                [(CodingMode.ENTROPY, 12, 3), (CodingMode.RAW, 12, 2), (CodingMode.ENTROPY, 3, 2)]):
            path = Path(folder) / f"{index}.sscb"
            encode_file(model, audio, path, codebooks, mode, packet_frames)
            files.append(path.read_bytes())
    return tuple(files)


@functools.lru_cache(maxsize=1)
def fuzz_model() -> CodecModel:
    return CodecModel(tiny_with_tables())


def _outcome(data: bytes, tmp: Path) -> None:
    """Decoding must give finite audio or raise one StreamError line; any other exception fails the test."""
    path = tmp / "case.sscb"
    path.write_bytes(data)
    try:
        audio = decode_file(fuzz_model(), path)
    except StreamError as error:
        assert "\n" not in str(error) and str(error).startswith(str(path))
        return
    assert audio.dtype == np.float32 and audio.ndim == 1 and audio.size >= 1 and np.isfinite(audio).all()


_mutation = st.tuples(st.integers(0, 10**6), st.integers(0, 255))


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    first=st.integers(0, 2), second=st.integers(0, 2), operation=st.sampled_from(["mutate", "truncate", "splice"]),
    cut=st.integers(0, 10**6), other_cut=st.integers(0, 10**6), patches=st.lists(_mutation, min_size=1, max_size=4),
    fix_header=st.booleans(),
)
def test_hostile_files_give_audio_or_one_line(first: int, second: int, operation: str, cut: int, other_cut: int,
                                              patches: list[tuple[int, int]], fix_header: bool) -> None:
    files = valid_files()
    data = bytearray(files[first])
    if operation == "truncate":
        data = data[: cut % len(data)]
    elif operation == "splice":  # the start of one file, then the rest of another from an arbitrary point
        data = data[: cut % len(data)] + files[second][other_cut % len(files[second]) :]
    else:
        for position, value in patches:
            data[position % len(data)] = value
    if fix_header and len(data) >= 48:
        # Re-seal a mutated header so the checks behind the checksum see the lie, as a crafted file would show it.
        name_length = data[7]
        end = 44 + name_length
        if len(data) >= end + 4:
            data[end : end + 4] = struct.pack("<I", zlib.crc32(bytes(data[:end])))
    with tempfile.TemporaryDirectory() as folder:
        _outcome(bytes(data), Path(folder))


def test_a_header_that_lies_about_lengths_allocates_nothing_large(tmp_path: Path) -> None:
    model = fuzz_model()
    header = FileHeader(CodingMode.ENTROPY, 12, 16000, FRAME, 3000, 2**62, model.fingerprint,
                        model.tables_fingerprint, "tiny")
    lies = {
        "huge record": struct.pack("<II", 2**32 - 1, 0),
        "record longer than the file": struct.pack("<II", 400, 0) + bytes(10),
        "payload too short for its frames": _record(struct.pack("<IBBH", 0, 1, 12, 3000) + bytes(4)),
    }
    for name, body in lies.items():
        path = tmp_path / "lie.sscb"
        path.write_bytes(header.to_bytes() + body)
        tracemalloc.start()
        with pytest.raises(StreamError) as caught:
            decode_file(model, path)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert peak < 2_000_000, (name, peak)
        assert "\n" not in str(caught.value), name


def _record(packet: bytes) -> bytes:
    return struct.pack("<II", len(packet), zlib.crc32(packet)) + packet


def test_header_round_trip_and_checksum() -> None:
    header = FileHeader(CodingMode.RAW, 7, 16000, FRAME, 50, 12345, b"\x01" * 8, bytes(8), "ü" * 200)
    data = header.to_bytes()
    parsed = read_header(io.BytesIO(data), "x")
    assert parsed.samples == 12345 and parsed.codebooks == 7 and len(parsed.model_name.encode()) <= 255
    damaged = bytearray(data)
    damaged[20] ^= 1
    with pytest.raises(StreamError, match="header checksum mismatch"):
        read_header(io.BytesIO(bytes(damaged)), "x")


def test_installed_scripts_exist() -> None:
    for name in ("codec-encode", "codec-decode"):
        assert (BIN / name).exists() or shutil.which(name), name
