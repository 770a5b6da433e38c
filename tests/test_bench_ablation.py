"""The loss ablation end to end on tiny: train two recipes through codec-train, score their checkpoints, summarize."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import soundfile

from sscodec.benchmarks.loss_ablation import main
from sscodec.export.probe import probe_signal

STEPS = 4
ABLATION_RECIPES = ["l1", "l1x10mel"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two recipes trained for a few steps on speech-like clips, scored by `run` itself."""
    root = tmp_path_factory.mktemp("ablation")
    for folder, seconds in (("train", (2.0, 1.5, 1.7)), ("val", (1.23, 0.91))):
        (root / folder).mkdir()
        for i, length in enumerate(seconds):
            soundfile.write(root / folder / f"{folder}{i}.wav", probe_signal(16000, length, seed=i), 16000)
    main(["run", "--data-dir", str(root / "train"), "--val-dir", str(root / "val"), "--out", str(root / "runs"),
          "--recipes", *ABLATION_RECIPES, "--max-steps", str(STEPS), "--eval-every", "2", "--batch-size", "2",
          "--segment-seconds", "0.2"])
    return root / "runs"


def test_run_scores_each_last_checkpoint_with_pesq_and_stoi(runs: Path) -> None:
    setup = json.loads((runs / "setup.json").read_text())
    assert setup["settings"]["max_steps"] == STEPS and set(setup["wall_seconds"]) == set(ABLATION_RECIPES)
    for name in ABLATION_RECIPES:
        rows = [json.loads(line) for line in (runs / f"{name}.metrics.jsonl").read_text().splitlines()]
        scores = json.loads((runs / f"{name}.scores.json").read_text())
        assert scores["checkpoint"] == str(runs / name / "latest.pt") and scores["kind"] == "latest"
        assert scores["clips"] == 2 and scores["codebooks"] == 12 and scores["kbps"] == pytest.approx(6.0)
        # PESQ-WB lies in 1.04..4.64; STOI is a mean correlation, slightly negative for an untrained model.
        assert scores["summary"]["pesq_wb"]["n"] == scores["summary"]["stoi"]["n"] == 2
        assert 1.0 <= scores["summary"]["pesq_wb"]["mean"] <= 4.7
        assert -1.0 <= scores["summary"]["stoi"]["mean"] <= 1.0
        # latest.pt holds the last step, and scoring it whole-clip (weight norm folded) reproduces that step's
        # own validation numbers.
        assert scores["step"] == rows[-1]["step"] == STEPS
        for key in ("snr_db", "si_sdr_db", "mel_distance", "amplitude_ratio"):
            assert scores["summary"][key]["mean"] == pytest.approx(rows[-1][key], rel=1e-3, abs=1e-3), key


def test_summarize_puts_the_scores_in_the_table(runs: Path, tmp_path: Path) -> None:
    main(["summarize", "--set", f"tiny smoke={runs}", "--results-dir", str(tmp_path), "--name", "ablation"])
    table = (tmp_path / "ablation.md").read_text()
    assert "| run | step | PESQ-WB | STOI |" in table
    assert "L1 + VQ (the plain recipe)" in table and "L1 ×10 + mel (weights 10, 1)" in table
    (entry,) = json.loads((tmp_path / "ablation.json").read_text())
    assert set(entry["scores"]) == set(ABLATION_RECIPES)
    assert (tmp_path / "ablation.png").stat().st_size > 1000


def test_score_without_checkpoints_is_a_clear_error(runs: Path, tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="no <run>/best.pt or <run>.best.pt"):
        main(["score", "--runs", str(runs), "--checkpoints", str(tmp_path), "--kind", "best"])


@pytest.mark.parametrize("args, message", [
    (["--val-dir", "{tmp}/missing"], "loss_ablation: {tmp}/missing: no such data folder"),
    (["--checkpoints", "{tmp}/bad"], "loss_ablation: {tmp}/bad/l1.latest.pt: "),
])
def test_score_reports_user_mistakes_in_one_line(runs: Path, tmp_path: Path, args: list[str], message: str) -> None:
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "l1.latest.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(SystemExit) as exit_info:
        main(["score", "--runs", str(runs), *(a.format(tmp=tmp_path) for a in args)])
    assert str(exit_info.value).startswith(message.format(tmp=tmp_path))
    assert "\n" not in str(exit_info.value)


def test_score_best_reads_each_runs_best_checkpoint(runs: Path, tmp_path: Path) -> None:
    copy = shutil.copytree(runs, tmp_path / "runs")  # the other tests read the module's scores
    main(["score", "--runs", str(copy), "--kind", "best", "--val-dir", str(runs.parent / "val")])
    for name in ABLATION_RECIPES:
        rows = [json.loads(line) for line in (copy / f"{name}.metrics.jsonl").read_text().splitlines()]
        scores = json.loads((copy / f"{name}.scores.json").read_text())
        best = min((r for r in rows if r["step"] > 0), key=lambda r: r["mel_distance"])
        assert scores["kind"] == "best" and scores["step"] == best["step"]
        assert scores["summary"]["mel_distance"]["mean"] == pytest.approx(best["mel_distance"], rel=1e-3)
