"""Fuzzing audio file reading: any bytes give finite mono audio at the asked rate, or one AudioFileError."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sscodec.common.audio import AudioFileError, audio_files_below, probe_audio, read_audio, to_mono_rate
from sscodec.common.bundled import EXAMPLE_CLIP

RATE = 16000
# The README's Reliability section quotes these counts; change both together.
VALID_FILES = 300
ARBITRARY_BYTES = 1000
DAMAGED_FILES = 1000
ARRAYS = 300

# (container, subtype, suffix): the integer and float widths the issue names, in containers that hold them.
FORMATS = [("WAV", "PCM_16", ".wav"), ("WAV", "PCM_24", ".wav"), ("WAV", "FLOAT", ".wav"),
           ("WAV", "DOUBLE", ".wav"), ("FLAC", "PCM_16", ".flac"), ("FLAC", "PCM_24", ".flac"),
           ("AIFF", "PCM_24", ".aiff"), ("AU", "FLOAT", ".au"), ("CAF", "DOUBLE", ".caf"),
           ("W64", "PCM_16", ".w64"), ("OGG", "VORBIS", ".ogg")]
FLOAT_SUBTYPES = {"FLOAT", "DOUBLE"}
# Magic numbers route random bytes past libsndfile's format sniffing into each decoder.
MAGICS = [b"", b"RIFF\x00\x01\x00\x00WAVEfmt ", b"RIFX", b"FORM\x00\x00\x10\x00AIFF", b"fLaC", b"OggS\x00\x02",
          b".snd", b"caff\x00\x01\x00\x00", b"riff.\x91\xcf\x11", b"ID3\x03\x00\x00", b"\xff\xfb\x90\x00"]
SETTINGS = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow]}


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz-audio")


def encode(audio: np.ndarray, rate: int, container: str, subtype: str) -> bytes:
    """The bytes of a sound file holding `audio` [T, C]."""
    buffer = io.BytesIO()
    soundfile.write(buffer, audio, rate, format=container, subtype=subtype)
    return buffer.getvalue()


def read_or_error(path: Path) -> np.ndarray | None:
    """read_audio's result, or None after checking the AudioFileError is one line naming the file."""
    try:
        audio = read_audio(path, RATE)
    except AudioFileError as error:
        message = str(error)
        assert message.startswith(f"{path}: ") and "\n" not in message, message
        return None
    assert audio.dtype == np.float32 and audio.ndim == 1 and audio.size > 0
    assert np.isfinite(audio).all()
    return audio


@st.composite
def sound(draw: st.DrawFn) -> tuple[np.ndarray, int, tuple[str, str, str]]:
    """A file's contents: 0 to 3000 frames of 1 to 8 channels at 8 to 96 kHz, in one of FORMATS."""
    container, subtype, suffix = draw(st.sampled_from(FORMATS))
    channels = draw(st.integers(1, 2 if container == "OGG" else 8))
    rates = st.sampled_from([8000, 11025, 16000, 22050, 44100, 48000, 96000])
    # The FLAC and Vorbis encoders take only common rates; the others store any integer.
    rate = draw(rates if container in {"FLAC", "OGG"} else rates | st.integers(8000, 96000))
    frames = draw(st.integers(0, 3000))
    seed = draw(st.integers(0, 2**32 - 1))
    audio = np.random.default_rng(seed).uniform(-1, 1, (frames, channels))
    return audio, rate, (container, subtype, suffix)


@settings(max_examples=VALID_FILES, **SETTINGS)
@given(sound(), st.sampled_from([None, np.nan, np.inf, -np.inf]), st.integers(0, 2**16))
def test_valid_files_give_mono_float32_at_the_rate(folder: Path, file: tuple, bad: float | None, where: int) -> None:
    audio, rate, (container, subtype, suffix) = file
    poisoned = bad is not None and audio.size > 0 and subtype in FLOAT_SUBTYPES  # PCM cannot hold NaN/Inf
    if poisoned:
        audio[where % audio.shape[0], where % audio.shape[1]] = bad
    path = folder / f"valid{suffix}"
    path.write_bytes(encode(audio, rate, container, subtype))
    result = read_or_error(path)
    if audio.shape[0] == 0 or poisoned:
        assert result is None
        return
    expected = audio.shape[0] * RATE / rate
    if result is None:
        # Under one output sample is nothing to stream; libvorbis may refuse odd rates, cleanly is enough.
        assert expected < 1 or container == "OGG"
    else:
        assert abs(result.shape[0] - expected) <= 1


@settings(max_examples=ARBITRARY_BYTES, **SETTINGS)
@given(st.sampled_from(MAGICS), st.binary(max_size=4096), st.sampled_from([".wav", ".flac", ".ogg", ".mp3", ".raw"]))
def test_arbitrary_bytes_are_audio_or_one_clear_error(folder: Path, magic: bytes, body: bytes, suffix: str) -> None:
    path = folder / f"random{suffix}"
    path.write_bytes(magic + body)
    read_or_error(path)


@settings(max_examples=DAMAGED_FILES, **SETTINGS)
@given(sound(), st.integers(0, 2**32 - 1), st.lists(st.tuples(st.integers(0, 80), st.binary(min_size=1, max_size=4)),
                                                   max_size=4))
def test_truncated_and_garbled_headers_are_audio_or_one_clear_error(folder: Path, file: tuple, cut: int,
                                                                     patches: list[tuple[int, bytes]]) -> None:
    audio, rate, (container, subtype, suffix) = file
    data = bytearray(encode(audio, rate, container, subtype))
    # Header fields (sizes, channel counts, rates, bit depths) live in the first 80 bytes of every format here.
    for offset, value in patches:
        data[offset: offset + len(value)] = value
    path = folder / f"damaged{suffix}"
    path.write_bytes(bytes(data[: cut % (len(data) + 1)]) if cut % 3 else bytes(data))
    read_or_error(path)


def test_huge_header_values_are_refused_not_allocated(folder: Path) -> None:
    wav = bytearray(encode(np.zeros((100, 2)), 8000, "WAV", "PCM_16"))
    for field, value in ((24, 1), (24, 0xFFFFFFFF), (22, 0xFFFF)):  # sample rate 1 Hz / 4 GHz, 65535 channels
        patched = bytearray(wav)
        patched[field: field + (2 if field == 22 else 4)] = value.to_bytes(2 if field == 22 else 4, "little")
        path = folder / "huge.wav"
        path.write_bytes(bytes(patched))
        assert read_or_error(path) is None


def test_a_declared_length_beyond_the_decode_cap_is_refused_before_allocating(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Hypothesis once found a damaged header declaring 1.6 billion frames × 4 channels (a 23.8 GiB read);
    # the cap is checked against the declared length, so a small cap shows the check on a small file.
    path = folder / "long.wav"
    path.write_bytes(encode(np.zeros((400, 1)), 8000, "WAV", "PCM_16"))
    monkeypatch.setattr("sscodec.common.audio.MAX_VALUES", 799)
    with pytest.raises(AudioFileError, match=r"declares 0.1 s of audio \(800 samples at 16000 Hz\), more than the "
                                             r"0.0 s \(799 samples\) decoded at once: split it"):
        read_audio(path, 16000)
    monkeypatch.setattr("sscodec.common.audio.MAX_VALUES", 800)
    assert read_audio(path, 16000).shape == (800,)
    # What counts is the output: found from outside, codec-encode refused 100 minutes of 48 kHz stereo (576 M
    # values in the file) that are 96 M samples at 16 kHz. Here 2,400 stereo frames at 48 kHz are 800 samples.
    path.write_bytes(encode(np.zeros((2400, 2)), 48000, "WAV", "PCM_16"))
    assert read_audio(path, 16000).shape == (800,)


def test_a_damaged_rate_is_named_before_the_length_it_implies(folder: Path) -> None:
    # Found from outside: a header saying 1 Hz was refused as "declares 768,000,000 samples at 16000 Hz".
    path = folder / "rate1.wav"
    data = bytearray(encode(np.zeros((48000, 1)), 8000, "WAV", "PCM_16"))
    data[24:28] = (1).to_bytes(4, "little")  # the fmt chunk's sample rate
    path.write_bytes(bytes(data))
    with pytest.raises(AudioFileError, match=r"unsupported sample rate 1 Hz \(expected 1000..768000\)"):
        read_audio(path, 16000)


def test_a_recording_over_the_cap_is_refused_in_hours(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = folder / "long.wav"
    path.write_bytes(encode(np.zeros((400, 1)), 8000, "WAV", "PCM_16"))
    monkeypatch.setattr("sscodec.common.audio.MAX_VALUES", 799)
    monkeypatch.setattr("sscodec.common.audio.soundfile.info", lambda name: type("Info", (), {
        "frames": 36_000 * 8000, "samplerate": 8000, "channels": 1})())
    with pytest.raises(AudioFileError, match=r"declares 10.0 h of audio \(576,000,000 samples at 16000 Hz\)"):
        read_audio(path, 16000)


def test_a_bad_mp3_is_one_error_and_nothing_else_on_stderr(folder: Path, capfd: pytest.CaptureFixture) -> None:
    # Found from outside: libsndfile's mp3 decoder (libmpg123) printed "Warning: Xing stream size off ..." or
    # "Note: Illegal Audio-MPEG-Header ..." lines on stderr beside the one-line error, and random bytes named
    # .mp3 were said to be a file that "does not exist or is not a regular file (possibly a pipe?)".
    t = np.arange(3 * RATE) / RATE
    whole = folder / "whole.mp3"
    soundfile.write(whole, 0.3 * np.sin(2 * np.pi * 220 * t), RATE, format="MP3")
    cases = {"trunc.mp3": whole.read_bytes()[: whole.stat().st_size // 2],
             "junk.mp3": np.random.default_rng(0).bytes(5000), "empty.mp3": b""}
    expected = {"trunc.mp3": "damaged: decoding stopped at", "junk.mp3": "not an audio format libsndfile reads, or damaged",
                "empty.mp3": "not an audio format libsndfile reads, or damaged"}
    for name, data in cases.items():
        (folder / name).write_bytes(data)
        capfd.readouterr()
        with pytest.raises(AudioFileError) as error:
            read_audio(folder / name, RATE)
        assert expected[name] in str(error.value) and "does not exist" not in str(error.value), error.value
        assert capfd.readouterr().err == "", name
    # A good mp3 whose header's frame count is off still decodes, quietly.
    assert read_audio(whole, RATE).shape[0] > 2 * RATE and capfd.readouterr().err == ""


def test_an_endless_device_is_refused_past_the_spool_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sscodec.common.audio.MAX_PIPED_BYTES", 3 << 20)
    with pytest.raises(AudioFileError, match=r"^/dev/zero: more than 0.00292969 GiB from a pipe or device; give it"):
        read_audio("/dev/zero", RATE)


def test_zero_length_missing_and_directory(folder: Path) -> None:
    (folder / "empty.wav").write_bytes(b"")
    assert read_or_error(folder / "empty.wav") is None
    for path, message in ((folder / "missing.wav", "no such file"), (folder, "is a directory")):
        with pytest.raises(AudioFileError, match=message):
            read_audio(path, RATE)


@settings(max_examples=ARRAYS, **SETTINGS)
@given(st.integers(0, 400), st.integers(0, 8), st.integers(-10, 200_000), st.integers(0, 2**32 - 1),
       st.sampled_from([1.0, 1e30, 3e38]), st.sampled_from([None, np.nan, np.inf]))
def test_to_mono_rate_is_finite_or_one_clear_error(frames: int, channels: int, rate: int, seed: int, scale: float,
                                                   bad: float | None) -> None:
    data = (scale * np.random.default_rng(seed).uniform(-1, 1, (frames, channels))).astype(np.float32)
    if bad is not None and data.size:
        data.flat[seed % data.size] = bad
    try:
        mono = to_mono_rate(data, rate, RATE, name="clip")
    except AudioFileError as error:
        assert str(error).startswith("clip: ") and "\n" not in str(error)
        return
    assert channels and frames and bad is None and rate > 0
    assert mono.dtype == np.float32 and np.isfinite(mono).all()
    assert abs(mono.shape[0] - frames * RATE / rate) <= 1


def test_an_mp3_damaged_midway_is_an_error_not_a_shorter_file(folder: Path, tmp_path: Path) -> None:
    # Found from outside: libsndfile ends the read at the damage as if the file ended there, and codec-encode
    # wrote 3 s of a 12.8 s MP3 with exit 0. 200 bytes of noise over the third MP3 frame stop it at 0.22 s.
    speech = soundfile.read(EXAMPLE_CLIP, dtype="float32")[0]
    whole = bytearray(encode(speech, 16000, "MP3", "MPEG_LAYER_III"))
    assert read_audio(_write(folder / "whole.mp3", bytes(whole)), 16000).shape[0] == speech.shape[0]
    damaged = whole[:2000] + np.random.default_rng(0).integers(0, 256, 200, dtype=np.uint8).tobytes() + whole[2200:]
    path = _write(folder / "damaged.mp3", bytes(damaged))
    with pytest.raises(AudioFileError) as error:
        read_audio(path, 16000)
    assert str(error.value) == f"{path}: damaged: decoding stopped at 0.22 s of the 6.72 s it declares"
    done = subprocess.run([str(Path(sys.executable).parent / "codec-encode"), str(path), str(tmp_path / "o.sscb")],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 1 and not (tmp_path / "o.sscb").exists()
    # libmpg123 itself writes "Note: ..." lines to stderr; ours is the last, and the only one of ours.
    assert done.stderr.splitlines()[-1] == f"codec-encode: error: {error.value}", done.stderr
    assert sum(line.startswith("codec-encode") for line in done.stderr.splitlines()) == 1


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _wav_sized_and_not(subtype: str, channels: int) -> tuple[bytes, bytes]:
    """3 s of speech as WAV bytes: with its sizes, and with the streaming placeholder 0xFFFFFFFF in their place (a
    writer streaming a WAV into a pipe cannot go back to fill them in)."""
    speech = soundfile.read(EXAMPLE_CLIP, dtype="float32", frames=48000)[0]
    buffer = io.BytesIO()
    soundfile.write(buffer, np.repeat(speech[:, None], channels, axis=1), 16000, format="WAV", subtype=subtype)
    sized = bytearray(buffer.getvalue())
    data = sized.index(b"data")
    unsized = bytearray(sized)
    unsized[4:8] = unsized[data + 4 : data + 8] = (0xFFFFFFFF).to_bytes(4, "little")
    return bytes(sized), bytes(unsized)


@pytest.mark.parametrize(("subtype", "channels"), [("PCM_16", 1), ("PCM_24", 2), ("FLOAT", 1)])
def test_a_piped_wav_of_unknown_length_is_read_to_its_end(subtype: str, channels: int, tmp_path: Path) -> None:
    # Found from outside: a WAV written into a pipe cannot go back to fill in its sizes, so writers streaming one
    # (ffmpeg's `-f wav -`, for one) leave 0xFFFFFFFF there; codec-stream --input - called it "damaged: decoding
    # stopped at 3.00 s of the 134217.73 s it declares". A truncated WAV that states its length is still damaged.
    sized, unsized = _wav_sized_and_not(subtype, channels)
    codec_stream = str(Path(sys.executable).parent / "codec-stream")
    for stdin, expected_code in ((unsized, 0), (sized[: len(sized) // 2], 1)):
        out = tmp_path / "out.wav"
        out.unlink(missing_ok=True)
        done = subprocess.run([codec_stream, "--input", "-", "--output", str(out)], input=stdin, capture_output=True,
                              timeout=300, check=False)
        err = done.stderr.decode()
        assert done.returncode == expected_code, err
        if expected_code == 0:
            assert soundfile.info(out).frames == 48000, err
        else:
            assert err == ("codec-stream: error: /dev/stdin: damaged: decoding stopped at 1.50 s of the 3.00 s it "
                           "declares\n"), err


@pytest.mark.parametrize(("subtype", "channels"), [("PCM_16", 1), ("PCM_24", 2), ("FLOAT", 1)])
def test_a_wav_file_cut_short_is_damaged_and_one_of_unknown_length_is_not(subtype: str, channels: int,
                                                                          tmp_path: Path) -> None:
    """Found from outside: a WAV file cut to half its length encoded as the half, exit 0 (libsndfile declares only
    the samples a file holds), where a cut MP3 or FLAC is "damaged". Through a pipe it was already refused; a WAV
    whose sizes are the streaming placeholder, saved to a file (`ffmpeg ... -f wav - > x.wav`), is read whole."""
    sized, unsized = _wav_sized_and_not(subtype, channels)
    cut = _write(tmp_path / "cut.wav", sized[: len(sized) // 2])
    whole = _write(tmp_path / "streamed.wav", unsized)
    codec_encode = str(Path(sys.executable).parent / "codec-encode")
    done = subprocess.run([codec_encode, str(cut), str(tmp_path / "cut.sscb")], capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 1 and done.stderr == (
        f"codec-encode: error: {cut}: damaged: decoding stopped at 1.50 s of the 3.00 s it declares\n")
    assert not (tmp_path / "cut.sscb").exists()
    with pytest.raises(AudioFileError, match="damaged: decoding stopped at 1.50 s of the 3.00 s"):
        probe_audio(cut)  # codec-train's manifest skips it, with this reason
    assert read_audio(whole, 16000).shape == (48000,)


def test_linked_sub_folders_are_read_once_each_and_link_loops_end(tmp_path: Path) -> None:
    # Found from outside: speaker folders linked into a data folder were left out without a word by codec-train
    # and codec-pack alike; a loop of links must still end, and a folder reached twice be read once.
    root, elsewhere = tmp_path / "data", tmp_path / "elsewhere"
    for folder in (root / "own", elsewhere / "speaker"):
        folder.mkdir(parents=True)
    soundfile.write(root / "own" / "a.wav", np.zeros(160, np.float32), 16000)
    soundfile.write(elsewhere / "speaker" / "b.wav", np.zeros(160, np.float32), 16000)
    (root / "linked").symlink_to(elsewhere / "speaker")
    (root / "again").symlink_to(elsewhere / "speaker")  # the same folder by a second link: read once
    (root / "own" / "loop").symlink_to(root)
    assert audio_files_below(root) == [root / "again" / "b.wav", root / "own" / "a.wav"]
