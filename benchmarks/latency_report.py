"""The latency benchmark's Markdown table, target verdict and plot."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from sscodec.benchmarks.machine import describe

TARGET_RTF = 0.1  # the edge target: small, 1-frame chunks, one CPU thread, encode + decode


def target_verdict(cases: list[dict]) -> dict:
    """The edge target case (ONNX Runtime fp32, CPU, 1 thread, 1-frame chunks) against RTF 0.1."""
    for case in cases:
        if (case["backend"], case["precision"], case["device"], case["threads"], case["chunk_frames"]) == (
            "onnxruntime",
            "fp32",
            "cpu",
            1,
            1,
        ) and "total" in case:
            rtf = case["total"]["rtf"]
            return {"rtf_max": TARGET_RTF, "rtf": rtf, "speed_x_real_time": 1 / rtf, "met": rtf <= TARGET_RTF}
    return {"rtf_max": TARGET_RTF, "rtf": None, "met": False}


def label(case: dict) -> str:
    """e.g. 'onnxruntime fp32 cpu 1t'."""
    threads = f" {case['threads']}t" if case["threads"] else ""
    return f"{case['backend']} {case['precision']} {case['device']}{threads}"


def markdown(data: dict) -> str:
    """Tables of every measured case, the skipped ones with reasons, the target and the profile."""
    model, target = data["model"], data["target"]
    lines = [
        "# codec-bench latency",
        "",
        f"Machine: {describe(data['machine'])}.",
        "",
        (
            f"Model: `{model['directory']}` (preset `{model['preset']}`), {model['parameters']:,} parameters "
            f"({model['parameter_source']}); stream graphs {model['stream_graph_mb']:.2f} MB on disk "
            f"(all files: {', '.join(f'{name} {size / 1e6:.2f} MB' for name, size in model['size_bytes'].items())})."
        ),
        (
            f"Algorithmic latency: {data['algorithmic_latency_ms']:g} ms (one frame; a chunk of K frames waits K × "
            f"{data['algorithmic_latency_ms']:g} ms). Per case: {data['warmup_chunks']} warm-up chunks, then "
            f"{data['chunks_per_case']} timed chunks of real speech. Times per chunk in ms; encode includes packing "
            "the codes, decode unpacking them (as codec-stream counts). RTF = compute / audio time."
        ),
        "",
        "Precisions: " + "; ".join(f"{v['precision']}: {v['source']}" for v in data["variants"]) + ".",
        "",
        (
            "| backend | chunk | encode p50 / p95 / p99 / max | decode p50 / p95 / p99 / max | "
            "enc+dec p50 / p95 / p99 / max | RTF enc / dec / enc+dec | warm-up first / mean |"
        ),
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    skipped: dict[tuple[str, str], list[int]] = {}
    for case in data["cases"]:
        if "skipped" in case:
            skipped.setdefault((label(case), case["skipped"]), []).append(case["chunk_frames"])
            continue
        e, d, t, w = case["encode"], case["decode"], case["total"], case["warmup"]
        lines.append(
            f"| {label(case)} | {case['chunk_frames']} | {_pcts(e)} | {_pcts(d)} | {_pcts(t)} | "
            f"{e['rtf']:.3f} / {d['rtf']:.3f} / {t['rtf']:.3f} | {w['first_chunk_ms']:.1f} / {w['mean_ms']:.2f} |"
        )
    verdict = "met" if target["met"] else "not met"
    rtf = (
        f"{target['rtf']:.3f} ({target['speed_x_real_time']:.1f}× real time)"
        if target["rtf"]
        else "not measured"
    )
    skipped_lines = [
        f"- {name}, chunks of {', '.join(map(str, ks))} frame(s): {why}"
        for (name, why), ks in skipped.items()
    ]
    lines += [
        "",
        *(["Skipped:", *skipped_lines, ""] if skipped else []),
        (
            f"**Target** ({model['preset']}, ONNX Runtime fp32, one CPU thread, 1-frame chunks, encode + decode, RTF ≤ "
            f"{target['rtf_max']}): RTF {rtf}: **{verdict}**."
        ),
        "",
    ]
    lines += _comparison_lines(data.get("comparison"))
    lines += _cost_lines(data.get("stream_cost"))
    lines += _profile_lines(data.get("profile"))
    return "\n".join(lines) + "\n"


def _comparison_lines(comparison: dict | None) -> list[str]:
    if not comparison:
        return []
    lines = [
        "## Side by side: one clip streamed, through the offline graphs and through libopus",
        "",
        (
            f"The first {comparison['clip_seconds']:g} s of the audio, {comparison['rounds']} interleaved rounds on "
            f"one thread (medians); streamed = codec-stream's compute (encode, pack, unpack, decode) one frame per "
            f"call; libopus ({comparison['libopus'] or 'not installed'}) = encode at complexity 10 + decode of "
            "the same clip (Ogg Opus via opuscodec, decoded at 48 kHz)."
        ),
        "",
        "| way | ms per 20 ms frame (wall) | CPU ms per frame | RTF |",
        "| --- | --- | --- | --- |",
    ]
    for name, row in comparison["ways"].items():
        if "skipped" in row:
            lines.append(f"| {name} | skipped: {row['skipped']} | | |")
        else:
            lines.append(
                f"| {name} | {row['ms_per_frame']:.3f} | {row['cpu_ms_per_frame']:.3f} | {row['rtf']:.4f} |"
            )
    lines.append("")
    ratios, targets = comparison["ratios"], comparison["targets"]
    for key, label_text, limit in (
        (
            "stream_over_offline",
            "streamed 1-frame chunks / offline graphs, per second of audio",
            targets["stream_over_offline_max"],
        ),
        (
            "stream_over_opus_12kbps",
            "streamed 1-frame chunks / libopus 12 kbps, per frame",
            targets["stream_over_opus_12kbps_max"],
        ),
    ):
        ratio = ratios[key]
        if ratio is None:
            lines.append(f"- {label_text}: not measured here.")
            continue
        verdict = "met" if ratio["wall"] <= limit else "not met"
        lines.append(
            f"- {label_text}: **{ratio['wall']:.2f}×** (CPU time {ratio['cpu']:.2f}×); target ≤ {limit:g}×: "
            f"**{verdict}**."
        )
    return [*lines, ""]


_COST_PARTS = {
    "offline_per_frame": "offline graphs, per frame",
    "per_frame_work_beyond_offline": "streamed work per frame beyond offline (fit over chunks of 1–8 frames)",
    "run_floor": "two `session.run` calls that do nothing",
    "node_dispatch": "node dispatch (nodes after ONNX Runtime's optimisation × µs per node)",
    "weight_streaming": "reading every conv and search-table weight once per call",
    "rest_of_the_fixed_cost": "the rest of each graph's fixed cost per call",
    "taking_turns": "encoder and decoder taking turns (each evicts the other's weights and pages)",
    "engine": "the engine: packing, unpacking, checks, statistics",
}


def _cost_lines(cost: dict | None) -> list[str]:
    if not cost or "summary" not in cost:
        return []
    summary, graphs = cost["summary"], cost["graphs"]
    lines = [
        "## Where a streamed 1-frame chunk's time goes, against the offline graphs",
        "",
        (
            f"Thread CPU µs per frame, {cost['frames']} frames, {cost['rounds']} interleaved rounds (medians), one "
            f"thread; node dispatch measured at {cost['dispatch_us_per_node']:.2f} µs per node. Per graph: "
            + "; ".join(
                f"{name} {g['nodes_after_optimisation']} nodes, {g['weight_bytes_per_call'] / 1e6:.2f} MB of "
                f"weights per call, {g['fit_fixed_us_per_call']:.0f} µs per call + {g['fit_us_per_frame']:.0f} µs "
                f"per frame (offline {g.get('offline_us_per_frame', 0):.0f} µs per frame)"
                for name, g in graphs.items()
            )
            + "."
        ),
        "",
        "| part | µs per frame | in units of offline |",
        "| --- | --- | --- |",
    ]
    offline = summary["us"]["offline_per_frame"]
    for key, us in summary["us"].items():
        lines.append(f"| {_COST_PARTS[key]} | {us:.1f} | {us / offline:.2f}× |")
    lines += [
        (
            f"| **streamed (codec-stream's path)** | **{summary['streamed_us_per_frame']:.1f}** | "
            f"**{summary['stream_over_offline']:.2f}×** |"
        ),
        "",
        (
            f"Floor with fp32 weights read every call and nothing else per call (offline + weights + the two empty "
            f"calls): **{summary['floor_ratio']:.2f}×** offline."
        ),
        "",
    ]
    return lines


def _pcts(s: dict) -> str:
    return f"{s['p50']:.2f} / {s['p95']:.2f} / {s['p99']:.2f} / {s['max']:.2f}"


def _profile_lines(profile: dict | None) -> list[str]:
    if not profile:
        return []
    lines = [
        (
            f"## Where the time goes (ONNX Runtime profiler, fp32, 1 thread, {profile['chunks']} chunks of "
            f"{profile['chunk_frames']} frame)"
        ),
        "",
    ]
    for graph in ("encoder_stream", "decoder_stream"):
        p = profile[graph]
        top = ", ".join(f"{o['op']} {100 * o['share']:.0f}%" for o in p["ops"][:6])
        lines.append(
            f"- {graph}: {p['model_run_us'] / profile['chunks']:.0f} µs per run under the profiler, of which kernels "
            f"{100 * (p['kernel_share_of_run'] or 0):.0f}%; kernel time by op type: {top}."
        )
    return [*lines, ""]


def figure(data: dict) -> Figure:
    """Encode + decode RTF per case and chunk size, with the 0.1 target line; beside it, the side-by-side clip."""
    measured = [c for c in data["cases"] if "total" in c]
    labels = list(dict.fromkeys(label(c) for c in measured))
    ways = {n: r for n, r in (data.get("comparison") or {}).get("ways", {}).items() if "ms_per_frame" in r}
    fig = Figure(figsize=(9, 0.45 * len(labels) + 1.6 + (0.4 * len(ways) + 1.2 if ways else 0)))
    axes = fig.subplots(2, 1, height_ratios=[len(labels) + 2, len(ways) + 2]) if ways else [fig.add_subplot()]
    ax = axes[0]
    height = 0.8 / len(data["chunk_frames"])
    for i, k in enumerate(data["chunk_frames"]):
        rtf = {label(c): c["total"]["rtf"] for c in measured if c["chunk_frames"] == k}
        y = np.arange(len(labels)) + i * height
        ax.barh(y, [rtf.get(name, 0.0) for name in labels], height, label=f"{k} frame(s) per chunk")
    ax.axvline(TARGET_RTF, color="red", linestyle="--", label=f"target RTF {TARGET_RTF}")
    ax.set_yticks(np.arange(len(labels)) + 0.4 - height / 2, labels)
    ax.invert_yaxis()
    ax.set_xlabel("real-time factor, encode + decode (lower is faster)")
    ax.set_title(f"codec-bench latency: {data['model']['preset']} on {data['machine']['cpu']}")
    ax.legend(loc="lower right", fontsize=8)
    if ways:
        side = axes[1]
        side.barh(list(ways), [r["ms_per_frame"] for r in ways.values()], color="gray")
        side.invert_yaxis()
        side.set_xlabel("ms per 20 ms frame, encode + decode, one clip side by side (lower is faster)")
    fig.tight_layout()
    return fig
