"""The layers import one way (docs/CONTRACTS.md): common/ ◄ everyone; codec/ ◄ train/, export/; stream/ needs
only the runtime's packages and common/."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OURS = {"common", "codec", "train", "export", "stream", "benchmarks"}
# Third-party packages each layer may import; the standard library is always allowed. train: wandb, tensorboard
# and pesq (codec-train --select_by pesq) are optional, imported where used.
ALLOWED = {
    "common": {"numpy", "soundfile", "soxr", "click", "common"},
    "codec": {"torch", "numpy", "common", "codec"},
    "train": {"torch", "numpy", "librosa", "tqdm", "click", "soundfile", "soxr", "common", "codec", "train",
              "wandb", "torch.utils.tensorboard", "pesq", "filelock"},
    "export": {"torch", "numpy", "onnx", "onnxscript", "onnxruntime", "librosa", "click", "soundfile", "common",
               "codec", "export"},
    # aiortc, aiohttp and ifaddr: the optional `call` extra, imported only by the call modules. onnx (and protobuf,
    # "google", for the error a damaged file raises): cutting the encoder graph (stream/codebook_search.py).
    "stream": {"numpy", "onnxruntime", "onnx", "google", "soundfile", "soxr", "sounddevice", "click", "constriction",
               "threadpoolctl", "aiortc", "aiohttp", "ifaddr", "common", "stream"},
}


def _package(module: str) -> str:
    """The top-level package of a module name; for our own, the layer under `sscodec.`."""
    parts = module.split(".")
    return parts[1] if parts[0] == "sscodec" and len(parts) > 1 else parts[0]


def imported_packages(path: Path) -> set[str]:
    """Packages (layers, for ours) of every module `path` imports (absolute imports)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {_package(alias.name) for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(_package(node.module))
    return names


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_each_layer_imports_only_what_it_may(layer: str) -> None:
    allowed = {name.split(".")[0] for name in ALLOWED[layer]} | set(sys.stdlib_module_names) | {"__future__"}
    offences = {
        f"{path.relative_to(ROOT)} imports {name}"
        for path in (ROOT / layer).rglob("*.py")
        for name in imported_packages(path) - allowed
    }
    assert not offences, sorted(offences)


def test_common_depends_on_no_other_layer() -> None:
    for path in (ROOT / "common").rglob("*.py"):
        assert not imported_packages(path) & (OURS - {"common"}), path


def test_every_import_of_our_code_goes_through_the_sscodec_namespace() -> None:
    # From the repository root the bare folders import too, so a bare `import stream...` passes in-process tests
    # and breaks only in an installed copy; catch it here.
    bare = {
        f"{path.relative_to(ROOT)}: {name}"
        for folder in (*OURS, "tests")
        for path in (ROOT / folder).rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        for name in (
            [alias.name for alias in node.names] if isinstance(node, ast.Import)
            else [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module else []
        )
        if name.split(".")[0] in OURS
    }
    assert not bare, sorted(bare)
