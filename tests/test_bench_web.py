"""codec-bench web: the in-browser codec's cost per frame in headless Chromium and in Python, per codebook count,
on a tiny random-weight export (test_stream_model's) and a short clip: files, fields and the cut encoder's codes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile
from test_stream_model import export_tiny_model

from sscodec.benchmarks.cli import main
from sscodec.stream.model import CodecModel


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("speech")
    t = np.arange(16000 * 2) / 16000
    voiced = 0.3 * np.sin(2 * np.pi * 140 * t) * (1 + np.sin(2 * np.pi * 3 * t)) / 2
    soundfile.write(folder / "clip.wav", voiced.astype(np.float32), 16000, subtype="PCM_16")
    return folder


def test_web_times_the_page_codec_per_count_against_python(speech: Path, tmp_path: Path, capsys) -> None:
    model_dir = export_tiny_model()
    n = CodecModel(model_dir).info.n_codebooks
    out = tmp_path / "web.json"
    main(["web", "--model", str(model_dir), "--audio", str(speech), "--seconds", "2", "--json", str(out)])
    data = json.loads(out.read_text())
    assert out.with_suffix(".md").read_text().startswith("# codec-bench web")
    assert out.with_suffix(".png").stat().st_size > 0
    assert "HeadlessChrome" in data["user_agent"] and data["onnxruntime_web"]
    cases = data["cases"]
    assert [case["codebooks"] for case in cases] == sorted({max(1, n // 4), max(1, n // 2), n})
    for case in cases:
        assert case["frames"] == 100
        assert case["cut_codes_equal_frames"] == 1.0  # the cut graph's codes are the whole graph's, in the browser
        for where in ("browser_ms", "python_ms"):
            assert set(case[where]) == {"cut", "whole", "decode"} and all(v > 0 for v in case[where].values())
    assert cases[-1]["codebooks"] == n  # all codebooks: the page's "cut" graph is the whole one
    # ... so nothing is cut and there is no saving to report (found from outside: "cut saves -0%", timing noise).
    assert cases[-1]["cut_saves_browser"] is None and cases[-1]["cut_saves_python"] is None
    assert all(case["cut_saves_python"] is not None for case in cases[:-1])
    row = next(line for line in out.with_suffix(".md").read_text().splitlines() if line.startswith(f"| {n} |"))
    assert row.count("— (nothing cut)") == 2 and "%" not in row.replace("100.0%", "")
    assert "wrote" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--codebooks", "0"], "codebooks must be in 1.."), (["--codebooks", "x"], "expected A-B or a comma-separated")],
)
def test_web_mistakes_are_one_line_usage_errors(args: list[str], message: str, speech: Path, capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["web", "--model", str(export_tiny_model()), "--audio", str(speech), *args])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and len(err.strip().splitlines()) == 1 and message in err, err
