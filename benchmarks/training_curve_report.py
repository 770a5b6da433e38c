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
    return ", ".join(parts)


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
         "validations (negative: still improving)."),
        "",
        ("| run | recipe | device | starts at audio-h / wall-h | ends at audio-h / wall-h | audio-s/s "
         "| mel at start → best (step) → last | SNR last dB | slope mel per audio-h |"),
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
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
            f"| {last['snr_db']:+.2f} | {'–' if slope is None else f'{slope:+.4f}'} |"
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
    """Mel distance against audio-hours and against wall-hours, one line per run."""
    fig = Figure(figsize=(11, 4.2))
    axes = fig.subplots(1, 2, sharey=True)
    for run in data["runs"]:
        mel = [p["mel_distance"] for p in run["points"]]
        for ax, key in zip(axes, ("audio_hours", "wall_hours")):
            ax.plot([p[key] for p in run["points"]], mel, marker=".", label=f"{run['label']} ({run['device']})")
    axes[0].set_xlabel("audio-hours trained since the chain's root")
    axes[1].set_xlabel("wall-hours of training (each run on its own device)")
    axes[0].set_ylabel("validation mel distance (lower is better)")
    for ax in axes:
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle("codec-bench curve: quality against training compute")
    return fig
