"""codec-decode --start/--duration against a whole decode, the decoder's measured memory, and atomic outputs."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
import soundfile
from test_bitstream_file import clip, model_dir, run  # noqa: F401 -- fixtures

from sscodec.common.audio import read_audio
from sscodec.common.errors import StreamError
from sscodec.stream import file_cli
from sscodec.stream.decoder import StreamDecoder
from sscodec.stream.encoder import StreamEncoder
from sscodec.stream.file_codec import SEEK_TOLERANCE, FileReader, decode_file, decoder_memory_frames
from sscodec.stream.model import CodecModel

FRAME = 320
RATE = 16000


@pytest.fixture(scope="module")
def encoded(model_dir: Path, clip: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:  # noqa: F811
    """The clip encoded in 3-frame packets (so a seek skips many), and its whole decode through codec-decode."""
    folder = tmp_path_factory.mktemp("seek")
    assert run("codec-encode", clip, folder / "talk.sscb", "--model", model_dir, "--packet-frames", 3).returncode == 0
    assert run("codec-decode", folder / "talk.sscb", folder / "whole.wav", "--model", model_dir).returncode == 0
    return folder / "talk.sscb", soundfile.read(folder / "whole.wav", dtype="float32")[0]


@pytest.mark.parametrize(("start", "duration"), [(1.0, 0.5), (0.0137, 0.2), (0.5, None), (2.0, 5.0), (0.1, 1e-9)])
def test_decode_from_a_time_equals_the_whole_decode_there(model_dir: Path, encoded: tuple[Path, np.ndarray],  # noqa: F811
                                                          tmp_path: Path, start: float,
                                                          duration: float | None) -> None:
    path, whole = encoded
    args = ["--start", start] + ([] if duration is None else ["--duration", duration])
    done = run("codec-decode", path, tmp_path / "part.wav", "--model", model_dir, *args)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    part, rate = soundfile.read(tmp_path / "part.wav", dtype="float32")
    first = round(start * RATE)
    last = whole.size if duration is None else min(whole.size, first + max(1, round(duration * RATE)))
    assert rate == RATE and part.shape == (last - first,)
    # Both are 16-bit WAVs: a sample may round to the other side of one step (3e-5) of the same value.
    np.testing.assert_allclose(part, whole[first:last], atol=1e-4, rtol=0)


def test_a_seek_reads_only_the_packets_it_decodes(model_dir: Path, encoded: tuple[Path, np.ndarray],  # noqa: F811
                                                  tmp_path: Path) -> None:
    """Damage packet 1: a whole decode fails on it, a seek to 1.5 s (packet 25, warm-up from packet 22) does not."""
    path, whole = encoded
    damaged = tmp_path / "damaged.sscb"
    damaged.write_bytes(damage_packet(path.read_bytes(), 1))
    model = CodecModel(model_dir)
    with pytest.raises(StreamError, match="packet 1 checksum mismatch"):
        decode_file(model, damaged)
    part = decode_file(model, damaged, start=24000, length=8000)
    np.testing.assert_allclose(part, whole[24000:32000], atol=1e-4, rtol=0)


def test_the_measured_warm_up_is_the_decoders_memory(model_dir: Path, clip: Path) -> None:  # noqa: F811
    """On speech codes: a decoder started `memory` frames early gives a whole decode's samples (within the
    tolerance); one frame less does not. So the warm-up is neither short nor wasteful."""
    model = CodecModel(model_dir)
    memory = decoder_memory_frames(model)
    assert memory is not None and 1 <= memory <= 32
    audio = read_audio(clip, RATE)
    codes = StreamEncoder(model, 12).encode_codes(audio[: audio.size // FRAME * FRAME])
    whole = model_decode(model, codes)
    for start in (40, 77):
        exact = model_decode(model, codes[:, start - memory :])[memory * FRAME :]
        short = model_decode(model, codes[:, start - memory + 1 :])[(memory - 1) * FRAME :]
        assert np.abs(exact - whole[start * FRAME :]).max() <= SEEK_TOLERANCE
        assert np.abs(short - whole[start * FRAME :]).max() > SEEK_TOLERANCE


def model_decode(model: CodecModel, codes: np.ndarray) -> np.ndarray:
    return StreamDecoder(model).decode_codes(codes)


def damage_packet(data: bytes, index: int) -> bytes:
    """`data` with one payload byte of packet `index` flipped (its record's checksum then fails)."""
    damaged = bytearray(data)
    position = 48 + data[7]  # the first record: after the 44 fixed header bytes, the name and its CRC
    for _ in range(index):
        position += 8 + struct.unpack_from("<I", data, position)[0]
    damaged[position + 8 + 12] ^= 0xFF  # past the record's length and CRC and the packet's 8-byte header
    return bytes(damaged)


@pytest.mark.parametrize(("args", "message"), [
    (["--start", "3"], "Invalid value for '--start': 3 s is not before the end of"),
    # Found from outside: the end was rounded to 3 decimals, so a start just past it read as before it.
    (["--start", "3"], "(which ends at 2.3"),
    (["--start", "inf"], "Invalid value for '--start': inf is not a finite number in the range x>=0"),
    (["--start", "nan"], "Invalid value for '--start': nan is not a finite number in the range x>=0"),
    (["--start", "-1"], "-1.0 is not in the range x>=0"),
    (["--duration", "0"], "0.0 is not in the range x>0"),
    (["--duration", "nan"], "Invalid value for '--duration': nan is not a finite number in the range x>0"),
    (["--duration", "inf"], "Invalid value for '--duration': inf is not a finite number in the range x>0"),
])
def test_bad_start_or_duration_is_one_line(model_dir: Path, encoded: tuple[Path, np.ndarray],  # noqa: F811
                                           tmp_path: Path, args: list[str], message: str) -> None:
    done = run("codec-decode", encoded[0], tmp_path / "o.wav", "--model", model_dir, *args)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "o.wav").exists()


def test_a_file_damaged_mid_way_leaves_no_output_and_keeps_an_old_one(
        model_dir: Path, encoded: tuple[Path, np.ndarray], tmp_path: Path) -> None:  # noqa: F811
    damaged = tmp_path / "damaged.sscb"
    damaged.write_bytes(damage_packet(encoded[0].read_bytes(), 20))  # packets 0-19 decode and are written first
    out = tmp_path / "out"
    out.mkdir()
    done = run("codec-decode", damaged, out / "new.wav", "--model", model_dir)
    assert done.returncode == 1 and "checksum mismatch" in done.stderr, done.stderr
    assert list(out.iterdir()) == []
    (out / "old.wav").write_bytes(b"an earlier decode")
    done = run("codec-decode", damaged, out / "old.wav", "--model", model_dir)
    assert done.returncode == 1 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert [p.name for p in out.iterdir()] == ["old.wav"] and (out / "old.wav").read_bytes() == b"an earlier decode"
    done = run("codec-decode", encoded[0], out / "old.wav", "--model", model_dir)
    assert done.returncode == 0 and soundfile.info(out / "old.wav").frames == encoded[1].size


def test_an_interrupted_encode_leaves_the_old_output(model_dir: Path, clip: Path, tmp_path: Path,  # noqa: F811
                                                     monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """Ctrl-C on the third packet: exit 130, the previous OUTPUT untouched, no temp file left."""
    (tmp_path / "talk.sscb").write_bytes(b"an earlier encode")
    encode = StreamEncoder.encode
    calls = []

    def interrupted(self: StreamEncoder, audio: np.ndarray):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return encode(self, audio)

    monkeypatch.setattr(StreamEncoder, "encode", interrupted)
    with pytest.raises(SystemExit) as exit_info:
        file_cli.encode_main([str(clip), str(tmp_path / "talk.sscb"), "--model", str(model_dir),
                              "--packet-frames", "10"])
    assert exit_info.value.code == 130 and capsys.readouterr().err.strip() == "codec-encode: interrupted"
    assert [p.name for p in tmp_path.iterdir()] == ["talk.sscb"]
    assert (tmp_path / "talk.sscb").read_bytes() == b"an earlier encode"


def test_an_output_that_cannot_be_written_is_named_in_the_error(model_dir: Path, encoded: tuple[Path, np.ndarray],  # noqa: F811
                                                                tmp_path: Path) -> None:
    done = run("codec-decode", encoded[0], tmp_path / "out.xyz", "--model", model_dir)
    assert done.returncode == 2 and f"{tmp_path / 'out.xyz'}: cannot write audio" in done.stderr, done.stderr
    assert ".tmp" not in done.stderr and list(tmp_path.iterdir()) == []
    with FileReader(CodecModel(model_dir), encoded[0]) as reader:
        assert reader.header.packet_frames == 3 and abs(reader.seconds - encoded[1].size / RATE) < 1e-9
