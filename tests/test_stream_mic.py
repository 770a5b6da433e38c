"""End to end `codec-stream --mic` on a private PulseAudio server with two virtual devices.

The "microphone" is the monitor of a null sink that `paplay` plays a speech clip into; the "speakers" are a
second null sink whose monitor `parecord` records. The model has random weights, so its output is noise-like
and cannot be compared with the clip itself; what the test shows is that the live path equals the file path:
(1) the decoded audio the run recorded equals offline encoder.onnx + decoder.onnx of exactly the input it
recorded, (2) that input is the clip, and (3) what reached the speaker sink is that decoded audio.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile
from call_helpers import answer
from test_stream_engine import offline_decode
from test_stream_model import tiny_model  # noqa: F401 -- the fixture

from sscodec.benchmarks.live import repeated_runs
from sscodec.benchmarks.sound_servers import (
    PULSE_HINT,
    PULSE_TOOLS,
    missing_tools,
    pulse_null_sinks,
    wait_for_capture,
)
from sscodec.common.audio import read_audio
from sscodec.common.bundled import EXAMPLE_CLIP
from sscodec.stream.model import CodecModel

CORRELATION_THRESHOLD = 0.9  # median over 0.5 s windows after alignment; glitch-free windows give > 0.99
FRAME = 320


def best_correlation(piece: np.ndarray, segment: np.ndarray) -> float:
    """Highest cosine similarity of `piece` with any equally long stretch of `segment`."""
    piece, segment = piece.astype(np.float64), segment.astype(np.float64)
    dots = np.correlate(segment, piece, "valid")
    energy = np.convolve(segment**2, np.ones(piece.shape[0]), "valid")
    return float(np.max(dots / (np.linalg.norm(piece) * np.sqrt(energy) + 1e-12)))


def align(reference: np.ndarray, recording: np.ndarray) -> int:
    """Where `reference` starts in `recording` (negative if the recording began after it), by FFT."""
    size = 1 << int(np.ceil(np.log2(reference.shape[0] + recording.shape[0])))
    spectrum = np.fft.rfft(recording, size) * np.conj(np.fft.rfft(reference, size))
    peak = int(np.argmax(np.fft.irfft(spectrum, size)))
    return peak if peak < size // 2 else peak - size


def windowed_correlations(reference: np.ndarray, recording: np.ndarray, window: int = 8000,
                          slack: int = 4000) -> list[float]:
    """Each loud window of `reference` matched in `recording` within `slack` samples of the alignment.

    A device glitch shifts what follows it, so each window is matched on its own, not the whole at one lag.
    """
    lag = align(reference, recording)
    scores = []
    for start in range(0, reference.shape[0] - window + 1, window):
        piece = reference[start : start + window]
        lo, hi = lag + start - slack, lag + start + window + slack
        if np.sqrt(np.mean(piece**2)) < 1e-3 or lo < 0 or hi > recording.shape[0]:
            continue
        scores.append(best_correlation(piece, recording[lo:hi]))
    return scores


@pytest.fixture(scope="module")
def pulse() -> Iterator[dict[str, str]]:
    """A private PulseAudio server with sinks `codec_mic` (default source: its monitor) and `codec_speaker`."""
    missing = missing_tools(PULSE_TOOLS)
    if missing:
        pytest.skip(f"PulseAudio not installed ({', '.join(missing)} missing; {PULSE_HINT})")
    with pulse_null_sinks() as env:
        yield env


def speech_clip(folder: Path, seconds: tuple[float, float] = (3.0, 6.0)) -> Path:
    for path in sorted(folder.glob("*.flac")):
        if seconds[0] <= soundfile.info(path).duration <= seconds[1]:
            return path
    pytest.skip(f"no {seconds[0]}-{seconds[1]} s clip in {folder}")


def test_mic_round_trip_through_virtual_devices(pulse: dict[str, str], tiny_model: Path,  # noqa: F811
                                                telugu_val: Path, tmp_path: Path) -> None:
    clip_path = speech_clip(telugu_val)
    clip = read_audio(clip_path, 16000)
    duration = clip.shape[0] / 16000 + 3.0
    speaker = tmp_path / "speaker.wav"
    recorder = subprocess.Popen(["parecord", "--device=codec_speaker.monitor", "--rate=16000", "--channels=1",
                                 "--format=float32le", "--file-format=wav", str(speaker)], env=pulse)
    codec = subprocess.Popen(
        [sys.executable, "-c", "from sscodec.stream.cli import main; main()", "--mic", "--model", str(tiny_model),
         "--duration", f"{duration:.2f}", "--latency", "0.1", "--record-input", str(tmp_path / "in.wav"),
         "--record-output", str(tmp_path / "out.wav"), "--stats-json", str(tmp_path / "stats.json")],
        env=pulse, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    wait_for_capture(pulse, codec)  # play only once the codec listens, so the whole clip reaches it
    subprocess.run(["paplay", "--device=codec_mic", str(clip_path)], env=pulse, check=True, timeout=60)
    stdout, stderr = codec.communicate(timeout=duration + 60)
    time.sleep(0.3)
    recorder.terminate()
    recorder.wait(timeout=10)
    assert codec.returncode == 0, stderr
    assert "Traceback" not in stderr and "frames:" in stdout

    stats = json.loads((tmp_path / "stats.json").read_text())
    heard, _ = soundfile.read(tmp_path / "in.wav", dtype="float32")
    decoded, _ = soundfile.read(tmp_path / "out.wav", dtype="float32")
    expected_frames = duration * 1000 / 20
    assert 0.95 * expected_frames <= stats["frames"] <= expected_frames + 10  # stops within a 50 ms poll
    assert decoded.shape[0] == heard.shape[0] and stats["frames"] == -(-heard.shape[0] // FRAME)
    assert stats["codebooks"] == 12 and stats["bitrate_kbps"] == pytest.approx(6.0)
    assert 0 < stats["compute_ms"]["p50"] < 20 and 0 < stats["real_time_factor"] < 1
    assert stats["underflows"] + stats["overflows"] < 0.2 * stats["frames"], stats
    assert stats["live"]["device_rate_hz"] == 16000 and stats["live"]["resampler_delay_ms"] == 0  # no resampling

    # (1) The live path is the file path: same samples as the offline graphs on the recorded input.
    np.testing.assert_allclose(decoded, offline_decode(tiny_model, heard, 12)[: decoded.shape[0]], atol=1e-4)
    # (2) The microphone delivered the clip.
    mic_scores = windowed_correlations(clip, heard)
    assert len(mic_scores) >= 4 and np.median(mic_scores) > CORRELATION_THRESHOLD, mic_scores
    # (3) The speaker sink received the decoded audio.
    played, _ = soundfile.read(speaker, dtype="float32")
    # Only where the clip was heard: the random model's output for silence repeats every frame, so aligning
    # it would be ambiguous.
    start = max(align(clip, heard), 0)
    speech = decoded[start : start + clip.shape[0]]
    speaker_scores = windowed_correlations(speech, played)
    assert len(speaker_scores) >= 4 and np.median(speaker_scores) > CORRELATION_THRESHOLD, speaker_scores


SOAK_RUNS, SOAK_SECONDS = 3, 5.0  # CI-sized; `codec-bench live` runs 30 x 10 s per latency


def test_repeated_live_runs_end_only_when_asked(tiny_model: Path) -> None:  # noqa: F811
    if missing_tools(PULSE_TOOLS):
        pytest.skip(f"PulseAudio not installed ({PULSE_HINT})")
    frames_per_second = 1000 / CodecModel(tiny_model).info.frame_ms
    result = repeated_runs(str(tiny_model), None, SOAK_RUNS, SOAK_SECONDS)
    for row in result["rows"]:
        assert row["exit_code"] == 0, row  # a stall is bridged by reopening, not fatal
        assert row["frames"] >= 0.95 * SOAK_SECONDS * frames_per_second, row
        assert row["reopens"] == 0 or row["reopen_gap_ms"] > 0, row  # a reopening is counted with its glitch


def test_mic_when_the_sound_server_stops_ends_with_one_line_and_everything_written(tiny_model: Path,  # noqa: F811
                                                                                  telugu_val: Path,
                                                                                  tmp_path: Path) -> None:
    # Found from outside: each failed reopen after PulseAudio stopped printed PortAudio's and alsa-lib's C-level
    # diagnostics ("Expression 'ret' failed in 'src/hostapi/alsa/pa_linux_alsa.c'", "ALSA lib pulse.c: ...
    # Connection refused") above the run's one-line error.
    if missing_tools(PULSE_TOOLS):
        pytest.skip(f"PulseAudio not installed ({PULSE_HINT})")
    with pulse_null_sinks() as env:
        codec = subprocess.Popen(
            [sys.executable, "-c", "from sscodec.stream.cli import main; main()", "--mic", "--model",
             str(tiny_model), "--duration", "60", "--record-input", str(tmp_path / "in.wav"),
             "--stats-json", str(tmp_path / "stats.json")],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        wait_for_capture(env, codec)
        subprocess.run(["paplay", "--device=codec_mic", str(speech_clip(telugu_val))], env=env, check=True,
                       timeout=60)
        subprocess.run(["pulseaudio", "--kill"], env=env, check=True, timeout=30)
        try:
            stdout, stderr = codec.communicate(timeout=60)
        finally:
            codec.kill()
    assert codec.returncode == 1 and stderr.count("\n") == 1, stderr
    # Both endings were seen: the ALSA plugin's stream closes and every reopen fails until the 15 s are up, or
    # closing it blocks inside PortAudio (as with JACK) and the run ends after the 2 s close timeout.
    gone = stderr.startswith("codec-stream: error: no audio from the device for 15 s (disconnected, or its sound "
                             "server stopped?), and reopening did not help: cannot open the audio devices")
    hung = stderr.startswith("codec-stream: error: the audio device stopped responding: closing its stream hung")
    assert gone or hung, stderr
    stats = json.loads((tmp_path / "stats.json").read_text())
    heard, _ = soundfile.read(tmp_path / "in.wav", dtype="float32")
    assert stats["frames"] >= 100 and heard.shape[0] >= 100 * FRAME  # at least 2 s of the 3-6 s clip
    assert stats["live"]["reopens"] >= 2 if gone else stats["live"]["reopens"] == 0  # a hung close opens nothing
    assert stats["live"]["reopen_gap_ms"] >= (15000 if gone else 2000)
    assert "stream reopened:" in stdout


def test_a_mic_call_whose_sound_server_stops_prints_no_alsa_diagnostics(tiny_model: Path,  # noqa: F811
                                                                       tmp_path: Path) -> None:
    # Found from outside: a --mic call let alsa-lib's C-level lines ("ALSA lib pcm.c: ... underrun occurred") reach
    # stderr, where the loopback keeps them off. Stopping the sound server mid-call makes them for certain: every
    # reopen fails in C first ("ALSA lib pulse.c: ... Connection refused").
    if missing_tools(PULSE_TOOLS):
        pytest.skip(f"PulseAudio not installed ({PULSE_HINT})")
    speech = read_audio(EXAMPLE_CLIP, 16000)
    long_clip = tmp_path / "long.wav"
    soundfile.write(long_clip, np.tile(speech, -(-12 * 16000 // speech.shape[0]))[: 12 * 16000], 16000)
    answering, url, token = answer(["--input", str(long_clip), "--model", str(tiny_model)])
    with pulse_null_sinks() as env:
        calling = subprocess.Popen(
            [sys.executable, "-c", "from sscodec.stream.cli import main; main()", "--call", url, "--token", token,
             "--mic", "--model", str(tiny_model), "--stats-json", str(tmp_path / "stats.json")],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        try:
            wait_for_capture(env, calling)
            time.sleep(1.0)
            subprocess.run(["pulseaudio", "--kill"], env=env, check=True, timeout=30)
            stdout, stderr = calling.communicate(timeout=90)
        finally:
            calling.kill()
            answering.interrupt()
            answering.finish(30)
    assert "ALSA" not in stderr and "Expression" not in stderr, stderr
    assert stderr == "" or (stderr.startswith("codec-stream: error: ") and stderr.count("\n") == 1), stderr
    assert "call ended: " in stdout, stdout
    stats = json.loads((tmp_path / "stats.json").read_text())
    assert stats["call"]["device_reopens"] >= 1 or stats["call"]["ended_by"] != "end of the peer's stream", stats
    assert isinstance(stats["call"]["capture_skipped"], int) and stats["call"]["capture_skipped"] >= 0
