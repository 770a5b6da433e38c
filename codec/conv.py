"""Causal convolutions that stream: all padding on the left; transposed convs trim right and stream as convs.

Padding arithmetic for a conv with kernel k, dilation d and stride s (effective kernel e = (k-1)·d + 1):

    offline:   [0 ... 0 | x0 x1 x2 ... x(T-1)]      left pad P = e - s, output T / s frames
                <-- P -->
    streaming: [ state  | chunk of n samples ]      state = last P inputs seen, output n / s frames

Both see exactly the same window for every output, so chunked equals whole. A transposed conv
(kernel k, stride s) writes k samples per input frame, overlapping the next frames by k - s:

    input frame f writes    [f·s ........ f·s + k)
    output frame f sums     input frames f - taps + 1 .. f      (taps = ceil(k / s))

so streaming runs it as a causal conv over input frames, with taps - 1 past input frames as its state and
each frame's s output samples as s conv channels per output channel (`CausalConvTranspose1d.step`).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torch.nn.utils import parametrizations, parametrize

from sscodec.codec.streaming import StreamState


def causal_padding(kernel_size: int, stride: int = 1, dilation: int = 1) -> int:
    """Left padding that makes a strided conv causal and emit exactly T / stride frames."""
    effective = (kernel_size - 1) * dilation + 1
    if effective < stride:
        raise ValueError(f"kernel {kernel_size} (dilation {dilation}) is shorter than its stride {stride}")
    return effective - stride


def transposed_overlap(kernel_size: int, stride: int) -> int:
    """Samples a transposed conv writes past its own frame, carried to the next one."""
    if kernel_size < stride:
        raise ValueError(f"transposed kernel {kernel_size} is shorter than its stride {stride}")
    return kernel_size - stride


def weight_normed(module: nn.Module) -> nn.Module:
    """Reparametrise `module.weight` with weight norm (the current parametrizations API)."""
    return parametrizations.weight_norm(module)


def variance_preserving_init_(conv: nn.Conv1d | nn.ConvTranspose1d, gain: float = 1.0) -> None:
    """Normal weights with std gain / sqrt(taps feeding one output), zero bias.

    PyTorch's default (uniform weights that shrink the variance threefold, uniform biases) leaves a
    deep Snake network's output dominated by biases: near-constant latents, a collapsed codebook and
    an initial output louder than its input.
    """
    taps = conv.in_channels // conv.groups * conv.kernel_size[0]
    if isinstance(conv, nn.ConvTranspose1d):
        taps = conv.in_channels * conv.kernel_size[0] // conv.stride[0]
    nn.init.normal_(conv.weight, std=gain / taps**0.5)
    if conv.bias is not None:
        nn.init.zeros_(conv.bias)


def fold_weight_norm(model: nn.Module) -> nn.Module:
    """Fold every parametrization (weight norm, and the phase-sum projections below) into plain tensors, in
    place; returns `model`."""
    for module in model.modules():
        if parametrize.is_parametrized(module):
            for name in list(module.parametrizations):
                parametrize.remove_parametrizations(module, name, leave_parametrized=True)
    return model


class EqualPhaseSums(nn.Module):
    """Projects an upsampling kernel onto those whose output phases have equal tap sums.

    A layer that writes P output samples per input sample (a stride-P transposed conv, or a conv into P channels
    followed by depth-to-space) answers a constant input with a pattern that repeats every P samples unless the
    taps of every output phase sum to the same value: the checkerboard artifact (Odena et al. 2016,
    "Deconvolution and Checkerboard Artifacts"; Sugawara et al. 2019, "Checkerboard artifacts free convolutional
    neural networks", whose zero-order-hold kernels satisfy this). In a speech decoder that pattern is a line at
    sample_rate / P and its harmonics in every pause. The projection is the least-squares one: every tap of phase
    p moves by (sum of phase p - mean of the phase sums) / taps per phase. Idempotent; adds no parameters.

    `phase_axis` and `tap_axis` index the weight, or, with `stride`, the weight's last axis split into
    [taps per phase, stride] (a transposed conv's kernel, whose tap t feeds output phase t mod stride).
    """

    def __init__(self, phase_axis: int, tap_axis: int, stride: int | None = None) -> None:
        super().__init__()
        self.phase_axis, self.tap_axis, self.stride = phase_axis, tap_axis, stride

    def forward(self, weight: Tensor) -> Tensor:
        view = weight if self.stride is None else weight.unflatten(-1, (-1, self.stride))
        sums = view.sum(self.tap_axis, keepdim=True)
        view = view - (sums - sums.mean(self.phase_axis, keepdim=True)) / view.shape[self.tap_axis]
        return view.reshape(weight.shape)


class EqualBias(nn.Module):
    """One bias for every output channel: the phases of a depth-to-space output must share their offset too."""

    def forward(self, bias: Tensor) -> Tensor:
        return bias.mean() * torch.ones_like(bias)


class CausalConv1d(nn.Module):
    """Conv1d padded on the left only; `step` runs a chunk whose length is a multiple of the stride."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        dilation: int = 1,
        init_gain: float = 1.0,
    ) -> None:
        super().__init__()
        self.padding = causal_padding(kernel_size, stride, dilation)
        conv = nn.Conv1d(in_channels, out_channels, kernel_size, stride=stride, dilation=dilation)
        variance_preserving_init_(conv, init_gain)
        self.conv = weight_normed(conv)
        self.stride = stride

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(F.pad(x, (self.padding, 0)))

    def state_size(self) -> int:
        return self.conv.in_channels * self.padding

    def step(self, x: Tensor, state: StreamState) -> Tensor:
        if self.padding == 0:
            return self.conv(x)
        window = torch.cat([state.take(self.conv.in_channels, self.padding), x], dim=-1)
        state.put(window[..., -self.padding :])
        return self.conv(window)


class CausalConvTranspose1d(nn.Module):
    """ConvTranspose1d trimmed on the right; `step` runs it as a causal conv over input frames (see `step`)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int) -> None:
        super().__init__()
        self.overlap = transposed_overlap(kernel_size, stride)
        conv = nn.ConvTranspose1d(in_channels, out_channels, kernel_size, stride=stride)
        variance_preserving_init_(conv)
        self.conv = weight_normed(conv)
        self.stride = stride
        self.taps = -(-kernel_size // stride)  # input frames that write into one output frame

    def forward(self, x: Tensor) -> Tensor:
        y = self.conv(x)
        return y[..., : y.shape[-1] - self.overlap]

    def state_size(self) -> int:
        return self.conv.in_channels * (self.taps - 1)

    def phase_projection(self) -> EqualPhaseSums:
        """The projection of this layer's kernel onto those that answer a constant input with a constant."""
        if self.conv.kernel_size[0] % self.stride:
            raise ValueError(f"kernel {self.conv.kernel_size[0]} is not a multiple of the stride {self.stride}")
        return EqualPhaseSums(-1, -2, self.stride)

    def step(self, x: Tensor, state: StreamState) -> Tensor:
        """The same sums as `forward`, as a causal conv over input frames: output frame f (its `stride` samples of
        each channel, as out_channels · stride conv channels) is a conv of input frames f - taps + 1 .. f, so the
        state carries the last taps - 1 input frames, and nothing is computed twice."""
        window = x
        if self.taps > 1:
            window = torch.cat([state.take(self.conv.in_channels, self.taps - 1), x], dim=-1)
            state.put(window[..., -(self.taps - 1) :])
        y = F.conv1d(window, *self._frame_conv())  # [B, out_channels · stride, K]
        return y.unflatten(1, (self.conv.out_channels, self.stride)).transpose(2, 3).flatten(2)

    def _frame_conv(self) -> tuple[Tensor, Tensor]:
        """Weight [out · stride, in, taps] and bias [out · stride] of the frame conv that `step` runs:
        weight[o · stride + r, i, m] = transposed weight[i, o, (taps - 1 - m) · stride + r] (zero past the kernel)."""
        weight = F.pad(self.conv.weight, (0, self.taps * self.stride - self.conv.kernel_size[0]))
        weight = weight.unflatten(2, (self.taps, self.stride)).flip(2).permute(1, 3, 0, 2)
        return weight.flatten(0, 1), self.conv.bias.repeat_interleave(self.stride)
