"""ONNX Runtime's own profiler over the stream graphs: where a chunk's time goes, per operator type."""

from __future__ import annotations

import json
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np
import onnxruntime as ort

from sscodec.stream.model_dir import stream_graph_paths
from sscodec.stream.runtime import RuntimeOptions, session_options

PROFILE_CHUNKS = 300


def profile_stream_graphs(model_dir: Path, audio: np.ndarray, frame_size: int, chunk_frames: int = 1) -> dict:
    """Per graph: the share of kernel time per op type, and kernel time against the whole session.run."""
    encoder_path, decoder_path = stream_graph_paths(model_dir)
    with tempfile.TemporaryDirectory() as tmp:
        encoder = _profiled_session(encoder_path, Path(tmp) / "encoder")
        decoder = _profiled_session(decoder_path, Path(tmp) / "decoder")
        enc_state = np.zeros((1, encoder.get_inputs()[1].shape[1]), np.float32)
        dec_state = np.zeros((1, decoder.get_inputs()[1].shape[1]), np.float32)
        step = chunk_frames * frame_size
        for i in range(PROFILE_CHUNKS):
            x = audio[None, i * step : (i + 1) * step]
            codes, enc_state = encoder.run(None, {"audio": x, "state": enc_state})
            _, dec_state = decoder.run(None, {"codes": codes, "state": dec_state})
        return {
            "chunks": PROFILE_CHUNKS,
            "chunk_frames": chunk_frames,
            "encoder_stream": _summarize(Path(encoder.end_profiling())),
            "decoder_stream": _summarize(Path(decoder.end_profiling())),
        }


def _profiled_session(path: Path, prefix: Path) -> ort.InferenceSession:
    """The same session settings codec-stream uses (1 thread), with profiling on."""
    options = session_options(RuntimeOptions())
    options.enable_profiling = True
    options.profile_file_prefix = str(prefix)
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _summarize(trace: Path) -> dict:
    """Kernel microseconds per op type (largest first) and their share of the model_run time."""
    events = json.loads(trace.read_text())
    per_op: dict[str, float] = defaultdict(float)
    nodes: dict[str, int] = defaultdict(int)
    run_us = 0.0
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            per_op[event["args"]["op_name"]] += event["dur"]
            nodes[event["args"]["op_name"]] += 1
        elif event.get("cat") == "Session" and event["name"] == "model_run":
            run_us += event["dur"]
    kernel_us = sum(per_op.values())
    ops = sorted(per_op.items(), key=lambda item: -item[1])
    return {
        "model_run_us": run_us,
        "kernel_us": kernel_us,
        "kernel_share_of_run": kernel_us / run_us if run_us else None,
        "ops": [{"op": op, "share": us / kernel_us, "us": us, "calls": nodes[op]} for op, us in ops],
    }
