"""Bad input to the model is a clear ValueError, never a crash deep inside torch."""

from __future__ import annotations

import pytest
import torch

from sscodec.codec.config import preset
from sscodec.codec.model import Codec


@pytest.fixture(scope="module")
def model() -> Codec:
    torch.manual_seed(0)
    return Codec(preset("tiny")).eval()


def test_offline_pads_a_partial_frame_and_trims_back(model: Codec) -> None:
    audio = 0.3 * torch.randn(1, 1000)
    with torch.no_grad():
        out = model(audio)
        codes = model.encode(audio)
        padded = model.encode(torch.nn.functional.pad(audio, (0, 280)))
    assert out.audio.shape == (1, 1000)
    assert codes.shape == (1, 12, 4)
    assert torch.equal(codes, padded)


@pytest.mark.parametrize(
    "audio, message",
    [
        (torch.zeros(320), "must be a \\[batch, samples\\] tensor, got shape \\(320,\\)"),
        (torch.zeros(1, 1, 320), "must be a \\[batch, samples\\] tensor"),
        (torch.zeros(1, 320, dtype=torch.int16), "must be floating point"),
        (torch.zeros(1, 0), "audio is empty"),
        (torch.tensor([[0.0, float("nan")] * 160]), "NaN or Inf"),
        (torch.tensor([[0.0, float("inf")] * 160]), "NaN or Inf"),
        ([0.0] * 320, "got list"),
    ],
)
def test_bad_audio_is_a_value_error(model: Codec, audio, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        model.encode(audio)
    with pytest.raises(ValueError, match=message):
        model(audio)


@pytest.mark.parametrize(
    "codes, message",
    [
        (torch.zeros(12, 3, dtype=torch.long), "must be a \\[batch, codebooks, frames\\] tensor"),
        (torch.zeros(1, 12, 3), "must be integers"),
        (torch.zeros(1, 13, 3, dtype=torch.long), "1..12 codebooks, got 13"),
        (torch.zeros(1, 0, 3, dtype=torch.long), "1..12 codebooks, got 0"),
        (torch.full((1, 12, 3), 1024), "must be in 0..1023"),
        (torch.full((1, 2, 3), -1), "must be in 0..1023"),
    ],
)
def test_bad_codes_are_a_value_error(model: Codec, codes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        model.decode(codes)
    with pytest.raises(ValueError, match=message):
        model.decode_step(codes, model.initial_state(codes.shape[0] if codes.dim() == 3 else 1, "decoder"))


def test_codebook_count_out_of_range(model: Codec) -> None:
    with pytest.raises(ValueError, match="n_codebooks must be in 1..12"):
        model(torch.zeros(1, 320), n_codebooks=0)
