"""Static int8 QDQ quantization of exported graphs, calibrated on real inputs.

Dynamic quantization would turn Conv into ConvInteger, which ONNX Runtime's CPU provider does not run; QDQ
keeps plain Conv nodes between QuantizeLinear/DequantizeLinear pairs, which every provider runs.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import onnx
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

from sscodec.export.errors import ExportError

# Only the encoder's and decoder's convolutions: they hold nearly all the compute. The quantizer's
# codebook search and lookup stay float, since a coarse similarity picks wrong codes for little gain.
QUANTIZED_PREFIXES = ("codec.encoder.", "codec.decoder.")


class _Feeds(CalibrationDataReader):
    def __init__(self, feeds: Iterable[dict[str, np.ndarray]]) -> None:
        self._feeds: Iterator[dict[str, np.ndarray]] = iter(feeds)

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._feeds, None)


def quantize_int8(source: Path, target: Path, feeds: Iterable[dict[str, np.ndarray]]) -> None:
    """Write `source` with int8 weights (per channel) and uint8 activations to `target`.

    `feeds` are input dicts for the graph (e.g. speech clips, or stream chunks with their states), whose
    activation ranges set the quantization scales.
    """
    model = onnx.load(source)
    nodes = [
        node.name
        for node in model.graph.node
        if node.op_type in ("Conv", "ConvTranspose") and node.input[1].startswith(QUANTIZED_PREFIXES)
    ]
    if not nodes:
        raise ExportError(f"{source.name}: no encoder/decoder convolutions found to quantize")
    quantize_static(
        model,
        target,
        _Feeds(feeds),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        nodes_to_quantize=nodes,
    )
