"""A live source's packets numbered by capture time: a hole in what the device delivered skips sequence numbers;
scheduling noise, audio still queued and a drifting device clock do not."""

from __future__ import annotations

import pytest

from sscodec.stream.capture_clock import CaptureClock
from sscodec.stream.encoder import StreamEncoder

PACKET_S = 0.02


def _run(clock: CaptureClock, deliveries: list[float]) -> list[int]:
    """Feed one packet per delivery time (seconds), checking when caught up after each; the skips returned."""
    numbered, skips = 0, []
    for now in deliveries:
        numbered += 1
        lost = clock.missing(now + 0.001, numbered)
        numbered += lost
        skips.append(lost)
    return skips


def test_a_device_that_delivers_nothing_for_a_second_skips_that_seconds_packets() -> None:
    # 50 packets on time, then the device is silent for 1 s (its audio lost), then on time again.
    times = [0.5 + k * PACKET_S for k in range(50)] + [1.5 + 1.0 + k * PACKET_S for k in range(50)]
    skips = _run(CaptureClock(PACKET_S), times)
    assert sum(skips) == 50 and skips[50] == 50 and skips.count(0) == 99


def test_noise_late_deliveries_and_drift_skip_nothing() -> None:
    # Scheduling noise of ±15 ms, one chunk delivered 150 ms late (then caught up: queued, not lost), and a device
    # clock 100 ppm slow over 60 s: no packet is skipped.
    noise = [0.015 * ((k * 7919) % 3 - 1) for k in range(3000)]
    times = [k * PACKET_S * (1 + 100e-6) + noise[k] for k in range(3000)]
    times[1000] += 0.15
    assert sum(_run(CaptureClock(PACKET_S), times)) == 0


def test_a_hole_just_over_the_threshold_skips_its_whole_packets_only() -> None:
    clock = CaptureClock(PACKET_S, hole_s=0.2)
    times = [k * PACKET_S for k in range(20)] + [19 * PACKET_S + 0.3 + k * PACKET_S for k in range(1, 20)]
    skips = _run(clock, times)
    assert sum(skips) == 15 and skips[20] == 15  # the 0.3 s hole, 15 packets, at the first packet after it
    # A hole under the threshold (0.2 s plus one packet) is left to the peer's jitter buffer.
    times = [k * PACKET_S for k in range(20)] + [19 * PACKET_S + 0.21 + k * PACKET_S for k in range(1, 20)]
    assert sum(_run(CaptureClock(PACKET_S, hole_s=0.2), times)) == 0


def test_the_encoder_leaves_the_skipped_sequence_numbers_out() -> None:
    from test_stream_model import export_tiny_model

    from sscodec.stream.model import CodecModel

    model = CodecModel(export_tiny_model())
    encoder = StreamEncoder(model, 4)
    silence = __import__("numpy").zeros(model.info.frame_size, dtype="float32")
    assert encoder.encode(silence).sequence == 0
    encoder.skip(49)
    assert encoder.encode(silence).sequence == 50
    with pytest.raises(ValueError, match="packets must be >= 0"):
        encoder.skip(-1)
