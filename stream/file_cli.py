"""`codec-encode` and `codec-decode`: an audio file to a compressed file and back, through the bundled or any model."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import click

from sscodec.common.audio import (
    AudioFileError,
    AudioWriter,
    LevelWatch,
    audio_container,
    audio_output,
    read_audio,
)
from sscodec.common.cli import (
    FiniteFloatRange,
    InputFile,
    OutputFile,
    check_audio_outputs,
    check_binary_outputs,
    check_outputs,
    command_settings,
    model_dir_callback,
    run_cli,
)
from sscodec.common.errors import StreamError
from sscodec.common.files import STANDARD_OUTPUT, writes_stdout
from sscodec.common.text import plural
from sscodec.stream.bitstream import MAX_PACKET_FRAMES
from sscodec.stream.engine import bitrate_cap_note, codebook_count
from sscodec.stream.file_codec import DEFAULT_PACKET_FRAMES, FileReader, encode_file
from sscodec.stream.model import CodecModel
from sscodec.stream.model_dir import resolve_model_dir
from sscodec.stream.packet import CodingMode
from sscodec.stream.packing import packed_size

_OUTPUT = OutputFile(dash="/dev/stdout")
_OUTPUT_AUDIO = OutputFile(dash=STANDARD_OUTPUT)  # a WAV made whole first (its header holds the length), then copied out
_MODEL_HELP = "Directory with the exported ONNX files, or 'default' (the bundled model, also used when absent)."


@click.command(context_settings=command_settings())
@click.argument("input_path", metavar="INPUT", type=InputFile())
@click.argument("output_path", metavar="OUTPUT", type=_OUTPUT)
@click.option("--model", "model_dir", callback=model_dir_callback, help=_MODEL_HELP)
@click.option("--codebooks", type=click.IntRange(1, None), help="Code the first Q codebooks (raw: Q x the model's kbps per codebook, 0.5 for the bundled model).")
@click.option("--bitrate", type=FiniteFloatRange(min=0, min_open=True),
              help="Raw bitrate in kbps: as many codebooks as fit at the model's raw bits per code, all of them above "
                   "their total (entropy coding then spends less).")
@click.option("--raw", is_flag=True, help="Pack codes at a constant 10 bits instead of entropy-coding them.")
@click.option("--static-tables", is_flag=True,
              help="Entropy-code with the static per-codebook tables, not the context model (larger files, faster "
                   "decoding).")
@click.option("--packet-frames", type=click.IntRange(1, MAX_PACKET_FRAMES), default=DEFAULT_PACKET_FRAMES,
              show_default=True,
              help="Frames per packet. Each packet carries its own framing and range-coder flush: on a 12.8 s "
                   "Telugu clip at 12 codebooks, 1 frame per packet made 12.2 kbps, 5 made 6.7, 25 made 5.5 and "
                   "50 made 5.3.")
def encode_command(input_path: Path, output_path: Path, model_dir: str | Path | None, codebooks: int | None,
                   bitrate: float | None, raw: bool, static_tables: bool, packet_frames: int) -> None:
    """Compress INPUT (any audio file soundfile reads; - for standard input) to OUTPUT, a codec bitstream file
    (- for standard output)."""
    check_outputs({"OUTPUT": output_path}, {"INPUT": input_path})
    check_binary_outputs({"OUTPUT": output_path})
    if audio_container(output_path) is not None:  # found from outside: no player opened the "audio" it wrote
        raise click.UsageError(f"OUTPUT {output_path} is named as audio ({output_path.suffix}): codec-encode writes "
                               f"a codec bitstream, e.g. to {output_path.with_suffix('.sscb')} (codec-decode makes "
                               "audio of it)")
    if codebooks is not None and bitrate is not None:
        raise click.UsageError("give --codebooks or --bitrate, not both")
    if raw and static_tables:
        raise click.UsageError("give --raw or --static-tables, not both")
    model = CodecModel(resolve_model_dir(model_dir))
    try:
        count = codebook_count(model.info, codebooks, bitrate)
    except ValueError as error:
        raise click.UsageError(str(error)) from None
    # Found from outside: codec-stream said so, codec-encode coded fewer kbps without a word.
    if (note := bitrate_cap_note(model.info, bitrate, "coding")) is not None:
        click.echo(f"codec-encode: {note}", err=True)
    mode = CodingMode.RAW if raw else CodingMode.ENTROPY if static_tables else CodingMode.CONTEXT
    # One note for a fallback: to the static tables without a context model, to raw without tables either.
    no_context = mode is CodingMode.CONTEXT and not model.has_context_model
    if no_context:
        mode = CodingMode.ENTROPY
    if mode is CodingMode.ENTROPY and not model.has_tables:
        click.echo(f"codec-encode: note: {model.tables_path} not found: writing raw "
                   f"{model.info.bits_per_code}-bit codes", err=True)
        mode = CodingMode.RAW
    elif no_context:
        click.echo(f"codec-encode: note: {model.context_path} not found: coding with the static tables", err=True)
    audio = read_audio(input_path, model.info.sample_rate)
    level = LevelWatch()
    level.add(audio)
    if (note := level.note(input_path)) is not None:
        click.echo(f"codec-encode: note: {note}", err=True)
    summary = encode_file(model, audio, output_path, count, mode, packet_frames)
    seconds = audio.shape[0] / model.info.sample_rate
    # The rate over the frames coded (the last one padded), as a listener spends it: over the input's own length a
    # 1-sample file was "10624.00 kbps" (found from outside); a whole file differs by under one frame.
    coded_seconds = sum(summary.frames) * model.info.frame_ms / 1000
    raw_bytes = sum(packed_size(count, frames, model.info.bits_per_code) for frames in summary.frames)
    fallback = f" ({summary.modes.count(CodingMode.RAW)} sent raw)" if mode is not CodingMode.RAW else ""
    click.echo(f"{output_path}: {seconds:.2f} s, {count} {plural(count, 'codebook')}, {mode.name.lower()}, "
               f"{summary.packets} {plural(summary.packets, 'packet')}"
               f"{fallback}, "
               f"{summary.file_bytes} bytes ({summary.file_bytes * 8 / coded_seconds / 1000:.2f} kbps); codes "
               f"{sum(summary.payload_bytes) / raw_bytes:.1%} of raw {model.info.bits_per_code}-bit packing",
               err=writes_stdout(output_path))  # the bitstream owns stdout


@click.command(context_settings=command_settings())
@click.argument("input_path", metavar="INPUT", type=InputFile())
@click.argument("output_path", metavar="OUTPUT", type=_OUTPUT_AUDIO)
@click.option("--model", "model_dir", callback=model_dir_callback, help=_MODEL_HELP)
@click.option("--start", type=FiniteFloatRange(min=0), default=0.0, show_default=True,
              help="Decode from this time (seconds): packets before it are skipped, not decoded.")
@click.option("--duration", type=FiniteFloatRange(min=0, min_open=True),
              help="Decode this many seconds (to the end at most); default: to the end.")
def decode_command(input_path: Path, output_path: Path, model_dir: str | Path | None, start: float,
                   duration: float | None) -> None:
    """Decode INPUT, a file from codec-encode (- for standard input), to OUTPUT audio (the model's rate; the
    original length, or the part that --start and --duration ask for; - for WAV on standard output)."""
    # Standard output is checked as codec-encode checks it (found from outside: a closed one was a traceback).
    check_outputs({"OUTPUT": output_path}, {} if str(output_path) == STANDARD_OUTPUT else {"INPUT": input_path})
    check_binary_outputs({"OUTPUT": output_path})
    check_audio_outputs({"OUTPUT": output_path})  # by the name given: the temp file written first has another one
    model = CodecModel(resolve_model_dir(model_dir), decode_only=True)  # a receiver's folder may lack the encoder
    with FileReader(model, input_path) as reader:
        rate, samples = reader.header.sample_rate, reader.header.samples
        if not start * rate < samples:
            raise click.BadParameter(f"{start:g} s is not before the end of {input_path} (which ends at {reader.seconds:.6g} s)",
                                     param_hint="'--start'")
        first = min(samples - 1, round(start * rate))
        length = None
        if duration is not None:  # finite and > 0 (FiniteFloatRange)
            length = None if duration * rate >= samples else max(1, round(duration * rate))
        # Written beside OUTPUT and renamed when complete: an error or Ctrl-C leaves OUTPUT as it was.
        with audio_output(output_path) as temp, AudioWriter(temp, rate) as writer:
            for piece in reader.audio(first, length):
                writer.write(piece)


def encode_main(args: Sequence[str] | None = None) -> None:
    """Console entry point of codec-encode: one line on stderr and a non-zero exit for any mistake."""
    run_cli(encode_command, "codec-encode", (StreamError, AudioFileError), args)


def decode_main(args: Sequence[str] | None = None) -> None:
    """Console entry point of codec-decode: one line on stderr and a non-zero exit for any mistake."""
    run_cli(decode_command, "codec-decode", (StreamError, AudioFileError), args)
