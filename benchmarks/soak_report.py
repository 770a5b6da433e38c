"""The soak benchmark's Markdown summary and plot."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from sscodec.benchmarks.machine import describe
from sscodec.benchmarks.soak import DRIFT_LIMIT, P99_CHUNKS, RSS_LIMIT_MB
from sscodec.common.text import duration, plural


def markdown(data: dict) -> str:
    """Verdicts first, then one row per 10% segment."""
    r = data["soak"]
    hours = r["input_samples"] / data["sample_rate"] / 3600
    lines = [
        "# codec-bench soak",
        "",
        f"Machine: {describe(data['machine'])}.",
        "",
        (
            f"Model: `{data['model']['directory']}` (preset `{data['model']['preset']}`), all codebooks, "
            f"{r['chunk_frames']}-frame chunks, one stream never reset, fed {data['block_samples']}-sample blocks "
            f"at full speed: {hours:.3f} h of audio ({len(data['clips'])} {plural(len(data['clips']), 'clip')} from `{data['audio_dir']}`, repeated) "
            f"in {duration(r['wall_seconds'])} wall."
        ),
        "",
        (
            f"- Length: input {r['input_samples']} samples, decoded {r['decoded_samples']} "
            f"(expected {r['expected_decoded_samples']}, whole frames), output after trim {r['output_samples']}: "
            f"**{'exact' if r['length_exact'] else 'MISMATCH'}**."
        ),
        (
            f"- Memory (RSS): {r['rss_start_mb']:.1f} MB at start, {r['rss_end_mb']:.1f} MB at the end; growth after "
            f"the first segment {r['rss_growth_after_first_segment_mb']:+.1f} MB "
            f"(limit {RSS_LIMIT_MB:g} MB): **{'flat' if r['memory_flat'] else 'GROWING'}**. The engine's stats keep "
            "one float per chunk by design, about 8 MB per hour of 1-frame chunks."
        ),
        (
            f"- Compute p99, last segment over first: {r['p99_last_over_first']:.2f} (drift if above {DRIFT_LIMIT:g}): "
            f"**{_drift(r)}**. Output finite throughout: {r['all_finite']}."
        ),
        (
            f"- Whole run: p50 {r['stream_stats']['compute_ms']['p50']:.3f} ms, p99 "
            f"{r['stream_stats']['compute_ms']['p99']:.3f} ms, max {r['stream_stats']['compute_ms']['max']:.1f} ms, "
            f"real-time factor {r['stream_stats']['real_time_factor']:.4f}."
        ),
        "",
        "| segment | audio s | chunks | p50 ms | p99 ms | max ms | RSS MB | output/input RMS |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for i, s in enumerate(r["segments"], 1):
        lines.append(
            f"| {i} | {s['audio_seconds']:.1f} | {s['chunks']} | {s['p50_ms']:.3f} | {s['p99_ms']:.3f} | "
            f"{s['max_ms']:.2f} | {s['rss_mb']:.1f} | {s['output_rms_over_input_rms']:.3f} |"
        )
    return "\n".join(lines) + "\n"


def figure(data: dict) -> Figure:
    """p50 and p99 per segment, with RSS on a second axis."""
    segments = data["soak"]["segments"]
    x = np.arange(1, len(segments) + 1) * 100 / len(segments)
    fig = Figure(figsize=(8, 4))
    ax = fig.add_subplot()
    ax.plot(x, [s["p50_ms"] for s in segments], "o-", label="p50")
    ax.plot(x, [s["p99_ms"] for s in segments], "s-", label="p99")
    ax.set_xlabel("progress through the run (%)")
    ax.set_ylabel("compute per chunk (ms)")
    ax.set_ylim(bottom=0)
    rss = ax.twinx()
    rss.plot(x, [s["rss_mb"] for s in segments], "k:", label="RSS")
    rss.set_ylabel("RSS (MB)")
    ax.legend(loc="lower left")
    rss.legend(loc="lower right")
    ax.set_title("codec-bench soak: compute and memory over the run")
    return fig


def _drift(result: dict) -> str:
    """The verdict on compute drift, or why there is none."""
    if result["p99_drift"] is None:
        chunks = min(segment["chunks"] for segment in result["segments"])
        return f"too short to tell ({chunks} chunks a segment; a p99 needs {P99_CHUNKS})"
    return "DRIFT" if result["p99_drift"] else "no drift"
