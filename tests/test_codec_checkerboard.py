"""Checkerboard-free decoding (CodecConfig.checkerboard_free): a pause codes to a constant latent, and a
constant latent must decode to a constant waveform, with no pattern repeating every frame or every `phases`
samples (the frame-rate buzz and the sample_rate / 4 line of the issue's artifact probes)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from sscodec.codec.config import preset
from sscodec.codec.model import Codec


def _constant_code_output(model: Codec, frames: int = 40) -> torch.Tensor:
    """The decoded waveform [T] of one code repeated for `frames` frames, after the decoder's transient."""
    codes = torch.full((1, model.config.n_codebooks, frames), 7, dtype=torch.long)
    with torch.no_grad():
        audio = model.decode(codes)[0]
    return audio[audio.numel() // 2 :]


def _pattern_rms(audio: torch.Tensor) -> float:
    """RMS of the waveform's deviation from its own mean: a constant waveform gives 0."""
    return float((audio - audio.mean()).pow(2).mean().sqrt())


@pytest.mark.parametrize("name", ["tiny", "small"])
def test_a_constant_latent_decodes_to_a_constant_waveform(name: str) -> None:
    torch.manual_seed(0)
    plain = Codec(preset(name)).eval()
    torch.manual_seed(0)
    free = Codec(dataclasses.replace(preset(name), checkerboard_free=True)).eval()
    # Random weights checkerboard: the plain decoder answers a constant with a pattern repeating every frame.
    assert _pattern_rms(_constant_code_output(plain)) > 1e-3
    assert _pattern_rms(_constant_code_output(free)) < 1e-6
    # The same holds once the parametrizations are folded for export.
    assert _pattern_rms(_constant_code_output(free.fold_weight_norm())) < 1e-6


def test_making_a_trained_model_checkerboard_free_projects_it_and_keeps_its_streaming() -> None:
    torch.manual_seed(1)
    model = Codec(preset("tiny")).eval()
    audio = 0.1 * torch.randn(1, 8 * model.config.frame_size)
    with torch.no_grad():
        before = model(audio).audio
        model.make_checkerboard_free()
        after = model(audio).audio
    assert model.config.checkerboard_free
    assert _pattern_rms(_constant_code_output(model)) < 1e-6
    assert not torch.allclose(before, after)  # the projection changed the decoder
    # Chunked equals whole for the projected model too.
    with torch.no_grad():
        codes = model.encode(audio)
        whole = model.decode(codes)
        state = model.initial_state(1, "decoder")
        chunks = []
        for f in range(codes.shape[-1]):
            out, state = model.decode_step(codes[..., f : f + 1], state)
            chunks.append(out)
    torch.testing.assert_close(torch.cat(chunks, dim=-1), whole, atol=1e-5, rtol=0)
    assert model.fold_weight_norm().config.checkerboard_free
    with pytest.raises(ValueError, match="folded"):
        Codec(preset("tiny")).fold_weight_norm().make_checkerboard_free()
