"""Training data: random fixed-length crops read from disk by DataLoader workers, mixed over folders by weight.

The batch of a step is a pure function of (seed, rank, step): which files and offsets it reads is drawn from a
generator seeded by them, and so is its augmentation. A resumed run, or one with any number of workers, sees
exactly the batches an uninterrupted one would have seen. Each DDP rank reads its own share of every folder's
files, so ranks never train on the same crop.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import math
import os
import re
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler

from sscodec.common.audio import AudioFileError, read_audio, read_frames, to_mono_rate
from sscodec.common.text import plural
from sscodec.train.augment import Augmentation, augment
from sscodec.train.manifest import DataError, Manifest, ManifestEntry, list_audio_files

# Formats libsndfile cannot seek in exactly: decoded once on first use and cached at the training rate.
UNSEEKABLE_SUFFIXES = {".mp3"}
VAL_SHARE = 0.02  # of each folder's files held out for validation when there is no --val_dir
VAL_MIN_FILES = 10  # a folder with fewer files cannot spare any
VAL_MAX_FILES = 50  # per folder: validation runs on the main process between steps
VAL_MAX_SECONDS = 10.0  # of each held-out file (long recordings would make validation slow)
MAX_READ_ATTEMPTS = 10  # files tried in turn when a file's data fails to decode mid-training
log = logging.getLogger(__name__)


def read_file_list(path: Path) -> set[Path]:
    """The audio files a `--exclude` list names, resolved: one path per line, relative ones to the list's
    folder; blank lines and '#' comments ignored. DataError when the list cannot be read as text."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(f"{path}: cannot read the file list ({error})") from None
    lines = (line.split("#", 1)[0].strip() for line in text.splitlines())
    return {(path.parent / line).resolve() for line in lines if line}


def exclude_list_warning(listing: Path, excluded: set[Path], matched: int | None) -> str | None:
    """What looks mistaken about the --exclude list `listing` (its files `excluded`, as `read_file_list` gives
    them), as one line, or None: it names no files, names files that do not exist, or (`matched`: how many files
    of the data folders it left out; None: not known yet) none of the data."""
    missing = sorted(path for path in excluded if not path.exists())
    if not excluded:
        return f"the --exclude list {listing} names no files"
    if missing:
        return (f"{len(missing)} of the {len(excluded)} files in the --exclude list {listing} do not exist (first: "
                f"{missing[0]}; relative paths are read from the list's folder)")
    if matched == 0:
        return f"none of the {len(excluded)} files in the --exclude list {listing} is in the data folders"
    return None


def _seeded(*parts: int) -> torch.Generator:
    return torch.Generator().manual_seed(int.from_bytes(hashlib.sha256(repr(parts).encode()).digest()[:7], "big"))


def hold_out(entries: list[ManifestEntry], seed: int, folder_index: int) -> tuple[list, list]:
    """(training files, held-out validation files) of one folder: a seeded share, whole files, never both."""
    if len(entries) < VAL_MIN_FILES:
        return entries, []
    count = min(VAL_MAX_FILES, max(1, round(VAL_SHARE * len(entries))))
    order = torch.randperm(len(entries), generator=_seeded(seed, folder_index, 0)).tolist()
    held = set(order[:count])
    return [e for i, e in enumerate(entries) if i not in held], [entries[i] for i in sorted(held)]


def rank_share(entries: list[ManifestEntry], seed: int, folder_index: int, rank: int, world_size: int) -> list:
    """This rank's disjoint share of a folder's training files (all of them when there are fewer than ranks)."""
    if world_size == 1:
        return entries
    if len(entries) < world_size:
        log.warning("%d files for %d ranks: ranks share them and may train on the same crops", len(entries),
                    world_size)
        return entries
    order = torch.randperm(len(entries), generator=_seeded(seed, folder_index, 1)).tolist()
    return [entries[i] for i in sorted(order[rank::world_size])]


@dataclass
class Corpus:
    """One data folder's training files for this rank, its sampling weight and what was left out."""

    root: Path
    entries: list[ManifestEntry]
    weight: float
    skipped: int
    held_out: int
    seconds: float  # of every rank's training files
    files: int  # every rank's training files
    excluded: int = 0  # files named by --exclude

    def describe(self, share: float) -> str:
        """The folder's totals over every rank (found from outside: under torchrun the clip count was rank 0's
        share beside every rank's minutes)."""
        return (
            f"  {self.root}: {self.files} {plural(self.files, 'clip')}, {self.seconds / 60:.1f} min, "
            f"share {share:.2f}, {self.skipped} skipped"
            + (f", {self.held_out} held out for validation" if self.held_out else "")
            + (f", {self.excluded} excluded" if self.excluded else "")
        )


def corpus_shares(corpora: list[Corpus]) -> list[float]:
    """Each corpus's share of the crops: its weight over the sum (scaled by the largest weight first, since
    finite weights can still sum to inf)."""
    top = max(c.weight for c in corpora)
    scaled = [c.weight / top for c in corpora]
    total = sum(scaled)
    return [w / total for w in scaled]


def data_summary(corpora: list[Corpus]) -> str:
    """One line per corpus: folder, clips, minutes, weight share, skipped and held-out files."""
    return "\n".join(c.describe(share) for c, share in zip(corpora, corpus_shares(corpora), strict=True))


@dataclass(frozen=True)
class Crop:
    """`length` samples at the training rate from `start` of `entry` (zero-padded past its end)."""

    entry: ManifestEntry
    start: int
    length: int


class CropReader:
    """Reads crops at `sample_rate`, mono: seeking on disk, or slicing whole files decoded once (`in_memory`).

    Files that cannot seek exactly (mp3) are decoded once on first use and cached as float32 .npy files in
    `cache_dir`, then read through a memory map.
    """

    def __init__(self, sample_rate: int, cache_dir: Path, in_memory: bool = False) -> None:
        self.sample_rate = sample_rate
        self.cache_dir = cache_dir
        self.in_memory = in_memory
        self._decoded: dict[Path, np.ndarray] = {}

    def read(self, crop: Crop) -> np.ndarray:
        """Float32 [crop.length]; raises AudioFileError when the file cannot be decoded there."""
        entry = crop.entry
        if self.in_memory or entry.path.suffix.lower() in UNSEEKABLE_SUFFIXES:
            audio = self._whole(entry)[crop.start : crop.start + crop.length]
        elif entry.sample_rate == self.sample_rate:
            audio = to_mono_rate(read_frames(entry.path, crop.start, crop.length), entry.sample_rate,
                                 self.sample_rate, name=str(entry.path))
        else:
            audio = self._resampled(entry, crop)
        out = np.zeros(crop.length, dtype=np.float32)
        out[: len(audio)] = audio
        return out

    def _resampled(self, entry: ManifestEntry, crop: Crop) -> np.ndarray:
        # Read 10 ms more on each side, so the resampler's edges fall outside the crop.
        rate = entry.sample_rate
        margin = rate // 100
        first = crop.start * rate // self.sample_rate
        lead = min(margin, first)
        frames = math.ceil(crop.length * rate / self.sample_rate) + lead + margin
        data = read_frames(entry.path, first - lead, frames)
        audio = to_mono_rate(data, rate, self.sample_rate, name=str(entry.path))
        skip = round(lead * self.sample_rate / rate)
        return audio[skip : skip + crop.length]

    def _whole(self, entry: ManifestEntry) -> np.ndarray:
        if entry.path not in self._decoded:
            if self.in_memory:
                self._decoded[entry.path] = read_audio(entry.path, self.sample_rate)
            else:
                self._decoded[entry.path] = self._cached_decode(entry)
        return self._decoded[entry.path]

    def _cached_decode(self, entry: ManifestEntry) -> np.ndarray:
        key = f"{entry.path.resolve()}|{entry.size}|{entry.mtime_ns}|{self.sample_rate}"
        cached = self.cache_dir / "decoded" / f"{hashlib.sha1(key.encode()).hexdigest()}.npy"
        if not cached.is_file():
            audio = read_audio(entry.path, self.sample_rate)
            cached.parent.mkdir(parents=True, exist_ok=True)
            temp = cached.with_name(f".{cached.name}.{os.getpid()}.tmp.npy")
            np.save(temp, audio)
            os.replace(temp, cached)  # several workers may decode the same file at once; one rename wins
        return np.load(cached, mmap_mode="r")

    def preload(self, corpora: list[Corpus]) -> None:
        """Decode every training file now (`in_memory`): forked workers then share the decoded audio."""
        for corpus in corpora:
            for entry in corpus.entries:
                self._whole(entry)


class CropPlan:
    """Which crops a step reads: folders mixed by weight, files by duration, uniform offsets.

    `crops(step, n)` is a pure function of (seed, rank, step): the same on resume and in any worker.
    """

    def __init__(self, corpora: list[Corpus], segment: int, sample_rate: int, seed: int, rank: int = 0) -> None:
        if not corpora:
            raise DataError("no training data")
        self.corpora = corpora
        self.segment = segment
        self.sample_rate = sample_rate
        self.seed = seed
        self.rank = rank
        self._corpus_p = torch.tensor(corpus_shares(corpora), dtype=torch.float64)
        self._lengths = [[e.frames_at(sample_rate) for e in c.entries] for c in corpora]
        self._clip_p = [torch.tensor([max(n, segment) for n in lengths], dtype=torch.float64)
                        for lengths in self._lengths]

    def crops(self, step: int, count: int) -> list[Crop]:
        """The `count` crops of `step`."""
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.rank * 7_919 + step)
        which = torch.multinomial(self._corpus_p, count, replacement=True, generator=generator)
        out = []
        for corpus_index in which.tolist():
            clip_index = int(torch.multinomial(self._clip_p[corpus_index], 1, generator=generator))
            length = self._lengths[corpus_index][clip_index]
            start = 0
            if length > self.segment:
                start = int(torch.randint(0, length - self.segment + 1, (1,), generator=generator))
            out.append(Crop(self.corpora[corpus_index].entries[clip_index], start, self.segment))
        return out

    def fallback(self, crop: Crop, attempt: int) -> Crop:
        """A deterministic stand-in for a crop whose file failed: the `attempt`-th next file of its folder."""
        for corpus in self.corpora:
            if crop.entry in corpus.entries:
                entries = corpus.entries
                entry = entries[(entries.index(crop.entry) + attempt) % len(entries)]
                start = min(crop.start, max(0, entry.frames_at(self.sample_rate) - crop.length))
                return Crop(entry, start, crop.length)
        raise ValueError(f"{crop.entry.path} is not a training file")


def normalize_loudness(batch: Tensor, target_db: float) -> Tensor:
    """Scale each crop to `target_db` dBFS RMS (silent crops stay silent), clipped to [-1, 1]."""
    rms = batch.pow(2).mean(dim=-1, keepdim=True).sqrt()
    gain = torch.where(rms > 1e-4, 10 ** (target_db / 20) / rms.clamp_min(1e-4), torch.ones_like(rms))
    return (batch * gain).clamp(-1.0, 1.0)


class NoisePool:
    """Random crops of the noise files of one folder (for `augment`'s additive noise)."""

    def __init__(self, manifest: Manifest, reader: CropReader) -> None:
        self.entries = manifest.entries
        self.reader = reader

    def __call__(self, rng: np.random.Generator, length: int) -> np.ndarray:
        entry = self.entries[int(rng.integers(len(self.entries)))]
        frames = entry.frames_at(self.reader.sample_rate)
        start = int(rng.integers(max(1, frames - length + 1)))
        return self.reader.read(Crop(entry, start, length))


class CropDataset(Dataset):
    """Item `step` is that step's batch, float32 [batch_size, segment]: crops, loudness, augmentation."""

    def __init__(
        self,
        plan: CropPlan,
        reader: CropReader,
        batch_size: int,
        normalize_db: float | None = None,
        augmentation: Augmentation | None = None,
        noise: NoisePool | None = None,
    ) -> None:
        self.plan = plan
        self.reader = reader
        self.batch_size = batch_size
        self.normalize_db = normalize_db
        self.augmentation = augmentation or Augmentation()
        self.noise = noise
        self._warned: set[Path] = set()

    def __getitem__(self, step: int) -> Tensor:
        crops = self.plan.crops(step, self.batch_size)
        batch = torch.from_numpy(np.stack([self._read(crop) for crop in crops]))
        if self.normalize_db is not None:
            batch = normalize_loudness(batch, self.normalize_db)
        if self.augmentation.active:
            # Its own stream, so switching augmentation on does not change which crops a step reads.
            rng = np.random.default_rng([self.plan.seed, self.plan.rank, step, 1])
            rate = self.reader.sample_rate
            batch = torch.from_numpy(np.stack([
                augment(row, rng, self.augmentation, rate, self.noise) for row in batch.numpy()
            ]))
        return batch

    def _read(self, crop: Crop) -> np.ndarray:
        failed = crop
        tried: set[Path] = set()
        for attempt in range(1, MAX_READ_ATTEMPTS + 2):
            try:
                return self.reader.read(crop)
            except AudioFileError as error:
                # Each worker warns once per file: the header was fine (it is in the manifest), its data is not.
                if crop.entry.path not in self._warned:
                    self._warned.add(crop.entry.path)
                    log.warning("skipping %s (its crops are read from the next file of its folder, if it has one)", error)
                tried.add(crop.entry.path)
                crop = self.plan.fallback(failed, attempt)
                if crop.entry.path in tried:  # the folder's files are used up: the fallback came round again
                    break
        after = len(tried) - 1
        if not after:
            raise DataError(f"{failed.entry.path} cannot be decoded, and its folder has no other file to read")
        raise DataError(f"{failed.entry.path} and the {after} {plural(after, 'file')} after it cannot be decoded")


class StepSampler(Sampler[int]):
    """Steps `start`, `start` + 1, ... without end: the trainer decides when to stop."""

    def __init__(self, start: int) -> None:
        self.start = start

    def __iter__(self) -> Iterator[int]:
        return itertools.count(self.start)


def _worker_init(worker_id: int) -> None:
    # Workers decode and resample in numpy; torch's own thread pool per worker would only contend for cores.
    # No per-worker seeding: every random draw comes from a generator seeded by (seed, rank, step).
    torch.set_num_threads(1)
    # A SIGTERM to the whole process group (`pkill -f` on the command line the workers share, `kill -- -PGID`, a
    # service manager) killed a worker by signal, and the loader's SIGCHLD check then raised inside the main
    # process's final save (found from outside: a traceback, no latest.pt). Ctrl-C to the group never did: torch's
    # worker loop takes a KeyboardInterrupt as "the main process is stopping" and returns cleanly. SIGTERM now
    # takes the same path. It still ends a worker (the loader's own `terminate()` of a stuck worker keeps working),
    # which ignoring it would not: the loader's shutdown then hangs on a failed worker.
    signal.signal(signal.SIGTERM, _stop_like_ctrl_c)


def _stop_like_ctrl_c(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _cores() -> int:
    """Cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def default_workers(local_world_size: int = 1) -> int:
    """DataLoader workers per process: the cores left per process after its main thread, at most 4."""
    return max(1, min(4, _cores() // local_world_size - 1))


def default_cpu_threads(local_world_size: int, num_workers: int) -> int:
    """torch threads per process training on the CPU: its share of the cores less its data workers, at least 1.

    torch's own default (every core) oversubscribes the cores the workers read on, and its threads wait for each
    other at every op: on a 2-core VM with another training run busy, 20 tiny steps took 58-80 s with two threads
    and 16 s with one (README, "Threads on the CPU").
    """
    return max(1, _cores() // local_world_size - num_workers)


def batches(dataset: CropDataset, start_step: int, num_workers: int, pin_memory: bool = False,
            prefetch: int = 2) -> Iterator[Tensor]:
    """The batches of steps `start_step`, `start_step` + 1, ...; workers read `prefetch` batches ahead each.

    Memory held: about `num_workers` × `prefetch` batches, whatever the size of the corpus.
    """
    plan = dataset.plan
    loader = DataLoader(
        dataset, batch_size=None, sampler=StepSampler(start_step), num_workers=num_workers,
        prefetch_factor=prefetch if num_workers else None, worker_init_fn=_worker_init if num_workers else None,
        pin_memory=pin_memory,
        # The loader draws its workers' base seed from this generator, not from torch's global one: drawing from
        # the global generator would shift the model's random stream whenever workers (re)start, e.g. on resume.
        generator=_seeded(plan.seed, plan.rank, start_step, 2),
    )
    return _worker_errors_unwrapped(iter(loader))


def _worker_errors_unwrapped(steps: Iterator[Tensor]) -> Iterator[Tensor]:
    """`steps`, with a DataError from a data worker restored to its own message.

    The DataLoader re-raises a worker's exception as the same type whose message is the worker's whole traceback
    ("Caught DataError in DataLoader worker process 0. Original Traceback ..."); its last line is the message.
    """
    while True:
        try:
            batch = next(steps)
        except DataError as error:
            last = str(error).rstrip().splitlines()[-1] if str(error).strip() else ""
            found = re.fullmatch(r"[\w.]*DataError: (.*)", last)
            raise DataError(found.group(1) if found else str(error)) from None
        yield batch


def load_validation(root: Path, sample_rate: int, max_clips: int | None = None) -> list[Tensor]:
    """Whole validation clips of `root` in file order (unreadable ones skipped with a warning)."""
    files = list_audio_files(root)
    if not files:
        raise DataError(f"{root}: no audio files (.wav, .flac, .ogg, .mp3) found")
    clips = []
    for path in files:
        try:
            audio = read_audio(path, sample_rate)
        except AudioFileError as error:
            log.warning("skipping %s", error)
            continue
        if len(audio) >= 0.1 * sample_rate:
            clips.append(torch.from_numpy(audio))
        if max_clips and len(clips) == max_clips:
            break
    if not clips:
        raise DataError(f"{root}: none of {len(files)} files is readable audio of at least 0.1 s")
    return clips


def held_out_clips(entries: list[ManifestEntry], reader: CropReader, max_clips: int | None) -> list[Tensor]:
    """The first `VAL_MAX_SECONDS` of each held-out file, as validation clips."""
    clips = []
    for entry in entries[:max_clips] if max_clips else entries:
        length = min(entry.frames_at(reader.sample_rate), int(VAL_MAX_SECONDS * reader.sample_rate))
        try:
            clips.append(torch.from_numpy(reader.read(Crop(entry, 0, length))))
        except AudioFileError as error:
            log.warning("skipping %s (validation)", error)
    return clips
