"""Running the exported files with ONNX Runtime: whole signals, or chunk by chunk from a zero state."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence

import numpy as np
import onnxruntime as ort

from sscodec.common.chunks import session_steps
from sscodec.common.errors import first_line
from sscodec.export.errors import ExportError

CPU = ("CPUExecutionProvider",)
# A provider name, or (name, options) as ONNX Runtime takes them.
Provider = str | tuple[str, dict[str, str]]


def quiet_session(path: str | os.PathLike, providers: Sequence[Provider] = CPU) -> ort.InferenceSession:
    """An inference session on `providers`; quiet, since the exporter reports what matters itself. ExportError
    naming `path` for a file ONNX Runtime cannot load (found from outside: `--tables-only` on a damaged
    encoder_stream.onnx was a traceback)."""
    options = ort.SessionOptions()
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(os.fspath(path), options, providers=list(providers))
    # ONNX Runtime's pybind exceptions (InvalidProtobuf, Fail, NoSuchFile, ...) share no public base but Exception.
    except Exception as error:  # noqa: BLE001
        raise ExportError(f"{path}: not a loadable ONNX model ({first_line(error)})") from None


def run_offline(session: ort.InferenceSession, x: np.ndarray) -> np.ndarray:
    """The single output of encoder.onnx (audio → codes) or decoder.onnx (codes → audio)."""
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def stream_steps(
    session: ort.InferenceSession, x: np.ndarray, chunk_frames: int
) -> Iterator[tuple[dict[str, np.ndarray], np.ndarray]]:
    """Feed a stream graph `chunk_frames` frames at a time from a zero state: yields (inputs, output).

    `x` is audio [B, T] (T a multiple of frame_size) for encoder_stream or codes [B, Q, F] for decoder_stream.
    """
    per_frame = session.get_inputs()[0].name == "audio"
    frame_size = int(session.get_modelmeta().custom_metadata_map["frame_size"]) if per_frame else 1
    return session_steps(session, x, chunk_frames * frame_size)


def run_stream(session: ort.InferenceSession, x: np.ndarray, chunk_frames: int) -> np.ndarray:
    """A stream graph's output over all of `x`, fed `chunk_frames` frames at a time, joined in time."""
    return np.concatenate([output for _, output in stream_steps(session, x, chunk_frames)], axis=-1)


def run_graph(session: ort.InferenceSession, x: np.ndarray, chunk_frames: int = 1) -> np.ndarray:
    """Any of the four graphs over all of `x`; stream graphs (those with a state input) go chunk by chunk."""
    if len(session.get_inputs()) == 2:
        return run_stream(session, x, chunk_frames)
    return run_offline(session, x)
