"""Training faults: NaN/Inf steps, a SIGKILL mid-checkpoint, a full disk; nothing saved is ever lost."""

from __future__ import annotations

import errno
import io
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

import sscodec.train.trainer as trainer_module
from sscodec.codec.checkpoint import read_checkpoint
from sscodec.train.config import TrainConfig
from sscodec.train.trainer import Trainer, TrainingError

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """One torch thread: on the shared 2-core machine a second one makes each tiny step 30x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("speechless")
    rng = np.random.default_rng(0)
    for index in range(2):
        soundfile.write(folder / f"{index}.wav", 0.1 * rng.standard_normal(16000), 16000, subtype="FLOAT")
    return folder


def config(data_dir: Path, checkpoint_dir: Path, **overrides: object) -> TrainConfig:
    """A run of the `tiny` model on 2 crops of 0.1 s per step: tens of milliseconds a step on one core."""
    settings = {"preset": "tiny", "batch_size": 2, "segment_seconds": 0.1, "device": "cpu", "losses": "l1",
                "eval_every": 1000, "max_nan_steps": 3, "max_steps": 2, **overrides}
    return TrainConfig(data_dirs=(str(data_dir),), checkpoint_dir=str(checkpoint_dir), **settings)


def weights(trainer: Trainer) -> list[torch.Tensor]:
    """Every weight and buffer (the quantizer's EMA codebooks move in the forward pass)."""
    return [t.clone() for t in trainer.model.state_dict().values()]


def same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


def poison_loss(monkeypatch: pytest.MonkeyPatch, value: float, times: int) -> None:
    """Make the waveform loss `value` for the next `times` steps (then the real loss again)."""
    real = trainer_module.l1_waveform_loss
    calls = iter(range(times))

    def loss(fake: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        return real(fake, audio) + (value if next(calls, None) is not None else 0.0)

    monkeypatch.setattr(trainer_module, "l1_waveform_loss", loss)


class _NanGradient(torch.autograd.Function):
    """Identity forward, NaN gradient backward: a finite loss whose gradient is not."""

    @staticmethod
    def forward(ctx: object, x: torch.Tensor) -> torch.Tensor:
        return x.clone()

    @staticmethod
    def backward(ctx: object, grad: torch.Tensor) -> torch.Tensor:
        return torch.full_like(grad, float("nan"))


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_a_nonfinite_loss_is_skipped_and_counted(data_dir: Path, tmp_path: Path, value: float,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    trainer = Trainer(config(data_dir, tmp_path))
    before = weights(trainer)
    poison_loss(monkeypatch, value, times=2)
    for expected in (1, 2):
        assert np.isnan(trainer.train_step()["loss"])
        assert trainer.nan_skipped == trainer.consecutive_nan == expected
    assert same(weights(trainer), before)
    assert np.isfinite(trainer.train_step()["loss"])
    assert (trainer.nan_skipped, trainer.consecutive_nan) == (2, 0)
    assert not same(weights(trainer), before)


def test_a_nonfinite_gradient_of_a_finite_loss_is_skipped(data_dir: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    trainer = Trainer(config(data_dir, tmp_path))
    before = weights(trainer)
    real = trainer_module.l1_waveform_loss
    monkeypatch.setattr(trainer_module, "l1_waveform_loss", lambda fake, audio: real(_NanGradient.apply(fake), audio))
    assert np.isnan(trainer.train_step()["loss"])
    assert trainer.nan_skipped == 1 and same(weights(trainer), before)


def test_repeated_nonfinite_steps_stop_the_run_and_keep_the_checkpoint(data_dir: Path, tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    Trainer(config(data_dir, tmp_path, max_steps=2)).run()
    saved = read_checkpoint(tmp_path / "latest.pt")
    poison_loss(monkeypatch, float("nan"), times=1000)
    trainer = Trainer(config(data_dir, tmp_path, max_steps=50, eval_every=2, resume=True))
    with pytest.raises(TrainingError) as caught:
        trainer.run()
    message = str(caught.value)
    assert "\n" not in message
    assert "stopped at step 4: 3 consecutive non-finite losses or gradients" in message
    assert f"{tmp_path / 'latest.pt'} is intact" in message
    # Skipped steps leave the weights alone, so a save inside the streak (step 4) holds step 2's weights.
    kept = read_checkpoint(tmp_path / "latest.pt")
    assert same(list(kept["model"].values()), list(saved["model"].values()))


def _full_disk_while_writing(monkeypatch: pytest.MonkeyPatch) -> None:
    """torch.save writes half the checkpoint, then the disk is full."""
    real_save = torch.save

    def save(obj: object, handle: io.BufferedWriter, **kwargs: object) -> None:
        buffer = io.BytesIO()
        real_save(obj, buffer, **kwargs)
        handle.write(buffer.getvalue()[: buffer.tell() // 2])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(torch, "save", save)


def _full_disk_at_fsync(monkeypatch: pytest.MonkeyPatch) -> None:
    """The write is buffered and the disk reports ENOSPC only at fsync (delayed allocation, NFS)."""

    def fsync(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", fsync)


@pytest.mark.parametrize("fault", [_full_disk_while_writing, _full_disk_at_fsync])
def test_a_full_disk_is_a_clear_error_and_keeps_the_previous_checkpoint(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fault: Callable[[pytest.MonkeyPatch], None]
) -> None:
    trainer = Trainer(config(data_dir, tmp_path, max_steps=1))
    trainer.run()
    before = (tmp_path / "latest.pt").read_bytes(), (tmp_path / "best.pt").read_bytes()
    trainer.advance()
    fault(monkeypatch)
    with pytest.raises(TrainingError) as caught:
        trainer.save(best=True)
    monkeypatch.undo()
    assert str(caught.value) == f"{tmp_path}: could not save a checkpoint (No space left on device)"
    assert ((tmp_path / "latest.pt").read_bytes(), (tmp_path / "best.pt").read_bytes()) == before
    assert read_checkpoint(tmp_path / "latest.pt")["step"] == 1
    assert not list(tmp_path.glob(".*.tmp"))


@pytest.mark.parametrize("fault", [KeyboardInterrupt(), OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))])
def test_a_ctrl_c_or_full_disk_inside_the_checkpoint_write_is_what_it_is_and_keeps_the_previous_checkpoint(
        data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fault: BaseException) -> None:
    # Found by clean-clone CI: a Ctrl-C landing in torch.save's writes left its zip writer to fail while closing
    # ("unexpected pos"), a RuntimeError and a traceback where the user had pressed Ctrl-C; a write that fails on
    # a full disk did the same.
    from sscodec.codec.checkpoint import atomic_save

    trainer = Trainer(config(data_dir, tmp_path, max_steps=1))
    trainer.run()
    before = (tmp_path / "latest.pt").read_bytes()
    real_fdopen = os.fdopen

    class FailsOnThirdWrite(io.RawIOBase):
        def __init__(self, fd: int) -> None:
            self.file, self.writes = real_fdopen(fd, "wb"), 0

        def writable(self) -> bool:
            return True

        def write(self, data: object) -> int:
            self.writes += 1
            if self.writes == 3:
                raise fault
            return self.file.write(data)

        def close(self) -> None:
            self.file.close()
            super().close()

    payload = read_checkpoint(tmp_path / "latest.pt") | {"step": 2}
    monkeypatch.setattr(os, "fdopen", lambda fd, mode: FailsOnThirdWrite(fd))
    with pytest.raises(type(fault)) as raised:
        atomic_save(payload, tmp_path / "latest.pt")
    assert raised.value is fault
    monkeypatch.undo()
    assert (tmp_path / "latest.pt").read_bytes() == before and not list(tmp_path.glob(".*.tmp"))


def test_an_error_of_the_save_that_a_ctrl_c_started_is_not_taken_for_the_ctrl_c(
        data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Found by review: the interrupt's own save runs in `except KeyboardInterrupt`, so every error inside it has
    # that Ctrl-C as its context; a real failure there must not pass for a clean "interrupted".
    from sscodec.codec.checkpoint import atomic_save

    def failing(*args: object, **kwargs: object) -> None:
        raise RuntimeError("CUDA error: an illegal memory access was encountered")

    monkeypatch.setattr(torch, "save", failing)
    with pytest.raises(RuntimeError, match="illegal memory access"):
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt:
            atomic_save({"step": 1}, tmp_path / "latest.pt")
    assert not list(tmp_path.iterdir())


SLOW_WRITER = textwrap.dedent("""
    import io, sys, time
    import torch
    from sscodec.codec.checkpoint import atomic_save, read_checkpoint

    path = sys.argv[1]
    payload = read_checkpoint(path)
    payload.update(step=999, padding=torch.zeros(4_000_000))  # 16 MB: written 64 KB at a time, slowly
    real_save = torch.save

    def slow_save(obj, handle):
        buffer = io.BytesIO()
        real_save(obj, buffer)
        data = buffer.getvalue()
        for start in range(0, len(data), 65536):
            handle.write(data[start:start + 65536])
            handle.flush()
            print("wrote", start, flush=True)
            time.sleep(0.05)

    torch.save = slow_save
    atomic_save(payload, path)
""")


def test_sigkill_mid_checkpoint_keeps_the_previous_one_and_resume_continues(data_dir: Path,
                                                                             tmp_path: Path) -> None:
    Trainer(config(data_dir, tmp_path, max_steps=2)).run()
    latest = tmp_path / "latest.pt"
    original = latest.read_bytes()
    child = subprocess.Popen([sys.executable, "-c", SLOW_WRITER, str(latest)], cwd=ROOT, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(3):  # a few chunks are on disk: the write is well under way
            assert child.stdout.readline().startswith("wrote"), child.stderr.read()
        child.send_signal(signal.SIGKILL)
        assert child.wait(timeout=30) == -signal.SIGKILL
    finally:
        child.kill()
        child.communicate()
    partial = list(tmp_path.glob(".latest.pt.*.tmp"))
    assert len(partial) == 1 and partial[0].stat().st_size >= 3 * 65536
    assert latest.read_bytes() == original and read_checkpoint(latest)["step"] == 2
    started = time.monotonic()
    trainer = Trainer(config(data_dir, tmp_path, max_steps=4, resume=True))
    assert trainer.step == 2 and not partial[0].exists()  # resumed from the intact file; the half-write is gone
    assert trainer.run().steps == 4 and read_checkpoint(latest)["step"] == 4
    assert time.monotonic() - started < 60
