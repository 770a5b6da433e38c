"""The bundled default model: it loads, its metadata is right, it codes the bundled example well enough."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile

from sscodec.codec.checkpoint import load_codec
from sscodec.codec.config import CodecConfig
from sscodec.common.bundled import (
    BUNDLED_CHECKPOINT,
    BUNDLED_CHECKPOINT_DIR,
    BUNDLED_MODEL_DIR,
    resolve_checkpoint,
)
from sscodec.stream.file_codec import decode_file
from sscodec.stream.model import CodecModel
from sscodec.stream.model_dir import resolve_model_dir

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "stream" / "examples" / "telugu_example.flac"
# The runtime loads only the stream graphs; the checkpoint and the offline graphs are for training and export.
RUNTIME_FILES = ("encoder_stream.onnx", "decoder_stream.onnx", "entropy_tables.npz", "context_model.npz",
                 "MODEL_CARD.md")
TRAINING_FILES = ("codec.pt", "encoder.onnx", "decoder.onnx")
# Measured when the model was bundled: SNR 8.60 dB, amplitude ratio 0.94 (6 kbps, 1-frame chunks).
# The floors leave 2 dB and 0.15 for platform differences; a real regression falls far below them.
SNR_FLOOR_DB = 6.5
AMPLITUDE_RANGE = (0.78, 1.1)


def _snr_db(reference: np.ndarray, estimate: np.ndarray) -> float:
    return float(10 * np.log10(np.sum(reference**2) / np.sum((reference - estimate) ** 2)))


def test_default_resolves_to_the_bundled_files() -> None:
    assert resolve_model_dir(None) == BUNDLED_MODEL_DIR == resolve_model_dir("default")
    assert resolve_checkpoint("default") == BUNDLED_CHECKPOINT
    for name in RUNTIME_FILES:
        assert (BUNDLED_MODEL_DIR / name).is_file(), name
    for name in TRAINING_FILES:
        assert (BUNDLED_CHECKPOINT_DIR / name).is_file(), name


def test_the_bundled_context_model_codes_the_example_smaller_than_the_tables(tmp_path: Path) -> None:
    """codec-encode's default on the bundled model is the context mode; it decodes to the static mode's audio."""
    sizes = {}
    for flags in ([], ["--static-tables"]):
        out = tmp_path / f"{len(flags)}.sscb"
        done = subprocess.run([str(Path(sys.executable).parent / "codec-encode"), str(EXAMPLE), str(out), *flags],
                              capture_output=True, text=True, timeout=300, check=False)
        assert done.returncode == 0 and done.stderr == "", done.stderr
        assert ("12 codebooks, entropy," if flags else "12 codebooks, context,") in done.stdout
        sizes[len(flags)] = out.stat().st_size
    model = CodecModel(BUNDLED_MODEL_DIR)
    np.testing.assert_array_equal(decode_file(model, tmp_path / "0.sscb"), decode_file(model, tmp_path / "1.sscb"))
    assert sizes[0] < sizes[1]


def test_metadata_agrees_with_the_bundled_checkpoint() -> None:
    import onnx

    config = load_codec(BUNDLED_CHECKPOINT).config
    assert config.preset == "small" and config.n_codebooks == 12 and config.frame_size == 320
    graphs = [BUNDLED_MODEL_DIR / RUNTIME_FILES[0], BUNDLED_MODEL_DIR / RUNTIME_FILES[1],
              BUNDLED_CHECKPOINT_DIR / TRAINING_FILES[1], BUNDLED_CHECKPOINT_DIR / TRAINING_FILES[2]]
    for path in graphs:
        props = {p.key: p.value for p in onnx.load(path, load_external_data=False).metadata_props}
        # Read as the loaders read it: a field added since the export takes its default.
        assert CodecConfig.from_json(props["codec_config"]).to_dict() == config.to_dict()
        assert int(props["sample_rate"]) == 16000 and int(props["frame_size"]) == 320


@pytest.mark.parametrize("extra_args, codebooks", [([], 12), (["--model", "default", "--bitrate", "3"], 6)])
def test_codec_stream_with_the_bundled_model_codes_the_example(tmp_path: Path, extra_args: list[str], codebooks: int) -> None:
    output, stats = tmp_path / "out.wav", tmp_path / "stats.json"
    subprocess.run(
        [sys.executable, "-c", "from sscodec.stream.cli import main; main()", "--input", str(EXAMPLE), "--output",
         str(output), "--stats-json", str(stats), *extra_args],
        check=True, capture_output=True, timeout=120,
    )
    reference, _ = soundfile.read(EXAMPLE, dtype="float32")
    decoded, rate = soundfile.read(output, dtype="float32")
    assert rate == 16000 and decoded.shape == reference.shape
    summary = json.loads(stats.read_text())
    # The bitrate is what is sent: each 1-frame chunk's 10-bit codes padded to whole bytes.
    packed_bits = -(-codebooks * 10 // 8) * 8
    assert summary["codebooks"] == codebooks and summary["bitrate_kbps"] == pytest.approx(packed_bits * 50 / 1000)
    if codebooks == 12:
        assert _snr_db(reference, decoded) > SNR_FLOOR_DB
        ratio = np.sqrt(np.mean(decoded**2) / np.mean(reference**2))
        assert AMPLITUDE_RANGE[0] < ratio < AMPLITUDE_RANGE[1]
    else:
        # Fewer codebooks cost fidelity, but the speech must still come through.
        assert _snr_db(reference, decoded) > 0.0


def test_the_wheel_is_one_package_with_the_stream_graphs_and_not_the_training_files(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path),
         str(ROOT)],
        check=True, capture_output=True, timeout=300,
    )
    (wheel,) = tmp_path.glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    # One import package: nothing that could overwrite or be shadowed by a `stream`, `train`, ... of another.
    assert {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")} == {"sscodec"}
    for name in RUNTIME_FILES:
        assert f"sscodec/stream/models/default/{name}" in names
    assert not [name for name in names if name.endswith((".pt", "/encoder.onnx", "/decoder.onnx"))]
    assert "sscodec/stream/examples/telugu_example.flac" in names
    assert "sscodec/stream/models/default/entropy_tables.npz" in names
    # The in-browser page (codec-stream --web) is served from the install: every asset is in the wheel.
    web = ROOT / "stream" / "web"
    assets = {f"sscodec/stream/web/{p.relative_to(web)}" for p in web.rglob("*") if p.is_file()}
    assert assets and assets <= names, sorted(assets - names)
