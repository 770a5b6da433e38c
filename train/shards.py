"""Training folders re-encoded into shards small enough to move (`codec-pack`).

A shard is a folder of at most `shard_bytes` of audio that `codec-train --data_dir` reads as it is; several
shards of one pack merge back into one tree by copying them over each other, since every source keeps its own
sub-folder and its relative paths:

    OUT/PACK.json                       what was packed: sources, format, rates, sizes, the re-encoding's cost
    OUT/shard-000/ATTRIBUTION.md        each --attribution file, in every shard
    OUT/shard-000/<source>/README.md    the source's own licence and read-me files, in every shard holding it
    OUT/shard-000/<source>/source-metadata.jsonl
                                        its metadata.jsonl, renamed: it names the source's files, and the loader
                                        would read only those; each shard's audio is listed by its folders instead
    OUT/shard-000/<source>/a/b.ogg      a/b.flac of <source>, re-encoded (a file that the metadata listed from
                                        outside the folder goes under <source>/external/ by its absolute path)
    OUT/shard-001/<source>/...

FLAC is lossless (16-bit PCM at the chosen rate, mono). Ogg Opus is libopus through libsndfile, whose only
bitrate control is a compression level: bitrate = ((1 - level) x 250 + 6) kbps per channel
(libsndfile src/ogg_opus.c, SFC_SET_COMPRESSION_LEVEL).
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import soundfile
import torch

from sscodec.common.audio import OPUS_RATES, AudioFileError, read_audio
from sscodec.common.files import umask_mode
from sscodec.common.text import distinct_names, folder_name
from sscodec.train.losses import MultiScaleMelLoss
from sscodec.train.manifest import DataError, list_audio_files, overlapping_pair
from sscodec.train.metrics import snr_db

FORMATS = {"flac": ".flac", "opus": ".ogg"}
# libsndfile's Ogg Opus encoder: the range its compression level spans.
OPUS_KBPS = (6.0, 256.0)
# A source's files that travel with its audio: licences, read-mes, metadata (its attribution).
NOTE_SUFFIXES = frozenset({".md", ".txt", ".jsonl", ".json", ".csv", ".tsv"})
NOTE_PREFIXES = ("readme", "license", "licence", "copying", "notice", "attribution")
# Files whose re-encoding is scored (spread evenly over the pack): enough for a mean, seconds of CPU.
SCORED_FILES = 40


@dataclass
class SourceSummary:
    """One packed folder: where it came from, and what of it went in."""

    name: str  # its sub-folder in every shard
    path: str
    files: int = 0
    seconds: float = 0.0
    bytes: int = 0
    excluded: int = 0  # named by the exclude list
    skipped: list[str] = field(default_factory=list)  # unreadable files, one line each


@dataclass
class ShardSummary:
    name: str
    files: int = 0
    bytes: int = 0  # audio and notes, as it travels
    seconds: float = 0.0


@dataclass
class PackSummary:
    """PACK.json: the pack's recipe, its sources and shards, and what re-encoding cost on a sample of files."""

    format: str
    kbps: float | None  # Opus's target; None for FLAC
    sample_rate: int
    shard_bytes: int
    sources: list[SourceSummary]
    shards: list[ShardSummary]
    # Against the source resampled to `sample_rate` (what training would read without the pack), on `scored_files`
    # files: the training's multi-scale mel distance (train/losses.py) and the waveform SNR.
    scored_files: int = 0
    mel_distance: float | None = None
    snr_db: float | None = None

    @property
    def seconds(self) -> float:
        return sum(source.seconds for source in self.sources)

    @property
    def bytes(self) -> int:
        return sum(shard.bytes for shard in self.shards)

    @property
    def kbps_real(self) -> float:
        """Audio bytes over audio time, notes included."""
        return self.bytes * 8 / max(self.seconds, 1e-9) / 1000


def opus_compression_level(kbps: float) -> float:
    """libsndfile's compression level for an Ogg Opus target of `kbps` per channel (module docstring)."""
    low, high = OPUS_KBPS
    if not low <= kbps <= high:
        raise ValueError(f"Opus bitrate must be in {low:g}..{high:g} kbps, got {kbps:g}")
    return 1.0 - (kbps - low) / (high - low)


def source_names(sources: list[Path]) -> list[str]:
    """Each source's sub-folder name: its own name, with -2, -3, ... for a name already taken (train, train-2)."""
    return distinct_names(folder_name(source) for source in sources)


def note_files(source: Path) -> list[Path]:
    """The licence, read-me and metadata files at the top of `source` (not its audio)."""
    return sorted(
        path for path in source.iterdir()
        if path.is_file() and (path.suffix.lower() in NOTE_SUFFIXES or path.name.lower().startswith(NOTE_PREFIXES))
    )


def check_pack(sources: list[Path], out: Path, *, fmt: str, sample_rate: int, kbps: float | None) -> float | None:
    """Refuse a pack that cannot be written, before any file is read; returns libsndfile's compression level for
    Opus (None for FLAC).

    Raises ValueError for a format, rate or bitrate that cannot be written, for overlapping `sources` (their
    files would be packed twice) or an `out` inside one of them, FileExistsError for an `out` that exists.
    """
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    level = None
    if fmt == "opus":
        if kbps is None:
            raise ValueError("Opus needs a bitrate (kbps)")
        level = opus_compression_level(kbps)
        if sample_rate not in OPUS_RATES:
            raise ValueError(f"Opus codes {', '.join(map(str, OPUS_RATES))} Hz, not {sample_rate} Hz")
    pair = overlapping_pair(sources)
    if pair is not None:
        raise ValueError(f"{sources[pair[0]]} and {sources[pair[1]]} overlap (the same folder, or one inside the "
                         "other): give each folder once")
    if out.exists():
        raise FileExistsError(f"{out} exists: choose a new folder for the pack")
    for source in sources:
        # Found from outside: accepted, and the next pack of that folder packed this pack again.
        if Path(os.path.realpath(out)).is_relative_to(os.path.realpath(source)):
            raise ValueError(f"--out {out} is inside {source}, which it packs: a later pack or codec-train run "
                             "of that folder would read the pack as more data; choose a folder outside it")
    return level


def pack_folders(
    sources: list[Path],
    out: Path,
    *,
    fmt: str,
    sample_rate: int,
    shard_bytes: int,
    kbps: float | None = None,
    exclude: set[Path] | None = None,
    attributions: list[Path] | None = None,
    progress: Callable[[list], Iterable] = iter,
) -> PackSummary:
    """Re-encode every audio file of `sources` (as codec-train lists them) into shards of at most `shard_bytes`
    under `out`, which must not exist; written beside it and renamed when complete, so an error leaves nothing.
    Files are mono at `sample_rate` Hz; `fmt` "flac", or "opus" at `kbps`. A file that cannot be read is skipped
    and listed (one line each); files in `exclude` are left out; `attributions` are copied into every shard.

    Raises what check_pack raises, DataError for a source that holds no audio or no file that can be read, OSError
    for an `out` that cannot be written.
    """
    level = check_pack(sources, out, fmt=fmt, sample_rate=sample_rate, kbps=kbps)
    excluded = {path.resolve() for path in exclude or set()}
    summaries = [SourceSummary(name, str(source)) for name, source in zip(source_names(sources), sources, strict=True)]
    listed = []
    for summary, source in zip(summaries, sources, strict=True):
        files = list_audio_files(source)
        if not files:
            raise DataError(f"{source}: no audio files found")
        kept = [path for path in files if path.resolve() not in excluded]
        summary.excluded = len(files) - len(kept)
        listed += [(summary, source, path) for path in kept]
    scored = set(np.linspace(0, len(listed) - 1, min(SCORED_FILES, len(listed))).round().astype(int).tolist())
    scorer = _Scorer(sample_rate)

    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        temp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    except OSError as error:  # named as the pack, not as its hidden temp folder (found from outside)
        raise OSError(error.errno, error.strerror, str(out)) from None
    temp.chmod(umask_mode(0o777))  # the pack is renamed to OUT whole: mkdtemp's 0700 hid it from other users
    try:
        shards: list[ShardSummary] = []
        noted: set[tuple[str, str]] = set()  # (shard, source) pairs whose notes are already copied
        taken: set[Path] = set()  # names in the tree that the shards copied over each other make
        encoded = temp / f"encoded{FORMATS[fmt]}"  # each file's bytes, before its shard is known
        for index, (summary, source, path) in enumerate(progress(listed)):
            try:
                audio = read_audio(path, sample_rate)
            except AudioFileError as error:
                summary.skipped.append(str(error))
                continue
            size = _encode(audio, sample_rate, fmt, level, encoded)
            if not shards or (shards[-1].files and shards[-1].bytes + size > shard_bytes):
                shards.append(ShardSummary(f"shard-{len(shards):03d}"))
                shards[-1].bytes += _copy_notes(attributions or [], temp / shards[-1].name)
            shard = shards[-1]
            if (shard.name, summary.name) not in noted:
                noted.add((shard.name, summary.name))
                shard.bytes += _copy_notes(note_files(source), temp / shard.name / summary.name)
            name = unique_name(Path(summary.name, packed_path(path, source)), FORMATS[fmt], taken)
            target = temp / shard.name / name
            target.parent.mkdir(parents=True, exist_ok=True)
            encoded.rename(target)
            seconds = audio.shape[0] / sample_rate
            shard.files, shard.bytes, shard.seconds = shard.files + 1, shard.bytes + size, shard.seconds + seconds
            summary.files, summary.bytes, summary.seconds = summary.files + 1, summary.bytes + size, summary.seconds + seconds
            if index in scored:
                scorer.add(target, audio)
        for summary, source in zip(summaries, sources, strict=True):
            if not summary.files:
                why = summary.skipped[0] if summary.skipped else "the exclude list names every one"
                raise DataError(f"{source}: none of its audio files can be packed ({why})")
        result = PackSummary(fmt, kbps if level is not None else None, sample_rate, shard_bytes, summaries, shards,
                             **scorer.result())
        (temp / "PACK.json").write_text(json.dumps(asdict(result), indent=1) + "\n", encoding="utf-8")
        temp.rename(out)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    return result


def _encode(audio: np.ndarray, sample_rate: int, fmt: str, level: float | None, path: Path) -> int:
    """Write one file to `path`, 16-bit FLAC or Ogg Opus at compression `level`, samples clipped to [-1, 1]; its
    size in bytes.

    To a path, not to a file object: libsndfile then writes in C. Through a file object it calls back into Python,
    and cffi swallows what a callback raises (found from outside: a Ctrl-C or SIGTERM that landed there was
    printed as "Exception ignored from cffi callback", and the pack went on, exit 0, with that file cut short)."""
    if fmt == "flac":
        soundfile.write(path, np.clip(audio, -1, 1), sample_rate, format="FLAC", subtype="PCM_16")
    else:
        soundfile.write(path, np.clip(audio, -1, 1), sample_rate, format="OGG", subtype="OPUS",
                        compression_level=level)
    return path.stat().st_size


def _copy_notes(files: list[Path], folder: Path) -> int:
    """Copy `files` into `folder` (a metadata.jsonl as source-metadata.jsonl); their bytes."""
    folder.mkdir(parents=True, exist_ok=True)
    for path in files:
        shutil.copyfile(path, folder / (f"source-{path.name}" if path.name == "metadata.jsonl" else path.name))
    return sum(path.stat().st_size for path in files)


def packed_path(path: Path, source: Path) -> Path:
    """Where `path`, one of `source`'s files, goes in the source's sub-folder of a shard (suffix unchanged).

    Compared with their `..` taken out (found from outside: a metadata.jsonl entry "../../../notes.wav" is within
    the folder to `Path.is_relative_to`, and the pack wrote over a file outside --out)."""
    normal, folder = Path(os.path.normpath(path)), Path(os.path.normpath(source))
    if normal.is_relative_to(folder) and normal != folder:
        return normal.relative_to(folder)
    return Path("external", *path.resolve().parts[1:])


def unique_name(name: Path, suffix: str, taken: set[Path]) -> Path:
    """`name` with `suffix`, or, where an earlier file took that (x.wav and x.flac both become x.flac), the
    original suffix kept in the stem (x.wav.flac), then a counter (x.wav-2.flac); the result is added to `taken`.

    Found from outside: the second of x.wav and x.flac overwrote the first, and the pack counted both.
    """
    candidates = [name.with_suffix(suffix)]
    if name.suffix.lower() != suffix:
        candidates.append(name.with_name(name.name + suffix))
    base = candidates[-1]
    counted = (base.with_name(f"{base.stem}-{n}{suffix}") for n in itertools.count(2))
    chosen = next(c for c in itertools.chain(candidates, counted) if c not in taken)
    taken.add(chosen)
    return chosen


class _Scorer:
    """Mean mel distance and SNR of re-encoded files (decoded from the shard) against what they were made from."""

    def __init__(self, sample_rate: int) -> None:
        self.sample_rate = sample_rate
        self.mel = MultiScaleMelLoss(sample_rate)
        self.mels: list[float] = []
        self.snrs: list[float] = []

    def add(self, file: Path, reference: np.ndarray) -> None:
        decoded = read_audio(file, self.sample_rate)[: reference.shape[0]]
        decoded = np.pad(decoded, (0, reference.shape[0] - decoded.shape[0]))
        est, ref = torch.from_numpy(decoded)[None], torch.from_numpy(np.clip(reference, -1, 1))[None]
        if ref.shape[1] < self.mel.min_length or not ref.abs().max() > 0:
            return
        with torch.no_grad():
            self.mels.append(float(self.mel.distance(est, ref)[0]))
        self.snrs.append(float(snr_db(est, ref)[0]))

    def result(self) -> dict:
        if not self.mels:
            return {}
        return {"scored_files": len(self.mels), "mel_distance": float(np.mean(self.mels)),
                "snr_db": float(np.mean(self.snrs))}
