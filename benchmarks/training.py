"""Training throughput on CPU or CUDA: steps/s and audio-seconds/s per preset and recipe, eager or compiled.

On CUDA each setting also runs in bf16 autocast and fp32, and reports peak GPU memory. The first
`WARMUP_STEPS` steps are not timed: torch.compile compiles during them, and their time is reported apart.
"""

from __future__ import annotations

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


def resolve_device(device: str) -> str:
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
    """Time every preset × recipe × precision × compile × data pipeline setting, one after another."""
    precisions = (True, False) if device == "cuda" else (False,)
    return [
        _time_setting(audio_dir, batch_size, device, name, losses, amp, compile_, timed_steps, pipeline)
        for name in presets
        for losses in TIMED_RECIPES
        for amp in precisions
        for compile_ in compiled
        for pipeline in pipelines
    ]


def _time_setting(
    audio_dir: Path,
    batch_size: int,
    device: str,
    name: str,
    losses: str,
    amp: bool,
    compiled: bool,
    timed_steps: int,
    pipeline: str,
) -> TrainingSpeed:
    import torch

    from sscodec.train.config import TrainConfig
    from sscodec.train.manifest import DataError
    from sscodec.train.trainer import Trainer, TrainingError

    cuda = device == "cuda"

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize()

    with tempfile.TemporaryDirectory(prefix="codec-bench-train-") as tmp:
        config = TrainConfig(
            data_dirs=(str(audio_dir),),
            checkpoint_dir=tmp,
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
        try:
            trainer = Trainer(config)
        except (DataError, TrainingError) as error:
            raise BenchError(str(error)) from None
        start = time.perf_counter()
        for _ in range(WARMUP_STEPS):
            trainer.advance()
        sync()
        warmup = time.perf_counter() - start
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        for _ in range(timed_steps):
            trainer.advance()
        sync()
        steps_per_s = timed_steps / (time.perf_counter() - start)
        return TrainingSpeed(
            preset=name,
            losses=losses,
            device=device,
            precision=("bf16 autocast" if amp else "fp32 (TF32 matmuls)") if cuda else "fp32",
            compiled=compiled,
            batch_size=batch_size,
            segment_seconds=config.segment_seconds,
            warmup_seconds=warmup,
            steps_per_s=steps_per_s,
            audio_seconds_per_s=steps_per_s * batch_size * config.segment_seconds,
            peak_gpu_memory_mb=torch.cuda.max_memory_allocated() / 2**20 if cuda else None,
            pipeline=pipeline,
            num_workers=trainer.num_workers,
        )
