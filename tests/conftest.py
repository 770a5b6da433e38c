"""Shared fixtures: small models with random weights and paths to the shared speech data."""

from __future__ import annotations

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
