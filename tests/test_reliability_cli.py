"""Every installed command against missing, misplaced, unreadable and hostile files and bad options.

Each row runs the console script a user runs (`.venv/bin/codec-*`) and expects one line on stderr, the exit code
(2: usage, 1: runtime), and no traceback. codec-stream's missing/directory/option mistakes are already a table in
test_stream_cli.py; its rows here are only the ones that table lacks.
"""

from __future__ import annotations

import os
import pickle
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from sscodec.codec.checkpoint import codec_payload, save_codec
from sscodec.codec.config import preset
from sscodec.codec.model import Codec
from sscodec.stream.model_dir import BUNDLED_MODEL_DIR, DECODER_STREAM, ENCODER_STREAM

BIN = Path(sys.executable).parent
# Root reads any file whatever its mode; without these two capabilities it obeys chmod 000 like any user.
DROP_READ_OVERRIDE = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]
AS_ROOT = os.geteuid() == 0


@dataclass(frozen=True)
class Row:
    """One command line and the error it must give."""

    name: str
    command: str
    args: tuple[str, ...]
    code: int
    fragment: str
    unreadable: bool = False  # needs a file that the process cannot read


ROWS = [
    Row("train-missing-init", "codec-train", ("--init_from", "{tmp}/missing.pt"), 1, "missing.pt: no such checkpoint"),
    Row("train-init-is-a-directory", "codec-train", ("--init_from", "{tmp}"), 1, "is a directory"),
    Row("train-unreadable-init", "codec-train", ("--init_from", "{locked_ckpt}"), 1,
        "locked.pt: cannot read the checkpoint (Permission denied)", unreadable=True),
    Row("train-only-unreadable-audio", "codec-train", ("--data_dir", "{locked_data}"), 1,
        "none of 1 files is readable audio", unreadable=True),
    # Found from outside: a sub-folder that cannot be read was left out without a word (codec-pack packed one
    # speaker of two, exit 0); every command that reads a folder of recordings now refuses it by name.
    Row("train-unreadable-sub-folder", "codec-train", ("--data_dir", "{locked_speaker}"), 1,
        "speaker2: cannot read this folder (Permission denied), so its audio would be left out", unreadable=True),
    Row("pack-unreadable-sub-folder", "codec-pack", ("{locked_speaker}",), 1,
        "speaker2: cannot read this folder (Permission denied)", unreadable=True),
    Row("export-unreadable-sub-folder", "codec-export", ("--tables-dir", "{locked_speaker}"), 2,
        "speaker2: cannot read this folder (Permission denied)", unreadable=True),
    Row("bench-unreadable-sub-folder", "codec-bench", ("soak", "--audio", "{locked_speaker}"), 1,
        "speaker2: cannot read this folder (Permission denied)", unreadable=True),
    # Found from outside: "[Errno 13] Permission denied: 'readonly/.pack.hkqafezq'", the pack's hidden temp folder.
    Row("pack-out-in-a-read-only-folder", "codec-pack", ("{data}", "--out", "{readonly}/pack"), 1,
        "readonly/pack: Permission denied", unreadable=True),
    Row("train-raw-pickle-init", "codec-train", ("--init_from", "{raw_pickle}"), 1, "refused"),
    Row("train-huge-learning-rate", "codec-train", ("--learning_rate", "1e39"), 2, "--learning_rate"),
    Row("export-missing-checkpoint", "codec-export", ("--checkpoint", "{tmp}/missing.pt"), 2, "no such checkpoint"),
    Row("export-checkpoint-is-a-directory", "codec-export", ("--checkpoint", "{tmp}"), 2,
        "is a folder; give the checkpoint file in it"),
    Row("export-unreadable-checkpoint", "codec-export", ("--checkpoint", "{locked_ckpt}"), 1,
        "cannot read the checkpoint (Permission denied)", unreadable=True),
    Row("export-pickled-checkpoint", "codec-export", ("--checkpoint", "{pickled}"), 1, "refused"),
    Row("export-unknown-option", "codec-export", ("--bogus",), 2, "No such option"),
    # Found from outside: exit 1 here, 2 from codec-encode and codec-stream for the same mistake.
    Row("bench-missing-model", "codec-bench", ("latency", "--model", "{tmp}/missing"), 2,
        "Invalid value for '--model': Directory"),
    Row("bench-audio-is-a-file", "codec-bench", ("soak", "--audio", "{wav}"), 2, "is a file"),
    Row("bench-unreadable-model", "codec-bench", ("soak", "--audio", "{data}", "--model", "{locked_model}"), 1,
        "encoder_stream.onnx: cannot read (Permission denied)", unreadable=True),
    Row("bench-bad-hours", "codec-bench", ("soak", "--audio", "{data}", "--hours", "-1"), 2, "--hours"),
    # Found from outside: a traceback (1.28 PiB to allocate).
    Row("bench-huge-hours", "codec-bench", ("soak", "--audio", "{data}", "--hours", "1e9"), 2,
        "Invalid value for '--hours': 1000000000.0 is not in the range 0<x<=100."),
    Row("stream-unreadable-input", "codec-stream", ("--input", "{locked_wav}", "--model", "{model}"), 2,
        "is not readable", unreadable=True),
    Row("stream-unreadable-model", "codec-stream", ("--input", "{wav}", "--model", "{locked_model}"), 1,
        "encoder_stream.onnx: cannot read (Permission denied)", unreadable=True),
]
# What each command needs besides the row's own arguments (a row's flag replaces the default of the same name).
REQUIRED = {
    # A folder per row: rows run two at a time, and a run holds its folder from its start (train/trainer.py CLAIM).
    "codec-train": {"--data_dir": "{data}", "--checkpoint_dir": "{tmp}/runs/{row}", "--preset": "tiny", "--device": "cpu"},
    "codec-export": {"--onnx": None, "--checkpoint": "{ckpt}", "--out": "{tmp}/export"},
    "codec-bench": {},
    "codec-stream": {},
    "codec-pack": {"--out": "{tmp}/pack"},
}


class _Exploit:
    """Unpickling this would create the marker file: a stand-in for any code hidden in a checkpoint."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (Path.touch, (self.marker,))


def _files(root: Path) -> dict[str, Path]:
    """The files the rows name: good ones, locked ones and hostile ones."""
    files = {"tmp": root, "wav": root / "a.wav", "data": root / "data", "ckpt": root / "tiny.pt",
             "marker": root / "pwned", "locked_wav": root / "locked.wav", "locked_ckpt": root / "locked.pt",
             "locked_data": root / "locked_data", "locked_model": root / "locked_model", "model": root / "model",
             "pickled": root / "pickled.pt", "raw_pickle": root / "raw.pt", "locked_speaker": root / "speakers",
             "readonly": root / "readonly"}
    soundfile.write(files["wav"], 0.1 * np.random.default_rng(0).standard_normal(8000), 16000)
    for folder in ("data", "locked_data"):
        files[folder].mkdir()
    shutil.copy(files["wav"], files["data"] / "a.wav")
    torch.manual_seed(0)
    model = Codec(preset("tiny"))
    save_codec(model, files["ckpt"])
    payload = codec_payload(model) | {"extra": _Exploit(files["marker"])}
    torch.save(payload, files["pickled"], pickle_module=pickle)
    files["raw_pickle"].write_bytes(pickle.dumps({"model": _Exploit(files["marker"])}))  # not torch's zip format
    source = BUNDLED_MODEL_DIR if (BUNDLED_MODEL_DIR / ENCODER_STREAM).is_file() else _exported_tiny()
    for folder in ("model", "locked_model"):
        files[folder].mkdir()
        for name in (ENCODER_STREAM, DECODER_STREAM):
            shutil.copy(source / name, files[folder] / name)
    shutil.copy(files["wav"], files["locked_wav"])
    shutil.copy(files["wav"], files["locked_data"] / "a.wav")
    shutil.copy(files["ckpt"], files["locked_ckpt"])
    files["readonly"].mkdir(mode=0o555)
    for speaker in ("speaker1", "speaker2"):
        (files["locked_speaker"] / speaker).mkdir(parents=True)
        shutil.copy(files["wav"], files["locked_speaker"] / speaker / "a.wav")
    for locked in (files["locked_wav"], files["locked_data"] / "a.wav", files["locked_ckpt"],
                   files["locked_model"] / ENCODER_STREAM, files["locked_speaker"] / "speaker2"):
        locked.chmod(0)
    return files


def _exported_tiny() -> Path:
    from test_stream_model import export_tiny_model

    return export_tiny_model()


def _command_line(row: Row, files: dict[str, Path]) -> list[str]:
    options = dict(REQUIRED[row.command])
    args = list(row.args)
    for index in range(len(args) - 1):
        if args[index] in options:  # the row's value wins over the default
            options.pop(args[index])
    extra = [item for flag, value in options.items() for item in ((flag,) if value is None else (flag, value))]
    named = {key: str(path) for key, path in files.items()} | {"row": row.name}
    line = [str(BIN / row.command), *(arg.format(**named) for arg in [*args, *extra])]
    return [*DROP_READ_OVERRIDE, *line] if row.unreadable and AS_ROOT else line


def _skip_reason(row: Row) -> str | None:
    if not (BIN / row.command).exists():
        return f"{row.command} is not installed (pip install -e .)"
    if row.unreadable and AS_ROOT and shutil.which("setpriv") is None:
        return "running as root, where chmod 000 does not stop reads, and setpriv (util-linux) is missing"
    return None


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, subprocess.CompletedProcess], Path]:
    """Every runnable row's result; rows run two at a time (most start a Python that imports torch)."""
    files = _files(tmp_path_factory.mktemp("cli"))
    runnable = [row for row in ROWS if _skip_reason(row) is None]

    def run(row: Row) -> subprocess.CompletedProcess:
        return subprocess.run(_command_line(row, files), capture_output=True, text=True, timeout=240, check=False)

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = dict(zip((row.name for row in runnable), pool.map(run, runnable), strict=True))
    return results, files["marker"]


@pytest.mark.parametrize("row", ROWS, ids=[row.name for row in ROWS])
def test_mistakes_and_hostile_files_get_one_line_and_an_exit_code(row: Row, outcomes) -> None:
    reason = _skip_reason(row)
    if reason:
        pytest.skip(reason)
    results, marker = outcomes
    done = results[row.name]
    lines = done.stderr.strip().splitlines()
    # codec-train logs one WARNING per file it skips before it says that nothing was left to train on.
    errors = [line for line in lines if " WARNING skipping " not in line]
    assert "Traceback" not in done.stderr and len(errors) == 1, done.stderr
    assert errors[0].startswith(f"{row.command}: error: ") and row.fragment in errors[0], done.stderr
    assert done.returncode == row.code, done.stderr
    assert not marker.exists(), "a checkpoint ran code while loading"


@pytest.mark.parametrize("command", ["codec-stream", "codec-train"])
def test_ctrl_c_while_a_command_imports_its_libraries_is_one_line(command: str, python_sigint: None) -> None:
    # Found from outside: Ctrl-C in the first half second of `codec-stream --mic` (the imports) printed
    # Python's traceback. Sent once numpy is loaded (this package's __init__ has run) and long before any work.
    import signal
    import time

    process = subprocess.Popen([str(Path(sys.executable).with_name(command)), "--help"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    maps = Path(f"/proc/{process.pid}/maps")
    deadline = time.monotonic() + 30
    while process.poll() is None and time.monotonic() < deadline:
        try:
            if "_multiarray_umath" in maps.read_text():
                break
        except OSError:
            pass
        time.sleep(0.001)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130 and err == f"{command}: interrupted\n", err
    assert out == ""  # interrupted before the help was printed


def test_the_package_knows_every_installed_command() -> None:
    from importlib.metadata import distribution

    from sscodec.common.startup import COMMANDS

    scripts = distribution("streaming-speech-codec").entry_points.select(group="console_scripts")
    assert {script.name for script in scripts} == COMMANDS


def test_no_choice_or_subcommand_name_holds_a_flag_separator() -> None:
    # Every command reads "-" and "_" in flags alike through click's token_normalize_func, which click applies to
    # Choice values and subcommand names too: one holding either separator would be rewritten (common/cli.py).
    import click

    from sscodec.benchmarks.cli import cli as bench
    from sscodec.export.cli import main as export
    from sscodec.stream.cli import command as stream
    from sscodec.stream.file_cli import decode_command, encode_command
    from sscodec.train.cli import command as train
    from sscodec.train.shards_cli import pack_command

    commands = [train, pack_command, export, stream, encode_command, decode_command, *bench.commands.values()]
    assert set(bench.commands) and not [name for name in bench.commands if "-" in name or "_" in name]
    held = [(command.name, param.name, value) for command in commands for param in command.params
            if isinstance(param.type, click.Choice) for value in param.type.choices
            if "-" in str(value) or "_" in str(value)]
    assert held == [] and sum(isinstance(p.type, click.Choice) for c in commands for p in c.params) >= 5
