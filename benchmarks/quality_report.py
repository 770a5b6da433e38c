"""The quality benchmark's Markdown tables, rate–quality plot and spectrograms."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from sscodec.benchmarks.machine import describe
from sscodec.benchmarks.metrics import METRICS
from sscodec.common.text import plural

PLOTTED = (
    ("pesq_wb", "PESQ-WB"),
    ("stoi", "STOI"),
    ("mel_distance", "mel distance (lower is better)"),
    ("dnsmos_ovrl", "DNSMOS OVRL"),
)
HEADLINE_METRICS = ("pesq_wb", "stoi", "mel_distance", "dnsmos_ovrl", "dnsmos_p808", "si_sdr_db")
# The targets the codec is built to beat: (codec kbps, Opus kbps).
TARGETS = ((6.0, 8.0), (3.0, 6.0))


def condition_name(condition: dict) -> str:
    """e.g. 'codec 6 kbps (12 codebooks)', 'opus 8 kbps' or 'input'."""
    if condition["codec"] == "input":
        return "input"
    books = f" ({condition['codebooks']} {plural(condition['codebooks'], 'codebook')})" if "codebooks" in condition else ""
    return f"{condition['codec']} {condition['kbps']:g} kbps{books}"


def find(conditions: list[dict], codec: str, kbps: float) -> dict | None:
    """The measured condition of `codec` at `kbps`, if any."""
    for c in conditions:
        if c["codec"] == codec and abs(c["kbps"] - kbps) < 1e-9 and "summary" in c:
            return c
    return None


def verdict(conditions: list[dict], codec_kbps: float, opus_kbps: float) -> str:
    """Whether the codec at `codec_kbps` beats Opus at `opus_kbps` on PESQ-WB and STOI (means over clips)."""
    ours, theirs = find(conditions, "codec", codec_kbps), find(conditions, "opus", opus_kbps)
    if ours is None or theirs is None:
        return "not measured"
    wins = [ours["summary"][m]["mean"] > theirs["summary"][m]["mean"] for m in ("pesq_wb", "stoi")]
    return "yes" if all(wins) else "no"


def _mean(condition: dict | None, metric: str) -> str:
    if condition is None:
        return "—"
    value = condition["summary"][metric]["mean"]
    return "—" if value is None or not np.isfinite(value) else f"{value:.3f}"


def markdown(data: dict, plot_name: str) -> str:
    """A summary across sets (the targets), then every metric for every condition of every set."""
    lines = [
        "# codec-bench quality",
        "",
        f"Machine: {describe(data['machine'])}.",
        "",
        (
            f"Model: `{data['model']['directory']}` (preset `{data['model']['preset']}`). Mel distance: "
            f"{data['mel_definition']}. PESQ: ITU-T P.862.2 wide band (`pesq`); STOI: `pystoi` (classic); "
            + (f"DNSMOS: P.835 and P.808 (Microsoft, CC-BY-4.0; models from `{data['dnsmos']}`)."
               if data["dnsmos"] else "DNSMOS: not scored (--no-dnsmos).")
        ),
        (
            f"Codec: the stream graphs over each whole clip, decoded on the first Q codebooks; the bits it spends "
            "are those of the clip's codec-encode files (header and packet framing included, 50-frame packets), "
            f"raw and entropy-coded. Opus ({data['opus_version']}): {data['opus_method']}; its real bitrate (Ogg "
            "container included) is given per set. Plotted against the bits actually spent."
        ),
        "",
        f"![rate against quality]({plot_name})",
        "",
        f"Spectrograms (input, codec, Opus) of one clip per set: `{plot_name.replace('.png', '_spectrograms.png')}`.",
        "",
        "## Against the targets (means over clips)",
        "",
        (
            "| set | clips | "
            + " | ".join(f"codec {c:g} beats Opus {o:g} (PESQ-WB and STOI)" for c, o in TARGETS)
            + " | PESQ-WB codec 6 / Opus 8 | STOI codec 6 / Opus 8 | kbps spent: codec 6 raw, entropy, context / "
              "Opus 8 |"
        ),
        "| --- | --- |" + " --- |" * (len(TARGETS) + 3),
    ]
    for s in data["sets"]:
        c6, o8 = find(s["conditions"], "codec", 6.0), find(s["conditions"], "opus", 8.0)
        lines.append(
            f"| {s['name']} | {s['clips']} | "
            + " | ".join(verdict(s["conditions"], c, o) for c, o in TARGETS)
            + f" | {_mean(c6, 'pesq_wb')} / {_mean(o8, 'pesq_wb')} | {_mean(c6, 'stoi')} / {_mean(o8, 'stoi')} | "
            + f"{_spent(c6, 'raw')}, {_spent(c6, 'entropy')}, {_spent(c6, 'context')} / {_spent(o8, 'ogg')} |"
        )
    for s in data["sets"]:
        lines += [
            "",
            f"## {s['name']}: {s['clips']} {plural(s['clips'], 'clip')}, {s['audio_seconds']:.1f} s",
            "",
            # Results written before notes have none.
            *(line for note in s.get("notes", []) for line in (f"Note: {note}.", "")),
            "| condition | " + " | ".join(METRICS) + " |",
            "| --- |" + " --- |" * len(METRICS),
        ]
        for c in s["conditions"]:
            name = condition_name(c)
            if "ogg_kbps" in c:
                name += f" (real {c['ogg_kbps']:.2f} kbps)"
            if "file_kbps" in c:
                name += (f" (files: raw {_spent(c, 'raw')}, entropy {_spent(c, 'entropy')}, "
                         f"context {_spent(c, 'context')} kbps)")
            if "skipped" in c:
                lines.append(f"| {name} | skipped: {c['skipped']} |" + " |" * (len(METRICS) - 1))
                continue
            lines.append(f"| {name} | " + " | ".join(_mean(c, m) for m in METRICS) + " |")
    lines += ["", "Means over clips (finite values only; standard deviations and per-clip values in the JSON).", ""]
    # Why a coding mode shows "—" (found from outside: the reason was in the JSON alone).
    skipped = {f"{kind}-coded files: {c[f'{kind}_skipped']}" for s in data["sets"] for c in s["conditions"]
               for kind in ("entropy", "context") if f"{kind}_skipped" in c}
    lines += [f"Not measured: {'; '.join(sorted(skipped))}.", ""] if skipped else []
    return "\n".join(lines)


def spent_kbps(condition: dict, kind: str) -> float | None:
    """The bits a condition really spent (kbps): a codec file's ("raw", "entropy" or "context") or Opus' Ogg stream
    ("ogg")."""
    if kind == "ogg":
        return condition.get("ogg_kbps")
    return condition.get("file_kbps", {}).get(kind)


def _spent(condition: dict | None, kind: str) -> str:
    value = None if condition is None else spent_kbps(condition, kind)
    return "—" if value is None else f"{value:.2f}"


# What the plot draws per set: the codec at its context-coded (codec-encode's default), static-table and raw
# files' bitrates, Opus at its real one.
_CURVES = (("codec", "context", "d-", "codec, context-coded"), ("codec", "entropy", "o-.", "codec, static tables"),
           ("codec", "raw", "x:", "codec, raw"), ("opus", "ogg", "s--", "Opus"))


def figure(data: dict) -> Figure:
    """Each metric against the bits actually spent: codec files entropy-coded and raw, and Opus; per set."""
    fig = Figure(figsize=(12, 8))
    axes = fig.subplots(2, 2)
    for ax, (metric, title) in zip(axes.flat, PLOTTED):
        measured = any(c["summary"][metric]["mean"] is not None and np.isfinite(c["summary"][metric]["mean"])
                       for s in data["sets"] for c in s["conditions"] if "summary" in c)  # JSON holds NaN as null
        if not measured:  # DNSMOS with --no-dnsmos, PESQ on silence: a note, not empty axes around zero
            ax.text(0.5, 0.5, f"{title}: not measured in this run", ha="center", va="center", transform=ax.transAxes)
            ax.set_axis_off()
            continue
        for index, s in enumerate(data["sets"]):
            colour = f"C{index % 10}"
            for codec, kind, style, label in _CURVES:
                points = [c for c in s["conditions"]
                          if c["codec"] == codec and "summary" in c and spent_kbps(c, kind) is not None]
                if points:
                    ax.plot([spent_kbps(c, kind) for c in points], [c["summary"][metric]["mean"] for c in points],
                            style, color=colour, label=f"{s['name']} ({label})", markersize=4)
        ax.set_xlabel("kbps actually spent (files with their headers; Opus in Ogg)")
        ax.set_title(title)
        ax.grid(alpha=0.3)
    labelled = [ax for ax in axes.flat if ax.get_legend_handles_labels()[0]]
    if labelled:
        labelled[0].legend(fontsize=6, ncol=2)
    fig.suptitle(f"codec-bench quality: {data['model']['preset']} context-coded (solid), static tables (dash-dot) "
                 "and raw (dotted) vs Opus (dashed), per set")
    fig.tight_layout()
    return fig


def spectrograms(codec, sets: dict[str, dict[str, np.ndarray]], opus_rates: tuple[float, ...]) -> Figure:
    """Log spectrograms of the first clip of up to four sets: the input, the codec at 6 kbps (or its most
    codebooks) and Opus at 8 kbps (or the first rate asked)."""
    from sscodec.benchmarks.opus import opus_missing, opus_roundtrip

    info = codec.info
    books = info.codebooks_for_bitrate(6.0)
    opus_kbps = 8.0 if 8.0 in opus_rates else opus_rates[0]
    chosen = [(name, next(iter(clips.items()))) for name, clips in list(sets.items())[:4] if clips]
    columns = 3 if not opus_missing() else 2
    fig = Figure(figsize=(4.2 * columns, 2.6 * len(chosen)))
    axes = np.atleast_2d(fig.subplots(len(chosen), columns, squeeze=False))
    for row, (set_name, (clip_name, audio)) in enumerate(chosen):
        audio = audio[: 4 * info.sample_rate]
        versions = [("input", audio),
                    (f"codec {info.bitrate_kbps(books):g} kbps",
                     codec.decode(codec.encode(audio), books, audio.size))]
        if columns == 3:
            versions.append((f"Opus {opus_kbps:g} kbps", opus_roundtrip(audio, info.sample_rate, opus_kbps).audio))
        for ax, (title, signal) in zip(axes[row], versions):
            with np.errstate(divide="ignore"):  # a constant (silent) clip has bins of exactly zero power
                *_, image = ax.specgram(signal + 1e-7, NFFT=512, Fs=info.sample_rate, noverlap=384, cmap="magma",
                                        vmin=-140)
            low, high = image.get_clim()
            image.set_clim(low, max(high, low + 1))  # a silent clip's whole spectrum lies below vmin
            ax.set_title(f"{set_name}/{clip_name[:24]}: {title}", fontsize=7)
            ax.set_ylabel("Hz", fontsize=7)
    fig.tight_layout()
    return fig
