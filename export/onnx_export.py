"""torch → ONNX: the four graphs of docs/CONTRACTS.md, self-contained, with metadata, verified against PyTorch."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
import torch
from torch.nn.utils import parametrize

from sscodec.codec.config import CodecConfig
from sscodec.codec.fingerprint import codec_fingerprint
from sscodec.codec.model import Codec
from sscodec.common.context_model_file import CONTEXT_FILE
from sscodec.common.entropy_tables import TABLES_FILE
from sscodec.common.errors import first_line
from sscodec.common.model_files import PRECISIONS, is_export
from sscodec.export.context_model import write_context_model
from sscodec.export.conv2d import convs_as_2d
from sscodec.export.errors import ExportError, UnsupportedConfigError
from sscodec.export.graphs import GraphSpec, Shape, graph_specs
from sscodec.export.metadata import metadata_props, set_metadata
from sscodec.export.parity import verify_export
from sscodec.export.probe import probe_signal
from sscodec.export.tables import write_tables
from sscodec.export.variants import VariantResult, build_variant, share_coders

# The opset the dynamo exporter translates to natively (torch's TORCHLIB_OPSET): any other one goes through
# ONNX's version converter, one more place to break. ONNX Runtime has run it since 1.14 (2023), as do its
# mobile and web builds and TensorRT 8.6+.
DEFAULT_OPSET = 18
MAX_OPSET = 23  # the newest that torch 2.11 can write
PROBE_SECONDS = 1.0
QUALITY_PROBE_SECONDS = 4.0


@dataclass(frozen=True)
class ExportResult:
    """What `export_codec` wrote and how closely it matches PyTorch."""

    out_dir: Path
    opset: int
    config: CodecConfig
    fingerprint: str  # SHA-256 hex of the exported codec (codec/fingerprint.py), stamped in every graph
    paths: dict[str, Path]  # graph name ("encoder", "decoder", "encoder_stream", "decoder_stream") → file
    max_abs_error: dict[str, float]  # decoders: decoded audio against PyTorch (contract: ≤ 1e-4)
    code_mismatches: dict[str, int]  # encoders: frames whose codes differ from PyTorch, each at an exact tie
    variants: dict[str, VariantResult] = field(default_factory=dict)  # "fp16" / "int8", when asked for
    tables: Path | None = None  # entropy_tables.npz, when table clips were given
    table_frames: int = 0  # frames of speech the tables were counted on
    context_model: Path | None = None  # context_model.npz, when asked for (trained on the table clips)
    removed: list[Path] = field(default_factory=list)  # another model's files this export took away
    kept: list[Path] = field(default_factory=list)  # this codec's coders and precision folders left as they were


def quiet_exporter_logs() -> None:
    """Keep the exporter's and the quantizer's log advice, meant for their developers, off a command's output
    (e.g. "torchvision is not installed. Skipping torchvision::nms"); errors still come through. For commands:
    it sets the root and torch loggers' levels."""
    logging.basicConfig(level=logging.ERROR)
    logging.getLogger("torch").setLevel(logging.ERROR)


def export_codec(
    model: Codec,
    out_dir: Path,
    *,
    opset: int | None = None,
    fp16: bool = False,
    int8: bool = False,
    calibration: Sequence[np.ndarray] | None = None,
    table_files: Sequence[Path] | None = None,
    validation: Sequence[np.ndarray] | None = None,
    context_model: bool = False,
    same_codec: bool = False,
    coders: Sequence[Path] = (),
) -> ExportResult:
    """Write encoder.onnx, decoder.onnx, encoder_stream.onnx and decoder_stream.onnx into `out_dir`.

    `model` is left untouched (weight norm is folded on a copy). Every file is checked with onnx.checker
    and run against PyTorch on a probe signal before anything lands in `out_dir`; ParityError if not equal.
    `fp16` / `int8` also write `out_dir`/fp16 and `out_dir`/int8 with the same four file names, and measure
    their cost on `validation`, else on `calibration` (mono clips at the model's sample rate, whole frames;
    required for int8, which calibrates on them; fp16 falls back to the probe signal). An int8 export that fails
    its acceptance test there (int8.check_int8) is refused with ExportError, and nothing is written. `table_files`
    (speech clips) also writes `out_dir`/entropy_tables.npz: the bitstream's per-codebook code counts, from the
    verified stream encoder; with `context_model`, also `out_dir`/context_model.npz, trained on the same clips'
    codes (export/context_model.py). `coders` (instead of `table_files`): another export's tables and context model
    files to copy, for a codec whose codes are that export's (the same encoder and codebooks).

    What `out_dir` already holds and this export does not rewrite (tables, a context model, fp16/int8 folders):
    with `same_codec` (the caller checked that it is an export of this very codec) it stays, kept consistent (every
    precision folder gets the coders); otherwise it belongs to another model and is removed. The result lists what was
    removed and what was kept.
    """
    opset = DEFAULT_OPSET if opset is None else opset
    check_exportable(model.config, opset)
    if int8 and not calibration:
        raise ValueError("int8 export needs calibration clips")
    codec = folded_copy(model)
    config = codec.config
    created = [folder for folder in (Path(out_dir), *Path(out_dir).parents) if not folder.exists()]  # deepest first
    staging = staging_dir(Path(out_dir))
    exported = False
    try:
        specs = graph_specs(codec)
        fingerprint = codec_fingerprint(config, codec.state_dict())
        paths = {spec.name: export_graph(spec, staging / spec.file_name, opset, config, fingerprint) for spec in specs}
        code_mismatches, max_abs_error = verify_export(codec, paths, _probe(config))
        tables, table_frames = write_tables(staging, table_files) if table_files else (None, 0)
        context = write_context_model(staging, table_files)[0] if table_files and context_model else None
        for source in coders:
            shutil.copyfile(source, staging / source.name)
            tables = staging / TABLES_FILE if source.name == TABLES_FILE else tables
            context = staging / CONTEXT_FILE if source.name == CONTEXT_FILE else context
        clips = list(calibration) if calibration else [_probe(config, QUALITY_PROBE_SECONDS)[0]]
        variants = {
            precision: build_variant(precision, specs, paths, staging / precision, clips, config, fingerprint,
                                     validation)
            for precision, wanted in zip(PRECISIONS, (fp16, int8))
            if wanted
        }
        out = Path(out_dir)
        written = [path for path in (tables, context) if path is not None]
        kept = [out / name for name, new in ((TABLES_FILE, tables), (CONTEXT_FILE, context))
                if same_codec and new is None and (out / name).is_file()]
        share_coders([*written, *kept], (staging / precision for precision in variants))
        # The same codec at a precision not rewritten codes with the new coders too: staged like the rest, so that
        # its folder is tried before anything moves (found from outside: OUT's tables were replaced, then an fp16/
        # that refused writes failed the export, the two left with different tables).
        others = [precision for precision in PRECISIONS if precision not in variants and is_export(out / precision)]
        for precision in others if same_codec and written else []:
            (staging / precision).mkdir(exist_ok=True)
            share_coders(written, [staging / precision])
        final = move_into(staging, out)
        removed: list[Path] = []
        for precision in others:
            folder = out / precision
            if same_codec:
                kept.append(folder)
            else:  # another model's (found from outside: `--model OUT/int8` then ran it without a word)
                removed += _remove_export(folder, [spec.file_name for spec in specs])
        if not same_codec:  # tables or a context model left from an earlier export describe other codes
            for folder in (out, *(out / precision for precision in variants)):
                for name, new in ((TABLES_FILE, tables), (CONTEXT_FILE, context)):
                    if new is None and (folder / name).is_file():
                        (folder / name).unlink()
                        removed.append(folder / name)
        exported = True
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if not exported:  # a failed export leaves no folder it made ("nothing is written")
            for folder in created:
                with contextlib.suppress(OSError):
                    folder.rmdir()
    return ExportResult(
        out_dir=Path(out_dir),
        opset=opset,
        config=config,
        fingerprint=fingerprint,
        paths={name: final[path] for name, path in paths.items()},
        max_abs_error=max_abs_error,
        code_mismatches=code_mismatches,
        variants={
            name: VariantResult(v.precision, {k: final[p] for k, p in v.paths.items()}, v.offline, v.stream)
            for name, v in variants.items()
        },
        tables=final[tables] if tables is not None else None,
        table_frames=table_frames,
        context_model=final[context] if context is not None else None,
        removed=removed,
        kept=kept,
    )


def export_fingerprint(model: Codec) -> str:
    """The codec_fingerprint that exporting `model` stamps in its graphs (weight norm folded, float32)."""
    codec = folded_copy(model)
    return codec_fingerprint(codec.config, codec.state_dict())


def folded_copy(model: Codec) -> Codec:
    """A float32 CPU copy of `model` in eval mode with weight norm folded; `model` itself is untouched.

    Not copy.deepcopy: the copy would share weight norm's generated module classes with `model`, and folding
    the copy deletes the `weight` property from those classes, breaking `model`.
    """
    codec = Codec(model.config)
    if not any(parametrize.is_parametrized(module) for module in model.modules()):
        codec.fold_weight_norm()
    codec.load_state_dict(model.state_dict())
    return codec.float().eval().fold_weight_norm()


def check_exportable(config: CodecConfig, opset: int) -> None:
    """Raise UnsupportedConfigError for what the four graphs cannot represent."""
    if not DEFAULT_OPSET <= opset <= MAX_OPSET:
        raise UnsupportedConfigError(f"opset {opset} is not supported: choose {DEFAULT_OPSET}..{MAX_OPSET}")
    if config.n_codebooks < 2:
        # torch.export fixes any axis whose size can only be 1, so Q could not stay a dynamic input axis.
        raise UnsupportedConfigError(
            f"n_codebooks={config.n_codebooks}: the decoders' codebook axis needs at least 2 codebooks"
        )


def export_graph(spec: GraphSpec, path: Path, opset: int, config: CodecConfig, fingerprint: str) -> Path:
    """Export one graph with torch.export + the dynamo ONNX exporter, as one self-contained file."""
    try:
        program = torch.export.export(
            spec.module,
            spec.example_inputs(),
            dynamic_shapes=spec.dynamic_shapes(config.n_codebooks),
            strict=False,
        )
        with warnings.catch_warnings():
            # torch's own deprecation chatter from inside the exporter; nothing the user can act on.
            warnings.simplefilter("ignore", FutureWarning)
            onnx_program = torch.onnx.export(
                program,
                dynamo=True,  # an ExportedProgram goes straight to translation: no legacy-exporter fallback
                opset_version=opset,
                input_names=list(spec.inputs),
                output_names=list(spec.outputs),
                optimize=True,
                verbose=False,
            )
    except Exception as error:  # torch.export and the exporter raise many unrelated types
        raise ExportError(f"{spec.file_name}: export failed ({first_line(error)})") from error
    model = onnx_program.model_proto
    # Per-node debug metadata holds stack traces with this machine's paths: not for shipping.
    for node in model.graph.node:
        del node.metadata_props[:]
    if spec.state_size is not None:
        convs_as_2d(model)
    _name_axes(model.graph.input, spec.inputs)
    _name_axes(model.graph.output, spec.outputs)
    model.doc_string = f"streaming-speech-codec {spec.name}: {_signature(spec)}"
    set_metadata(model, metadata_props(config, spec.state_size, "fp32", fingerprint))
    onnx.save_model(model, path, save_as_external_data=False)
    return path


def _name_axes(values: Sequence[onnx.ValueInfoProto], shapes: dict[str, Shape]) -> None:
    """Give every input/output axis the spec's name (the exporter calls derived axes s0, s1, …)."""
    for value in values:
        dims = value.type.tensor_type.shape.dim
        for dim, axis in zip(dims, shapes[value.name], strict=True):
            if isinstance(axis, str):
                dim.dim_param = axis
            else:
                dim.dim_value = axis


def _signature(spec: GraphSpec) -> str:
    def describe(values: dict[str, Shape]) -> str:
        return ", ".join(f"{name} [{', '.join(str(axis) for axis in shape)}]" for name, shape in values.items())

    return f"({describe(spec.inputs)}) -> ({describe(spec.outputs)})"


def _probe(config: CodecConfig, seconds: float = PROBE_SECONDS) -> np.ndarray:
    """[2, T] whole frames: the speech-like probe, and quiet noise as a second batch item."""
    frames = max(2, int(seconds * config.sample_rate) // config.frame_size)
    voice = probe_signal(config.sample_rate, frames * config.frame_size / config.sample_rate)
    noise = 0.05 * np.random.default_rng(1).standard_normal(voice.size).astype(np.float32)
    return np.stack([voice, noise])[:, : frames * config.frame_size]


def _remove_export(folder: Path, graph_files: Sequence[str]) -> list[Path]:
    """Remove what an export writes into `folder` (its graphs and coders), and `folder` once empty; files of the
    user's own stay (found from outside: a whole fp16/ folder went, a note kept in it too). Returns what went."""
    removed = []
    for name in (*graph_files, TABLES_FILE, CONTEXT_FILE):
        if (folder / name).is_file():
            (folder / name).unlink()
            removed.append(folder / name)
    with contextlib.suppress(OSError):
        folder.rmdir()
    return removed


def staging_dir(out_dir: Path) -> Path:
    """A fresh hidden folder inside `out_dir`, so nothing unverified ever sits under the final names."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=".export-", dir=out_dir))
    except OSError as error:
        raise ExportError(f"{out_dir}: cannot write the export there ({error.strerror or error})") from None


def move_into(staging: Path, out_dir: Path) -> dict[Path, Path]:
    """Move every staged file to the same relative place under `out_dir`; returns old → new paths.

    Every target folder is tried first (a file created and removed in it), so that a folder that refuses writes
    (found from outside: an immutable fp16/) stops the export before anything moves, with ExportError naming it.
    """
    sources = sorted([*staging.rglob("*.onnx"), *staging.rglob(TABLES_FILE), *staging.rglob(CONTEXT_FILE)])
    targets = {source: out_dir / source.relative_to(staging) for source in sources}
    for folder in sorted({target.parent for target in targets.values()}):
        try:
            folder.mkdir(exist_ok=True)
            tempfile.TemporaryFile(dir=folder).close()
        except OSError as error:
            raise ExportError(f"{folder}: cannot write the export there ({error.strerror or error})") from None
    for source, target in targets.items():
        try:
            os.replace(source, target)
        except OSError as error:
            raise ExportError(f"{target}: cannot replace it ({error.strerror or error}); the export is incomplete "
                              "there: export again once it is writable") from None
    return targets

