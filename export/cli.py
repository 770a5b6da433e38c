"""`codec-export`: turn a checkpoint into the four verified ONNX files (and fp16/int8 copies)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from sscodec.codec.checkpoint import CheckpointError, load_codec, save_compact_codec
from sscodec.export.calibration import audio_files, load_clips
from sscodec.export.errors import ExportError, first_line
from sscodec.export.onnx_export import ExportResult, export_codec
from sscodec.common.audio import AudioFileError
from sscodec.common.cli import run_cli
from sscodec.common.errors import ModelError
from sscodec.common.bundled import resolve_checkpoint as resolve_bundled


def resolve_checkpoint(value: str) -> Path:
    """The checkpoint file that `--checkpoint` names; "default" is the bundled model's."""
    try:
        path = resolve_bundled(value)
    except ModelError as error:
        raise click.BadParameter(str(error), param_hint="--checkpoint") from None
    if not path.exists():
        raise click.BadParameter(f"{path}: no such checkpoint", param_hint="--checkpoint")
    return path


class OneLineErrors(click.Command):
    """Usage errors as one line on stderr and exit code 2, as codec-train and codec-stream answer them."""

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None, standalone_mode: bool = True,
             **extra: Any) -> Any:
        # The console script calls main() directly: route it through run_cli instead of click's usage banner.
        if not standalone_mode:
            return super().main(args, prog_name, standalone_mode=False, **extra)
        return run_cli(self, "codec-export", (), args)


@click.command(cls=OneLineErrors, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--onnx", "to_onnx", is_flag=True, help="Export to ONNX (the only format so far).")
@click.option("--checkpoint", required=True, metavar="FILE", help="Checkpoint written by codec-train.")
@click.option(
    "--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path), help="Output folder."
)
@click.option("--fp16", is_flag=True, help="Also write OUT/fp16: half-precision weights and activations.")
@click.option("--int8", is_flag=True, help="Also write OUT/int8: static int8 QDQ, calibrated on speech.")
@click.option(
    "--calibration_dir",
    "--calibration-dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Speech clips for int8 calibration and for measuring the fp16/int8 quality cost.",
)
@click.option("--opset", type=int, default=None, help="ONNX opset (default 18).")
@click.option("--with_checkpoint", "--with-checkpoint", is_flag=True,
              help="Also write OUT/codec.pt: the model alone in fp16, to train on from (--init_from OUT/codec.pt).")
def main(
    to_onnx: bool,
    checkpoint: str,
    out_dir: Path,
    fp16: bool,
    int8: bool,
    calibration_dir: Path | None,
    opset: int | None,
    with_checkpoint: bool,
) -> None:
    """Export a codec checkpoint to encoder.onnx, decoder.onnx, encoder_stream.onnx, decoder_stream.onnx."""
    if not to_onnx:
        raise click.UsageError("nothing to export: pass --onnx")
    if int8 and calibration_dir is None:
        raise click.UsageError("--int8 needs --calibration_dir (a folder of speech clips)")
    files = audio_files(calibration_dir) if calibration_dir is not None else []
    if calibration_dir is not None and not files:
        raise click.BadParameter(f"{calibration_dir}: no audio files", param_hint="--calibration_dir")
    # The exporter and the quantizer log advice meant for their developers; errors still come through.
    logging.basicConfig(level=logging.ERROR)
    logging.getLogger("torch").setLevel(logging.ERROR)
    try:
        model = load_codec(resolve_checkpoint(checkpoint))
        config = model.config
        clips = load_clips(files, config.sample_rate, config.frame_size) if files else None
        click.echo(f"exporting {checkpoint} ({config.preset}, {config.n_codebooks} codebooks) to {out_dir}")
        result = export_codec(model, out_dir, opset=opset, fp16=fp16, int8=int8, calibration=clips)
        if with_checkpoint:
            save_compact_codec(model, out_dir / "codec.pt", exported_from=str(checkpoint))
    except (CheckpointError, ExportError, AudioFileError, OSError) as error:
        click.echo(f"codec-export: error: {first_line(error)}", err=True)
        sys.exit(1)
    report(result, "calibration clips" if clips else "a synthetic probe signal")


def report(result: ExportResult, measured_on: str) -> None:
    """Print each file with its parity against PyTorch, then each variant's quality cost."""
    click.echo(f"opset {result.opset}; parity against PyTorch (onnx.checker passed):")
    for name, path in result.paths.items():
        size = f"{path.stat().st_size / 1e6:6.2f} MB"
        if name in result.max_abs_error:
            detail = f"max abs error {result.max_abs_error[name]:.2e}"
        else:
            ties = result.code_mismatches[name]
            detail = f"codes equal to PyTorch except {ties} frames at exact ties" if ties else "codes identical"
        click.echo(f"  {path}  {size}  {detail}")
    for variant in result.variants.values():
        click.echo(f"{variant.precision} in {variant.paths['encoder'].parent}: cost against fp32 on {measured_on}")
        click.echo(f"  offline graphs: {variant.offline.summary()}")
        click.echo(f"  stream graphs:  {variant.stream.summary()}")

