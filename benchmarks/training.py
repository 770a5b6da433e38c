"""Training throughput on CUDA: steps/s, samples/s and peak GPU memory per preset, bf16 vs fp32, compiled or not."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from benchmarks.errors import BenchError

PRESETS = ("tiny", "small", "base")
WARMUP_STEPS = 10  # torch.compile compiles during these
TIMED_STEPS = 50


def cuda_missing() -> str | None:
    """Why the training benchmark cannot run here, or None."""
    try:
        import torch
    except ImportError:
        return "codec-bench train needs torch (pip install '.[train]') and a CUDA GPU"
    return None if torch.cuda.is_available() else "codec-bench train needs a CUDA GPU; none is available here"


def run_training(audio_dir: Path, batch_size: int, presets: tuple[str, ...] = PRESETS) -> list[dict]:
    """Time the full recipe (L1 + mel + GAN from step 0, the costliest step) for every setting."""
    reason = cuda_missing()
    if reason:
        raise BenchError(reason)
    return [
        _time_setting(audio_dir, batch_size, name, amp, compiled)
        for name in presets
        for amp in (True, False)
        for compiled in (False, True)
    ]


def _time_setting(audio_dir: Path, batch_size: int, name: str, amp: bool, compiled: bool) -> dict:
    import torch

    from train.config import TrainConfig
    from train.trainer import Trainer

    with tempfile.TemporaryDirectory(prefix="codec-bench-train-") as tmp:
        config = TrainConfig(
            data_dirs=(str(audio_dir),),
            checkpoint_dir=tmp,
            preset=name,
            batch_size=batch_size,
            device="cuda",
            amp=amp,
            compile=compiled,
            losses="full",
            adversarial_start=0,
        )
        trainer = Trainer(config)
        for _ in range(WARMUP_STEPS):
            trainer.train_step()
            trainer.step += 1
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        for _ in range(TIMED_STEPS):
            trainer.train_step()
            trainer.step += 1
        torch.cuda.synchronize()
        elapsed = time.perf_counter() - start
        steps_per_s = TIMED_STEPS / elapsed
        return {
            "preset": name,
            "precision": "bf16 autocast" if amp else "fp32 (TF32 matmuls)",
            "compiled": compiled,
            "batch_size": batch_size,
            "segment_seconds": config.segment_seconds,
            "steps_per_s": steps_per_s,
            "samples_per_s": steps_per_s * batch_size,
            "audio_seconds_per_s": steps_per_s * batch_size * config.segment_seconds,
            "peak_gpu_memory_mb": torch.cuda.max_memory_allocated() / 2**20,
        }
