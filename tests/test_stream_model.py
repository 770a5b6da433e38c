"""The exported tiny model the stream tests run on, and the runtime's checks of a model directory."""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

import onnx
import pytest

from sscodec.common.errors import ModelError
from sscodec.stream.engine import StreamEngine
from sscodec.stream.model import CodecModel
from sscodec.stream.model_dir import DECODER_STREAM, ENCODER_STREAM, resolve_model_dir


@functools.lru_cache(maxsize=1)
def export_tiny_model() -> Path:
    """The four ONNX files of `tiny` with seed-0 random weights, exported once per test process."""
    import torch

    from sscodec.codec.config import preset
    from sscodec.codec.model import Codec
    from sscodec.export.onnx_export import export_codec

    out = Path(tempfile.mkdtemp(prefix="stream-tiny-onnx-"))
    atexit.register(shutil.rmtree, out, True)
    torch.manual_seed(0)
    export_codec(Codec(preset("tiny")), out)
    return out


@pytest.fixture(scope="session")
def tiny_model() -> Path:
    return export_tiny_model()


def copy_model(source: Path, target: Path) -> Path:
    target.mkdir()
    for name in ("encoder.onnx", "decoder.onnx", ENCODER_STREAM, DECODER_STREAM):
        shutil.copy(source / name, target / name)
    return target


def test_reads_the_contract_metadata(tiny_model: Path) -> None:
    info = StreamEngine(tiny_model).info
    assert (info.sample_rate, info.frame_size, info.n_codebooks, info.codebook_size) == (16000, 320, 12, 1024)
    assert info.encoder_state_size > 0 and info.decoder_state_size > 0
    assert info.codec_config["preset"] == "tiny" and info.bits_per_code == 10 and info.frame_ms == 20.0


def test_no_model_given_means_the_bundled_default_or_a_clear_error() -> None:
    from sscodec.stream import model_dir

    if model_dir.BUNDLED_MODEL_DIR.is_dir():
        assert resolve_model_dir(None) == model_dir.BUNDLED_MODEL_DIR
    else:
        with pytest.raises(ModelError, match="pass --model DIR"):
            resolve_model_dir(None)
    assert resolve_model_dir("some/dir") == Path("some/dir")


def test_missing_directory_and_missing_graph(tiny_model: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="model directory not found"):
        StreamEngine(tmp_path / "nope")
    model = copy_model(tiny_model, tmp_path / "m")
    (model / DECODER_STREAM).unlink()
    with pytest.raises(ModelError, match=f"{DECODER_STREAM}: missing"):
        StreamEngine(model)


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty"])
def test_corrupt_graph_is_one_clear_error(tiny_model: Path, tmp_path: Path, damage: str) -> None:
    model = copy_model(tiny_model, tmp_path / "m")
    path = model / ENCODER_STREAM
    data = path.read_bytes()
    path.write_bytes({"garbage": b"\x00not onnx" * 100, "truncated": data[: len(data) // 2], "empty": b""}[damage])
    with pytest.raises(ModelError, match=f"{ENCODER_STREAM}: not a loadable ONNX model") as caught:
        StreamEngine(model)
    assert "\n" not in str(caught.value)


def test_wrong_graph_in_place_of_a_stream_graph(tiny_model: Path, tmp_path: Path) -> None:
    model = copy_model(tiny_model, tmp_path / "m")
    shutil.copy(model / "encoder.onnx", model / ENCODER_STREAM)  # the offline graph: no state input
    with pytest.raises(ModelError, match="expected \\['audio', 'state'\\]"):
        StreamEngine(model)


@pytest.mark.parametrize(("key", "value", "message"), [("state_size", None, "lacks 'state_size'"),
                                                       ("frame_size", "abc", "not an integer"),
                                                       ("codebook_size", "512", "disagree on codebook_size"),
                                                       ("codec_config", '{"preset": "small"}', "different models"),
                                                       ("state_size", "5", "state_size=5 but the graph's state")])
def test_bad_metadata(tiny_model: Path, tmp_path: Path, key: str, value: str | None, message: str) -> None:
    model = copy_model(tiny_model, tmp_path / "m")
    proto = onnx.load(model / DECODER_STREAM)
    props = [p for p in proto.metadata_props if p.key != key]
    del proto.metadata_props[:]
    proto.metadata_props.extend(props)
    if value is not None:
        proto.metadata_props.add(key=key, value=value)
    onnx.save(proto, model / DECODER_STREAM)
    with pytest.raises(ModelError, match=message):
        StreamEngine(model)


def test_a_receivers_folder_of_graphs_without_a_fingerprint_asks_for_the_encoder(tiny_model: Path,
                                                                                 tmp_path: Path) -> None:
    # Found by review: such graphs are named by a hash of both files, and the advice given was to export again
    # (which would name them anew, so no old file would decode).
    model = copy_model(tiny_model, tmp_path / "m")
    for name in (ENCODER_STREAM, DECODER_STREAM):
        proto = onnx.load(model / name)
        props = [p for p in proto.metadata_props if p.key != "codec_fingerprint"]
        del proto.metadata_props[:]
        proto.metadata_props.extend(props)
        onnx.save(proto, model / name)
    whole = CodecModel(model).fingerprint
    assert CodecModel(model, decode_only=True).fingerprint == whole
    (model / ENCODER_STREAM).unlink()
    with pytest.raises(ModelError) as raised:
        _ = CodecModel(model, decode_only=True).fingerprint
    assert str(raised.value) == (f"{model / DECODER_STREAM} was exported before codec-export stamped a fingerprint, "
                                 f"so this model is named by both graphs: copy its {ENCODER_STREAM} too")
