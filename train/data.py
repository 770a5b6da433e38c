"""Training data: folders of speech decoded once into memory, sampled as random fixed-length crops.

Batches are drawn from a generator seeded by (seed, rank, step), so the data position of a run is its step:
a resumed run sees exactly the batches an uninterrupted one would have seen.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from sscodec.common.audio import AudioFileError, read_audio

AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".mp3"}
log = logging.getLogger(__name__)


class DataError(ValueError):
    """A data folder that cannot be trained on (missing, empty, nothing decodable)."""


@dataclass
class Corpus:
    """All clips of one data folder at the codec's sample rate, and its sampling weight."""

    root: Path
    clips: list[Tensor]
    sample_rate: int
    weight: float
    skipped: int

    @property
    def seconds(self) -> float:
        return sum(len(c) for c in self.clips) / self.sample_rate


def parse_data_dir(spec: str) -> tuple[Path, float | None]:
    """`DIR` or `DIR:WEIGHT` → (folder, weight or None for "by duration")."""
    head, sep, tail = spec.rpartition(":")
    if sep and head and _is_number(tail):
        return Path(head), float(tail)
    return Path(spec), None


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def list_audio_files(root: Path) -> list[Path]:
    """Files named by `metadata.jsonl` in `root` if present, else every audio file below `root`."""
    if not root.exists():
        raise DataError(f"{root}: no such data folder")
    if not root.is_dir():
        raise DataError(f"{root}: is not a folder")
    metadata = root / "metadata.jsonl"
    if metadata.is_file():
        files = []
        for number, line in enumerate(metadata.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip():
                try:
                    files.append(root / json.loads(line)["file"])
                except (json.JSONDecodeError, KeyError, TypeError):
                    raise DataError(f"{metadata}:{number}: expected a JSON object with a 'file' key") from None
        return files
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file())


def load_corpus(root: Path, sample_rate: int, min_seconds: float, weight: float | None = None) -> Corpus:
    """Decode every clip of `root`; unreadable files are skipped with one warning each."""
    files = list_audio_files(root)
    if not files:
        raise DataError(f"{root}: no audio files (.wav, .flac, .ogg, .mp3) found")
    clips, skipped = [], 0
    for path in files:
        try:
            audio = read_audio(path, sample_rate)
        except AudioFileError as error:
            log.warning("skipping %s", error)
            skipped += 1
            continue
        if len(audio) < min_seconds * sample_rate:
            continue
        clips.append(torch.from_numpy(audio))
    if not clips:
        raise DataError(f"{root}: none of {len(files)} files is readable audio of at least {min_seconds} s")
    seconds = sum(len(c) for c in clips) / sample_rate
    return Corpus(root, clips, sample_rate, seconds if weight is None else weight, skipped)


class CropSampler:
    """Random crops of `segment` samples from several corpora, mixed by weight, clips by duration."""

    def __init__(self, corpora: list[Corpus], segment: int, seed: int, rank: int = 0) -> None:
        if not corpora:
            raise DataError("no training data")
        self.corpora = corpora
        self.segment = segment
        self.seed = seed
        self.rank = rank
        weights = torch.tensor([c.weight for c in corpora], dtype=torch.float64)
        self._corpus_p = weights / weights.sum()
        self._clip_p = [
            torch.tensor([max(len(c), segment) for c in corpus.clips], dtype=torch.float64) for corpus in corpora
        ]

    def batch(self, step: int, batch_size: int) -> Tensor:
        """The batch [batch_size, segment] of `step` (a pure function of seed, rank and step)."""
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.rank * 7_919 + step)
        which = torch.multinomial(self._corpus_p, batch_size, replacement=True, generator=generator)
        out = torch.zeros(batch_size, self.segment)
        for row, corpus_index in enumerate(which.tolist()):
            corpus = self.corpora[corpus_index]
            clip_index = int(torch.multinomial(self._clip_p[corpus_index], 1, generator=generator))
            clip = corpus.clips[clip_index]
            if len(clip) <= self.segment:
                out[row, : len(clip)] = clip
            else:
                start = int(torch.randint(0, len(clip) - self.segment + 1, (1,), generator=generator))
                out[row] = clip[start : start + self.segment]
        return out


def normalize_loudness(batch: Tensor, target_db: float) -> Tensor:
    """Scale each crop to `target_db` dBFS RMS (silent crops stay silent), clipped to [-1, 1]."""
    rms = batch.pow(2).mean(dim=-1, keepdim=True).sqrt()
    gain = torch.where(rms > 1e-4, 10 ** (target_db / 20) / rms.clamp_min(1e-4), torch.ones_like(rms))
    return (batch * gain).clamp(-1.0, 1.0)


def load_validation(root: Path, sample_rate: int, max_clips: int | None = None) -> list[Tensor]:
    """Whole validation clips, in file order."""
    corpus = load_corpus(root, sample_rate, min_seconds=0.1)
    clips = corpus.clips[:max_clips] if max_clips else corpus.clips
    return clips


def total_seconds(corpora: list[Corpus]) -> float:
    return sum(c.seconds for c in corpora)


def data_summary(corpora: list[Corpus]) -> str:
    """One line per corpus: folder, clips, minutes, weight share, skipped files."""
    total = sum(c.weight for c in corpora)
    return "\n".join(
        f"  {c.root}: {len(c.clips)} clips, {c.seconds / 60:.1f} min, share {c.weight / total:.2f}, "
        f"{c.skipped} skipped" for c in corpora
    )


