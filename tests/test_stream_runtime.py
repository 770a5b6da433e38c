"""The runtime's fixed-shape sessions give the outputs of the sessions for any shape, stream after stream, and
serve exactly the chunks they were opened for (the engine's decoder chunks)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_stream_model import tiny_model  # noqa: F401 -- the fixture

from sscodec.common.chunks import session_steps
from sscodec.stream.engine import StreamEngine
from sscodec.stream.model_dir import DECODER_STREAM, ENCODER_STREAM
from sscodec.stream.runtime import RuntimeOptions, StreamGraph, StreamRunner, open_session

FRAME = 320


def _audio(frames: int) -> np.ndarray:
    return np.random.default_rng(frames).uniform(-0.5, 0.5, (1, frames * FRAME)).astype(np.float32)


def _plain(path: Path, x: np.ndarray, size: int) -> list[np.ndarray]:
    """Each chunk's output through plain session.run calls (the reference)."""
    return [output for _, output in session_steps(open_session(path, RuntimeOptions()), x, size)]


@pytest.mark.parametrize("fixed", [False, True])
def test_runner_equals_plain_runs_of_the_any_shape_session(tiny_model: Path, fixed: bool) -> None:  # noqa: F811
    audio = _audio(9)
    codes = np.concatenate(_plain(tiny_model / ENCODER_STREAM, audio, FRAME), axis=-1)[:, :5]
    for name, x, size, shape in (
        (ENCODER_STREAM, audio, FRAME, (1, FRAME)),
        (DECODER_STREAM, codes, 1, (1, 5, 1)),
    ):
        graph = StreamGraph(tiny_model / name, RuntimeOptions())
        if fixed:
            graph.fix_shape(shape)
        runner = StreamRunner(graph)
        expected = _plain(tiny_model / name, x, size)
        for reset in range(2):  # a second stream after reset starts from zero again
            got = [runner.run(x[..., i * size : (i + 1) * size]) for i in range(len(expected))]
            runner.reset()
            for one, other in zip(got, expected, strict=True):
                # Compared after the whole stream: no output may be a view that a later call overwrites.
                np.testing.assert_allclose(one, other, atol=1e-6, rtol=0)


def test_the_engine_decodes_its_chunks_on_a_fixed_shape_session_and_any_other_chunk_still_runs(
    tiny_model: Path,  # noqa: F811
) -> None:
    engine = StreamEngine(tiny_model, codebooks=5, chunk_frames=2)
    decoder = engine.model.decoder_graph
    assert decoder.session_for((1, 5, 2)).get_inputs()[0].shape == [1, 5, 2]
    # Other shapes (the last, shorter chunk of a file; another codebook count) and the encoder (no faster with a
    # fixed shape) get the sessions for any shape.
    assert decoder.session_for((1, 5, 1)) is decoder.session_for((1, 4, 2)) is engine.model.decoder
    assert engine.model.encoder_graph.session_for((1, 2 * FRAME)) is engine.model.encoder
    audio = _audio(7)[0]  # three chunks of 2 frames, then a last chunk of 1 frame
    streamed = np.concatenate([r.audio for r in engine.push(audio) + engine.flush()])
    codes = np.concatenate(_plain(tiny_model / ENCODER_STREAM, audio[None], 2 * FRAME), axis=-1)
    expected = np.concatenate(_plain(tiny_model / DECODER_STREAM, codes[:, :5], 2), axis=-1)[0]
    np.testing.assert_allclose(streamed, expected, atol=1e-6, rtol=0)
