"""What a run reports: metrics.jsonl, the console, TensorBoard, optionally Weights & Biases, and warnings."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from torch import Tensor

log = logging.getLogger("codec-train")


@dataclass
class Validation:
    """Validation metrics at one step (means over the validation clips, 6 kbps: all codebooks)."""

    step: int
    epoch: float
    loss: float
    recon: float
    vq: float
    mel_distance: float
    snr_db: float
    si_sdr_db: float
    amplitude_ratio: float
    codebook_perplexity: list[float] = field(default_factory=list)
    codebook_used_fraction: list[float] = field(default_factory=list)
    train_audio_seconds_per_second: float = 0.0
    audio_seconds_trained: float = 0.0  # steps × batch × crop seconds × processes, since the run's step 0
    elapsed_seconds: float = 0.0
    learning_rate: float = 0.0  # the generator's, after `step` steps of --lr_decay
    nan_skipped_steps: int = 0
    peak_gpu_memory_gb: float | None = None
    # --val_codebooks: the same clips through the first N codebooks only, keyed by N (as a string, as JSON has it)
    mel_distance_at: dict[str, float] = field(default_factory=dict)
    snr_db_at: dict[str, float] = field(default_factory=dict)
    stft_loss: float | None = None  # with --stft_weight: the multi-resolution STFT loss, unweighted

    @property
    def selection_mel_distance(self) -> float:
        """What best.pt minimises: the mean mel distance over all codebooks and each --val_codebooks count."""
        values = [self.mel_distance, *self.mel_distance_at.values()]
        return sum(values) / len(values)

    def scalars(self) -> dict[str, float]:
        """Every number of this validation by name (`mel_distance_at` entries as mel_distance_6cb, ...)."""
        values = {k: v for k, v in asdict(self).items() if isinstance(v, int | float) and k != "step"}
        for name in ("mel_distance", "snr_db"):
            values |= {f"{name}_{count}cb": value for count, value in getattr(self, f"{name}_at").items()}
        return values

    def summary(self) -> str:
        return (
            f"step {self.step} epoch {self.epoch:.2f}: loss {self.loss:.4f} recon {self.recon:.4f} "
            f"vq {self.vq:.4f} mel {self.mel_distance:.4f} SNR {self.snr_db:+.2f} dB "
            f"SI-SDR {self.si_sdr_db:+.2f} dB amplitude {self.amplitude_ratio:.2f} "
            + "".join(f"mel@{count}cb {mel:.4f} SNR@{count}cb {self.snr_db_at[count]:+.2f} dB "
                      for count, mel in self.mel_distance_at.items())
            + f"codebook use {min(self.codebook_used_fraction, default=0):.2f}-"
            f"{max(self.codebook_used_fraction, default=0):.2f} "
            f"({self.train_audio_seconds_per_second:.1f} audio-s/s)"
        )


def bad_signs(history: list[Validation], patience: int = 3) -> list[str]:
    """The bad signs in the latest validation, each named."""
    latest = history[-1]
    signs = []
    if latest.epoch >= 1 and latest.snr_db < 0:
        signs.append(f"bad sign: SNR is negative after the first epoch ({latest.snr_db:+.1f} dB)")
    if latest.amplitude_ratio < 0.5:
        signs.append(f"bad sign: output amplitude is {latest.amplitude_ratio:.0%} of the input (under 50%)")
    if len(history) > patience:
        best_before = min(v.selection_mel_distance for v in history[:-patience])
        if min(v.selection_mel_distance for v in history[-patience:]) >= best_before:
            signs.append(f"bad sign: no improvement in mel distance over the last {patience} validations")
    return signs


class Monitor:
    """Writes each validation to metrics.jsonl, the console, TensorBoard and (optionally) W&B."""

    def __init__(self, checkpoint_dir: Path, config: dict[str, Any], use_wandb: bool, name: str) -> None:
        self.path = checkpoint_dir / "metrics.jsonl"
        self.history: list[Validation] = []
        self.tensorboard = _tensorboard(checkpoint_dir / "tensorboard")
        self.wandb = _wandb(config, name) if use_wandb else None

    def validation(self, result: Validation, examples: dict[str, Tensor], sample_rate: int) -> None:
        self.history.append(result)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(asdict(result)) + "\n")
        log.info(result.summary())
        for sign in bad_signs(self.history):
            log.warning(sign)
        scalars = result.scalars()
        if self.tensorboard is not None:
            for key, value in scalars.items():
                self.tensorboard.add_scalar(f"val/{key}", value, result.step)
            for key, audio in examples.items():
                self.tensorboard.add_audio(key, audio.clamp(-1, 1).cpu(), result.step, sample_rate)
            self.tensorboard.flush()
        if self.wandb is not None:
            self.wandb.log({f"val/{k}": v for k, v in scalars.items()}, step=result.step)

    def train_scalars(self, step: int, values: dict[str, float]) -> None:
        if self.tensorboard is not None:
            for key, value in values.items():
                self.tensorboard.add_scalar(f"train/{key}", value, step)
        if self.wandb is not None:
            self.wandb.log({f"train/{k}": v for k, v in values.items()}, step=step)

    def close(self) -> None:
        if self.tensorboard is not None:
            self.tensorboard.close()
        if self.wandb is not None:
            self.wandb.finish()


def _tensorboard(folder: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        log.warning("TensorBoard is not installed (pip install tensorboard); logging to metrics.jsonl only")
        return None
    return SummaryWriter(str(folder))


def _wandb(config: dict[str, Any], name: str):
    try:
        import wandb
    except ImportError:
        log.warning("--use_wandb: wandb is not installed (pip install '.[wandb]'); continuing without it")
        return None
    try:
        return wandb.init(project="streaming-speech-codec", name=name, config=config)
    except Exception as error:  # noqa: BLE001 - any W&B failure (offline, no login) must not stop training
        log.warning("--use_wandb: could not start Weights & Biases (%s); continuing without it", error)
        return None
