"""ONNX Runtime's own profiler over the stream graphs: where a chunk's time goes, per operator type."""

from __future__ import annotations

import json
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np
import onnxruntime as ort

from sscodec.common.chunks import session_steps
from sscodec.stream.model_dir import stream_graph_paths
from sscodec.stream.runtime import RuntimeOptions, fixed_shape_options, open_session

PROFILE_CHUNKS = 300


def profile_stream_graphs(model_dir: Path, audio: np.ndarray, frame_size: int, chunk_frames: int = 1) -> dict:
    """Per graph: the share of kernel time per op type, and kernel time against the whole session.run, on the
    fixed-shape sessions codec-stream runs (one thread, all codebooks)."""
    encoder_path, decoder_path = stream_graph_paths(model_dir)
    samples = chunk_frames * frame_size
    x = audio[None, : PROFILE_CHUNKS * samples]
    with tempfile.TemporaryDirectory() as tmp:
        encoder = _profiled_session(encoder_path, (1, samples), Path(tmp) / "encoder")
        codes = np.concatenate([c for _, c in session_steps(encoder, x, samples)], axis=-1)
        decoder = _profiled_session(decoder_path, (1, codes.shape[1], chunk_frames), Path(tmp) / "decoder")
        for _ in session_steps(decoder, codes, chunk_frames):
            pass
        return {
            "chunks": PROFILE_CHUNKS,
            "chunk_frames": chunk_frames,
            "encoder_stream": _summarize(Path(encoder.end_profiling())),
            "decoder_stream": _summarize(Path(decoder.end_profiling())),
        }


def _profiled_session(path: Path, shape: tuple[int, ...], prefix: Path) -> ort.InferenceSession:
    """The session codec-stream runs for chunks of `shape` (fixed shape, 1 thread), with profiling on."""
    runtime = RuntimeOptions()
    options = fixed_shape_options(runtime, open_session(path, runtime), shape)
    options.enable_profiling = True
    options.profile_file_prefix = str(prefix)
    return open_session(path, runtime, options)


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
