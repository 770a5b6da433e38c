"""The training benchmark's Markdown table and plot."""

from __future__ import annotations

from matplotlib.figure import Figure

from benchmarks.machine import describe


def markdown(data: dict) -> str:
    """One row per preset, precision and compile setting."""
    lines = [
        "# codec-bench train",
        "",
        f"Machine: {describe(data['machine'])}.",
        "",
        (
            f"Full recipe (L1 + multi-scale mel + GAN with feature matching from step 0), {data['warmup_steps']} "
            f"warm-up steps, then {data['timed_steps']} timed steps; audio from `{data['audio_dir']}`."
        ),
        "",
        "| preset | precision | torch.compile | batch | steps/s | samples/s | audio-s/s | peak GPU MB |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in data["runs"]:
        lines.append(
            f"| {r['preset']} | {r['precision']} | {r['compiled']} | {r['batch_size']} | "
            f"{r['steps_per_s']:.2f} | {r['samples_per_s']:.1f} | {r['audio_seconds_per_s']:.1f} | "
            f"{r['peak_gpu_memory_mb']:.0f} |"
        )
    return "\n".join(lines) + "\n"


def figure(data: dict) -> Figure:
    """Samples per second for every setting."""
    runs = data["runs"]
    labels = [
        f"{r['preset']} {r['precision'].split()[0]}{' compiled' if r['compiled'] else ''}" for r in runs
    ]
    fig = Figure(figsize=(8, 0.4 * len(runs) + 1.5))
    ax = fig.add_subplot()
    ax.barh(labels, [r["samples_per_s"] for r in runs])
    ax.invert_yaxis()
    ax.set_xlabel("training samples per second")
    ax.set_title(f"codec-bench train on {data['machine']['gpu']}")
    return fig
