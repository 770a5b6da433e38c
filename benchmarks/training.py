"""Training throughput on CPU or CUDA: steps/s and audio-seconds/s per preset and recipe, eager or compiled.

On CUDA each setting also runs in bf16 autocast and fp32, and reports peak GPU memory. The first
`WARMUP_STEPS` steps are not timed: torch.compile compiles during them, and their time is reported apart.
"""

from __future__ import annotations

import logging
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from sscodec.benchmarks.errors import BenchError

DEFAULT_PRESETS = {"cuda": ("tiny", "small", "base"), "cpu": ("tiny", "small")}
BATCH_SIZES = {"cuda": 32, "cpu": 8}
TIMED_RECIPES = ("l1+mel", "full")  # the default recipe, and the costliest (GAN from step 0)
WARMUP_STEPS = 10
TIMED_STEPS = 30
PIPELINES = ("streaming", "memory")  # crops read from disk by DataLoader workers, or sliced from decoded files
ROUNDS = 5  # interleaved timing rounds per setting when several pipelines are compared


class _Once(logging.Filter):
    """Lets each distinct message through once."""

    def __init__(self) -> None:
        super().__init__()
        self._seen: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        first = message not in self._seen
        self._seen.add(message)
        return first


@dataclass(frozen=True)
class TrainingSpeed:
    """One timed setting."""

    preset: str
    losses: str
    device: str
    precision: str
    compiled: bool
    batch_size: int
    segment_seconds: float
    warmup_seconds: float  # the untimed first steps, compilation included
    steps_per_s: float
    audio_seconds_per_s: float
    peak_gpu_memory_mb: float | None
    pipeline: str  # see PIPELINES
    num_workers: int

    def to_dict(self) -> dict:
        return asdict(self)


def bench_device(device: str) -> str:
    """`auto` → cuda where a GPU is visible, else cpu (codec-train's rule); a BenchError when the asked device
    cannot run."""
    try:
        from sscodec.train.trainer import TrainingError
        from sscodec.train.trainer import resolve_device as training_device
    except ImportError:
        raise BenchError("codec-bench train needs torch (pip install -e '.[bench]')") from None
    try:
        return training_device(device).type
    except TrainingError:
        raise BenchError(f"codec-bench train --device {device} needs a CUDA GPU; none is available here") from None


def run_training(
    audio_dir: Path,
    batch_size: int,
    device: str,
    presets: tuple[str, ...],
    compiled: tuple[bool, ...] = (False,),
    timed_steps: int = TIMED_STEPS,
    pipelines: tuple[str, ...] = ("streaming",),
) -> list[TrainingSpeed]:
    """Time every preset × recipe × precision × compile setting, one after another, and each data pipeline
    within a setting side by side (`_time_pipelines`)."""
    precisions = (True, False) if device == "cuda" else (False,)
    # Every setting builds its own Trainer on the same data: what one says of the data, the others would repeat
    # (found from outside: one warning four times).
    training_log, once = logging.getLogger("codec-train"), _Once()
    training_log.addFilter(once)
    try:
        return [
            speed
            for name in presets
            for losses in TIMED_RECIPES
            for amp in precisions
            for compile_ in compiled
            for speed in _time_pipelines(audio_dir, batch_size, device, name, losses, amp, compile_, timed_steps,
                                         pipelines)
        ]
    finally:
        training_log.removeFilter(once)


def _time_pipelines(
    audio_dir: Path,
    batch_size: int,
    device: str,
    name: str,
    losses: str,
    amp: bool,
    compiled: bool,
    timed_steps: int,
    pipelines: tuple[str, ...],
) -> list[TrainingSpeed]:
    """One trainer per data pipeline, all alive at once, their timed steps interleaved over `ROUNDS` rounds.

    Interleaving makes a load change on a shared machine hit every pipeline alike, so their ratio holds even
    when the absolute numbers drift. With several pipelines the GPU holds several models, so no peak memory is
    reported then (time one pipeline for it).
    """
    import torch

    from sscodec.train.config import TrainConfig
    from sscodec.train.manifest import DataError
    from sscodec.train.trainer import Trainer, TrainingError

    cuda = device == "cuda"

    def timed(trainer: Trainer, steps: int) -> float:
        start = time.perf_counter()
        for _ in range(steps):
            trainer.advance()
        if cuda:
            torch.cuda.synchronize()
        return time.perf_counter() - start

    with tempfile.TemporaryDirectory(prefix="codec-bench-train-") as tmp:
        configs = [
            TrainConfig(
                data_dirs=(str(audio_dir),),
                checkpoint_dir=str(Path(tmp) / pipeline),
                preset=name,
                batch_size=batch_size,
                device=device,
                amp=amp,
                compile=compiled,
                losses=losses,
                adversarial_start=0,
                no_validation=True,
                in_memory=pipeline == "memory",
                # In memory, crops are cut on the main thread between steps, as codec-train did before streaming.
                num_workers=0 if pipeline == "memory" else None,
            )
            for pipeline in pipelines
        ]
        try:
            trainers = [Trainer(config) for config in configs]
        except (DataError, TrainingError) as error:
            raise BenchError(str(error)) from None
        warmups = [timed(trainer, WARMUP_STEPS) for trainer in trainers]
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        rounds = min(ROUNDS, timed_steps)
        elapsed = [0.0] * len(trainers)
        for index in range(rounds):
            steps = timed_steps // rounds + (index < timed_steps % rounds)
            for which, trainer in enumerate(trainers):
                elapsed[which] += timed(trainer, steps)
        peak = torch.cuda.max_memory_allocated() / 2**20 if cuda and len(trainers) == 1 else None
        return [
            TrainingSpeed(
                preset=name,
                losses=losses,
                device=device,
                precision=("bf16 autocast" if amp else "fp32 (TF32 matmuls)") if cuda else "fp32",
                compiled=compiled,
                batch_size=batch_size,
                segment_seconds=config.segment_seconds,
                warmup_seconds=warmup,
                steps_per_s=timed_steps / seconds,
                audio_seconds_per_s=timed_steps / seconds * batch_size * config.segment_seconds,
                peak_gpu_memory_mb=peak,
                pipeline=pipeline,
                num_workers=trainer.num_workers,
            )
            for pipeline, config, trainer, warmup, seconds in zip(pipelines, configs, trainers, warmups, elapsed,
                                                                  strict=True)
        ]
