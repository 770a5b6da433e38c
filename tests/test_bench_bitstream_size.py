"""The bitstream-size benchmark module: it measures files of the three coding modes and writes its results."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import soundfile
from test_bitstream_file import tiny_with_tables

from sscodec.common.bundled import EXAMPLE_CLIP


def test_it_writes_its_results_into_a_folder_it_creates(tmp_path: Path) -> None:
    # Found from outside: --json into a missing folder printed the table, then a traceback.
    clips = tmp_path / "clips"
    clips.mkdir()
    speech = soundfile.read(EXAMPLE_CLIP, dtype="float32")[0][:32000]
    soundfile.write(clips / "a.wav", speech, 16000)
    out = tmp_path / "new" / "folder" / "size.json"
    done = subprocess.run([sys.executable, "-m", "sscodec.benchmarks.bitstream_size", "--model",
                           str(tiny_with_tables()), "--max-clips", "1", "--json", str(out), str(clips)],
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    rows = json.loads(out.read_text())["rows"]
    assert list(rows) == [f"{tmp_path.name}/clips"]
    assert out.with_suffix(".md").read_text().startswith("# Bitstream size") and out.with_suffix(".png").exists()
