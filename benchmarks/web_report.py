"""The web benchmark's Markdown summary and plot."""

from __future__ import annotations

from matplotlib.figure import Figure

from sscodec.benchmarks.machine import describe
from sscodec.benchmarks.web import WARMUP_FRAMES


def markdown(data: dict) -> str:
    """Per codebook count: ms per 1-frame call in Chromium and in Python, what the cut encoder saves, and the
    browser's cost as a multiple of the native one."""
    lines = [
        "# codec-bench web",
        "",
        f"Machine: {describe(data['machine'])}.",
        "",
        f"Browser: {data['user_agent']}, ONNX Runtime Web {data['onnxruntime_web']} (WebAssembly SIMD, one thread),",
        f"in the page's main thread with the page's own `codec.js`. Model: `{data['model']}`. Audio: {data['audio']},",
        f"{data['cases'][0]['frames']} frames of 20 ms, one per call; medians over all but the first {WARMUP_FRAMES}.",
        "Cut and whole encoder run interleaved call by call, each with its own state; the decoder decodes the cut",
        "encoder's codes. Python: the same calls through onnxruntime (one thread) right after, in this process.",
        "",
        ("| codebooks | kbps | browser cut / whole encoder ms | browser decoder ms | cut saves (browser) | "
        "Python cut / whole ms | Python decoder ms | cut saves (Python) | browser ÷ Python (cut + decoder) | "
        "cut codes = whole |"),
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for case in data["cases"]:
        b, p = case["browser_ms"], case["python_ms"]
        lines.append(
            f"| {case['codebooks']} | {case['kbps']:g} | {b['cut']:.2f} / {b['whole']:.2f} | {b['decode']:.2f} | "
            f"{_saving(case['cut_saves_browser'])} | {p['cut']:.3f} / {p['whole']:.3f} | {p['decode']:.3f} | "
            f"{_saving(case['cut_saves_python'])} | {case['browser_over_python']:.1f}× | "
            f"{case['cut_codes_equal_frames']:.1%} |"
        )
    lines += ["", "Chromium coarsens `performance.now()` to 0.1 ms in a page that is not cross-origin isolated: the",
              "browser medians are that coarse.", ""]
    return "\n".join(lines)


def _saving(share: float | None) -> str:
    """What the cut encoder saves, or that nothing was cut (every codebook searched)."""
    return "— (nothing cut)" if share is None else f"{share:.0%}"


def figure(data: dict) -> Figure:
    """Median ms per 1-frame call against codebooks: the browser's cut and whole encoder and decoder, and
    Python's."""
    fig = Figure(figsize=(8, 4.5))
    ax = fig.add_subplot()
    counts = [case["codebooks"] for case in data["cases"]]
    for where, style in (("browser_ms", "-"), ("python_ms", "--")):
        for key, label in (("cut", "cut encoder"), ("whole", "whole encoder"), ("decode", "decoder")):
            ax.plot(counts, [case[where][key] for case in data["cases"]], style, marker="o",
                    label=f"{where.split('_')[0]}: {label}")
    ax.set_xlabel("codebooks sent")
    ax.set_ylabel("ms per 1-frame call (median)")
    ax.set_yscale("log")
    ax.set_title("codec-bench web: Chromium (WebAssembly) and Python (onnxruntime), one thread")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return fig
