"""`codec-bench curve`: a run continued with --init_from is drawn after its parent, at the parent's compute.

Two real `tiny` runs through `codec-train` (a parent of 20 steps validated every 10, and a child initialised from
the parent's step-10 checkpoint), then the benchmark through its CLI; bad run folders give one-line errors.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from sscodec.benchmarks.checkpoint_scores import score_checkpoint
from sscodec.benchmarks.cli import main as bench
from sscodec.benchmarks.training_curve import SCORED
from sscodec.codec.checkpoint import atomic_save, load_codec, read_checkpoint, save_compact_codec
from sscodec.codec.fingerprint import codec_fingerprint
from sscodec.common.audio import read_audio
from sscodec.train.cli import main as train
from tests.conftest import TELUGU_VAL, telugu_train_clips

BATCH, SEGMENT = 4, 0.5


def _train(data: Path, out: Path, steps: int, *extra: str) -> None:
    train(["--data_dir", str(data), "--val_dir", str(TELUGU_VAL), "--val_clips", "2", "--checkpoint_dir", str(out),
           "--preset", "tiny", "--device", "cpu", "--batch_size", str(BATCH), "--segment_seconds", str(SEGMENT),
           "--num_workers", "0", "--max_steps", str(steps), "--eval_every", "10", *extra])


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not TELUGU_VAL.is_dir():
        pytest.skip("shared speech data not found")
    root = tmp_path_factory.mktemp("curve")
    telugu_train_clips(root / "train", 8)
    _train(root / "train", root / "parent", 20)
    # The child starts from the parent's weights as a checkpoint saved at step 10 would hold them.
    start = root / "parent" / "at_step_10.pt"
    payload = read_checkpoint(root / "parent" / "latest.pt")
    atomic_save({**payload, "step": 10}, start)
    _train(root / "train", root / "child", 20, "--init_from", str(start), "--learning_rate", "1e-4")
    return root


def _curve(tmp: Path, *args: str) -> dict:
    bench(["curve", *args, "--json", str(tmp / "curve.json")])
    return json.loads((tmp / "curve.json").read_text())


def _rows(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_child_starts_where_its_parent_was_at_the_checkpoint(runs: Path, tmp_path: Path) -> None:
    data = _curve(tmp_path, str(runs / "parent"), str(runs / "child"), "--label", "first", "--label", "continued")
    parent, child = data["runs"]
    assert (parent["label"], child["label"]) == ("first", "continued")
    parent_rows = _rows(runs / "parent")
    at_10 = next(r for r in parent_rows if r["step"] == 10)
    # Audio trained by step 10: 10 steps of BATCH crops of SEGMENT seconds, one process.
    assert at_10["audio_seconds_trained"] == pytest.approx(10 * BATCH * SEGMENT)
    assert child["start_audio_hours"] == pytest.approx(10 * BATCH * SEGMENT / 3600)
    assert child["start_wall_hours"] == pytest.approx(at_10["elapsed_seconds"] / 3600)
    assert parent["start_audio_hours"] == 0 and parent["root"] == "random weights"
    assert child["root"] == "random weights"  # the chain's root, not the parent's checkpoint
    child_rows = _rows(runs / "child")
    assert [p["step"] for p in child["points"]] == [r["step"] for r in child_rows] == [0, 10, 20]
    for point, row in zip(child["points"], child_rows):
        assert point["audio_hours"] == pytest.approx((10 + row["step"]) * BATCH * SEGMENT / 3600)
        assert point["mel_distance"] == row["mel_distance"]
    assert child["best"]["mel_distance"] == min(r["mel_distance"] for r in child_rows)
    assert child["recipe"]["learning_rate"] == 1e-4 and child["device"] == "cpu"
    assert parent["slope_mel_per_audio_hour"] is None  # 3 validations: fewer than the slope needs
    assert (tmp_path / "curve.md").read_text().count("| first |") == 1
    assert (tmp_path / "curve.png").stat().st_size > 0


def test_slope_is_the_least_squares_line_through_the_last_validations(runs: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(runs / "parent", run)
    rows = _rows(run)
    extra = [{**rows[-1], "step": 20 + 10 * i, "audio_seconds_trained": (20 + 10 * i) * BATCH * SEGMENT,
              "mel_distance": 0.5 - 0.01 * i} for i in range(1, 4)]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows + extra))
    data = _curve(tmp_path, str(run))
    hours = [p["audio_hours"] for p in data["runs"][0]["points"][-4:]]
    mel = [p["mel_distance"] for p in data["runs"][0]["points"][-4:]]
    expected = np.polyfit(hours, mel, 1)[0]
    assert data["runs"][0]["slope_mel_per_audio_hour"] == pytest.approx(expected)


def test_a_run_choosing_by_pesq_has_its_pesq_curve_and_best_by_pesq(runs: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(runs / "parent", run)
    payload = read_checkpoint(run / "latest.pt")
    atomic_save({**payload, "train_config": {**payload["train_config"], "select_by": "pesq"}}, run / "latest.pt")
    rows = _rows(run)
    # PESQ peaks where the mel distance does not: best.pt (and the curve's best) follow PESQ.
    worst_mel = max(range(3), key=lambda i: rows[i]["mel_distance"])
    pesq = [1.5 if i == worst_mel else 1.2 + 0.1 * i for i in range(3)]
    (run / "metrics.jsonl").write_text("".join(json.dumps({**row, "pesq_wb": value, "pesq_wb_at": {}}) + "\n"
                                               for row, value in zip(rows, pesq, strict=True)))
    data = _curve(tmp_path, str(run), str(runs / "child"))
    ours, other = data["runs"]
    assert [p["pesq_wb"] for p in ours["points"]] == pesq and ours["recipe"]["select_by"] == "pesq"
    assert ours["best"]["step"] == rows[worst_mel]["step"] and ours["best"]["pesq_wb"] == 1.5
    assert other["best"]["mel_distance"] == min(p["mel_distance"] for p in other["points"])
    table = (tmp_path / "curve.md").read_text()
    ours_line = next(line for line in table.splitlines() if line.startswith("| run | `"))
    assert "best.pt by PESQ-WB" in ours_line
    assert f"{pesq[0]:.3f} → 1.500 ({rows[worst_mel]['step']}) → {pesq[-1]:.3f}" in ours_line
    assert "| – |" in next(line for line in table.splitlines() if line.startswith("| child |"))
    from sscodec.benchmarks.training_curve_report import figure

    assert len(figure(data).axes) == 4  # mel and PESQ rows, against audio-hours and wall-hours
    # With --val_codebooks best.pt is the best mean over the counts, and so is the curve's best: the step with the
    # highest PESQ at all codebooks but the lowest at 6 is not it.
    at_6 = [0.1 if i == worst_mel else 0.5 for i in range(3)]
    (run / "metrics.jsonl").write_text("".join(
        json.dumps({**row, "pesq_wb": value, "pesq_wb_at": {"6": low}}) + "\n"
        for row, value, low in zip(rows, pesq, at_6, strict=True)))
    means = [(value + low) / 2 for value, low in zip(pesq, at_6, strict=True)]
    mean_best = _curve(tmp_path, str(run))["runs"][0]["best"]
    assert mean_best["step"] == rows[means.index(max(means))]["step"] != rows[worst_mel]["step"]


def test_score_audio_scores_each_runs_best_checkpoint(runs: Path, tmp_path: Path) -> None:
    clips = tmp_path / "clips"
    clips.mkdir()
    for path in sorted(TELUGU_VAL.glob("*.flac"))[:2]:
        shutil.copy(path, clips / path.name)
    data = _curve(tmp_path, str(runs / "parent"), str(runs / "child"), "--score-audio", str(clips))
    assert set(data["scores"]) == {"parent", "child"}  # a root of random weights is not scored
    audio = [read_audio(path, 16000) for path in sorted(clips.iterdir())]
    direct = score_checkpoint(runs / "child" / "best.pt", audio).summary
    assert data["scores"]["child"] == {metric: direct[metric]["mean"] for metric in SCORED}
    assert 1.0 <= data["scores"]["child"]["pesq_wb"] <= 4.65 and 0 <= data["scores"]["child"]["stoi"] <= 1
    assert "| child |" in (tmp_path / "curve.md").read_text().split("Whole clips")[1]


@pytest.mark.parametrize("fault", ["not a run", "no metrics", "garbage row", "cycle"])
def test_a_bad_run_folder_is_one_line(runs: Path, tmp_path: Path, capsys: pytest.CaptureFixture, fault: str) -> None:
    run = tmp_path / "run"
    if fault == "not a run":
        run.mkdir()
    else:
        shutil.copytree(runs / "parent", run)
    if fault == "no metrics":
        (run / "metrics.jsonl").unlink()
    elif fault == "garbage row":
        (run / "metrics.jsonl").write_text('{"step": 0}\nnot json\n')
    elif fault == "cycle":
        payload = read_checkpoint(run / "latest.pt")
        atomic_save({**payload, "train_config": {**payload["train_config"], "init_from": str(run / "latest.pt")}},
                    run / "latest.pt")
    with pytest.raises(SystemExit) as exit_info:
        bench(["curve", str(run), "--json", str(tmp_path / "out.json")])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("codec-bench: error:") and "\n" not in err and "Traceback" not in err
    assert str(run) in err
    if fault == "no metrics":  # found from outside: "cannot read the run's metrics (No such file or directory)"
        assert "the run has no metrics.jsonl: it never validated (--no_validation, or no clips it could score), so it has no curve" in err


def test_a_root_whose_weights_were_replaced_is_named_by_its_fingerprint_and_not_scored(
    runs: Path, tmp_path: Path
) -> None:
    # Found from outside: runs started from "default" were placed after, and scored against, whatever the bundled
    # model was when the curve was drawn. Here the root is a model file outside any run, replaced after the run.
    model = tmp_path / "models" / "model.pt"
    model.parent.mkdir()
    save_compact_codec(load_codec(runs / "parent" / "latest.pt"), model)
    started_from = _fingerprint(model)
    _train(runs / "train", tmp_path / "tuned", 10, "--init_from", str(model), "--decoder_only", "--lr_decay", "0.99")
    assert read_checkpoint(tmp_path / "tuned" / "latest.pt")["train_config"]["init_fingerprint"] == started_from
    clips = tmp_path / "clips"
    clips.mkdir()
    shutil.copy(min(TELUGU_VAL.glob("*.flac")), clips)
    data = _curve(tmp_path, str(tmp_path / "tuned"), "--score-audio", str(clips))
    assert (data["runs"][0]["root"], data["runs"][0]["root_replaced"]) == (str(model), False)
    assert set(data["scores"]) == {str(model), "tuned"}
    # Found from outside: the recipe column did not say the run trained the decoder alone.
    assert "| tuned | `l1+mel`, decoder only, lr 0.0003 × 0.99/step, 4 × 0.5 s |" in (tmp_path / "curve.md").read_text()
    save_compact_codec(load_codec(runs / "child" / "latest.pt"), model)  # the same path, other weights
    assert _fingerprint(model) != started_from
    data = _curve(tmp_path, str(tmp_path / "tuned"), "--score-audio", str(clips))
    assert data["runs"][0]["root"] == f"{model} as it was then (fingerprint {started_from[:16]}; since replaced)"
    assert data["runs"][0]["root_replaced"] is True
    assert set(data["scores"]) == {"tuned"}
    assert f"`{model} as it was then (fingerprint {started_from[:16]}; since replaced)`" in (
        tmp_path / "curve.md").read_text()


def _fingerprint(path: Path) -> str:
    model = load_codec(path)
    return codec_fingerprint(model.config, model.state_dict())


def test_a_run_given_twice_is_a_usage_error(runs: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    # Found from outside: the same run twice gave the same row twice.
    with pytest.raises(SystemExit) as exit_info:
        bench(["curve", str(runs / "parent"), str(runs / "parent") + "/", "--json", str(tmp_path / "out.json")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert f"{runs / 'parent'} given more than once" in err and "\n" not in err
    assert not (tmp_path / "out.json").exists()
    # A run folder that does not exist is a usage mistake too (it was exit 1).
    with pytest.raises(SystemExit) as exit_info:
        bench(["curve", str(tmp_path / "nowhere"), "--json", str(tmp_path / "out.json")])
    assert exit_info.value.code == 2 and "nowhere" in capsys.readouterr().err
