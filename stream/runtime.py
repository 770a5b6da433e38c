"""ONNX Runtime session settings for many small per-chunk calls, and the execution provider."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import onnxruntime as ort

from sscodec.common.errors import ModelError, ProviderError, first_line

PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}


@dataclass(frozen=True)
class RuntimeOptions:
    """Where and with how many threads the stream graphs run (defaults measured; see README)."""

    provider: str = "cpu"
    intra_op_threads: int = 1
    inter_op_threads: int = 1

    def __post_init__(self) -> None:
        if self.provider not in PROVIDERS:
            raise ValueError(f"provider must be one of {', '.join(PROVIDERS)}, got {self.provider!r}")
        if self.intra_op_threads < 0 or self.inter_op_threads < 0:
            raise ValueError("thread counts must be >= 0 (0 lets ONNX Runtime choose)")


def session_options(options: RuntimeOptions) -> ort.SessionOptions:
    """Session options for one small graph call every chunk."""
    so = ort.SessionOptions()
    so.intra_op_num_threads = options.intra_op_threads
    so.inter_op_num_threads = options.inter_op_threads
    # The graphs are chains of small convolutions: running nodes in parallel only adds scheduling cost.
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Idle pool threads would otherwise spin between the 20 ms calls and steal a core from the audio thread.
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.add_session_config_entry("session.inter_op.allow_spinning", "0")
    # Provider fallbacks are reported by our own check below, not as ONNX Runtime log noise.
    so.log_severity_level = 3
    return so


def open_session(path: Path, options: RuntimeOptions) -> ort.InferenceSession:
    """An InferenceSession for one ONNX file on the requested provider."""
    provider = PROVIDERS[options.provider]
    if provider not in ort.get_available_providers():
        raise ProviderError(
            f"ONNX Runtime here has no {provider} (available: {', '.join(ort.get_available_providers())}); "
            "install onnxruntime-gpu or use --provider cpu"
        )
    providers = [provider] if provider == PROVIDERS["cpu"] else [provider, PROVIDERS["cpu"]]
    if provider != PROVIDERS["cpu"]:
        # A provider that cannot load logs multi-line errors from the process-wide logger before falling back to
        # the CPU; the check below reports that in one line instead.
        ort.set_default_logger_severity(4)
    try:
        path.open("rb").close()  # ONNX Runtime reports an unreadable file only as "system error number 13"
    except OSError as error:
        raise ModelError(f"{path}: cannot read ({error.strerror or error})") from None
    try:
        session = ort.InferenceSession(str(path), session_options(options), providers=providers)
    # ONNX Runtime raises its own pybind exception types (InvalidProtobuf, Fail, NoSuchFile, ...) that share
    # no public base class besides Exception.
    except Exception as error:  # noqa: BLE001
        raise ModelError(f"{path}: not a loadable ONNX model ({first_line(error)})") from None
    if session.get_providers()[0] != provider:
        raise ProviderError(
            f"{provider} could not start (no usable GPU or CUDA libraries); use --provider cpu"
        )
    return session
