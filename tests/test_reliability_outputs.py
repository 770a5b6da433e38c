"""Outputs as users meet them: never the input, checked before the run, written whole or not at all.

Each test runs the installed console script (`.venv/bin/codec-*`) the way a user does, with an output that
already holds a previous file, and checks that a mistake, a bad input half way, Ctrl-C or SIGTERM leaves the
input and that previous file byte for byte as they were, and no temp file beside them.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile
from test_stream_model import tiny_model  # noqa: F401 -- the fixture

BIN = Path(sys.executable).parent
PREVIOUS = b"the previous output, to be kept"


def run(command: str, *args: object) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / command), *map(str, args)], capture_output=True, text=True, timeout=240,
                          check=False)


def one_line_error(done: subprocess.CompletedProcess, command: str, code: int) -> str:
    assert done.returncode == code, done.stderr
    assert done.stderr.startswith(f"{command}: error: ") and len(done.stderr.strip().splitlines()) == 1, done.stderr
    return done.stderr


def input_for(command: str, speech: Path, model: Path) -> Path:
    """What `command` reads: the speech itself, or for codec-decode the speech encoded beside it (raw codes)."""
    if command != "codec-decode":
        return speech
    encoded = speech.with_suffix(".sscb")
    assert run("codec-encode", speech, encoded, "--model", model, "--raw").returncode == 0
    return encoded


def temp_files(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir() if path.name.startswith("."))


@pytest.fixture
def speech(tmp_path: Path) -> Path:
    """2 s of 16 kHz noise and tone as a WAV: the input every test must leave as it was."""
    t = np.arange(32000) / 16000
    audio = 0.3 * np.sin(2 * np.pi * 220 * t) + 0.01 * np.random.default_rng(0).standard_normal(t.size)
    path = tmp_path / "victim.wav"
    soundfile.write(path, audio, 16000)
    return path


@pytest.mark.parametrize("through", ["same path", "symlink", "hard link"])
@pytest.mark.parametrize("command", ["codec-stream", "codec-encode"])
def test_an_output_that_is_the_input_is_refused_before_anything_is_touched(
        tiny_model: Path, speech: Path, tmp_path: Path, command: str, through: str) -> None:  # noqa: F811
    original = speech.read_bytes()
    output = speech
    if through == "symlink":
        output = tmp_path / "link.wav"
        output.symlink_to(speech.name)
    elif through == "hard link":
        output = tmp_path / "hard.wav"
        os.link(speech, output)
    args = ["--input", speech, "--output", output] if command == "codec-stream" else [speech, output]
    done = run(command, *args, "--model", tiny_model)
    message = one_line_error(done, command, 2)
    assert "is the input file" in message
    assert speech.read_bytes() == original and temp_files(tmp_path) == []


@pytest.mark.parametrize("ending", ["/", "/."])
@pytest.mark.parametrize("command", ["codec-stream", "codec-encode", "codec-decode"])
def test_an_output_path_that_names_a_folder_is_refused_and_the_file_of_that_name_kept(
        tiny_model: Path, speech: Path, tmp_path: Path, command: str, ending: str) -> None:  # noqa: F811
    # Found from outside: pathlib drops a trailing "/", so `codec-encode talk.wav victim.sscb/` replaced an
    # existing victim.sscb, and `codec-encode talk.wav newdir/` made a file named newdir.
    source = input_for(command, speech, tiny_model)
    kept = tmp_path / ("kept.sscb" if command == "codec-encode" else "kept.wav")
    kept.write_bytes(PREVIOUS)
    for output in (f"{kept}{ending}", f"{tmp_path / 'newdir'}{ending}"):
        args = ["--input", source, "--output", output] if command == "codec-stream" else [source, output]
        done = run(command, *args, "--model", tiny_model, *(["--raw"] if command == "codec-encode" else []))
        assert f"{output}' names a folder: give a file name" in one_line_error(done, command, 2)
    assert kept.read_bytes() == PREVIOUS and not (tmp_path / "newdir").exists()


@pytest.mark.parametrize("command", ["codec-encode", "codec-decode", "codec-stream"])
def test_a_reader_that_stops_reading_standard_output_ends_the_tool_quietly(
        tiny_model: Path, speech: Path, command: str) -> None:  # noqa: F811
    # Found from outside: `codec-decode in.sscb - | head -c 10` printed "codec-decode: error: Broken pipe" and
    # exited 1; a Unix filter whose reader went away ends without a word, as if killed by SIGPIPE (exit 141).
    source = input_for(command, speech, tiny_model)
    args = ["--input", source, "--output", "-"] if command == "codec-stream" else [source, "-"]
    raw = ["--raw"] if command == "codec-encode" else []  # tiny_model has no tables: no note on stderr
    process = subprocess.Popen([str(BIN / command), *map(str, args), "--model", str(tiny_model), *raw],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    process.stdout.close()  # the reader is gone before anything is written
    _, err = process.communicate(timeout=240)
    assert (process.returncode, err) == (128 + signal.SIGPIPE, "")


@pytest.mark.parametrize("command", ["codec-encode", "codec-decode"])
def test_standard_output_that_is_closed_or_full_is_a_one_line_error(tiny_model: Path, speech: Path,  # noqa: F811
                                                                    tmp_path: Path, command: str) -> None:
    # Found from outside: codec-decode to a closed stdout was a traceback, and codec-encode to /dev/full said
    # "not open for writing".
    source = input_for(command, speech, tiny_model)
    args = [str(BIN / command), str(source), "-", "--model", str(tiny_model),
            *(["--raw"] if command == "codec-encode" else [])]
    closed = subprocess.run(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, timeout=240,
                            check=False, pass_fds=(), preexec_fn=lambda: os.close(1))
    assert "/dev/stdout: not open for writing" in one_line_error(closed, command, 1)
    with open("/dev/full", "wb") as full:
        done = subprocess.run(args, stdout=full, stderr=subprocess.PIPE, text=True, timeout=240, check=False)
    assert "No space left on device" in one_line_error(done, command, 1)


def test_codec_stream_keeps_the_previous_output_when_the_input_turns_bad(tiny_model: Path,  # noqa: F811
                                                                         tmp_path: Path) -> None:
    audio = np.zeros((200_000, 2), dtype=np.float32)
    audio[150_000, 1] = np.nan  # in the third 64 Ki-frame block: found after output has been written
    path, out = tmp_path / "nan.wav", tmp_path / "out.wav"
    soundfile.write(path, audio, 48000, subtype="FLOAT")
    out.write_bytes(PREVIOUS)
    done = run("codec-stream", "--input", path, "--output", out, "--model", tiny_model)
    assert "contains NaN or Inf samples" in one_line_error(done, "codec-stream", 1)
    assert out.read_bytes() == PREVIOUS and temp_files(tmp_path) == []


def _long_input(tmp_path: Path, seconds: int) -> Path:
    t = np.arange(16000 * seconds) / 16000
    path = tmp_path / "long.wav"
    soundfile.write(path, 0.3 * np.sin(2 * np.pi * 220 * t), 16000)
    return path


@pytest.mark.parametrize(("sig", "code", "word"), [(signal.SIGINT, 130, "interrupted"),
                                                   (signal.SIGTERM, 143, "terminated")])
@pytest.mark.parametrize("command", ["codec-stream", "codec-encode", "codec-decode"])
def test_a_signal_mid_run_keeps_the_previous_output_and_leaves_no_temp_file(
        tiny_model: Path, tmp_path: Path, command: str, sig: signal.Signals, code: int,  # noqa: F811
        word: str) -> None:
    source = _long_input(tmp_path, 600)
    if command == "codec-decode":
        encoded = tmp_path / "long.sscb"
        assert run("codec-encode", source, encoded, "--model", tiny_model, "--raw").returncode == 0
        source = encoded
    out = tmp_path / ("out.sscb" if command == "codec-encode" else "out.wav")
    out.write_bytes(PREVIOUS)
    args = ["--input", source, "--output", out] if command == "codec-stream" else [source, out]
    if command == "codec-encode":
        args.append("--raw")  # the tiny model has no entropy tables: no note on stderr
    process = subprocess.Popen([str(BIN / command), *map(str, args), "--model", str(tiny_model)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not [name for name in temp_files(tmp_path) if ".tmp" in name] and process.poll() is None:
        assert time.monotonic() < deadline, "no temp file appeared"
        time.sleep(0.01)
    time.sleep(0.2)  # some audio written to the temp file
    assert process.poll() is None, "finished before the signal: give it a longer input"
    process.send_signal(sig)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == code, stderr
    assert stderr == f"{command}: {word}\n", stderr  # one line: found from outside, a blank one came first
    assert out.read_bytes() == PREVIOUS and temp_files(tmp_path) == []


def test_codec_stream_checks_every_output_folder_before_the_run(tiny_model: Path, speech: Path,  # noqa: F811
                                                                tmp_path: Path) -> None:
    out = tmp_path / "o.wav"
    done = run("codec-stream", "--input", speech, "--output", out, "--stats-json", tmp_path / "nodir" / "s.json",
               "--model", tiny_model)
    assert "nodir/s.json: No such file or directory" in one_line_error(done, "codec-stream", 1)
    assert not out.exists() and temp_files(tmp_path) == []
    done = run("codec-stream", "--input", speech, "--output", out, "--stats-json", out, "--model", tiny_model)
    assert "also given to --output" in one_line_error(done, "codec-stream", 2)
    assert not out.exists()


def test_codec_bench_checks_its_results_folder_before_the_run(tiny_model: Path, speech: Path,  # noqa: F811
                                                              tmp_path: Path) -> None:
    audio = tmp_path / "audio"
    audio.mkdir()
    speech.rename(audio / "a.wav")
    started = time.monotonic()
    done = run("codec-bench", "soak", "--model", tiny_model, "--audio", audio, "--hours", "0.05",
               "--json", "/proc/x.json")
    assert "/proc/x.json" in one_line_error(done, "codec-bench", 1)
    assert done.stdout == ""  # refused before streaming: no progress lines
    assert time.monotonic() - started < 60


def _no_sound_card() -> bool:
    try:
        import sounddevice
    except OSError:  # no PortAudio at all: the same refusal, with the install hint
        return True
    return len(sounddevice.query_devices()) == 0


@pytest.mark.skipif(not _no_sound_card(), reason="needs a machine without audio devices")
@pytest.mark.parametrize("role", [["--answer", "0"], ["--call", "http://127.0.0.1:9"]])
def test_a_call_with_mic_and_no_sound_card_fails_before_waiting_or_calling(tiny_model: Path,  # noqa: F811
                                                                           role: list[str]) -> None:
    try:
        done = subprocess.run([str(BIN / "codec-stream"), *role, "--mic", "--model", str(tiny_model)],
                              capture_output=True, text=True, timeout=60, check=False)
    except subprocess.TimeoutExpired:
        pytest.fail("still waiting for a call after 60 s")
    message = one_line_error(done, "codec-stream", 1)
    assert "no audio devices found" in message or "PortAudio not found" in message, message
    assert "waiting for a call" not in done.stdout


def test_outputs_go_through_symlinks_and_into_fifos_without_replacing_them(tiny_model: Path, speech: Path,  # noqa: F811
                                                                           tmp_path: Path) -> None:
    # Found from outside: the temp file was renamed over the path itself, so a symlink became a file (its
    # target untouched), a FIFO a file, and as root `--stats-json /dev/stdout` would have replaced /dev/stdout.
    plain = tmp_path / "plain.sscb"
    assert run("codec-encode", speech, plain, "--raw", "--model", tiny_model).returncode == 0
    (tmp_path / "elsewhere").mkdir()
    target = tmp_path / "elsewhere" / "real.sscb"
    target.write_bytes(PREVIOUS)
    link = tmp_path / "link.sscb"
    link.symlink_to(Path("elsewhere") / "real.sscb")
    assert run("codec-encode", speech, link, "--raw", "--model", tiny_model).returncode == 0
    assert link.is_symlink() and target.read_bytes() == plain.read_bytes()
    # A symlink to this process's stdout (a pipe here): the stats arrive there and the link stays. Found from
    # outside: the summary was printed there too, so `| python -m json.tool` failed; it goes to stderr now.
    stdout_link = tmp_path / "stdout.json"
    stdout_link.symlink_to("/proc/self/fd/1")
    done = run("codec-stream", "--input", speech, "--stats-json", stdout_link, "--model", tiny_model)
    assert done.returncode == 0, done.stderr
    stats = json.loads(done.stdout)
    assert "real-time factor" in done.stderr
    assert stats["frames"] == 100 and stdout_link.is_symlink()
    # A FIFO gets the file's bytes from a reader on the other end, and stays a FIFO.
    fifo = tmp_path / "fifo.sscb"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()))
    reader.start()
    done = run("codec-encode", speech, fifo, "--raw", "--model", tiny_model)
    reader.join(30)
    assert done.returncode == 0, done.stderr
    assert received == [plain.read_bytes()] and stat.S_ISFIFO(fifo.stat().st_mode)


@pytest.mark.parametrize("command", ["codec-decode", "codec-stream"])
def test_a_named_pipe_gets_a_wav_file_whole(tiny_model: Path, speech: Path, tmp_path: Path,  # noqa: F811
                                            command: str) -> None:
    # Found from outside: libsndfile cannot write a WAV into a pipe (its header holds the length, written by
    # seeking back), so `codec-decode x.sscb fifo.wav` failed with "does not support pipe write".
    source = input_for(command, speech, tiny_model)
    outputs = {}
    for name in ("plain.wav", "fifo.wav"):
        output = tmp_path / name
        received: list[bytes] = []
        if name == "fifo.wav":
            os.mkfifo(output)
            reader = threading.Thread(target=lambda path=output, into=received: into.append(path.read_bytes()))
            reader.start()
        args = ["--input", source, "--output", output] if command == "codec-stream" else [source, output]
        done = run(command, *args, "--model", tiny_model)
        assert done.returncode == 0, done.stderr
        if name == "fifo.wav":
            reader.join(30)
            assert stat.S_ISFIFO(output.stat().st_mode)
            output = tmp_path / "received.wav"
            output.write_bytes(received[0])
        outputs[name] = soundfile.read(output, dtype="float32")
    assert outputs["plain.wav"][1] == outputs["fifo.wav"][1]
    np.testing.assert_array_equal(outputs["plain.wav"][0], outputs["fifo.wav"][0])
    if command == "codec-decode":  # damaged half way: the reader gets end-of-file, not a part, and stops waiting
        damaged = tmp_path / "damaged.sscb"
        damaged.write_bytes(source.read_bytes()[: source.stat().st_size * 2 // 3])
        received.clear()
        reader = threading.Thread(target=lambda: received.append((tmp_path / "fifo.wav").read_bytes()))
        reader.start()
        assert "damaged" in one_line_error(run(command, damaged, tmp_path / "fifo.wav", "--model", tiny_model),
                                           command, 1)
        reader.join(30)
        assert received == [b""]


def test_an_output_to_stdout_redirected_into_a_file_lands_at_its_place_in_that_file(
        tiny_model: Path, speech: Path, tmp_path: Path) -> None:  # noqa: F811
    # Found from outside: /dev/stdout led through /proc/self/fd/1 to the file the shell had opened, and the temp
    # file was renamed over it: `--stats-json /dev/stdout >> log` lost the log, and what the shell printed around
    # the command was lost with it. The output now goes through the shell's own descriptor, whole, in order.
    plain = tmp_path / "plain.sscb"
    assert run("codec-encode", speech, plain, "--raw", "--model", tiny_model).returncode == 0
    log = tmp_path / "log"
    log.write_bytes(b"earlier run\n")
    bin_dir, model = str(BIN), str(tiny_model)
    script = (f'{{ echo before; "{bin_dir}/codec-encode" "{speech}" /dev/stdout --raw --model "{model}"; '
              f'echo after; }} >> "{log}"')
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert log.read_bytes() == b"earlier run\nbefore\n" + plain.read_bytes() + b"after\n"
    assert "/dev/stdout: " in done.stderr  # the summary, where it cannot corrupt the bitstream
    stats_log = tmp_path / "stats.log"
    stats_log.write_text("run 1\n")
    script = (f'"{bin_dir}/codec-stream" --input "{speech}" --stats-json /dev/stdout --model "{model}" '
              f'>> "{stats_log}"')
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    first, rest = stats_log.read_text().split("\n", 1)
    assert first == "run 1" and json.loads(rest)["frames"] == 100


@pytest.mark.parametrize("mode", [0o600, 0o640, 0o664])
def test_an_overwritten_output_keeps_its_permissions_and_group(tiny_model: Path, speech: Path,  # noqa: F811
                                                               tmp_path: Path, mode: int) -> None:
    # Found from outside: the temp file renamed over an existing output took 0666 less the umask, so a private
    # 0600 recording became world-readable; its group became the writer's.
    output = tmp_path / "private.wav"
    output.write_bytes(PREVIOUS)
    output.chmod(mode)
    # Another group than the writer's: root may pick any (nogroup), others one of their own.
    group = 65534 if os.geteuid() == 0 else next((g for g in os.getgroups() if g != os.getegid()), os.getegid())
    os.chown(output, -1, group)
    done = run("codec-stream", "--input", speech, "--output", output, "--model", tiny_model)
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE(output.stat().st_mode) == mode and output.stat().st_gid == group
    assert soundfile.info(output).frames == 32000


def test_a_new_output_gets_the_usual_permissions(tiny_model: Path, speech: Path, tmp_path: Path) -> None:  # noqa: F811
    umask = os.umask(0o027)
    try:
        done = run("codec-encode", speech, tmp_path / "new.sscb", "--raw", "--model", tiny_model)
    finally:
        os.umask(umask)
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE((tmp_path / "new.sscb").stat().st_mode) == 0o640  # 0666 less the umask, as open() gives


def test_a_read_only_output_is_refused_and_kept(tiny_model: Path, speech: Path, tmp_path: Path) -> None:  # noqa: F811
    # Found from outside: a read-only output was replaced (renaming over it needs only the folder), where cp
    # refuses. As root, the test drops the capability that lets root write any file, as an unprivileged user.
    output = tmp_path / "kept.sscb"
    output.write_bytes(PREVIOUS)
    output.chmod(0o444)
    prefix = []
    if os.geteuid() == 0:
        prefix = ["setpriv", "--inh-caps=-all", "--bounding-set=-dac_override,-dac_read_search"]
    done = subprocess.run([*prefix, str(BIN / "codec-encode"), str(speech), str(output), "--raw",
                           "--model", str(tiny_model)], capture_output=True, text=True, timeout=240, check=False)
    assert one_line_error(done, "codec-encode", 1) == f"codec-encode: error: {output}: Permission denied\n"
    assert output.read_bytes() == PREVIOUS and temp_files(tmp_path) == []


@pytest.mark.parametrize(
    "command, args, option",
    [
        ("codec-export", ["--onnx", "--checkpoint", "default", "--out", ""], "'--out'"),
        ("codec-export", ["--onnx", "--checkpoint", "", "--out", "x"], "--checkpoint"),
        ("codec-train", ["--data_dir", "", "--checkpoint_dir", "run"], "'--data_dir'"),
        ("codec-train", ["--data_dir", "{data}", "--checkpoint_dir", ""], "'--checkpoint_dir'"),
        ("codec-pack", ["--out", "", "{data}"], "'--out'"),
        ("codec-stream", ["--input", ""], "'--input'"),
        ("codec-encode", ["", "x.sscb"], "'INPUT'"),
        ("codec-decode", ["{data}/x.sscb", ""], "'OUTPUT'"),
    ],
)
def test_an_empty_path_is_refused_not_taken_as_the_working_folder(command: str, args: list[str], option: str,
                                                                   tmp_path: Path) -> None:
    # Found from outside: `--out "$OUT"` with OUT unset exported into the working folder, and `--checkpoint_dir ""`
    # trained into it (pathlib reads "" as "."). Nothing is written anywhere.
    data = tmp_path / "data"
    data.mkdir()
    soundfile.write(data / "a.wav", np.zeros(16000, dtype=np.float32), 16000)
    (data / "x.sscb").write_bytes(b"")
    work = tmp_path / "work"
    work.mkdir()
    done = subprocess.run([str(BIN / command), *(arg.format(data=data) for arg in args)], capture_output=True,
                          text=True, timeout=240, check=False, cwd=work)
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith(f"{command}: error: Invalid value for {option}: an empty path (an unset shell "
                                  "variable?): name a file or folder"), done.stderr
    assert list(work.iterdir()) == []
