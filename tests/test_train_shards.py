"""codec-pack: training folders re-encoded into shards that codec-train reads, merged or one by one."""

from __future__ import annotations

import json
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile

from sscodec.common.audio import read_audio
from sscodec.common.files import umask_mode
from sscodec.train.manifest import list_audio_files
from sscodec.train.shards import opus_compression_level, pack_folders
from sscodec.train.shards_cli import main
from tests.conftest import mistaken_exclude_lists, telugu_train_clips

RATE = 16_000


def _pack(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        main(args)
        code = 0
    except SystemExit as exit_info:
        code = exit_info.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _tone(seconds: float, rate: int, channels: int = 1, seed: int = 0) -> np.ndarray:
    """A voiced-like test signal: harmonics of 150 Hz with a little noise, [T] or [T, channels]."""
    t = np.arange(round(seconds * rate)) / rate
    x = sum(0.2 / k * np.sin(2 * np.pi * 150 * k * t) for k in range(1, 20) if 150 * k < rate / 2)
    x = (x + 0.01 * np.random.default_rng(seed).standard_normal(t.shape)).astype(np.float32)
    return np.stack([x, 0.5 * x], axis=1) if channels == 2 else x


@pytest.fixture
def corpora(tmp_path: Path) -> tuple[Path, Path]:
    """Two source folders: one with nested files at other rates and channel counts, a held-out file, an unreadable
    file and its licence; one listed by a metadata.jsonl."""
    first = tmp_path / "src" / "speech"
    (first / "a" / "b").mkdir(parents=True)
    soundfile.write(first / "a" / "b" / "one.wav", _tone(1.0, 48_000, channels=2), 48_000)
    soundfile.write(first / "two.flac", _tone(0.7, RATE, seed=1), RATE, subtype="PCM_16")
    soundfile.write(first / "held_out.flac", _tone(0.5, RATE, seed=2), RATE, subtype="PCM_16")
    (first / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEnot audio at all")
    (first / "LICENSE.txt").write_text("CC-BY-4.0: keep this note with the data\n")
    second = tmp_path / "src" / "other" / "speech"  # the same name: packed as speech-2
    second.mkdir(parents=True)
    for index in range(3):
        soundfile.write(second / f"clip{index}.flac", _tone(0.6, 8_000, seed=10 + index), 8_000, subtype="PCM_16")
    (second / "metadata.jsonl").write_text(
        "".join(json.dumps({"file": f"clip{index}.flac", "speaker": index}) + "\n" for index in range(3))
    )
    return first, second


def test_flac_pack_keeps_every_file_at_the_rate_in_shards_that_merge(
    tmp_path: Path, corpora: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    first, second = corpora
    (tmp_path / "heldout.txt").write_text(f"{first / 'held_out.flac'}\n")
    (tmp_path / "NOTICE.md").write_text("attribution for all of it\n")
    out = tmp_path / "pack"
    code, stdout, stderr = _pack([str(first), str(second), "--out", str(out), "--shard-mb", "0.04",
                                  "--exclude", str(tmp_path / "heldout.txt"),
                                  "--attribution", str(tmp_path / "NOTICE.md")], capsys)
    assert code == 0, stderr
    assert "broken.wav" in stderr and "1 unreadable, skipped" in stdout and "1 excluded" in stdout
    pack = json.loads((out / "PACK.json").read_text())
    shards = sorted(path for path in out.iterdir() if path.is_dir())
    # The pack folder as mkdir makes one (found from outside: mkdtemp's 0700 kept it from the other users of the
    # machine it was shipped to).
    assert stat.S_IMODE(out.stat().st_mode) == stat.S_IMODE(shards[0].stat().st_mode) == umask_mode(0o777)
    assert [shard.name for shard in shards] == [shard["name"] for shard in pack["shards"]]
    assert len(shards) >= 2  # 0.04 MiB shards: the 1 s file alone is about 30 kB of FLAC
    for shard, record in zip(shards, pack["shards"], strict=True):
        size = sum(path.stat().st_size for path in shard.rglob("*") if path.is_file())
        assert size == record["bytes"]
        assert size <= 0.04 * (1 << 20) or record["files"] == 1  # one file larger than a shard gets its own
        assert (shard / "NOTICE.md").read_text() == "attribution for all of it\n"

    merged = tmp_path / "merged"
    for shard in shards:  # as the README merges them
        shutil.copytree(shard, merged, dirs_exist_ok=True)
    names = sorted(str(path.relative_to(merged)) for path in list_audio_files(merged))
    assert names == ["speech-2/clip0.flac", "speech-2/clip1.flac", "speech-2/clip2.flac", "speech/a/b/one.flac",
                     "speech/two.flac"]
    # The licence travels with the audio; the metadata is kept under another name, since it lists only the files
    # of one shard once merged (and the loader would then read nothing else).
    assert (merged / "speech" / "LICENSE.txt").read_text().startswith("CC-BY-4.0")
    assert not (merged / "speech-2" / "metadata.jsonl").exists()
    assert json.loads((merged / "speech-2" / "source-metadata.jsonl").read_text().splitlines()[1])["speaker"] == 1

    # Every file is what training would read from the source (mono at 16 kHz), to within the 16-bit rounding.
    expected = read_audio(first / "a" / "b" / "one.wav", RATE)
    packed, rate = soundfile.read(merged / "speech" / "a" / "b" / "one.flac", dtype="float32")
    assert rate == RATE and packed.ndim == 1 and packed.shape == expected.shape
    assert np.abs(packed - expected).max() < 2 / 32768
    assert pack["snr_db"] > 80 and pack["mel_distance"] < 0.005 and pack["scored_files"] == 5
    assert pack["sources"][0]["excluded"] == 1 and len(pack["sources"][0]["skipped"]) == 1


def test_an_exclude_list_that_looks_mistaken_is_a_warning_as_in_codec_train(
    tmp_path: Path, corpora: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    # Found from outside: a list of paths written relative to the data folder (they are read from the list's
    # folder) matched nothing, and the held-out clip was packed without a word; codec-train warns.
    first, _ = corpora
    elsewhere = tmp_path / "elsewhere.flac"
    soundfile.write(elsewhere, _tone(0.5, RATE), RATE)
    lists = mistaken_exclude_lists(tmp_path, first / "two.flac", elsewhere)
    for index, (listing, warning) in enumerate(lists.items()):
        code, stdout, stderr = _pack([str(first), "--out", str(tmp_path / f"pack{index}"), "--exclude", str(listing)],
                                     capsys)
        assert code == 0, stderr
        assert f"codec-pack: warning: {warning}\n" in stderr, stderr
        assert ("1 excluded" in stdout) == (listing.name == "typo.txt"), stdout  # held_out.flac packed in all


def test_files_that_differ_only_in_their_suffix_are_all_kept(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    # Found from outside: x.wav and x.flac both became x.flac, the second overwrote the first, and the pack
    # still counted two files. Small shards put them in different shards, which the merge copies over each other.
    source = tmp_path / "speech"
    source.mkdir()
    clips = {"x.flac": _tone(0.5, RATE, seed=1), "x.wav": _tone(0.9, RATE, seed=2), "x.wav.flac": _tone(0.3, RATE, seed=3)}
    for name, audio in clips.items():
        soundfile.write(source / name, audio, RATE, subtype="PCM_16")
    out = tmp_path / "pack"
    code, _, stderr = _pack([str(source), "--out", str(out), "--shard-mb", "0.01"], capsys)
    assert code == 0, stderr
    merged = tmp_path / "merged"
    for shard in sorted(path for path in out.iterdir() if path.is_dir()):
        shutil.copytree(shard, merged, dirs_exist_ok=True)
    packed = {path.name: soundfile.read(path, dtype="float32")[0] for path in list_audio_files(merged)}
    assert len(packed) == 3 and json.loads((out / "PACK.json").read_text())["sources"][0]["files"] == 3
    lengths = sorted(audio.shape[0] for audio in packed.values())
    assert lengths == sorted(audio.shape[0] for audio in clips.values())  # each source file once, none lost
    assert packed["x.flac"].shape == clips["x.flac"].shape  # a name that needs no change keeps it


def test_opus_pack_meets_its_bitrate_and_reports_what_it_cost(tmp_path: Path) -> None:
    clips = telugu_train_clips(tmp_path / "telugu", 4)
    out = tmp_path / "pack"
    done = subprocess.run([str(Path(sys.executable).parent / "codec-pack"), str(clips), "--out", str(out),
                           "--format", "opus", "--kbps", "16"], capture_output=True, text=True, timeout=300,
                          check=False)  # the installed command, as a user runs it
    assert done.returncode == 0 and done.stderr == "", done.stderr
    stdout = done.stdout
    pack = json.loads((out / "PACK.json").read_text())
    files = sorted((out / "shard-000" / "telugu").glob("*.ogg"))
    assert len(files) == 4 and pack["kbps"] == 16
    seconds = sum(soundfile.info(path).duration for path in files)
    real_kbps = sum(path.stat().st_size for path in files) * 8 / seconds / 1000
    assert 16 * 0.8 < real_kbps < 16 * 1.3, real_kbps  # Ogg pages and VBR around the target
    for path in files:  # the same length as the source, at the rate asked for
        source = soundfile.info(clips / path.with_suffix(".flac").name)
        assert soundfile.info(path).samplerate == RATE and soundfile.info(path).frames == source.frames
    # Lossy: a cost well above FLAC's and well below the codec's own (about 0.21 for the bundled model).
    assert 0.03 < pack["mel_distance"] < 0.2 and pack["snr_db"] > 5
    assert f"mel distance {pack['mel_distance']:.4f}" in stdout


def test_opus_bitrate_maps_onto_libsndfiles_compression_level() -> None:
    assert opus_compression_level(6) == 1.0 and opus_compression_level(256) == 0.0
    assert opus_compression_level(131) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="6..256 kbps"):
        opus_compression_level(4)


def test_the_library_refuses_overlapping_folders_before_reading_any(tmp_path: Path, corpora: tuple[Path, Path]) -> None:
    first, second = corpora
    out = tmp_path / "pack"
    (tmp_path / "link").symlink_to(first)  # the same folder under another name
    for sources in ([first, first / "a"], [second, first, tmp_path / "link"]):
        with pytest.raises(ValueError, match="overlap"):
            pack_folders(sources, out, fmt="flac", sample_rate=16000, shard_bytes=1 << 20,
                         progress=lambda files: pytest.fail("read a file"))
    assert not out.exists() and not list(tmp_path.glob(".pack*"))


@pytest.mark.parametrize(("extra", "code", "message"), [
    (["--kbps", "24"], 2, "--kbps sets Opus's bitrate: it needs --format opus"),
    (["--format", "opus", "--sample-rate", "22050"], 2, "Opus codes 8000, 12000, 16000, 24000, 48000 Hz"),
    (["--format", "opus", "--kbps", "300"], 2, "300"),
])
def test_settings_that_cannot_be_written_are_usage_errors(
    tmp_path: Path, corpora: tuple[Path, Path], capsys: pytest.CaptureFixture[str], extra: list[str], code: int,
    message: str,
) -> None:
    got, _, stderr = _pack([str(corpora[0]), "--out", str(tmp_path / "pack"), *extra], capsys)
    assert got == code and stderr.count("\n") == 1 and message in stderr, stderr
    assert not (tmp_path / "pack").exists()


def test_bad_folders_are_one_line_errors_that_leave_nothing(
    tmp_path: Path, corpora: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    first, _ = corpora
    out = tmp_path / "pack"
    code, _, stderr = _pack([str(first), str(first / "a"), "--out", str(out)], capsys)
    assert code == 2 and "overlap" in stderr and stderr.count("\n") == 1
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no audio")
    code, _, stderr = _pack([str(first), str(tmp_path / "empty"), "--out", str(out)], capsys)
    assert code == 1 and stderr == f"codec-pack: error: {tmp_path / 'empty'}: no audio files found\n"
    (tmp_path / "unreadable").mkdir()
    (tmp_path / "unreadable" / "x.wav").write_bytes(b"not audio")
    code, _, stderr = _pack([str(tmp_path / "unreadable"), "--out", str(out)], capsys)
    assert code == 1 and "none of its audio files can be packed" in stderr.splitlines()[-1]
    (tmp_path / "all.txt").write_text("".join(f"{path}\n" for path in sorted(first.rglob("*.*"))))
    code, _, stderr = _pack([str(first), "--exclude", str(tmp_path / "all.txt"), "--out", str(out)], capsys)
    assert code == 1 and stderr == (f"codec-pack: error: {first}: none of its audio files can be packed (the "
                                    "exclude list names every one)\n")
    assert not out.exists() and not [path for path in tmp_path.iterdir() if path.name.startswith(".pack")]
    out.mkdir()
    code, _, stderr = _pack([str(first), "--out", str(out)], capsys)
    assert code == 2 and "exists: choose a new folder" in stderr and stderr.count("\n") == 1
    # Found from outside: a pack inside the folder it packs was accepted, and the next pack read it as data.
    inside = first / "a" / "pack"
    code, _, stderr = _pack([str(first), "--out", str(inside)], capsys)
    assert code == 2 and stderr.count("\n") == 1 and f"--out {inside} is inside {first}, which it packs" in stderr
    assert not inside.exists() and not [path for path in (first / "a").iterdir() if path.name.startswith(".pack")]


@pytest.mark.parametrize("fmt", ["flac", "opus"])
def test_re_encoding_runs_no_python_inside_libsndfile_where_a_signal_would_be_swallowed(tmp_path: Path,
                                                                                        fmt: str) -> None:
    """Found from outside: a Ctrl-C or SIGTERM during codec-pack printed "Exception ignored from cffi callback" and
    the pack went on (exit 0) with one file cut short. Encoding went through a file object, which libsndfile
    writes through Python callbacks, and cffi swallows what a callback raises; a signal handler raises in
    whatever Python code runs. So no Python code may run while libsndfile encodes (traced here: a signal's
    timing is not)."""
    source = tmp_path / "speech"
    source.mkdir()
    soundfile.write(source / "one.wav", _tone(1.0, RATE), RATE)
    called_back: list[str] = []

    def trace(frame: object, event: str, arg: object) -> None:
        code = frame.f_code  # type: ignore[attr-defined]
        if event == "call" and code.co_filename.endswith("soundfile.py") and code.co_name.startswith("vio_"):
            called_back.append(code.co_name)

    sys.setprofile(trace)
    try:
        pack_folders([source], tmp_path / "pack", fmt=fmt, sample_rate=RATE, shard_bytes=1 << 20,
                     kbps=16.0 if fmt == "opus" else None)
    finally:
        sys.setprofile(None)
    assert called_back == []
    assert read_audio(tmp_path / "pack" / "shard-000" / "speech" / f"one.{'flac' if fmt == 'flac' else 'ogg'}",
                      RATE).shape == (RATE,)


def test_metadata_entries_that_climb_out_of_the_folder_are_packed_under_external(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Found from outside: an entry "../../../notes.wav" was within the folder to a path comparison that kept the
    `..`, and the pack wrote notes.flac outside --out, over the user's own file of that name."""
    work = tmp_path / "work"
    source = work / "corpus"
    (source / "sub").mkdir(parents=True)
    soundfile.write(source / "a.wav", _tone(0.5, RATE), RATE)
    soundfile.write(tmp_path / "notes.wav", _tone(0.5, RATE, seed=1), RATE)
    soundfile.write(source / "in.wav", _tone(0.5, RATE, seed=2), RATE)
    (work / "notes.flac").write_text("MY NOTES\n")
    entries = ["a.wav", "../../notes.wav", "sub/../in.wav"]
    (source / "metadata.jsonl").write_text("".join(json.dumps({"file": entry}) + "\n" for entry in entries))
    code, _, err = _pack([str(source), "--out", str(work / "pack")], capsys)
    assert code == 0, err
    assert (work / "notes.flac").read_text() == "MY NOTES\n"
    packed = sorted(p.relative_to(work / "pack" / "shard-000").as_posix()
                    for p in (work / "pack").rglob("*.flac"))
    outside = Path("corpus", "external", *(tmp_path / "notes.flac").resolve().parts[1:]).as_posix()
    assert packed == sorted(["corpus/a.flac", "corpus/in.flac", outside])
