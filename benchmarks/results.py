"""Where a benchmark's JSON, Markdown and PNG go, and writing them."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from matplotlib.figure import Figure

from sscodec.benchmarks.errors import BenchError

_PACKAGE_DIR = Path(__file__).resolve().parent


def results_dir() -> Path:
    """Where results go without --json: benchmarks/results/ of the source checkout this package runs from
    (the committed results), else benchmarks/results/ under the current directory (an installed wheel's package
    folder is no place for them)."""
    if (_PACKAGE_DIR.parent / "pyproject.toml").is_file():
        return _PACKAGE_DIR / "results"
    return Path.cwd() / "benchmarks" / "results"


@dataclass(frozen=True)
class ResultPaths:
    """The three files one benchmark writes; Markdown and plot sit beside the JSON with the same stem."""

    json: Path
    markdown: Path
    plot: Path

    @property
    def spectrograms(self) -> Path:
        """A second figure some benchmarks draw: NAME_spectrograms.png beside the plot."""
        return self.plot.with_name(f"{self.plot.stem}_spectrograms.png")


def result_paths(name: str, json_path: Path | None = None) -> ResultPaths:
    """benchmarks/results/NAME.{json,md,png}, or JSON at `json_path` with its .md and .png beside it."""
    path = Path(json_path) if json_path is not None else results_dir() / f"{name}.json"
    return ResultPaths(path, path.with_suffix(".md"), path.with_suffix(".png"))


def write_results(paths: ResultPaths, data: dict, markdown: str, figure: Figure) -> None:
    """Write all three files; non-finite floats become null so the JSON stays standard."""
    try:
        paths.json.parent.mkdir(parents=True, exist_ok=True)
        paths.json.write_text(json.dumps(_finite(data), indent=1) + "\n")
        paths.markdown.write_text(markdown)
        figure.savefig(paths.plot, dpi=110, bbox_inches="tight")
    except OSError as error:
        raise BenchError(
            f"{error.filename or paths.json}: cannot write results ({error.strerror or error})"
        ) from None


def _finite(value: object) -> object:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value
