"""Shared fixtures and helpers: paths to the shared speech data and small corpora made of links into it."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
TELUGU_VAL = SHARED / "data" / "telugu" / "val"
TELUGU_TRAIN = SHARED / "data" / "telugu" / "train"


@pytest.fixture(scope="session")
def telugu_val() -> Path:
    if not TELUGU_VAL.is_dir():
        pytest.skip(f"shared speech data not found at {TELUGU_VAL}")
    return TELUGU_VAL


def telugu_train_clips(folder: Path, count: int) -> Path:
    """`folder` holding links to the first `count` telugu/train clips (sorted by name); skips without the data."""
    if not TELUGU_TRAIN.is_dir():
        pytest.skip(f"shared speech data not found at {TELUGU_TRAIN}")
    folder.mkdir(parents=True, exist_ok=True)
    for source in sorted(TELUGU_TRAIN.glob("*.flac"))[:count]:
        (folder / source.name).symlink_to(source)
    return folder


def mistaken_exclude_lists(folder: Path, data_file: Path, elsewhere: Path) -> dict[Path, str]:
    """Three --exclude lists written into `folder` that look mistaken, each with the warning that codec-train and
    codec-pack give for it: one naming no files; one naming `data_file` and a path that does not exist (written
    relative to the data folder: relative paths are read from the list's folder); one naming only `elsewhere`,
    an existing file outside the data folders."""
    cases = {
        "empty.txt": ("# nothing yet\n", "the --exclude list {list} names no files"),
        "typo.txt": (f"{data_file}\ncorpus/a.flac\n",
                     (f"1 of the 2 files in the --exclude list {{list}} do not exist (first: "
                     f"{(folder / 'corpus' / 'a.flac').resolve()}; relative paths are read from the list's folder)")),
        "elsewhere.txt": (f"{elsewhere}\n", "none of the 1 files in the --exclude list {list} is in the data folders"),
    }
    lists = {}
    for name, (text, warning) in cases.items():
        (folder / name).write_text(text)
        lists[folder / name] = warning.format(list=folder / name)
    return lists


@pytest.fixture
def python_sigint() -> Iterator[None]:
    """SIGINT with Python's handler for the test: a job started in the background by a shell without job control
    inherits SIGINT ignored (and Python then leaves it ignored), so a test's own Ctrl-C would never arrive."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)
