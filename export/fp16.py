"""Half-precision copies of exported graphs, with float32 inputs and outputs so the contract holds."""

from __future__ import annotations

from pathlib import Path

import onnx
from onnxruntime.transformers.float16 import convert_float_to_float16
from onnxruntime.transformers.onnx_model import OnnxModel


def convert_fp16(source: Path, target: Path) -> None:
    """Write `source` with fp16 weights and activations to `target`.

    Inputs and outputs stay float32 (audio, state) and int64 (codes). Runtimes without fp16 kernels
    (ONNX Runtime's CPU provider on x86) insert casts and still run it; GPUs and ARM run it natively.
    """
    model = convert_float_to_float16(onnx.load(source), keep_io_types=True)
    # The converter appends its input casts after their users; the ONNX spec wants nodes in order.
    OnnxModel(model).topological_sort()
    onnx.save_model(model, target)
