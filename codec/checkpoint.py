"""Save and load a codec with its config; loading never runs code from the file."""

from __future__ import annotations

import errno
import os
import pickle
import re
import sys
import tempfile
import warnings
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch.nn.utils import parametrize

from sscodec.codec.config import CodecConfig
from sscodec.codec.model import Codec
from sscodec.common.files import umask_mode

FORMAT = "streaming-speech-codec/1"


class CheckpointError(ValueError):
    """A checkpoint that is missing, unreadable, unsafe or does not fit its config."""


def atomic_save(payload: dict[str, Any], path: str | os.PathLike) -> None:
    """Write `payload` with torch.save to a temp file beside `path`, then rename over it.

    A crash mid-write leaves the previous file intact; a full disk raises OSError and a Ctrl-C KeyboardInterrupt,
    each removing the temp file.
    """
    path = Path(path)
    handling = sys.exc_info()[1]  # e.g. the Ctrl-C whose `except` block saves: not one raised inside this write
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, umask_mode(0o666))  # mkstemp's 0600 would make shipped checkpoints unreadable to others
        with os.fdopen(fd, "wb") as handle:
            torch.save(payload, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as error:
        Path(tmp).unlink(missing_ok=True)
        cause = error.__context__
        if isinstance(error, RuntimeError) and isinstance(cause, KeyboardInterrupt | OSError) and cause is not handling:
            # torch.save's zip writer, closing after a Ctrl-C or a failed write (a full disk) inside it, fails on its
            # own half-written state ("unexpected pos"): what happened is the Ctrl-C or the OSError.
            raise cause from None
        raise


def codec_payload(model: Codec) -> dict[str, Any]:
    """The part of every checkpoint that rebuilds the model: format, config and weights."""
    folded = not any(parametrize.is_parametrized(m) for m in model.modules())
    return {
        "format": FORMAT,
        "config": model.config.to_dict(),
        "weight_norm_folded": folded,
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }


def save_codec(model: Codec, path: str | os.PathLike, **extra: Any) -> None:
    """Save a model, its config and any `extra` tensors/plain values, atomically."""
    atomic_save({**codec_payload(model), **extra}, path)


def round_to_compact(model: Codec) -> None:
    """Round the model's floating-point weights and buffers to fp16 values, in place: what `save_compact_codec`
    keeps, so that graphs exported from the rounded model are the ones a re-export from that codec.pt gives (the
    same fingerprint, so files encoded with either decode with both)."""
    with torch.no_grad():
        for tensor in model.state_dict().values():
            tensor.copy_(_compact(tensor).to(tensor.dtype))


def save_compact_codec(model: Codec, path: str | os.PathLike, **extra: Any) -> None:
    """Save the model alone with its floating-point tensors in fp16: half the size, for bundling.

    `load_codec` restores it in fp32 (the cast back is exact), and training can start from it.
    """
    payload = codec_payload(model)
    payload["model"] = {k: _compact(v) for k, v in payload["model"].items()}
    atomic_save({**payload, **extra}, path)


def _compact(tensor: torch.Tensor) -> torch.Tensor:
    """The tensor as a compact codec.pt stores it: floating point in fp16, integers as they are."""
    return tensor.half() if tensor.is_floating_point() else tensor


def _starts_like_a_pickle(path: Path) -> bool:
    """Whether the file opens with pickle's PROTO opcode (protocols 2 and up), as a hostile pickle would."""
    with open(path, "rb") as file:
        return file.read(1) == pickle.PROTO


def read_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read a checkpoint dict with `weights_only=True`; any problem is a one-line CheckpointError."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: no such checkpoint")
    if path.is_dir():
        raise CheckpointError(f"{path}: is a directory, not a checkpoint file")
    try:
        with warnings.catch_warnings():  # torch warns about foreign pickle protocols; the errors below say more
            warnings.simplefilter("ignore")
            payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        # torch's message opens with advice to load with weights_only=False, i.e. to run the code: name the culprit.
        found = re.search(r"Unsupported [^.\n]*", str(error))
        detail = found.group(0).strip() if found else "unsafe content"
        if detail.startswith("Unsupported operand") and not _starts_like_a_pickle(path):  # text, audio, noise
            raise CheckpointError(f"{path}: not a codec checkpoint (not a file torch.save wrote)") from None
        raise CheckpointError(f"{path}: refused, it holds more than tensors and plain values ({detail})") from None
    except OSError as error:  # before the catch-all below: a permission problem is not a corrupt file
        if error.errno == errno.EINVAL:  # torch's zip reader on a cut-off file
            raise CheckpointError(f"{path}: not a codec checkpoint (truncated or corrupt)") from None
        raise CheckpointError(f"{path}: cannot read the checkpoint ({error.strerror or error})") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError) as error:
        summary = " ".join(str(error).split()) or type(error).__name__
        raise CheckpointError(f"{path}: not a codec checkpoint (truncated or corrupt: {summary})") from None
    except Exception:  # noqa: BLE001 - the weights-only unpickler fails on other files (a WAV, text) with IndexError,
        # KeyError and the like; whatever it is, torch could not read this file as a checkpoint and ran nothing.
        raise CheckpointError(f"{path}: not a codec checkpoint (another kind of file, or corrupt)") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a {FORMAT} checkpoint")
    return payload


def saved_config(payload: dict[str, Any], path: str | os.PathLike) -> CodecConfig:
    """The codec config in the checkpoint `payload` read from `path`; CheckpointError naming `path` if invalid."""
    try:
        return CodecConfig.from_dict(payload["config"])
    except (TypeError, ValueError, KeyError) as error:
        raise CheckpointError(f"{path}: invalid codec config ({error})") from None


def load_codec(path: str | os.PathLike, config: CodecConfig | None = None) -> Codec:
    """Rebuild the model saved at `path`; if `config` is given, the checkpoint must match it."""
    payload = read_checkpoint(path)
    saved = saved_config(payload, path)
    if config is not None and saved != config:
        raise CheckpointError(f"{path}: a codec configured unlike the one expected ({saved.differences(config)})")
    model = Codec(saved)
    if payload.get("weight_norm_folded"):
        model.fold_weight_norm()
    try:
        model.load_state_dict(payload["model"])
    except (RuntimeError, KeyError) as error:
        summary = str(error).strip().splitlines()[0]
        raise CheckpointError(f"{path}: weights do not fit config ({summary})") from None
    # Found from outside: bytes overwritten inside a checkpoint's tensors made NaN weights, which the export blamed
    # on its own ONNX graph ("max abs error nan") and --init_from trained from without a word.
    bad = sum(int((~torch.isfinite(t)).sum()) for t in model.state_dict().values() if t.is_floating_point())
    if bad:
        raise CheckpointError(f"{path}: {bad:,} weights are not finite (a corrupt file, or a run that diverged)")
    return model
