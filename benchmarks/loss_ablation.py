"""Loss ablation: train each `--losses` recipe with the same preset, steps and seed, then compare validations.

    python -m sscodec.benchmarks.loss_ablation run --data-dir DIR --val-dir DIR --out RUNS [--preset tiny --max-steps 300]
    python -m sscodec.benchmarks.loss_ablation score --runs RUNS [--checkpoints DIR] [--val-dir DIR]
    python -m sscodec.benchmarks.loss_ablation summarize --set "LABEL=RUNS" [--set ...] [--name loss_ablation]

`run` calls codec-train once per recipe, one after another, and writes RUNS/<recipe>.metrics.jsonl plus
RUNS/setup.json (machine and settings), then scores each recipe's last weights (latest.pt) when PESQ/STOI
are installed. `score` scores `<recipe>/KIND.pt` or `<recipe>.KIND.pt` under DIR (default RUNS; KIND latest,
the last step, or best, the lowest validation mel distance) on the validation clips,
PESQ-WB and STOI included, into RUNS/<recipe>.scores.json. `summarize` reads such folders (a folder recorded
elsewhere needs the same kinds of file) and writes benchmarks/results/NAME.json, .md and .png.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from sscodec.benchmarks.clips import SHARED_VAL

RESULTS = Path(__file__).resolve().parent / "results"

# Each recipe spells out its weights so the comparison does not move when a recipe's defaults do.
ABLATION_RECIPES: dict[str, list[str]] = {
    "l1": ["--losses", "l1"],
    "l1mel": ["--losses", "l1+mel", "--l1_weight", "1", "--mel_weight", "1"],
    "l1x10mel": ["--losses", "l1+mel", "--l1_weight", "10", "--mel_weight", "1"],
    "full": ["--losses", "full"],
}
DESCRIPTIONS = {
    "l1": "L1 + VQ (the plain recipe)",
    "l1mel": "L1 + mel (weights 1, 1)",
    "l1x10mel": "L1 ×10 + mel (weights 10, 1)",
    "full": "full: mel 15 + GAN (adv 1, feat 2) + L1 1",
}
# Metric, column title, and whether larger is better.
METRICS: list[tuple[str, str, bool]] = [
    ("snr_db", "SNR dB", True),
    ("si_sdr_db", "SI-SDR dB", True),
    ("mel_distance", "mel distance", False),
    ("amplitude_ratio", "amplitude ratio", True),
]


def machine() -> dict[str, Any]:
    """CPU model, core count, GPU and torch version of this machine."""
    import torch

    cpu = platform.processor() or "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = [
            line.split(":", 1)[1].strip()
            for line in cpuinfo.read_text().splitlines()
            if line.startswith("model name")
        ]
        cpu = names[0] if names else cpu
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {
        "cpu": cpu,
        "cpu_cores": os.cpu_count(),
        "gpu": gpu,
        "torch": torch.__version__,
        "platform": platform.platform(),
    }


def run(args: argparse.Namespace) -> None:
    """Train every chosen recipe in turn with identical settings, keeping each run's metrics.jsonl."""
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    train = shutil.which("codec-train") or str(Path(sys.executable).with_name("codec-train"))
    settings = {
        "preset": args.preset,
        "max_steps": args.max_steps,
        "batch_size": args.batch_size,
        "segment_seconds": args.segment_seconds,
        "learning_rate": args.learning_rate,
        "seed": args.seed,
        "eval_every": args.eval_every,
        "val_clips": args.val_clips,
        "device": args.device,
        "adversarial_start": args.adversarial_start,
        "data_dir": args.data_dir,
        "val_dir": args.val_dir,
    }
    wall: dict[str, float] = {}
    taken = [str(out / name) for name in args.recipes if (out / name / "latest.pt").exists()]
    if taken:  # codec-train never overwrites a run; say so before the first recipe trains
        raise SystemExit(f"loss ablation: {', '.join(taken)} already hold runs; choose another --out")
    for name in args.recipes:
        checkpoint_dir = out / name
        command = [
            train,
            "--data_dir",
            args.data_dir,
            "--val_dir",
            args.val_dir,
            "--checkpoint_dir",
            str(checkpoint_dir),
            "--preset",
            args.preset,
            "--max_steps",
            str(args.max_steps),
            "--batch_size",
            str(args.batch_size),
            "--segment_seconds",
            str(args.segment_seconds),
            "--learning_rate",
            str(args.learning_rate),
            "--seed",
            str(args.seed),
            "--eval_every",
            str(args.eval_every),
            "--device",
            args.device,
            *ABLATION_RECIPES[name],
        ]
        if name == "full":
            command += ["--adversarial_start", str(args.adversarial_start)]
        if args.val_clips:
            command += ["--val_clips", str(args.val_clips)]
        print(f"loss ablation: training {name}: {' '.join(command)}", flush=True)
        started = time.monotonic()
        subprocess.run(command, check=True)
        wall[name] = round(time.monotonic() - started, 1)
        shutil.copyfile(checkpoint_dir / "metrics.jsonl", out / f"{name}.metrics.jsonl")
    setup = {
        "machine": machine(),
        "settings": settings,
        "wall_seconds": wall,
        "note": "runs one after another on this machine",
    }
    (out / "setup.json").write_text(json.dumps(setup, indent=2) + "\n")
    reason = pesq_missing()
    if reason:
        print(f"loss ablation: not scoring PESQ/STOI ({reason})", flush=True)
    else:
        score_runs(out, out, Path(args.val_dir), args.val_clips, "latest")


def pesq_missing() -> str | None:
    """Why PESQ/STOI scoring cannot run here, or None when it can."""
    try:
        import pesq  # noqa: F401
        import pystoi  # noqa: F401
    except ImportError as error:
        return f"{error.name} is not installed; pip install -e '.[bench]'"
    return None


def checkpoint_of(folder: Path, name: str, kind: str) -> Path | None:
    """A run's KIND.pt: NAME/KIND.pt (as `run` leaves it) or NAME.KIND.pt (as copied back from elsewhere)."""
    for candidate in (folder / name / f"{kind}.pt", folder / f"{name}.{kind}.pt"):
        if candidate.is_file():
            return candidate
    return None


def score_runs(runs: Path, checkpoints: Path, val_dir: Path, val_clips: int | None, kind: str) -> None:
    """Write RUNS/<run>.scores.json (PESQ-WB, STOI and the training metrics) for every run with a checkpoint.

    The clips are the trainer's validation clips (`--val_dir`, `--val_clips`: same files, same order).
    """
    from sscodec.benchmarks.checkpoint_scores import score_checkpoint
    from sscodec.codec.config import CodecConfig
    from sscodec.train.data import load_validation

    found = {name: checkpoint_of(checkpoints, name, kind) for name in load_runs(runs)}
    if not any(found.values()):
        raise SystemExit(f"loss_ablation: no <run>/{kind}.pt or <run>.{kind}.pt in {checkpoints}")
    # Every preset shares the config's default rate, which the trainer validates at too.
    clips = [clip.numpy() for clip in load_validation(val_dir, CodecConfig().sample_rate, val_clips)]
    for name, path in found.items():
        if path is None:
            print(f"loss ablation: {name}: no checkpoint in {checkpoints}, not scored", flush=True)
            continue
        scores = score_checkpoint(path, clips)
        scores_dict = scores.to_dict() | {"kind": kind, "val_dir": "/".join(val_dir.resolve().parts[-2:])}
        (runs / f"{name}.scores.json").write_text(json.dumps(scores_dict, indent=2) + "\n")
        means = ", ".join(f"{k} {v['mean']:.3f}" for k, v in scores.summary.items())
        print(f"loss ablation: {name} step {scores.step}: {means}", flush=True)


def load_runs(folder: Path) -> dict[str, list[dict[str, Any]]]:
    """Validation rows of every `<run>.metrics.jsonl` in `folder`: the recipes first, in their order."""
    names = sorted(p.name.removesuffix(".metrics.jsonl") for p in folder.glob("*.metrics.jsonl"))
    runs = {
        name: [
            json.loads(line) for line in (folder / f"{name}.metrics.jsonl").read_text().splitlines() if line
        ]
        for name in sorted(names, key=lambda n: (list(ABLATION_RECIPES).index(n) if n in ABLATION_RECIPES else len(ABLATION_RECIPES), n))
    }
    if not any(name in ABLATION_RECIPES for name in runs):
        raise SystemExit(f"loss_ablation: no <recipe>.metrics.jsonl in {folder}")
    return runs


def _row_summary(row: dict[str, Any], audio_seconds_per_step: float | None) -> dict[str, Any]:
    summary = {key: row[key] for key, _, _ in METRICS}
    summary["step"] = row["step"]
    summary["min_codebook_used_fraction"] = min(row.get("codebook_used_fraction") or [0.0])
    throughput = row.get("train_audio_seconds_per_second")
    summary["train_audio_seconds_per_second"] = throughput
    # From the same throughput (which counts since the run last started, resumes included), so the two agree.
    summary["steps_per_second"] = throughput / audio_seconds_per_step if throughput and audio_seconds_per_step else None
    summary["peak_gpu_memory_gb"] = row.get("peak_gpu_memory_gb")
    return summary


def summarize_set(label: str, folder: Path) -> dict[str, Any]:
    """One ablation: every run at the largest step all of them validated at, and at its own last row."""
    loaded = load_runs(folder)
    runs = {name: rows for name, rows in loaded.items() if name in ABLATION_RECIPES}
    setup_path = folder / "setup.json"
    setup = json.loads(setup_path.read_text()) if setup_path.is_file() else {}
    step = max(set.intersection(*({r["step"] for r in rows} for rows in runs.values())))
    settings = setup.get("settings", {})
    per_step = (
        settings["batch_size"] * settings["segment_seconds"]
        if settings.get("batch_size") and settings.get("segment_seconds")
        else None
    )
    return {
        "label": label,
        "setup": setup,
        "common_step": step,
        "at_common_step": {
            n: _row_summary(next(r for r in rows if r["step"] == step), per_step) for n, rows in runs.items()
        },
        "last": {n: _row_summary(rows[-1], per_step) for n, rows in runs.items()},
        # Runs that are not one of the recipes (e.g. one continued for longer) are shown, not compared.
        "other_runs": {n: _row_summary(rows[-1], per_step) for n, rows in loaded.items() if n not in ABLATION_RECIPES},
        "scores": {
            n: json.loads((folder / f"{n}.scores.json").read_text())
            for n in loaded
            if (folder / f"{n}.scores.json").is_file()
        },
        "curves": {
            n: {key: [[r["step"], r[key]] for r in rows] for key, _, _ in METRICS} for n, rows in runs.items()
        },
    }


def _fmt(value: float | None, digits: int) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _table(rows: dict[str, dict[str, Any]], with_step: bool, bold: bool = True) -> list[str]:
    best = {key: (max if higher else min)(r[key] for r in rows.values()) for key, _, higher in METRICS}
    head = [
        "recipe",
        *(["step"] if with_step else []),
        *(title for _, title, _ in METRICS),
        "min codebook use",
        "audio-s/s",
        "steps/s",
        "peak GPU GB",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, r in rows.items():
        cells = [DESCRIPTIONS.get(name, name), *([str(r["step"])] if with_step else [])]
        for key, _, _ in METRICS:
            text = _fmt(r[key], 3 if key in ("mel_distance", "amplitude_ratio") else 2)
            cells.append(f"**{text}**" if bold and r[key] == best[key] else text)
        cells += [
            _fmt(r["min_codebook_used_fraction"], 2),
            _fmt(r["train_audio_seconds_per_second"], 1),
            _fmt(r["steps_per_second"], 2),
            _fmt(r["peak_gpu_memory_gb"], 2),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


# The checkpoint `score` reads from each run.
KINDS = {"latest": "latest.pt (its last step)", "best": "best.pt (its lowest validation mel distance)"}
SCORE_COLUMNS: list[tuple[str, str, bool, int]] = [
    ("pesq_wb", "PESQ-WB", True, 2),
    ("stoi", "STOI", True, 3),
    ("snr_db", "SNR dB", True, 2),
    ("si_sdr_db", "SI-SDR dB", True, 2),
    ("mel_distance", "mel distance", False, 3),
    ("amplitude_ratio", "amplitude ratio", True, 3),
]


def _scores_table(scores: dict[str, dict[str, Any]]) -> list[str]:
    """Each run's checkpoint scored by `score`: mean ± std over clips, best mean in bold."""
    first = next(iter(scores.values()))
    means = {n: {key: s["summary"][key]["mean"] for key, *_ in SCORE_COLUMNS} for n, s in scores.items()}
    compared = [m for n, m in means.items() if n in ABLATION_RECIPES] or list(means.values())
    best = {key: (max if higher else min)(m[key] for m in compared) for key, _, higher, _ in SCORE_COLUMNS}
    head = ["run", "step", *(title for _, title, _, _ in SCORE_COLUMNS)]
    lines = [
        (
            f"Each run's {KINDS[first['kind']]} scored whole-clip on {first['clips']} clips of "
            f"{first['val_dir']} at {first['kbps']:g} kbps by "
            f"`python -m sscodec.benchmarks.loss_ablation score --kind {first['kind']}` (mean ± std over clips):"
        ),
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for name, s in scores.items():
        cells = [DESCRIPTIONS.get(name, name), str(s["step"])]
        for key, _, _, digits in SCORE_COLUMNS:
            text = f"{means[name][key]:.{digits}f} ± {s['summary'][key]['std']:.{digits}f}"
            cells.append(f"**{text}**" if name in ABLATION_RECIPES and means[name][key] == best[key] else text)
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def markdown(sets: list[dict[str, Any]], name: str = "loss_ablation") -> str:
    """The tables of every ablation set, each with its machine and settings."""
    lines = [
        "# Loss ablation" if name == "loss_ablation" else f"# {name} (benchmarks.loss_ablation)",
        "",
        (
            "Validation at 6 kbps (all 12 codebooks); best value per column in bold. Generated by "
            "`python -m sscodec.benchmarks.loss_ablation summarize`."
        ),
        "",
    ]
    for entry in sets:
        setup = entry["setup"]
        m, s = setup.get("machine", {}), setup.get("settings", {})
        lines += [
            f"## {entry['label']}",
            "",
            f"Machine: {m.get('gpu') or 'no GPU'}; CPU {m.get('cpu')} ({m.get('cpu_cores')} cores); "
            f"torch {m.get('torch')}. " + (setup.get("note", "")),
            "",
            "Settings: " + ", ".join(f"{k} {v}" for k, v in s.items() if v is not None),
            "",
            f"At step {entry['common_step']} (the largest step every run validated at):",
            "",
            *_table(entry["at_common_step"], with_step=False),
            "",
            "At each run's last validation:",
            "",
            *_table(entry["last"], with_step=True),
            "",
        ]
        if entry["scores"]:
            lines += [*_scores_table(entry["scores"]), ""]
        if entry["other_runs"]:
            lines += [
                "Other runs in this folder (last validation, not part of the comparison):",
                "",
                *_table(entry["other_runs"], with_step=True, bold=False),
                "",
            ]
    return "\n".join(lines)


def plot(sets: list[dict[str, Any]], path: Path) -> None:
    """One row of metric-vs-step panels per ablation set, one line per recipe."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(
        len(sets), len(METRICS), figsize=(4 * len(METRICS), 3.2 * len(sets)), squeeze=False
    )
    for row, entry in enumerate(sets):
        for column, (key, title, _) in enumerate(METRICS):
            ax = axes[row][column]
            for name, curves in entry["curves"].items():
                # Step 0 (random weights) would squash the scale of every later point.
                points = [p for p in curves[key] if p[0] > 0]
                ax.plot(
                    [p[0] for p in points],
                    [p[1] for p in points],
                    marker=".",
                    label=DESCRIPTIONS.get(name, name),
                )
            ax.set_title(f"{title}\n{entry['label']}", fontsize=8)
            ax.set_xlabel("step")
            ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def summarize(args: argparse.Namespace) -> None:
    """Write NAME.json, NAME.md and NAME.png for the given ablation sets."""
    sets = []
    for spec in args.set:
        label, _, folder = spec.rpartition("=")
        sets.append(summarize_set(label or folder, Path(folder)))
    out = Path(args.results_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{args.name}.json").write_text(json.dumps(sets, indent=2) + "\n")
    (out / f"{args.name}.md").write_text(markdown(sets, args.name))
    plot(sets, out / f"{args.name}.png")
    print(markdown(sets, args.name))


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m sscodec.benchmarks.loss_ablation", description=__doc__.split("\n")[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser("run", help="train each recipe with codec-train, one at a time")
    train.add_argument("--data-dir", required=True)
    train.add_argument("--val-dir", required=True)
    train.add_argument("--out", required=True, help="folder for the runs, their metrics and setup.json")
    train.add_argument(
        "--recipes", nargs="+", choices=list(ABLATION_RECIPES), default=["l1", "l1mel", "l1x10mel", "full"]
    )
    train.add_argument("--preset", default="tiny")
    train.add_argument("--max-steps", type=int, default=300)
    train.add_argument("--batch-size", type=int, default=8)
    train.add_argument("--segment-seconds", type=float, default=0.5)
    train.add_argument("--learning-rate", type=float, default=1e-3)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--eval-every", type=int, default=100)
    train.add_argument("--val-clips", type=positive_int)
    train.add_argument("--adversarial-start", type=int, default=150, help="first GAN step of `full`")
    train.add_argument("--device", default="cpu")
    scoring = commands.add_parser("score", help="score each run's latest (or best) checkpoint with PESQ-WB, STOI")
    scoring.add_argument("--runs", required=True, help="folder of <run>.metrics.jsonl; scores are written here")
    scoring.add_argument("--checkpoints", help="folder of <run>/KIND.pt or <run>.KIND.pt (default: RUNS)")
    scoring.add_argument("--kind", choices=list(KINDS), default="latest", help="which checkpoint of each run")
    scoring.add_argument("--val-dir", default=str(SHARED_VAL))
    scoring.add_argument("--val-clips", type=positive_int)
    summary = commands.add_parser("summarize", help="compare finished runs and write the results files")
    summary.add_argument(
        "--set",
        action="append",
        required=True,
        metavar="LABEL=FOLDER",
        help="a folder of <recipe>.metrics.jsonl (+ setup.json); repeat for several tables",
    )
    summary.add_argument("--name", default="loss_ablation")
    summary.add_argument("--results-dir", default=str(RESULTS))
    return parser.parse_args(argv)


def positive_int(text: str) -> int:
    """An argparse type: an integer of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def main(argv: list[str] | None = None) -> None:
    """Entry point; a missing folder, clip or checkpoint is one line on stderr, not a traceback."""
    from sscodec.benchmarks.errors import BenchError
    from sscodec.codec.checkpoint import CheckpointError
    from sscodec.train.manifest import DataError

    args = parse(argv)
    try:
        if args.command == "run":
            run(args)
        elif args.command == "score":
            reason = pesq_missing()
            if reason:
                raise SystemExit(f"loss_ablation: {reason}")
            checkpoints = Path(args.checkpoints or args.runs)
            score_runs(Path(args.runs), checkpoints, Path(args.val_dir), args.val_clips, args.kind)
        else:
            summarize(args)
    except (BenchError, CheckpointError, DataError) as error:
        raise SystemExit(f"loss_ablation: {error}") from None


if __name__ == "__main__":
    main()
