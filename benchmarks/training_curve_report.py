"""The training-curve benchmark's Markdown table and plot."""

from __future__ import annotations

from matplotlib.figure import Figure

from sscodec.benchmarks.machine import describe

_RECIPE_FLAGS = (  # (TrainConfig field, codec-train flag) shown in the recipe column when set
    ("gain_prob", "gain"), ("lowpass_prob", "lowpass"), ("noise_prob", "noise"), ("quiet_prob", "quiet"),
)


def recipe_text(recipe: dict) -> str:
    """The recipe in a few words: losses, decoder only, learning rate and its decay, batch, augmentation,
    checkerboard-free or fold-free."""
    decay = recipe.get("lr_decay")
    parts = [f"`{recipe['losses']}`", f"lr {recipe['learning_rate']:g}" + (f" × {decay:g}/step" if decay else ""),
             f"{recipe['batch_size']} × {recipe['segment_seconds']:g} s"]
    if recipe.get("decoder_only"):
        parts.insert(1, "decoder only")
    parts += [f"{flag} {recipe[key]:g}" for key, flag in _RECIPE_FLAGS if recipe.get(key)]
    if recipe.get("checkerboard_free"):
        parts.append("checkerboard-free")
    if recipe.get("fold_free"):
        parts.append("fold-free")
    if recipe.get("checkerboard_weight"):
        parts.append(f"checkerboard pull {recipe['checkerboard_weight']:g}")
    for key, flag in (("l1_weight", "L1"), ("mel_weight", "mel"), ("adversarial_weight", "adversarial")):
        if recipe.get(key) is not None:
            parts.append(f"{flag} weight {recipe[key]:g}")
    if recipe.get("select_by") == "pesq":
        parts.append("best.pt by PESQ-WB")
    return ", ".join(parts)


def _pesq_text(run: dict) -> str:
    """PESQ-WB at the run's first validation → best.pt's → the last, or – for a run that did not measure it."""
    first, best, last = run["points"][0], run["best"], run["points"][-1]
    if first.get("pesq_wb") is None:
        return "–"
    return f"{first['pesq_wb']:.3f} → {best['pesq_wb']:.3f} ({best['step']}) → {last['pesq_wb']:.3f}"


def markdown(data: dict) -> str:
    """One row per run, in the order given, with where it started and what its last validations bought."""
    lines = [
        "# codec-bench curve",
        "",
        f"Report written on: {describe(data['machine'])}.",
        "",
        ("Each run's validations (its `metrics.jsonl`: mel distance and SNR on its validation clips) after the compute "
         "of the runs it was initialised from (`--init_from`), counted from the chain's root. Audio-hours trained "
         "do not depend on the machine; wall-hours are the runs' own, on the device named. The slope is the "
         f"least-squares change of mel distance per audio-hour over each run's last {data['slope_points']} "
         "validations (negative: still improving). PESQ-WB (all codebooks) is validated by runs that choose "
         "best.pt by it (`--select_by pesq`); best is best.pt's validation."),
        "",
        ("| run | recipe | device | starts at audio-h / wall-h | ends at audio-h / wall-h | audio-s/s "
         "| mel at start → best (step) → last | PESQ-WB at start → best (step) → last | SNR last dB "
         "| slope mel per audio-h |"),
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for run in data["runs"]:
        first, last, best = run["points"][0], run["points"][-1], run["best"]
        hours = last["wall_hours"] - run["start_wall_hours"]
        rate = (last["audio_hours"] - run["start_audio_hours"]) / hours if hours > 0 else float("nan")
        slope = run["slope_mel_per_audio_hour"]
        lines.append(
            f"| {run['label']} | {recipe_text(run['recipe'])} | {run['device']} "
            f"| {run['start_audio_hours']:.2f} / {run['start_wall_hours']:.2f} "
            f"| {last['audio_hours']:.2f} / {last['wall_hours']:.2f} | {rate:.1f} "
            f"| {first['mel_distance']:.3f} → {best['mel_distance']:.3f} ({best['step']}) → {last['mel_distance']:.3f} "
            f"| {_pesq_text(run)} | {last['snr_db']:+.2f} | {'–' if slope is None else f'{slope:+.4f}'} |"
        )
    roots = sorted({run["root"] for run in data["runs"]})
    lines += ["", "Chain roots: " + ", ".join(f"`{root}`" for root in roots) + "."]
    if data["scores"]:
        lines += [
            "",
            (f"Whole clips of `{data['score_audio']}` through each run's `best.pt` and each chain's root, all "
             "codebooks (means over clips):"),
            "",
            "| model | PESQ-WB | STOI | mel distance | SNR dB |",
            "| --- | --- | --- | --- | --- |",
        ]
        lines += [f"| {name} | {s['pesq_wb']:.2f} | {s['stoi']:.3f} | {s['mel_distance']:.3f} | {s['snr_db']:+.2f} |"
                  for name, s in data["scores"].items()]
    return "\n".join(lines) + "\n"


def figure(data: dict) -> Figure:
    """Mel distance (and, where runs measured it, PESQ-WB) against audio-hours and against wall-hours, one line per
    run."""
    pesq_runs = [run for run in data["runs"] if run["points"][0].get("pesq_wb") is not None]
    rows = [("mel_distance", "validation mel distance (lower is better)", data["runs"])]
    rows += [("pesq_wb", "validation PESQ-WB (higher is better)", pesq_runs)] if pesq_runs else []
    fig = Figure(figsize=(11, 4.2 * len(rows)))
    axes = fig.subplots(len(rows), 2, sharey="row", squeeze=False)
    for (metric, label, runs), row_axes in zip(rows, axes):
        for run in runs:
            values = [p[metric] for p in run["points"]]
            for ax, key in zip(row_axes, ("audio_hours", "wall_hours")):
                ax.plot([p[key] for p in run["points"]], values, marker=".",
                        label=f"{run['label']} ({run['device']})")
        row_axes[0].set_ylabel(label)
        row_axes[0].legend(fontsize=7)
    axes[-1][0].set_xlabel("audio-hours trained since the chain's root")
    axes[-1][1].set_xlabel("wall-hours of training (each run on its own device)")
    for ax in axes.flat:
        ax.grid(alpha=0.3)
    fig.suptitle("codec-bench curve: quality against training compute")
    return fig
