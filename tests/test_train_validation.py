"""Validation by default: a user's exact command (no --val_dir) validates on held-out files and writes
metrics.jsonl; --val_dir wins; --no_validation turns it off."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sscodec.train.config import TrainConfig
from sscodec.train.data import hold_out, rank_share
from sscodec.train.manifest import load_manifest
from sscodec.train.trainer import Trainer
from tests.conftest import TELUGU_VAL, mistaken_exclude_lists, telugu_train_clips

CODEC_TRAIN = Path(sys.executable).with_name("codec-train")
SEED_KEYS = {"step", "epoch", "loss", "recon", "vq", "snr_db", "amplitude_ratio", "mel_distance"}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Twelve Telugu clips: enough for a held-out file (folders of 10 files or more)."""
    return telugu_train_clips(tmp_path_factory.mktemp("corpus"), 12)


def _codec_train(*args: str) -> subprocess.CompletedProcess:
    # W&B is installed but not logged in here: disabled mode keeps the run offline, as a user without an
    # account would run it after `wandb disabled`.
    env = {**os.environ, "WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1"}
    return subprocess.run([str(CODEC_TRAIN), *args], capture_output=True, text=True, timeout=600, env=env,
                          check=False)


def test_the_seed_users_exact_command_validates_on_held_out_files(corpus: Path, tmp_path: Path) -> None:
    checkpoints = tmp_path / "C"
    result = _codec_train("--data_dir", str(corpus), "--checkpoint_dir", str(checkpoints), "--batch_size", "16",
                          "--num_epochs", "100", "--learning_rate", "3e-4", "--use_wandb", "--experiment_name",
                          "NAME", "--max_steps", "2")
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [json.loads(line) for line in (checkpoints / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [0, 2]
    for row in rows:
        assert SEED_KEYS <= row.keys()
        assert all(isinstance(row[k], int | float) and row[k] == row[k] for k in SEED_KEYS)  # numbers, not NaN
    # Printed as well: one summary line per validation with the monitored numbers.
    printed = [line for line in result.stderr.splitlines() if " SNR " in line and "amplitude" in line]
    assert len(printed) == 2 and "step 2 epoch" in printed[-1] and " mel " in printed[-1]
    assert "1 file (2% of each folder of 10 or more, seed 0) is held out and never trained on" in result.stderr
    held = (checkpoints / "validation_files.txt").read_text().splitlines()
    assert len(held) == 1 and Path(held[0]).parent == corpus
    summary = next(line for line in result.stderr.splitlines() if line.startswith(f"  {corpus}:"))
    assert "11 clips" in summary and "1 held out for validation" in summary
    assert result.stdout.startswith("done: 2 steps, best validation mel distance ")
    assert "inf" not in result.stdout


def test_val_dir_wins_over_the_held_out_share(corpus: Path, tmp_path: Path) -> None:
    if not TELUGU_VAL.is_dir():
        pytest.skip("shared validation data not found")
    result = _codec_train("--data_dir", str(corpus), "--val_dir", str(TELUGU_VAL), "--val_clips", "2",
                          "--checkpoint_dir", str(tmp_path / "C"), "--preset", "tiny", "--batch_size", "2",
                          "--max_steps", "1")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "held out" not in result.stderr and not (tmp_path / "C" / "validation_files.txt").exists()
    assert "12 clips" in result.stderr
    assert len((tmp_path / "C" / "metrics.jsonl").read_text().splitlines()) == 2


def test_no_validation_trains_on_every_file_and_writes_no_metrics(corpus: Path, tmp_path: Path) -> None:
    result = _codec_train("--data_dir", str(corpus), "--no_validation", "--checkpoint_dir", str(tmp_path / "C"),
                          "--preset", "tiny", "--batch_size", "2", "--max_steps", "1")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "validation: off (--no_validation)" in result.stderr and "12 clips" in result.stderr
    assert not (tmp_path / "C" / "metrics.jsonl").exists() and (tmp_path / "C" / "best.pt").is_file()


def test_no_validation_with_val_dir_is_a_usage_error(corpus: Path, tmp_path: Path) -> None:
    result = _codec_train("--data_dir", str(corpus), "--no_validation", "--val_dir", str(corpus),
                          "--checkpoint_dir", str(tmp_path / "C"))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "codec-train: error: --no_validation and --val_dir contradict each other; give one (see codec-train --help)"]


def test_held_out_files_are_seeded_whole_files_and_ranks_split_the_rest(corpus: Path, tmp_path: Path) -> None:
    entries = load_manifest(corpus, tmp_path, min_seconds=0.1, progress=False).entries * 10  # 120 "files"
    entries = [dataclasses.replace(e, path=Path(f"{e.path}.{i}")) for i, e in enumerate(entries)]
    train, held = hold_out(entries, seed=0, folder_index=0)
    assert len(held) == 2 and len(train) == 118  # 2% of 120
    assert not {e.path for e in train} & {e.path for e in held}
    assert hold_out(entries, seed=0, folder_index=0) == (train, held)
    assert hold_out(entries, seed=1, folder_index=0)[1] != held
    shares = [rank_share(train, seed=0, folder_index=0, rank=r, world_size=3) for r in range(3)]
    paths = [{e.path for e in share} for share in shares]
    assert sum(map(len, paths)) == len(train) and set.union(*paths) == {e.path for e in train}
    assert not (paths[0] & paths[1] or paths[0] & paths[2] or paths[1] & paths[2])


def test_exclude_leaves_the_listed_files_out_of_training_and_validation(corpus: Path, tmp_path: Path) -> None:
    files = sorted(corpus.glob("*.flac"))
    listing = tmp_path / "lists" / "heldout.txt"
    listing.parent.mkdir()
    # A relative path (read from the list's folder), an absolute one, a comment and a blank line.
    listing.write_text(f"# held-out speakers\n{os.path.relpath(files[0], listing.parent)}\n\n{files[1]}  # abs\n")
    checkpoints = tmp_path / "C"
    result = _codec_train("--data_dir", str(corpus), "--exclude", str(listing), "--checkpoint_dir",
                          str(checkpoints), "--preset", "tiny", "--batch_size", "2", "--max_steps", "1")
    assert result.returncode == 0, result.stderr[-3000:]
    summary = next(line for line in result.stderr.splitlines() if line.startswith(f"  {corpus}:"))
    assert "9 clips" in summary and "1 held out for validation" in summary and "2 excluded" in summary
    held = (checkpoints / "validation_files.txt").read_text().splitlines()
    assert len(held) == 1 and Path(held[0]) not in files[:2]
    trained = {e.path for e in _trainer(corpus, tmp_path / "D", exclude=str(listing)).dataset.plan.corpora[0].entries}
    assert len(trained) == 9 and not trained & set(files[:2]) and Path(held[0]) not in trained


def test_exclude_of_every_file_or_of_none_says_so(corpus: Path, tmp_path: Path) -> None:
    everything = tmp_path / "all.txt"
    everything.write_text("".join(f"{path}\n" for path in corpus.glob("*.flac")))
    result = _codec_train("--data_dir", str(corpus), "--exclude", str(everything), "--checkpoint_dir",
                          str(tmp_path / "C"), "--preset", "tiny", "--max_steps", "1")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        f"codec-train: error: {corpus}: every file is in the --exclude list {everything}")
    binary = tmp_path / "list.bin"
    binary.write_bytes(b"\xff\xfe\x00 not text")
    result = _codec_train("--data_dir", str(corpus), "--exclude", str(binary), "--checkpoint_dir",
                          str(tmp_path / "C"), "--preset", "tiny", "--max_steps", "1")
    assert result.returncode == 1 and len(result.stderr.strip().splitlines()) == 1
    assert result.stderr.startswith(f"codec-train: error: {binary}: cannot read the file list (")


def test_an_exclude_list_that_looks_mistaken_is_a_warning(corpus: Path, tmp_path: Path,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    # Found from outside: an empty list and a typo among good paths went unremarked.
    other = min(TELUGU_VAL.glob("*.flac")) if TELUGU_VAL.is_dir() else pytest.skip("no telugu/val")
    lists = mistaken_exclude_lists(tmp_path, min(corpus.glob("*.flac")), other)
    for index, (listing, warning) in enumerate(lists.items()):
        caplog.clear()
        trainer = _trainer(corpus, tmp_path / f"C{index}", exclude=str(listing))
        assert warning in caplog.messages
        assert len(trainer.dataset.plan.corpora[0].entries) == 11 - (listing.name == "typo.txt")  # one held out


def test_validating_on_a_training_folder_is_a_warning(corpus: Path, tmp_path: Path,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO):
        _trainer(corpus, tmp_path / "C", val_dir=str(corpus), val_clips=2)
    assert f"--val_dir {corpus} is also a --data_dir: validation scores speech the model trains on" in caplog.messages
    assert "validation: 2 clips of " in caplog.text
    # Found from outside: a --val_dir inside a --data_dir (read recursively) trained on its clips without a word.
    data = telugu_train_clips(tmp_path / "data", 10)
    inside = telugu_train_clips(data / "val", 2)
    caplog.clear()
    _trainer(data, tmp_path / "D", val_dir=str(inside), val_clips=2)
    assert (f"--val_dir {inside} is inside the --data_dir {data}: validation scores speech the model trains on "
            "(move it out, or leave its files out with --exclude)") in caplog.messages


def test_clips_all_shorter_than_the_crops_are_a_warning(corpus: Path, tmp_path: Path,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    _trainer(corpus, tmp_path / "C", segment_seconds=60.0)
    assert (f"every clip of {corpus} is shorter than the 60 s crops: each crop is a whole clip padded with silence "
            "(shorter crops, codec-train's --segment_seconds, waste less)") in caplog.messages
    caplog.clear()
    _trainer(corpus, tmp_path / "D", segment_seconds=0.5)
    assert not [m for m in caplog.messages if "shorter than" in m]


def _trainer(corpus: Path, checkpoints: Path, **options: object) -> Trainer:
    return Trainer(TrainConfig(data_dirs=(str(corpus),), checkpoint_dir=str(checkpoints), preset="tiny",
                               device="cpu", num_workers=0, **options))


def _validated_tiny_run(corpus: Path, checkpoints: Path, *args: str) -> tuple[subprocess.CompletedProcess, list]:
    """Two steps of `tiny` through codec-train, validated at steps 0, 1 and 2: the process and metrics.jsonl."""
    result = _codec_train("--data_dir", str(corpus), "--checkpoint_dir", str(checkpoints), "--preset", "tiny",
                          "--batch_size", "2", "--segment_seconds", "0.2", "--max_steps", "2", "--eval_every", "1",
                          *args)
    assert result.returncode == 0, result.stderr[-3000:]
    return result, [json.loads(line) for line in (checkpoints / "metrics.jsonl").read_text().splitlines()]


def test_val_codebooks_scores_each_rate_and_picks_best_pt_on_their_mean(corpus: Path, tmp_path: Path) -> None:
    if not TELUGU_VAL.is_dir():
        pytest.skip("shared validation data not found")
    import torch

    from sscodec.codec.checkpoint import load_codec
    from sscodec.train.data import load_validation
    from sscodec.train.losses import MultiScaleMelLoss

    checkpoints = tmp_path / "C"
    # 6 given twice counts once (found from outside: it weighed twice in best.pt's mean) and the order is sorted.
    result, rows = _validated_tiny_run(corpus, checkpoints, "--val_dir", str(TELUGU_VAL), "--val_clips", "1",
                                       "--val_codebooks", "6,1,6")
    assert all(row["mel_distance_at"].keys() == row["snr_db_at"].keys() == {"1", "6"} for row in rows)
    means = [(row["mel_distance"] + sum(row["mel_distance_at"].values())) / 3 for row in rows]
    best = torch.load(checkpoints / "best.pt", weights_only=True)
    assert best["best_selection"] == pytest.approx(min(means), rel=1e-9) and best["select_by"] == "mel"
    assert best["step"] == rows[means.index(min(means))]["step"]
    assert f"best validation mel distance {min(means):.4f} (mean over all codebooks and 1, 6)" in result.stdout
    printed = [line for line in result.stderr.splitlines() if " mel@1cb " in line and " SNR@6cb " in line]
    assert len(printed) == 3
    # The logged score at one codebook is the model's own, recomputed here from the last checkpoint.
    model = load_codec(checkpoints / "latest.pt").eval()
    audio = load_validation(TELUGU_VAL, model.config.sample_rate, 1)[0][None]
    with torch.no_grad():
        decoded = model(audio, n_codebooks=1).audio
    mel = float(MultiScaleMelLoss(model.config.sample_rate).distance(decoded, audio).mean())
    assert rows[-1]["mel_distance_at"]["1"] == pytest.approx(mel, rel=1e-4)


@pytest.mark.parametrize(("counts", "code", "message"), [
    ("0", 2, "Invalid value for --val_codebooks: '0': codebook counts start at 1"),
    ("2,x", 2, "Invalid value for --val_codebooks: '2,x': expected A-B or a comma-separated list"),
    ("12", 2, "--val_codebooks: this model has 12 codebooks, and validation always uses all of them"),
])
def test_val_codebooks_out_of_range_is_a_one_line_error(corpus: Path, tmp_path: Path, counts: str, code: int,
                                                        message: str) -> None:
    result = _codec_train("--data_dir", str(corpus), "--val_codebooks", counts, "--checkpoint_dir",
                          str(tmp_path / "C"), "--preset", "tiny", "--max_steps", "1")
    assert result.returncode == code
    assert len(result.stderr.strip().splitlines()) == 1 and message in result.stderr, result.stderr
    assert not (tmp_path / "C").exists()


def test_select_by_pesq_keeps_the_best_pt_a_listener_would(corpus: Path, tmp_path: Path) -> None:
    if not TELUGU_VAL.is_dir():
        pytest.skip("shared validation data not found")
    import numpy as np
    import soundfile
    import torch

    from sscodec.codec.checkpoint import load_codec
    from sscodec.train.data import load_validation
    from sscodec.train.perceptual import pesq_wb

    val = tmp_path / "val"  # 3 s of one held-out clip: PESQ needs an utterance, and validation stays cheap
    val.mkdir()
    clip = min(TELUGU_VAL.glob("*.flac"))
    audio, rate = soundfile.read(clip, dtype="float32")
    soundfile.write(val / clip.name, audio[: 3 * rate], rate)
    checkpoints = tmp_path / "C"
    result, rows = _validated_tiny_run(corpus, checkpoints, "--val_dir", str(val), "--val_codebooks", "1",
                                       "--select_by", "pesq")
    assert all(set(row["pesq_wb_at"]) == {"1"} and np.isfinite(row["pesq_wb"]) for row in rows)
    means = [(row["pesq_wb"] + row["pesq_wb_at"]["1"]) / 2 for row in rows]
    best = torch.load(checkpoints / "best.pt", weights_only=True)
    assert best["select_by"] == "pesq" and best["best_selection"] == pytest.approx(max(means), rel=1e-9)
    assert best["step"] == rows[means.index(max(means))]["step"]
    assert f"best validation PESQ-WB {max(means):.4f} (mean over all codebooks and 1)" in result.stdout
    assert len([line for line in result.stderr.splitlines() if " PESQ-WB@1cb " in line]) == 3
    # The logged PESQ is the model's own, recomputed here from the last checkpoint.
    model = load_codec(checkpoints / "latest.pt").eval()
    reference = load_validation(val, model.config.sample_rate)[0][None]
    with torch.no_grad():
        decoded = model(reference).audio
    assert rows[-1]["pesq_wb"] == pytest.approx(pesq_wb(decoded[0].numpy(), reference[0].numpy(), 16_000), abs=1e-3)


def test_select_by_pesq_on_clips_it_cannot_score_keeps_the_latest_model_as_best_pt(corpus: Path,
                                                                                   tmp_path: Path) -> None:
    """Found from outside: a validation clip PESQ-WB cannot score (there, a silent one; here, 0.2 s of speech, too
    short to find an utterance in) left it NaN at every validation, so no best.pt was written, and the last line
    said "no validation (best.pt is the latest model)" and advised exporting it."""
    if not TELUGU_VAL.is_dir():
        pytest.skip("shared validation data not found")
    import numpy as np
    import soundfile
    import torch

    val = tmp_path / "val"
    val.mkdir()
    clip = min(TELUGU_VAL.glob("*.flac"))
    audio, rate = soundfile.read(clip, dtype="float32")
    soundfile.write(val / "short.wav", audio[rate : rate + rate // 5], rate)
    checkpoints = tmp_path / "C"
    result, rows = _validated_tiny_run(corpus, checkpoints, "--val_dir", str(val), "--select_by", "pesq")
    assert len(rows) == 3 and not any(np.isfinite(row["pesq_wb"]) for row in rows)
    best = torch.load(checkpoints / "best.pt", weights_only=True)
    assert best["step"] == 2  # as without validation: the latest model is the best known
    assert ("done: 2 steps, validation never gave a finite PESQ-WB (best.pt is the latest model),"
            in result.stdout), result.stdout


def test_validation_clips_that_are_all_silent_turn_validation_off_with_a_warning(corpus: Path,
                                                                                tmp_path: Path) -> None:
    """Found from outside: a silent held-out file logged SNR nan at every validation and chose best.pt by the mel
    distance of silence, without a warning."""
    import numpy as np
    import soundfile

    val = tmp_path / "val"
    val.mkdir()
    soundfile.write(val / "silent.wav", np.zeros(16000, np.float32), 16000)
    checkpoints = tmp_path / "C"
    result = _codec_train("--data_dir", str(corpus), "--checkpoint_dir", str(checkpoints), "--preset", "tiny",
                          "--batch_size", "2", "--segment_seconds", "0.2", "--max_steps", "1", "--val_dir", str(val))
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"validation: off: every clip of {val} is silent (under -80 dBFS), so there is nothing to score" in (
        result.stderr), result.stderr
    assert not (checkpoints / "metrics.jsonl").exists() and (checkpoints / "best.pt").is_file()
    assert "done: 1 step, no validation (best.pt is the latest model)," in result.stdout, result.stdout


def test_select_by_pesq_is_refused_without_validation_or_the_pesq_package(
    corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = _codec_train("--data_dir", str(corpus), "--checkpoint_dir", str(tmp_path / "C"), "--no_validation",
                          "--select_by", "pesq")
    assert result.returncode == 2 and "--select_by has no effect with --no_validation" in result.stderr
    from sscodec.train import trainer

    monkeypatch.setattr(trainer, "pesq_available", lambda: False)
    with pytest.raises(trainer.TrainingUsageError, match=r"--select_by pesq needs the pesq package \(pip install"):
        _trainer(corpus, tmp_path / "D", select_by="pesq")
    assert not (tmp_path / "D").exists()


def test_a_silent_validation_clip_leaves_the_level_metrics_as_the_speech_gives_them(corpus: Path,
                                                                                       tmp_path: Path) -> None:
    # Found from outside: one digitally silent clip in --val_dir made the mean amplitude ratio 184 (its own ratio
    # against the silence guard was 552), which hid the "output amplitude under 50%" sign. A silent clip is left
    # out of SNR, SI-SDR and amplitude ratio, as PESQ-WB leaves it out; the rest of the row still counts it.
    import numpy as np
    import soundfile

    speech, with_silence = tmp_path / "speech", tmp_path / "with_silence"
    for folder in (speech, with_silence):
        folder.mkdir()
        for clip in sorted(corpus.glob("*.flac"))[:2]:
            (folder / clip.name).write_bytes(clip.read_bytes())
    soundfile.write(with_silence / "zz_silence.wav", np.zeros(32000, dtype=np.float32), 16000)
    rows = {}
    for folder in (speech, with_silence):
        result = _codec_train("--data_dir", str(corpus), "--val_dir", str(folder), "--checkpoint_dir",
                              str(tmp_path / folder.name / "C"), "--preset", "tiny", "--batch_size", "2",
                              "--max_steps", "1", "--seed", "3")
        assert result.returncode == 0, result.stderr[-3000:]
        rows[folder.name] = json.loads((tmp_path / folder.name / "C" / "metrics.jsonl").read_text().splitlines()[-1])
    for key in ("snr_db", "si_sdr_db", "amplitude_ratio"):
        assert rows["with_silence"][key] == pytest.approx(rows["speech"][key], rel=1e-5), key
    assert rows["with_silence"]["mel_distance"] != pytest.approx(rows["speech"]["mel_distance"], rel=1e-5)
