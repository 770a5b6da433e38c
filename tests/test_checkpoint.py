"""Checkpoints carry their config, never run code, and refuse what does not fit."""

from __future__ import annotations

import pickle
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from sscodec.codec.checkpoint import CheckpointError, codec_payload, load_codec, save_codec
from sscodec.codec.config import preset
from sscodec.codec.model import Codec
from tests.conftest import TELUGU_VAL


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
    # Found from outside: the refusal printed both whole configs as JSON; it names the fields that differ.
    with pytest.raises(CheckpointError) as refused:
        load_codec(tmp_path / "tiny.pt", config=preset("small"))
    tiny, small = preset("tiny"), preset("small")
    assert str(refused.value) == (f"{tmp_path / 'tiny.pt'}: a codec configured unlike the one expected (channels "
                                  f"{tiny.channels}, not {small.channels}; latent_dim {tiny.latent_dim}, not "
                                  f"{small.latent_dim})"), refused.value
    # The preset's name alone is no difference.
    assert isinstance(load_codec(tmp_path / "tiny.pt", config=replace(tiny, preset="custom")), Codec)
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


def test_weights_that_are_not_finite_are_refused_by_every_command_that_loads_them(tmp_path: Path) -> None:
    # Found from outside: bytes overwritten inside a checkpoint made NaN weights; codec-export blamed its own graph
    # ("decoder.onnx: max abs error nan against PyTorch") and codec-train --init_from trained from them silently.
    payload = codec_payload(_model())
    name = next(key for key, value in payload["model"].items() if value.is_floating_point() and value.numel() > 3)
    payload["model"][name].view(-1)[:3] = torch.tensor([float("nan"), float("inf"), 0.5])
    path = tmp_path / "damaged.pt"
    torch.save(payload, path)
    message = f"{path}: 2 weights are not finite (a corrupt file, or a run that diverged)"
    with pytest.raises(CheckpointError) as refused:
        load_codec(path)
    assert str(refused.value) == message
    bin_dir = Path(sys.executable).parent
    for command in (["codec-export", "--onnx", "--checkpoint", str(path), "--out", str(tmp_path / "export")],
                    ["codec-train", "--init_from", str(path), "--data_dir", str(TELUGU_VAL), "--preset", "tiny",
                     "--checkpoint_dir", str(tmp_path / "run"), "--max_steps", "1", "--device", "cpu"]):
        done = subprocess.run([str(bin_dir / command[0]), *command[1:]], capture_output=True, text=True, timeout=300,
                              check=False)
        assert done.returncode != 0 and done.stderr.strip().splitlines()[-1].endswith(message), done.stderr
        assert "Traceback" not in done.stderr
    assert not (tmp_path / "export").exists() and not (tmp_path / "run").exists()
