"""The call benchmark's Markdown summary and plot."""

from __future__ import annotations

from matplotlib.figure import Figure

from sscodec.benchmarks.machine import describe
from sscodec.common.text import duration, plural

METHOD_NAMES = {
    "codec_repeat": "codec, our concealment",
    "codec_silence": "codec, silence insertion",
    "opus_plc": "Opus, its own PLC",
}


def markdown(data: dict) -> str:
    """The verdict, the method, then one row per network: what the buffer did and each method's scores."""
    v = data["verdict"]
    lines = [
        "# codec-bench call",
        "",
        f"Machine: {describe(data['machine'])}.",
        "",
        (
            f"Model: `{data['model']['directory']}`, {data['codebooks']} {plural(data['codebooks'], 'codebook')} ({data['codec_kbps']:g} kbps raw), "
            f"1-frame packets; Opus: {data['opus']}. {len(data['clips'])} {plural(len(data['clips']), 'clip')} from `{data['audio_dir']}` "
            f"({duration(data['audio_seconds'])}), {duration(data['wall_seconds'])} wall."
        ),
        "",
        f"Network: {data['network_method']}",
        "",
        (
            f"**Our concealment beats silence insertion (higher PESQ-WB and lower mel distance) at every loss rate, "
            f"random and bursty, at every jitter: {'yes' if v['beats_silence_everywhere'] else 'NO'}**"
            + ("" if v["beats_silence_everywhere"] else f" (not at {v['exceptions']})")
            + "."
        ),
        "",
        (
            "| loss | pattern | jitter ms | concealed % (late %) | stretched / compressed per clip | playout delay ms "
            "| PESQ-WB ours / silence / Opus | mel distance ours / silence / Opus |"
        ),
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in data["results"]:
        n, m = row["network"], row["methods"]
        pesq = " / ".join(f"{m[k]['pesq_wb']['mean']:.2f}" for k in METHOD_NAMES)
        mel = " / ".join(f"{m[k]['mel_distance']['mean']:.3f}" for k in METHOD_NAMES)
        lines.append(
            f"| {row['loss']:.0%} | {row['pattern']} | {row['jitter_ms']:g} | {100 * n['concealed']:.1f} "
            f"({100 * n['late']:.1f}) | {n['stretched']:.1f} / {n['compressed']:.1f} | {n['playout_delay_ms']:.1f} "
            f"| {pesq} | {mel} |"
        )
    lines += ["", f"Scores: {data['score_method']}", ""]
    return "\n".join(lines)


def figure(data: dict) -> Figure:
    """PESQ-WB and mel distance against the loss rate (no jitter; random solid, bursty dashed), and PESQ-WB
    against jitter at each loss rate (random loss)."""
    fig = Figure(figsize=(15, 4.5))
    axes = fig.subplots(1, 3)
    colors = {"codec_repeat": "tab:blue", "codec_silence": "tab:gray", "opus_plc": "tab:orange"}
    results = data["results"]
    for metric, ax in (("pesq_wb", axes[0]), ("mel_distance", axes[1])):
        for method, color in colors.items():
            for pattern, style in (("random", "o-"), ("bursty", "s--")):
                rows = sorted(
                    (
                        r
                        for r in results
                        if r["jitter_ms"] == 0 and (r["pattern"] == pattern or r["loss"] == 0)
                    ),
                    key=lambda r: r["loss"],
                )
                ax.plot(
                    [100 * r["loss"] for r in rows],
                    [r["methods"][method][metric]["mean"] for r in rows],
                    style,
                    color=color,
                    label=f"{METHOD_NAMES[method]}, {pattern}",
                )
        ax.set_xlabel("packet loss (%), no jitter")
        ax.set_ylabel(
            {"pesq_wb": "PESQ-WB (higher is better)", "mel_distance": "mel distance (lower is better)"}[
                metric
            ]
        )
    axes[0].legend(fontsize=7)
    ax = axes[2]
    for method, color in colors.items():
        for loss in sorted({r["loss"] for r in results}):
            rows = sorted(
                (r for r in results if r["loss"] == loss and r["pattern"] == "random"),
                key=lambda r: r["jitter_ms"],
            )
            ax.plot(
                [r["jitter_ms"] for r in rows],
                [r["methods"][method]["pesq_wb"]["mean"] for r in rows],
                "o-",
                color=color,
                alpha=0.4 + 0.6 * (1 - loss / 0.2) if loss <= 0.2 else 0.4,
                label=f"{METHOD_NAMES[method]}" if loss == 0 else None,
            )
    ax.set_xlabel("jitter (ms; each packet held 0..2× it)")
    ax.set_title("random loss 0, 5, 10, 20 % (fainter = more loss)", fontsize=9)
    ax.set_ylabel("PESQ-WB")
    ax.legend(fontsize=7)
    fig.suptitle("codec-bench call: received against sent, through simulated loss and jitter")
    fig.tight_layout()
    return fig
