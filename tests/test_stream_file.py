"""File mode streams from disk: the same samples as the whole-file path, exact length, constant memory."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile
import soxr
from test_stream_model import tiny_model  # noqa: F401 -- the fixture

from sscodec.common.audio import AudioFileError, read_audio, read_audio_blocks
from sscodec.stream.engine import StreamEngine
from sscodec.stream.file_mode import stream_audio

BUNDLED_EXAMPLE = Path(__file__).resolve().parents[1] / "stream" / "examples" / "telugu_example.flac"
CODEC_STREAM = [sys.executable, "-c", "from sscodec.stream.cli import main; main()"]
# Runs a command and prints its peak RSS (kB) last. A child forked straight from pytest would count the
# test process's pages (torch included) in its peak until it execs; one forked from this small launcher does not.
PEAK_RSS = [sys.executable, "-c", ("import resource, subprocess, sys; code = subprocess.run(sys.argv[1:]).returncode; "
                                   "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(code)")]


def whole_file(path: Path, rate: int) -> np.ndarray:
    """The path file mode took before it streamed: decode all, average the channels, resample in one call."""
    data, file_rate = soundfile.read(path, dtype="float32", always_2d=True)
    mono = (data / np.float32(data.shape[1])).sum(axis=1, dtype=np.float32)
    return mono if file_rate == rate else soxr.resample(mono, file_rate, rate, quality="HQ")


@pytest.fixture
def stereo_44k(tmp_path: Path) -> Path:
    """7.37 s of 44.1 kHz stereo 24-bit WAV (several read blocks, not a whole number of frames)."""
    t = np.arange(int(44100 * 7.37)) / 44100
    noise = 0.05 * np.random.default_rng(1).standard_normal(t.size)
    left, right = 0.3 * np.sin(2 * np.pi * 300 * t) + noise, 0.2 * np.sin(2 * np.pi * 510 * t)
    path = tmp_path / "stereo44.wav"
    soundfile.write(path, np.stack([left, right], axis=1), 44100, subtype="PCM_24")
    return path


@pytest.mark.parametrize("source", ["bundled", "stereo_44k"])
def test_cli_file_mode_gives_the_whole_file_samples(tiny_model: Path, stereo_44k: Path, tmp_path: Path,  # noqa: F811
                                                    source: str) -> None:
    path = BUNDLED_EXAMPLE if source == "bundled" else stereo_44k
    out = tmp_path / "out.wav"
    done = subprocess.run([*CODEC_STREAM, "--input", str(path), "--output", str(out), "--model", str(tiny_model),
                           "--chunk-frames", "2"], capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    audio = whole_file(path, 16000)
    expected = stream_audio(StreamEngine(tiny_model, chunk_frames=2), audio).audio
    decoded, rate = soundfile.read(out, dtype="float32")
    assert rate == 16000 and decoded.shape == audio.shape
    np.testing.assert_allclose(decoded, expected, atol=1e-4, rtol=0)  # 16-bit WAV: within 2^-15


@pytest.mark.parametrize("block_frames", [1, 1000, 4096, 1 << 16])
def test_blocks_join_to_the_whole_file_exactly(stereo_44k: Path, block_frames: int) -> None:
    blocks = list(read_audio_blocks(stereo_44k, 16000, block_frames))
    assert all(block.dtype == np.float32 and block.ndim == 1 and block.size for block in blocks)
    joined = np.concatenate(blocks)
    np.testing.assert_array_equal(joined, whole_file(stereo_44k, 16000))
    np.testing.assert_array_equal(joined, read_audio(stereo_44k, 16000))
    assert joined.shape[0] == round(soundfile.info(stereo_44k).frames * 16000 / 44100)


def test_a_bad_block_midway_is_one_error_and_no_output_file(tiny_model: Path, tmp_path: Path) -> None:  # noqa: F811
    audio = np.zeros((200_000, 2), dtype=np.float32)
    audio[150_000, 1] = np.nan  # in the third 64 Ki-frame block: found after output has been written
    path, out = tmp_path / "nan.wav", tmp_path / "out.wav"
    soundfile.write(path, audio, 48000, subtype="FLOAT")
    with pytest.raises(AudioFileError, match="contains NaN or Inf"):
        list(read_audio_blocks(path, 16000))
    done = subprocess.run([*CODEC_STREAM, "--input", str(path), "--output", str(out), "--model", str(tiny_model)],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [f"codec-stream: error: {path}: contains NaN or Inf samples"]
    assert not out.exists()


def write_long_recording(path: Path, seconds: int, rate: int = 48000) -> None:
    """48 kHz stereo 16-bit WAV of `seconds`: 10 s of quiet noise and tone, written again and again."""
    t = np.arange(rate * 10) / rate
    rng = np.random.default_rng(0)
    tone = 0.1 * np.sin(2 * np.pi * 220 * t)
    block = np.stack([tone + 0.01 * rng.standard_normal(t.size), 0.01 * rng.standard_normal(t.size)], axis=1)
    with soundfile.SoundFile(path, "w", rate, 2, subtype="PCM_16") as handle:
        for _ in range(seconds // 10):
            handle.write(block)


@pytest.mark.slow
def test_two_hour_file_streams_in_constant_memory(tiny_model: Path, tmp_path: Path) -> None:  # noqa: F811
    """Beyond what read_audio decodes at once (2^29 values); about 2 minutes on 2 loaded cores."""
    seconds = 2 * 3600
    path, out = tmp_path / "two_hours.wav", tmp_path / "out.wav"
    write_long_recording(path, seconds)
    assert soundfile.info(path).frames * 2 > 2**29
    started = time.monotonic()
    # One-second chunks: the same samples as any chunk size, and the codec's per-call cost 50x smaller.
    done = subprocess.run([*PEAK_RSS, *CODEC_STREAM, "--input", str(path), "--output", str(out), "--model",
                           str(tiny_model), "--chunk-frames", "50"], capture_output=True, text=True, timeout=1800,
                          check=False)
    wall = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    peak_mb = int(done.stdout.splitlines()[-1]) / 1024  # kB on Linux
    assert peak_mb < 300, f"peak RSS {peak_mb:.0f} MB"
    info = soundfile.info(out)
    assert (info.samplerate, info.channels, info.frames) == (16000, 1, seconds * 16000)
    with soundfile.SoundFile(out) as handle:  # the end is real decoded audio, not padding
        handle.seek(info.frames - 16000)
        assert np.abs(handle.read(dtype="float32")).max() > 0
    print(f"2 h of 48 kHz stereo: {wall:.0f} s wall, peak RSS {peak_mb:.0f} MB")
