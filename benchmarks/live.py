"""Live mode measured from outside: repeated `codec-stream --mic` runs, and mouth-to-ear latency of a click train.

Mouth-to-ear is measured sample-synchronously: the click as it enters the codec's microphone and the codec's output
are recorded in one stream, so their offset is exact and nothing needs subtracting.
- PulseAudio, and PipeWire's PulseAudio layer: one stereo null sink; `paplay` plays the clicks into a mono sink on
  its left channel, `codec-stream --mic` records a mono source made of the monitor's left channel and plays into
  a mono sink on the right channel, and `parec` records the stereo monitor (`split_stereo_sink`). A plain
  `module-loopback` of known target latency in the codec's place checks the method.
- A JACK server at 48 kHz (dummy backend): `jack_metro` clicks are the codec's microphone and `jack_rec` records
  them and the codec's output ports in one client.
Every case checks that the delay it measured is at least the algorithmic latency; failed checks are reported.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import soundfile

from sscodec.benchmarks.errors import BenchError
from sscodec.benchmarks.sound_servers import (
    MIC_SINK,
    PAIR_SINK,
    PULSE_SERVERS,
    hold_pipewire_quantum,
    jack_dummy,
    jack_ports,
    pulse_loopback,
    pulse_null_sinks,
    split_stereo_sink,
    wait_for_capture,
)
from sscodec.stream.live import DEFAULT_LATENCY

CODEC_STREAM = [sys.executable, "-c", "from sscodec.stream.cli import main; main()"]
CLICK_PERIOD_S = 0.5  # longer than any delay measured, so each click pairs with its own echo
# Silence before the first click and after the last: PortAudio's PulseAudio (ALSA plugin) streams took 1.8 s to
# start on the loaded 2-core VM, and the clicks must all fall inside what both sides record.
LEAD_S = 3.0
# The virtual card's rate; the codec opens it at the model's rate when the server accepts that (PulseAudio and
# PipeWire accept any), so with the bundled 16 kHz model nothing is resampled on the codec's side.
PULSE_RATE = 16000
# Target latencies of the plain `module-loopback` runs that check the PulseAudio measurement: each must come out
# within LOOPBACK_TOLERANCE_MS of what the loopback was asked for.
LOOPBACK_TARGETS_MS = (40, 200)
LOOPBACK_TOLERANCE_MS = 20.0  # one 20 ms block
# PulseAudio's module-loopback adapts its rate to hold the delay at its target (measured here: exact to the ms),
# so the check bounds it on both sides; pipewire-pulse's module-loopback takes the target as a buffer size and
# came out 11 to 43 ms above it, so there the target is only a floor.
LOOPBACK_HOLDS_TARGET = ("pulseaudio",)


def click_train(rate: int, clicks: int) -> np.ndarray:
    """`clicks` 20 ms Hann-windowed 1 kHz bursts at amplitude 0.5, CLICK_PERIOD_S apart, with LEAD_S of silence
    before and after."""
    burst_t = np.arange(int(0.02 * rate)) / rate
    burst = 0.5 * np.hanning(burst_t.size) * np.sin(2 * np.pi * 1000 * burst_t)
    signal = np.zeros(int((2 * LEAD_S + clicks * CLICK_PERIOD_S) * rate), dtype=np.float32)
    for k in range(clicks):
        start = int((LEAD_S + k * CLICK_PERIOD_S) * rate)
        signal[start : start + burst.size] = burst
    return signal


def onsets(audio: np.ndarray, rate: int) -> np.ndarray:
    """Times (s) where the 2 ms envelope first rises above 30% of its maximum, at most one per half period."""
    window = max(1, int(0.002 * rate))
    envelope = np.convolve(np.abs(audio.astype(np.float64)), np.ones(window) / window, "same")
    if envelope.max() <= 1e-4:
        return np.zeros(0)
    above = np.flatnonzero(envelope > 0.3 * envelope.max())
    times: list[float] = []
    for index in above:
        if not times or index / rate - times[-1] > CLICK_PERIOD_S / 2:
            times.append(index / rate)
    return np.asarray(times)


def paired_delays_ms(reference: np.ndarray, echoes: np.ndarray) -> list[float]:
    """For each reference onset, the delay to the first echo onset within one click period after it."""
    delays = []
    for t in reference:
        later = echoes[(echoes >= t) & (echoes < t + CLICK_PERIOD_S)]
        if later.size:
            delays.append(float(later[0] - t) * 1000)
    return delays


def _summary(delays: list[float], clicks: int) -> dict:
    values = np.asarray(delays)
    return {
        "clicks": clicks,
        "clicks_found": int(values.size),
        "p50_ms": float(np.percentile(values, 50)) if values.size else None,
        "p95_ms": float(np.percentile(values, 95)) if values.size else None,
        "min_ms": float(values.min()) if values.size else None,
        "max_ms": float(values.max()) if values.size else None,
    }


def _codec(model: str, latency: str | None, chunk_frames: int, seconds: float, stats: Path, extra: list[str]
           ) -> list[str]:
    """codec-stream --mic with these settings; `latency` None leaves codec-stream's default."""
    return [*CODEC_STREAM, "--mic", "--model", model, *(["--latency", latency] if latency else []), "--chunk-frames",
            str(chunk_frames), "--duration", f"{seconds:.2f}", "--stats-json", str(stats), *extra]


def _finish_codec(codec: subprocess.Popen, seconds: float, stats: Path) -> dict:
    _, stderr = codec.communicate(timeout=seconds + 60)
    if codec.returncode != 0:
        raise BenchError(f"codec-stream failed during the latency run: {stderr.strip()[-300:]}")
    return json.loads(stats.read_text())


def record_clicks(env: dict[str, str], signal_path: Path, out: Path) -> np.ndarray:
    """Play `signal_path` into MIC_SINK while `parec` records PAIR_SINK's monitor (`split_stereo_sink`'s devices);
    (samples, 2) float32 at PULSE_RATE: left the signal as it entered the microphone, right what reached
    SPEAKER_SINK, sample-synchronous."""
    with open(out, "wb") as raw:
        # Short fragments, so that parec holds little when it is stopped: with its default fragment size a test
        # run once lost a click. The offset between the channels does not depend on it.
        recorder = subprocess.Popen(["parec", f"--device={PAIR_SINK}.monitor", "--format=float32le",
                                     f"--rate={PULSE_RATE}", "--channels=2", "--raw", "--latency-msec=20"],
                                    env=env, stdout=raw, stderr=subprocess.DEVNULL)
        try:
            # paplay returns once the server has played the whole file; the trailing LEAD_S of silence covers
            # the last click's echo.
            played = subprocess.run(["paplay", f"--device={MIC_SINK}", str(signal_path)], env=env, check=False,
                                    timeout=120, capture_output=True, text=True)
            if played.returncode:  # found in CI: "returned non-zero exit status 1" did not say why
                raise BenchError(f"paplay could not play the clicks into {MIC_SINK} (exit {played.returncode}): "
                                 f"{played.stderr.strip()[-300:] or 'no message'}")
        finally:
            recorder.terminate()
            recorder.wait(timeout=10)
    samples = np.fromfile(out, dtype="<f4")
    return samples[: samples.size // 2 * 2].reshape(-1, 2)


def delay_check_failures(summary: dict, floor_ms: float, ceiling_ms: float | None = None) -> list[str]:
    """The sanity checks a measured delay fails: something came back, no faster than `floor_ms`, and no slower
    than `ceiling_ms` at the median where one is given."""
    if summary["min_ms"] is None:
        return ["no click came back"]
    failed = []
    if summary["min_ms"] < floor_ms:
        failed.append(f"fastest click {summary['min_ms']:.1f} ms < {floor_ms:.0f} ms")
    if ceiling_ms is not None and summary["p50_ms"] > ceiling_ms:
        failed.append(f"p50 {summary['p50_ms']:.1f} ms > {ceiling_ms:.0f} ms")
    return failed


def _case(server: str, latency: str, chunk_frames: int, starts: list[dict]) -> dict:
    """One case's result from its codec starts, each {"delays_ms", "clicks", "stats"}: the delays pooled over the
    starts (buffering can differ from one start to the next), each start's median and stats, and the checks."""
    summary = _summary([d for start in starts for d in start["delays_ms"]], sum(start["clicks"] for start in starts))
    return {"server": server, "latency": latency, "chunk_frames": chunk_frames, **summary,
            "starts": [{"p50_ms": float(np.median(start["delays_ms"])) if start["delays_ms"] else None,
                        "clicks_found": len(start["delays_ms"]), "stats": start["stats"]} for start in starts],
            "failed_checks": delay_check_failures(summary, starts[0]["stats"]["algorithmic_latency_ms"])}


@contextmanager
def measurement_server(server: str) -> Iterator[dict[str, str]]:
    """A private `server` (a key of PULSE_SERVERS) with `split_stereo_sink`'s devices at PULSE_RATE and, on
    PipeWire, its quantum held (`hold_pipewire_quantum`), so that nothing in the graph changes its buffering while
    clicks are measured; yields the environment that points clients at it."""
    with PULSE_SERVERS[server]() as env:
        split_stereo_sink(env, PULSE_RATE)
        if server == "pipewire":
            hold_pipewire_quantum(env)
        yield env


def mouth_to_ear_pulse(model: str, cases: list[tuple[str, int]], clicks: int, starts: int, folder: Path,
                       server: str = "pulseaudio") -> tuple[list[dict], list[dict]]:
    """Click-train delay through `codec-stream --mic` on a private `server` (a key of PULSE_SERVERS) with
    `split_stereo_sink`'s devices, per (latency, chunk_frames), `starts` codec starts each; first the same
    through a plain `module-loopback` at each of LOOPBACK_TARGETS_MS. Returns (codec cases, loopback checks)."""
    signal = click_train(PULSE_RATE, clicks)
    signal_path = folder / "clicks.wav"
    soundfile.write(signal_path, signal, PULSE_RATE, subtype="FLOAT")
    seconds = signal.size / PULSE_RATE + 3.0  # the codec runs on while paplay drains and parec stops

    def delays(name: str) -> list[float]:
        both = record_clicks(env, signal_path, folder / f"{server}-{name}.raw")
        return paired_delays_ms(onsets(both[:, 0], PULSE_RATE), onsets(both[:, 1], PULSE_RATE))

    results, loopbacks = [], []
    with measurement_server(server) as env:
        for target in LOOPBACK_TARGETS_MS:
            with pulse_loopback(env, target):
                summary = _summary(delays(f"loopback-{target}"), clicks)
            ceiling = target + LOOPBACK_TOLERANCE_MS if server in LOOPBACK_HOLDS_TARGET else None
            loopbacks.append({"server": server, "target_ms": target, **summary,
                              "failed_checks": delay_check_failures(summary, target - LOOPBACK_TOLERANCE_MS, ceiling)})
        for latency, chunk_frames in cases:
            runs = []
            for start in range(starts):
                name = f"{latency}-{chunk_frames}-{start}"
                stats_path = folder / f"{server}-{name}.json"
                codec = subprocess.Popen(_codec(model, latency, chunk_frames, seconds, stats_path, []), env=env,
                                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                wait_for_capture(env, codec)
                heard = delays(name)
                runs.append({"delays_ms": heard, "clicks": clicks, "stats": _finish_codec(codec, seconds, stats_path)})
            results.append(_case(server, latency, chunk_frames, runs))
    return results, loopbacks


def mouth_to_ear_jack(model: str, cases: list[tuple[str, int]], clicks: int, starts: int, folder: Path
                      ) -> list[dict]:
    """Click delay from `jack_metro` through `codec-stream --mic` on a 48 kHz JACK server, per case, `starts`
    codec starts each."""
    seconds = 2 * LEAD_S + clicks * CLICK_PERIOD_S
    results = []
    with jack_dummy(48000, 960, metro_bpm=int(60 / CLICK_PERIOD_S)) as env:
        for latency, chunk_frames in cases:
            stem = f"jack-{latency}-{chunk_frames}"
            runs = [_jack_start(env, model, latency, chunk_frames, seconds, folder / f"{stem}-{i}")
                    for i in range(starts)]
            results.append(_case("jack", latency, chunk_frames, runs))
    return results


def _jack_start(env: dict[str, str], model: str, latency: str, chunk_frames: int, seconds: float, stem: Path
                ) -> dict:
    """One codec start on the JACK server, `seconds` of `jack_metro` clicks recorded with the codec's output:
    {"delays_ms", "clicks", "stats"}."""
    before = set(jack_ports(env).split())
    stats_path = stem.with_suffix(".json")
    codec = subprocess.Popen(
        _codec(model, latency, chunk_frames, seconds + 4.0, stats_path,
               ["--input-device", "codec_ticks", "--output-device", "system"]),
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    outputs: list[str] = []
    while not outputs and time.monotonic() < deadline and codec.poll() is None:
        time.sleep(0.1)
        outputs = sorted(p for p in set(jack_ports(env).split()) - before if ":out" in p)
    if not outputs:
        codec.kill()
        raise BenchError(f"codec-stream's JACK ports did not appear: {codec.communicate()[1][-300:]}")
    recording = stem.with_suffix(".wav")
    metro_port = next(p for p in jack_ports(env).split() if p.startswith("codec_ticks:"))
    subprocess.run(["jack_rec", "-f", str(recording), "-d", f"{seconds:.1f}", metro_port, outputs[0]],
                   env=env, check=True, timeout=seconds + 60, capture_output=True)
    stats = _finish_codec(codec, seconds + 4.0, stats_path)
    both, rate = soundfile.read(recording, dtype="float32")
    ticks = onsets(both[:, 0], rate)
    return {"delays_ms": paired_delays_ms(ticks, onsets(both[:, 1], rate)), "clicks": len(ticks), "stats": stats}


def repeated_runs(model: str, latency: str | None, runs: int, seconds: float, server: str = "pulseaudio") -> dict:
    """`runs` runs of `codec-stream --mic --duration seconds` on null sinks of a private `server` (a key of
    PULSE_SERVERS; nothing playing): how each ended, and the glitches and reopenings its stats counted.
    `latency` None: codec-stream's default."""
    rows = []
    with pulse_null_sinks(server=server) as env, tempfile.TemporaryDirectory() as folder:
        for i in range(runs):
            stats_path = Path(folder) / f"run{i}.json"
            done = subprocess.run(_codec(model, latency, 1, seconds, stats_path, []), env=env, capture_output=True,
                                  text=True, timeout=seconds + 120, check=False)
            stats = json.loads(stats_path.read_text()) if stats_path.exists() else None
            rows.append({
                "exit_code": done.returncode,
                "error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else None,
                "frames": stats["frames"] if stats else None,
                "underflows": stats["underflows"] if stats else None,
                "overflows": stats["overflows"] if stats else None,
                "reopens": stats["live"]["reopens"] if stats else None,
                "reopen_gap_ms": stats["live"]["reopen_gap_ms"] if stats else None,
            })
    return {"server": server, "latency": latency or str(DEFAULT_LATENCY), "runs": runs, "seconds": seconds,
            "failed_runs": sum(row["exit_code"] != 0 for row in rows), "rows": rows}
