"""Streaming state: every stateful layer reads and writes its buffer in one flat tensor per stream.

A stream of the codec carries a single float tensor of shape [B, S]. Each stateful layer, visited in a
fixed order, takes its own slice of it (a [B, C, L] buffer), and appends its updated buffer. One flat
tensor keeps the exported ONNX graphs simple to drive from any runtime (C++, Android, web): a zero
tensor starts a stream and feeding `next_state` back as `state` continues it.

A stateful layer has `state_size() -> int` (values per batch item) and `step(x, state: StreamState)`, which
processes one chunk and takes and puts its own buffer; stateless layers just run.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class StreamState:
    """A cursor over a flat [B, S] state tensor: layers `take` their buffer and `put` its successor."""

    def __init__(self, flat: Tensor) -> None:
        if flat.dim() != 2:
            raise ValueError(f"stream state must be [batch, size], got shape {tuple(flat.shape)}")
        self.flat = flat
        self.offset = 0
        self._updated: list[Tensor] = []

    def take(self, channels: int, length: int) -> Tensor:
        """The next layer's buffer, shaped [B, channels, length]."""
        size = channels * length
        end = self.offset + size
        if end > self.flat.shape[1]:
            raise ValueError(f"stream state too small: need more than {self.flat.shape[1]} values")
        buffer = self.flat[:, self.offset : end].reshape(self.flat.shape[0], channels, length)
        self.offset = end
        return buffer

    def put(self, buffer: Tensor) -> None:
        """Record a layer's updated buffer, in the same order as `take`."""
        self._updated.append(buffer.reshape(buffer.shape[0], -1))

    def finish(self) -> Tensor:
        """The next flat state; checks that every value was consumed exactly once."""
        if self.offset != self.flat.shape[1]:
            raise ValueError(f"stream state has {self.flat.shape[1]} values, layers used {self.offset}")
        if not self._updated:
            return self.flat
        return torch.cat(self._updated, dim=1)


def state_size(module: nn.Module) -> int:
    """State values per batch item of `module`; 0 for a stateless layer."""
    return int(module.state_size()) if hasattr(module, "state_size") else 0


def step(module: nn.Module, x: Tensor, state: StreamState) -> Tensor:
    """Run `module` on one chunk: stateful layers step, stateless ones simply run."""
    return module.step(x, state) if hasattr(module, "step") else module(x)


class StreamingSequential(nn.Sequential):
    """`nn.Sequential` whose chunked `step` threads the stream state through its layers in order."""

    def state_size(self) -> int:
        return sum(state_size(layer) for layer in self)

    def step(self, x: Tensor, state: StreamState) -> Tensor:
        for layer in self:
            x = step(layer, x, state)
        return x
