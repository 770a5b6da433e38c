"""Live mode measured from outside: repeated `codec-stream --mic` runs, and mouth-to-ear latency of a click train.

Mouth-to-ear is measured on two virtual sound cards:
- PulseAudio null sinks: a separate full-duplex PortAudio client plays clicks into the codec's microphone sink and
  records the codec's speaker sink; the same client looped straight back (microphone sink's monitor) gives the
  set-up's own delay, which is subtracted.
- A JACK server at 48 kHz (dummy backend): `jack_metro` clicks are the codec's microphone and `jack_rec` records
  them and the codec's output ports in one client, sample-synchronously; nothing needs subtracting.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile

from sscodec.benchmarks.errors import BenchError
from sscodec.benchmarks.sound_servers import jack_dummy, jack_ports, pulse_null_sinks, wait_for_capture

CODEC_STREAM = [sys.executable, "-c", "from sscodec.stream.cli import main; main()"]
CLICK_PERIOD_S = 0.5  # longer than any delay measured, so each click pairs with its own echo
# Silence before the first click and after the last: PortAudio's PulseAudio (ALSA plugin) streams took 1.8 s to
# start on the loaded 2-core VM, and the clicks must all fall inside what both sides record.
LEAD_S = 3.0
PULSE_RATE = 16000
# A full-duplex PortAudio client playing argv[1] and recording as long into argv[2] (the PulseAudio side).
PLAYREC = ("import sys, sounddevice as sd, soundfile as sf; x, r = sf.read(sys.argv[1], dtype='float32'); "
           "y = sd.playrec(x, r, channels=1, blocking=True); sf.write(sys.argv[2], y[:, 0], r, subtype='FLOAT')")


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


def _playrec(env: dict[str, str], sink: str, source: str, signal_path: Path, out: Path) -> np.ndarray:
    subprocess.run([sys.executable, "-c", PLAYREC, str(signal_path), str(out)], check=True, timeout=120,
                   env={**env, "PULSE_SINK": sink, "PULSE_SOURCE": source}, capture_output=True)
    return soundfile.read(out, dtype="float32")[0]


def mouth_to_ear_pulse(model: str, cases: list[tuple[str, int]], clicks: int, folder: Path) -> list[dict]:
    """Click-train delay through `codec-stream --mic` on PulseAudio null sinks, per (latency, chunk_frames)."""
    signal = click_train(PULSE_RATE, clicks)
    signal_path = folder / "clicks.wav"
    soundfile.write(signal_path, signal, PULSE_RATE, subtype="FLOAT")
    played = onsets(signal, PULSE_RATE)
    seconds = signal.size / PULSE_RATE + 1.0
    results = []
    with pulse_null_sinks(PULSE_RATE) as env:
        loop = _playrec(env, "codec_mic", "codec_mic.monitor", signal_path, folder / "loop.wav")
        baseline = _summary(paired_delays_ms(played, onsets(loop, PULSE_RATE)), clicks)
        if baseline["p50_ms"] is None:
            raise BenchError("the PulseAudio loopback heard no clicks")
        for latency, chunk_frames in cases:
            stats_path = folder / f"pulse-{latency}-{chunk_frames}.json"
            codec = subprocess.Popen(_codec(model, latency, chunk_frames, seconds + 3.0, stats_path, []), env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            wait_for_capture(env, codec)
            heard = _playrec(env, "codec_mic", "codec_speaker.monitor", signal_path, folder / "through.wav")
            stats = _finish_codec(codec, seconds + 3.0, stats_path)
            delays = [d - baseline["p50_ms"] for d in paired_delays_ms(played, onsets(heard, PULSE_RATE))]
            results.append({"server": "pulseaudio", "latency": latency, "chunk_frames": chunk_frames,
                            **_summary(delays, clicks), "loopback_p50_ms": baseline["p50_ms"],
                            "stats": stats})
    return results


def mouth_to_ear_jack(model: str, cases: list[tuple[str, int]], clicks: int, folder: Path) -> list[dict]:
    """Click delay from `jack_metro` through `codec-stream --mic` on a 48 kHz JACK server, per case."""
    seconds = 2 * LEAD_S + clicks * CLICK_PERIOD_S
    results = []
    with jack_dummy(48000, 960, metro_bpm=int(60 / CLICK_PERIOD_S)) as env:
        for latency, chunk_frames in cases:
            before = set(jack_ports(env).split())
            stats_path = folder / f"jack-{latency}-{chunk_frames}.json"
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
            recording = folder / f"jack-{latency}-{chunk_frames}.wav"
            metro_port = next(p for p in jack_ports(env).split() if p.startswith("codec_ticks:"))
            subprocess.run(["jack_rec", "-f", str(recording), "-d", f"{seconds:.1f}", metro_port, outputs[0]],
                           env=env, check=True, timeout=seconds + 60, capture_output=True)
            stats = _finish_codec(codec, seconds + 4.0, stats_path)
            both, rate = soundfile.read(recording, dtype="float32")
            delays = paired_delays_ms(onsets(both[:, 0], rate), onsets(both[:, 1], rate))
            results.append({"server": "jack", "latency": latency, "chunk_frames": chunk_frames,
                            **_summary(delays, len(onsets(both[:, 0], rate))), "stats": stats})
    return results


def repeated_runs(model: str, latency: str | None, runs: int, seconds: float) -> dict:
    """`runs` runs of `codec-stream --mic --duration seconds` on PulseAudio null sinks (nothing playing): how
    each ended, and the glitches and reopenings its stats counted. `latency` None: codec-stream's default."""
    rows = []
    with pulse_null_sinks() as env, tempfile.TemporaryDirectory() as folder:
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
    return {"latency": latency or "default", "runs": runs, "seconds": seconds,
            "failed_runs": sum(row["exit_code"] != 0 for row in rows), "rows": rows}
