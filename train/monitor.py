"""What a run reports: metrics.jsonl, the console, TensorBoard, optionally Weights & Biases, and warnings."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from torch import Tensor

from sscodec.common.files import atomic_output
from sscodec.train.config import SELECT_BY

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
    # With --select_by pesq: PESQ-WB (train/perceptual.py), mean over the clips it can score (NaN if none), with
    # all codebooks and with each --val_codebooks count
    pesq_wb: float | None = None
    pesq_wb_at: dict[str, float] = field(default_factory=dict)

    @property
    def select_by(self) -> str:
        """The SELECT_BY key this validation is chosen by: "pesq" where PESQ was measured, else "mel"."""
        return "mel" if self.pesq_wb is None else "pesq"

    @property
    def selection(self) -> float:
        """What best.pt is chosen by, over all codebooks and each --val_codebooks count: the mean mel distance
        (lowest is best) or, with --select_by pesq, the mean PESQ-WB (highest is best; NaN if PESQ scored no
        clip, which is never best)."""
        return selection(self.mel_distance, self.mel_distance_at, self.pesq_wb, self.pesq_wb_at)

    def scalars(self) -> dict[str, float]:
        """Every number of this validation by name (`mel_distance_at` entries as mel_distance_6cb, ...)."""
        values = {k: v for k, v in asdict(self).items() if isinstance(v, int | float) and k != "step"}
        for name in ("mel_distance", "snr_db", "pesq_wb"):
            values |= {f"{name}_{count}cb": value for count, value in getattr(self, f"{name}_at").items()}
        return values

    def summary(self) -> str:
        return (
            f"step {self.step} epoch {self.epoch:.2f}: loss {self.loss:.4f} recon {self.recon:.4f} "
            f"vq {self.vq:.4f} mel {self.mel_distance:.4f} SNR {self.snr_db:+.2f} dB "
            f"SI-SDR {self.si_sdr_db:+.2f} dB amplitude {self.amplitude_ratio:.2f} "
            + "".join(f"mel@{count}cb {mel:.4f} SNR@{count}cb {self.snr_db_at[count]:+.2f} dB "
                      for count, mel in self.mel_distance_at.items())
            + ("" if self.pesq_wb is None else f"PESQ-WB {self.pesq_wb:.3f} " + "".join(
                f"PESQ-WB@{count}cb {value:.3f} " for count, value in self.pesq_wb_at.items()))
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
    # Found from outside: 25 times at --learning_rate 1, without a sign. Not at step 0: untrained weights say nothing.
    if latest.step > 0 and latest.amplitude_ratio > 2:
        signs.append(f"bad sign: output amplitude is {latest.amplitude_ratio:.1f} times the input's (over 2): "
                     "training is diverging; a lower --learning_rate may help")
    if latest.pesq_wb is not None and not math.isfinite(latest.selection):
        signs.append("bad sign: PESQ-WB scored none of the validation clips (silent, or too short to find an "
                     "utterance in), so this validation cannot choose best.pt: use --select_by mel or longer clips")
    if len(history) > patience:
        before = best_selection(history[:-patience])
        if math.isfinite(before) and not any(better(v.selection, before, v.select_by) for v in history[-patience:]):
            signs.append(f"bad sign: no improvement in {SELECT_BY[latest.select_by]} over the last {patience} "
                         "validations")
    return signs


def selection(mel_distance: float, mel_distance_at: Mapping[str, float], pesq_wb: float | None,
              pesq_wb_at: Mapping[str, float]) -> float:
    """Validation.selection from a validation's fields (as metrics.jsonl holds them): the mean PESQ-WB over all
    codebooks and each --val_codebooks count where PESQ was measured, else the mean mel distance over them."""
    values = [mel_distance, *mel_distance_at.values()] if pesq_wb is None else [pesq_wb, *pesq_wb_at.values()]
    return sum(values) / len(values)


def better(value: float, than: float, select_by: str) -> bool:
    """Whether selection `value` beats `than` (NaN beats nothing and is beaten by anything finite)."""
    if not math.isfinite(value):
        return False
    if not math.isfinite(than):
        return True
    return value < than if select_by == "mel" else value > than


def best_selection(history: list[Validation]) -> float:
    """The best `selection` in `history` (NaN if none is finite)."""
    best = math.nan
    for validation in history:
        if better(validation.selection, best, validation.select_by):
            best = validation.selection
    return best


def validated_steps(checkpoint_dir: Path) -> set[int]:
    """The steps of the validations in a run's metrics.jsonl (none if it has none)."""
    path = checkpoint_dir / "metrics.jsonl"
    if not path.is_file():
        return set()
    return {int(json.loads(line)["step"]) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()}


class Monitor:
    """Writes each validation to metrics.jsonl, the console, TensorBoard and (optionally) W&B."""

    def __init__(self, checkpoint_dir: Path, config: dict[str, Any], use_wandb: bool, name: str) -> None:
        self.path = checkpoint_dir / "metrics.jsonl"
        self.history: list[Validation] = []
        self.tensorboard = _tensorboard(checkpoint_dir / "tensorboard")
        self.wandb = _wandb(config, name) if use_wandb else None

    def drop_after(self, step: int) -> None:
        """Remove the validations after `step` from metrics.jsonl: a run killed between writing a validation and
        saving its checkpoint wrote them, and the resumed run writes those steps again (found from outside: steps
        0, 10, 20, 20, 30)."""
        if not self.path.is_file():
            return
        lines = self.path.read_text(encoding="utf-8").splitlines()
        kept = [line for line in lines if line.strip() and int(json.loads(line)["step"]) <= step]
        if len(kept) < len(lines):
            with atomic_output(self.path) as temp:
                temp.write_text("".join(f"{line}\n" for line in kept), encoding="utf-8")

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
