"""PortAudio through sounddevice, imported only when a sound card is needed, with one-line errors."""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
from collections.abc import Iterator
from types import ModuleType
from typing import Any

from sscodec.common.errors import AudioDeviceError, first_line

INSTALL_HINT = "install PortAudio (Debian/Ubuntu: sudo apt-get install libportaudio2; macOS: brew install portaudio)"
DEVICE_HINT = "pick devices with --input-device/--output-device (see codec-stream --list-devices)"


def sounddevice() -> ModuleType:
    """The sounddevice module; AudioDeviceError if PortAudio is missing."""
    try:
        import sounddevice as sd
    except OSError as error:  # sounddevice raises OSError when it cannot load the PortAudio library
        raise AudioDeviceError(f"PortAudio not found ({first_line(error)}): {INSTALL_HINT}") from None
    return sd


def abandon_portaudio() -> None:
    """Skip sounddevice's exit-time clean-up (stop and close the last stream, then Pa_Terminate).

    For a process whose stream hung inside PortAudio (`stream.live.ReopeningStream.hung`): that clean-up blocks on
    the same stream, and the process would not exit for minutes after it wrote everything. The operating system
    releases the device when the process ends. `_exit_handler` is sounddevice's own (0.4 and 0.5) atexit hook.
    """
    atexit.unregister(sounddevice()._exit_handler)


@contextlib.contextmanager
def c_stderr_silenced() -> Iterator[None]:
    """File descriptor 2 to /dev/null for the duration, while Python's `sys.stderr` keeps writing to the real
    stderr (through a copy of the descriptor): PortAudio's ALSA host API and alsa-lib print several lines from C
    ("Expression 'ret' failed in 'src/hostapi/alsa/pa_linux_alsa.c'", "ALSA lib pulse.c: ... Connection refused",
    "ALSA lib pcm.c: ... underrun occurred") for every open that fails, which is how a stream is reopened after its
    sound server stopped, and for every glitch. The failure itself still arrives as a PortAudio error, reported
    in one line; what Python prints (a call's progress on stderr) still shows.
    """
    python_stderr = sys.stderr
    try:  # only a sys.stderr on descriptor 2 needs the copy (not one that a test or an embedding program replaced)
        on_descriptor_2 = python_stderr is not None and python_stderr.fileno() == 2
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is both
        on_descriptor_2 = False
    if python_stderr is not None:
        python_stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        if on_descriptor_2:
            sys.stderr = open(saved, "w", buffering=1, closefd=False,  # noqa: SIM115 -- closed below
                              encoding=python_stderr.encoding, errors=python_stderr.errors)
        yield
    finally:
        if sys.stderr is not python_stderr:
            sys.stderr.close()
            sys.stderr = python_stderr
        os.dup2(saved, 2)
        os.close(saved)


NO_DEVICE_HINT = "no audio devices found: connect one, or start a sound server (PulseAudio or PipeWire)"


def list_devices() -> str:
    """PortAudio's device table, marking the default input (>) and output (<), with each default sample rate."""
    sd = sounddevice()
    try:
        table = sd.query_devices()
    except sd.PortAudioError as error:
        raise AudioDeviceError(f"cannot list audio devices ({first_line(error)}): {INSTALL_HINT}") from None
    if len(table) == 0:
        raise AudioDeviceError(NO_DEVICE_HINT)
    # sounddevice prints one line per device, in order; the default rate is what a device runs at natively.
    return "\n".join(
        f"{line}, default {device['default_samplerate']:g} Hz" for line, device in zip(str(table).splitlines(), table)
    )


def supported_rate(devices: tuple[Any, Any], preferred: int) -> int:
    """The sample rate to open the (input, output) devices at, in Hz: `preferred` if both accept it, else the
    input device's default rate, else the output device's.

    A duplex stream runs both devices at one rate; sound servers (PulseAudio, PipeWire) accept any, while JACK,
    ASIO, WASAPI exclusive and many USB interfaces on raw ALSA accept only the rate they run at.
    AudioDeviceError if PortAudio is missing, a device is unknown, the two are on different host APIs (ALSA and
    JACK, say), or no candidate suits both.
    """
    sd = sounddevice()
    list_devices()  # no devices at all deserves its own message, not PortAudio's "Error querying device -1"
    try:
        chosen = [sd.query_devices(device, kind) for device, kind in zip(devices, ("input", "output"))]
    except (sd.PortAudioError, ValueError) as error:
        raise AudioDeviceError(f"cannot use the audio devices ({_device_problem(error, devices)}): "
                               f"{DEVICE_HINT}") from None
    if chosen[0]["hostapi"] != chosen[1]["hostapi"]:
        # PortAudio opens a duplex stream through one host API; across two it says only "Illegal combination of
        # I/O devices", which is also what a stopped sound server gives.
        named = [f"{kind} device {info['name']!r} is on {sd.query_hostapis(info['hostapi'])['name']}"
                 for kind, info in zip(("input", "output"), chosen)]
        raise AudioDeviceError(f"the {named[0]} and the {named[1]}; a duplex stream needs both on one host API: "
                               f"{DEVICE_HINT}")
    defaults = [int(info["default_samplerate"]) for info in chosen]
    problems = []
    for rate in dict.fromkeys([preferred, *defaults]):
        try:
            sd.check_input_settings(device=devices[0], channels=1, dtype="float32", samplerate=rate)
            sd.check_output_settings(device=devices[1], channels=1, dtype="float32", samplerate=rate)
            return rate
        except (sd.PortAudioError, ValueError) as error:
            problems.append(f"{rate} Hz: {first_line(error)}")
    raise AudioDeviceError(f"no sample rate suits both audio devices ({'; '.join(problems)}): {DEVICE_HINT}")


def _device_problem(error: Exception, devices: tuple[Any, Any]) -> str:
    """sounddevice's complaint about a device choice as one line: a name that matches several devices keeps the
    list of matches (sounddevice puts one per line), and an index out of range says which indices exist."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    text = lines[0] + (" " + "; ".join(lines[1:]) if len(lines) > 1 else "") if lines else type(error).__name__
    count = len(sounddevice().query_devices())
    if any(isinstance(d, int) and not 0 <= d < count for d in devices):
        text += f"; the devices are numbered 0 to {count - 1}"
    return text
