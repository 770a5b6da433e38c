"""The quality benchmark's Markdown table and rate–quality plot."""

from __future__ import annotations

from matplotlib.figure import Figure

from sscodec.benchmarks.machine import describe
from sscodec.benchmarks.metrics import METRICS

PLOTTED = (
    ("mel_distance", "mel distance (lower is better)"),
    ("pesq_wb", "PESQ-WB"),
    ("stoi", "STOI"),
    ("si_sdr_db", "SI-SDR (dB)"),
)


def condition_name(condition: dict) -> str:
    """e.g. 'codec 6 kbps (12 codebooks)' or 'opus 8 kbps'."""
    books = f" ({condition['codebooks']} codebooks)" if "codebooks" in condition else ""
    return f"{condition['codec']} {condition['kbps']:g} kbps{books}"


def find(conditions: list[dict], codec: str, kbps: float) -> dict | None:
    """The measured condition of `codec` at `kbps`, if any."""
    for c in conditions:
        if c["codec"] == codec and abs(c["kbps"] - kbps) < 1e-9 and "summary" in c:
            return c
    return None


def headline(conditions: list[dict]) -> str:
    """Issue 8's aim: the codec at 6 kbps against Opus at 8 kbps on mel distance and PESQ-WB."""
    codec, opus = find(conditions, "codec", 6.0), find(conditions, "opus", 8.0)
    if codec is None or opus is None:
        return "Codec 6 kbps vs Opus 8 kbps: not both measured."
    parts = []
    for metric, better in (("mel_distance", min), ("pesq_wb", max)):
        ours, theirs = codec["summary"][metric]["mean"], opus["summary"][metric]["mean"]
        winner = "codec" if better(ours, theirs) == ours else "Opus"
        parts.append(f"{metric} {ours:.3f} vs {theirs:.3f} ({winner} better)")
    return "Codec 6 kbps vs Opus 8 kbps (issue 8's aim: beat it on both): " + "; ".join(parts) + "."


def markdown(data: dict) -> str:
    """Mean ± standard deviation over clips of every metric for every condition."""
    lines = [
        "# codec-bench quality",
        "",
        f"Machine: {describe(data['machine'])}.",
        "",
        (
            f"Model: `{data['model']['directory']}` (preset `{data['model']['preset']}`). Clips: {data['clips']} files "
            f"from `{data['audio_dir']}` ({data['audio_seconds']:.1f} s), mono 16 kHz. Mel distance: "
            f"{data['mel_definition']}. PESQ: ITU-T P.862.2 wide band (`pesq`); STOI: `pystoi` (classic)."
        ),
        (
            f"Codec: encoder.onnx once per clip, decoder.onnx on the first Q codebooks. Opus ({data['opus_version']}): "
            f"{data['opus_method']}"
        ),
        "",
        "| condition | " + " | ".join(METRICS) + " |",
        "| --- |" + " --- |" * len(METRICS),
    ]
    for c in data["conditions"]:
        if "skipped" in c:
            lines.append(f"| {condition_name(c)} | skipped: {c['skipped']} |" + " |" * (len(METRICS) - 1))
            continue
        cells = [f"{c['summary'][m]['mean']:.3f} ± {c['summary'][m]['std']:.3f}" for m in METRICS]
        lines.append(f"| {condition_name(c)} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Mean ± standard deviation over clips (NaN-free clips only; per-clip values in the JSON).",
        "",
        headline(data["conditions"]),
        "",
    ]
    return "\n".join(lines)


def figure(data: dict) -> Figure:
    """Four panels of metric against bitrate, codec and Opus, with ± one standard deviation."""
    fig = Figure(figsize=(11, 7.5))
    axes = fig.subplots(2, 2)
    for ax, (metric, title) in zip(axes.flat, PLOTTED):
        for codec, marker in (("codec", "o-"), ("opus", "s--")):
            points = [c for c in data["conditions"] if c["codec"] == codec and "summary" in c]
            if not points:
                continue
            kbps = [c["kbps"] for c in points]
            mean = [c["summary"][metric]["mean"] for c in points]
            std = [c["summary"][metric]["std"] for c in points]
            ax.errorbar(kbps, mean, yerr=std, fmt=marker, capsize=3, label=codec)
        ax.set_xlabel("bitrate (kbps)")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(f"codec-bench quality: {data['model']['preset']} vs Opus on {data['clips']} clips")
    fig.tight_layout()
    return fig
