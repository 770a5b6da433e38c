"""The live benchmark's Markdown summary and plot."""

from __future__ import annotations

from matplotlib.figure import Figure

from sscodec.benchmarks.live import LOOPBACK_HOLDS_TARGET, LOOPBACK_TOLERANCE_MS, PULSE_RATE
from sscodec.benchmarks.machine import describe


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{value:.0f}"


def failed_checks(data: dict) -> list[str]:
    """One line per failed sanity check, naming its case."""
    cases = [(f"{r['server']} --latency {r['latency']} chunk {r['chunk_frames']}", r) for r in data["mouth_to_ear"]]
    cases += [(f"{r['server']} module-loopback {r['target_ms']} ms", r) for r in data["loopback_checks"]]
    return [f"{name}: {failure}" for name, r in cases for failure in r["failed_checks"]]


def markdown(data: dict) -> str:
    """Mouth-to-ear latency per server, --latency and chunk size, the method's own checks; then the repeated runs
    per server and --latency."""
    lines = [
        "# codec-bench live",
        "",
        f"Machine: {describe(data['machine'])}.",
        "",
        f"Model: `{data['model']}`. Clicks: 20 ms 1 kHz bursts every 0.5 s through `codec-stream --mic`, recorded",
        "in one stream with the codec's output, so the delay is exact to the sample. PulseAudio and PipeWire (its",
        f"PulseAudio layer): one stereo null sink at {PULSE_RATE} Hz; `paplay` plays the clicks into a mono sink on its",
        "left channel, the codec records a mono source made of the monitor's left channel and plays into a mono sink",
        "on its right channel, `parec` records the monitor; PipeWire's quantum is held at its default so that no",
        "client re-sizes the graph's buffers mid-measurement. JACK: dummy backend at 48 kHz, 960-sample periods;",
        "`jack_metro` is the microphone, `jack_rec` records it and the codec's output port together (the codec",
        "resamples to and from the model's rate).",
        "",
        ("| server | --latency | chunk | measured p50 ms | p95 ms | min ms | p50 per start ms | clicks found | "
         "algorithmic ms | expected ms (stats) | PortAudio in / out ms | resampler ms | reopens |"),
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in data["mouth_to_ear"]:
        stats = r["starts"][0]["stats"]  # PortAudio reports the same device latencies at every start
        live = stats["live"]
        lines.append(
            f"| {r['server']} | {r['latency']} | {r['chunk_frames']} | {_ms(r['p50_ms'])} | {_ms(r['p95_ms'])} | "
            f"{_ms(r['min_ms'])} | {', '.join(_ms(start['p50_ms']) for start in r['starts'])} | "
            f"{r['clicks_found']}/{r['clicks']} | {_ms(stats['algorithmic_latency_ms'])} | "
            f"{_ms(live['expected_latency_ms'])} | {_ms(live['input_latency_ms'])} / "
            f"{_ms(live['output_latency_ms'])} | {live['resampler_delay_ms']:.0f} | "
            f"{sum(start['stats']['live']['reopens'] for start in r['starts'])} |"
        )
    lines += [
        "",
        "The method checked: a plain `module-loopback` (no codec) of known target latency in the codec's place.",
        "",
        "| server | loopback target ms | measured p50 ms | p95 ms | clicks found |",
        "| --- | --- | --- | --- | --- |",
        *(f"| {r['server']} | {r['target_ms']} | {_ms(r['p50_ms'])} | {_ms(r['p95_ms'])} | "
          f"{r['clicks_found']}/{r['clicks']} |" for r in data["loopback_checks"]),
        "",
    ]
    failures = failed_checks(data)
    verdict = f"{len(failures)} FAILED" if failures else "all passed"
    lines.append("Sanity checks (no click through the codec faster than its algorithmic latency; no click through a "
                 f"loopback faster than its target - {LOOPBACK_TOLERANCE_MS:g} ms, and on "
                 f"{', '.join(LOOPBACK_HOLDS_TARGET)} its p50 at most its target + {LOOPBACK_TOLERANCE_MS:g} ms): "
                 f"{verdict}.")
    lines += [f"- FAILED: {failure}" for failure in failures]
    lines += [f"- skipped {s['server']}: {s['reason']}" for s in data["skipped"]]
    if not data["repeated_runs"]:
        return "\n".join([*lines, "", "Repeated runs: none were run (--runs 0, and --pipewire-runs 0 or PipeWire skipped above)."]) + "\n"
    lines += [
        "",
        "Repeated runs on a null-sink pair (nothing playing), 1-frame chunks:",
        "",
        ("| server | --latency | runs × s | ended with an error | runs with a reopen | reopens | underflows (sum) | "
         "overflows (sum) |"),
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for s in data["repeated_runs"]:
        rows = s["rows"]
        lines.append(
            f"| {s['server']} | {s['latency']} | {s['runs']} × {s['seconds']:g} | {s['failed_runs']} | "
            f"{sum((r['reopens'] or 0) > 0 for r in rows)} | {sum(r['reopens'] or 0 for r in rows)} | "
            f"{sum(r['underflows'] or 0 for r in rows)} | {sum(r['overflows'] or 0 for r in rows)} |"
        )
    errors = sorted({r["error"] for s in data["repeated_runs"] for r in s["rows"] if r["exit_code"] != 0})
    lines += ["", *(f"- error: {e}" for e in errors)]
    return "\n".join(lines) + "\n"


def figure(data: dict) -> Figure:
    """Measured p50 and p95 per case, with each case's algorithmic latency."""
    cases = data["mouth_to_ear"]
    fig = Figure(figsize=(10, 4))
    ax = fig.add_subplot()
    labels = [f"{r['server']}\n{r['latency']}, K={r['chunk_frames']}" for r in cases]
    x = range(len(cases))
    ax.bar([i - 0.2 for i in x], [r["p50_ms"] or 0 for r in cases], 0.4, label="p50")
    ax.bar([i + 0.2 for i in x], [r["p95_ms"] or 0 for r in cases], 0.4, label="p95")
    ax.scatter(list(x), [r["starts"][0]["stats"]["algorithmic_latency_ms"] for r in cases], color="black", marker="_", s=300,
               zorder=3, label="algorithmic")
    ax.set_xticks(list(x), labels, fontsize=7)
    ax.set_ylabel("mouth-to-ear (ms)")
    ax.legend()
    ax.set_title("codec-bench live: click delay through codec-stream --mic, recorded with the click")
    return fig
