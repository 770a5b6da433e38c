"""scripts/device_train.sh, the lent GPU machine's training run, exercised here on the CPU: carried codec-pack shards
merged into one corpus, codec-train run on them, and only what comes back through the device tool left in OUT."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from sscodec.train.shards_cli import main as pack
from tests.conftest import telugu_train_clips

ROOT = Path(__file__).resolve().parents[1]


def test_device_train_merges_the_shards_and_leaves_what_comes_back(tmp_path: Path) -> None:
    devdata = tmp_path / "devdata"
    first = telugu_train_clips(tmp_path / "src" / "telugu", 4)
    second = telugu_train_clips(tmp_path / "src2" / "more", 6)
    for name in sorted(second.iterdir())[:4]:
        name.unlink()  # two other clips: the second source is not the first one again
    val = telugu_train_clips(tmp_path / "v" / "val", 8)
    for name in sorted(val.iterdir())[:6]:
        name.unlink()
    pack([str(first), str(second), "--out", str(devdata / "data"), "--format", "opus", "--kbps", "16",
          "--shard-mb", "0.05"])
    pack([str(val), "--out", str(devdata / "val")])
    assert len(list((devdata / "data").glob("shard-*"))) >= 2  # the corpus arrives in pieces
    out = tmp_path / "out"
    env = {**os.environ, "PYTHON": sys.executable, "OUT": str(out), "DEVDATA": str(devdata),
           "SITE": str(tmp_path / "site"), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        ["bash", str(ROOT / "scripts" / "device_train.sh"), "5", "--preset", "tiny", "--device", "cpu",
         "--batch_size", "2", "--segment_seconds", "0.2", "--max_steps", "4", "--eval_every", "2",
         "--num_workers", "0"],
        check=False, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert sorted(path.name for path in out.iterdir()) == ["best.pt", "metrics.jsonl", "train.log"]
    log = (out / "train.log").read_text()
    assert "telugu: 4 clips" in log and "more: 2 clips" in log, log  # every shard's files, merged
    assert not any(line.lstrip().startswith("0%|") for line in log.splitlines())  # no progress-bar noise
    steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps[-1] == 4


def test_device_prepare_is_valid_bash() -> None:
    # Not run here: it downloads wheels from PyPI and packs all of ../shared (about 15 minutes).
    assert subprocess.run(["bash", "-n", str(ROOT / "scripts" / "device_prepare.sh")], check=False).returncode == 0
