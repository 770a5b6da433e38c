"""PortAudio through sounddevice, imported only when a sound card is needed, with one-line errors."""

from __future__ import annotations

from types import ModuleType

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


NO_DEVICE_HINT = "no audio devices found: connect one, or start a sound server (PulseAudio or PipeWire)"


def list_devices() -> str:
    """PortAudio's device table, marking the default input (>) and output (<)."""
    sd = sounddevice()
    try:
        table = sd.query_devices()
    except sd.PortAudioError as error:
        raise AudioDeviceError(f"cannot list audio devices ({first_line(error)}): {INSTALL_HINT}") from None
    if len(table) == 0:
        raise AudioDeviceError(NO_DEVICE_HINT)
    return str(table)

