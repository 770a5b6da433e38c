"""export_codec: the four ONNX files match docs/CONTRACTS.md's table and PyTorch, offline and chunk by chunk."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from sscodec.codec.config import CodecConfig, preset
from sscodec.codec.model import Codec
from sscodec.common.audio import audio_files_below
from sscodec.export.calibration import load_clips
from sscodec.export.errors import UnsupportedConfigError
from sscodec.export.graphs import graph_specs
from sscodec.export.onnx_export import DEFAULT_OPSET, ExportResult, export_codec, export_graph
from sscodec.export.parity import (
    TOLERANCE,
    compare_audio,
    compare_codes,
    reference_audio,
    reference_codes,
    verify_export,
)
from sscodec.export.runtime import quiet_session, run_graph

GRAPHS = ("encoder", "decoder", "encoder_stream", "decoder_stream")
SIGNATURES = {  # docs/CONTRACTS.md's ONNX table: (name, element type, shape) of inputs, then of outputs
    "encoder": ([("audio", "float", ["batch", "320*frames"])], [("codes", "int64", ["batch", 12, "frames"])]),
    "decoder": ([("codes", "int64", ["batch", "codebooks", "frames"])], [("audio", "float", ["batch", "320*frames"])]),
    "encoder_stream": (
        [("audio", "float", ["batch", "320*frames"]), ("state", "float", ["batch", "S"])],
        [("codes", "int64", ["batch", 12, "frames"]), ("next_state", "float", ["batch", "S"])],
    ),
    "decoder_stream": (
        [("codes", "int64", ["batch", "codebooks", "frames"]), ("state", "float", ["batch", "S"])],
        [("audio", "float", ["batch", "320*frames"]), ("next_state", "float", ["batch", "S"])],
    ),
}


def _model(name: str) -> Codec:
    torch.manual_seed(0)
    return Codec(preset(name)).eval()


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> tuple[Codec, ExportResult]:
    model = _model("tiny")
    probe = torch.randn(1, 3200)
    before = model.encode(probe)
    result = export_codec(model, tmp_path_factory.mktemp("tiny_onnx"))
    # export_codec folds weight norm on its own copy: the caller's model still trains and gives the same codes.
    assert any(torch.nn.utils.parametrize.is_parametrized(m) for m in model.modules())
    assert torch.equal(model.encode(probe), before)
    return model.fold_weight_norm(), result


@pytest.fixture(scope="module")
def sessions(exported) -> dict[str, ort.InferenceSession]:
    return {name: quiet_session(exported[1].paths[name]) for name in GRAPHS}


@pytest.fixture(scope="module")
def speech(telugu_val) -> list[np.ndarray]:
    """Four real clips of whole frames, 2 to 5 s each."""
    clips = load_clips(audio_files_below(telugu_val), 16_000, 320, max_clips=4, max_seconds=5.0)
    assert len(clips) == 4 and all(len(clip) >= 320 for clip in clips)
    return clips


@pytest.fixture(scope="module")
def ten_seconds(speech) -> np.ndarray:
    """[2, T ≥ 10 s]: the clips joined, and white noise, as one batch."""
    voice = np.concatenate(speech * 4)[: 10 * 16_000 + 320 * 7]
    noise = 0.3 * np.random.default_rng(3).standard_normal(voice.size).astype(np.float32)
    return np.stack([voice, noise])


def _random_signals() -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    return [(scale * rng.standard_normal((batch, 320 * frames))).astype(np.float32)
            for batch, frames, scale in [(1, 1, 0.5), (3, 37, 0.1), (2, 64, 1.0)]]


def test_writes_exactly_four_self_contained_files(exported) -> None:
    _, result = exported
    assert sorted(p.name for p in result.out_dir.iterdir()) == sorted(f"{name}.onnx" for name in GRAPHS)
    assert result.opset == DEFAULT_OPSET
    for name in GRAPHS:
        model = onnx.load(result.paths[name], load_external_data=False)
        assert not any(t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer)
        assert {op.domain: op.version for op in model.opset_import}[""] == DEFAULT_OPSET
        onnx.checker.check_model(model, full_check=True)


@pytest.mark.parametrize("name", GRAPHS)
def test_inputs_and_outputs_follow_the_contract(exported, name: str) -> None:
    model, result = exported
    graph = onnx.load(result.paths[name]).graph
    state = {"encoder_stream": model.encoder_state_size, "decoder_stream": model.decoder_state_size}.get(name)

    def described(values) -> list[tuple[str, str, list]]:
        return [
            (
                v.name,
                onnx.helper.tensor_dtype_to_np_dtype(v.type.tensor_type.elem_type).name.replace("float32", "float"),
                [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim],
            )
            for v in values
        ]

    inputs, outputs = SIGNATURES[name]
    expected = [(n, t, [state if a == "S" else a for a in shape]) for n, t, shape in inputs + outputs]
    assert described(graph.input) + described(graph.output) == expected


@pytest.mark.parametrize("name", GRAPHS)
def test_metadata_agrees_with_config(exported, sessions, name: str) -> None:
    model, _ = exported
    config = model.config
    meta = sessions[name].get_modelmeta().custom_metadata_map
    assert CodecConfig.from_json(meta["codec_config"]) == config
    assert meta["codec_config"] == config.to_json()
    assert int(meta["sample_rate"]) == config.sample_rate == 16_000
    assert int(meta["frame_size"]) == config.frame_size == 320
    assert int(meta["n_codebooks"]) == config.n_codebooks
    assert int(meta["codebook_size"]) == config.codebook_size
    assert meta["precision"] == "fp32"
    if name.endswith("_stream"):
        part = "encoder" if name.startswith("encoder") else "decoder"
        assert int(meta["state_size"]) == model.initial_state(1, part).shape[1]
    else:
        assert "state_size" not in meta


def test_export_reports_parity(exported) -> None:
    _, result = exported
    assert set(result.max_abs_error) == {"decoder", "decoder_stream"}
    assert all(error <= TOLERANCE for error in result.max_abs_error.values())
    assert set(result.code_mismatches) == {"encoder", "encoder_stream"}


def test_offline_graphs_match_pytorch_on_speech_and_random_signals(exported, sessions, speech) -> None:
    model, _ = exported
    signals = [clip[None] for clip in speech] + _random_signals()
    for audio in signals:
        codes = run_graph(sessions["encoder"], audio)
        compare_codes(model, audio, codes, "encoder.onnx")  # equal, or differs only at an exact tie
        expected = reference_codes(model, audio)
        compare_audio(reference_audio(model, expected), run_graph(sessions["decoder"], expected), "decoder.onnx")


@pytest.mark.parametrize("chunk_frames", [1, 2, 5])
def test_stream_graphs_equal_offline_graphs_over_ten_seconds(
    exported, sessions, ten_seconds, chunk_frames: int
) -> None:
    model, _ = exported
    offline_codes = run_graph(sessions["encoder"], ten_seconds)
    stream_codes = run_graph(sessions["encoder_stream"], ten_seconds, chunk_frames)
    assert stream_codes.shape == offline_codes.shape == (2, 12, ten_seconds.shape[1] // 320)
    # Both equal PyTorch's codes except at exact ties, hence each other.
    compare_codes(model, ten_seconds, offline_codes, "encoder.onnx")
    compare_codes(model, ten_seconds, stream_codes, "encoder_stream.onnx")
    offline_audio = run_graph(sessions["decoder"], offline_codes)
    stream_audio = run_graph(sessions["decoder_stream"], offline_codes, chunk_frames)
    compare_audio(offline_audio, stream_audio, f"decoder_stream.onnx, {chunk_frames} frames per call")


def test_every_codebook_count_decodes(exported, sessions, speech) -> None:
    model, _ = exported
    audio = speech[0][None, : 320 * 20]
    codes = reference_codes(model, audio)
    for q in range(1, 13):
        expected = reference_audio(model, codes[:, :q])
        assert expected.shape == (1, 320 * 20)
        compare_audio(expected, run_graph(sessions["decoder"], codes[:, :q]), f"decoder.onnx Q={q}")
        compare_audio(expected, run_graph(sessions["decoder_stream"], codes[:, :q], 3), f"decoder_stream Q={q}")


def test_small_preset_decoder_matches_pytorch(tmp_path: Path, speech) -> None:
    model = _model("small").fold_weight_norm()
    spec = next(spec for spec in graph_specs(model) if spec.name == "decoder")
    session = quiet_session(export_graph(spec, tmp_path / spec.file_name, DEFAULT_OPSET, model.config, "0" * 64))
    for audio in (speech[1][None], _random_signals()[1]):
        codes = reference_codes(model, audio)
        for q in (1, 7, 12):
            compare_audio(reference_audio(model, codes[:, :q]), run_graph(session, codes[:, :q]), f"small Q={q}")


@pytest.mark.parametrize(
    "config, opset",
    [(CodecConfig(channels=8, latent_dim=32, n_codebooks=1), None), (preset("tiny"), 13)],
)
def test_unsupported_config_or_opset_is_refused_before_any_work(tmp_path: Path, config, opset) -> None:
    with pytest.raises(UnsupportedConfigError):
        export_codec(Codec(config), tmp_path / "out", opset=opset)
    assert not (tmp_path / "out").exists()


def _cuda_provider(path: Path) -> tuple[str, dict[str, str]]:
    """The CUDA provider, or a skip with the reason it cannot run here."""
    cuda = ("CUDAExecutionProvider", {"use_tf32": "0"})  # TF32 convolutions would not hold 1e-4
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        pytest.skip("this onnxruntime build has no CUDAExecutionProvider")
    # Without a device or its libraries, ONNX Runtime falls back to the CPU instead of failing.
    if "CUDAExecutionProvider" not in quiet_session(path, [cuda, "CPUExecutionProvider"]).get_providers():
        pytest.skip("CUDAExecutionProvider is built in but cannot start here (no CUDA device or libraries)")
    return cuda


@pytest.mark.cuda
def test_cuda_provider_parity(exported, ten_seconds) -> None:
    model, result = exported
    cuda = _cuda_provider(result.paths["decoder"])
    _, errors = verify_export(model, result.paths, ten_seconds, providers=[cuda], chunk_frames=(1, 2, 5))
    assert all(error <= TOLERANCE for error in errors.values())


def test_quantizing_prints_no_advice(exported, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # Found from outside: onnxruntime.quantization's "consider pre-processing" warnings, twice per decoder graph,
    # on the stderr of codec-bench latency (which, unlike codec-export, leaves logging as it is).
    from sscodec.export.int8 import quantize_int8

    model, result = exported
    codes = model.encode(torch.randn(1, 3200)).numpy()
    quantize_int8(result.paths["decoder"], tmp_path / "decoder.onnx", [{"codes": codes}])
    assert "QuantizeLinear" in {node.op_type for node in onnx.load(tmp_path / "decoder.onnx").graph.node}
    assert not [record.getMessage() for record in caplog.records if "quantization" in record.getMessage()]
