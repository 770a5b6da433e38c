"""Residual VQ: dropout, every codebook count, bitrate arithmetic, weight-norm folding."""

from __future__ import annotations

import pytest
import torch

from sscodec.codec.config import CodecConfig, preset
from sscodec.codec.model import Codec


def test_quantizer_dropout_draws_every_count_from_1_to_12() -> None:
    torch.manual_seed(0)
    model = Codec(preset("tiny")).train()
    counts = model.quantizer.sample_codebook_counts(4000, torch.device("cpu"))
    assert set(counts.tolist()) == set(range(1, 13))
    # The configured share (0.5) draws a count uniformly from 1..12, the rest use all 12: P(12) = 0.5 + 0.5 / 12.
    # Over 4000 draws the standard error of that share is 0.008, so 0.03 is nearly four of them.
    assert abs((counts == 12).float().mean().item() - (0.5 + 0.5 / 12)) < 0.03


def test_training_pass_with_dropout_masks_unused_codebooks() -> None:
    torch.manual_seed(0)
    model = Codec(preset("tiny")).train()
    audio = 0.2 * torch.randn(8, 640)
    out = model(audio)
    assert out.audio.shape == audio.shape
    assert out.commitment_loss > 0
    out.audio.abs().mean().backward()
    # Gradients reach every trainable weight of the encoder and decoder through the quantizer.
    parameters = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    assert parameters and all(p.grad is not None and p.grad.abs().sum() > 0 for _, p in parameters)


@pytest.mark.parametrize("n_codebooks", range(1, 13))
def test_decoding_the_first_q_codebooks_matches_a_q_codebook_pass(n_codebooks: int) -> None:
    torch.manual_seed(0)
    model = Codec(preset("tiny")).eval()
    audio = 0.3 * torch.randn(2, 4 * 320)
    with torch.no_grad():
        codes = model.encode(audio)
        decoded = model.decode(codes[:, :n_codebooks])
        direct = model(audio, n_codebooks=n_codebooks)
    assert decoded.shape == audio.shape
    assert torch.equal(direct.codes, codes[:, :n_codebooks])
    torch.testing.assert_close(decoded, direct.audio, atol=1e-5, rtol=0)


@pytest.mark.parametrize("q", range(1, 13))
def test_bitrate_is_half_a_kbps_per_codebook(q: int) -> None:
    config = preset("small")
    assert config.bitrate_kbps(q) == pytest.approx(q * 0.5)
    assert config.codebooks_for_bitrate(q * 0.5) == q


def test_bitrate_outside_the_range_is_refused() -> None:
    config = preset("small")
    with pytest.raises(ValueError, match="below one codebook"):
        config.codebooks_for_bitrate(0.3)
    assert config.codebooks_for_bitrate(100) == 12
    assert config.codebooks_for_bitrate(1e308) == 12  # found from outside: 1e308 / 0.5 overflowed to a traceback
    with pytest.raises(ValueError, match="n_codebooks must be in 1..12"):
        config.bitrate_kbps(13)


@pytest.mark.parametrize("name", ["tiny", "small"])
def test_folding_weight_norm_changes_no_output(name: str) -> None:
    torch.manual_seed(0)
    model = Codec(preset(name)).eval()
    audio = 0.3 * torch.randn(2, 6 * 320)
    with torch.no_grad():
        before = model(audio).audio
        model.fold_weight_norm()
        after = model(audio).audio
    assert not any(hasattr(m, "parametrizations") for m in model.modules())
    torch.testing.assert_close(after, before, atol=1e-6, rtol=0)


def test_config_round_trips_through_json() -> None:
    config = CodecConfig(channels=12, strides=(2, 4, 5, 8), phases=1, preset="custom")
    assert CodecConfig.from_json(config.to_json()) == config
    with pytest.raises(ValueError, match="unknown codec config keys: bogus"):
        CodecConfig.from_dict({**config.to_dict(), "bogus": 1})
    with pytest.raises(ValueError, match="unknown preset"):
        preset("huge")
