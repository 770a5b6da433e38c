"""Device choice against a scripted PortAudio device table (sounddevice's query and check calls): what a machine
with several host APIs offers, which this test machine's sound servers cannot show at once."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from sscodec.common.errors import AudioDeviceError
from sscodec.stream import devices

HOST_APIS = [{"name": "ALSA"}, {"name": "JACK Audio Connection Kit"}]
TABLE = [  # name, host API, default rate
    {"name": "USB Audio: - (hw:1,0)", "hostapi": 0, "default_samplerate": 48000.0},
    {"name": "pulse", "hostapi": 0, "default_samplerate": 44100.0},
    {"name": "system", "hostapi": 1, "default_samplerate": 48000.0},
]


class PortAudioError(Exception):
    pass


def fake_sounddevice(accepts: dict[str, set[int]]) -> SimpleNamespace:
    """sounddevice over TABLE; `accepts`: the rates each device opens at (PortAudio refuses others)."""
    def query_devices(device: Any = None, kind: str | None = None) -> Any:
        if device is None and kind is None:
            return TABLE
        return TABLE[device]

    def check(device: int, samplerate: int, **_: Any) -> None:
        if samplerate not in accepts[TABLE[device]["name"]]:
            raise PortAudioError("Invalid sample rate [PaErrorCode -9997]")

    return SimpleNamespace(query_devices=query_devices, query_hostapis=lambda index: HOST_APIS[index],
                           check_input_settings=check, check_output_settings=check, PortAudioError=PortAudioError)


@pytest.fixture
def portaudio(monkeypatch: pytest.MonkeyPatch) -> None:
    sd = fake_sounddevice({"USB Audio: - (hw:1,0)": {48000}, "pulse": {16000, 44100, 48000}, "system": {48000}})
    monkeypatch.setattr(devices, "sounddevice", lambda: sd)
    monkeypatch.setattr(devices, "list_devices", lambda: "")


def test_the_model_rate_when_both_devices_take_it(portaudio: None) -> None:
    assert devices.supported_rate((1, 1), 16000) == 16000


def test_a_device_that_refuses_the_model_rate_runs_at_its_own(portaudio: None) -> None:
    assert devices.supported_rate((0, 1), 16000) == 48000


def test_devices_on_two_host_apis_are_refused_by_name(portaudio: None) -> None:
    """PortAudio opens a duplex stream through one host API; across two it says only "Illegal combination of I/O
    devices", the same words as for a sound server that stopped (found from outside)."""
    with pytest.raises(AudioDeviceError) as refused:
        devices.supported_rate((0, 2), 16000)
    assert str(refused.value) == (
        "the input device 'USB Audio: - (hw:1,0)' is on ALSA and the output device 'system' is on JACK Audio "
        f"Connection Kit; a duplex stream needs both on one host API: {devices.DEVICE_HINT}")
