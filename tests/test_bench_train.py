"""codec-bench train: a short eager run on CPU writes its results; CUDA without a GPU is one line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile
import torch

from sscodec.benchmarks.cli import main
from sscodec.export.probe import probe_signal


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present: the benchmark would run for minutes")
def test_train_on_cuda_without_a_gpu_is_one_line(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--device", "cuda", "--audio", str(tmp_path)])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err.strip()
    assert err == "codec-bench: error: codec-bench train --device cuda needs a CUDA GPU; none is available here"


def test_train_on_cpu_times_each_recipe(tmp_path: Path) -> None:
    audio = tmp_path / "audio"
    audio.mkdir()
    for i in range(2):
        soundfile.write(audio / f"clip{i}.wav", probe_signal(16000, 1.5, seed=i), 16000)
    out = tmp_path / "results" / "train.json"
    main(["train", "--device", "cpu", "--preset", "tiny", "--steps", "2", "--batch-size", "2",
          "--audio", str(audio), "--json", str(out)])
    data = json.loads(out.read_text())
    assert data["timed_steps"] == 2 and data["machine"]["logical_cores"] >= 1
    assert [(r["preset"], r["losses"], r["compiled"]) for r in data["runs"]] == [
        ("tiny", "l1+mel", False), ("tiny", "full", False)]
    for run in data["runs"]:
        assert run["device"] == "cpu" and run["precision"] == "fp32" and run["peak_gpu_memory_mb"] is None
        assert run["steps_per_s"] > 0 and run["warmup_seconds"] > 0
        assert run["audio_seconds_per_s"] == pytest.approx(run["steps_per_s"] * 2 * 0.5)
    table = out.with_suffix(".md").read_text()
    assert table.startswith("# codec-bench train") and "| tiny | full | cpu | fp32 | False | 2 × 0.5 s |" in table
    assert out.with_suffix(".png").stat().st_size > 1000


def test_train_compares_the_data_pipelines_side_by_side(tmp_path: Path) -> None:
    audio = tmp_path / "audio"
    audio.mkdir()
    for i in range(2):
        soundfile.write(audio / f"clip{i}.wav", probe_signal(16000, 1.5, seed=i), 16000)
    out = tmp_path / "train.json"
    main(["train", "--device", "cpu", "--preset", "tiny", "--steps", "3", "--batch-size", "2",
          "--pipeline", "streaming", "--pipeline", "memory", "--audio", str(audio), "--json", str(out)])
    runs = json.loads(out.read_text())["runs"]
    assert [(r["losses"], r["pipeline"]) for r in runs] == [
        ("l1+mel", "streaming"), ("l1+mel", "memory"), ("full", "streaming"), ("full", "memory")]
    assert all(r["num_workers"] > 0 for r in runs[::2]) and all(r["num_workers"] == 0 for r in runs[1::2])
    table = out.with_suffix(".md").read_text()
    for recipe in ("l1+mel", "full"):
        stream, memory = (r["audio_seconds_per_s"] for r in runs if r["losses"] == recipe)
        assert f"`tiny` `{recipe}` {stream / memory:.2f}×" in table


def test_train_on_a_folder_without_audio_is_one_line(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--device", "cpu", "--audio", str(tmp_path)])
    assert exit_info.value.code == 1
    assert capsys.readouterr().err.strip() == (
        f"codec-bench: error: {tmp_path}: no audio files (.wav, .flac, .ogg, .mp3) found")


def test_a_training_warning_is_printed_once_for_the_whole_run(tmp_path: Path) -> None:
    # Found from outside: "every clip of short is shorter than the 0.5 s crops" came once per recipe and pipeline
    # (four times), and sent the user to --segment_seconds, an option codec-bench train does not have.
    audio = tmp_path / "short"
    audio.mkdir()
    for i in range(2):
        soundfile.write(audio / f"clip{i}.wav", probe_signal(16000, 0.25, seed=i), 16000)
    done = subprocess.run(
        [str(Path(sys.executable).parent / "codec-bench"), "train", "--device", "cpu", "--preset", "tiny", "--steps",
         "1", "--batch-size", "2", "--pipeline", "streaming", "--pipeline", "memory", "--audio", str(audio),
         "--json", str(tmp_path / "train.json")],
        capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr
    warnings = [line for line in done.stderr.splitlines() if "shorter than the 0.5 s crops" in line]
    assert warnings == [(f"every clip of {audio} is shorter than the 0.5 s crops: each crop is a whole clip padded "
                         "with silence (shorter crops, codec-train's --segment_seconds, waste less)")], done.stderr

