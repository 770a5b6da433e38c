"""`codec-pack`: training folders re-encoded into shards small enough to move (train/shards.py)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import click

from sscodec.codec.config import CodecConfig
from sscodec.common.audio import AudioFileError
from sscodec.common.cli import FiniteFloatRange, NonEmptyPath, command_settings, given_flags, run_cli
from sscodec.common.text import plural
from sscodec.train.data import exclude_list_warning, read_file_list
from sscodec.train.manifest import DataError
from sscodec.train.shards import FORMATS, OPUS_KBPS, check_pack, pack_folders

_FOLDER = click.Path(exists=True, file_okay=False, path_type=Path)


@click.command(context_settings=command_settings(max_content_width=110))
@click.argument("sources", metavar="FOLDER...", nargs=-1, required=True, type=_FOLDER)
@click.option("--out", required=True, type=NonEmptyPath(path_type=Path),
              help="The pack's folder (must not exist): PACK.json and shard-000/, shard-001/, ...")
@click.option("--format", "fmt", type=click.Choice(list(FORMATS)), default="flac", show_default=True,
              help="flac: 16-bit, lossless but for the rounding; opus: Ogg Opus at --kbps (an eighth of FLAC's size "
                   "at 16 kbps on speech).")
@click.option("--kbps", type=FiniteFloatRange(*OPUS_KBPS), default=32.0, show_default=True,
              help="Opus's target bitrate (with --format opus).")
@click.option("--sample-rate", type=click.IntRange(1000, 384_000), default=CodecConfig().sample_rate,
              show_default=True, help="Resample every file to this rate, mono: the rate your model trains at.")
@click.option("--shard-mb", type=FiniteFloatRange(min=0.01), default=16.0, show_default=True,
              help="Largest shard in MiB (a single larger file makes a shard of its own).")
@click.option("--exclude", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A text file of audio files to leave out (as codec-train --exclude reads it): held-out clips.")
@click.option("--attribution", "attributions", multiple=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A licence or attribution note copied into every shard (repeatable); each source folder's "
                   "own read-me, licence and metadata files travel with its audio anyway.")
def pack_command(sources: tuple[Path, ...], out: Path, fmt: str, kbps: float, sample_rate: int, shard_mb: float,
                 exclude: Path | None, attributions: tuple[Path, ...]) -> None:
    """Re-encode the audio of each FOLDER (wav/flac/ogg/mp3, recursive, or as its metadata.jsonl lists it) into
    shards of at most --shard-mb under --out, each a folder codec-train --data_dir reads; copying the shards over
    each other gives back one tree with a sub-folder per FOLDER. Prints what the re-encoding cost on a sample of
    files (mel distance and SNR against the source)."""
    if fmt != "opus" and "--kbps" in given_flags(click.get_current_context()):
        raise click.UsageError("--kbps sets Opus's bitrate: it needs --format opus")
    kbps_or_none = kbps if fmt == "opus" else None
    try:
        check_pack(list(sources), out, fmt=fmt, sample_rate=sample_rate, kbps=kbps_or_none)
    except (ValueError, FileExistsError) as error:  # the settings, not the data: usage errors
        raise click.UsageError(str(error)) from None
    excluded = read_file_list(exclude) if exclude else set()
    # Found from outside: a list that matched nothing packed the held-out clips without a word (codec-train warns).
    # What the list alone shows is said before the packing, that it matched none of the data after it.
    listed_wrong = exclude_list_warning(exclude, excluded, None) if exclude else None
    if listed_wrong:
        click.echo(f"codec-pack: warning: {listed_wrong}", err=True)
    from tqdm.auto import tqdm

    summary = pack_folders(list(sources), out, fmt=fmt, sample_rate=sample_rate,
                           shard_bytes=round(shard_mb * (1 << 20)), kbps=kbps_or_none,
                           exclude=excluded, attributions=list(attributions),
                           progress=lambda files: tqdm(files, desc="packing", unit="file", disable=None))
    for source in summary.sources:
        parts = [f"{source.files} {plural(source.files, 'file')}", f"{source.seconds / 60:.1f} min",
                 f"{source.bytes / (1 << 20):.1f} MiB"]
        parts += [f"{source.excluded} excluded"] if source.excluded else []
        parts += [f"{len(source.skipped)} unreadable, skipped"] if source.skipped else []
        click.echo(f"  {source.name} ({source.path}): {', '.join(parts)}")
        for line in source.skipped:
            click.echo(f"    skipped: {line}", err=True)
    matched = sum(source.excluded for source in summary.sources)
    if exclude and not listed_wrong and (unmatched := exclude_list_warning(exclude, excluded, matched)):
        click.echo(f"codec-pack: warning: {unmatched}", err=True)
    rate = f" at {summary.kbps:g} kbps" if summary.kbps else ""
    click.echo(f"{out}: {len(summary.shards)} {plural(len(summary.shards), 'shard')} of {fmt}{rate}, "
               f"{summary.seconds / 3600:.2f} h of audio in {summary.bytes / (1 << 20):.1f} MiB "
               f"({summary.kbps_real:.1f} kbps), largest shard {max(s.bytes for s in summary.shards) / (1 << 20):.1f} MiB")
    if summary.mel_distance is not None:
        click.echo(f"re-encoding cost on {summary.scored_files} {plural(summary.scored_files, 'file')}: mel distance "
                   f"{summary.mel_distance:.4f}, SNR {summary.snr_db:.1f} dB (against the source at "
                   f"{summary.sample_rate} Hz; codec-train's validation reports the same mel distance)")


def main(args: Sequence[str] | None = None) -> None:
    """Console entry point of codec-pack: one line on stderr and a non-zero exit for any mistake."""
    run_cli(pack_command, "codec-pack", (DataError, AudioFileError, OSError), args)
