"""Snake activation (Ziyin et al. 2020), as used by BigVGAN and DAC: x + sin²(αx)/α per channel."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class Snake(nn.Module):
    """Periodic activation with a learnable frequency α per channel; stateless, so it streams as is."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.alpha = nn.Parameter(torch.ones(1, channels, 1))

    def forward(self, x: Tensor) -> Tensor:
        # Times the reciprocal rather than divided by α: exported, the reciprocal is a constant and Mul is
        # cheaper than Div.
        return x + torch.sin(self.alpha * x).pow(2) * (1.0 / (self.alpha + 1e-9))
