"""Encoder and decoder: a phase front end, dilated residual units and strided causal blocks."""

from __future__ import annotations

from torch import Tensor, nn
from torch.nn.utils import parametrize

from sscodec.codec.config import CodecConfig
from sscodec.codec.conv import CausalConv1d, CausalConvTranspose1d, EqualBias, EqualPhaseSums
from sscodec.codec.snake import Snake
from sscodec.codec.streaming import StreamingSequential, StreamState


class ResidualUnit(nn.Module):
    """Snake → dilated causal conv → Snake → 1×1 conv, added to the input."""

    def __init__(self, channels: int, kernel_size: int, dilation: int) -> None:
        super().__init__()
        self.layers = StreamingSequential(
            Snake(channels),
            CausalConv1d(channels, channels, kernel_size, dilation=dilation),
            Snake(channels),
            # A small residual branch at first, so a deep stack starts close to the identity.
            CausalConv1d(channels, channels, 1, init_gain=0.1),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.layers(x)

    def state_size(self) -> int:
        return self.layers.state_size()

    def step(self, x: Tensor, state: StreamState) -> Tensor:
        return x + self.layers.step(x, state)


class PhaseSplit(nn.Module):
    """Space-to-depth: [B, T] → [B, phases, T / phases]; stateless for chunks of whole frames."""

    def __init__(self, phases: int) -> None:
        super().__init__()
        self.phases = phases

    def forward(self, audio: Tensor) -> Tensor:
        batch, length = audio.shape
        return audio.reshape(batch, length // self.phases, self.phases).transpose(1, 2)


class PhaseMerge(nn.Module):
    """Depth-to-space, the inverse of `PhaseSplit`: [B, phases, N] → [B, N · phases]."""

    def forward(self, x: Tensor) -> Tensor:
        return x.transpose(1, 2).reshape(x.shape[0], -1)


def _residual_units(channels: int, config: CodecConfig) -> list[nn.Module]:
    return [ResidualUnit(channels, config.kernel_size, d) for d in config.dilations]


class Encoder(StreamingSequential):
    """Waveform [B, T] → latents [B, latent_dim, T / frame_size]."""

    def __init__(self, config: CodecConfig) -> None:
        channels = config.channels
        layers: list[nn.Module] = [
            PhaseSplit(config.phases),
            CausalConv1d(config.phases, channels, config.kernel_size),
        ]
        for stride in config.strides:
            layers += _residual_units(channels, config)
            layers += [Snake(channels), CausalConv1d(channels, 2 * channels, 2 * stride, stride=stride)]
            channels *= 2
        layers += [Snake(channels), CausalConv1d(channels, config.latent_dim, 3)]
        super().__init__(*layers)


class Decoder(StreamingSequential):
    """Quantized latents [B, latent_dim, F] → waveform [B, F · frame_size] in (-1, 1)."""

    def __init__(self, config: CodecConfig) -> None:
        channels = config.channels * 2 ** len(config.strides)
        layers: list[nn.Module] = [CausalConv1d(config.latent_dim, channels, config.kernel_size)]
        for stride in reversed(config.strides):
            layers += [Snake(channels), CausalConvTranspose1d(channels, channels // 2, 2 * stride, stride)]
            channels //= 2
            layers += _residual_units(channels, config)
        layers += [
            Snake(channels),
            CausalConv1d(channels, config.phases, config.kernel_size),
            PhaseMerge(),
            nn.Tanh(),
        ]
        super().__init__(*layers)
        if config.checkerboard_free or config.fold_free:
            self.equalise_phase_sums(fold_only=not config.checkerboard_free)

    def upsampling(self) -> list[tuple[nn.Conv1d | nn.ConvTranspose1d, EqualPhaseSums, bool]]:
        """Each layer that writes several output samples per input sample, with the projection of its kernel onto
        checkerboard-free ones (`EqualPhaseSums`) and whether its bias must be one value for all its channels."""
        layers = [(layer.conv, layer.phase_projection(), False)
                  for layer in self if isinstance(layer, CausalConvTranspose1d)]
        # The conv into the phases, followed by depth-to-space, is a stride-`phases` transposed conv whose output
        # phase p comes from output channel p: phases on the weight's first axis, and one shared bias.
        merge = next(i for i, layer in enumerate(self) if isinstance(layer, PhaseMerge))
        return [*layers, (self[merge - 1].conv, EqualPhaseSums(phase_axis=0, tap_axis=-1), True)]

    def equalise_phase_sums(self, fold_only: bool = False) -> None:
        """Make every upsampling layer checkerboard-free (see `EqualPhaseSums`): then a constant latent, which
        is what a pause codes to, decodes to a constant waveform, with no line at the frame rate, sample_rate /
        phases or their harmonics. `fold_only`: the phase fold alone (the last of `upsampling()`), which removes
        the line at sample_rate / phases for any latent: the output at that frequency comes from the fold's input
        at 0 Hz through the phases' tap sums, equal after the projection, and their shared bias. Layers already
        projected are left as they are."""
        layers = self.upsampling()
        for conv, projection, shared_bias in layers[-1:] if fold_only else layers:
            if any(isinstance(p, EqualPhaseSums) for p in conv.parametrizations["weight"]):
                continue
            parametrize.register_parametrization(conv, "weight", projection)
            if shared_bias:
                parametrize.register_parametrization(conv, "bias", EqualBias())

    def phase_sum_deviation(self) -> Tensor:
        """How far the upsampling is from checkerboard-free: Σ ‖W − P(W)‖² / Σ ‖W‖² over `upsampling()`'s kernels
        (P the projection; shared biases count as their spread about their mean). 0 exactly when a constant latent
        decodes to a constant; differentiable, so training can pull a model towards the constraint before a
        projection (`Codec.make_checkerboard_free`) that then moves it little."""
        moved, total = [], []
        for conv, projection, shared_bias in self.upsampling():
            weight = conv.weight
            moved.append((weight - projection(weight)).square().sum())
            total.append(weight.square().sum())
            if shared_bias:
                moved.append((conv.bias - conv.bias.mean()).square().sum())
                total.append(conv.bias.square().sum())
        return sum(moved) / sum(total)
