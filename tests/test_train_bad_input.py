"""codec-train on bad input: one line on stderr and a non-zero exit for user mistakes; bad files skipped."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile

from sscodec.common.cli import MAX_THREADS
from sscodec.train.cli import main
from sscodec.train.config import parse_data_dir
from sscodec.train.data import Crop, CropReader
from sscodec.train.manifest import load_manifest
from tests.conftest import telugu_train_clips

TINY = ["--preset", "tiny", "--device", "cpu", "--batch_size", "2", "--segment_seconds", "0.2"]


def _fails(args: list[str], capsys: pytest.CaptureFixture[str], code: int, message: str) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    err = capsys.readouterr().err
    assert exit_info.value.code == code
    assert err.count("\n") == 1 and err.startswith("codec-train: error: "), err
    assert message in err, err


def test_empty_data_folder_is_a_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no audio here")
    args = ["--data_dir", str(tmp_path / "empty"), "--checkpoint_dir", str(tmp_path / "ckpt"), *TINY]
    _fails(args, capsys, 1, "no audio files (.wav, .flac, .ogg, .mp3) found")


def test_missing_data_folder_is_a_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--data_dir", str(tmp_path / "nowhere"), "--checkpoint_dir", str(tmp_path / "ckpt"), *TINY]
    _fails(args, capsys, 2, "no such data folder")


def test_checkpoint_dir_that_is_a_file_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "file").write_text("x")
    args = ["--data_dir", str(tmp_path), "--checkpoint_dir", str(tmp_path / "file"), *TINY]
    _fails(args, capsys, 2, "is a file")


def test_checkpoint_dir_that_cannot_be_created_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "file").write_text("x")
    args = ["--data_dir", str(tmp_path), "--checkpoint_dir", str(tmp_path / "file" / "ckpt"), *TINY]
    _fails(args, capsys, 1, "cannot create checkpoint folder")


def test_resume_with_nothing_to_resume_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--data_dir", str(tmp_path), "--checkpoint_dir", str(tmp_path / "new"), "--resume", *TINY]
    _fails(args, capsys, 2, "nothing to resume")


def test_resume_from_a_corrupt_checkpoint_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "ckpt").mkdir()
    (tmp_path / "ckpt" / "latest.pt").write_bytes(b"PK\x03\x04 truncated")
    args = ["--data_dir", str(tmp_path), "--checkpoint_dir", str(tmp_path / "ckpt"), "--resume", *TINY]
    _fails(args, capsys, 1, "latest.pt: not a codec checkpoint (truncated or corrupt")


def test_init_from_a_missing_file_is_a_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--data_dir", str(tmp_path), "--checkpoint_dir", str(tmp_path / "ckpt"),
            "--init_from", str(tmp_path / "missing.pt"), *TINY]
    _fails(args, capsys, 1, "missing.pt: no such checkpoint")


def test_init_from_a_wav_is_a_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    talk = tmp_path / "talk.wav"
    soundfile.write(talk, 0.1 * np.random.default_rng(0).standard_normal(8000), 16000)
    args = ["--data_dir", str(tmp_path), "--checkpoint_dir", str(tmp_path / "ckpt"), "--init_from", str(talk), *TINY]
    _fails(args, capsys, 1, f"{talk}: not a codec checkpoint (")
    assert not (tmp_path / "ckpt").exists() or not any((tmp_path / "ckpt").iterdir())


@pytest.mark.parametrize("weight", ["0", "-1", "inf", "nan"])
def test_data_dir_weight_not_above_zero_is_a_usage_error(
    weight: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--data_dir", f"{tmp_path}:{weight}", "--checkpoint_dir", str(tmp_path / "ckpt"), *TINY]
    _fails(args, capsys, 2, f"Invalid value for '--data_dir': {tmp_path}:{weight}: the weight after ':' must be a "
                            f"finite number > 0")


def test_a_folder_named_like_a_weight_is_that_folder(tmp_path: Path) -> None:
    # Found from outside: `--data_dir odd/rec:2`, an existing folder, was "odd/rec: no such data folder".
    folder = tmp_path / "rec:2"
    folder.mkdir()
    assert parse_data_dir(str(folder)) == (folder, None)
    assert parse_data_dir(f"{folder}:0.5") == (folder, 0.5)
    (tmp_path / "rec").mkdir()  # both readings name a folder: DIR:WEIGHT, as documented
    assert parse_data_dir(str(folder)) == (tmp_path / "rec", 2.0)


def _undecodable_flac(path: Path) -> None:
    """A FLAC whose header is fine (so the manifest takes it) and whose audio data is garbage."""
    soundfile.write(path, 0.1 * np.random.default_rng(0).standard_normal(32000), 16000)
    data = bytearray(path.read_bytes())
    data[200:] = bytes([0xAA]) * (len(data) - 200)
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(("names", "message"), [
    (["a.flac"], "cannot be decoded, and its folder has no other file to read"),
    (["a.flac", "b.flac"], "and the 1 file after it cannot be decoded"),
])
def test_only_undecodable_files_is_one_line_and_leaves_no_checkpoints(
    names: list[str], message: str, tmp_path: Path
) -> None:
    data = tmp_path / "baddata"
    data.mkdir()
    for name in names:
        _undecodable_flac(data / name)
    script = Path(sys.executable).with_name("codec-train")
    result = subprocess.run(
        [str(script), "--data_dir", str(data), "--checkpoint_dir", str(tmp_path / "ckpt"), "--max_steps", "2",
         "--num_workers", "1", *TINY], check=False, capture_output=True, text=True, timeout=240,
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    # codec-train logs its progress and one WARNING per file it skips; the error is one line of its own.
    errors = [line for line in result.stderr.splitlines() if " INFO " not in line and " WARNING " not in line
              and not line.startswith("  ")]
    assert len(errors) == 1 and errors[0].startswith("codec-train: error: "), result.stderr
    assert message in errors[0] and "DataLoader" not in errors[0], errors[0]
    assert not (tmp_path / "ckpt" / "best.pt").exists() and not (tmp_path / "ckpt" / "latest.pt").exists()
    clips = f"{len(names)} {'clip' if len(names) == 1 else 'clips'}, "
    assert f"{data}: {clips}" in result.stderr, result.stderr  # the data summary's count, "1 clip" for one


def test_missing_val_dir_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--data_dir", str(tmp_path), "--checkpoint_dir", str(tmp_path / "ckpt"),
            "--val_dir", str(tmp_path / "no_val"), *TINY]
    _fails(args, capsys, 2, "does not exist")


def test_console_script_reports_an_empty_folder_without_a_traceback(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("codec-train")
    (tmp_path / "empty").mkdir()
    result = subprocess.run(
        [str(script), "--data_dir", str(tmp_path / "empty"), "--checkpoint_dir", str(tmp_path / "ckpt"), *TINY],
        check=False, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"codec-train: error: {tmp_path / 'empty'}: no audio files (.wav, .flac, .ogg, .mp3) found"
    ]


def test_stereo_44k_file_is_mixed_to_mono_and_resampled(tmp_path: Path) -> None:
    rate, seconds = 44_100, 1.0
    t = np.arange(int(rate * seconds)) / rate
    tone = np.sin(2 * np.pi * 440 * t)
    soundfile.write(tmp_path / "stereo.flac", np.stack([0.6 * tone, 0.2 * tone], axis=1), rate, subtype="PCM_24")
    (entry,) = load_manifest(tmp_path, tmp_path / "cache", min_seconds=0.1).entries
    length = entry.frames_at(16_000)
    assert abs(length - 16_000) <= 1
    clip = CropReader(16_000, tmp_path / "cache").read(Crop(entry, 0, length))
    middle = clip[2_000:-2_000]
    assert np.abs(middle).max() == pytest.approx(0.4, abs=0.01)  # the mean of the two channels
    spectrum = np.abs(np.fft.rfft(middle))
    assert np.fft.rfftfreq(len(middle), 1 / 16_000)[spectrum.argmax()] == pytest.approx(440, abs=2)
    # A crop read by seeking into the 44.1 kHz file and resampled alone matches the whole file's decode.
    crop = CropReader(16_000, tmp_path / "cache").read(Crop(entry, 4_000, 8_000))
    whole = CropReader(16_000, tmp_path / "cache", in_memory=True).read(Crop(entry, 0, length))
    np.testing.assert_allclose(crop, whole[4_000:12_000], atol=1e-5)


def test_corrupt_file_among_good_ones_is_skipped_counted_and_training_runs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = telugu_train_clips(tmp_path / "data", 2)
    (data / "corrupt.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk" + bytes(64))
    rate = 44_100
    stereo = 0.1 * np.random.default_rng(0).standard_normal((rate, 2))
    soundfile.write(data / "stereo44k.wav", stereo, rate)
    with caplog.at_level(logging.INFO):
        main(["--data_dir", str(data), "--checkpoint_dir", str(tmp_path / "ckpt"), "--max_steps", "2", *TINY])
    skips = [r.getMessage() for r in caplog.records if r.getMessage().startswith("skipping")]
    assert len(skips) == 1 and "corrupt.wav: cannot decode audio" in skips[0]
    summary = next(r.getMessage() for r in caplog.records if r.getMessage().startswith("training data"))
    assert "3 clips" in summary and "1 skipped" in summary
    assert (tmp_path / "ckpt" / "latest.pt").is_file()


def test_no_validation_run_says_there_was_no_validation(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    data.mkdir()
    soundfile.write(data / "a.wav", 0.1 * np.random.default_rng(0).standard_normal(16000), 16000)
    main(["--data_dir", str(data), "--checkpoint_dir", str(tmp_path / "ckpt"), "--no_validation", "--max_steps", "1",
          "--num_workers", "0", *TINY])
    out = capsys.readouterr().out
    assert "done: 1 step, no validation (best.pt is the latest model)," in out, out  # "1 steps" found from outside
    assert "inf" not in out, out


@pytest.mark.parametrize("option", ["--learning_rate", "--lr_decay", "--gain_prob", "--mel_weight", "--max_minutes"])
@pytest.mark.parametrize("value", ["nan", "inf"])
def test_a_float_option_that_is_not_finite_is_a_usage_error(
    option: str, value: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--data_dir", str(tmp_path), "--checkpoint_dir", str(tmp_path / "ckpt"), *TINY, option, value]
    _fails(args, capsys, 2, f"Invalid value for '{option}': {value} is not")  # finite, or in the range
    assert not (tmp_path / "ckpt").exists()


@pytest.mark.parametrize(("extra", "message"), [
    # Found from outside: each of these crashed with a traceback, was blamed on the audio files, or ran the machine
    # out of memory until the OS killed the run without a word.
    (["--seed", "9223372036854775807"], ("Invalid value for '--seed': 9223372036854775807 is not in the range "
                                        "0<=x<=4294967295.")),
    (["--seed", "-1"], "Invalid value for '--seed': -1 is not in the range 0<=x<=4294967295."),
    (["--segment_seconds", "1e9"], ("Invalid value for '--segment_seconds': 1000000000.0 is not in the range "
                                   "0.04<=x<=60.0.")),
    (["--batch_size", "100000", "--segment_seconds", "1"],
     ("--batch_size 100000 × --segment_seconds 1 is 100,000 s of audio per step, more than the 3,600 s a step may "
     "hold: lower one of them")),
])
def test_sizes_past_any_real_run_are_usage_errors(extra: list[str], message: str, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--data_dir", str(tmp_path), "--checkpoint_dir", str(tmp_path / "ckpt"), *TINY, *extra]
    _fails(args, capsys, 2, message)
    assert not (tmp_path / "ckpt").exists()


def test_a_file_listed_twice_in_metadata_is_one_file_and_a_warning(tmp_path: Path,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    # Found in the shared extra/indicvoices metadata: a repeated line would train on a file twice as often and
    # could put it in training and in the held-out validation share at once.
    data = telugu_train_clips(tmp_path / "data", 3)
    names = sorted(p.name for p in data.glob("*.flac"))
    (data / "metadata.jsonl").write_text("".join(f'{{"file": "{n}"}}\n' for n in [names[0], names[1], names[0], names[2]]))
    with caplog.at_level(logging.WARNING):
        manifest = load_manifest(data, tmp_path / "cache", min_seconds=0.1, progress=False)
    assert [e.path.name for e in manifest.entries] == names
    warning = f"{data / 'metadata.jsonl'}:3: {names[0]} is listed again (first on line 1); counted once"
    assert caplog.messages == [warning]


def test_weighting_some_folders_and_not_others_is_a_usage_error(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    # Found from outside: an unweighted folder's share was its duration in seconds against the others' bare
    # numbers, so `telugu/train --data_dir extra:0.5` gave extra a share of 0.00.
    args = ["--data_dir", str(tmp_path), "--data_dir", f"{tmp_path}:0.5", "--checkpoint_dir", str(tmp_path / "c")]
    _fails([*args, *TINY], capsys, 2,
           "Invalid value for '--data_dir': give every folder a weight (DIR:WEIGHT) or none")


def test_weights_are_shares_of_their_sum_even_near_the_float_limit(tmp_path: Path,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    # Found from outside: 1e308 twice passed the finite check and then summed to inf inside the sampler.
    first, second = telugu_train_clips(tmp_path / "a", 2), telugu_train_clips(tmp_path / "b", 2)
    with caplog.at_level(logging.INFO):
        main(["--data_dir", f"{first}:1e308", "--data_dir", f"{second}:3e307", "--no_validation",
              "--checkpoint_dir", str(tmp_path / "ckpt"), "--max_steps", "1", *TINY])
    summary = next(r.getMessage() for r in caplog.records if r.getMessage().startswith("training data"))
    assert "share 0.77" in summary and "share 0.23" in summary, summary


@pytest.mark.parametrize(("flag", "low"), [("--threads", 1), ("--num_workers", 0)])
def test_thread_and_worker_counts_are_bounded(flag: str, low: int, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--data_dir", str(tmp_path), "--checkpoint_dir", str(tmp_path / "c"), flag, "100000", *TINY]
    _fails(args, capsys, 2, f"Invalid value for '{flag}': 100000 is not in the range {low}<=x<={MAX_THREADS}")


@pytest.mark.parametrize("value", ["nan", "inf", "300"])
def test_normalize_db_outside_a_real_level_is_a_usage_error(value: str, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--data_dir", str(tmp_path), "--checkpoint_dir", str(tmp_path / "c"), "--normalize_db", value, *TINY]
    _fails(args, capsys, 2, f"Invalid value for '--normalize_db': {value}")


def test_metadata_may_name_files_by_absolute_path(tmp_path: Path) -> None:
    # Found from outside: an absolute "file" in metadata.jsonl crashed the manifest cache with a traceback.
    clips = sorted(telugu_train_clips(tmp_path / "clips", 2).glob("*.flac"))
    data = tmp_path / "data"
    data.mkdir()
    (data / "metadata.jsonl").write_text(f'{{"file": "{clips[0]}"}}\n{{"file": "../clips/{clips[1].name}"}}\n')
    first = load_manifest(data, tmp_path / "cache", min_seconds=0.1, progress=False)
    again = load_manifest(data, tmp_path / "cache", min_seconds=0.1, progress=False)  # from the cache
    assert [e.path for e in first.entries] == [e.path for e in again.entries] == [clips[0], data / "../clips" / clips[1].name]


def test_adversarial_start_without_a_gan_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--data_dir", str(tmp_path), "--checkpoint_dir", str(tmp_path / "c"), "--adversarial_start", "5", *TINY]
    _fails(args, capsys, 2, "--adversarial_start has no effect without a GAN (--losses l1+mel has none; --losses "
                            "full has)")


def test_a_run_that_never_starts_leaves_no_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Found from outside: a missing data folder left an empty checkpoint folder, an empty --val_dir its manifests.
    clips = telugu_train_clips(tmp_path / "data", 2)
    (tmp_path / "empty").mkdir()
    for args, code in ((["--data_dir", str(tmp_path / "nothere")], 2),
                       (["--data_dir", str(clips), "--val_dir", str(tmp_path / "empty")], 1)):
        _fails([*args, "--checkpoint_dir", str(tmp_path / "runs" / "new"), *TINY], capsys, code, "")
        assert not (tmp_path / "runs" / "new").exists()
    kept = tmp_path / "mine"
    kept.mkdir()
    (kept / "notes.txt").write_text("the user's own file")
    _fails(["--data_dir", str(tmp_path / "nothere"), "--checkpoint_dir", str(kept), *TINY], capsys, 2, "")
    assert [p.name for p in kept.iterdir()] == ["notes.txt"]


def test_the_manifest_line_counts_what_it_left_out(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # Found from outside: "16 of 16 files read" when one listed file was missing.
    data = telugu_train_clips(tmp_path / "data", 2)
    names = [p.name for p in sorted(data.glob("*.flac"))] + ["missing.flac"]
    (data / "metadata.jsonl").write_text("".join(f'{{"file": "{n}"}}\n' for n in names))
    with caplog.at_level(logging.INFO):
        load_manifest(data, tmp_path / "cache", min_seconds=0.1, progress=True)
    line = next(m for m in caplog.messages if m.startswith("manifest of"))
    assert "3 of 3 files probed" in line and "(1 unreadable, skipped; 0 shorter than 0.1 s, left out)" in line


def test_decoder_only_without_a_trained_model_is_a_one_line_error(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--data_dir", str(tmp_path), "--checkpoint_dir", str(tmp_path / "c"), "--decoder_only", *TINY]
    _fails(args, capsys, 2, "--decoder_only trains a decoder on a trained model's codes: give --init_from")
    assert not (tmp_path / "c").exists()


def test_crops_shorter_than_the_mel_loss_needs_are_a_usage_error(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    # Found from outside: --segment_seconds 0.04 (the option's minimum) was a traceback at step 0 with l1+mel,
    # after step 0's checkpoint had taken the folder.
    clips = telugu_train_clips(tmp_path / "data", 2)
    args = ["--data_dir", str(clips), "--checkpoint_dir", str(tmp_path / "c"), *TINY, "--segment_seconds", "0.06"]
    _fails(args, capsys, 2, "--segment_seconds 0.06: --losses l1+mel needs crops of at least 1024 samples "
                            "(0.064 s at 16000 Hz)")
    assert not (tmp_path / "c").exists()


def test_crops_shorter_than_the_stft_loss_needs_are_a_usage_error(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    clips = telugu_train_clips(tmp_path / "data", 2)
    args = ["--data_dir", str(clips), "--checkpoint_dir", str(tmp_path / "c"), *TINY, "--segment_seconds", "0.1",
            "--stft_weight", "1"]
    _fails(args, capsys, 2, "--segment_seconds 0.1: --stft_weight needs crops of at least 2048 samples "
                            "(0.128 s at 16000 Hz)")
    assert not (tmp_path / "c").exists()


@pytest.mark.parametrize("second", ["same", "inside"])
def test_overlapping_data_folders_are_a_usage_error(second: str, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    # Found from outside: the same folder twice trained on each entry's held-out validation file through the other.
    clips = telugu_train_clips(tmp_path / "data" / "sub", 2)
    first = str(tmp_path / "data")
    other = first if second == "same" else str(clips)
    args = ["--data_dir", first, "--data_dir", other, "--checkpoint_dir", str(tmp_path / "c"), *TINY]
    _fails(args, capsys, 2, f"{first} and {other} overlap (the same folder, or one inside the other)")
    assert not (tmp_path / "c").exists()


def test_data_dir_is_required_but_with_resume(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _fails(["--checkpoint_dir", str(tmp_path / "c"), *TINY], capsys, 2, "Missing option '--data_dir'.")


def test_a_discriminator_warmup_needs_a_gan_and_room_before_the_adversarial_start(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--data_dir", str(tmp_path), "--checkpoint_dir", str(tmp_path / "c"), *TINY]
    _fails([*args, "--discriminator_warmup", "5"], capsys, 2,
           "--discriminator_warmup has no effect without a GAN (--losses l1+mel has none; --losses full has)")
    _fails([*args, "--losses", "full", "--adversarial_start", "100", "--discriminator_warmup", "101"], capsys, 2,
           "--discriminator_warmup 101 is longer than the 100 steps before the adversarial terms start: raise "
           "--adversarial_start to at least the warm-up")
