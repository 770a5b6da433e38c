"""Private sound servers with virtual devices, for live tests and benchmarks that need no sound card.

Each server is started by us under its own name (its own PulseAudio runtime directory, its own JACK server name),
so it cannot disturb a server someone else runs on the machine; the environment it yields points clients at it.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

PULSE_TOOLS = ("pulseaudio", "pactl", "paplay", "parecord", "parec")
PULSE_HINT = "Debian: apt-get install pulseaudio pulseaudio-utils libasound2-plugins libportaudio2"
PIPEWIRE_TOOLS = ("pipewire", "pipewire-pulse", "wireplumber", "pw-metadata", "dbus-daemon", "pactl", "paplay",
                  "parec")
PIPEWIRE_HINT = ("Debian: apt-get install pipewire pipewire-pulse wireplumber dbus-daemon pulseaudio-utils "
                 "(listed in requirements/system.txt)")
JACK_TOOLS = ("jackd", "jack_lsp", "jack_metro", "jack_rec")
JACK_HINT = "Debian: apt-get install jackd2 (listed in requirements/system.txt; scripts/setup.sh installs it)"


# split_stereo_sink's devices.
PAIR_SINK, MIC_SINK, SPEAKER_SINK, MIC_SOURCE = "codec_pair", "codec_mic", "codec_speaker", "codec_mic_in"


class SoundServerError(RuntimeError):
    """A sound server that is not installed or did not come up."""


def missing_tools(tools: tuple[str, ...]) -> list[str]:
    return [tool for tool in tools if shutil.which(tool) is None]


@contextmanager
def pulseaudio_server() -> Iterator[dict[str, str]]:
    """A private PulseAudio server (no devices of its own); yields the environment that points clients at it."""
    missing = missing_tools(PULSE_TOOLS)
    if missing:
        raise SoundServerError(f"PulseAudio not installed ({', '.join(missing)} missing; {PULSE_HINT})")
    runtime = Path(tempfile.mkdtemp(prefix="codec-pulse-"))
    env = {**os.environ, "XDG_RUNTIME_DIR": str(runtime), "PULSE_SERVER": f"unix:{runtime}/pulse/native"}
    subprocess.run(["pulseaudio", "-D", "--exit-idle-time=-1", "-n", "--load=module-native-protocol-unix",
                    f"--log-target=file:{runtime}/pulse.log"], env=env, check=True, timeout=30)
    try:
        _wait_for(lambda: _pulse_answers(env), None, "the PulseAudio server")
        yield env
    finally:
        subprocess.run(["pulseaudio", "--kill"], env=env, check=False, capture_output=True, timeout=30)
        # --kill only signals the daemon: one still exiting may write into the folder after it is removed.
        with contextlib.suppress(SoundServerError):
            _wait_for(lambda: not _pulse_runs(env), None, "the PulseAudio server's exit", timeout_s=10.0)
        shutil.rmtree(runtime, ignore_errors=True)


def _pulse_runs(env: dict[str, str]) -> bool:
    return subprocess.run(["pulseaudio", "--check"], env=env, capture_output=True, check=False,
                          timeout=30).returncode == 0


@contextmanager
def pipewire_server() -> Iterator[dict[str, str]]:
    """A private PipeWire server with its PulseAudio layer, no systemd: a session D-Bus of its own (WirePlumber
    exits without one), `pipewire`, `wireplumber` (the session manager that links streams to devices) and
    `pipewire-pulse`, all under a private XDG_RUNTIME_DIR; yields the environment that points PulseAudio clients
    (pactl, paplay, PortAudio through ALSA's pulse plugin) at it."""
    missing = missing_tools(PIPEWIRE_TOOLS)
    if missing:
        raise SoundServerError(f"PipeWire not installed ({', '.join(missing)} missing; {PIPEWIRE_HINT})")
    runtime = Path(tempfile.mkdtemp(prefix="codec-pipewire-"))
    runtime.chmod(0o700)
    env = {**os.environ, "XDG_RUNTIME_DIR": str(runtime), "PULSE_SERVER": f"unix:{runtime}/pulse/native",
           "DBUS_SESSION_BUS_ADDRESS": f"unix:path={runtime}/bus", "PIPEWIRE_RUNTIME_DIR": str(runtime)}
    commands = [["dbus-daemon", "--session", f"--address={env['DBUS_SESSION_BUS_ADDRESS']}", "--nofork"],
                ["pipewire"], ["wireplumber"], ["pipewire-pulse"]]
    # Each needs the one before it: the bus, then the graph that the session manager and the Pulse layer join.
    ready_when = {"dbus-daemon": runtime / "bus", "pipewire": runtime / "pipewire-0"}
    processes: list[tuple[str, subprocess.Popen]] = []
    try:
        for command in commands:
            # Logs go to files: WirePlumber writes on stderr as it runs, and a pipe nobody reads would block it.
            with open(runtime / f"{command[0]}.log", "w") as log:
                processes.append((command[0], subprocess.Popen(command, env=env, stdout=log, stderr=log)))
            if command[0] in ready_when:
                _wait_for(ready_when[command[0]].exists, processes[-1][1], command[0])
        _wait_for(lambda: _pulse_answers(env), processes[-1][1], "pipewire-pulse")
        exited = [name for name, process in processes if process.poll() is not None]
        if exited:
            raise SoundServerError(f"PipeWire: {exited[0]} exited")
        yield env
    except SoundServerError as error:
        logs = "; ".join(f"{name}: {(runtime / f'{name}.log').read_text().strip()[-200:]}"
                         for name, process in processes if process.poll() is not None)
        raise SoundServerError(f"{error} ({logs})" if logs else str(error)) from None
    finally:
        for _, process in reversed(processes):
            process.terminate()
            process.wait(timeout=10)
        shutil.rmtree(runtime, ignore_errors=True)


PULSE_SERVERS = {"pulseaudio": pulseaudio_server, "pipewire": pipewire_server}


def _pulse_answers(env: dict[str, str]) -> bool:
    return subprocess.run(["pactl", "info"], env=env, capture_output=True, check=False, timeout=30).returncode == 0


def _pactl(env: dict[str, str], *args: str) -> None:
    subprocess.run(["pactl", *args], env=env, check=True, capture_output=True, timeout=30)


@contextmanager
def pulse_null_sinks(rate: int = 16000, server: str = "pulseaudio") -> Iterator[dict[str, str]]:
    """A private `server` (a key of PULSE_SERVERS) with null sinks `codec_mic` (default source: its monitor) and
    `codec_speaker` (the default sink), each mono at `rate` Hz; yields the environment that points clients at it."""
    with PULSE_SERVERS[server]() as env:
        for name in ("codec_mic", "codec_speaker"):
            _pactl(env, "load-module", "module-null-sink", f"sink_name={name}", f"rate={rate}", "channels=1")
        _pactl(env, "set-default-source", "codec_mic.monitor")
        _pactl(env, "set-default-sink", "codec_speaker")
        yield env


def split_stereo_sink(env: dict[str, str], rate: int) -> None:
    """Virtual devices for a sample-synchronous delay measurement, on a PulseAudio (or pipewire-pulse) server.

    One stereo null sink PAIR_SINK at `rate` Hz; a mono sink MIC_SINK that plays into its left channel and a mono
    sink SPEAKER_SINK into its right (`module-remap-sink`); a mono source MIC_SOURCE, the left channel of its
    monitor (`module-remap-source`), made the default source, and SPEAKER_SINK the default sink. What is played
    into MIC_SINK is what a client recording MIC_SOURCE hears; recording PAIR_SINK's monitor gives that signal on
    the left and whatever was played into SPEAKER_SINK on the right, rendered by one sink in one pass, so the
    offset between the channels is exact to the sample.
    """
    _pactl(env, "load-module", "module-null-sink", f"sink_name={PAIR_SINK}", f"rate={rate}", "channels=2",
           "channel_map=front-left,front-right")
    for sink, channel in ((MIC_SINK, "front-left"), (SPEAKER_SINK, "front-right")):
        _pactl(env, "load-module", "module-remap-sink", f"sink_name={sink}", f"master={PAIR_SINK}", "channels=1",
               f"master_channel_map={channel}", "channel_map=mono", "remix=no")
    _pactl(env, "load-module", "module-remap-source", f"source_name={MIC_SOURCE}", f"master={PAIR_SINK}.monitor",
           "channels=1", "master_channel_map=front-left", "channel_map=mono", "remix=no")
    _pactl(env, "set-default-source", MIC_SOURCE)
    _pactl(env, "set-default-sink", SPEAKER_SINK)


def hold_pipewire_quantum(env: dict[str, str]) -> int:
    """Pin the graph's quantum (its processing block, in samples at the graph's rate) of the PipeWire server at
    `env` to its configured default `clock.quantum` (`clock.force-quantum` in the "settings" metadata); returns it.

    PipeWire otherwise re-sizes the quantum to what its clients ask for, and every loopback or device buffer in
    the graph then moves with it: a client asking for 2 ms joining halfway through moved a 40 ms
    `module-loopback` from 50.6 to 45.4 ms; a measured delay is exact only while the quantum holds.
    Raises SoundServerError when `pw-metadata` has no clock.quantum."""
    settings = subprocess.run(["pw-metadata", "-n", "settings"], env=env, capture_output=True, text=True,
                              check=True, timeout=30).stdout
    found = re.search(r"key:'clock\.quantum' value:'(\d+)'", settings)
    if not found:
        raise SoundServerError("PipeWire: pw-metadata shows no clock.quantum to hold")
    subprocess.run(["pw-metadata", "-n", "settings", "0", "clock.force-quantum", found[1]], env=env,
                   capture_output=True, check=True, timeout=30)
    return int(found[1])


@contextmanager
def pulse_loopback(env: dict[str, str], latency_ms: int) -> Iterator[None]:
    """`module-loopback` from MIC_SOURCE to SPEAKER_SINK at its target latency `latency_ms` (a delay of known
    size, to check a measurement against), unloaded on exit."""
    done = subprocess.run(["pactl", "load-module", "module-loopback", f"source={MIC_SOURCE}",
                           f"sink={SPEAKER_SINK}", f"latency_msec={latency_ms}"], env=env, check=True,
                          capture_output=True, text=True, timeout=30)
    try:
        yield
    finally:
        _pactl(env, "unload-module", done.stdout.strip())


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
    command = ["jackd", "-n", name, "--no-realtime", "-d", "dummy", "-r", str(rate), "-p", str(period)]
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
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
        died = server.poll() is not None  # before we stopped it: killed (by a test) or crashed
        for process in (metro, server):
            if process is not None:
                process.terminate()
                process.wait(timeout=10)
        if died:
            _release_killed_jack_server(command, env)


def _release_killed_jack_server(command: list[str], env: dict[str, str]) -> None:
    """Free what a jackd that died (SIGKILL) left in /dev/shm (a test kills one to play a dying sound server).

    JACK keeps at most 8 servers in its shared registry (jack2 `common/shm.c`, MAX_SERVERS) and reclaims a dead
    server's slot only when a server of the same name registers again, so every killed server with a unique name
    holds a slot for good, and the ninth test run could not start JACK ("Too many servers already active"). Starting
    the same name again and stopping it cleanly reclaims the slot and the server's segments; its clients' semaphore
    files (named after the server, which is ours alone) are removed by hand, as nothing else ever will.
    """
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(lambda: "system:" in jack_ports(env), server, "the JACK server (restarted to free its registration)")
    finally:
        server.terminate()
        server.wait(timeout=10)
    for leftover in Path("/dev/shm").glob(f"jack_sem.*_{env['JACK_DEFAULT_SERVER']}_*"):
        leftover.unlink(missing_ok=True)


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
