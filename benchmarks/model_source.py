"""The model a benchmark runs: its folder (or the bundled default), checkpoint, precision variants and size."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sscodec.benchmarks.errors import BenchError
from sscodec.common.bundled import BUNDLED_CHECKPOINT, BUNDLED_CHECKPOINT_DIR, BUNDLED_MODEL_DIR
from sscodec.stream.model_dir import resolve_model_dir, stream_graph_paths

CHECKPOINT_NAME = "codec.pt"  # the model-only checkpoint a bundled model folder may carry
GRAPHS = ("encoder.onnx", "decoder.onnx", "encoder_stream.onnx", "decoder_stream.onnx")
REDUCED = ("fp16", "int8")
NO_CALIBRATION = "int8 export needs calibration clips (--calibration-dir)"


@dataclass(frozen=True)
class Variant:
    """One precision of the export: its folder (None when unavailable) and where it came from or why not."""

    precision: str
    directory: Path | None
    source: str


def resolve_model(value: str) -> Path:
    """`--model`: a folder with the stream graphs, or `default` for the bundled model."""
    directory = resolve_model_dir(value)
    stream_graph_paths(directory)
    return directory


def find_checkpoint(model_dir: Path, explicit: Path | None, codec_config: dict) -> Path | None:
    """`--checkpoint` if given, else DIR/codec.pt if present (for the bundled model: its checkpoint, if installed).

    BenchError for a checkpoint whose codec is configured unlike `codec_config` (the graphs' metadata): its
    PyTorch timings and fp16/int8 exports would be another model's (found from outside: they were reported as
    this folder's without a word). Without torch the checkpoint cannot be read, nor used, so it is not checked.
    """
    if explicit is not None and not explicit.is_file():
        raise BenchError(f"{explicit}: no such checkpoint")
    bundled = BUNDLED_CHECKPOINT if model_dir == BUNDLED_MODEL_DIR else model_dir / CHECKPOINT_NAME
    checkpoint = explicit or (bundled if bundled.is_file() else None)
    if checkpoint is not None:
        _check_config(checkpoint, codec_config)
    return checkpoint


def _check_config(checkpoint: Path, codec_config: dict) -> None:
    """BenchError naming the fields in which `checkpoint`'s codec config differs from the graphs' one."""
    try:
        from sscodec.codec.checkpoint import CheckpointError, read_checkpoint, saved_config
        from sscodec.codec.config import CodecConfig
    except ImportError:
        return
    try:
        saved = saved_config(read_checkpoint(checkpoint), checkpoint)
        graphs = CodecConfig.from_dict(codec_config)
    except CheckpointError as error:
        raise BenchError(str(error)) from None
    except (TypeError, ValueError, KeyError) as error:  # the graphs' config
        raise BenchError(f"{checkpoint}: invalid codec config ({error})") from None
    if saved != graphs:
        raise BenchError(f"{checkpoint}: a codec configured unlike the model's graphs ({saved.differences(graphs)}): "
                         "its PyTorch timings and fp16/int8 exports would be another model's; pass the checkpoint "
                         "they were exported from")


def load_model(checkpoint: Path):
    """The codec in a checkpoint, weight norm folded, float32, eval mode (needs torch)."""
    from sscodec.codec.checkpoint import CheckpointError, load_codec
    from sscodec.export.onnx_export import folded_copy

    try:
        return folded_copy(load_codec(checkpoint))
    except CheckpointError as error:
        raise BenchError(str(error)) from None


def precision_variants(
    model_dir: Path, checkpoint: Path | None, calibration: list[np.ndarray] | None, work_dir: Path,
    progress: Callable[[str], None] = lambda line: None,
) -> list[Variant]:
    """fp32 (the folder itself), fp16 and int8: found in DIR/fp16 and DIR/int8, or exported now into `work_dir`
    (minutes for a trained model, so `progress` gets a line before: found from outside, a run was silent for six
    minutes and looked hung)."""
    variants = [Variant("fp32", model_dir, f"{model_dir}")]
    missing = [p for p in REDUCED if not _has_stream_graphs(model_dir / p)]
    found = {p: Variant(p, model_dir / p, f"{model_dir / p}") for p in REDUCED if p not in missing}
    made = _export_missing(missing, checkpoint, calibration, work_dir, progress)
    return variants + [found.get(p) or made[p] for p in REDUCED]


def _export_missing(
    missing: list[str], checkpoint: Path | None, calibration: list[np.ndarray] | None, work_dir: Path,
    progress: Callable[[str], None],
) -> dict[str, Variant]:
    """Export the missing precisions from the checkpoint with export_codec, or say why they cannot be."""
    if not missing:
        return {}
    if checkpoint is None:
        return {
            p: Variant(p, None, "not in the model folder and no checkpoint to export it from")
            for p in missing
        }
    try:
        from sscodec.export.errors import ExportError
        from sscodec.export.onnx_export import export_codec, quiet_exporter_logs
    except ImportError:
        return {
            p: Variant(p, None, "not in the model folder and torch/onnx are not installed") for p in missing
        }
    want_int8 = "int8" in missing and bool(calibration)
    if "fp16" not in missing and not want_int8:  # int8 alone, without clips: no fp32 export for nothing
        return {"int8": Variant("int8", None, NO_CALIBRATION)}
    progress(f"exporting {' and '.join(p for p in missing if p != 'int8' or want_int8)} from {checkpoint} (not in "
             "the model folder) ...")
    quiet_exporter_logs()  # found from outside: 16 lines of torch's exporter advice amid the benchmark's output
    model = load_model(checkpoint)
    refused = None
    try:
        export_codec(model, work_dir, fp16="fp16" in missing, int8=want_int8, calibration=calibration or None)
    except ExportError as error:  # int8 refused for this model: the others still run
        if not want_int8:
            raise
        refused, want_int8 = str(error), False
        export_codec(model, work_dir, fp16="fp16" in missing, calibration=calibration or None)
    made = f"exported now from {checkpoint} with export.onnx_export.export_codec"
    result = {p: Variant(p, work_dir / p, made) for p in missing if p != "int8" or want_int8}
    if "int8" in missing and not want_int8:
        result["int8"] = Variant(
            "int8", None, refused or NO_CALIBRATION
        )
    return result


def offline_graphs_dir(model_dir: Path) -> Path | None:
    """Where the model's encoder.onnx and decoder.onnx are: its folder, or for the bundled model the source
    checkout's codec/pretrained/default; None if neither has them (a runtime-only install)."""
    candidates = [model_dir, BUNDLED_CHECKPOINT_DIR] if model_dir == BUNDLED_MODEL_DIR else [model_dir]
    return next((d for d in candidates if all((d / name).is_file() for name in GRAPHS[:2])), None)


def _has_stream_graphs(directory: Path) -> bool:
    return all((directory / name).is_file() for name in GRAPHS[2:])


def model_size(model_dir: Path) -> dict[str, int]:
    """Bytes on disk of each ONNX file in the folder (and of the checkpoint, if bundled)."""
    names = [*GRAPHS, CHECKPOINT_NAME]
    return {name: (model_dir / name).stat().st_size for name in names if (model_dir / name).is_file()}


def parameter_count(model_dir: Path, checkpoint: Path | None) -> tuple[int | None, str]:
    """Parameters of the codec and how they were counted."""
    if checkpoint is not None:
        try:
            model = load_model(checkpoint)
        except ImportError:
            pass
        else:
            return sum(p.numel() for p in model.parameters()), f"PyTorch module in {checkpoint.name} (folded)"
    try:
        import onnx
    except ImportError:
        return None, "unknown: needs a checkpoint and torch, or the onnx package"
    total = 0
    for name in GRAPHS[2:]:
        graph = onnx.load(model_dir / name).graph
        total += sum(int(np.prod(t.dims)) for t in graph.initializer)
    return total, "ONNX initializers of encoder_stream + decoder_stream (codebooks counted in both)"


def model_summary(model_dir: Path, info, checkpoint: Path | None) -> dict:
    """What every results file says about the model: folder, preset, config, size and parameters."""
    sizes = model_size(model_dir)
    parameters, source = parameter_count(model_dir, checkpoint)
    return {
        "directory": str(model_dir),
        "preset": info.codec_config.get("preset", "unknown"),
        "config": info.codec_config,
        "checkpoint": str(checkpoint) if checkpoint else None,
        "size_bytes": sizes,
        "stream_graph_mb": sum(sizes.get(name, 0) for name in GRAPHS[2:]) / 1e6,
        "parameters": parameters,
        "parameter_source": source,
    }
