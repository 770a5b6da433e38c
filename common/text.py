"""Small wording helpers for what the commands print."""

from __future__ import annotations


def plural(count: int, noun: str, many: str | None = None) -> str:
    """`noun` for a count of 1, else its plural (`many`, or `noun` + "s"): "1 clip", "2 clips"."""
    return noun if count == 1 else (many or f"{noun}s")
