"""`codec-stream` as users run it: file mode end to end, stats JSON, and one-line errors for mistakes."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
from test_stream_model import tiny_model  # noqa: F401 -- the fixture

from sscodec.common.audio import read_audio
from sscodec.common.cli import MAX_THREADS
from sscodec.stream.cli import main
from sscodec.stream.engine import StreamEngine
from sscodec.stream.file_mode import stream_audio

SCRIPT = Path(sys.executable).parent / "codec-stream"
STATS_KEYS = ["frames", "frame_ms", "algorithmic_latency_ms", "compute_ms", "real_time_factor", "bitrate_kbps",
              "codebooks", "underflows", "overflows"]


def run_process(command: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(command, check=False, capture_output=True, text=True, timeout=120)


def run_main(args: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str, str]:
    try:
        main(args)
        code = 0
    except SystemExit as exit_:
        code = exit_.code
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def stereo_44k(tmp_path: Path) -> tuple[Path, np.ndarray]:
    """A 44.1 kHz stereo 24-bit WAV that is not a whole number of frames long."""
    t = np.arange(int(44100 * 1.37)) / 44100
    left = 0.4 * np.sin(2 * np.pi * 300 * t)
    path = tmp_path / "in.wav"
    soundfile.write(path, np.stack([left, 0.5 * left], axis=1), 44100, subtype="PCM_24")
    return path, read_audio(path, 16000)


def test_file_mode_writes_the_streamed_audio_and_stats(tiny_model: Path, stereo_44k, tmp_path: Path,  # noqa: F811
                                                       capsys: pytest.CaptureFixture) -> None:
    path, audio = stereo_44k
    out, stats = tmp_path / "out.wav", tmp_path / "stats.json"
    code, stdout, err = run_main(["--input", str(path), "--output", str(out), "--model", str(tiny_model),
                                  "--bitrate", "2", "--chunk-frames", "2", "--stats-json", str(stats)], capsys)
    assert code == 0 and err == ""
    decoded, rate = soundfile.read(out, dtype="float32")
    assert rate == 16000 and decoded.shape == audio.shape
    expected = stream_audio(StreamEngine(tiny_model, codebooks=4, chunk_frames=2), audio).audio
    np.testing.assert_allclose(decoded, expected, atol=1e-4, rtol=0)  # 16-bit WAV: within 2^-15
    data = json.loads(stats.read_text())
    assert list(data) == STATS_KEYS and list(data["compute_ms"]) == ["p50", "p95", "p99", "max"]
    assert data["codebooks"] == 4 and data["bitrate_kbps"] == pytest.approx(2.0)
    assert data["algorithmic_latency_ms"] == 40.0 and data["frames"] == -(-audio.shape[0] // 320)
    assert data["underflows"] == data["overflows"] == 0
    assert "bitrate: 2.00 kbps (4 codebooks)" in stdout and "real-time factor" in stdout


def test_a_bitrate_above_the_models_highest_says_what_is_sent(tiny_model: Path, stereo_44k,  # noqa: F811
                                                               tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    # Found from outside: --bitrate 100 sent all codebooks (6 kbps for the default) without a word.
    info = StreamEngine(tiny_model).info
    highest = info.bitrate_kbps(info.n_codebooks)
    code, stdout, err = run_main(["--input", str(stereo_44k[0]), "--output", str(tmp_path / "out.wav"), "--model",
                                  str(tiny_model), "--bitrate", "100"], capsys)
    assert code == 0
    assert err == (f"codec-stream: note: --bitrate 100 kbps is above this model's highest, {highest:g} kbps (all "
                   f"{info.n_codebooks} codebooks): sending that\n")
    assert f"bitrate: {highest:.2f} kbps ({info.n_codebooks} codebooks)" in stdout
    code, stdout, err = run_main(["--input", str(stereo_44k[0]), "--output", str(tmp_path / "out.wav"), "--model",
                                  str(tiny_model), "--bitrate", f"{highest:g}"], capsys)
    assert code == 0 and err == ""  # exactly the highest: nothing to say


def test_stats_that_cannot_be_written_keep_the_summary_and_the_audio(tiny_model: Path, stereo_44k,  # noqa: F811
                                                                        tmp_path: Path,
                                                                        capsys: pytest.CaptureFixture) -> None:
    # Found from outside: --stats-json /dev/full lost the summary on stdout too.
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full")
    path, audio = stereo_44k
    code, stdout, err = run_main(["--input", str(path), "--output", str(tmp_path / "out.wav"), "--model",
                                  str(tiny_model), "--stats-json", "/dev/full"], capsys)
    assert code == 1 and err.startswith("codec-stream: error: ") and err.count("\n") == 1, err
    assert "real-time factor" in stdout
    assert soundfile.info(tmp_path / "out.wav").frames == audio.shape[0]


def test_stats_json_dash_is_standard_output(tiny_model: Path, stereo_44k, tmp_path: Path,  # noqa: F811
                                            capfd: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    # Found from outside: `--stats-json -` wrote a file named "-", where codec-encode and codec-decode take "-" as
    # standard output. (capfd: the JSON goes to descriptor 1 through /dev/stdout.)
    monkeypatch.chdir(tmp_path)
    code, stdout, err = run_main(["--input", str(stereo_44k[0]), "--output", "out.wav", "--model", str(tiny_model),
                                  "--stats-json", "-"], capfd)
    assert code == 0, err
    assert list(json.loads(stdout)) == STATS_KEYS and "real-time factor" in err
    assert sorted(path.name for path in tmp_path.iterdir()) == ["in.wav", "out.wav"]
    # Where "-" cannot mean standard output, it is refused rather than taken as a file name.
    code, stdout, err = run_main(["--mic", "--record-output", "-", "--model", str(tiny_model)], capfd)
    assert code == 2 and err.count("\n") == 1, err
    assert "Invalid value for '--record-output': '-' (standard output) is not taken here: give a file name" in err


def test_output_dash_is_a_wav_on_standard_output(tiny_model: Path, stereo_44k, tmp_path: Path) -> None:  # noqa: F811
    # Found from outside: `codec-stream --input x --output -` was refused where `codec-decode x.sscb -` writes a WAV
    # to standard output. Through a real pipe (libsndfile cannot seek in one) and into a file, the bytes are those
    # of --output FILE.wav, and the summary moves to stderr.
    if not SCRIPT.exists():
        pytest.skip(f"{SCRIPT} not installed (pip install -e .)")
    path, audio = stereo_44k
    common = [str(SCRIPT), "--input", str(path), "--model", str(tiny_model)]
    assert run_process([*common, "--output", str(tmp_path / "file.wav")]).returncode == 0
    for name, line in (("piped.wav", "| cat >"), ("redirected.wav", ">")):
        done = subprocess.run(f"{shlex.join([*common, '--output', '-'])} {line} {shlex.quote(str(tmp_path / name))}",
                              shell=True, check=False, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0 and "real-time factor" in done.stderr, done.stderr
        assert (tmp_path / name).read_bytes() == (tmp_path / "file.wav").read_bytes()
        assert soundfile.info(tmp_path / name).frames == audio.shape[0]
    # Two outputs cannot share it: a usage error before anything runs.
    done = run_process([*common, "--output", "-", "--stats-json", "-"])
    assert done.returncode == 2 and done.stdout == "" and done.stderr.count("\n") == 1, done.stderr
    assert "--stats-json: /dev/stdout is also given to --output: give each output its own path" in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.wav", "in.wav", "piped.wav", "redirected.wav"]


@pytest.mark.parametrize("tool", ["codec-stream", "codec-encode"])
def test_input_beyond_full_scale_gets_a_note(tool: str, tiny_model: Path, tmp_path: Path) -> None:  # noqa: F811
    # Found from outside: a float WAV of speech x10 (peak 5.9, 8.8 % of its samples beyond +-1) was coded without
    # a word, and came out distorted (correlation 0.74 with the clip at its level, against 0.91).
    t = np.arange(16000) / 16000
    loud = tmp_path / "loud.wav"
    soundfile.write(loud, (2.0 * np.sin(2 * np.pi * 200 * t)).astype(np.float32), 16000, subtype="FLOAT")
    share = float(np.mean(np.abs(2.0 * np.sin(2 * np.pi * 200 * t).astype(np.float32)) > 1))
    args = (["--input", str(loud), "--output", str(tmp_path / "o.wav")] if tool == "codec-stream"
            else [str(loud), str(tmp_path / "o.sscb"), "--raw"])
    done = run_process([str(SCRIPT.parent / tool), *args, "--model", str(tiny_model)])
    assert done.returncode == 0, done.stderr
    assert (f"{tool}: note: {loud}: {share:.1%} of its samples lie beyond full scale (peak 2.00, +6.0 dBFS), "
            "which the codec distorts: scale it to within -1..1") in done.stderr.splitlines()
    # Within full scale: no note.
    soundfile.write(loud, (0.5 * np.sin(2 * np.pi * 200 * t)).astype(np.float32), 16000, subtype="FLOAT")
    done = run_process([str(SCRIPT.parent / tool), *args, "--model", str(tiny_model)])
    assert done.returncode == 0 and "full scale" not in done.stderr, done.stderr


def test_installed_entry_point_runs(tiny_model: Path, stereo_44k, tmp_path: Path) -> None:  # noqa: F811
    if not SCRIPT.exists():
        pytest.skip(f"{SCRIPT} not installed (pip install -e .)")
    path, audio = stereo_44k
    done = run_process([str(SCRIPT), "--input", str(path), "--model", str(tiny_model), "--output",
                        str(tmp_path / "o.flac")])
    assert done.returncode == 0, done.stderr
    assert soundfile.info(tmp_path / "o.flac").frames == audio.shape[0]
    done = run_process([str(SCRIPT), "--input", str(tmp_path / "missing.wav"), "--model", str(tiny_model)])
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        ([], 2, "exactly one of --mic or --input"),
        (["--mic", "--input", "{wav}"], 2, "exactly one of --mic or --input"),
        (["--input", "{tmp}/missing.wav"], 2, "does not exist"),
        (["--input", "{tmp}"], 2, "is a directory"),
        (["--input", "{bad}"], 1, "cannot decode audio"),
        (["--input", "{empty}"], 1, "cannot decode audio"),
        (["--input", "{wav}", "--codebooks", "3", "--bitrate", "2"], 2, "not both"),
        (["--input", "{wav}", "--codebooks", "13"], 2, "codebooks must be in 1..12"),
        (["--input", "{wav}", "--codebooks", "0"], 2, "--codebooks"),
        (["--input", "{wav}", "--bitrate", "0.3"], 2, "below one codebook"),
        (["--input", "{wav}", "--bitrate", "fast"], 2, "--bitrate"),
        (["--input", "{wav}", "--bitrate", "inf"], 2, "inf is not a finite number in the range x>0"),
        (["--input", "{wav}", "--bitrate", "nan"], 2, "nan is not a finite number in the range x>0"),
        (["--input", "{wav}", "--chunk-frames", "0"], 2, "--chunk-frames"),
        (["--input", "{wav}", "--latency", "low"], 2, "--latency applies only with --mic"),
        (["--input", "{wav}", "--concealment", "repeat"], 2, "--concealment applies only with --answer or --call"),
        # Found from outside: 100,000 threads were passed to ONNX Runtime and stalled the machine.
        (["--input", "{wav}", "--intra-op-threads", "100000"], 2, f"100000 is not in the range 0<=x<={MAX_THREADS}"),
        (["--input", "{wav}", "--inter-op-threads", "100000"], 2, f"100000 is not in the range 0<=x<={MAX_THREADS}"),
        (["--input", "{wav}", "--duration", "3"], 2, "--duration applies only with --mic"),
        (["--input", "{wav}", "--record-output", "{tmp}/r.wav"], 2, "--record-output applies only with --mic"),
        (["--input", "{wav}", "--duration", "3", "--record-output", "{tmp}/r.wav"], 2,
         "--duration, --record-output apply only with --mic"),
        (["--mic", "--output", "{tmp}/o.wav"], 2, "--output is for --input"),
        (["--input", "{wav}", "--output", "{tmp}"], 2, "is a directory"),
        (["--input", "{wav}", "--output", "{tmp}/no/such/dir/o.wav"], 1, "no/such/dir/o.wav: No such file or directory"),
        (["--input", "{wav}", "--stats-json", "{tmp}/no/such/dir/s.json"], 1, "no/such/dir/s.json: No such file or directory"),
        (["--input", "{wav}", "--provider", "tpu"], 2, "--provider"),
        (["--input", "{wav}", "--model", "{tmp}/nothing"], 2, "does not exist"),
        # Found from outside: an audio file was told to be exported (codec-export ... --checkpoint talk.wav).
        (["--input", "{wav}", "--model", "{wav}"], 2,
         "is a file; --model takes the folder of an exported model, e.g. one that codec-export --onnx --out DIR wrote"),
        (["--input", "{wav}", "--model", "{tmp}/best.pt"], 2,
         "best.pt is a file; --model takes the folder of an exported model (codec-export --onnx --checkpoint"),
        (["--input", "{wav}", "--model", "{tmp}"], 1, "encoder_stream.onnx: missing"),
        (["--input", "{wav}", "--model", "{corrupt_model}"], 1, "not a loadable ONNX model"),
        (["--bogus"], 2, "No such option"),
        (["--mic", "--latency", "soon"], 2, "--latency"),
        (["--list-devices", "--mic", "--duration", "3"], 2,
         "--duration, --mic do not apply with --list-devices (it lists the audio devices and exits)"),
    ],
)
def test_user_mistakes_are_one_line_errors(args: list[str], code: int, message: str, tiny_model: Path,  # noqa: F811
                                           stereo_44k, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "bad.wav").write_bytes(b"RIFF not really a wav file")
    (tmp_path / "empty.wav").write_bytes(b"")
    (tmp_path / "best.pt").write_bytes(b"a training checkpoint")
    corrupt = tmp_path / "corrupt_model"
    corrupt.mkdir()
    for name in ("encoder_stream.onnx", "decoder_stream.onnx"):
        (corrupt / name).write_bytes(b"\x08\x07garbage")
    names = {"wav": stereo_44k[0], "tmp": tmp_path, "bad": tmp_path / "bad.wav", "empty": tmp_path / "empty.wav",
             "corrupt_model": corrupt}
    args = [a.format(**names) for a in args]
    if "--model" not in args and "--input" in args:
        args += ["--model", str(tiny_model)]
    exit_code, _, err = run_main(args, capsys)
    assert exit_code == code, err
    assert len(err.strip().splitlines()) == 1 and err.startswith("codec-stream: error: "), err
    assert message in err and "Traceback" not in err


def test_no_model_and_no_bundled_default_is_one_line(
    stereo_44k, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # As an install whose bundled model is missing would be.
    monkeypatch.setattr("sscodec.stream.model_dir.BUNDLED_MODEL_DIR", tmp_path / "no-default-model")
    code, _, err = run_main(["--input", str(stereo_44k[0])], capsys)
    assert code == 1 and err.strip() == (
        "codec-stream: error: no bundled default model is installed yet: pass --model DIR (a directory with "
        "the exported encoder_stream.onnx and decoder_stream.onnx, as written by codec-export)"
    )


def test_cuda_provider_without_a_gpu_is_one_line(tiny_model: Path, stereo_44k) -> None:  # noqa: F811
    done = run_process([sys.executable, "-c", "from sscodec.stream.cli import main; main()", "--input",
                        str(stereo_44k[0]), "--model", str(tiny_model), "--provider", "cuda"])
    if done.returncode == 0:
        pytest.skip("the CUDA provider works here")
    assert done.returncode == 1 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "use --provider cpu" in done.stderr


def test_help_lists_the_contract_flags(capsys: pytest.CaptureFixture) -> None:
    code, out, _ = run_main(["--help"], capsys)
    assert code == 0
    for flag in ("--mic", "--web", "--input", "--output", "--model", "--codebooks", "--bitrate", "--chunk-frames",
                 "--duration", "--stats-json", "--list-devices", "--input-device", "--output-device",
                 "--record-input", "--record-output", "--provider"):
        assert flag in out


def test_importing_the_runtime_loads_no_torch_and_no_training_code() -> None:
    # tests/test_layers.py checks the import statements; this checks what importing the runtime really loads.
    probe = ("import sys, sscodec.stream.cli, sscodec.stream.live, sscodec.stream.engine; "
             "bad = sorted(m for m in sys.modules if m.split('.')[0] == 'torch' "
             "or m.startswith(('sscodec.codec', 'sscodec.train', 'sscodec.export'))); "
             "print(bad); sys.exit(1 if bad else 0)")
    done = run_process([sys.executable, "-c", probe])
    assert done.returncode == 0, done.stdout + done.stderr
