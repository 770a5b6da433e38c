"""codec-encode / codec-decode as users run them, the file format's checks, and a fuzzer on hostile files."""

from __future__ import annotations

import functools
import io
import os
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

from sscodec.common.audio import AudioFileError, AudioWriter, read_audio
from sscodec.common.bundled import BUNDLED_MODEL_DIR, EXAMPLE_CLIP
from sscodec.common.context_model_file import CONTEXT_FILE
from sscodec.common.entropy_tables import load_tables
from sscodec.common.errors import StreamError
from sscodec.export.context_model import write_context_model
from sscodec.export.tables import write_tables
from sscodec.stream.bitstream import MAGIC, FileHeader, read_header, read_packets
from sscodec.stream.decoder import StreamDecoder
from sscodec.stream.encoder import StreamEncoder
from sscodec.stream.file_codec import FileReader, coder_fingerprint, decode_file, encode_file
from sscodec.stream.model import CodecModel
from sscodec.stream.packet import CodingMode, Packet
from sscodec.stream.packing import pack_codes, packed_size

BIN = Path(sys.executable).parent
FRAME = 320


@functools.lru_cache(maxsize=1)
def tiny_with_tables() -> Path:
    """The tiny test model with entropy tables counted, and a context model trained, on the bundled example clip."""
    folder = Path(tempfile.mkdtemp(prefix="bitstream-tiny-"))
    model = copy_model(export_tiny_model(), folder / "tiny")
    write_tables(model, [EXAMPLE_CLIP])
    write_context_model(model, [EXAMPLE_CLIP], progress=lambda line: None)
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


@pytest.mark.parametrize(("flags", "codebooks"), [([], 12), (["--raw"], 12), (["--static-tables"], 12),
                                                  (["--codebooks", "4"], 4),
                                                  (["--bitrate", "2.4", "--packet-frames", "3"], 4),
                                                  (["--static-tables", "--codebooks", "4"], 4)])
def test_decode_of_encode_equals_codec_stream(model_dir: Path, clip: Path, tmp_path: Path, flags: list[str],
                                              codebooks: int) -> None:
    done = run("codec-encode", clip, tmp_path / "talk.sscb", "--model", model_dir, *flags)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    mode = "raw" if "--raw" in flags else "entropy" if "--static-tables" in flags else "context"
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
        codes = np.concatenate([decoder.unpack(p) for p in read_packets(stream, header, 10, "f")], axis=1)
    np.testing.assert_array_equal(codes, expected)
    assert decode_file(model, tmp_path / "f.sscb").shape == audio.shape


def test_wrong_model_is_refused_with_both_names(model_dir: Path, clip: Path, tmp_path: Path) -> None:
    assert run("codec-encode", clip, tmp_path / "t.sscb", "--model", model_dir).returncode == 0
    done = run("codec-decode", tmp_path / "t.sscb", tmp_path / "o.wav")  # the bundled default model
    assert done.returncode == 1 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "encoded by model 'tiny'" in done.stderr and "is model 'default'" in done.stderr
    assert not (tmp_path / "o.wav").exists()
    # Another model in a folder of the same name (found from outside: "by model 'm1' ..., but m1 is model 'm1'").
    namesake = tmp_path / "other" / model_dir.name
    namesake.mkdir(parents=True)
    for name in ("encoder_stream.onnx", "decoder_stream.onnx"):
        shutil.copy(BUNDLED_MODEL_DIR / name, namesake)
    done = run("codec-decode", tmp_path / "t.sscb", tmp_path / "o.wav", "--model", namesake)
    assert done.returncode == 1 and f"but {namesake} holds another model of that name (" in done.stderr, done.stderr


def test_other_tables_and_missing_tables(model_dir: Path, clip: Path, tmp_path: Path) -> None:
    assert run("codec-encode", clip, tmp_path / "t.sscb", "--model", model_dir, "--static-tables").returncode == 0
    assert run("codec-encode", clip, tmp_path / "c.sscb", "--model", model_dir).returncode == 0
    other = copy_model(model_dir, tmp_path / "other")
    write_tables(other, [clip])
    write_context_model(other, [clip], hidden=8, epochs=1, progress=lambda line: None)
    done = run("codec-decode", tmp_path / "t.sscb", tmp_path / "o.wav", "--model", other)
    assert done.returncode == 1 and "entropy-coded with tables" in done.stderr and "holds tables" in done.stderr
    assert done.stderr.rstrip().endswith("decode with --model set to the export that encoded it (the same model "
                                         "with the tables it had)"), done.stderr
    done = run("codec-decode", tmp_path / "c.sscb", tmp_path / "o.wav", "--model", other)
    assert done.returncode == 1 and "context-coded with context model" in done.stderr, done.stderr
    assert f"{other / CONTEXT_FILE} holds context model" in done.stderr
    bare = copy_model(model_dir, tmp_path / "bare")
    for coded, missing in (("t", "entropy_tables.npz"), ("c", CONTEXT_FILE)):
        done = run("codec-decode", tmp_path / f"{coded}.sscb", tmp_path / "o.wav", "--model", bare)
        assert done.returncode == 1 and f"{missing}: missing" in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1
    tables_only = copy_model(model_dir, tmp_path / "tables_only")
    shutil.copy(model_dir / "entropy_tables.npz", tables_only)
    done = run("codec-encode", clip, tmp_path / "s.sscb", "--model", tables_only)
    assert done.returncode == 0 and done.stderr.strip() == (
        f"codec-encode: note: {tables_only / CONTEXT_FILE} not found: coding with the static tables")
    assert "12 codebooks, entropy," in done.stdout
    done = run("codec-encode", clip, tmp_path / "r.sscb", "--model", bare)
    assert done.returncode == 0 and done.stderr.strip() == (
        f"codec-encode: note: {bare / 'entropy_tables.npz'} not found: writing raw 10-bit codes")
    assert ", raw," in done.stdout
    assert run("codec-decode", tmp_path / "r.sscb", tmp_path / "r.wav", "--model", bare).returncode == 0


def test_encode_summary_says_one_codebook_and_one_packet(model_dir: Path, tmp_path: Path) -> None:
    short = tmp_path / "short.wav"
    soundfile.write(short, 0.1 * np.random.default_rng(0).standard_normal(3000), 16000)
    done = run("codec-encode", short, tmp_path / "o.sscb", "--codebooks", "1", "--packet-frames", "16",
               "--model", model_dir)
    assert done.returncode == 0, done.stderr
    assert ", 1 codebook, " in done.stdout and ", 1 packet" in done.stdout, done.stdout
    assert "1 codebooks" not in done.stdout and "1 packets" not in done.stdout, done.stdout
    # The bitrate is over the frames coded: 3000 samples are 10 frames of 20 ms (found from outside: a 1-sample
    # file was "10624.00 kbps", its bytes over 1/16000 s).
    size = (tmp_path / "o.sscb").stat().st_size
    assert f"{size} bytes ({size * 8 / 0.2 / 1000:.2f} kbps)" in done.stdout, done.stdout


def test_a_receivers_folder_without_the_encoder_decodes(model_dir: Path, clip: Path, tmp_path: Path) -> None:
    # Found from outside: codec-decode opened encoder_stream.onnx too, so a receive-only device had to carry it.
    assert run("codec-encode", clip, tmp_path / "a.sscb", "--model", model_dir).returncode == 0
    receiver = tmp_path / model_dir.name
    receiver.mkdir()
    for name in ("decoder_stream.onnx", "entropy_tables.npz", CONTEXT_FILE):
        shutil.copy(model_dir / name, receiver / name)
    for folder, out in ((model_dir, "whole.wav"), (receiver, "receiver.wav")):
        done = run("codec-decode", tmp_path / "a.sscb", tmp_path / out, "--model", folder)
        assert done.returncode == 0, done.stderr
    assert np.array_equal(soundfile.read(tmp_path / "whole.wav")[0], soundfile.read(tmp_path / "receiver.wav")[0])
    sender = run("codec-encode", clip, tmp_path / "b.sscb", "--model", receiver)
    assert sender.returncode == 1 and sender.stderr.strip() == (
        f"codec-encode: error: {receiver / 'encoder_stream.onnx'}: missing (export the model with codec-export "
        f"--onnx --out {receiver})")


def test_a_model_folder_named_default_is_printed_so_that_its_hint_works(model_dir: Path, clip: Path,
                                                                         tmp_path: Path) -> None:
    # Found from outside: `--model ./default` (Path prints it "default") said "export the model with codec-export
    # --onnx --out default", which names the bundled model, not this folder.
    local = tmp_path / "default"
    local.mkdir()
    shutil.copy(model_dir / "decoder_stream.onnx", local / "decoder_stream.onnx")
    for command in ("codec-encode", "codec-stream"):
        args = [clip, "o.sscb"] if command == "codec-encode" else ["--input", clip, "--output", "o.wav"]
        done = subprocess.run([str(BIN / command), *map(str, args), "--model", "./default"], cwd=tmp_path,
                              capture_output=True, text=True, timeout=240, check=False)
        assert done.returncode == 1 and done.stderr.strip() == (
            f"{command}: error: {local / 'encoder_stream.onnx'}: missing (export the model with codec-export "
            f"--onnx --out {local})"), done.stderr


def test_a_flag_spelled_with_underscores_is_the_same_flag(model_dir: Path, clip: Path, tmp_path: Path) -> None:
    # Found from outside: codec-train spells its flags with "_", so users typed `--packet_frames` here too and got
    # "no such option".
    for name, flag in (("hyphen", "--packet-frames"), ("underscore", "--packet_frames")):
        done = run("codec-encode", clip, tmp_path / f"{name}.sscb", flag, "3", "--static-tables", "--model", model_dir)
        assert done.returncode == 0, done.stderr
    assert (tmp_path / "hyphen.sscb").read_bytes() == (tmp_path / "underscore.sscb").read_bytes()
    one_frame = run("codec-encode", clip, tmp_path / "one.sscb", "--packet_frames", "1", "--static-tables", "--model",
                    model_dir)
    assert one_frame.returncode == 0 and (tmp_path / "one.sscb").stat().st_size > (tmp_path / "hyphen.sscb").stat().st_size


@pytest.mark.parametrize(
    ("command", "args", "code", "message"),
    [
        ("codec-encode", ["{tmp}/missing.wav", "{tmp}/o.sscb"], 2, "does not exist"),
        ("codec-encode", ["{tmp}", "{tmp}/o.sscb"], 2, "is a directory"),
        ("codec-encode", ["{clip}", "{tmp}"], 2, "is a directory"),
        ("codec-encode", ["{clip}", "{tmp}/no/dir/o.sscb"], 1, "No such file or directory"),
        ("codec-encode", ["{garbage}", "{tmp}/o.sscb"], 1, "cannot decode audio"),
        ("codec-encode", ["{clip}", "{tmp}/o.sscb", "--codebooks", "2", "--bitrate", "1"], 2, "not both"),
        ("codec-encode", ["{clip}", "{tmp}/o.sscb", "--raw", "--static-tables"], 2, "give --raw or --static-tables, not both"),
        ("codec-encode", ["{clip}", "{tmp}/o.sscb", "--codebooks", "13"], 2, "codebooks must be in 1..12"),
        ("codec-encode", ["{clip}", "{tmp}/o.sscb", "--bitrate", "0.2"], 2, "below one codebook"),
        ("codec-encode", ["{clip}", "{tmp}/o.sscb", "--bitrate", "inf"], 2, "inf is not a finite number in the range x>0"),
        ("codec-encode", ["{clip}", "{tmp}/o.sscb", "--bitrate", "1e400"], 2, "is not a finite number in the range x>0"),
        ("codec-encode", ["{clip}", "{tmp}/o.sscb", "--bitrate", "nan"], 2, "nan is not a finite number in the range x>0"),
        ("codec-encode", ["{clip}", "{tmp}/o.sscb", "--packet-frames", "0"], 2, "--packet-frames"),
        ("codec-encode", ["{clip}", "{tmp}/o.sscb", "--model", "{tmp}/none"], 2, "does not exist"),
        ("codec-encode", ["{clip}"], 2, "Missing argument 'OUTPUT'"),
        # Found from outside: a bitstream was written under an audio file's name, which no player then opened.
        ("codec-encode", ["{clip}", "{tmp}/o.wav"], 2,
         "/o.wav is named as audio (.wav): codec-encode writes a codec bitstream, e.g. to "),
        ("codec-encode", ["{clip}", "{tmp}/o.FLAC"], 2, "/o.FLAC is named as audio (.FLAC)"),
        ("codec-encode", ["{clip}", "{tmp}/o.opus"], 2, "/o.opus is named as audio (.opus)"),
        ("codec-decode", ["{tmp}/missing.sscb", "{tmp}/o.wav"], 2, "does not exist"),
        ("codec-decode", ["{garbage}", "{tmp}/o.wav"], 1, "not a codec-encode file"),
        ("codec-decode", ["{tmp}/empty.sscb", "{tmp}/o.wav"], 1, "not a codec-encode file"),
        ("codec-decode", ["{tmp}/future.sscb", "{tmp}/o.wav"], 1, "format version 9"),
        ("codec-decode", ["{tmp}/empty.sscb", "{tmp}/o.wav", "--bogus"], 2, "No such option"),
        # Found from outside: both named the hidden temp file's extension, '.tmp'; and both exited 1 where
        # codec-encode's mirror mistake (an OUTPUT named as audio) exits 2: a name is a usage mistake.
        ("codec-decode", ["{tmp}/empty.sscb", "{tmp}/noext"], 2,
         "noext: cannot write audio (the name has no extension to choose the format by"),
        ("codec-decode", ["{tmp}/empty.sscb", "{tmp}/o.txt"], 2, "no audio file format has the extension '.txt'"),
        ("codec-decode", ["{tmp}/empty.sscb", "{tmp}/o.sscb"], 2, "Invalid value for OUTPUT: "),
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


def test_a_file_cut_between_packets_names_the_first_missing_one(tmp_path: Path) -> None:
    data = valid_files()[1]  # raw, 2-frame packets
    stream = io.BytesIO(data)
    header = read_header(stream, "x")
    packets = read_packets(stream, header, fuzz_model().info.bits_per_code, "x")
    next(packets), next(packets), next(packets)
    cut = tmp_path / "cut.sscb"
    cut.write_bytes(data[: stream.tell()])  # packets 0, 1 and 2 whole, nothing of packet 3
    with pytest.raises(StreamError) as error:
        decode_file(fuzz_model(), cut)
    assert str(error.value) == f"{cut}: truncated before packet 3 (6 of {header.frames} frames)"


def test_a_huge_bitrate_sends_every_codebook(model_dir: Path, clip: Path, tmp_path: Path) -> None:
    done = run("codec-encode", clip, tmp_path / "o.sscb", "--bitrate", "1e308", "--model", model_dir)
    # Found from outside: codec-stream said it sent fewer kbps than asked, codec-encode said nothing.
    assert done.returncode == 0 and done.stderr.strip() == (
        "codec-encode: note: --bitrate 1e+308 kbps is above this model's highest, 6 kbps (all 12 codebooks): "
        "coding that"), done.stderr
    assert "12 codebooks" in done.stdout


@functools.lru_cache(maxsize=1)
def valid_files() -> tuple[bytes, ...]:
    """Short valid files of the tiny model: entropy-coded, context-coded and raw, 12 and 3 codebooks, 2- and
    3-frame packets, and entropy- and context-coded files of speech then noise, whose noise packets went raw."""
    model = CodecModel(tiny_with_tables())
    audio = soundfile.read(EXAMPLE_CLIP, dtype="float32")[0][16000 : 16000 + 13 * FRAME + 100]
    mixed = np.concatenate([audio[: 8 * FRAME], _noise(7 * FRAME)])
    files = []
    with tempfile.TemporaryDirectory() as folder:
        for index, (signal, mode, codebooks, packet_frames) in enumerate(
                [(audio, CodingMode.ENTROPY, 12, 3), (audio, CodingMode.RAW, 12, 2),
                 (audio, CodingMode.ENTROPY, 3, 2), (mixed, CodingMode.ENTROPY, 12, 3),
                 (audio, CodingMode.CONTEXT, 12, 3), (audio, CodingMode.CONTEXT, 3, 2),
                 (mixed, CodingMode.CONTEXT, 12, 3)]):
            path = Path(folder) / f"{index}.sscb"
            summary = encode_file(model, signal, path, codebooks, mode, packet_frames)
            files.append(path.read_bytes())
            if signal is mixed:
                assert set(summary.modes) == {mode, CodingMode.RAW}, summary.modes
    return tuple(files)


def _noise(samples: int, seed: int = 0) -> np.ndarray:
    """Loud white noise: codes that tables counted on speech find unlikely."""
    return np.random.default_rng(seed).uniform(-0.9, 0.9, samples).astype(np.float32)


@functools.lru_cache(maxsize=1)
def fuzz_model() -> CodecModel:
    return CodecModel(tiny_with_tables())


def _outcome(data: bytes, tmp: Path) -> None:
    """Decoding, whole and from frame 13 (a seek that skips the first packets), must give finite audio or raise
    one StreamError line; any other exception fails the test."""
    path = tmp / "case.sscb"
    path.write_bytes(data)
    for start in (0, 13 * FRAME + 3):
        try:
            with FileReader(fuzz_model(), path) as reader:
                if start >= reader.header.samples:
                    continue
                audio = np.concatenate(list(reader.audio(start)))
        except StreamError as error:
            assert "\n" not in str(error) and str(error).startswith(str(path))
            continue
        assert audio.dtype == np.float32 and audio.ndim == 1 and audio.size >= 1 and np.isfinite(audio).all()


_mutation = st.tuples(st.integers(0, 10**6), st.integers(0, 255))


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    first=st.integers(0, 6), second=st.integers(0, 6), operation=st.sampled_from(["mutate", "truncate", "splice"]),
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


@pytest.mark.parametrize("mode", [CodingMode.CONTEXT, CodingMode.ENTROPY])
def test_packets_that_would_code_larger_go_raw(model_dir: Path, clip: Path, tmp_path: Path, mode: CodingMode) -> None:
    """Speech, noise, speech in one range-coded file: the noise packets go raw, the speech ones stay coded,
    no packet exceeds raw packing, and decoding matches codec-stream and the encoder's codes."""
    speech = read_audio(clip, 16000)
    audio = np.concatenate([speech[: 25 * FRAME], _noise(25 * FRAME), speech[25 * FRAME : 50 * FRAME - 100]])
    soundfile.write(tmp_path / "mixed.wav", audio, 16000, subtype="FLOAT")
    done = run("codec-encode", tmp_path / "mixed.wav", tmp_path / "m.sscb", "--model", model_dir,
               "--packet-frames", 25, *(["--static-tables"] if mode is CodingMode.ENTROPY else []))
    assert done.returncode == 0 and done.stderr == "", done.stderr
    model = CodecModel(model_dir)
    with open(tmp_path / "m.sscb", "rb") as stream:
        header = read_header(stream, "m")
        packets = list(read_packets(stream, header, 10, "m"))
    assert header.mode is mode and header.version == 3
    assert [p.mode for p in packets] == [mode, CodingMode.RAW, mode]
    assert f"{mode.name.lower()}, 3 packets (1 sent raw)," in done.stdout
    assert all(len(p.payload) <= packed_size(12, p.frames, 10) for p in packets)
    assert len(packets[1].payload) == packed_size(12, 25, 10)
    assert len(model.coder(mode).encode(StreamDecoder(model).unpack(packets[1]))) > packed_size(12, 25, 10)
    padded = np.concatenate([audio, np.zeros(-audio.size % FRAME, np.float32)])
    expected = StreamEncoder(model, 12).encode_codes(padded)
    decoded_codes = np.concatenate([StreamDecoder(model).unpack(p) for p in packets], axis=1)
    np.testing.assert_array_equal(decoded_codes, expected)
    assert run("codec-decode", tmp_path / "m.sscb", tmp_path / "d.wav", "--model", model_dir).returncode == 0
    assert run("codec-stream", "--input", tmp_path / "mixed.wav", "--output", tmp_path / "s.wav", "--model",
               model_dir).returncode == 0
    decoded, streamed = (soundfile.read(tmp_path / name, dtype="float32")[0] for name in ("d.wav", "s.wav"))
    assert decoded.shape == audio.shape
    np.testing.assert_allclose(decoded, streamed, atol=1e-4, rtol=0)


def test_the_least_likely_codes_go_raw_and_round_trip(model_dir: Path) -> None:
    model = CodecModel(model_dir)
    coder, decoder = model.entropy_coder, StreamDecoder(model)
    counts = load_tables(model.tables_path, 12, 1024)
    adversarial = np.repeat(counts.argmin(axis=1)[:, None], 50, axis=1)  # each codebook's least likely code
    raw = pack_codes(adversarial, 10)
    mode, payload = coder.encode_or_raw(adversarial, raw)
    assert mode is CodingMode.RAW and payload == raw and len(coder.encode(adversarial)) > len(raw)
    np.testing.assert_array_equal(decoder.unpack(Packet(0, 12, 50, mode, payload)), adversarial)
    likely = np.repeat(counts.argmax(axis=1)[:, None], 50, axis=1)
    mode, payload = coder.encode_or_raw(likely, pack_codes(likely, 10))
    assert mode is CodingMode.ENTROPY and len(payload) < len(raw)
    np.testing.assert_array_equal(decoder.unpack(Packet(0, 12, 50, mode, payload)), likely)


def _relabel(data: bytes, version: int) -> bytes:
    """The same file with another format version in its header, the header checksum re-sealed."""
    data = bytearray(data)
    data[4] = version
    end = 44 + data[7]
    data[end : end + 4] = struct.pack("<I", zlib.crc32(bytes(data[:end])))
    return bytes(data)


def test_version_1_files_are_read_with_one_mode_throughout(model_dir: Path, tmp_path: Path) -> None:
    model = CodecModel(model_dir)
    speech = soundfile.read(EXAMPLE_CLIP, dtype="float32")[0][16000 : 16000 + 12 * FRAME]
    for name, audio in (("speech", speech), ("mixed", np.concatenate([speech, _noise(6 * FRAME)]))):
        summary = encode_file(model, audio, tmp_path / f"{name}.sscb", 12, CodingMode.ENTROPY, packet_frames=6)
        (tmp_path / f"{name}_v1.sscb").write_bytes(_relabel((tmp_path / f"{name}.sscb").read_bytes(), 1))
    assert summary.modes == [CodingMode.ENTROPY, CodingMode.ENTROPY, CodingMode.RAW]
    np.testing.assert_array_equal(decode_file(model, tmp_path / "speech_v1.sscb"),
                                  decode_file(model, tmp_path / "speech.sscb"))
    # A version 1 reader knows no raw packets in an entropy-coded file: refused, as that reader would.
    with pytest.raises(StreamError, match="packet 2 holds 12 codebooks in RAW mode; the header says 12 in ENTROPY"):
        decode_file(model, tmp_path / "mixed_v1.sscb")
    assert decode_file(model, tmp_path / "mixed.sscb").shape == (18 * FRAME,)


def test_no_packet_may_exceed_raw_packing_from_version_2(tmp_path: Path) -> None:
    """Version 2 bounds a record by raw packing (8 + 750 bytes at 12 x 50); version 1 by 32 bits per code."""
    model = fuzz_model()
    header = FileHeader(CodingMode.ENTROPY, 12, 16000, FRAME, 50, 50 * FRAME, model.fingerprint,
                        model.tables_fingerprint, "tiny")
    oversized = _record(struct.pack("<IBBH", 0, 1, 12, 50) + bytes(752))
    (tmp_path / "v2.sscb").write_bytes(header.to_bytes() + oversized)
    with pytest.raises(StreamError, match=r"packet 0 claims 760 bytes, outside 8\.\.758"):
        decode_file(model, tmp_path / "v2.sscb")
    (tmp_path / "v1.sscb").write_bytes(_relabel(header.to_bytes(), 1) + oversized)
    assert decode_file(model, tmp_path / "v1.sscb").shape == (50 * FRAME,)  # within version 1's bound: decoded


@pytest.mark.parametrize("mode", [CodingMode.ENTROPY, CodingMode.CONTEXT])
def test_a_header_that_lies_about_lengths_allocates_nothing_large(tmp_path: Path, mode: CodingMode) -> None:
    model = fuzz_model()
    header = FileHeader(mode, 12, 16000, FRAME, 3000, 2**62, model.fingerprint,
                        coder_fingerprint(model, mode), "tiny")
    lies = {
        "huge record": struct.pack("<II", 2**32 - 1, 0),
        "record longer than the file": struct.pack("<II", 400, 0) + bytes(10),
        "payload too short for its frames": _record(struct.pack("<IBBH", 0, mode, 12, 3000) + bytes(4)),
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


def test_the_context_mode_needs_version_3(model_dir: Path, tmp_path: Path) -> None:
    model = CodecModel(model_dir)
    speech = soundfile.read(EXAMPLE_CLIP, dtype="float32")[0][16000 : 16000 + 12 * FRAME]
    encode_file(model, speech, tmp_path / "c.sscb", 12, CodingMode.CONTEXT, packet_frames=6)
    (tmp_path / "c_v2.sscb").write_bytes(_relabel((tmp_path / "c.sscb").read_bytes(), 2))
    assert decode_file(model, tmp_path / "c.sscb").shape == speech.shape
    with pytest.raises(StreamError, match="unknown coding mode 2"):
        decode_file(model, tmp_path / "c_v2.sscb")


def test_a_pipe_can_be_encoded_and_decoded_as_a_file_is(model_dir: Path, tmp_path: Path) -> None:
    # Found from outside: `cat x.wav | codec-encode /dev/stdin ...` said "Format not recognised" (the header was
    # read twice) and a FLAC "lost sync" (libsndfile seeks in it); `cat x.sscb | codec-decode /dev/stdin ...` said
    # "Illegal seek" without naming the file. Both now give what the same file gives.
    flac = tmp_path / "in.flac"
    audio = read_audio(EXAMPLE_CLIP, 16000)[:16000 * 3]
    soundfile.write(flac, audio, 16000, subtype="PCM_16")
    wav = tmp_path / "in.wav"
    soundfile.write(wav, audio, 16000, subtype="FLOAT")
    from_file = tmp_path / "file.sscb"
    assert run("codec-encode", flac, from_file, "--model", model_dir).returncode == 0

    def shell(line: str) -> subprocess.CompletedProcess:
        return subprocess.run(["bash", "-c", line], capture_output=True, text=True, timeout=240, check=False)

    for source in (flac, wav):  # the same samples: 16-bit FLAC and float WAV of them
        piped = tmp_path / f"piped-{source.suffix[1:]}.sscb"
        done = shell(f'cat "{source}" | "{BIN}/codec-encode" /dev/stdin "{piped}" --model "{model_dir}"')
        assert done.returncode == 0, done.stderr
        assert piped.read_bytes() == from_file.read_bytes()
    for extra in ([], ["--start", "1", "--duration", "1"]):
        whole, piped = tmp_path / "whole.wav", tmp_path / "piped.wav"
        assert run("codec-decode", from_file, whole, "--model", model_dir, *extra).returncode == 0
        done = shell(f'cat "{from_file}" | "{BIN}/codec-decode" /dev/stdin "{piped}" --model "{model_dir}" '
                     + " ".join(extra))
        assert done.returncode == 0, done.stderr
        assert piped.read_bytes() == whole.read_bytes()
    # `-` is standard input and (for the bitstream) standard output, as for most Unix tools (found from outside:
    # `codec-encode x.wav -` wrote a file named "-").
    dashed = tmp_path / "dashed.sscb"
    done = shell(f'cat "{flac}" | "{BIN}/codec-encode" - - --model "{model_dir}" > "{dashed}"')
    assert done.returncode == 0 and dashed.read_bytes() == from_file.read_bytes(), done.stderr
    done = shell(f'cat "{dashed}" | "{BIN}/codec-decode" - "{tmp_path}/dashed.wav" --model "{model_dir}"')
    assert done.returncode == 0, done.stderr
    assert run("codec-decode", from_file, tmp_path / "all.wav", "--model", model_dir).returncode == 0
    assert (tmp_path / "dashed.wav").read_bytes() == (tmp_path / "all.wav").read_bytes()
    # Audio to standard output as WAV, through a pipe (found from outside: "-: cannot write audio").
    done = shell(f'cat "{dashed}" | "{BIN}/codec-decode" - - --model "{model_dir}" | cat > "{tmp_path}/out.wav"')
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert (tmp_path / "out.wav").read_bytes() == (tmp_path / "all.wav").read_bytes()
    assert not (tmp_path / "-").exists()
    # A pipe that ends early, or carries nothing: one line naming it, and no output left.
    size = from_file.stat().st_size
    for line, message in [(f'head -c {size // 2} "{from_file}" | "{BIN}/codec-decode" /dev/stdin "{tmp_path}/t.wav"',
                           "codec-decode: error: /dev/stdin: truncated in packet"),
                          (f': | "{BIN}/codec-encode" /dev/stdin "{tmp_path}/t.sscb"',
                           "codec-encode: error: /dev/stdin: empty (nothing came through)")]:
        done = shell(line + f' --model "{model_dir}"')
        assert done.returncode == 1 and done.stderr.startswith(message) and done.stderr.count("\n") == 1, done.stderr
    assert not list(tmp_path.glob("t.*"))
    # Streamed (codec-stream), a pipe is read as it flows: a format libsndfile must seek in is refused with why.
    done = shell(f'cat "{flac}" | "{BIN}/codec-stream" --input /dev/stdin --model "{model_dir}"')
    assert done.returncode == 1 and "through a pipe libsndfile reads only formats it need not seek in" in done.stderr
    assert done.stderr.count("\n") == 1
    done = shell(f'cat "{wav}" | "{BIN}/codec-stream" --input /dev/stdin --model "{model_dir}"')
    assert done.returncode == 0, done.stderr
    # `--input -` is standard input too (found from outside: "File '-' does not exist"), the same samples as the file.
    for source, name in ((f'"{wav}"', "from_file.wav"), ("-", "from_dash.wav")):
        done = shell(f'cat "{wav}" | "{BIN}/codec-stream" --input {source} --output "{tmp_path / name}" '
                     f'--model "{model_dir}"')
        assert done.returncode == 0, done.stderr
    assert (tmp_path / "from_dash.wav").read_bytes() == (tmp_path / "from_file.wav").read_bytes()


@pytest.mark.parametrize("command", [
    ["codec-encode", "{clip}", "-"],
    ["codec-decode", "{sscb}", "-"],
    ["codec-stream", "--input", "{clip}", "--output", "-"],
])
def test_binary_output_to_a_terminal_is_refused(model_dir: Path, clip: Path, tmp_path: Path,
                                                command: list[str]) -> None:
    """Found from outside: `codec-encode x.wav -` in a terminal printed the bitstream on it (gzip and flac refuse).
    Standard output here is a pseudo-terminal, as in an interactive shell."""
    import pty

    sscb = tmp_path / "talk.sscb"
    assert run("codec-encode", clip, sscb, "--model", model_dir).returncode == 0
    controller, terminal = pty.openpty()
    try:
        done = subprocess.run([str(BIN / command[0]), *(a.format(clip=clip, sscb=sscb) for a in command[1:]),
                               "--model", str(model_dir)], stdout=terminal, stderr=subprocess.PIPE, text=True,
                              timeout=240, check=False)
    finally:
        os.close(terminal)
        os.close(controller)
    name = "OUTPUT" if command[0] != "codec-stream" else "--output"
    assert done.returncode == 2 and done.stderr == (
        f"{command[0]}: error: Invalid value for {name}: standard output is a terminal, and this output is binary: "
        "redirect it to a file (> FILE) or a pipe, or give a file name\n")


def test_decoding_to_opus_writes_ogg_opus_of_the_whole_length(model_dir: Path, clip: Path, tmp_path: Path) -> None:
    """Found from outside: `codec-decode x.sscb out.opus` was "no audio file format has the extension '.opus'",
    though Opus is what a codec is compared with (and what codec-pack writes)."""
    sscb = tmp_path / "talk.sscb"
    assert run("codec-encode", clip, sscb, "--model", model_dir).returncode == 0
    wav, opus = tmp_path / "talk.wav", tmp_path / "talk.opus"
    for output in (wav, opus):
        done = run("codec-decode", sscb, output, "--model", model_dir)
        assert done.returncode == 0, done.stderr
    info = soundfile.info(opus)
    assert (info.format, info.subtype, info.samplerate) == ("OGG", "OPUS", 16000)
    assert info.frames == soundfile.info(wav).frames
    with pytest.raises(AudioFileError, match=r"x.opus: cannot write audio \(Opus codes 8000, 12000, 16000, 24000, "
                                             r"48000 Hz, not 22050 Hz"):
        AudioWriter(tmp_path / "x.opus", 22050)
