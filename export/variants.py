"""fp16 and int8 copies of an export, each in its own folder, and their quality cost against fp32."""

from __future__ import annotations

import shutil
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx

from sscodec.codec.config import CodecConfig
from sscodec.common.files import atomic_output
from sscodec.export.fp16 import convert_fp16
from sscodec.export.graphs import GraphSpec
from sscodec.export.int8 import check_int8, quantize_int8
from sscodec.export.metadata import metadata_props, set_metadata
from sscodec.export.quality import QualityCost, mel80_distance, snr_db
from sscodec.export.runtime import quiet_session, run_graph, run_offline, stream_steps

# Frames per stream call when calibrating and measuring: scales and costs do not depend on it, and
# larger chunks keep the Python loop short.
CHUNK_FRAMES = 10


def share_coders(coders: Sequence[Path], folders: Iterable[Path]) -> None:
    """Copy the entropy tables and context model `coders` into each precision folder of `folders`, atomically.

    A precision folder is the same codec (fingerprint) as its parent, so it codes with the same tables and context
    model: a file or call made with one precision decodes with any other.
    """
    for folder in folders:
        for source in coders:
            with atomic_output(folder / source.name) as temp:
                shutil.copyfile(source, temp)


@dataclass(frozen=True)
class VariantResult:
    """One reduced-precision export: its four files and its cost through offline and stream graphs."""

    precision: str
    paths: dict[str, Path]
    offline: QualityCost
    stream: QualityCost


def build_variant(
    precision: str,
    specs: Sequence[GraphSpec],
    fp32_paths: dict[str, Path],
    out_dir: Path,
    clips: Sequence[np.ndarray],
    config: CodecConfig,
    fingerprint: str,
    validation: Sequence[np.ndarray] | None = None,
) -> VariantResult:
    """Write `out_dir`/{encoder,decoder,…}.onnx at `precision`, calibrated (int8) on `clips`, and measure them
    on `validation` (default: `clips`). ExportError if int8 fails its acceptance test (int8.check_int8)."""
    out_dir.mkdir(exist_ok=True)
    paths = {}
    for spec in specs:
        target = out_dir / spec.file_name
        if precision == "fp16":
            convert_fp16(fp32_paths[spec.name], target)
        else:
            quantize_int8(fp32_paths[spec.name], target, _calibration_feeds(spec.name, fp32_paths, clips))
        # Converters keep or drop metadata as they please: stamp it again, with the new precision.
        model = onnx.load(target)
        set_metadata(model, metadata_props(config, spec.state_size, precision, fingerprint))
        onnx.save_model(model, target)
        onnx.checker.check_model(target)
        paths[spec.name] = target
    measured = list(validation or clips)
    offline = quality_cost(fp32_paths, paths, measured, config.sample_rate, stream=False)
    stream = quality_cost(fp32_paths, paths, measured, config.sample_rate, stream=True)
    if precision == "int8":
        check_int8(offline, stream, len(measured))
    return VariantResult(precision, paths, offline, stream)


def _calibration_feeds(
    name: str, fp32_paths: dict[str, Path], clips: Sequence[np.ndarray]
) -> Iterator[dict[str, np.ndarray]]:
    """Inputs that graph `name` sees in use: clips, their fp32 codes, or stream chunks with real states."""
    encoder = quiet_session(fp32_paths["encoder"])
    stream = quiet_session(fp32_paths[name]) if name.endswith("_stream") else None
    for clip in clips:
        is_encoder = name.startswith("encoder")
        x = clip[None] if is_encoder else run_offline(encoder, clip[None])
        if stream is None:
            yield {"audio" if is_encoder else "codes": x}
        else:
            yield from (feeds for feeds, _ in stream_steps(stream, x, CHUNK_FRAMES))


def quality_cost(
    fp32_paths: dict[str, Path],
    variant_paths: dict[str, Path],
    clips: Sequence[np.ndarray],
    sample_rate: int,
    stream: bool,
) -> QualityCost:
    """Encode and decode each clip with both exports (offline or stream graphs) and compare the audio."""
    names = ("encoder_stream", "decoder_stream") if stream else ("encoder", "decoder")
    reference = [quiet_session(fp32_paths[name]) for name in names]
    variant = [quiet_session(variant_paths[name]) for name in names]
    expected, actual, distances, agreement = [], [], [], []
    for clip in clips:
        codes = [run_graph(encoder, clip[None], CHUNK_FRAMES) for encoder in (reference[0], variant[0])]
        agreement.append(np.mean(codes[0] == codes[1]))
        ref_audio = run_graph(reference[1], codes[0], CHUNK_FRAMES)[0]
        var_audio = run_graph(variant[1], codes[1], CHUNK_FRAMES)[0]
        expected.append(ref_audio)
        actual.append(var_audio)
        distances.append(mel80_distance(ref_audio, var_audio, sample_rate))
    return QualityCost(
        snr_db(np.concatenate(expected), np.concatenate(actual)),
        float(np.mean(distances)),
        float(np.mean(agreement)),
    )
