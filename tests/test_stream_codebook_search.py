"""A sender of k codebooks runs an encoder graph that searches only those (stream/codebook_search.py): the same
codes and state as the whole graph, with the other codebooks' search gone."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import soundfile as sf
from onnx import TensorProto, helper
from test_stream_model import copy_model, tiny_model  # noqa: F401 -- the fixture

from sscodec.common.bundled import BUNDLED_MODEL_DIR, EXAMPLE_CLIP
from sscodec.stream.codebook_search import search_only
from sscodec.stream.encoder import StreamEncoder
from sscodec.stream.model import CodecModel
from sscodec.stream.runtime import StreamRunner


def _ops(graph: onnx.GraphProto, op_type: str) -> int:
    return sum(node.op_type == op_type for node in graph.node)


@pytest.mark.parametrize("codebooks", [1, 2, 6, 11, 12])
def test_the_cut_graph_gives_the_whole_graphs_first_codes_and_state_chunk_by_chunk(codebooks: int) -> None:
    model = CodecModel(BUNDLED_MODEL_DIR)
    frame = model.info.frame_size
    speech, _ = sf.read(EXAMPLE_CLIP, dtype="float32", frames=40 * frame)
    whole, cut = StreamRunner(model.encoder_graph), StreamRunner(model.encoder_graph_for(codebooks))
    start = 0
    for frames in [1, 3, 1, 2, 8, 1, 5, 4, 1, 1, 2, 3, 4, 1, 3]:  # 40 frames in chunks of mixed sizes
        chunk = speech[None, start : start + frames * frame]
        start += frames * frame
        codes = cut.run(chunk)
        assert codes.shape == (1, codebooks, frames)
        np.testing.assert_array_equal(codes, whole.run(chunk)[:, :codebooks])
        np.testing.assert_array_equal(cut._state, whole._state)


def test_the_cut_graph_drops_the_other_codebooks_search_and_tables() -> None:
    path = BUNDLED_MODEL_DIR / "encoder_stream.onnx"
    full = onnx.load(path)
    cut = search_only(full, 6)
    n = int(next(p.value for p in full.metadata_props if p.key == "n_codebooks"))
    assert (_ops(full.graph, "ArgMax"), _ops(cut.graph, "ArgMax")) == (n, 6)
    assert cut.ByteSize() < full.ByteSize() * 0.85  # six of twelve search tables (a quarter MiB each) are gone
    assert cut.metadata_props == full.metadata_props  # the contract metadata and fingerprint travel
    assert _ops(full.graph, "ArgMax") == n  # the model given is left as it was
    with pytest.raises(ValueError, match="codebooks must be in 1..12"):
        search_only(full, 13)


def test_a_sender_runs_the_cut_graph_and_each_count_is_opened_once(tiny_model: Path) -> None:  # noqa: F811
    model = CodecModel(tiny_model)
    encoder = StreamEncoder(model, 2)
    assert encoder._stream.graph is model.encoder_graph_for(2)
    assert model.encoder_graph_for(model.info.n_codebooks) is model.encoder_graph
    assert _ops(onnx.load_from_string(model.encoder_graph_for(2)._model).graph, "ArgMax") == 2
    audio = np.random.default_rng(0).standard_normal(4 * model.info.frame_size).astype(np.float32) * 0.1
    whole = StreamRunner(model.encoder_graph).run(audio[None])
    np.testing.assert_array_equal(encoder.encode_codes(audio), whole[0, :2])
    with pytest.raises(ValueError, match="codebooks must be in 1.."):
        model.encoder_graph_for(0)


def test_a_graph_whose_codes_are_not_a_concat_of_searches_runs_whole(
    tiny_model: Path, tmp_path: Path  # noqa: F811
) -> None:
    directory = copy_model(tiny_model, tmp_path / "model")
    path = directory / "encoder_stream.onnx"
    graph = onnx.load(path)
    node = next(node for node in graph.graph.node if "codes" in node.output)
    node.output[0] = "concatenated"  # codes now come through an Identity: nothing to cut
    graph.graph.node.append(helper.make_node("Identity", ["concatenated"], ["codes"]))
    onnx.save(graph, path)
    assert search_only(graph, 1) is None
    model = CodecModel(directory)
    assert model.encoder_graph_for(1) is model.encoder_graph
    assert StreamEncoder(model, 1).encode_codes(np.zeros(model.info.frame_size, np.float32)).shape == (1, 1)
    assert TensorProto.INT64 == graph.graph.output[0].type.tensor_type.elem_type
