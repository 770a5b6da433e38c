"""End to end `codec-stream --mic` on a JACK server that runs at 48 kHz only (the dummy backend).

A device that accepts no 16 kHz stream must be opened at its own rate and resampled in the stream. The test
starts its own named JACK server (so it cannot disturb another one) and a `jack_metro` client ticking a 1 kHz
tone burst five times a second; PortAudio's JACK host API offers each client as a device, so the codec's
microphone is the metronome and its speaker the server's playback ports. Checked: no device error, the
recordings and stats are written, the codec heard the ticks at their period, and the live path equals the
offline graphs on what it heard.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import psutil
import pytest
import soundfile
from test_stream_engine import offline_decode
from test_stream_model import tiny_model  # noqa: F401 -- the fixture

from sscodec.benchmarks.sound_servers import JACK_HINT, JACK_TOOLS, jack_dummy, missing_tools

TICK_PERIOD_S = 0.2  # jack_metro at 300 beats per minute
FRAME = 320


@pytest.fixture(scope="module")
def jack() -> Iterator[dict[str, str]]:
    """A private JACK server (dummy backend, 48 kHz, 960-sample periods) with a metronome client `codec_ticks`."""
    missing = missing_tools(JACK_TOOLS)
    if missing:
        pytest.fail(f"JACK not installed ({', '.join(missing)} missing): {JACK_HINT}")
    with jack_dummy(48000, 960, metro_bpm=int(60 / TICK_PERIOD_S)) as env:
        yield env


def test_mic_on_a_48khz_only_jack_server(jack: dict[str, str], tiny_model: Path, tmp_path: Path) -> None:  # noqa: F811
    listing = subprocess.run([sys.executable, "-c", "from sscodec.stream.cli import main; main()", "--list-devices"],
                             env=jack, capture_output=True, text=True, timeout=60, check=False)
    assert listing.returncode == 0 and "codec_ticks, JACK Audio Connection Kit" in listing.stdout
    assert "default 48000 Hz" in listing.stdout
    duration = 4.0
    done = subprocess.run(
        [sys.executable, "-c", "from sscodec.stream.cli import main; main()", "--mic", "--model", str(tiny_model),
         "--input-device", "codec_ticks", "--output-device", "system", "--duration", str(duration),
         "--record-input", str(tmp_path / "in.wav"), "--record-output", str(tmp_path / "out.wav"),
         "--stats-json", str(tmp_path / "stats.json")],
        env=jack, capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert "device: 48000 Hz" in done.stdout

    stats = json.loads((tmp_path / "stats.json").read_text())
    live = stats["live"]
    assert live["device_rate_hz"] == 48000 and live["reopens"] == 0
    assert live["resampler_delay_ms"] > 0 and 0 < live["output_latency_ms"] < 1000
    expected_frames = duration * 1000 / 20
    assert 0.95 * expected_frames <= stats["frames"] <= expected_frames + 10
    assert 0 < stats["compute_ms"]["p50"] < 20 and 0 < stats["real_time_factor"] < 1
    assert stats["underflows"] + stats["overflows"] < 0.2 * stats["frames"], stats

    heard, rate = soundfile.read(tmp_path / "in.wav", dtype="float32")
    decoded, _ = soundfile.read(tmp_path / "out.wav", dtype="float32")
    # The output recording is all that was heard (the partial chunk at the stop decoded too).
    assert rate == 16000 and decoded.shape[0] == heard.shape[0] and stats["frames"] == -(-heard.shape[0] // FRAME)
    # The ticks came through the 48 -> 16 kHz resampler: loud, and their energy repeats at the metronome's period.
    assert 0.3 < np.abs(heard).max() <= 0.55
    energy = heard[: 2 * rate].astype(np.float64) ** 2
    autocorrelation = np.correlate(energy, energy, "full")[energy.shape[0] - 1 :]
    period = int(TICK_PERIOD_S * rate)
    assert abs(int(np.argmax(autocorrelation[period // 2 :])) + period // 2 - period) <= 16
    # The live path is the file path on what it heard.
    np.testing.assert_allclose(decoded, offline_decode(tiny_model, heard, 12), atol=1e-4)


@pytest.mark.parametrize(("device", "problem"), [
    # Found from outside: the first line of sounddevice's message only, without the devices that matched.
    ("JACK", ("Multiple input devices found for 'JACK': [0] system, JACK Audio Connection Kit; [1] codec_ticks, "
              "JACK Audio Connection Kit")),
    ("99", "Error querying device 99; the devices are numbered 0 to 1"),
])
def test_an_ambiguous_or_unknown_device_says_which_exist(jack: dict[str, str], tiny_model: Path,  # noqa: F811
                                                         device: str, problem: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", "from sscodec.stream.cli import main; main()", "--mic", "--model", str(tiny_model),
         "--input-device", device, "--duration", "1"],
        env=jack, capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 1 and done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith(f"codec-stream: error: cannot use the audio devices ({problem}): pick devices")


def test_mic_when_the_jack_server_dies_ends_in_seconds_with_everything_written(tiny_model: Path,  # noqa: F811
                                                                               tmp_path: Path) -> None:
    # Found from outside: killing jackd during --mic left codec-stream blocked inside PortAudio for about 10 minutes,
    # deaf to Ctrl-C, and it then died with no recording or stats written.
    with jack_dummy(48000, 960, metro_bpm=int(60 / TICK_PERIOD_S)) as env:
        (server,) = (p for p in psutil.process_iter(["name", "cmdline"])
                     if p.info["name"] == "jackd" and env["JACK_DEFAULT_SERVER"] in (p.info["cmdline"] or []))
        run = subprocess.Popen(
            [sys.executable, "-c", "from sscodec.stream.cli import main; main()", "--mic", "--model", str(tiny_model),
             "--input-device", "codec_ticks", "--output-device", "system", "--duration", "60",
             "--record-input", str(tmp_path / "in.wav"), "--record-output", str(tmp_path / "out.wav"),
             "--stats-json", str(tmp_path / "stats.json")],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        time.sleep(4)  # started (about 1 s) and streaming
        server.kill()
        killed = time.monotonic()
        try:
            out, err = run.communicate(timeout=60)
        finally:
            run.kill()
    assert time.monotonic() - killed < 15  # measured: 2.2 s (the 2 s close timeout)
    assert run.returncode == 1 and err.count("\n") == 1, err
    assert err.startswith("codec-stream: error: the audio device stopped responding: closing its stream hung")
    stats = json.loads((tmp_path / "stats.json").read_text())
    heard, _ = soundfile.read(tmp_path / "in.wav", dtype="float32")
    decoded, _ = soundfile.read(tmp_path / "out.wav", dtype="float32")
    assert stats["frames"] >= 50 and decoded.shape == heard.shape and heard.shape[0] >= 50 * FRAME
    assert np.abs(heard).max() > 0.3  # the ticks were heard before the server died
    assert "stream reopened: 0 times (" in out  # the close hung: nothing was opened again


def test_a_killed_jack_server_leaves_no_registration_behind() -> None:
    # Found from outside: each SIGKILLed server kept one of JACK's 8 registry slots (its name is unique per run), so
    # after about eight test runs on one machine no JACK server could start ("Too many servers already active").
    with jack_dummy(48000, 960, metro_bpm=300) as env:
        name = env["JACK_DEFAULT_SERVER"]
        (server,) = (p for p in psutil.process_iter(["name", "cmdline"])
                     if p.info["name"] == "jackd" and name in (p.info["cmdline"] or []))
        server.kill()
        server.wait(timeout=10)
    assert name.encode() not in Path("/dev/shm/jack-shm-registry").read_bytes()
    assert [path.name for path in Path("/dev/shm").iterdir() if name in path.name] == []
