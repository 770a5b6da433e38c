"""Quality against training compute: each run's validation curve, followed back through `--init_from`.

A run continued from another run's checkpoint (`codec-train --init_from RUN/best.pt`) starts where that run was at
the checkpoint's step, so its curve is drawn after its parent's, on one axis of compute spent since the chain's
root (the bundled default, another checkpoint or random weights). Compute is counted two ways: audio-hours
trained (steps × batch × crop length × processes: independent of the machine) and the wall-hours the runs
took on the hardware they ran on (`elapsed_seconds` in each run's metrics.jsonl).

The points are the runs' own validations (`metrics.jsonl`: mel distance, SNR, SI-SDR on the run's validation
clips, and PESQ-WB for runs that choose best.pt by it, `--select_by pesq`); the last few validations of each run
give its slope: what the next audio-hour of that recipe bought at the end.
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from sscodec.benchmarks.checkpoint_scores import score_checkpoint
from sscodec.benchmarks.clips import SCORED_MIN_SECONDS, read_clips
from sscodec.benchmarks.errors import BenchError
from sscodec.codec.checkpoint import CheckpointError, load_codec, read_checkpoint
from sscodec.codec.fingerprint import codec_fingerprint
from sscodec.common.bundled import resolve_checkpoint
from sscodec.common.errors import ModelError
from sscodec.train.monitor import better, selection

METRICS_FILE = "metrics.jsonl"
# The recipe fields a reader needs to tell runs apart (TrainConfig names).
RECIPE_FIELDS = (
    "losses", "decoder_only", "learning_rate", "lr_decay", "batch_size", "segment_seconds", "l1_weight", "mel_weight",
    "adversarial_weight",
    "gain_prob", "lowpass_prob", "noise_prob", "quiet_prob", "checkerboard_free", "fold_free", "checkerboard_weight",
    "init_from", "select_by",
)
VALIDATION_KEYS = ("step", "mel_distance", "snr_db", "si_sdr_db")  # what a curve reads from each row
SCORED = ("pesq_wb", "stoi", "mel_distance", "snr_db")  # the whole-clip scores `score_chains` reports
SLOPE_POINTS = 4  # a run's slope is fitted over its last validations: at 250-step intervals, 1,000 steps


@dataclass(frozen=True)
class CurvePoint:
    """One validation of a run, placed on the chain's cumulative compute."""

    step: int
    audio_hours: float  # trained since the chain's root
    wall_hours: float  # the runs' own training time since the chain's root
    mel_distance: float
    snr_db: float
    si_sdr_db: float
    pesq_wb: float | None = None  # all codebooks; validated only by runs with --select_by pesq (NaN: no clip scored)
    selection: float = float("nan")  # what best.pt is chosen by (train/monitor.py selection)


@dataclass(frozen=True)
class RunCurve:
    """A run's validations after its ancestors' compute, its recipe and where it came from."""

    run_dir: str
    label: str
    device: str  # "cuda" or "cpu", from the run's own metrics
    recipe: dict
    root: str  # what the chain started from: a checkpoint path, "default" or "random weights"
    root_replaced: bool  # the root's path holds other weights now than when the chain started (not scored)
    start_audio_hours: float
    start_wall_hours: float
    points: list[CurvePoint]

    @property
    def best(self) -> CurvePoint:
        """The validation best.pt holds: the best selection (the mean mel distance, or with --select_by pesq the
        mean PESQ-WB, over all codebooks and each --val_codebooks count); the lowest mel distance where no
        selection is finite."""
        best = math.nan
        chosen = None
        for point in self.points:
            if better(point.selection, best, "mel" if point.pesq_wb is None else "pesq"):
                best, chosen = point.selection, point
        return chosen or min(self.points, key=lambda p: p.mel_distance)

    def slope_per_audio_hour(self) -> float | None:
        """Least-squares change of mel distance per audio-hour over the run's last SLOPE_POINTS validations.

        None when the run has fewer validations than that.
        """
        window = self.points[-SLOPE_POINTS:]
        if len(window) < SLOPE_POINTS:
            return None
        x = np.array([p.audio_hours for p in window])
        y = np.array([p.mel_distance for p in window])
        return float(np.polyfit(x, y, 1)[0])

    def to_dict(self) -> dict:
        return {**asdict(self), "best": asdict(self.best), "slope_mel_per_audio_hour": self.slope_per_audio_hour()}


def read_metrics(run_dir: Path) -> list[dict]:
    """The run's validations in step order (a resumed run may repeat a step: the later row wins)."""
    path = run_dir / METRICS_FILE
    if not path.exists() and (run_dir / "latest.pt").is_file():
        raise BenchError(f"{run_dir}: the run has no {METRICS_FILE}: it never validated (--no_validation, or no "
                         "clips it could score), so it has no curve")
    try:
        lines = path.read_text().splitlines()
    except OSError as error:
        raise BenchError(f"{path}: cannot read the run's metrics ({error.strerror or error})") from None
    rows: dict[int, dict] = {}
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            values = [float(row[key]) for key in VALIDATION_KEYS]
        except (ValueError, KeyError, TypeError):
            raise BenchError(f"{path}:{number}: not a validation row (needs {', '.join(VALIDATION_KEYS)})") from None
        rows[int(values[0])] = row
    if not rows:
        raise BenchError(f"{path}: no validations yet")
    return [rows[step] for step in sorted(rows)]


def train_config(run_dir: Path) -> dict:
    """The run's TrainConfig as its latest.pt saved it."""
    try:
        payload = read_checkpoint(run_dir / "latest.pt")
    except CheckpointError as error:
        raise BenchError(str(error)) from None
    config = payload.get("train_config")
    if not isinstance(config, dict):
        raise BenchError(f"{run_dir / 'latest.pt'}: a model checkpoint, not a training run's (no train_config)")
    return config


def checkpoint_step(path: Path) -> int:
    """The step a checkpoint was saved at."""
    try:
        step = read_checkpoint(path).get("step")
    except CheckpointError as error:
        raise BenchError(str(error)) from None
    if not isinstance(step, int):
        raise BenchError(f"{path}: the checkpoint does not say its step")
    return step


def _audio_seconds(row: dict, config: dict) -> float:
    """Audio trained by this row's step; rows written before runs logged it are one process's steps."""
    if "audio_seconds_trained" in row:
        return float(row["audio_seconds_trained"])
    return row["step"] * config["batch_size"] * config["segment_seconds"]


def run_curve(run_dir: Path, label: str | None = None, _seen: frozenset[Path] = frozenset()) -> RunCurve:
    """The run's curve after its `init_from` ancestors (runs whose folder holds metrics.jsonl) at their steps.

    Raises BenchError for a folder that is not a run, unreadable metrics or a cycle of runs.
    """
    run_dir = Path(run_dir)
    if run_dir.resolve() in _seen:
        raise BenchError(f"{run_dir}: runs initialise from each other in a cycle")
    config = train_config(run_dir)
    rows = read_metrics(run_dir)
    start_audio = start_wall = 0.0
    root = config.get("init_from") or "random weights"
    root_replaced = False
    parent_checkpoint = Path(root)
    if config.get("init_from") and (parent_checkpoint.parent / METRICS_FILE).is_file():
        parent = run_curve(parent_checkpoint.parent, _seen=_seen | {run_dir.resolve()})
        step = checkpoint_step(parent_checkpoint)
        steps = [p.step for p in parent.points]
        start_audio = float(np.interp(step, steps, [p.audio_hours for p in parent.points]))
        start_wall = float(np.interp(step, steps, [p.wall_hours for p in parent.points]))
        root, root_replaced = parent.root, parent.root_replaced
    elif config.get("init_from") and config.get("init_fingerprint"):
        started_from = config["init_fingerprint"]
        if _current_fingerprint(root) != started_from:
            root, root_replaced = f"{root} as it was then (fingerprint {started_from[:16]}; since replaced)", True
    device = "cuda" if any(row.get("peak_gpu_memory_gb") is not None for row in rows) else "cpu"
    points = [
        CurvePoint(
            step=row["step"],
            audio_hours=start_audio + _audio_seconds(row, config) / 3600,
            wall_hours=start_wall + row.get("elapsed_seconds", 0.0) / 3600,
            mel_distance=row["mel_distance"],
            snr_db=row["snr_db"],
            si_sdr_db=row["si_sdr_db"],
            pesq_wb=row.get("pesq_wb"),
            selection=selection(row["mel_distance"], row.get("mel_distance_at") or {}, row.get("pesq_wb"),
                                row.get("pesq_wb_at") or {}),
        )
        for row in rows
    ]
    recipe = {key: config.get(key) for key in RECIPE_FIELDS}
    return RunCurve(str(run_dir), label or run_dir.name, device, recipe, root, root_replaced, start_audio, start_wall,
                    points)


def _current_fingerprint(name: str) -> str | None:
    """codec_fingerprint of the weights that checkpoint `name` ("default" or a path) holds now; None if none."""
    try:
        path = resolve_checkpoint(name).resolve()
        stat = path.stat()
    except (ModelError, OSError):
        return None
    return _fingerprint(path, stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=16)
def _fingerprint(path: Path, mtime_ns: int, size: int) -> str | None:
    """The fingerprint of the checkpoint at `path` as it was at (`mtime_ns`, `size`): runs sharing a root (the
    bundled default, typically) load and hash it once, and a file replaced since is read again."""
    try:
        model = load_codec(path)
    except (CheckpointError, ModelError):
        return None
    return codec_fingerprint(model.config, model.state_dict())


def score_chains(curves: list[RunCurve], audio_dir: Path) -> dict[str, dict[str, float]]:
    """Mean whole-clip scores (SCORED, all codebooks) of each run's best.pt and of each chain's root checkpoint.

    Keys are the runs' labels and the roots as given ("default" is the bundled model); a root of random weights,
    or one whose path holds other weights now, is not scored. Raises BenchError for an unreadable audio folder or checkpoint.
    """
    roots = {c.root for c in curves if c.root != "random weights" and not c.root_replaced}
    checkpoints = {root: resolve_checkpoint(root) for root in roots}
    checkpoints |= {c.label: Path(c.run_dir) / "best.pt" for c in curves}
    clips: dict[int, list[np.ndarray]] = {}
    scores = {}
    for name, path in checkpoints.items():
        try:
            rate = int(read_checkpoint(path)["config"]["sample_rate"])
        except (CheckpointError, KeyError, TypeError) as error:
            raise BenchError(f"{path}: cannot score it ({error})") from None
        if rate not in clips:
            clips[rate] = list(read_clips(audio_dir, rate, SCORED_MIN_SECONDS).values())
        summary = score_checkpoint(path, clips[rate]).summary
        scores[name] = {metric: summary[metric]["mean"] for metric in SCORED}
    return scores
