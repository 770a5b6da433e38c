"""Multiply-accumulates per second of audio, counted from the layers (not timed)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from sscodec.codec.model import Codec


@dataclass(frozen=True)
class ComputeCost:
    """MACs per second of audio for each part of the codec, and the parameter count."""

    encoder: int
    quantizer: int
    decoder: int
    parameters: int

    @property
    def total(self) -> int:
        return self.encoder + self.quantizer + self.decoder


def _conv_macs(module: nn.Module, inputs: tuple[Tensor, ...], output: Tensor) -> int:
    if isinstance(module, nn.Conv1d):
        per_output = module.in_channels // module.groups * module.kernel_size[0]
        return output.numel() * per_output
    if isinstance(module, nn.ConvTranspose1d):
        (x,) = inputs
        return x.numel() * module.out_channels // module.groups * module.kernel_size[0]
    return 0


def _count(part: nn.Module, run) -> int:
    total = 0

    def hook(module: nn.Module, inputs: tuple[Tensor, ...], output: Tensor) -> None:
        nonlocal total
        total += _conv_macs(module, inputs, output)

    handles = [m.register_forward_hook(hook) for m in part.modules() if isinstance(m, nn.Conv1d | nn.ConvTranspose1d)]
    try:
        with torch.no_grad():
            run()
    finally:
        for handle in handles:
            handle.remove()
    return total


def compute_cost(model: Codec) -> ComputeCost:
    """Count MACs for one second of audio (batch 1, all codebooks); includes the codebook search."""
    config = model.config
    seconds_audio = torch.zeros(1, config.sample_rate)
    latents = model.encoder(seconds_audio)
    frames = latents.shape[-1]
    encoder = _count(model.encoder, lambda: model.encoder(seconds_audio))
    codes = model.quantizer.encode(latents)
    projections = _count(model.quantizer, lambda: model.quantizer.encode(latents))
    search = frames * config.n_codebooks * config.codebook_size * config.latent_dim
    decoder = _count(model.quantizer, lambda: model.quantizer.decode(codes))
    decoder += _count(model.decoder, lambda: model.decoder(model.quantizer.decode(codes)))
    parameters = sum(p.numel() for p in model.parameters())
    return ComputeCost(encoder, projections + search, decoder, parameters)
