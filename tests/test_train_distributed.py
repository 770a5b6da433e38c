"""`torchrun --nproc_per_node 2` (gloo, CPU): both ranks end a few GAN steps with identical weights, having
agreed to skip the steps where only rank 1 saw a NaN loss (see tests/train_ddp_worker.py), and cropped their
batches from disjoint files."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from sscodec.train.config import TrainConfig
from sscodec.train.trainer import Trainer
from tests.conftest import telugu_train_clips

ROOT = Path(__file__).resolve().parents[1]
STEPS = 4


def test_two_gloo_ranks_hold_identical_weights_and_buffers(tmp_path: Path) -> None:
    data = telugu_train_clips(tmp_path / "data", 6)
    torchrun = Path(sys.executable).with_name("torchrun")
    command = [str(torchrun), "--standalone", "--nproc_per_node", "2", str(ROOT / "tests" / "train_ddp_worker.py"),
               str(data), str(tmp_path / "ckpt"), str(STEPS)]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    # Its own process group, so a hung rank is killed with torchrun instead of outliving the test.
    with subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          start_new_session=True) as process:
        try:
            _, stderr = process.communicate(timeout=240)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            raise
    assert process.returncode == 0, stderr[-3000:]
    assert "FutureWarning" not in stderr, stderr  # found from outside: DDP's renamed flag, once per rank
    rank0 = torch.load(tmp_path / "ckpt" / "rank0.pt", weights_only=True)
    rank1 = torch.load(tmp_path / "ckpt" / "rank1.pt", weights_only=True)
    latest = torch.load(tmp_path / "ckpt" / "latest.pt", weights_only=True)
    assert latest["step"] == STEPS
    # Each rank crops from its own half of the six files.
    files0, files1 = set(rank0.pop("files")), set(rank1.pop("files"))
    assert files0 and files1 and not files0 & files1 and len(files0 | files1) <= 6
    # The data summary gives the folder's totals on every rank (found from outside: the clip count was rank 0's
    # half beside both ranks' minutes).
    summary = rank0.pop("summary")
    assert summary == rank1.pop("summary") and f"{data}: 6 clips, " in summary
    # The generator step with rank 1's NaN loss was skipped, and counted, on both ranks; so was the
    # discriminator step with rank 1's NaN loss (not counted: the generator step still runs).
    assert int(rank0.pop("nan_skipped")) == int(rank1.pop("nan_skipped")) == 1
    for name in ("generator_steps", "discriminator_steps"):
        assert int(rank0.pop(name)) == int(rank1.pop(name)) == STEPS - 1, name
    assert rank0.keys() == rank1.keys()
    assert {k.removeprefix("model.") for k in rank0 if k.startswith("model.")} == latest["model"].keys()
    # Parameters agree because DDP averages gradients; the EMA codebooks (buffers) because the trainer
    # re-broadcasts rank 0's after every step. Equality is exact: same operations on the same numbers.
    differing = [k for k in rank0 if not torch.equal(rank0[k], rank1[k])]
    assert differing == []
    assert all(torch.equal(rank0[f"model.{k}"], v) for k, v in latest["model"].items())
    # Audio trained counts both ranks: 4 steps of 2 ranks x 2 crops x 0.2 s. Resumed on one process it goes on
    # from there (found from outside: recomputed as step x today's processes, it fell from 8.0 to 6.0 s).
    assert latest["audio_seconds_trained"] == STEPS * 2 * 2 * 0.2
    resumed = Trainer(TrainConfig(data_dirs=(str(data),), checkpoint_dir=str(tmp_path / "ckpt"), preset="tiny",
                                  batch_size=2, segment_seconds=0.2, max_steps=STEPS + 2, eval_every=STEPS,
                                  device="cpu", losses="full", adversarial_start=0, num_workers=0, resume=True))
    resumed.run()
    after = torch.load(tmp_path / "ckpt" / "latest.pt", weights_only=True)
    assert after["step"] == STEPS + 2
    assert after["audio_seconds_trained"] == pytest.approx(STEPS * 2 * 2 * 0.2 + 2 * 2 * 0.2)
