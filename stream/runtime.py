"""ONNX Runtime session settings for many small per-chunk calls, and the execution provider."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
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


def open_session(
    path: Path, options: RuntimeOptions, so: ort.SessionOptions | None = None, model: bytes | None = None
) -> ort.InferenceSession:
    """An InferenceSession for one ONNX file on the requested provider (`so`: session options of `options`,
    refined; `model`: the serialized graph to run instead of the file's, e.g. a cut-down copy of it, which
    errors still name by `path`)."""
    provider = PROVIDERS[options.provider]
    if provider not in ort.get_available_providers():
        raise ProviderError(
            f"ONNX Runtime here has no {provider} (available: {', '.join(ort.get_available_providers())})",
            "install onnxruntime-gpu or use --provider cpu",
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
        session = ort.InferenceSession(model if model is not None else str(path), so or session_options(options),
                                       providers=providers)
    # ONNX Runtime raises its own pybind exception types (InvalidProtobuf, Fail, NoSuchFile, ...) that share
    # no public base class besides Exception.
    except Exception as error:  # noqa: BLE001
        raise ModelError(f"{path}: not a loadable ONNX model ({first_line(error)})") from None
    if session.get_providers()[0] != provider:
        raise ProviderError(f"{provider} could not start (no usable GPU or CUDA libraries)", "use --provider cpu")
    return session


class StreamGraph:
    """A stream graph file: a session for chunks of any shape, and fixed-shape sessions for the shapes asked for.

    A fixed-shape session is the same file with every named axis of its inputs pinned (ONNX Runtime's free
    dimension overrides), so the optimiser folds the shape arithmetic away (the decoder's codebook lookup
    above all): the same outputs, and for the decoder 5 % faster per 1-frame chunk (README, "Speed").
    Sessions hold no stream state; any number of `StreamRunner`s may share them.
    """

    def __init__(self, path: Path, options: RuntimeOptions, model: bytes | None = None) -> None:
        """`model`: the serialized graph to run instead of `path`'s (see `open_session`)."""
        self.path = path
        self.options = options
        self._model = model
        self.session = open_session(path, options, model=model)
        self._fixed: dict[tuple[int, ...], ort.InferenceSession] = {}

    def fix_shape(self, shape: tuple[int, ...]) -> None:
        """Open (once) the session that chunks whose first input has exactly `shape` will run on."""
        if shape not in self._fixed:
            so = fixed_shape_options(self.options, self.session, shape)
            self._fixed[shape] = open_session(self.path, self.options, so, self._model)

    def session_for(self, shape: tuple[int, ...]) -> ort.InferenceSession:
        """The fixed-shape session for `shape` if one was opened, else the session for any shape."""
        return self._fixed.get(shape, self.session)


class StreamRunner:
    """One stream through a StreamGraph: each chunk's output, the state carried from call to call.

    Plain `session.run` calls: binding preallocated, ping-ponged state buffers (IOBinding) measured no faster
    (0.798 against 0.794 ms per 1-frame chunk, encode + decode; README, "Speed"), so the simpler path stays. The
    output names are passed rather than None, which the wrapper would turn into a list of them on every call
    (about 10 µs per call on the 2-core AMD VM; README, "Speed").
    """

    def __init__(self, graph: StreamGraph) -> None:
        self.graph = graph
        first, state = graph.session.get_inputs()
        self._input = first.name
        self._outputs = [output.name for output in graph.session.get_outputs()]
        self._state_size = state.shape[1]
        self.reset()

    def reset(self) -> None:
        """Start a new stream from a zero state."""
        self._state = np.zeros((1, self._state_size), dtype=np.float32)

    def run(self, x: np.ndarray) -> np.ndarray:
        """The graph's output for chunk `x` (batch 1, the first input's type); advances the state."""
        session = self.graph.session_for(x.shape)
        output, self._state = session.run(self._outputs, {self._input: x, "state": self._state})
        return output


def fixed_shape_options(
    options: RuntimeOptions, session: ort.InferenceSession, shape: tuple[int, ...]
) -> ort.SessionOptions:
    """Session options that pin every named axis of `session`'s first input (and of the state) to `shape`."""
    so = session_options(options)
    for name, size in _axis_sizes(session.get_inputs()[0].shape, shape).items():
        so.add_free_dimension_override_by_name(name, size)
    return so


def _axis_sizes(axes: list[int | str | None], shape: tuple[int, ...]) -> dict[str, int]:
    """Sizes of the named axes of an input declared `axes` that `shape` fixes; a name "N*name" also fixes name."""
    sizes: dict[str, int] = {}
    for axis, size in zip(axes, shape, strict=True):
        if isinstance(axis, str):
            sizes[axis] = size
            factor, _, symbol = axis.rpartition("*")
            if factor.isdigit() and size % int(factor) == 0:
                sizes[symbol] = size // int(factor)
    return sizes
