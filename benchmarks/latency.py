"""Per-chunk compute time of streaming encode and decode: ONNX Runtime (CPU, CUDA) and PyTorch eager."""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import numpy as np

from sscodec.benchmarks.model_source import Variant
from sscodec.benchmarks.timing import summarize_ms
from sscodec.common.chunks import chunks as chunks_of
from sscodec.common.errors import ProviderError
from sscodec.stream.engine import StreamEngine
from sscodec.stream.runtime import RuntimeOptions

CHUNK_FRAMES = (1, 2, 4)
WARMUP_CHUNKS = 50
# encode(chunk audio) → what decode takes; each call advances its stream's state.
Step = Callable[[np.ndarray], object]


def thread_counts() -> list[int]:
    """One thread, and all cores (when there is more than one)."""
    cores = os.cpu_count() or 1
    return [1] if cores == 1 else [1, cores]


def time_steps(
    encode: Step, decode: Step, audio: np.ndarray, chunk_samples: int, chunk_ms: float, chunks: int
) -> dict:
    """Time `WARMUP_CHUNKS` then `chunks` chunks of `audio` (repeated as needed); warm-up and steady state are
    reported apart."""
    encode_ms, decode_ms = [], []
    for x in chunks_of(np.resize(audio, (WARMUP_CHUNKS + chunks) * chunk_samples), chunk_samples):
        t0 = time.perf_counter()
        codes = encode(x)
        t1 = time.perf_counter()
        decode(codes)
        t2 = time.perf_counter()
        encode_ms.append((t1 - t0) * 1e3)
        decode_ms.append((t2 - t1) * 1e3)
    total = np.add(encode_ms, decode_ms)
    return {
        "warmup": {
            "chunks": WARMUP_CHUNKS,
            "first_chunk_ms": float(total[0]),
            "mean_ms": float(total[:WARMUP_CHUNKS].mean()),
        },
        "encode": summarize_ms(encode_ms[WARMUP_CHUNKS:], chunk_ms),
        "decode": summarize_ms(decode_ms[WARMUP_CHUNKS:], chunk_ms),
        "total": summarize_ms(total[WARMUP_CHUNKS:], chunk_ms),
    }


def onnx_cases(variants: list[Variant], audio: np.ndarray, chunks: int) -> list[dict]:
    """ONNX Runtime on the CPU (1 thread and all cores) for every available precision, then CUDA fp32."""
    cases = []
    for variant in variants:
        for threads in thread_counts():
            for k in CHUNK_FRAMES:
                case = {
                    "backend": "onnxruntime",
                    "precision": variant.precision,
                    "device": "cpu",
                    "threads": threads,
                    "chunk_frames": k,
                }
                if variant.directory is None:
                    cases.append({**case, "skipped": variant.source})
                    continue
                options = RuntimeOptions(intra_op_threads=threads)
                cases.append(
                    {
                        **case,
                        **_time_engine(
                            StreamEngine(variant.directory, chunk_frames=k, runtime=options), audio, chunks
                        ),
                    }
                )
    for k in CHUNK_FRAMES:
        case = {
            "backend": "onnxruntime",
            "precision": "fp32",
            "device": "cuda",
            "threads": None,
            "chunk_frames": k,
        }
        try:
            engine = StreamEngine(
                variants[0].directory, chunk_frames=k, runtime=RuntimeOptions(provider="cuda")
            )
        except ProviderError as error:
            cases.append({**case, "skipped": error.reason})  # the advice names codec-stream's flag
            continue
        cases.append({**case, **_time_engine(engine, audio, chunks)})
    return cases


def _time_engine(engine: StreamEngine, audio: np.ndarray, chunks: int) -> dict:
    """Encode (incl. packing the codes into a packet) and decode (incl. unpacking), as codec-stream's stats count them."""
    k = engine.chunk_frames
    return time_steps(
        engine.encoder.encode,
        engine.decoder.decode,
        audio,
        k * engine.info.frame_size,
        k * engine.info.frame_ms,
        chunks,
    )


def torch_cases(model, audio: np.ndarray, chunks: int) -> list[dict]:
    """PyTorch eager (the folded fp32 module) on the CPU at 1 thread and all cores, and on CUDA if present."""
    import torch

    settings = [("cpu", threads) for threads in thread_counts()] + [("cuda", None)]
    cases = []
    previous_threads = torch.get_num_threads()
    try:
        for device, threads in settings:
            for k in CHUNK_FRAMES:
                case = {
                    "backend": "pytorch",
                    "precision": "fp32",
                    "device": device,
                    "threads": threads,
                    "chunk_frames": k,
                }
                if device == "cuda" and not torch.cuda.is_available():
                    cases.append({**case, "skipped": "torch.cuda.is_available() is False (no GPU here)"})
                    continue
                if threads is not None:
                    torch.set_num_threads(threads)
                cases.append({**case, **_time_torch(model.to(device), device, k, audio, chunks)})
    finally:
        torch.set_num_threads(previous_threads)
        model.to("cpu")
    return cases


def _time_torch(model, device: str, k: int, audio: np.ndarray, chunks: int) -> dict:
    """encode_step / decode_step under inference_mode, synchronising CUDA so each time is the whole step."""
    import torch

    config = model.config
    states = {part: model.initial_state(1, part) for part in ("encoder", "decoder")}
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)

    def encode(x: np.ndarray):
        codes, states["encoder"] = model.encode_step(torch.from_numpy(x)[None].to(device), states["encoder"])
        sync()
        return codes

    def decode(codes) -> None:
        _, states["decoder"] = model.decode_step(codes, states["decoder"])
        sync()

    with torch.inference_mode():
        chunk_ms = 1000.0 * k * config.frame_size / config.sample_rate
        return time_steps(encode, decode, audio, k * config.frame_size, chunk_ms, chunks)
