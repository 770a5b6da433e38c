"""The live benchmark's Markdown summary and plot."""

from __future__ import annotations

from matplotlib.figure import Figure

from sscodec.benchmarks.machine import describe


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{value:.0f}"


def markdown(data: dict) -> str:
    """Mouth-to-ear latency per server, --latency and chunk size; then the repeated runs per --latency."""
    lines = [
        "# codec-bench live",
        "",
        f"Machine: {describe(data['machine'])}.",
        "",
        f"Model: `{data['model']}`. Clicks: 20 ms 1 kHz bursts every 0.5 s through `codec-stream --mic`.",
        "PulseAudio: null sinks at 16 kHz; a second PortAudio client plays the clicks into the microphone sink and",
        "records the speaker sink; its own loopback delay (microphone sink straight back) is subtracted. JACK: dummy",
        "backend at 48 kHz, 960-sample periods; `jack_metro` is the microphone, `jack_rec` records it and the codec's",
        "output port together (the codec resamples 48 <-> 16 kHz).",
        "",
        ("| server | --latency | chunk | measured p50 ms | p95 ms | clicks found | expected ms (stats) | "
         "PortAudio in / out ms | resampler ms | reopens |"),
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in data["mouth_to_ear"]:
        live = r["stats"]["live"]
        lines.append(
            f"| {r['server']} | {r['latency']} | {r['chunk_frames']} | {_ms(r['p50_ms'])} | {_ms(r['p95_ms'])} | "
            f"{r['clicks_found']}/{r['clicks']} | {_ms(live['expected_latency_ms'])} | "
            f"{_ms(live['input_latency_ms'])} / {_ms(live['output_latency_ms'])} | "
            f"{live['resampler_delay_ms']:.0f} | {live['reopens']} |"
        )
    loopback = [r["loopback_p50_ms"] for r in data["mouth_to_ear"] if "loopback_p50_ms" in r]
    if loopback:
        lines += ["", f"PulseAudio loopback subtracted: {loopback[0]:.0f} ms."]
    lines += [
        "",
        "Repeated runs on the PulseAudio null-sink pair (nothing playing), 1-frame chunks:",
        "",
        ("| --latency | runs × s | ended with an error | runs with a reopen | reopens | underflows (sum) | "
         "overflows (sum) |"),
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for s in data["repeated_runs"]:
        rows = s["rows"]
        lines.append(
            f"| {s['latency']} | {s['runs']} × {s['seconds']:g} | {s['failed_runs']} | "
            f"{sum((r['reopens'] or 0) > 0 for r in rows)} | {sum(r['reopens'] or 0 for r in rows)} | "
            f"{sum(r['underflows'] or 0 for r in rows)} | {sum(r['overflows'] or 0 for r in rows)} |"
        )
    errors = sorted({r["error"] for s in data["repeated_runs"] for r in s["rows"] if r["exit_code"] != 0})
    lines += ["", *(f"- error: {e}" for e in errors)]
    return "\n".join(lines) + "\n"


def figure(data: dict) -> Figure:
    """Measured p50 and p95 per case."""
    cases = data["mouth_to_ear"]
    fig = Figure(figsize=(8, 4))
    ax = fig.add_subplot()
    labels = [f"{r['server']}\n{r['latency']}, K={r['chunk_frames']}" for r in cases]
    x = range(len(cases))
    ax.bar([i - 0.2 for i in x], [r["p50_ms"] or 0 for r in cases], 0.4, label="p50")
    ax.bar([i + 0.2 for i in x], [r["p95_ms"] or 0 for r in cases], 0.4, label="p95")
    ax.set_xticks(list(x), labels, fontsize=7)
    ax.set_ylabel("mouth-to-ear (ms)")
    ax.legend()
    ax.set_title("codec-bench live: measured click delay through codec-stream --mic")
    return fig
