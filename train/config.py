"""Settings of a training run: one dataclass, saved inside every training checkpoint."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any


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
    preset: str = "small"
    init_from: str | None = None
    checkerboard_free: bool = False  # CodecConfig.checkerboard_free for a new model, or projected into init_from's
    batch_size: int = 16
    segment_seconds: float = 0.5
    num_epochs: int = 100
    max_steps: int | None = None
    max_minutes: float | None = None
    learning_rate: float = 3e-4
    lr_decay: float = 0.999996  # per step, as DAC
    losses: str = "l1+mel"
    adversarial_start: int | None = None
    l1_weight: float | None = None  # None: the recipe's weight
    mel_weight: float | None = None
    adversarial_weight: float | None = None
    feature_weight: float | None = None
    checkerboard_weight: float | None = None
    grad_clip: float = 100.0
    eval_every: int = 500
    val_clips: int | None = None
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
