"""Checkpoints carry their config, never run code, and refuse what does not fit."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch

from sscodec.codec.checkpoint import CheckpointError, codec_payload, load_codec, save_codec
from sscodec.codec.config import preset
from sscodec.codec.model import Codec


def _model(name: str = "tiny") -> Codec:
    torch.manual_seed(0)
    return Codec(preset(name)).eval()


@pytest.mark.parametrize("folded", [False, True])
def test_round_trip_restores_the_same_outputs(tmp_path: Path, folded: bool) -> None:
    model = _model()
    if folded:
        model.fold_weight_norm()
    save_codec(model, tmp_path / "m.pt", step=7)
    loaded = load_codec(tmp_path / "m.pt").eval()
    assert loaded.config == model.config
    audio = 0.3 * torch.randn(1, 960)
    with torch.no_grad():
        torch.testing.assert_close(loaded(audio).audio, model(audio).audio, atol=0, rtol=0)


class _Exploit:
    def __reduce__(self):
        return (Path.touch, (Path("/tmp/codec-pwned-by-checkpoint"),))


def test_a_pickled_object_is_refused_without_running_it(tmp_path: Path) -> None:
    marker = Path("/tmp/codec-pwned-by-checkpoint")
    marker.unlink(missing_ok=True)
    payload = codec_payload(_model())
    payload["extra"] = _Exploit()
    path = tmp_path / "evil.pt"
    torch.save(payload, path, pickle_module=pickle)
    with pytest.raises(CheckpointError, match="refused"):
        load_codec(path)
    assert not marker.exists()


def test_mismatched_config_and_weights_are_clear_errors(tmp_path: Path) -> None:
    save_codec(_model("tiny"), tmp_path / "tiny.pt")
    with pytest.raises(CheckpointError, match="does not match"):
        load_codec(tmp_path / "tiny.pt", config=preset("small"))
    payload = codec_payload(_model("tiny"))
    payload["config"] = preset("small").to_dict()
    torch.save(payload, tmp_path / "lying.pt")
    with pytest.raises(CheckpointError, match="weights do not fit config"):
        load_codec(tmp_path / "lying.pt")


def test_missing_truncated_and_foreign_files(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_codec(tmp_path / "nope.pt")
    with pytest.raises(CheckpointError, match="is a directory"):
        load_codec(tmp_path)
    save_codec(_model(), tmp_path / "good.pt")
    data = (tmp_path / "good.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_codec(tmp_path / "cut.pt")
    torch.save({"weights": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a streaming-speech-codec/1 checkpoint"):
        load_codec(tmp_path / "other.pt")


def test_a_file_that_is_no_checkpoint_at_all_is_named_so(tmp_path: Path) -> None:
    # Found from outside: text passed as a checkpoint was "refused, it holds more than tensors ... (Unsupported
    # operand 103)", which reads like an attack rather than the wrong file.
    path = tmp_path / "notes.pt"
    path.write_text("garbage\n")
    with pytest.raises(CheckpointError) as error:
        load_codec(path)
    assert str(error.value) == f"{path}: not a codec checkpoint (not a file torch.save wrote)"
