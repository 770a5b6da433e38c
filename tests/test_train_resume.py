"""Kill-and-resume: stopping after a checkpoint and resuming ends on exactly the uninterrupted run's state (with two
data workers reading crops from disk)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from sscodec.common.cli import interrupts_deferred
from sscodec.train.cli import main
from sscodec.train.config import TrainConfig
from sscodec.train.trainer import Trainer
from tests.conftest import TELUGU_TRAIN, TELUGU_VAL, telugu_train_clips

TINY = ["--preset", "tiny", "--device", "cpu", "--batch_size", "2", "--segment_seconds", "0.2",
        "--learning_rate", "1e-3", "--seed", "3", "--eval_every", "3", "--num_workers", "2"]
GAN = ["--losses", "full", "--adversarial_start", "2"]
VAL_CLIP = "132_1364file-idodHXT5pppTo.flac"  # 1.35 s: validation stays cheap


def _equal(a: object, b: object) -> bool:
    """Exact equality of nested checkpoint contents (tensors bit for bit)."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return isinstance(b, list | tuple) and len(a) == len(b) and all(map(_equal, a, b))
    return a == b


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six training clips in data/ and one short validation clip in val/."""
    if not TELUGU_VAL.is_dir():
        pytest.skip("shared speech data not found")
    root = tmp_path_factory.mktemp("clips")
    telugu_train_clips(root / "data", 6)
    (root / "val").mkdir()
    (root / "val" / VAL_CLIP).symlink_to(TELUGU_VAL / VAL_CLIP)
    return root


def _train(clips: Path, checkpoint_dir: Path, *extra: str) -> dict:
    main(["--data_dir", str(clips / "data"), "--val_dir", str(clips / "val"),
          "--checkpoint_dir", str(checkpoint_dir), *TINY, *extra])
    return torch.load(checkpoint_dir / "latest.pt", weights_only=True)


def test_flags_spelled_with_hyphens_train_the_same_run(data: Path, tmp_path: Path) -> None:
    # Found from outside: every other command spells its flags with "-", and `codec-train --batch-size` was "no
    # such option".
    underscores = _train(data, tmp_path / "underscores", "--max_steps", "2")
    hyphens = [flag.replace("_", "-") if flag.startswith("--") else flag for flag in TINY]
    main(["--data-dir", str(data / "data"), "--val-dir", str(data / "val"), "--checkpoint-dir",
          str(tmp_path / "hyphens"), *hyphens, "--max-steps", "2"])
    saved = torch.load(tmp_path / "hyphens" / "latest.pt", weights_only=True)
    assert saved["train_config"]["batch_size"] == 2 and saved["train_config"]["num_workers"] == 2
    assert _equal(saved["model"], underscores["model"])


def test_resumed_run_matches_an_uninterrupted_one_exactly(data: Path, tmp_path: Path) -> None:
    # `full` with the GAN starting mid-run covers the discriminator, both optimisers and both schedulers.
    whole = _train(data, tmp_path / "whole", *GAN, "--max_steps", "6")
    first = _train(data, tmp_path / "split", *GAN, "--max_steps", "3")
    assert first["step"] == 3
    resumed = _train(data, tmp_path / "split", *GAN, "--max_steps", "6", "--resume")
    assert resumed["step"] == whole["step"] == 6
    assert not _equal(first["model"], whole["model"])  # it did train after the checkpoint
    for key in ("model", "optimizer_g", "scheduler_g", "discriminator", "optimizer_d", "scheduler_d", "rng"):
        assert _equal(resumed[key], whole[key]), key
    assert resumed["best_selection"] == whole["best_selection"]
    rows = (tmp_path / "split" / "metrics.jsonl").read_text().splitlines()
    assert len(rows) == 3  # steps 0 and 3 from the first run, 6 from the resumed one


def test_a_run_saved_before_select_by_resumes_choosing_by_mel(data: Path, tmp_path: Path) -> None:
    first = _train(data, tmp_path / "old", "--losses", "l1", "--max_steps", "2", "--eval_every", "1")
    # latest.pt as runs saved it before --select_by: the best mel distance under its own name, no select_by
    first["best_mel_distance"] = first.pop("best_selection")
    del first["train_config"]["select_by"]
    torch.save(first, tmp_path / "old" / "latest.pt")
    (tmp_path / "old" / "best.pt").unlink()
    resumed = _train(data, tmp_path / "old", "--max_steps", "4", "--resume")
    assert resumed["step"] == 4 and resumed["train_config"]["select_by"] == "mel"
    rows = [json.loads(line) for line in (tmp_path / "old" / "metrics.jsonl").read_text().splitlines()]
    assert resumed["best_selection"] == min(row["mel_distance"] for row in rows)
    # best.pt comes back only when a resumed validation beats the mel distance the old run had kept
    best_before = min(row["mel_distance"] for row in rows[:3])
    assert (tmp_path / "old" / "best.pt").exists() == (min(row["mel_distance"] for row in rows[3:]) < best_before)


def test_init_from_starts_from_the_weights_but_not_the_step(data: Path, tmp_path: Path) -> None:
    source = _train(data, tmp_path / "source", "--losses", "l1", "--max_steps", "3")
    started = _train(data, tmp_path / "fine_tune", "--losses", "l1", "--max_steps", "1", "--eval_every", "1",
                     "--init_from", str(tmp_path / "source" / "latest.pt"))
    assert started["step"] == 1
    first_row = (tmp_path / "fine_tune" / "metrics.jsonl").read_text().splitlines()[0]
    source_row = (tmp_path / "source" / "metrics.jsonl").read_text().splitlines()[-1]
    # Validation at step 0 of the new run scores the source's final weights.
    assert json.loads(first_row)["mel_distance"] == pytest.approx(json.loads(source_row)["mel_distance"], rel=1e-6)
    assert source["step"] == 3



def test_decoder_only_trains_the_decoder_on_the_source_models_codes(data: Path, tmp_path: Path) -> None:
    source = _train(data, tmp_path / "source", "--losses", "l1", "--max_steps", "2")["model"]
    tuned = _train(data, tmp_path / "decoder", "--max_steps", "3", "--decoder_only",
                   "--init_from", str(tmp_path / "source" / "latest.pt"))
    resumed = _train(data, tmp_path / "decoder", "--max_steps", "4", "--resume")
    assert resumed["train_config"]["decoder_only"] is True
    for model in (tuned["model"], resumed["model"]):
        # Encoder weights and the codebooks' EMA state (codebook, sums, counts) bit for bit: the same codes.
        frozen = [key for key in source if not key.startswith("decoder.")]
        assert any(key.startswith("encoder.") for key in frozen) and any("codebook" in key for key in frozen)
        assert all(torch.equal(source[key], model[key]) for key in frozen)
        assert not _equal({k: v for k, v in source.items() if k.startswith("decoder.")},
                          {k: v for k, v in model.items() if k.startswith("decoder.")})


def test_lr_decay_multiplies_the_learning_rate_every_step(data: Path, tmp_path: Path) -> None:
    _train(data, tmp_path / "decay", "--losses", "l1", "--max_steps", "6", "--lr_decay", "0.5")
    rows = [json.loads(line) for line in (tmp_path / "decay" / "metrics.jsonl").read_text().splitlines()]
    assert [(r["step"], r["learning_rate"]) for r in rows] == [
        (0, pytest.approx(1e-3)), (3, pytest.approx(1e-3 / 8)), (6, pytest.approx(1e-3 / 64))]


def test_cpu_training_leaves_the_data_workers_their_cores(data: Path, tmp_path: Path) -> None:
    # torch's default (a thread per core) on top of the data workers made 2-core VM steps 4-5x slower while
    # another process was busy (README, "Threads on the CPU").
    cores = len(os.sched_getaffinity(0))
    before = torch.get_num_threads()
    try:
        _train(data, tmp_path / "default", "--losses", "l1", "--max_steps", "1")  # 2 data workers (TINY)
        assert torch.get_num_threads() == max(1, cores - 2)
        _train(data, tmp_path / "given", "--losses", "l1", "--max_steps", "1", "--threads", "3")
        assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(before)


def test_a_resumed_run_keeps_the_weights_it_was_initialised_from(data: Path, tmp_path: Path) -> None:
    # `codec-bench curve` places a run after its --init_from parent; resuming used to drop that link.
    _train(data, tmp_path / "source", "--losses", "l1", "--max_steps", "1")
    source = str(tmp_path / "source" / "latest.pt")
    started = _train(data, tmp_path / "fine_tune", "--losses", "l1", "--max_steps", "1", "--init_from", source)
    resumed = _train(data, tmp_path / "fine_tune", "--losses", "l1", "--max_steps", "2", "--resume")
    assert started["train_config"]["init_from"] == resumed["train_config"]["init_from"] == source
    assert resumed["step"] == 2


@pytest.mark.usefixtures("python_sigint")
def test_an_interrupt_inside_a_step_saves_after_it_and_resumes_exactly(data: Path, tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    # Found from outside: Ctrl-C or SIGTERM landing mid-step saved half a step (weights moved, step not counted),
    # so the resumed run drifted from an uninterrupted one.
    whole = _train(data, tmp_path / "whole", "--losses", "l1", "--max_steps", "8")
    real_step = Trainer.train_step
    calls = iter(range(100))

    def step_interrupted_on_the_third_call(self: Trainer) -> dict:
        if next(calls) == 2:
            os.kill(os.getpid(), signal.SIGINT)  # arrives before the step's work, as a user's Ctrl-C would
        return real_step(self)

    monkeypatch.setattr(Trainer, "train_step", step_interrupted_on_the_third_call)
    with pytest.raises(SystemExit) as stopped:
        _train(data, tmp_path / "split", "--losses", "l1", "--max_steps", "8")
    assert stopped.value.code == 130
    assert torch.load(tmp_path / "split" / "latest.pt", weights_only=True)["step"] == 3  # the step it interrupted
    monkeypatch.setattr(Trainer, "train_step", real_step)
    # Resumed as the message says, with nothing else: found from outside, a resume that left out --max_steps and
    # --eval_every trained to the default 100 epochs and validated every 500 steps, not as the run planned.
    main(["--checkpoint_dir", str(tmp_path / "split"), "--resume", "--device", "cpu", "--num_workers", "2"])
    resumed = torch.load(tmp_path / "split" / "latest.pt", weights_only=True)
    assert resumed["step"] == 8
    for key in ("model", "optimizer_g", "scheduler_g", "rng"):
        assert _equal(resumed[key], whole[key]), key
    rows = [json.loads(line) for line in (tmp_path / "split" / "metrics.jsonl").read_text().splitlines()]
    # Every 3 steps and at the end, as the run planned: step 3's validation, which the interrupt came before, is run
    # on resuming (found from outside: it was lost for good).
    assert [row["step"] for row in rows] == [0, 3, 6, 8]


def test_a_validation_the_interrupt_cut_short_is_run_on_resuming_even_at_the_last_step(
        data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Found from outside: Ctrl-C during the last validation saved latest.pt at the last step, and --resume then
    # refused ("nothing to train"): that validation and its best.pt were lost for good.
    real_validate = Trainer.validate
    calls = iter(range(100))

    def validate_interrupted_on_the_second_call(self: Trainer):
        if next(calls) == 1:
            raise KeyboardInterrupt
        return real_validate(self)

    monkeypatch.setattr(Trainer, "validate", validate_interrupted_on_the_second_call)
    with pytest.raises(SystemExit) as stopped:
        _train(data, tmp_path / "run", "--losses", "l1", "--max_steps", "3")
    assert stopped.value.code == 130
    metrics = tmp_path / "run" / "metrics.jsonl"
    assert [json.loads(line)["step"] for line in metrics.read_text().splitlines()] == [0]
    monkeypatch.setattr(Trainer, "validate", real_validate)
    main(["--checkpoint_dir", str(tmp_path / "run"), "--resume", "--device", "cpu", "--num_workers", "2"])
    rows = [json.loads(line) for line in metrics.read_text().splitlines()]
    assert [row["step"] for row in rows] == [0, 3]
    saved = torch.load(tmp_path / "run" / "latest.pt", weights_only=True)
    assert saved["step"] == 3 and saved["best_selection"] == min(row["mel_distance"] for row in rows)


def test_validations_a_killed_run_wrote_after_its_checkpoint_are_dropped_on_resuming(
        data: Path, tmp_path: Path) -> None:
    # Found from outside: SIGKILL between a validation's row and its checkpoint left that row, and the resumed run
    # wrote the step again (steps 0, 10, 20, 20, 30).
    _train(data, tmp_path / "run", "--losses", "l1", "--max_steps", "3")
    metrics = tmp_path / "run" / "metrics.jsonl"
    rows = metrics.read_text().splitlines()
    ghost = {**json.loads(rows[-1]), "step": 6, "mel_distance": 123.0}  # the killed run's row past its checkpoint
    metrics.write_text("\n".join([*rows, json.dumps(ghost)]) + "\n")
    _train(data, tmp_path / "run", "--losses", "l1", "--max_steps", "6", "--resume")
    steps = [json.loads(line) for line in metrics.read_text().splitlines()]
    assert [row["step"] for row in steps] == [0, 3, 6] and steps[-1]["mel_distance"] != 123.0


@pytest.mark.usefixtures("python_sigint")
def test_a_second_interrupt_while_one_is_held_stops_at_once() -> None:
    with pytest.raises(KeyboardInterrupt), interrupts_deferred():
        os.kill(os.getpid(), signal.SIGINT)
        held = True  # the first one waits for the block's end
        os.kill(os.getpid(), signal.SIGINT)
        held = False  # never reached: the second one is delivered at once
    assert held
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_resume_takes_the_runs_settings_and_refuses_contradictions(data: Path, tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    first = _train(data, run, "--losses", "l1", "--max_steps", "1", "--lr_decay", "0.5")
    # Left out on the command line, the run's own values hold (not the defaults: preset small, lr_decay 0.999996).
    main(["--data_dir", str(data / "data"), "--checkpoint_dir", str(run), "--resume", "--max_steps", "2",
          "--device", "cpu"])
    resumed = torch.load(run / "latest.pt", weights_only=True)
    assert resumed["step"] == 2 and resumed["config"] == first["config"]
    assert {k: resumed["train_config"][k] for k in ("preset", "lr_decay", "losses", "val_dir", "seed")} == {
        k: first["train_config"][k] for k in ("preset", "lr_decay", "losses", "val_dir", "seed")}
    capsys.readouterr()
    for args, message in [
        (["--preset", "small", "--learning_rate", "0.01"],
         (f"codec-train: error: --resume continues {run} as it started, but --learning_rate 0.01 (the run's: "
         "0.001); --preset small (the run's: tiny): leave these out, or start a new --checkpoint_dir "
         "(see codec-train --help)")),
        # A setting the run did not have is "none" (found from outside: "(the run's: None)").
        (["--noise_dir", str(data / "data"), "--noise_prob", "0.5"],
         (f"codec-train: error: --resume continues {run} as it started, but --noise_dir {data / 'data'} (the run's: "
          "none); --noise_prob 0.5 (the run's: 0.0): leave these out, or start a new --checkpoint_dir (see codec-train "
          "--help)")),
        (["--max_steps", "2"], (f"codec-train: error: {run} is at step 2, at or past the last step of this command "
                               "(2): nothing to train; raise --max_steps or --num_epochs")),
    ]:
        with pytest.raises(SystemExit) as stopped:
            main(["--data_dir", str(data / "data"), "--checkpoint_dir", str(run), "--resume", "--device", "cpu",
                  *args])
        assert stopped.value.code in (1, 2) and capsys.readouterr().err.strip().splitlines() == [message]


def test_a_run_folder_is_never_overwritten_and_init_from_keeps_its_preset(data: Path, tmp_path: Path,
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    _train(data, tmp_path / "run", "--losses", "l1", "--max_steps", "1")
    before = (tmp_path / "run" / "latest.pt").read_bytes()
    capsys.readouterr()
    with pytest.raises(SystemExit) as stopped:
        _train(data, tmp_path / "run", "--losses", "l1", "--max_steps", "1")
    # Both are usage mistakes, exit 2 like every other (found from outside: they exited 1).
    assert stopped.value.code == 2 and (tmp_path / "run" / "latest.pt").read_bytes() == before
    assert capsys.readouterr().err.strip().splitlines() == [
        (f"codec-train: error: {tmp_path / 'run'} already holds a run (latest.pt): continue it with --resume, or "
        "give a new --checkpoint_dir (see codec-train --help)")]
    with pytest.raises(SystemExit) as stopped:  # TINY says --preset tiny; the bundled default is small
        _train(data, tmp_path / "other", "--losses", "l1", "--max_steps", "1", "--init_from", "default")
    assert stopped.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "codec-train: error: --preset tiny contradicts --init_from default, a small model: drop --preset "
        "(see codec-train --help)")


def test_a_second_run_on_a_folder_in_use_is_refused_while_the_first_starts(data: Path, tmp_path: Path) -> None:
    """Found from outside: two runs started a second apart on one folder both trained, each overwriting the other's
    checkpoints (nothing is in the folder to refuse until step 0's latest.pt is written)."""
    run = tmp_path / "run"
    first = Trainer(TrainConfig(data_dirs=(str(data / "data"),), checkpoint_dir=str(run), val_dir=str(data / "val"),
                                preset="tiny", device="cpu", batch_size=2, segment_seconds=0.2, max_steps=1,
                                num_workers=0))  # set up, not yet at step 0: no latest.pt
    assert not (run / "latest.pt").exists()
    second = subprocess.run([str(Path(sys.executable).with_name("codec-train")), "--data_dir", str(data / "data"),
                             "--checkpoint_dir", str(run), *TINY, "--max_steps", "1"],
                            capture_output=True, text=True, timeout=120, check=False)
    assert second.returncode == 2 and second.stderr.strip().splitlines() == [
        (f"codec-train: error: {run} is in use by another codec-train run: wait for it to end, or give another "
         "--checkpoint_dir (see codec-train --help)")]
    first.run()  # ends, and lets the folder go
    main(["--checkpoint_dir", str(run), "--resume", "--max_steps", "2", "--num_workers", "0"])
    assert torch.load(run / "latest.pt", weights_only=True)["step"] == 2


@pytest.mark.parametrize(("sig", "code", "word"), [
    (signal.SIGTERM, 143, "terminated"),
    (signal.SIGINT, 130, "interrupted"),
])
def test_a_signal_to_the_whole_process_group_saves_and_exits_in_one_line(
        data: Path, tmp_path: Path, sig: signal.Signals, code: int, word: str) -> None:
    # Found from outside: `pkill -TERM -f` on the run (or a service manager stopping its group) reached the data
    # workers too; a worker's death then raised inside the final save, a traceback, and latest.pt was not
    # written. A terminal's Ctrl-C reaches the whole group the same way. The fault was a race (the worker's death
    # reached the main process during the save in about three runs of four), so three runs each.
    script = Path(sys.executable).parent / "codec-train"
    for trial in range(3):
        run = tmp_path / f"run{trial}"
        process = subprocess.Popen(
            [str(script), "--data_dir", str(data / "data"), "--val_dir", str(data / "val"), "--checkpoint_dir",
             str(run), *TINY, "--losses", "l1", "--max_steps", "100000", "--eval_every", "2"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
        deadline = time.monotonic() + 120
        while not (run / "latest.pt").exists() and process.poll() is None:
            assert time.monotonic() < deadline, "no checkpoint within 2 minutes"
            time.sleep(0.1)
        time.sleep(0.3 + 0.35 * trial)  # mid-run, the workers busy, at a different point each time
        assert process.poll() is None, process.communicate()[1][-2000:]
        signalled = time.time()
        os.killpg(process.pid, sig)
        _, stderr = process.communicate(timeout=120)
        assert process.returncode == code, stderr[-2000:]
        assert "Traceback" not in stderr and stderr.strip().splitlines()[-1] == f"codec-train: {word}", stderr[-2000:]
        # The interrupt's own save is on disk (on a loaded machine the signal can land at the first steps, so the
        # step is read from the run's line, not assumed; found by clean-clone CI).
        stopped_at = re.search(r"interrupted at step (\d+); saving latest.pt", stderr)
        saved = torch.load(run / "latest.pt", weights_only=True)
        assert stopped_at and saved["step"] == int(stopped_at.group(1)), stderr[-2000:]
        assert (run / "latest.pt").stat().st_mtime > signalled  # written after the signal, not a periodic save
        assert not list(run.glob("*.tmp*"))


def test_resuming_after_recordings_were_added_keeps_the_held_out_files(tmp_path: Path) -> None:
    """Found from outside: the seeded hold-out was drawn again over the grown folder, so the resumed run validated on
    a file it had trained on and trained on the one it had held out, without a word."""
    data = telugu_train_clips(tmp_path / "data", 12)
    run = tmp_path / "run"
    args = ["--data_dir", str(data), "--checkpoint_dir", str(run), *TINY, "--num_workers", "0"]
    main([*args, "--max_steps", "1"])
    held = (run / "validation_files.txt").read_text()
    assert held.count("\n") == 1
    for source in sorted(TELUGU_TRAIN.glob("*.flac"))[12:16]:  # four more recordings: the draw would differ
        (data / source.name).symlink_to(source)
    main(["--checkpoint_dir", str(run), "--resume", "--max_steps", "2", "--num_workers", "0"])
    assert (run / "validation_files.txt").read_text() == held
    trainer = Trainer(TrainConfig(data_dirs=(str(data),), checkpoint_dir=str(run), preset="tiny", device="cpu",
                                  batch_size=2, segment_seconds=0.2, learning_rate=1e-3, seed=3, eval_every=3,
                                  num_workers=0, resume=True, max_steps=3))
    trained = {entry.path for corpus in trainer.dataset.plan.corpora for entry in corpus.entries}
    assert Path(held.strip()) not in trained and len(trained) == 15


def test_the_epoch_count_adds_up_when_recordings_are_added_before_resuming(tmp_path: Path) -> None:
    # Found from outside: resumed after recordings were added, the epoch went 0.323, 0.645, then 0.071 (the audio
    # trained over the grown corpus), while audio_seconds_trained went on adding up.
    data = telugu_train_clips(tmp_path / "data", 4)
    run = tmp_path / "run"
    args = ["--data_dir", str(data), "--val_dir", str(TELUGU_VAL), "--val_clips", "1", "--checkpoint_dir", str(run),
            *TINY, "--num_workers", "0"]
    main([*args, "--max_steps", "3"])
    for source in sorted(TELUGU_TRAIN.glob("*.flac"))[4:40]:  # nine times the audio
        (data / source.name).symlink_to(source)
    main(["--checkpoint_dir", str(run), "--resume", "--max_steps", "6", "--num_workers", "0"])
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    first, before, after = (row["epoch"] for row in rows)
    assert first == 0 and 0 < before < after, rows
    saved = torch.load(run / "latest.pt", weights_only=True)
    assert saved["epochs_trained"] == after


def test_a_run_started_with_relative_folders_resumes_from_any_working_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Found from outside: the folders were saved as typed ("d1"), so `--resume` from another working directory
    failed ("d1: no such data folder"), or, where that directory had a d1/ of its own, trained and validated on
    that one without a word."""
    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    telugu_train_clips(project / "d1", 12)
    telugu_train_clips(elsewhere / "d1", 11)  # a decoy of the same name: one clip fewer
    run = project / "run"
    monkeypatch.chdir(project)
    main(["--data_dir", "d1:2", "--checkpoint_dir", "run", *TINY, "--num_workers", "0", "--max_steps", "1"])
    started = torch.load(run / "latest.pt", weights_only=True)["train_config"]
    assert tuple(started["data_dirs"]) == (f"{project / 'd1'}:2",)
    held = (run / "validation_files.txt").read_text().splitlines()
    assert len(held) == 1 and Path(held[0]).parent == project / "d1"
    monkeypatch.chdir(elsewhere)
    main(["--checkpoint_dir", str(run), "--resume", "--max_steps", "2", "--num_workers", "0"])
    resumed = torch.load(run / "latest.pt", weights_only=True)
    assert resumed["step"] == 2 and tuple(resumed["train_config"]["data_dirs"]) == (f"{project / 'd1'}:2",)
    trainer = Trainer(TrainConfig(**{**started, "data_dirs": tuple(started["data_dirs"]), "checkpoint_dir": str(run), "resume": True,
                                     "max_steps": 3, "val_codebooks": tuple(started["val_codebooks"])}))
    trained = {entry.path.parent for corpus in trainer.dataset.plan.corpora for entry in corpus.entries}
    assert trained == {project / "d1"}


def test_resuming_a_latest_pt_without_training_state_is_one_line(data: Path, tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """Found from outside: a best.pt copied over latest.pt gave a traceback (KeyError: 'optimizer_g')."""
    run = tmp_path / "run"
    _train(data, run, "--losses", "l1", "--max_steps", "1")
    shutil.copy(run / "best.pt", run / "latest.pt")
    capsys.readouterr()
    with pytest.raises(SystemExit) as stopped:
        main(["--checkpoint_dir", str(run), "--resume", "--max_steps", "2", "--device", "cpu"])
    assert stopped.value.code == 1 and capsys.readouterr().err.strip().splitlines() == [
        (f"codec-train: error: --resume: {run / 'latest.pt'} holds a model without its training state (a best.pt "
         "or an exported codec.pt copied there?): start a new run from it with --init_from")]


def test_a_resumed_run_whose_held_out_files_are_gone_says_so_and_quotes_no_old_score(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> None:
    """Found from outside: after its one held-out file was deleted, the resumed run said "it validates on the
    rest" (there was none), then "no data folder has the 10 files needed" (the folder had 11), and ended quoting
    the score of the best.pt it had just replaced with an unvalidated model."""
    data = telugu_train_clips(tmp_path / "data", 12)
    run = tmp_path / "run"
    main(["--data_dir", str(data), "--checkpoint_dir", str(run), *TINY, "--num_workers", "0", "--max_steps", "1"])
    (held,) = (run / "validation_files.txt").read_text().splitlines()
    Path(held).unlink()
    capsys.readouterr()
    caplog.clear()
    main(["--checkpoint_dir", str(run), "--resume", "--max_steps", "2", "--num_workers", "0"])
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    # What to do is something a resume allows (found from outside: "pass --val_dir", which --resume refuses).
    assert warnings == [(f"every file this run held out for validation is gone (1; first: {held}): validation "
                         "is off, and best.pt becomes the latest model; to validate, put them back, or go on in a "
                         f"new folder: codec-train --init_from {run / 'latest.pt'} --val_dir SPEECH ...")]
    assert capsys.readouterr().out.startswith("done: 2 steps, no validation (best.pt is the latest model)")
    best, latest = (torch.load(run / name, weights_only=True) for name in ("best.pt", "latest.pt"))
    assert _equal(best["model"], latest["model"])


def test_resuming_a_latest_pt_with_a_broken_codec_config_is_one_line(data: Path, tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """A resumed model is rebuilt from latest.pt's codec config, checked as codec-export and --init_from check it."""
    run = tmp_path / "run"
    payload = _train(data, run, "--losses", "l1", "--max_steps", "1")
    payload["config"]["n_codebooks"] = -3
    torch.save(payload, run / "latest.pt")
    capsys.readouterr()
    with pytest.raises(SystemExit) as stopped:
        main(["--checkpoint_dir", str(run), "--resume", "--max_steps", "2", "--device", "cpu"])
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert stopped.value.code == 1 and line.startswith(f"codec-train: error: {run / 'latest.pt'}: invalid codec config (")
