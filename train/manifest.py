"""The manifest of a data folder: each usable audio file with its length, sample rate and channels, cached on disk.

Only headers are read, once, with a progress bar; later runs reuse the cache and re-probe only files whose size
or modification time changed (added, replaced or removed files update just their entries).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sscodec.common.audio import AudioFileError, AudioInfo, audio_files_below, probe_audio

CACHE_VERSION = 1
log = logging.getLogger(__name__)


class DataError(ValueError):
    """A data folder that cannot be trained on (missing, empty, nothing decodable)."""


@dataclass(frozen=True)
class ManifestEntry(AudioInfo):
    """One audio file: its header's `AudioInfo`, its `path`, and the `size` (bytes) and `mtime_ns` that detect
    changes."""

    path: Path
    size: int
    mtime_ns: int


@dataclass
class Manifest:
    """The usable files of `root` in listing order, and how many were skipped as unreadable."""

    root: Path
    entries: list[ManifestEntry]
    skipped: int

    @property
    def seconds(self) -> float:
        return sum(e.seconds for e in self.entries)


def check_data_folder(root: Path) -> None:
    """DataError unless `root` is an existing folder."""
    if not root.exists():
        raise DataError(f"{root}: no such data folder")
    if not root.is_dir():
        raise DataError(f"{root}: is not a folder")


def overlapping_pair(folders: Sequence[Path]) -> tuple[int, int] | None:
    """Indices of the first two `folders` that are the same folder or one inside the other, else None.

    Folders are read recursively (list_audio_files), so such a pair would list the inner folder's files twice.
    """
    resolved = [folder.resolve() for folder in folders]
    for index, folder in enumerate(resolved):
        for other_index in range(index + 1, len(resolved)):
            other = resolved[other_index]
            if folder == other or folder in other.parents or other in folder.parents:
                return index, other_index
    return None


def list_audio_files(root: Path) -> list[Path]:
    """Files named by `metadata.jsonl` in `root` if present, else every audio file below `root`, sorted."""
    check_data_folder(root)
    metadata = root / "metadata.jsonl"
    if metadata.is_file():
        first_line: dict[Path, int] = {}  # file → its line; a repeat would be trained on twice as often
        for number, line in enumerate(metadata.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip():
                try:
                    path = root / json.loads(line)["file"]
                except (json.JSONDecodeError, KeyError, TypeError):
                    raise DataError(f"{metadata}:{number}: expected a JSON object with a 'file' key") from None
                if path in first_line:
                    log.warning("%s:%d: %s is listed again (first on line %d); counted once", metadata, number,
                                _listed_name(path, root), first_line[path])
                else:
                    first_line[path] = number
        return list(first_line)
    return audio_files_below(root)


def _listed_name(path: Path, root: Path) -> str:
    """`path` as metadata.jsonl names it: relative to `root`, or absolute where the metadata gave it so."""
    return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)


def cache_path(root: Path, cache_dir: Path) -> Path:
    """Where the manifest of `root` is cached: one file per absolute folder path."""
    absolute = str(root.resolve())
    digest = hashlib.sha1(absolute.encode()).hexdigest()[:12]
    return cache_dir / f"{root.resolve().name or 'root'}-{digest}.json"


def load_manifest(root: Path, cache_dir: Path, min_seconds: float, progress: bool = True) -> Manifest:
    """The manifest of `root`, from the cache in `cache_dir` where files are unchanged, probed where not.

    Files that cannot be read are skipped with one warning each and counted; files shorter than `min_seconds`
    are left out silently. Raises DataError when `root` is missing or holds no usable audio.
    """
    from tqdm.auto import tqdm

    files = list_audio_files(root)
    if not files:
        raise DataError(f"{root}: no audio files (.wav, .flac, .ogg, .mp3) found")
    cache = cache_path(root, cache_dir)
    known = _read_cache(cache, root)
    entries: list[ManifestEntry] = []
    skipped = probed = 0
    started = time.monotonic()
    # The bar only on a terminal (disable=None); logs and captured runs get the summary line below instead.
    bar = tqdm(files, desc=f"manifest of {root}", unit="file", disable=None if progress else True, mininterval=2.0)
    for path in bar:
        try:
            stat = path.stat()
        except OSError:
            stat = None
        cached = known.get(path)
        if stat is not None and cached is not None and (cached.size, cached.mtime_ns) == (stat.st_size,
                                                                                          stat.st_mtime_ns):
            entry = cached
        else:
            probed += 1
            try:
                info = probe_audio(path)
            except AudioFileError as error:
                log.warning("skipping %s", error)
                skipped += 1
                continue
            assert stat is not None  # probe_audio raised for a file that cannot be stat'ed
            entry = ManifestEntry(**vars(info), path=path, size=stat.st_size, mtime_ns=stat.st_mtime_ns)
        if entry.seconds >= min_seconds:
            entries.append(entry)
    if not entries:
        raise DataError(f"{root}: none of {len(files)} files is readable audio of at least {min_seconds} s")
    if probed or len(known) != len(entries):
        _write_cache(cache, root, entries)
    if probed and progress:
        log.info("manifest of %s: %d of %d files probed in %.1f s (%d unreadable, skipped; %d shorter than "
                 "%g s, left out), cached in %s", root, probed, len(files), time.monotonic() - started, skipped,
                 len(files) - skipped - len(entries), min_seconds, cache)
    return Manifest(root, entries, skipped)


def _read_cache(cache: Path, root: Path) -> dict[Path, ManifestEntry]:
    """Cached entries by path; empty when there is no cache or it is from another version or unreadable."""
    try:
        data = json.loads(cache.read_text(encoding="utf-8"))
        if data.get("version") != CACHE_VERSION:
            return {}
        # Names are stored relative to the folder, so a run from another working directory still finds them.
        entries = (ManifestEntry(*row[1:4], root / row[0], *row[4:]) for row in data["entries"])
        return {entry.path: entry for entry in entries}
    except (OSError, ValueError, TypeError, KeyError):
        return {}


def _write_cache(cache: Path, root: Path, entries: list[ManifestEntry]) -> None:
    """Write atomically: DDP ranks and concurrent runs may read it while it is rewritten."""
    rows = [[_listed_name(e.path, root), e.frames, e.sample_rate, e.channels, e.size, e.mtime_ns] for e in entries]
    text = json.dumps({"version": CACHE_VERSION, "root": str(root.resolve()), "entries": rows})
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        temp = cache.with_name(f".{cache.name}.{os.getpid()}.tmp")
        temp.write_text(text, encoding="utf-8")
        os.replace(temp, cache)
    except OSError as error:
        log.warning("could not cache the manifest of %s in %s (%s); it is rebuilt next run", root, cache,
                    error.strerror or error)
