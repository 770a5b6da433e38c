"""Where a streamed 1-frame chunk's time goes, against the offline graphs' cost per frame, measured in one run.

Per stream graph, the cost of one call is fitted over chunks of 1, 2, 4 and 8 frames (fixed-shape sessions, one
thread, interleaved rounds, medians of thread CPU time) as a fixed cost per call plus a cost per frame. The fixed
cost is then split with three floors measured on the same machine in the same run:

- a `session.run` that does nothing (Identity graphs with the stream graph's inputs and outputs);
- node dispatch: a chain of Add nodes on one value, per node, times the graph's node count after ONNX Runtime's
  optimisation (what it runs);
- weight streaming: every Conv, ConvTranspose, MatMul and Gemm weight is read once per call, whatever the chunk,
  where the offline graphs read it once per clip; timed as one-row MatMuls over tables of the same total size.

What is left ("the rest") is everything else a short call costs more than a long one: small-kernel set-up,
layout reorders, copies. The floor ratio is what streaming would cost over offline with fp32 weights read every
call and nothing else per call: offline per frame + weights + run floors, over offline per frame.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from sscodec.common.chunks import chunks
from sscodec.stream.engine import StreamEngine
from sscodec.stream.model_dir import stream_graph_paths
from sscodec.stream.runtime import (
    RuntimeOptions,
    StreamGraph,
    StreamRunner,
    fixed_shape_options,
    open_session,
    session_options,
)

CHUNK_FRAMES = (1, 2, 4, 8)
ROUNDS = 7
FRAMES = 200  # at most, per round and way: 4 s of audio at 20 ms frames
DISPATCH_CHAIN = 200
TABLE_ROWS = 256  # weight-streaming probe: one-row MatMuls over [256, 256] float32 tables (256 KiB each)
WEIGHT_OPS = {"Conv", "ConvTranspose", "MatMul", "Gemm"}  # NCHWc convs keep the op type Conv


def stream_cost(model_dir: Path, offline_dir: Path | None, audio: np.ndarray, rounds: int = ROUNDS) -> dict:
    """The breakdown described above for the stream graphs in `model_dir` on the first FRAMES frames of `audio`
    (mono float32 at the model's rate); µs per frame, per graph and for encode + decode.

    Without offline graphs (`offline_dir` None) the offline rows, the floor ratio and the split are left out.
    """
    engine = StreamEngine(model_dir, chunk_frames=1)
    info = engine.info
    frames = min(FRAMES, audio.size // info.frame_size)
    clip = np.ascontiguousarray(audio[: frames * info.frame_size], dtype=np.float32)
    codes = np.concatenate([engine.encoder.encode_codes(c)[None] for c in chunks(clip, info.frame_size)], axis=-1)
    encoder_path, decoder_path = stream_graph_paths(model_dir)
    graphs = {"encoder_stream": (encoder_path, clip[None]), "decoder_stream": (decoder_path, codes)}
    ways: dict[str, Callable[[], None]] = {}
    steps = {"encoder_stream": info.frame_size, "decoder_stream": 1}
    runners = {}
    for name, (path, x) in graphs.items():
        for k in CHUNK_FRAMES:
            runners[name, k] = _runner(path, x, k * steps[name])
            ways[f"{name} {k}"] = _stream_way(runners[name, k], x, k * steps[name])
        ways[f"{name} run floor"] = _repeat(_run_floor(path, x[..., : steps[name]]), frames)
    ways["pair"] = lambda: _pair_pass(runners["encoder_stream", 1], runners["decoder_stream", 1], clip, codes)
    if offline_dir is not None:
        offline = {n: open_session(offline_dir / f"{n}.onnx", RuntimeOptions()) for n in ("encoder", "decoder")}
        ways["encoder offline"] = lambda: offline["encoder"].run(None, {"audio": clip[None]})
        ways["decoder offline"] = lambda: offline["decoder"].run(None, {"codes": codes})
    ways["engine"] = lambda: _engine_pass(engine, clip)
    ways["dispatch chain"] = _repeat(_dispatch_chain(DISPATCH_CHAIN), frames)
    ways["dispatch empty"] = _repeat(_dispatch_chain(0), frames)
    optimised = {name: _optimised(path, x[..., : steps[name]]) for name, (path, x) in graphs.items()}
    weight_bytes = {name: _weight_bytes(model) for name, model in optimised.items()}
    tables = {name: max(1, round(size / (TABLE_ROWS * TABLE_ROWS * 4))) for name, size in weight_bytes.items()}
    for name, count in tables.items():
        ways[f"{name} weights"] = _repeat(_weight_probe(count), frames)
    us = _interleaved(ways, rounds)
    empty_call = us["dispatch empty"] / frames
    dispatch_us = (us["dispatch chain"] / frames - empty_call) / DISPATCH_CHAIN
    result: dict = {"frames": frames, "rounds": rounds, "dispatch_us_per_node": dispatch_us, "graphs": {}}
    for name, (path, _) in graphs.items():
        per_call = [us[f"{name} {k}"] / (frames // k) for k in CHUNK_FRAMES]
        per_frame, fixed = np.polyfit(CHUNK_FRAMES, per_call, 1)
        nodes = len(optimised[name].graph.node)
        # The probe's own MatMul and Concat nodes are dispatch, not weight streaming.
        weights_us = max(us[f"{name} weights"] / frames - empty_call - (tables[name] + 1) * dispatch_us, 0.0)
        row = {
            "one_frame_call_us": per_call[0],
            "per_call_us_by_chunk": dict(zip(map(str, CHUNK_FRAMES), per_call, strict=True)),
            "fit_fixed_us_per_call": float(fixed),
            "fit_us_per_frame": float(per_frame),
            "nodes_after_optimisation": nodes,
            "weight_bytes_per_call": weight_bytes[name],
            "split_us": {
                "run_floor": us[f"{name} run floor"] / frames,
                "node_dispatch": nodes * dispatch_us,
                "weight_streaming": weights_us,
            },
        }
        offline_name = name.removesuffix("_stream") + " offline"
        if offline_name in us:
            row["offline_us_per_frame"] = us[offline_name] / frames
        result["graphs"][name] = row
    result["pair_us_per_frame"] = us["pair"] / frames
    result["engine_us_per_frame"] = us["engine"] / frames
    if offline_dir is not None:
        result["summary"] = _summary(result)
    return result


def _summary(result: dict) -> dict:
    """Encode + decode per 1-frame chunk (codec-stream's path), as offline per frame plus each extra; the floor
    ratio."""
    graphs = result["graphs"].values()
    offline = sum(g["offline_us_per_frame"] for g in graphs)
    split = {key: sum(g["split_us"][key] for g in graphs) for key in next(iter(graphs))["split_us"]}
    per_frame_work = sum(g["fit_us_per_frame"] for g in graphs)
    calls = sum(g["one_frame_call_us"] for g in graphs)
    parts = {
        "offline_per_frame": offline,
        "per_frame_work_beyond_offline": per_frame_work - offline,
        **split,
        "rest_of_the_fixed_cost": calls - per_frame_work - sum(split.values()),
        # Each graph alone keeps more of its weights and pages cached than encode and decode taking turns.
        "taking_turns": result["pair_us_per_frame"] - calls,
        "engine": result["engine_us_per_frame"] - result["pair_us_per_frame"],
    }
    streamed = result["engine_us_per_frame"]
    return {
        "us": parts,
        "streamed_us_per_frame": streamed,
        "stream_over_offline": streamed / offline,
        "floor_ratio": (offline + split["weight_streaming"] + split["run_floor"]) / offline,
    }


def _interleaved(ways: dict[str, Callable[[], object]], rounds: int) -> dict[str, float]:
    """Median thread-CPU µs of each way over `rounds` rounds, every way once per round; a first round warms up."""
    times: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(rounds + 1):
        for name, way in ways.items():
            started = time.thread_time()
            way()
            times[name].append((time.thread_time() - started) * 1e6)
    return {name: statistics.median(values[1:]) for name, values in times.items()}


def _runner(path: Path, x: np.ndarray, size: int) -> StreamRunner:
    """A stream on a fixed-shape session for chunks of `size` columns of `x`."""
    graph = StreamGraph(path, RuntimeOptions())
    graph.fix_shape((*x.shape[:-1], size))
    return StreamRunner(graph)


def _stream_way(runner: StreamRunner, x: np.ndarray, size: int) -> Callable[[], None]:
    """A fresh stream over `x`, `size` columns per call."""

    def run() -> None:
        runner.reset()
        for start in range(0, x.shape[-1] - size + 1, size):
            runner.run(x[..., start : start + size])

    return run


def _pair_pass(encoder: StreamRunner, decoder: StreamRunner, clip: np.ndarray, codes: np.ndarray) -> None:
    """Both graphs taking turns one frame at a time, as codec-stream runs them, without packets."""
    encoder.reset()
    decoder.reset()
    for f, chunk in enumerate(chunks(clip[None], clip.size // codes.shape[-1])):
        encoder.run(chunk)
        decoder.run(codes[..., f : f + 1])


def _engine_pass(engine: StreamEngine, clip: np.ndarray) -> None:
    engine.reset()
    for chunk in chunks(clip, engine.info.frame_size):
        engine.process_chunk(chunk)


def _repeat(call: Callable[[], object], times: int) -> Callable[[], None]:
    """`call`, `times` times in a row."""

    def run() -> None:
        for _ in range(times):
            call()

    return run


def _run_floor(path: Path, first: np.ndarray) -> Callable[[], object]:
    """One call of a graph that copies the stream graph's inputs to outputs of the same shapes and types."""
    session = open_session(path, RuntimeOptions())
    inputs = session.get_inputs()
    state = np.zeros((1, inputs[1].shape[1]), dtype=np.float32)
    names = [i.name for i in inputs]
    feeds = dict(zip(names, (first, state), strict=True))
    values = [helper.make_tensor_value_info(n, _onnx_type(v), list(v.shape)) for n, v in feeds.items()]
    outputs = [helper.make_tensor_value_info(f"{n}_out", _onnx_type(v), list(v.shape)) for n, v in feeds.items()]
    nodes = [helper.make_node("Identity", [n], [f"{n}_out"]) for n in names]
    floor = _session(helper.make_graph(nodes, "run_floor", values, outputs))
    return lambda: floor.run(None, feeds)


def _dispatch_chain(length: int) -> Callable[[], object]:
    """One call of a chain of `length` Add nodes on one float (0: a single Identity)."""
    one = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    nodes, current = [], "x"
    for i in range(length):
        nodes.append(helper.make_node("Add", [current, "x"], [f"a{i}"]))
        current = f"a{i}"
    nodes.append(helper.make_node("Identity", [current], ["y"]))
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])
    session = _session(helper.make_graph(nodes, "chain", [one], [y]))
    feeds = {"x": np.ones(1, dtype=np.float32)}
    return lambda: session.run(None, feeds)


def _weight_probe(tables: int) -> Callable[[], object]:
    """One call reading `tables` [TABLE_ROWS, TABLE_ROWS] float32 tables once each, as one-row MatMuls (GEMVs)."""
    rng = np.random.default_rng(0)
    initializers = [
        numpy_helper.from_array(rng.standard_normal((TABLE_ROWS, TABLE_ROWS), dtype=np.float32), f"w{i}")
        for i in range(tables)
    ]
    nodes = [helper.make_node("MatMul", ["x", f"w{i}"], [f"y{i}"]) for i in range(tables)]
    nodes.append(helper.make_node("Concat", [f"y{i}" for i in range(tables)], ["y"], axis=1))
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, TABLE_ROWS])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, TABLE_ROWS * tables])
    session = _session(helper.make_graph(nodes, "weights", [x], [y], initializers))
    feeds = {"x": rng.standard_normal((1, TABLE_ROWS), dtype=np.float32)}
    return lambda: session.run(None, feeds)


def _weight_bytes(model: onnx.ModelProto) -> int:
    """Bytes of the initializers that Conv/ConvTranspose/MatMul/Gemm nodes take as weights (read whole per call)."""
    sizes = {
        t.name: int(np.prod(t.dims)) * np.dtype(helper.tensor_dtype_to_np_dtype(t.data_type)).itemsize
        for t in model.graph.initializer
    }
    used = {name for node in model.graph.node if node.op_type in WEIGHT_OPS for name in node.input[1:2]}
    return sum(sizes[name] for name in used if name in sizes)


def _optimised(path: Path, first: np.ndarray) -> onnx.ModelProto:
    """The graph ONNX Runtime runs for chunks shaped like `first` (its saved optimised model: constants folded,
    so every weight a node reads is an initializer)."""
    options = RuntimeOptions()
    with tempfile.TemporaryDirectory() as tmp:
        so = fixed_shape_options(options, open_session(path, options), first.shape)
        so.optimized_model_filepath = str(Path(tmp) / "optimised.onnx")
        open_session(path, options, so)
        return onnx.load(so.optimized_model_filepath)


def _session(graph: onnx.GraphProto) -> ort.InferenceSession:
    # IR 9 with opset 17: what ONNX Runtime 1.16 and later load (onnx's default IR may be newer).
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)
    options = session_options(RuntimeOptions())
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def _onnx_type(value: np.ndarray) -> int:
    return helper.np_dtype_to_tensor_dtype(value.dtype)
