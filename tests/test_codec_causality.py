"""Changing the future never changes the past: for every layer type and for the whole codec."""

from __future__ import annotations

import pytest
import torch

from sscodec.codec.blocks import ResidualUnit
from sscodec.codec.config import preset
from sscodec.codec.conv import CausalConv1d, CausalConvTranspose1d
from sscodec.codec.model import Codec
from sscodec.codec.snake import Snake


def _changed_from(before: torch.Tensor, after: torch.Tensor) -> int:
    """Index of the first time step where two [..., T] tensors differ (T if none)."""
    diff = (before - after).abs().flatten(0, -2).amax(dim=0) > 0
    nonzero = diff.nonzero()
    return int(nonzero[0]) if len(nonzero) else before.shape[-1]


@pytest.mark.parametrize(
    "layer, in_channels, rate",  # rate: output steps per input step
    [
        (CausalConv1d(2, 3, 7), 2, 1),
        (CausalConv1d(2, 3, 3, dilation=9), 2, 1),
        (CausalConv1d(2, 3, 16, stride=8), 2, 1 / 8),
        (CausalConvTranspose1d(2, 3, 10, stride=5), 2, 5),
        (ResidualUnit(2, 7, dilation=3), 2, 1),
        (Snake(2), 2, 1),
    ],
)
def test_layer_is_causal(layer, in_channels: int, rate: float) -> None:
    torch.manual_seed(0)
    x = torch.randn(1, in_channels, 64)
    t = 40
    perturbed = x.clone()
    perturbed[..., t:] += torch.randn_like(perturbed[..., t:])
    with torch.no_grad():
        first = _changed_from(layer(x), layer(perturbed))
    # Outputs that depend only on inputs before t are those before t·rate (rounded down to whole steps).
    assert first >= int(t * rate)
    assert first < layer(x).shape[-1], "the perturbation must reach the output at some point"


def test_encoder_latents_and_codes_are_causal() -> None:
    torch.manual_seed(0)
    model = Codec(preset("tiny")).eval()
    audio = 0.3 * torch.randn(1, 20 * 320)
    t = 9 * 320 + 17  # inside frame 9
    perturbed = audio.clone()
    perturbed[:, t:] = 0.5 * torch.randn_like(perturbed[:, t:])
    with torch.no_grad():
        assert _changed_from(model.encoder(audio), model.encoder(perturbed)) == 9
        codes_a, codes_b = model.encode(audio), model.encode(perturbed)
    assert torch.equal(codes_a[..., :9], codes_b[..., :9])


def test_decoder_is_causal_in_codes() -> None:
    torch.manual_seed(0)
    model = Codec(preset("tiny")).eval()
    codes = torch.randint(0, 1024, (1, 12, 20))
    changed = codes.clone()
    changed[..., 11:] = torch.randint(0, 1024, changed[..., 11:].shape)
    with torch.no_grad():
        first = _changed_from(model.decode(codes)[:, None], model.decode(changed)[:, None])
    assert first >= 11 * 320


def test_whole_codec_output_before_t_ignores_input_after_t() -> None:
    torch.manual_seed(0)
    model = Codec(preset("small")).eval()
    audio = 0.3 * torch.randn(1, 16 * 320)
    t = 7 * 320
    perturbed = audio.clone()
    perturbed[:, t:] = 0.0
    with torch.no_grad():
        first = _changed_from(model(audio).audio[:, None], model(perturbed).audio[:, None])
    assert first >= t


def test_a_kernel_shorter_than_its_stride_is_refused_at_construction() -> None:
    with pytest.raises(ValueError, match="shorter than its stride"):
        CausalConv1d(1, 1, 3, stride=5)
    with pytest.raises(ValueError, match="shorter than its stride"):
        CausalConvTranspose1d(1, 1, 3, stride=5)
