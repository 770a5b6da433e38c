"""Static int8 QDQ quantization of the decoders' convolutions, calibrated on real inputs, and its acceptance test.

Which layers: measured on the trained default (calibrated on telugu/train, compared with the fp32 export on
telugu/val; README, "int8"), quantizing any single one of the encoder's convolutions, the first (raw audio) as
much as the last (the latents the codebook search reads), left 20 to 76 % of the codes equal to fp32's: a small
error in the latents moves the nearest codebook entry. So encoders stay float. In the decoder each conv alone costs
little (SNR 32 to 46 dB) except the last, which writes the waveform (27.5 dB alone): all but that one are int8
(27.5 dB against fp32 in all). The codebook search and lookup and the Snake activations stay float everywhere.

Dynamic quantization would turn Conv into ConvInteger, which ONNX Runtime's CPU provider does not run; QDQ
keeps Conv nodes between QuantizeLinear/DequantizeLinear pairs, which every provider runs (and ONNX Runtime's
CPU provider fuses into int8 kernels).
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

from sscodec.export.errors import ExportError
from sscodec.export.quality import QualityCost

# The acceptance test of an int8 export against the fp32 one on speech (offline and stream graphs alike).
MIN_CODES_EQUAL = 0.95
MIN_SNR_DB = 25.0


# onnxruntime.quantization advises on the root logger, for every graph, to run its pre-processing first (shape
# inference and ONNX Runtime's basic optimisation). We run that optimisation (`_constant_folded`) and measure every
# int8 export against fp32 (`check_int8`), so the advice is only noise on the stderr of each command that
# quantizes without configuring logging (found from outside: four lines in codec-bench latency's output).
PREPROCESSING_ADVICE = "pre-processing before quantization"


class _WithoutAdvice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return PREPROCESSING_ADVICE not in record.getMessage()


@contextlib.contextmanager
def _advice_silenced() -> Iterator[None]:
    advice = _WithoutAdvice()
    logging.root.addFilter(advice)
    try:
        yield
    finally:
        logging.root.removeFilter(advice)


class _Feeds(CalibrationDataReader):
    def __init__(self, feeds: Iterable[dict[str, np.ndarray]]) -> None:
        self._feeds: Iterator[dict[str, np.ndarray]] = iter(feeds)

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._feeds, None)


def quantize_int8(source: Path, target: Path, feeds: Iterable[dict[str, np.ndarray]]) -> None:
    """Write `source` to `target` with its quantizable convs in int8 (weights per channel, activations uint8).

    `feeds` are input dicts for the graph (e.g. speech clips, or stream chunks with their states), whose
    activation ranges set the quantization scales. A graph with nothing to quantize (an encoder) is copied.
    """
    with tempfile.TemporaryDirectory() as tmp:
        folded = _constant_folded(source, Path(tmp) / source.name)
        model = onnx.load(folded)
        nodes = quantized_convs(model.graph, source.stem)
        if not nodes:
            shutil.copyfile(source, target)
            return
        with _advice_silenced():
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


def quantized_convs(graph: onnx.GraphProto, name: str) -> list[str]:
    """The nodes of graph `name` ("decoder", "encoder_stream", ...) that int8 quantizes (see the module's doc)."""
    convs = [node.name for node in graph.node if node.op_type in ("Conv", "ConvTranspose")]
    if not name.startswith("decoder"):
        return []
    if len(convs) < 2:
        raise ExportError(f"{name}.onnx: no decoder convolutions found to quantize")
    return convs[:-1]


def check_int8(offline: QualityCost, stream: QualityCost, clips: int) -> None:
    """Raise ExportError, with the measured numbers, unless both kinds of graph pass the acceptance test."""
    codes = min(offline.code_agreement, stream.code_agreement)
    snr = min(offline.snr_db, stream.snr_db)
    if codes < MIN_CODES_EQUAL or snr < MIN_SNR_DB:
        raise ExportError(
            f"int8 refused for this model: against the fp32 export on {clips} speech clips its codes are "
            f"{100 * codes:.1f}% equal (needs >= {100 * MIN_CODES_EQUAL:g}%) and its SNR is {snr:.1f} dB "
            f"(needs >= {MIN_SNR_DB:g} dB); export without --int8"
        )


def _constant_folded(source: Path, target: Path) -> Path:
    """`source` with constant subgraphs folded (ONNX Runtime's basic, portable level), so that weights computed
    from parameters (the stream decoder's frame convs) are initializers the quantizer can see."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.optimized_model_filepath = str(target)
    options.log_severity_level = 3
    ort.InferenceSession(str(source), options, providers=["CPUExecutionProvider"])
    return target
