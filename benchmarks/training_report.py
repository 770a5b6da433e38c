"""The training benchmark's Markdown table and plot."""

from __future__ import annotations

from matplotlib.figure import Figure

from sscodec.benchmarks.machine import describe


def markdown(data: dict) -> str:
    """One row per preset, recipe, precision and compile setting."""
    lines = [
        "# codec-bench train",
        "",
        f"Machine: {describe(data['machine'])}.",
        "",
        (
            "Recipes as `codec-train --losses` (`full` with the GAN from step 0, its costliest step); "
            f"{data['warmup_steps']} untimed warm-up steps (torch.compile compiles in them), then "
            f"{data['timed_steps']} timed steps; audio from `{data['audio_dir']}`."
        ),
        "",
        (
            "| preset | recipe | device | precision | torch.compile | batch | warm-up s | steps/s | audio-s/s "
            "| audio-s per hour | peak GPU MB | data (workers) |"
        ),
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in data["runs"]:
        memory = "–" if r["peak_gpu_memory_mb"] is None else f"{r['peak_gpu_memory_mb']:.0f}"
        lines.append(
            f"| {r['preset']} | {r['losses']} | {r['device']} | {r['precision']} | {r['compiled']} | "
            f"{r['batch_size']} × {r['segment_seconds']:g} s | {r['warmup_seconds']:.1f} | {r['steps_per_s']:.2f} | "
            f"{r['audio_seconds_per_s']:.1f} | {r['audio_seconds_per_s'] * 3600:,.0f} | {memory} "
            f"| {r['pipeline']} ({r['num_workers']}) |"
        )
    lines += _pipeline_ratios(data["runs"])
    return "\n".join(lines) + "\n"


def _pipeline_ratios(runs: list[dict]) -> list[str]:
    """Streaming over in-memory audio-s/s for each setting timed both ways (their steps were interleaved)."""
    def setting(r: dict) -> tuple:
        return r["preset"], r["losses"], r["precision"], r["compiled"]

    memory = {setting(r): r["audio_seconds_per_s"] for r in runs if r["pipeline"] == "memory"}
    ratios = [
        f"`{r['preset']}` `{r['losses']}` {r['audio_seconds_per_s'] / memory[setting(r)]:.2f}×"
        for r in runs
        if r["pipeline"] == "streaming" and setting(r) in memory
    ]
    if not ratios:
        return []
    return ["", "Streaming over in-memory throughput, timed in interleaved rounds in one run: " + ", ".join(ratios)
            + "."]


def figure(data: dict) -> Figure:
    """Audio-seconds trained per second for every setting."""
    runs = data["runs"]
    labels = [
        f"{r['preset']} {r['losses']} {r['precision'].split()[0]}{' compiled' if r['compiled'] else ''} "
        f"{r['pipeline']}"
        for r in runs
    ]
    fig = Figure(figsize=(8, 0.4 * len(runs) + 1.5))
    ax = fig.add_subplot()
    ax.barh(labels, [r["audio_seconds_per_s"] for r in runs])
    ax.invert_yaxis()
    ax.set_xlabel("audio-seconds trained per second")
    machine = data["machine"]
    ax.set_title(f"codec-bench train on {machine['gpu'] or machine['cpu']}")
    return fig
