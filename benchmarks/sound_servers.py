"""Private sound servers with virtual devices, for live tests and benchmarks that need no sound card.

Each server is started by us under its own name (its own PulseAudio runtime directory, its own JACK server name),
so it cannot disturb a server someone else runs on the machine; the environment it yields points clients at it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

PULSE_TOOLS = ("pulseaudio", "pactl", "paplay", "parecord")
PULSE_HINT = "Debian: apt-get install pulseaudio pulseaudio-utils libasound2-plugins libportaudio2"
JACK_TOOLS = ("jackd", "jack_lsp", "jack_metro", "jack_rec")
JACK_HINT = "Debian: apt-get install jackd2 (listed in requirements/system.txt; scripts/setup.sh installs it)"


class SoundServerError(RuntimeError):
    """A sound server that is not installed or did not come up."""


def missing_tools(tools: tuple[str, ...]) -> list[str]:
    return [tool for tool in tools if shutil.which(tool) is None]


@contextmanager
def pulse_null_sinks(rate: int = 16000) -> Iterator[dict[str, str]]:
    """A private PulseAudio server with null sinks `codec_mic` (default source: its monitor) and
    `codec_speaker` (the default sink); yields the environment that points clients at it."""
    missing = missing_tools(PULSE_TOOLS)
    if missing:
        raise SoundServerError(f"PulseAudio not installed ({', '.join(missing)} missing; {PULSE_HINT})")
    runtime = Path(tempfile.mkdtemp(prefix="codec-pulse-"))
    env = {**os.environ, "XDG_RUNTIME_DIR": str(runtime), "PULSE_SERVER": f"unix:{runtime}/pulse/native"}
    subprocess.run(["pulseaudio", "-D", "--exit-idle-time=-1", "-n", "--load=module-native-protocol-unix",
                    f"--log-target=file:{runtime}/pulse.log"], env=env, check=True, timeout=30)
    try:
        _wait_for(lambda: subprocess.run(["pactl", "info"], env=env, capture_output=True, check=False).returncode == 0,
                  None, "the PulseAudio server")
        for name in ("codec_mic", "codec_speaker"):
            subprocess.run(["pactl", "load-module", "module-null-sink", f"sink_name={name}", f"rate={rate}",
                            "channels=1"], env=env, check=True, capture_output=True, timeout=30)
        subprocess.run(["pactl", "set-default-source", "codec_mic.monitor"], env=env, check=True, timeout=30)
        subprocess.run(["pactl", "set-default-sink", "codec_speaker"], env=env, check=True, timeout=30)
        yield env
    finally:
        subprocess.run(["pulseaudio", "--kill"], env=env, check=False, capture_output=True, timeout=30)
        shutil.rmtree(runtime, ignore_errors=True)


def wait_for_capture(env: dict[str, str], codec: subprocess.Popen, timeout_s: float = 30.0) -> None:
    """Block until a client records from the PulseAudio server (the codec's input stream is open)."""
    def recording() -> bool:
        return bool(subprocess.run(["pactl", "list", "short", "source-outputs"], env=env, capture_output=True,
                                   text=True, check=False, timeout=30).stdout.strip())

    _wait_for(recording, codec, "codec-stream's input stream", timeout_s)
    time.sleep(0.3)


@contextmanager
def jack_dummy(rate: int = 48000, period: int = 960, metro_bpm: int | None = None) -> Iterator[dict[str, str]]:
    """A private JACK server on the dummy backend (it runs at `rate` only), optionally with a `jack_metro`
    client `codec_ticks` (a 20 ms 1 kHz tone burst at amplitude 0.5, `metro_bpm` times a minute); yields the
    environment that points clients at it."""
    missing = missing_tools(JACK_TOOLS)
    if missing:
        raise SoundServerError(f"JACK not installed ({', '.join(missing)} missing): {JACK_HINT}")
    name = f"codec-{os.getpid()}-{time.monotonic_ns()}"
    env = {**os.environ, "JACK_DEFAULT_SERVER": name, "JACK_NO_AUDIO_RESERVATION": "1"}
    server = subprocess.Popen(["jackd", "-n", name, "--no-realtime", "-d", "dummy", "-r", str(rate), "-p",
                               str(period)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    metro = None
    try:
        _wait_for(lambda: "system:" in jack_ports(env), server, "the JACK server")
        if metro_bpm is not None:
            metro = subprocess.Popen(["jack_metro", "-n", "codec_ticks", "-b", str(metro_bpm), "-f", "1000", "-A",
                                      "0.5", "-D", "20"], env=env, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
            _wait_for(lambda: "codec_ticks:" in jack_ports(env), server, "jack_metro")
        yield env
    finally:
        for process in (metro, server):
            if process is not None:
                process.terminate()
                process.wait(timeout=10)


def jack_ports(env: dict[str, str]) -> str:
    """`jack_lsp`'s port list (empty while the server is not up)."""
    return subprocess.run(["jack_lsp"], env=env, capture_output=True, text=True, check=False, timeout=30).stdout


def _wait_for(ready: Callable[[], bool], process: subprocess.Popen | None, what: str, timeout_s: float = 20.0) -> None:
    """Poll `ready` until true; SoundServerError if `process` exits first or the time runs out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise SoundServerError(f"{what}: process exited ({(process.communicate()[1] or '').strip()[-500:]})")
        if ready():
            return
        time.sleep(0.1)
    raise SoundServerError(f"{what} did not come up within {timeout_s:g} s")
