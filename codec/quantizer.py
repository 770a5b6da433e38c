"""Residual vector quantizer with factorized, L2-normalized code lookup (as in DAC / "Improved VQGAN")."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from codec.config import CodecConfig
from codec.conv import CausalConv1d


@dataclass
class QuantizerOutput:
    """Quantized latents, the codes used, and the two VQ training losses (means over the batch)."""

    latents: Tensor  # [B, D, F]
    codes: Tensor  # [B, Q, F] int64
    commitment_loss: Tensor
    codebook_loss: Tensor


class VectorQuantizer(nn.Module):
    """One codebook: project to a low dimension, pick the nearest entry by cosine, project back."""

    def __init__(self, latent_dim: int, codebook_size: int, codebook_dim: int) -> None:
        super().__init__()
        self.in_proj = CausalConv1d(latent_dim, codebook_dim, 1)
        self.out_proj = CausalConv1d(codebook_dim, latent_dim, 1)
        self.codebook = nn.Embedding(codebook_size, codebook_dim)

    def similarities(self, latents: Tensor) -> Tensor:
        """Cosine similarity of every frame to every entry: [B, F, codebook_size]."""
        projected = F.normalize(self.in_proj(latents).transpose(1, 2), dim=-1)
        return projected @ F.normalize(self.codebook.weight, dim=-1).t()

    def encode(self, latents: Tensor) -> Tensor:
        """Codes [B, F] of latents [B, D, F]."""
        return self.similarities(latents).argmax(dim=-1)

    def decode(self, codes: Tensor) -> Tensor:
        """Latents [B, D, F] of codes [B, F]."""
        return self.out_proj(self.codebook(codes).transpose(1, 2))

    def forward(self, latents: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Straight-through quantized latents, codes, and per-item commitment and codebook losses."""
        projected = self.in_proj(latents)
        codes = self.similarities(latents).argmax(dim=-1)
        chosen = self.codebook(codes).transpose(1, 2)
        commitment = F.mse_loss(projected, chosen.detach(), reduction="none").mean(dim=(1, 2))
        codebook = F.mse_loss(chosen, projected.detach(), reduction="none").mean(dim=(1, 2))
        straight_through = projected + (chosen - projected).detach()
        return self.out_proj(straight_through), codes, commitment, codebook


class ResidualVectorQuantizer(nn.Module):
    """`n_codebooks` quantizers, each coding what the previous ones left; quantizer dropout in training."""

    def __init__(self, config: CodecConfig) -> None:
        super().__init__()
        self.n_codebooks = config.n_codebooks
        self.codebook_size = config.codebook_size
        self.dropout = config.quantizer_dropout
        self.quantizers = nn.ModuleList(
            VectorQuantizer(config.latent_dim, config.codebook_size, config.codebook_dim)
            for _ in range(config.n_codebooks)
        )

    def sample_codebook_counts(self, batch: int, device: torch.device) -> Tensor:
        """Codebooks per item: all of them, except a `dropout` share drawn uniformly from 1..n."""
        counts = torch.full((batch,), self.n_codebooks, device=device)
        n_dropped = int(batch * self.dropout)
        if n_dropped:
            counts[:n_dropped] = torch.randint(1, self.n_codebooks + 1, (n_dropped,), device=device)
        return counts

    def forward(self, latents: Tensor, n_codebooks: int | None = None) -> QuantizerOutput:
        """Quantize with the first `n_codebooks` (default: all, or a random count per item when training)."""
        batch = latents.shape[0]
        if n_codebooks is not None:
            counts = torch.full((batch,), n_codebooks, device=latents.device)
        elif self.training:
            counts = self.sample_codebook_counts(batch, latents.device)
        else:
            counts = torch.full((batch,), self.n_codebooks, device=latents.device)
        used = int(counts.max())
        residual = latents
        quantized = torch.zeros_like(latents)
        commitment = latents.new_zeros(())
        codebook = latents.new_zeros(())
        all_codes = []
        for index, quantizer in enumerate(self.quantizers[:used]):
            q, codes, commit_i, codebook_i = quantizer(residual)
            mask = (counts > index).to(latents.dtype)
            quantized = quantized + q * mask[:, None, None]
            residual = residual - q
            commitment = commitment + (commit_i * mask).mean()
            codebook = codebook + (codebook_i * mask).mean()
            all_codes.append(codes)
        return QuantizerOutput(quantized, torch.stack(all_codes, dim=1), commitment, codebook)

    def encode(self, latents: Tensor) -> Tensor:
        """Codes [B, n_codebooks, F] of latents [B, D, F]."""
        residual = latents
        all_codes = []
        for quantizer in self.quantizers:
            codes = quantizer.encode(residual)
            residual = residual - quantizer.decode(codes)
            all_codes.append(codes)
        return torch.stack(all_codes, dim=1)

    def decode(self, codes: Tensor) -> Tensor:
        """Latents [B, D, F] from codes [B, Q, F], using the first Q codebooks.

        Pads to all codebooks and masks the unused ones, so one traced graph serves every Q.
        """
        n_given = codes.shape[1]
        padded = F.pad(codes, (0, 0, 0, self.n_codebooks - n_given))
        used = (torch.arange(self.n_codebooks, device=codes.device) < n_given).to(torch.float32)
        latents = self.quantizers[0].decode(padded[:, 0])
        for index in range(1, self.n_codebooks):
            latents = latents + self.quantizers[index].decode(padded[:, index]) * used[index]
        return latents
