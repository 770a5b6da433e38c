"""Where the bundled default model lives, and what the name "default" means on every command line.

The runtime part (`stream/models/default/`: the two stream graphs and the model card) is in every install. The
parts only training and export use (`codec/pretrained/default/`: the compact checkpoint and the two offline
graphs) ship with the source checkout that the README installs from (`pip install -e`), not in the wheel, so the
edge runtime carries nothing it never loads.
"""

from __future__ import annotations

from pathlib import Path

from sscodec.common.errors import ModelError

DEFAULT_NAME = "default"
_ROOT = Path(__file__).resolve().parents[1]
BUNDLED_MODEL_DIR = _ROOT / "stream" / "models" / "default"
BUNDLED_CHECKPOINT_DIR = _ROOT / "codec" / "pretrained" / "default"
BUNDLED_CHECKPOINT = BUNDLED_CHECKPOINT_DIR / "codec.pt"


def typed_folder(text: str) -> Path:
    """The folder a user typed, as a Path that names it in messages: `./default`, which Path prints "default" (the
    bundled model's name on every command line), becomes absolute, so that an error's "--out DIR" hint names this
    folder and not the bundled model (found from outside)."""
    path = Path(text)
    return path.absolute() if str(path) == DEFAULT_NAME else path


def resolve_checkpoint(value: str | Path) -> Path:
    """A checkpoint path, or the bundled default model's compact checkpoint for "default".

    Raises ModelError when "default" is asked for and the checkpoint is not installed (a wheel install).
    """
    if str(value) != DEFAULT_NAME:
        return Path(value)
    if not BUNDLED_CHECKPOINT.is_file():
        raise ModelError(
            f"{BUNDLED_CHECKPOINT}: the default model's checkpoint is not installed; it ships with the source "
            "checkout (pip install -e from the repository), not with the runtime wheel"
        )
    return BUNDLED_CHECKPOINT
# A short speech clip in every install: setup's demo, and the entropy tables' fallback source in codec-export.
EXAMPLE_CLIP = _ROOT / "stream" / "examples" / "telugu_example.flac"
