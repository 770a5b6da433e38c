"""Residual vector quantizer in latent space, with k-means-style EMA codebooks (SoundStream / EnCodec).

Why not DAC's factorized, L2-normalized lookup (8-dim projections learned by gradient): measured here
on `tiny` with L1 loss, 2 CPU cores, lr 1e-3, it passed no waveform information in the first 600 steps
(SI-SDR about -43 dB, output amplitude about 10%) while the same encoder and decoder without the
quantizer reached SI-SDR -6.5 dB and SNR +2.5 dB in 300 steps. EMA codebooks initialised from data sit
on the latents from the first step, so the decoder trains as if the bottleneck were continuous, and
the codebook needs no loss or optimiser of its own. Unused entries are re-seeded from the batch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from sscodec.codec.config import CodecConfig

# One codebook's step of the residual VQ: (codebook index, residual) → (codes, what they stand for, ...).
Step = Callable[[int, Tensor], tuple[Tensor, ...]]
# Picks codebook i's codes from its similarities [..., K].
Choose = Callable[[int, Tensor], Tensor]


@dataclass
class QuantizerOutput:
    """Quantized latents, the codes used, and the commitment loss (mean over the batch)."""

    latents: Tensor  # [B, D, F]
    codes: Tensor  # [B, Q, F] int64
    commitment_loss: Tensor


class VectorQuantizer(nn.Module):
    """One codebook of `codebook_size` latent vectors, updated by exponential moving averages."""

    decay = 0.99
    epsilon = 1e-5
    dead_threshold = 0.05  # EMA count per step under which an entry is considered unused

    def __init__(self, latent_dim: int, codebook_size: int) -> None:
        super().__init__()
        self.register_buffer("codebook", torch.randn(codebook_size, latent_dim) * 0.1)
        self.register_buffer("cluster_size", torch.zeros(codebook_size))
        self.register_buffer("embed_sum", torch.zeros(codebook_size, latent_dim))
        self.register_buffer("initialized", torch.zeros((), dtype=torch.bool))

    def search_table(self) -> Tensor:
        """[D + 1, K]: column k holds (2·entry_k, −‖entry_k‖²), so that a frame x extended by a 1 (`extend`) gives
        each entry's similarity 2·x·entry − ‖entry‖² (the negative squared distance up to ‖x‖²) in one MatMul."""
        return torch.cat([2 * self.codebook, -self.codebook.pow(2).sum(dim=-1, keepdim=True)], dim=1).t()

    def extended_entries(self) -> Tensor:
        """[K, D + 1]: the entries extended by a 0, so that subtracting one from an extended frame keeps its 1."""
        return F.pad(self.codebook, (0, 1))

    def similarities(self, frames: Tensor) -> Tensor:
        """Similarity of each extended frame [..., D + 1] to each entry: [..., K]; the nearest entry is the largest."""
        return frames @ self.search_table()

    def encode(self, latents: Tensor) -> Tensor:
        """Codes [B, F] of latents [B, D, F]: the nearest entry of each frame."""
        return self.similarities(extend(latents)).argmax(dim=-1)

    def decode(self, codes: Tensor) -> Tensor:
        """Latents [B, D, F] of codes [B, F]."""
        return F.embedding(codes, self.codebook).transpose(1, 2)

    def forward(self, latents: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Straight-through quantized latents, codes, and per-item commitment loss."""
        if self.training:
            self._update(latents.detach().float())
        codes = self.encode(latents)
        chosen = self.decode(codes)
        commitment = F.mse_loss(latents, chosen.detach(), reduction="none").mean(dim=(1, 2))
        return latents + (chosen - latents).detach(), codes, commitment

    @torch.no_grad()
    def _update(self, latents: Tensor) -> None:
        vectors = latents.transpose(1, 2).reshape(-1, latents.shape[1])
        size = self.codebook.shape[0]
        # Seeds from the batch: every entry at the first update (the codebook starts on the data), later the
        # unused ones. Without a Python branch on the flag, torch.compile keeps the residual VQ in one graph.
        fresh = _sample(vectors, size)
        first = ~self.initialized
        self.codebook.copy_(torch.where(first, fresh, self.codebook))
        self.embed_sum.copy_(torch.where(first, fresh, self.embed_sum))
        self.cluster_size.copy_(torch.where(first, torch.ones_like(self.cluster_size), self.cluster_size))
        self.initialized.fill_(True)
        codes = self.encode(latents).reshape(-1)
        onehot = F.one_hot(codes, size).to(vectors.dtype)
        self.cluster_size.mul_(self.decay).add_(onehot.sum(dim=0), alpha=1 - self.decay)
        self.embed_sum.mul_(self.decay).add_(onehot.t() @ vectors, alpha=1 - self.decay)
        # Laplace smoothing keeps rarely used entries from dividing by zero.
        total = self.cluster_size.sum()
        smoothed = (self.cluster_size + self.epsilon) / (total + size * self.epsilon) * total
        self.codebook.copy_(self.embed_sum / smoothed[:, None])
        dead = self.cluster_size < self.dead_threshold
        self.codebook.copy_(torch.where(dead[:, None], fresh, self.codebook))
        self.embed_sum.copy_(torch.where(dead[:, None], fresh, self.embed_sum))
        self.cluster_size.copy_(torch.where(dead, torch.ones_like(self.cluster_size), self.cluster_size))


def extend(latents: Tensor) -> Tensor:
    """Frames [B, F, D + 1] of latents [B, D, F], each extended by a trailing 1 (see `VectorQuantizer.search_table`)."""
    return F.pad(latents.transpose(1, 2), (0, 1), value=1.0)


def _sample(vectors: Tensor, count: int) -> Tensor:
    """`count` rows drawn from `vectors` (with replacement when there are fewer), slightly jittered."""
    picks = torch.randint(0, vectors.shape[0], (count,), device=vectors.device)
    chosen = vectors[picks]
    return chosen + 1e-4 * chosen.std() * torch.randn_like(chosen)


class ResidualVectorQuantizer(nn.Module):
    """`n_codebooks` quantizers, each coding what the previous ones left; quantizer dropout in training."""

    def __init__(self, config: CodecConfig) -> None:
        super().__init__()
        self.n_codebooks = config.n_codebooks
        self.codebook_size = config.codebook_size
        self.dropout = config.quantizer_dropout
        self.quantizers = nn.ModuleList(
            VectorQuantizer(config.latent_dim, config.codebook_size) for _ in range(config.n_codebooks)
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

        def step(index: int, residual: Tensor) -> tuple[Tensor, ...]:
            quantized, codes, commitment = self.quantizers[index](residual)  # quantized: straight-through
            return codes, quantized, commitment

        steps = self.quantize_residuals(latents, step, int(counts.max()))
        quantized = torch.zeros_like(latents)
        commitment = latents.new_zeros(())
        for index, (_, q, commit_i) in enumerate(steps):
            mask = (counts > index).to(latents.dtype)
            quantized = quantized + q * mask[:, None, None]
            commitment = commitment + (commit_i * mask).mean()
        return QuantizerOutput(quantized, torch.stack([codes for codes, *_ in steps], dim=1), commitment)

    def quantize_residuals(
        self, residual: Tensor, step: Step, count: int | None = None
    ) -> list[tuple[Tensor, ...]]:
        """The residual VQ over the first `count` codebooks (default all): codebook i codes what 0..i-1 left.

        `step(i, residual)` returns codebook i's codes, what they stand for (subtracted from the residual) and
        anything else; returns what each codebook's step returned, in order.
        """
        steps = []
        for index in range(self.n_codebooks if count is None else count):
            result = step(index, residual)
            residual = residual - result[1]
            steps.append(result)
        return steps

    def encode(self, latents: Tensor, choose: Choose | None = None) -> Tensor:
        """Codes [B, n_codebooks, F] of latents [B, D, F]: each codebook's nearest entry to what the previous left.

        Runs on extended frames [B, F, D + 1] (`extend`): in the exported graphs one MatMul, ArgMax, Gather and Sub
        per codebook. `choose(i, similarities)`, if given, picks codebook i's codes instead of the argmax.
        """

        def step(index: int, residual: Tensor) -> tuple[Tensor, ...]:
            quantizer = self.quantizers[index]
            similarities = quantizer.similarities(residual)
            codes = similarities.argmax(dim=-1) if choose is None else choose(index, similarities)
            return codes, F.embedding(codes, quantizer.extended_entries())

        steps = self.quantize_residuals(extend(latents), step)
        return torch.stack([codes for codes, _ in steps], dim=1)

    def decode(self, codes: Tensor) -> Tensor:
        """Latents [B, D, F] from codes [B, Q, F], using the first Q codebooks.

        One lookup in all codebooks at once (codebook i's entries sit i · codebook_size rows down), summed over
        the codebooks: one traced graph serves every Q.
        """
        offsets = torch.arange(codes.shape[1], device=codes.device)[:, None] * self.codebook_size
        table = torch.cat([quantizer.codebook for quantizer in self.quantizers])
        return F.embedding(codes + offsets, table).sum(dim=1).transpose(1, 2)
