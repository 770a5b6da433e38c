"""The Opus reference: a clip through libopus comes back at its rate with exactly its length, at the bits asked."""

from __future__ import annotations

import numpy as np
import pytest

from sscodec.benchmarks.opus import opus_roundtrip, opus_version
from sscodec.export.probe import probe_signal


def test_the_binding_names_its_libopus() -> None:
    version = opus_version()
    assert version is not None and version.startswith("libopus ")


@pytest.mark.parametrize("kbps", [6, 16])
def test_roundtrip_keeps_length_alignment_and_bitrate(kbps: int) -> None:
    clip = probe_signal(16000, 3.2345)
    result = opus_roundtrip(clip, 16000, kbps)
    assert result.audio.shape == clip.shape and result.audio.dtype == np.float32
    # The decoded clip is the input, coded: aligned (no pre-skip left in) and clearly correlated.
    lag = np.argmax(np.correlate(result.audio, clip, "full")) - (clip.size - 1)
    assert abs(lag) <= 2
    assert np.corrcoef(result.audio, clip)[0, 1] > 0.5
    # VBR with an Ogg container: the real rate is near the target, never a multiple of it.
    real_kbps = 8 * result.file_bytes / (clip.size / 16000) / 1000
    assert 0.5 * kbps < real_kbps < 1.6 * kbps
