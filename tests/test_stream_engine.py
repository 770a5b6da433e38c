"""The streaming engine on real ONNX files: equal to the offline graphs, any block size, exact sizes."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_stream_model import export_tiny_model, tiny_model  # noqa: F401 -- the fixture

from sscodec.common.audio import read_audio
from sscodec.stream.engine import StreamEngine
from sscodec.stream.file_mode import stream_audio
from sscodec.stream.packet import CodingMode, Packet
from sscodec.stream.packing import pack_codes

FRAME = 320


def short_clip(folder: Path) -> np.ndarray:
    """The shortest validation clip that does not end on a frame boundary (so the tail is exercised)."""
    for path in sorted(folder.glob("*.flac"), key=lambda p: p.stat().st_size):
        audio = read_audio(path, 16000)
        if audio.shape[0] % FRAME and audio.shape[0] > 20 * FRAME:
            return audio
    pytest.skip(f"no suitable clip in {folder}")


def offline_decode(model: Path, audio: np.ndarray, codebooks: int) -> np.ndarray:
    """encoder.onnx + decoder.onnx over the whole clip, zero-padded to whole frames and trimmed back."""
    padded = np.zeros(-(-audio.shape[0] // FRAME) * FRAME, dtype=np.float32)
    padded[: audio.shape[0]] = audio
    codes = ort.InferenceSession(model / "encoder.onnx").run(None, {"audio": padded[None]})[0]
    decoded = ort.InferenceSession(model / "decoder.onnx").run(None, {"codes": codes[:, :codebooks]})[0]
    return decoded[0, : audio.shape[0]]


@pytest.mark.parametrize("codebooks", [12, 4])
@pytest.mark.parametrize("chunk_frames", [1, 4])
def test_streaming_equals_offline_graphs(tiny_model: Path, telugu_val: Path, codebooks: int,  # noqa: F811
                                         chunk_frames: int) -> None:
    audio = short_clip(telugu_val)
    engine = StreamEngine(tiny_model, codebooks=codebooks, chunk_frames=chunk_frames)
    result = stream_audio(engine, audio)
    assert result.audio.shape == audio.shape
    np.testing.assert_allclose(result.audio, offline_decode(tiny_model, audio, codebooks), atol=1e-4, rtol=0)
    stats = result.stats
    assert stats.frames == -(-audio.shape[0] // FRAME)
    assert stats.codebooks == codebooks and stats.algorithmic_latency_ms == 20.0 * chunk_frames
    # 12 and 4 codebooks are whole bytes per frame: the packed size is exactly Q x 0.5 kbps.
    assert stats.bitrate_kbps == pytest.approx(codebooks * 0.5)
    assert 0 < stats.compute_ms.p50 <= stats.compute_ms.p95 <= stats.compute_ms.p99 <= stats.compute_ms.max
    assert 0 < stats.real_time_factor < 1


@pytest.mark.parametrize("codebooks", range(1, 13))
def test_measured_bitrate_is_the_packed_size(tiny_model: Path, codebooks: int) -> None:  # noqa: F811
    audio = np.random.default_rng(0).uniform(-0.5, 0.5, 40 * FRAME).astype(np.float32)
    for chunk_frames in (1, 4):
        stats = stream_audio(StreamEngine(tiny_model, codebooks, chunk_frames), audio).stats
        bytes_per_chunk = -(-codebooks * chunk_frames * 10 // 8)
        assert stats.bitrate_kbps == pytest.approx(bytes_per_chunk * 8 / (20.0 * chunk_frames))
        if chunk_frames == 4:  # 4 frames x 10 bits is 5 whole bytes per codebook: no padding at all
            assert stats.bitrate_kbps == pytest.approx(codebooks * 0.5)


@pytest.mark.parametrize(("kbps", "codebooks"), [(0.5, 1), (3.0, 6), (3.9, 7), (6.0, 12), (64.0, 12)])
def test_bitrate_picks_floor_of_kbps_over_half(tiny_model: Path, kbps: float, codebooks: int) -> None:  # noqa: F811
    assert StreamEngine(tiny_model, bitrate_kbps=kbps).codebooks == codebooks


def test_bad_codebook_choices(tiny_model: Path) -> None:  # noqa: F811
    for kwargs in ({"codebooks": 0}, {"codebooks": 13}, {"bitrate_kbps": 0.4}, {"codebooks": 2, "bitrate_kbps": 1}):
        with pytest.raises(ValueError):
            StreamEngine(tiny_model, **kwargs)


def test_reset_starts_a_new_stream(tiny_model: Path) -> None:  # noqa: F811
    audio = np.random.default_rng(1).uniform(-0.5, 0.5, 10 * FRAME).astype(np.float32)
    engine = StreamEngine(tiny_model)
    first = np.concatenate([r.audio for r in engine.push(audio)])
    continued = np.concatenate([r.audio for r in engine.push(audio)])
    engine.reset()
    again = np.concatenate([r.audio for r in engine.push(audio)])
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first, continued)  # the state carried over without reset
    assert engine.stats().frames == 10


@pytest.mark.parametrize(
    ("codes", "message"),
    [(np.array([[1024]]), "0..1023"), (np.array([[-1]]), "0..1023"), (np.zeros((13, 1), np.int64), "codebooks"),
     (np.zeros((1, 1), np.float32), "integers"), (np.zeros(3, np.int64), "codebooks")],
)
def test_invalid_codes_are_refused_before_onnx_runtime(tiny_model: Path, codes: np.ndarray,  # noqa: F811
                                                       message: str) -> None:
    engine = StreamEngine(tiny_model)

    def tripwire(*args: object) -> None:
        raise AssertionError("ONNX Runtime saw invalid codes")

    engine.model.decoder_graph.session_for = tripwire  # where every decoder call gets its session
    with pytest.raises(ValueError, match=message):
        engine.decoder.decode_codes(codes)


def test_a_packet_of_codes_past_a_codebook_that_is_not_a_power_of_two_is_refused(tmp_path: Path) -> None:
    """`decode` checks a raw packet's codes only where its bits can hold more than the codebook (1000 codes in 10
    bits: 1000..1023 fit the packet but index past the table)."""
    import torch

    from sscodec.codec.config import preset
    from sscodec.codec.model import Codec
    from sscodec.export.onnx_export import export_codec

    torch.manual_seed(0)
    export_codec(Codec(dataclasses.replace(preset("tiny"), codebook_size=1000)), tmp_path)
    engine = StreamEngine(tmp_path)
    bits = engine.info.bits_per_code
    assert bits == 10
    last = Packet(0, 1, 1, CodingMode.RAW, pack_codes(np.array([[999]]), bits))
    assert engine.decoder.decode(last).shape == (engine.info.frame_size,)

    def tripwire(*args: object) -> None:
        raise AssertionError("ONNX Runtime saw invalid codes")

    engine.model.decoder_graph.session_for = tripwire
    with pytest.raises(ValueError, match="0..999"):
        engine.decoder.decode(Packet(1, 1, 1, CodingMode.RAW, pack_codes(np.array([[1000]]), bits)))


def test_blocks_must_be_mono_and_finite(tiny_model: Path) -> None:  # noqa: F811
    engine = StreamEngine(tiny_model)
    with pytest.raises(ValueError, match="1-D"):
        engine.push(np.zeros((FRAME, 2), np.float32))
    with pytest.raises(ValueError, match="NaN"):
        engine.push(np.full(FRAME, np.nan, np.float32))


SIGNALS = {
    "silence": lambda n, rng: np.zeros(n, np.float32),
    "dc": lambda n, rng: np.full(n, 0.7, np.float32),
    "square": lambda n, rng: np.where(np.arange(n) // 40 % 2, 1.0, -1.0).astype(np.float32),
    "noise": lambda n, rng: rng.uniform(-1, 1, n).astype(np.float32),
}


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    signal=st.sampled_from(sorted(SIGNALS)),
    length=st.integers(1, 12 * FRAME),
    blocks=st.lists(st.integers(1, 3 * FRAME), min_size=1, max_size=8),
    chunk_frames=st.sampled_from([1, 3]),
)
def test_any_block_sizes_give_the_same_samples(signal: str, length: int, blocks: list[int],
                                               chunk_frames: int) -> None:
    engine = StreamEngine(export_tiny_model(), chunk_frames=chunk_frames)
    audio = SIGNALS[signal](length, np.random.default_rng(length))
    reference = stream_audio(engine, audio).audio
    engine.reset()
    pieces, start, i = [], 0, 0
    while start < length:  # cycle through the drawn block sizes
        size = blocks[i % len(blocks)]
        pieces += [r.audio for r in engine.push(audio[start : start + size])]
        start, i = start + size, i + 1
    pieces += [r.audio for r in engine.flush()]
    out = np.concatenate(pieces)[:length]
    assert out.shape == audio.shape and np.isfinite(out).all()
    np.testing.assert_allclose(out, reference, atol=1e-5, rtol=0)
