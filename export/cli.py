"""`codec-export`: turn a checkpoint into the four verified ONNX files (and fp16/int8 copies)."""

from __future__ import annotations

import dataclasses
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import click
import torch

from sscodec.codec.checkpoint import CheckpointError, load_codec, round_to_compact, save_compact_codec
from sscodec.codec.config import CodecConfig
from sscodec.codec.model import Codec
from sscodec.common.audio import AudioFileError, audio_files_below, check_decodes
from sscodec.common.bundled import (
    BUNDLED_CHECKPOINT,
    BUNDLED_CHECKPOINT_DIR,
    BUNDLED_MODEL_DIR,
    DEFAULT_NAME,
    EXAMPLE_CLIP,
    resolve_checkpoint,
    typed_folder,
)
from sscodec.common.cli import (
    EMPTY_PATH,
    NonEmptyPath,
    command_settings,
    given_flags,
    interrupts_deferred,
    run_cli,
)
from sscodec.common.context_model_file import CONTEXT_FILE, load_context_model
from sscodec.common.entropy_tables import TABLES_FILE, load_tables
from sscodec.common.errors import ModelError, first_line
from sscodec.common.model_files import (
    ENCODER_STREAM,
    MODEL_CARD,
    PRECISIONS,
    export_folders,
    export_graph,
    is_export,
)
from sscodec.common.text import plural
from sscodec.export.calibration import CALIBRATION_CLIPS, load_clips
from sscodec.export.context_model import write_context_model
from sscodec.export.errors import ExportError
from sscodec.export.metadata import read_fingerprint
from sscodec.export.onnx_export import (
    DEFAULT_OPSET,
    MAX_OPSET,
    ExportResult,
    export_codec,
    export_fingerprint,
    move_into,
    quiet_exporter_logs,
    staging_dir,
)
from sscodec.export.tables import MAX_TABLE_CLIPS, write_tables
from sscodec.export.variants import share_coders

VALIDATION_CLIPS = 20  # every clip of telugu/val; each is cut to its first 8 s


def checkpoint_option(value: str) -> Path:
    """The checkpoint file that `--checkpoint` names; "default" is the bundled model's."""
    if not value:  # Path("") is the current folder
        raise click.BadParameter(EMPTY_PATH, param_hint="--checkpoint")
    try:
        path = resolve_checkpoint(value)
    except ModelError as error:
        raise click.BadParameter(str(error), param_hint="--checkpoint") from None
    if not path.exists():
        raise click.BadParameter(f"{path}: no such checkpoint", param_hint="--checkpoint")
    if path.is_dir():
        raise click.BadParameter(f"{path}: is a folder; give the checkpoint file in it (e.g. best.pt)",
                                 param_hint="--checkpoint")
    return path


class OneLineErrors(click.Command):
    """Usage errors as one line on stderr and exit code 2, as codec-train and codec-stream answer them."""

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None, standalone_mode: bool = True,
             **extra: Any) -> Any:
        # The console script calls main() directly: route it through run_cli instead of click's usage banner.
        if not standalone_mode:
            return super().main(args, prog_name, standalone_mode=False, **extra)
        return run_cli(self, "codec-export", (), args)


@click.command(cls=OneLineErrors, context_settings=command_settings())
@click.option("--onnx", "to_onnx", is_flag=True, help="Export to ONNX (the only format so far).")
@click.option("--checkpoint", metavar="FILE",
              help="Checkpoint written by codec-train, or default for the bundled model's (not with --tables-only).")
@click.option(
    "--out",
    "out_text",
    required=True,
    metavar="DIR",
    type=NonEmptyPath(file_okay=False),
    help="Output folder; `default` (re)writes the bundled model in the source checkout (stream graphs and tables "
    "in stream/models/default, offline graphs in codec/pretrained/default; with another --checkpoint, its "
    "codec.pt too; `./default` is a folder of that name). A folder holding another model's export is replaced "
    "only with --overwrite.",
)
@click.option("--overwrite", is_flag=True,
              help="Replace the export of another model in --out: its graphs, tables, context model and fp16/int8 "
                   "folders; its MODEL_CARD.md is kept as MODEL_CARD.replaced-FINGERPRINT.md.")
@click.option("--fp16", is_flag=True, help="Also write OUT/fp16: half-precision weights and activations.")
@click.option("--int8", is_flag=True, help="Also write OUT/int8: static int8 QDQ, calibrated on speech.")
@click.option(
    "--calibration-dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Speech clips for int8 calibration and for measuring the fp16/int8 quality cost.",
)
@click.option(
    "--validation-dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Speech clips the fp16/int8 quality cost (and int8's acceptance test) is measured on; default: "
    "--calibration-dir.",
)
@click.option(
    "--tables-dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help=f"Speech clips (up to {MAX_TABLE_CLIPS}) for the bitstream's entropy tables; default: --calibration-dir, "
    "else the bundled example clip (too short to save much).",
)
@click.option("--tables-only", is_flag=True,
              help="Only (re)write OUT/entropy_tables.npz from OUT's encoder_stream.onnx; no checkpoint needed.")
@click.option("--context-model", is_flag=True,
              help="Also train OUT/context_model.npz on the --tables-dir speech: the bitstream's context model "
                   "(minutes on a CPU; with --tables-only, for an existing export).")
@click.option("--opset", type=click.IntRange(DEFAULT_OPSET, MAX_OPSET), default=None,
              help=f"ONNX opset ({DEFAULT_OPSET}..{MAX_OPSET}; default {DEFAULT_OPSET}).")
@click.option("--with-checkpoint", is_flag=True,
              help="Also write OUT/codec.pt: the model alone in fp16, to train on from (--init_from OUT/codec.pt). "
                   "The graphs then come from its fp16-rounded weights, so re-exporting codec.pt gives the same "
                   "codec; they are another codec (fingerprint) than an export without this flag.")
def main(
    to_onnx: bool,
    checkpoint: str,
    out_text: str,
    overwrite: bool,
    fp16: bool,
    int8: bool,
    calibration_dir: Path | None,
    validation_dir: Path | None,
    tables_dir: Path | None,
    tables_only: bool,
    context_model: bool,
    opset: int | None,
    with_checkpoint: bool,
) -> None:
    """Export a codec checkpoint to encoder.onnx, decoder.onnx, encoder_stream.onnx, decoder_stream.onnx."""
    speech_dir = tables_dir or calibration_dir
    table_files = _table_files(speech_dir, "--tables-dir" if tables_dir else "--calibration-dir")
    bundled = out_text == DEFAULT_NAME  # the typed word only: Path("./default") would print as "default" too
    out_dir = BUNDLED_MODEL_DIR if bundled else typed_folder(out_text)
    if context_model and speech_dir is None:  # found from outside: it trained on the 6.7 s example clip, silently
        raise click.UsageError("--context-model trains on speech: give it --tables-dir (or --calibration-dir), "
                               "a folder of clips like the ones the model will code")
    if tables_only:
        given = given_flags(click.get_current_context())
        refused = [flag for flag in ("--onnx", "--checkpoint", "--fp16", "--int8", "--opset", "--with-checkpoint",
                                     "--validation-dir", "--overwrite") if flag in given]
        if refused:
            raise click.UsageError(f"--tables-only rewrites the tables of an existing export: it takes no "
                                   f"{', '.join(refused)}")
        _tables_only(out_dir, table_files, context_model)
        return
    if not to_onnx:
        raise click.UsageError("nothing to export: pass --onnx (or --tables-only)")
    if checkpoint is None:
        raise click.UsageError("Missing option '--checkpoint'.")
    if int8 and calibration_dir is None:
        raise click.UsageError("--int8 needs --calibration-dir (a folder of speech clips)")
    if validation_dir is not None and not (fp16 or int8):  # found from outside: it was silently ignored
        raise click.UsageError("--validation-dir measures what --fp16/--int8 cost: it needs one of them")
    if bundled and (fp16 or int8 or tables_dir is None):
        raise click.UsageError("--out default (re)writes the bundled model's fp32 graphs and tables: it takes "
                               "--tables-dir and no --fp16/--int8")
    if calibration_dir is None:
        files = []
    elif tables_dir is None:  # the tables' clips are this folder's: probed once, so a skipped file is one line
        files = table_files   # (found from outside: every "skipping" line came twice)
    else:
        files = _clip_files(calibration_dir, "--calibration-dir", CALIBRATION_CLIPS)
    validation_files = _clip_files(validation_dir, "--validation-dir", VALIDATION_CLIPS)
    quiet_exporter_logs()
    try:
        model = load_codec(checkpoint_option(checkpoint))
        config = model.config
        clips = load_clips(files, config.sample_rate, config.frame_size) if files else None
        validation = (
            load_clips(validation_files, config.sample_rate, config.frame_size, max_clips=VALIDATION_CLIPS)
            if validation_files
            else None
        )
        click.echo(f"exporting {checkpoint} ({config.preset}, {config.n_codebooks} {plural(config.n_codebooks, 'codebook')}) to {out_text}")
        writes_checkpoint = with_checkpoint or (bundled and str(checkpoint) != DEFAULT_NAME)
        if writes_checkpoint:  # the graphs from the weights codec.pt keeps, so that re-exporting it changes nothing
            round_to_compact(model)
        replaced = None if bundled else _replaced_model(
            out_dir, model, overwrite, writes_checkpoint, lambda: _twin_fingerprint(checkpoint, writes_checkpoint))
        # The same codec re-exported (e.g. to add --int8) keeps what it does not rewrite: its tables unless new
        # speech is given, its context model unless --context-model, its fp16/int8 folders (found from outside:
        # the tables were rebuilt from the 6.7 s example clip, the context model and fp16/ deleted).
        same_codec = not bundled and bool(export_folders(out_dir)) and replaced is None
        kept = _usable_coders(out_dir, config, tables=speech_dir is None, context=not context_model) if same_codec else []
        # Found from outside: a re-export with --tables-dir replaced the tables without the note --tables-only gives.
        rebuilt = _present_coders(out_dir, tables=speech_dir is not None, context=context_model) if same_codec else []
        previous = {name: (out_dir / name).read_bytes() for name in rebuilt}
        # Coders copied rather than counted again on the example clip: a precision folder's, for an export of this
        # codec whose own are gone (found from outside: fp16/'s tables were replaced), or the bundled model's, for
        # a decoder trained on its codes (found from outside: a --decoder_only run's files 15 % larger).
        reused, whose = ([], "") if bundled or speech_dir is not None or out_dir / TABLES_FILE in kept else (
            _precision_folder_coders(out_dir) if same_codec else _coders_of_the_same_codes(model))
        target = Path(tempfile.mkdtemp(prefix=".export-", dir=BUNDLED_MODEL_DIR.parent)) if bundled else out_dir
        try:
            result = export_codec(model, target, opset=opset, fp16=fp16, int8=int8, calibration=clips,
                                  table_files=None if out_dir / TABLES_FILE in kept or reused else table_files,
                                  validation=validation, context_model=context_model, same_codec=same_codec,
                                  coders=reused)
            if bundled:
                result = _into_bundled_layout(result)
        finally:
            if bundled:
                shutil.rmtree(target, ignore_errors=True)
        if writes_checkpoint:
            checkpoint_path = BUNDLED_CHECKPOINT if bundled else out_dir / "codec.pt"
            save_compact_codec(model, checkpoint_path, exported_from=str(checkpoint))
        elif replaced is not None and (out_dir / "codec.pt").is_file():
            # The replaced model's checkpoint (found from outside: left beside the new graphs, where --init_from or
            # a re-export would take it for this model's).
            (out_dir / "codec.pt").unlink()
            result = dataclasses.replace(result, removed=[*result.removed, out_dir / "codec.pt"])
    except (CheckpointError, ExportError, AudioFileError, ModelError, OSError) as error:
        click.echo(f"codec-export: error: {first_line(error)}", err=True)
        sys.exit(1)
    measured_on = "validation clips" if validation else "calibration clips" if clips else "a synthetic probe signal"
    report(result, measured_on, table_files, whose)
    if writes_checkpoint:  # found from outside: it was written without a line, as if --with-checkpoint did nothing
        click.echo(f"  {checkpoint_path}  {checkpoint_path.stat().st_size / 1e6:6.2f} MB  the checkpoint the graphs "
                   "were exported from (fp16 weights)")
    coders = [path for path in result.kept if path.is_file()]
    if coders:
        click.echo(f"kept {' and '.join(path.name for path in coders)}: the same model (fingerprint "
                   f"{result.fingerprint[:16]}); --tables-dir rebuilds the tables, --context-model the context model")
    for folder in (path for path in result.kept if path.is_dir()):
        click.echo(f"kept {folder}: the same model at lower precision")
    # Only what changed (found from outside: tables rebuilt from the same clips, byte for byte, got the note).
    _note_replaced_coders([name for name in rebuilt if (out_dir / name).read_bytes() != previous[name]])
    # Found from outside: coders without graphs beside them were said to belong to "the model replaced (None)".
    why = f"it belonged to the model this export replaced ({replaced})" if replaced else "no graphs of its model are here"
    for path in result.removed:
        click.echo(f"removed {path}: {why}")
    card = out_dir / MODEL_CARD
    if replaced is not None and card.is_file():
        # Written by hand (codec-export writes none), so kept, but no longer as the card of this folder's model
        # (found from outside: it was deleted, the user's own writing lost).
        moved = _unused_name(card.with_name(f"MODEL_CARD.replaced-{replaced[:16].split(':')[0]}.md"))
        card.rename(moved)
        click.echo(f"moved {card} to {moved.name}: it described the model this export replaced ({replaced}); "
                   "write one for this model")


def _unused_name(path: Path) -> Path:
    """`path`, or the first of PATH-2, PATH-3, ... (before the suffix) that does not exist."""
    candidate, number = path, 1
    while candidate.exists():
        number += 1
        candidate = path.with_name(f"{path.stem}-{number}{path.suffix}")
    return candidate


def _twin_fingerprint(checkpoint: str, rounded: bool) -> str:
    """The fingerprint of `checkpoint` exported the other way: from full-precision weights if `rounded`, else
    from the fp16-rounded weights that --with-checkpoint exports (codec.pt's)."""
    model = load_codec(checkpoint_option(checkpoint))
    if not rounded:
        round_to_compact(model)
    return export_fingerprint(model)


def _precision_folder_coders(out_dir: Path) -> tuple[list[Path], str]:
    """The tables and context model of the first precision folder of this codec's export in `out_dir` that has
    tables, and whose they are; none if none has."""
    for folder in export_folders(out_dir):
        if folder != out_dir and (folder / TABLES_FILE).is_file():
            return ([path for path in (folder / TABLES_FILE, folder / CONTEXT_FILE) if path.is_file()],
                    f"{folder.name}/'s, this model's")
    return [], ""


def _coders_of_the_same_codes(model: Codec) -> tuple[list[Path], str]:
    """The bundled model's tables (and context model) if `model` has its encoder and codebooks, weight for weight:
    its codes are then the bundled model's; else none. With whose they are."""
    if not (BUNDLED_CHECKPOINT.is_file() and (BUNDLED_MODEL_DIR / TABLES_FILE).is_file()):
        return [], ""
    bundled = load_codec(BUNDLED_CHECKPOINT)
    if bundled.config != model.config:
        return [], ""
    for ours, theirs in ((model.encoder, bundled.encoder), (model.quantizer, bundled.quantizer)):
        mine, other = ours.state_dict(), theirs.state_dict()
        if mine.keys() != other.keys() or not all(torch.equal(mine[key], other[key]) for key in mine):
            return [], ""
    return ([path for path in (BUNDLED_MODEL_DIR / TABLES_FILE, BUNDLED_MODEL_DIR / CONTEXT_FILE) if path.is_file()],
            "the bundled model's, whose encoder and codebooks this checkpoint has (its codes are the same)")


def _usable_coders(out_dir: Path, config: CodecConfig, tables: bool, context: bool) -> list[Path]:
    """The tables (if `tables`) and context model (if `context`) in `out_dir` that a re-export of the same codec
    keeps; ModelError for one that is there but unusable (found from outside: a corrupt entropy_tables.npz was
    "kept", and encoding with the folder then failed)."""
    kept = []
    for wanted, name, load, fix in ((tables, TABLES_FILE, load_tables, "--tables-dir SPEECH rebuilds it"),
                                    (context, CONTEXT_FILE, load_context_model,
                                     "--context-model --tables-dir SPEECH retrains it")):
        path = out_dir / name
        if wanted and path.is_file():
            try:
                load(path, config.n_codebooks, config.codebook_size)
            except ModelError as error:
                raise ModelError(f"{first_line(error)}; {fix}") from None
            kept.append(path)
    return kept


def _replaced_model(out_dir: Path, model: Codec, overwrite: bool, rounded: bool, twin: Callable[[], str]) -> str | None:
    """The fingerprint (16 hex digits, "unknown" for graphs exported before one was stamped) of another model's
    export in `out_dir` (its own graphs or a precision folder's), which only `overwrite` may replace; None if
    `out_dir` holds none or this very codec.
    Raises ExportError when it holds another model and `overwrite` is not given (found from outside: a copy of the
    bundled model lost its context model and kept a model card describing another model, without a word).
    `rounded`: `model` holds fp16-rounded weights (--with-checkpoint); `twin`: the fingerprint of the same
    checkpoint exported the other way, computed only when needed."""
    ours = export_fingerprint(model)
    graphs = [export_graph(folder) for folder in export_folders(out_dir)]
    # Every precision folder's graphs carry the fingerprint of the model they were exported from.
    graph, previous = next(((graph, fingerprint) for graph in graphs
                            if (fingerprint := read_fingerprint(graph)) != ours), (None, ours))
    if graph is None:
        return None
    if not overwrite and previous is not None and previous == twin():
        # Found from outside: a re-export that only added --with-checkpoint was refused as "not of this checkpoint".
        weights = ("at full precision", "fp16-rounded as --with-checkpoint exports it")
        held, now = weights if rounded else weights[::-1]
        raise ExportError(f"{out_dir} holds this checkpoint {held} ({previous[:16]}), not {now} ({ours[:16]}): "
                          "files coded with it would not decode; export as before, or pass --overwrite")
    # None: graphs exported before fingerprints were stamped, or a damaged file (found from outside: that was
    # called "another model").
    previous = previous[:16] if previous else f"unknown: {graph.name} holds none that can be read"
    if not overwrite:
        raise ExportError(f"{out_dir} holds an export that is not of this checkpoint (fingerprint {previous}; this "
                          f"checkpoint is {ours[:16]}): pass --overwrite to replace it with its tables, context "
                          "model and fp16/int8 folders (its model card is kept aside), or choose another --out")
    return previous


def _into_bundled_layout(result: ExportResult) -> ExportResult:
    """Move an export into the bundled model's places: stream graphs and tables to stream/models/default (what
    the runtime loads), offline graphs to codec/pretrained/default (training and export only)."""
    paths = {}
    for name, path in result.paths.items():
        folder = BUNDLED_MODEL_DIR if name.endswith("_stream") else BUNDLED_CHECKPOINT_DIR
        paths[name] = folder / path.name
        os.replace(path, paths[name])
    tables = None
    if result.tables is not None:
        tables = BUNDLED_MODEL_DIR / result.tables.name
        os.replace(result.tables, tables)
    context = None
    if result.context_model is not None:
        context = BUNDLED_MODEL_DIR / result.context_model.name
        os.replace(result.context_model, context)
    else:  # one left from the model this export replaces describes other codes
        (BUNDLED_MODEL_DIR / CONTEXT_FILE).unlink(missing_ok=True)
    return dataclasses.replace(result, out_dir=BUNDLED_MODEL_DIR, paths=paths, tables=tables, context_model=context)


def _clip_files(folder: Path | None, option: str, limit: int | None = None) -> list[Path]:
    """The audio files of an optional clip folder (the first `limit`), each checked to decode; one that does not is
    skipped with a line on stderr, as codec-train and codec-pack skip it (found from outside: one bad file failed
    the whole export, after its graphs were made). A usage error if none opens."""
    if folder is None:
        return []
    try:
        files = audio_files_below(folder)
    except AudioFileError as error:  # an unreadable sub-folder
        raise click.BadParameter(str(error), param_hint=option) from None
    if not files:
        raise click.BadParameter(f"{folder}: no audio files", param_hint=option)
    readable = []
    for path in files:
        try:
            check_decodes(path)
        except AudioFileError as error:
            click.echo(f"codec-export: skipping {first_line(error)}", err=True)
            continue
        readable.append(path)
        if len(readable) == limit:
            break
    if not readable:
        raise click.BadParameter(f"{folder}: none of its {len(files)} audio files can be read", param_hint=option)
    return readable


def _table_files(folder: Path | None, option: str) -> list[Path]:
    """The clips the entropy tables are counted on: `folder`'s, or the bundled example."""
    if folder is None:
        return [EXAMPLE_CLIP]
    return _clip_files(folder, option, MAX_TABLE_CLIPS)


def _tables_only(out_dir: Path, files: list[Path], context_model: bool) -> None:
    """Write OUT/entropy_tables.npz (and with `context_model`, OUT/context_model.npz) for an existing export (e.g.
    the bundled model) without touching its graphs."""
    if not (out_dir / ENCODER_STREAM).is_file():  # the tables count the encoder's codes
        raise click.BadParameter(f"{out_dir / ENCODER_STREAM}: missing (export the model first)", param_hint="--out")
    # Found from outside: tables were replaced without a word on the files they had coded, and tables from the
    # example clip were reported as "336 frames of 1 clip".
    replaced = _present_coders(out_dir, tables=True, context=context_model)
    source = _table_source(files)
    # Made in a staging folder, OUT's and its precision folders' alike, and moved in together at the end: a Ctrl-C
    # or an error while the context model trains (minutes) left OUT with new tables and the old context model, and
    # its precision folders with the old of both (found from outside).
    variants = [precision for precision in PRECISIONS if is_export(out_dir / precision)]
    try:
        staging = staging_dir(out_dir)
        try:
            tables, frames = write_tables(out_dir, files, into=staging)
            staged = [tables]
            lines = [f"{out_dir / tables.name}: entropy tables from {frames} frames of {source}"]
            if context_model:
                context, frames = write_context_model(out_dir, files, progress=click.echo, into=staging)
                staged.append(context)
                lines.append(f"{out_dir / context.name}: context model trained on {frames} frames of {source}")
            for precision in variants:
                (staging / precision).mkdir()
            share_coders(staged, (staging / precision for precision in variants))
            # Found from outside: tables counted again from the same clips are the same file, yet the note said
            # files coded with the previous ones needed a copy of them.
            replaced = [name for name in replaced if (out_dir / name).read_bytes() != (staging / name).read_bytes()]
            with interrupts_deferred():  # the lines too: a Ctrl-C held through the moves must not hide them
                move_into(staging, out_dir)
                for line in lines:
                    click.echo(line)
                for precision in variants:  # found from outside: only OUT's were rewritten, and OUT/int8 refused them
                    click.echo(f"{out_dir / precision}: the same {' and '.join(path.name for path in staged)}")
                _note_replaced_coders(replaced)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    except (AudioFileError, ExportError, OSError) as error:
        click.echo(f"codec-export: error: {first_line(error)}", err=True)
        sys.exit(1)


def _present_coders(out_dir: Path, tables: bool, context: bool) -> list[str]:
    """The names of the tables (if `tables`) and context model (if `context`) that `out_dir` holds: what an export
    that writes them replaces."""
    return [name for name, wanted in ((TABLES_FILE, tables), (CONTEXT_FILE, context))
            if wanted and (out_dir / name).is_file()]


def _note_replaced_coders(names: list[str]) -> None:
    """Say that files coded with the tables or context model `names` (now replaced) need a copy of the old ones."""
    if names:
        click.echo(f"note: files coded with the previous {' and '.join(names)} decode only with a copy of them "
                   f"(codec-decode names the ones it needs)")


def _table_source(files: list[Path]) -> str:
    """What the tables were counted on, for the line that reports them."""
    if files == [EXAMPLE_CLIP]:
        return "the bundled example clip (too short to save much: give --tables-dir SPEECH)"
    return f"{len(files)} {plural(len(files), 'clip')}"


def report(result: ExportResult, measured_on: str, table_files: list[Path], copied_from: str) -> None:
    """Print each file with its parity against PyTorch, the clips the tables were counted on (or whose tables were
    copied: `copied_from`), then each variant's quality cost."""
    click.echo(f"opset {result.opset}; parity against PyTorch (onnx.checker passed):")
    for name, path in result.paths.items():
        size = f"{path.stat().st_size / 1e6:6.2f} MB"
        if name in result.max_abs_error:
            detail = f"max abs error {result.max_abs_error[name]:.2e}"
        else:
            ties = result.code_mismatches[name]
            detail = (f"codes equal to PyTorch except {ties} {plural(ties, 'frame')} at exact ties" if ties
                      else "codes identical")
        click.echo(f"  {path}  {size}  {detail}")
    if copied_from:
        context = f" and {result.context_model.name}" if result.context_model is not None else ""
        click.echo(f"  {result.tables}{context}: {copied_from}")
    elif result.tables is not None:
        # Found from outside: "frames of speech" where the tables came from the 6.7 s example clip.
        click.echo(f"  {result.tables}  entropy tables from {result.table_frames} frames of "
                   f"{_table_source(table_files)}")
    if result.context_model is not None and not copied_from:
        click.echo(f"  {result.context_model}  context model trained on the same frames")
    for variant in result.variants.values():
        click.echo(f"{variant.precision} in {variant.paths['encoder'].parent}: cost against fp32 on {measured_on}")
        click.echo(f"  offline graphs: {variant.offline.summary()}")
        click.echo(f"  stream graphs:  {variant.stream.summary()}")

