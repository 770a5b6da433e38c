"""Validation sets for quality: `telugu/val`, and cross-domain sets carved out of `../shared/data/extra/` by speaker.

Each folder of `extra/` gives one set of `clips` clips: its speakers ordered by a hash of the speaker id (a fixed,
arbitrary order that any tool can recompute), each in turn contributing up to `clips_per_speaker` clips.
A clip's speaker is its `speaker` field in `metadata.jsonl`; where that is missing, IndicVoices' recording id
(the file name before `_chunk`), else the clip itself (Common Voice clips here carry no speaker id). Training on
`extra/` must leave these speakers out (`heldout_files`, listed by `codec-bench heldout` for `codec-train
--exclude`) so that every set stays speech the model never heard.
Sources and licences: see the README's "Data and licences".
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from sscodec.benchmarks.errors import BenchError

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
TELUGU_VAL = "telugu_val"


def speaker_of(entry: dict) -> str:
    """The speaker id of one metadata.jsonl entry, by the rule in the module docstring."""
    if entry.get("speaker"):
        return str(entry["speaker"])
    return entry["file"].split("_chunk")[0]


def clips_by_speaker(folder: Path) -> dict[str, list[str]]:
    """Speaker id → file names (sorted, each once) of one corpus folder's metadata.jsonl."""
    metadata = folder / "metadata.jsonl"
    if not metadata.is_file():
        raise BenchError(f"{metadata}: not found (a cross-domain set needs the folder's metadata)")
    by_speaker: dict[str, set[str]] = {}
    for line in metadata.read_text(encoding="utf-8").splitlines():
        if line.strip():
            entry = json.loads(line)
            by_speaker.setdefault(speaker_of(entry), set()).add(entry["file"])
    return {speaker: sorted(files) for speaker, files in by_speaker.items()}


def carve(folder: Path, clips: int = 8, clips_per_speaker: int = 2) -> list[Path]:
    """Held-out clips of one corpus folder with a metadata.jsonl, in a fixed order."""
    by_speaker = clips_by_speaker(folder)
    order = sorted(by_speaker, key=lambda s: hashlib.sha256(s.encode()).hexdigest())
    chosen = [folder / name for s in order for name in by_speaker[s][:clips_per_speaker]]
    return chosen[:clips]


def validation_sets(data_root: Path = SHARED_DATA, clips: int = 8) -> dict[str, list[Path]]:
    """Set name → clip paths: all of telugu/val, then one carved set per folder of extra/."""
    val = data_root / "telugu" / "val"
    if not val.is_dir():
        raise BenchError(f"{val}: not found")
    sets = {TELUGU_VAL: sorted(p for p in val.iterdir() if p.suffix == ".flac")}
    for folder in _extra_folders(data_root):
        sets[folder.name] = carve(folder, clips)
    return sets


def heldout_files(data_root: Path = SHARED_DATA) -> list[Path]:
    """Every clip of every speaker in the cross-domain sets, sorted: what training on extra/ must leave out
    (`codec-train --exclude`), so that no held-out speaker is ever heard in training."""
    held = []
    for folder in _extra_folders(data_root):
        chosen = {clip.name for clip in carve(folder)}
        held += [folder / name for files in clips_by_speaker(folder).values() if chosen & set(files)
                 for name in files]
    return sorted(held)


def _extra_folders(data_root: Path) -> list[Path]:
    extra = data_root / "extra"
    return sorted(p for p in extra.iterdir() if p.is_dir()) if extra.is_dir() else []
