"""Compute budget: MACs per second of audio, counted from the layers."""

from __future__ import annotations

from sscodec.codec.config import CodecConfig, preset
from sscodec.codec.macs import compute_cost
from sscodec.codec.model import Codec


def test_small_fits_the_edge_budget() -> None:
    cost = compute_cost(Codec(preset("small")))
    assert cost.total <= 0.5e9
    assert 1e6 <= cost.parameters <= 5e6


def test_presets_are_ordered_by_cost() -> None:
    costs = [compute_cost(Codec(preset(n))).total for n in ("tiny", "small", "base")]
    assert costs[0] < costs[1] < costs[2]


def test_count_matches_hand_arithmetic_for_a_minimal_codec() -> None:
    config = CodecConfig(phases=320, strides=(1,), channels=2, latent_dim=4, dilations=(),
                         kernel_size=3, n_codebooks=1, codebook_size=4)
    # 50 frames per second; every conv runs at 50 Hz.
    enc = 50 * (320 * 2 * 3 + 2 * 4 * 2 + 4 * 4 * 3)  # front conv, stride-1 "down" conv (k=2), latent conv
    quant = 50 * 4 * 4  # nearest-entry search: 4 entries of 4 dims per frame
    dec = 50 * (4 * 4 * 3 + 4 * 2 * 2 + 2 * 320 * 3)  # latent conv, "up" conv (k=2), last conv
    cost = compute_cost(Codec(config))
    assert (cost.encoder, cost.quantizer, cost.decoder) == (enc, quant, dec)
    assert cost.parameters == sum(p.numel() for p in Codec(config).parameters())
    assert cost.total == enc + quant + dec
