"""Packet loss concealment on the bundled model and real speech: no click at either edge of a gap, the decoder's
state carried through the gap, the fade's shape, and what a merge (compress) gives."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from sscodec.common.audio import read_audio
from sscodec.common.bundled import EXAMPLE_CLIP
from sscodec.stream.concealment import Concealer, ConcealMethod
from sscodec.stream.decoder import StreamDecoder
from sscodec.stream.encoder import StreamEncoder
from sscodec.stream.model import CodecModel
from sscodec.stream.model_dir import resolve_model_dir

FRAME = 320
SEAM_WINDOW = 80  # samples (5 ms) either side of a seam


@functools.lru_cache(maxsize=1)
def speech_codes() -> tuple[CodecModel, list[np.ndarray], np.ndarray]:
    """The bundled model, the per-frame codes [12, 1] of the bundled example, and its loss-free decode."""
    model = CodecModel(resolve_model_dir(None))
    audio = read_audio(EXAMPLE_CLIP, model.info.sample_rate)
    encoder = StreamEncoder(model, model.info.n_codebooks)
    codes = [encoder.encode_codes(audio[i * FRAME : (i + 1) * FRAME]) for i in range(audio.size // FRAME)]
    decoder = StreamDecoder(model)
    clean = np.concatenate([decoder.decode_codes(c) for c in codes])
    return model, codes, clean


def play(method: ConcealMethod, lost: set[int]) -> np.ndarray:
    """The example through a Concealer, frame by frame, with the frames in `lost` missing."""
    model, codes, _ = speech_codes()
    concealer = Concealer(StreamDecoder(model), method)
    return np.concatenate(
        [concealer.conceal(1) if i in lost else concealer.decode(codes[i]) for i in range(len(codes))]
    )


def seam_ratio(audio: np.ndarray, seam: int) -> float:
    """The sample step across `seam` over the largest step the signal takes within 5 ms either side of it:
    above 1 the seam is a jump the audio around it never makes, a click."""
    steps = np.abs(np.diff(audio[seam - SEAM_WINDOW : seam + SEAM_WINDOW]))
    at_seam = steps[SEAM_WINDOW - 1]  # audio[seam] - audio[seam - 1]
    return float(at_seam / max(np.delete(steps, SEAM_WINDOW - 1).max(), 1e-9))


def losses_in_speech(seed: int, bursts: int = 15) -> tuple[set[int], list[int]]:
    """Bursts of 1 to 4 lost frames starting in the loudest 40% of frames; the frame indices of every seam (the
    first lost frame and the first received frame after each burst)."""
    _, codes, clean = speech_codes()
    energy = np.sqrt((clean[: len(codes) * FRAME].reshape(-1, FRAME) ** 2).mean(axis=1))
    loud = np.flatnonzero(energy > np.quantile(energy, 0.6))
    loud = loud[(loud > 5) & (loud < len(codes) - 10)]
    rng = np.random.default_rng(seed)
    lost: set[int] = set()
    for start in rng.choice(loud, bursts, replace=False):
        lost |= set(range(int(start), int(start) + int(rng.integers(1, 5))))
    seams = sorted({i for i in lost if i - 1 not in lost} | {i + 1 for i in lost if i + 1 not in lost})
    return lost, seams


@pytest.mark.parametrize("seed", [0, 1])
def test_no_click_where_a_gap_starts_or_where_packets_resume(seed: int) -> None:
    lost, seams = losses_in_speech(seed)
    ours = play(ConcealMethod.REPEAT, lost)
    ratios = [seam_ratio(ours, i * FRAME) for i in seams]
    assert max(ratios) <= 1.0, ratios
    # The measure hears clicks: inserting silence (and resuming from a stale decoder state) makes them.
    naive = [seam_ratio(play(ConcealMethod.SILENCE, lost), i * FRAME) for i in seams]
    assert max(naive) > 2.0, naive


def test_without_loss_the_concealer_is_the_decoder() -> None:
    _, _, clean = speech_codes()
    np.testing.assert_array_equal(play(ConcealMethod.REPEAT, set()), clean)


def test_concealment_runs_the_decoder_on_the_last_codes_and_fades() -> None:
    model, codes, _ = speech_codes()
    concealer = Concealer(StreamDecoder(model), ConcealMethod.REPEAT, hold_frames=1, fade_frames=3)
    reference = StreamDecoder(model)
    for i in range(40):
        concealer.decode(codes[i])
        reference.decode_codes(codes[i])
    gap = concealer.conceal(5)
    # Frame by frame: the decoder fed frame 39's codes again, times a gain that holds 1 for one frame, then falls
    # linearly to 0 over three; once at 0 the decoder is not run (its state waits).
    gains = [(1.0, 1.0), (1.0, 2 / 3), (2 / 3, 1 / 3), (1 / 3, 0.0)]
    for k, (start, end) in enumerate(gains):
        expected = reference.decode_codes(codes[39]) * np.linspace(start, end, FRAME, endpoint=False)
        np.testing.assert_allclose(gap[k * FRAME : (k + 1) * FRAME], expected, atol=1e-6)
    assert not gap[4 * FRAME :].any()
    # The next packet decodes from the state the concealment left, fading in from silence over one frame.
    resumed = concealer.decode(codes[45])
    expected = reference.decode_codes(codes[45])
    expected[:FRAME] *= np.linspace(0.0, 1.0, FRAME, endpoint=False)
    np.testing.assert_allclose(resumed, expected, atol=1e-6)
    assert concealer.concealed_frames == 5


def test_silence_insertion_leaves_the_decoder_state_alone() -> None:
    model, codes, _ = speech_codes()
    concealer = Concealer(StreamDecoder(model), ConcealMethod.SILENCE)
    reference = StreamDecoder(model)
    for i in range(20):
        concealer.decode(codes[i])
        reference.decode_codes(codes[i])
    assert not concealer.conceal(3).any()
    np.testing.assert_allclose(concealer.decode(codes[23]), reference.decode_codes(codes[23]), atol=1e-6)


def test_before_any_packet_concealment_is_silence() -> None:
    model, _, _ = speech_codes()
    assert not Concealer(StreamDecoder(model)).conceal(2).any()


def test_a_merge_plays_two_packets_in_one_packets_time_without_a_step() -> None:
    model, codes, _ = speech_codes()
    concealer = Concealer(StreamDecoder(model))
    before = np.concatenate([concealer.decode(codes[i]) for i in range(60)])
    merged = concealer.merge(codes[60], codes[61])
    after = concealer.decode(codes[62])
    audio = np.concatenate([before, merged, after])
    assert merged.shape == (FRAME,)
    assert seam_ratio(audio, 60 * FRAME) <= 1.0 and seam_ratio(audio, 61 * FRAME) <= 1.0
