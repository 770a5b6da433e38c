"""Versioned NumPy .npz files of plain arrays: what the runtime loads beside the graphs (entropy tables, context
model). Always loaded with `allow_pickle=False`, so a hostile file cannot run code."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from sscodec.common.errors import ModelError


def load_versioned(path: Path, names: Iterable[str], version: int, kind: str) -> dict[str, np.ndarray]:
    """The arrays `names` of the .npz file `path`, whose `version` array must equal `version`; ModelError naming
    `path` (and `kind`, e.g. "entropy tables") if it cannot be read, is not such a file or has another version."""
    try:
        data = io.BytesIO(path.read_bytes())
        # np.load takes anything that is not a zip for a pickle and says so, advising an unsafe load: say what it is.
        if not zipfile.is_zipfile(data):
            raise ModelError(f"{path}: not a valid {kind} file (not an .npz archive)")
        with np.load(data, allow_pickle=False) as archive:
            found = int(archive["version"])
            arrays = {name: archive[name] for name in names}
    except OSError as error:
        raise ModelError(f"{path}: cannot read ({error.strerror or error})") from None
    except (ValueError, KeyError, EOFError, zipfile.BadZipFile, TypeError) as error:
        raise ModelError(f"{path}: not a valid {kind} file ({' '.join(str(error).split())[:200]})") from None
    if found != version:
        raise ModelError(f"{path}: {kind} format version {found}, this runtime reads version {version}")
    return arrays
