"""The Opus wrapper: a clip through opusenc/opusdec comes back at 16 kHz with exactly its length."""

from __future__ import annotations

import numpy as np
import pytest

from sscodec.benchmarks.opus import commands, opus_missing, opus_roundtrip
from sscodec.export.probe import probe_signal


@pytest.mark.skipif(opus_missing() is not None, reason=f"{opus_missing()}")
@pytest.mark.parametrize("kbps", [6, 16])
def test_roundtrip_keeps_length(kbps: int) -> None:
    clip = probe_signal(16000, 1.2345)
    result = opus_roundtrip(clip, 16000, kbps)
    assert result.decoded_samples == clip.size and result.audio.shape == clip.shape
    # The decoded clip is the input, coded: aligned (no pre-skip left in) and clearly correlated.
    lag = np.argmax(np.correlate(result.audio, clip, "full")) - (clip.size - 1)
    assert abs(lag) <= 2
    assert np.corrcoef(result.audio, clip)[0, 1] > 0.5


def test_commands_name_the_settings() -> None:
    encode, decode = commands(8)
    assert encode.startswith("opusenc --bitrate 8 --hard-cbr --framesize 20")
    assert decode.startswith("opusdec --rate 16000")
