"""Small helpers for the text the commands print and read."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path


def distinct_names(names: Iterable[str], taken: Iterable[str] = ()) -> list[str]:
    """Each of `names`, with -2, -3, ... where an earlier one or one of `taken` already has it (train, train-2):
    names for folders that must not replace each other in a pack or a report."""
    used = set(taken)
    distinct: list[str] = []
    for base in names:
        name, count = base, 1
        while name in used:
            count += 1
            name = f"{base}-{count}"
        used.add(name)
        distinct.append(name)
    return distinct


def folder_name(folder: Path) -> str:
    """A folder's own name, also for `.` or `/` (found from outside: `--audio .` made a set with an empty name)."""
    return folder.resolve().name or "root"


def plural(count: int, noun: str, many: str | None = None) -> str:
    """`noun` for a count of 1, else its plural (`many`, or `noun` + "s"): "1 clip", "2 clips"."""
    return noun if count == 1 else (many or f"{noun}s")


def decimal(text: str, max_digits: int = 18) -> int | None:
    """The non-negative integer that `text` spells in ASCII digits alone (at most `max_digits` of them), else
    None. Not str.isdigit: it also takes "²", which int() refuses, and "٣" or "８", which int() reads as 3 and 8
    (found from outside: a server port and a Content-Length); and int() of thousands of digits raises."""
    return int(text) if re.fullmatch(rf"[0-9]{{1,{max_digits}}}", text) else None


def duration(value: float) -> str:
    """A duration for a report: whole seconds from 10 s up, tenths below ("0.4 s", not "0 s")."""
    return f"{value:.0f} s" if round(value, 1) >= 10 else f"{value:.1f} s"
