"""codec-train on a 20-hour corpus: memory stays bounded by the data workers, not the corpus, and a run whose
manifest exists starts training within a minute.

The corpus is four 60 s recordings (real Telugu clips joined end to end) hard-linked under 300 names each: 1,200
files, 20 hours, a few MB of disk. Decoded into memory it would be 4.6 GB of float32.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile

from tests.conftest import TELUGU_TRAIN

psutil = pytest.importorskip("psutil")

CODEC_TRAIN = Path(sys.executable).with_name("codec-train")
FILES = 1200
SECONDS_PER_FILE = 60
STEPS = 150
MEMORY_LIMIT = 1.5 * 2**30


def _corpus(folder: Path) -> Path:
    sources = sorted(TELUGU_TRAIN.glob("*.flac"))
    originals = folder / "originals"
    originals.mkdir(parents=True)
    for index in range(4):
        clips, total = [], 0
        for source in sources[index::4]:
            clip, rate = soundfile.read(source, dtype="float32")
            clips.append(clip)
            total += len(clip)
            if total >= SECONDS_PER_FILE * rate:
                break
        soundfile.write(originals / f"{index}.flac", np.concatenate(clips)[: SECONDS_PER_FILE * rate], rate)
    corpus = folder / "corpus"
    corpus.mkdir()
    for name in range(FILES):
        os.link(originals / f"{name % 4}.flac", corpus / f"{name:04d}.flac")
    return corpus


def _tree_memory(process: psutil.Process) -> int:
    """Proportional set size of a process and its children (shared pages counted once in total)."""
    total = 0
    for member in [process, *process.children(recursive=True)]:
        try:
            total += member.memory_full_info().pss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return total


def _run(args: list[str], until: str | None = None) -> tuple[int, str, int, float | None]:
    """Run codec-train; (exit code, stderr, peak memory of its process tree, seconds until `until` was logged)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    started = time.monotonic()
    process = subprocess.Popen([str(CODEC_TRAIN), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env=env)
    lines: list[str] = []
    seen: list[float] = []

    def read() -> None:
        for line in process.stderr:
            lines.append(line)
            if until and until in line and not seen:
                seen.append(time.monotonic() - started)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    peak = 0
    watched = psutil.Process(process.pid)
    while process.poll() is None:
        peak = max(peak, _tree_memory(watched))
        time.sleep(0.5)
        if time.monotonic() - started > 900:
            process.kill()
    process.stdout.read()
    reader.join(timeout=10)
    return process.returncode, "".join(lines), peak, seen[0] if seen else None


def test_twenty_hours_train_in_bounded_memory_and_restart_quickly(tmp_path: Path) -> None:
    if not TELUGU_TRAIN.is_dir():
        pytest.skip(f"shared speech data not found at {TELUGU_TRAIN}")
    corpus = _corpus(tmp_path)
    hours = sum(soundfile.info(corpus / f"{i:04d}.flac").duration for i in range(FILES)) / 3600
    assert hours >= 20
    checkpoints = tmp_path / "ckpt"
    common = ["--data_dir", str(corpus), "--checkpoint_dir", str(checkpoints), "--preset", "tiny",
              "--device", "cpu", "--batch_size", "4", "--val_clips", "4", "--num_workers", "2"]
    code, log, peak, _ = _run([*common, "--max_steps", str(STEPS), "--eval_every", str(STEPS)])
    assert code == 0, log[-3000:]
    assert f"{FILES - 24} clips, 1176.0 min" in log and "24 held out for validation" in log
    assert peak < MEMORY_LIMIT, f"peak {peak / 2**30:.2f} GB"
    print(f"20-hour corpus, {STEPS} steps: peak memory of the process tree {peak / 2**30:.2f} GB")
    # Restarted with the manifest on disk: training resumes within a minute of the command.
    code, log, _, first_batch = _run([*common, "--max_steps", str(STEPS + 1), "--resume"],
                                     until="first batch ready")
    assert code == 0, log[-3000:]
    assert first_batch is not None and first_batch < 60, log[-3000:]
    print(f"restart with the manifest cached: first batch {first_batch:.1f} s after the command")
