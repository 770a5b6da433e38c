"""Settings of a training run: one dataclass, saved inside every training checkpoint."""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# What a resumed run may change; the rest continues as the run started (its batches, losses and validation).
RESUMABLE = frozenset({
    "checkpoint_dir", "resume", "max_steps", "max_minutes", "num_epochs", "num_workers", "threads", "in_memory",
    "eval_every", "device", "amp", "compile", "use_wandb", "experiment_name",
})
# Of those, what a resume command that leaves them out takes from the run (where it planned to stop and how often
# it validates) rather than from the defaults; the machine's settings (device, workers, threads) are this one's.
KEPT_UNLESS_GIVEN = frozenset({"max_steps", "max_minutes", "num_epochs", "eval_every"})

# --select_by: what best.pt is chosen by (monitor.Validation.selection), as the reports name it
SELECT_BY = {"mel": "mel distance", "pesq": "PESQ-WB"}


@dataclass
class TrainConfig:
    """Everything a run needs besides the model config (which the preset or `init_from` gives)."""

    data_dirs: tuple[str, ...]
    checkpoint_dir: str
    val_dir: str | None = None
    no_validation: bool = False  # without --val_dir a share of the training files is held out unless this is set
    num_workers: int | None = None  # DataLoader workers per process; None: `sscodec.train.data.default_workers`
    threads: int | None = None  # torch threads per process; None: on CPU `data.default_cpu_threads`, else torch's
    in_memory: bool = False  # decode every training file into RAM once instead of reading crops from disk
    exclude: str | None = None  # a text file of audio files (one per line) never to train on
    gain_prob: float = 0.0  # augmentation probabilities (train/augment.py), all off by default
    lowpass_prob: float = 0.0
    noise_prob: float = 0.0
    noise_dir: str | None = None
    quiet_prob: float = 0.0
    preset: str | None = None  # a new model's preset ("small" when None); with init_from, must match its model
    init_from: str | None = None
    # codec_fingerprint of init_from's weights when the run started (set by the trainer): a name such as
    # "default" may hold other weights later, and `codec-bench curve` must not place the run after those.
    init_fingerprint: str | None = None
    checkerboard_free: bool = False  # CodecConfig.checkerboard_free for a new model, or projected into init_from's
    fold_free: bool = False  # CodecConfig.fold_free likewise: the phase fold alone
    decoder_only: bool = False  # train the decoder alone: init_from's encoder and codebooks (so its codes) stay
    batch_size: int = 16
    segment_seconds: float = 0.5
    num_epochs: int = 100
    max_steps: int | None = None
    max_minutes: float | None = None
    learning_rate: float = 3e-4
    lr_decay: float = 0.999996  # per step, as DAC
    losses: str = "l1+mel"
    adversarial_start: int | None = None
    discriminator_warmup: int | None = None
    l1_weight: float | None = None  # None: the recipe's weight
    mel_weight: float | None = None
    stft_weight: float | None = None
    adversarial_weight: float | None = None
    feature_weight: float | None = None
    checkerboard_weight: float | None = None
    grad_clip: float = 100.0
    eval_every: int = 500
    val_clips: int | None = None
    val_codebooks: tuple[int, ...] = ()  # also validate with the first N codebooks; best.pt minimises the mean
    select_by: str = "mel"  # what best.pt is chosen by (train/monitor.py SELECT_BY): "mel" or "pesq"
    normalize_db: float | None = None
    device: str = "auto"
    amp: bool = True  # bf16 autocast on CUDA
    compile: bool = False
    seed: int = 0
    max_nan_steps: int = 10  # consecutive non-finite losses before the run stops
    use_wandb: bool = False
    experiment_name: str = "codec"
    resume: bool = False

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def parse_data_dir(spec: str) -> tuple[Path, float | None]:
    """`DIR` or `DIR:WEIGHT` → (folder, weight or None for "by duration"); ValueError for a weight not above 0.
    An existing folder named like DIR:WEIGHT (`rec:2`) is that folder, unless DIR exists too."""
    head, sep, tail = spec.rpartition(":")
    whole_folder = Path(spec).is_dir() and not Path(head).is_dir()  # found from outside: "rec: no such folder"
    if sep and head and _is_number(tail) and not whole_folder:
        weight = float(tail)
        if not (math.isfinite(weight) and weight > 0):  # a share of 0 divides by a total of 0; inf and nan none
            raise ValueError(f"{spec}: the weight after ':' must be a finite number > 0, got {tail}")
        return Path(head), weight
    return Path(spec), None


def absolute_paths(config: TrainConfig) -> TrainConfig:
    """`config` with its data, validation and noise folders and its exclude list as absolute paths, as the run
    saves them: `codec-train --resume` then finds them from any working directory (found from outside: saved as
    typed, a resume from another folder failed, or trained on that folder's own `d1/` without a word)."""
    def absolute(path: str | None) -> str | None:
        return None if path is None else os.path.abspath(path)

    data_dirs = tuple(
        str(absolute(str(folder))) + ("" if weight is None else f":{spec.rpartition(':')[2]}")
        for spec, (folder, weight) in ((spec, parse_data_dir(spec)) for spec in config.data_dirs)
    )
    return dataclasses.replace(config, data_dirs=data_dirs, val_dir=absolute(config.val_dir),
                               noise_dir=absolute(config.noise_dir), exclude=absolute(config.exclude))


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def resumed(config: TrainConfig, saved: Mapping[str, Any], given: set[str]) -> TrainConfig:
    """`config` for continuing the run whose latest.pt saved `saved` (its train_config): every field outside
    RESUMABLE takes the run's value, and so does each of KEPT_UNLESS_GIVEN not in `given` (set on the command
    line). ValueError naming each field in `given` whose value contradicts the run's."""
    values = {name: saved[name] for name in KEPT_UNLESS_GIVEN - given if name in saved}
    conflicts = []
    for name in sorted(dataclasses.asdict(config).keys() - RESUMABLE & saved.keys()):
        mine, theirs = getattr(config, name), saved[name]
        theirs = tuple(theirs) if isinstance(theirs, list) else theirs
        if name not in given:
            values[name] = theirs
        elif _canonical(name, mine) != _canonical(name, theirs):
            flag = "--data_dir" if name == "data_dirs" else f"--{name}"
            conflicts.append(f"{flag} {_shown(mine)} (the run's: {_shown(theirs)})")
    if conflicts:
        raise ValueError(f"--resume continues {config.checkpoint_dir} as it started, but {'; '.join(conflicts)}: "
                         "leave these out, or start a new --checkpoint_dir")
    return dataclasses.replace(config, **values)


def _canonical(name: str, value: Any) -> Any:
    """Folders compare as absolute paths (a run may be resumed from another working directory)."""
    if name == "data_dirs":
        return tuple((folder.resolve(), weight) for folder, weight in map(parse_data_dir, value))
    if name in ("val_dir", "noise_dir", "exclude") and value is not None:
        return Path(value).resolve()
    return value


def _shown(value: Any) -> str:
    """A setting as a user types it; an unset one (None, an empty list) as "none" (found from outside: "None" and
    an empty string were shown)."""
    if value is None or value == ():
        return "none"
    return " ".join(map(str, value)) if isinstance(value, tuple) else str(value)
