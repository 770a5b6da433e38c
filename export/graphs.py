"""The four exported graphs and their ONNX signatures (DESIGN.md's table), over the codec's internals.

Each wrapper runs one of the codec's unchecked paths (`Codec.encode_unchecked` and friends): the Python-side
validation of the public methods would be baked in as constants or refused by torch.export, and the runtime
that drives the ONNX files owns those checks instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.export import Dim

from sscodec.codec.model import Codec

BATCH = "batch"
FRAMES = "frames"
CODEBOOKS = "codebooks"

Shape = tuple[int | str, ...]


class OfflineEncoder(nn.Module):
    """audio [B, T] (T a multiple of frame_size) → codes [B, n_codebooks, T / frame_size]."""

    def __init__(self, codec: Codec) -> None:
        super().__init__()
        self.codec = codec

    def forward(self, audio: Tensor) -> Tensor:
        return self.codec.encode_unchecked(audio)


class OfflineDecoder(nn.Module):
    """codes [B, Q, F] → audio [B, F · frame_size], for any Q from 1 to n_codebooks."""

    def __init__(self, codec: Codec) -> None:
        super().__init__()
        self.codec = codec

    def forward(self, codes: Tensor) -> Tensor:
        return self.codec.decode_unchecked(codes)


class StreamEncoder(nn.Module):
    """(audio [B, K · frame_size], state [B, S_enc]) → (codes [B, n_codebooks, K], next_state)."""

    def __init__(self, codec: Codec) -> None:
        super().__init__()
        self.codec = codec

    def forward(self, audio: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        return self.codec.encode_step_unchecked(audio, state)


class StreamDecoder(nn.Module):
    """(codes [B, Q, K], state [B, S_dec]) → (audio [B, K · frame_size], next_state)."""

    def __init__(self, codec: Codec) -> None:
        super().__init__()
        self.codec = codec

    def forward(self, codes: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        return self.codec.decode_step_unchecked(codes, state)


@dataclass(frozen=True)
class GraphSpec:
    """One ONNX file: its module, named inputs and outputs with shapes (strings are dynamic axes)."""

    name: str
    module: nn.Module
    inputs: dict[str, Shape]
    outputs: dict[str, Shape]
    state_size: int | None  # values per batch item of the flat stream state; None for offline graphs

    @property
    def file_name(self) -> str:
        return f"{self.name}.onnx"

    def example_inputs(self) -> tuple[Tensor, ...]:
        """Tracing inputs; every dynamic axis is at least 2 so that torch.export does not specialize it."""
        sizes = {BATCH: 2, FRAMES: 3, CODEBOOKS: 2}
        tensors = []
        for name, shape in self.inputs.items():
            concrete = [_concrete(axis, sizes) for axis in shape]
            tensors.append(torch.zeros(concrete, dtype=torch.int64 if name == "codes" else torch.float32))
        return tuple(tensors)

    def dynamic_shapes(self, max_codebooks: int) -> dict[str, dict[int, object]]:
        """torch.export dynamic dims for every string axis; samples are tied to frames by the frame size."""
        frames = Dim(FRAMES)
        dims = {BATCH: Dim(BATCH), FRAMES: frames, CODEBOOKS: Dim(CODEBOOKS, min=1, max=max_codebooks)}
        result: dict[str, dict[int, object]] = {}
        for name, shape in self.inputs.items():
            result[name] = {}
            for index, axis in enumerate(shape):
                if isinstance(axis, str):
                    factor, _, symbol = axis.rpartition("*")
                    result[name][index] = dims[symbol] * int(factor) if factor else dims[symbol]
        return result


def _concrete(axis: int | str, sizes: dict[str, int]) -> int:
    if isinstance(axis, int):
        return axis
    factor, _, symbol = axis.rpartition("*")
    return sizes[symbol] * (int(factor) if factor else 1)


def graph_specs(codec: Codec) -> list[GraphSpec]:
    """The four graphs of DESIGN.md's ONNX table, in file order."""
    config = codec.config
    samples = f"{config.frame_size}*{FRAMES}"
    audio: Shape = (BATCH, samples)
    all_codes: Shape = (BATCH, config.n_codebooks, FRAMES)
    some_codes: Shape = (BATCH, CODEBOOKS, FRAMES)
    enc_state: Shape = (BATCH, codec.encoder_state_size)
    dec_state: Shape = (BATCH, codec.decoder_state_size)
    return [
        GraphSpec("encoder", OfflineEncoder(codec), {"audio": audio}, {"codes": all_codes}, None),
        GraphSpec("decoder", OfflineDecoder(codec), {"codes": some_codes}, {"audio": audio}, None),
        GraphSpec(
            "encoder_stream",
            StreamEncoder(codec),
            {"audio": audio, "state": enc_state},
            {"codes": all_codes, "next_state": enc_state},
            codec.encoder_state_size,
        ),
        GraphSpec(
            "decoder_stream",
            StreamDecoder(codec),
            {"codes": some_codes, "state": dec_state},
            {"audio": audio, "next_state": dec_state},
            codec.decoder_state_size,
        ),
    ]
