"""Stream statistics: per-chunk compute times, bitrate and glitches, as DESIGN.md's stats contract."""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sscodec.common.errors import StreamError
from sscodec.common.files import atomic_output
from sscodec.common.text import plural


@dataclass(frozen=True)
class ComputeMs:
    """Percentiles of encode + pack + unpack + decode time per chunk, in milliseconds."""

    p50: float
    p95: float
    p99: float
    max: float


@dataclass(frozen=True)
class LiveStats:
    """What a live run adds to the stats: the devices' side of the latency and how often they were reopened."""

    device_rate_hz: int  # the rate the sound card ran at; audio is resampled to and from the model's rate
    # As PortAudio reports them for the opened stream (its buffering included); None where it reports nonsense
    # (its JACK host API gives 2^32 - 1 samples for a capture from another client's ports).
    input_latency_ms: float | None
    output_latency_ms: float | None
    resampler_delay_ms: float  # both directions together; 0 when the device runs at the model's rate
    # algorithmic + resampler + device latencies: what a listener should get (None with a device latency
    # unknown); `codec-bench mouth-to-ear` measures it
    expected_latency_ms: float | None
    reopens: int  # streams that stopped or stalled and were opened again
    reopen_gap_ms: float  # time without audio callbacks while reopening: bridged outages and one that ended the run


@dataclass(frozen=True)
class CallStats:
    """What a call adds (README, "Calls"): the six contract keys go to the top level of the JSON, the rest under
    `call`. Packet counts are the peer's packets (one per `chunk_frames` frames); times in ms."""

    loss: float  # fraction of the peer's packets that never arrived at all
    late: int  # packets that arrived after their slot had passed (concealed, then dropped)
    concealed: int  # frames played from concealment: missing packets and stretches
    jitter_ms: float  # RFC 3550 interarrival jitter at the end of the call
    playout_delay_ms: float  # mean time a played packet waited in the jitter buffer (arrival → playout)
    rtt_ms: float | None  # median round-trip time of the probes (1 per second), None if none came back
    role: str  # "answer" or "call"
    ended_by: str  # "end of both streams" (with ", but the peer never acknowledged ours ..." if so), "peer hung up", "interrupted", "duration", "peer silent", ...
    seconds: float  # from the connection to the hang-up
    start_offset_samples: int | None  # where the first received frame starts in the output (None: none played)
    peer_samples: int | None  # the peer's stream length in samples, as its END said (None without an END)
    packets_sent: int
    packets_received: int  # accepted into the jitter buffer
    packets_lost: int  # never arrived (the numerator of `loss`)
    duplicates: int
    out_of_window: int  # sequence numbers too far ahead of the playout
    dropped: dict[str, int]  # messages refused before the jitter buffer: malformed, oversized, wrong_model
    stretched: int  # packets' worth of concealment inserted to grow the delay
    compressed: int  # slots that played two packets to shrink it
    target_delay_ms: float  # the jitter buffer's target at the end
    playout_delay_max_ms: float
    concealment: str  # "repeat" or "silence"
    simulated: str | None  # --simulate's conditions, all fields
    simulated_dropped: int  # packets the simulator dropped
    refused_offers: dict[str, int]  # answering side: offers refused, by reason (token, malformed, busy, model)
    peer: dict  # the peer's model name and fingerprint, codebooks and chunk_frames, from signalling
    # On the sound card (--mic): device streams that stopped or stalled and were opened again, and the time without
    # audio that cost (with the outage that ended the call, if one did); None for a file.
    device_reopens: int | None = None
    device_gap_ms: float | None = None
    # Sequence numbers left out for audio the sound card never delivered (capture_clock); None for a file.
    capture_skipped: int | None = None

    CONTRACT_KEYS = ("loss", "late", "concealed", "jitter_ms", "playout_delay_ms", "rtt_ms")

    def summary(self) -> list[str]:
        """Lines for the terminal."""
        rtt = "unknown" if self.rtt_ms is None else f"{self.rtt_ms:.1f} ms"
        device = [] if self.device_reopens is None else [
            (f"device stream reopened: {self.device_reopens} {plural(self.device_reopens, 'time')} "
            f"({self.device_gap_ms:.0f} ms without audio)")]
        return [
            # Found from outside: the caller's read "call (call)".
            (f"call {'answered' if self.role == 'answer' else 'placed'}: {self.seconds:.1f} s, ended by "
            f"{self.ended_by}"),
            (f"received {self.packets_received} packets, lost {self.packets_lost} ({100 * self.loss:.1f} %), "
             f"late {self.late}, concealed {self.concealed} frames ({self.concealment})"),
            (f"jitter {self.jitter_ms:.1f} ms, playout delay {self.playout_delay_ms:.1f} ms (max "
             f"{self.playout_delay_max_ms:.1f}, target {self.target_delay_ms:.1f}), round trip {rtt}"),
            f"dropped messages: {', '.join(f'{k} {v}' for k, v in self.dropped.items())}",
            *device,
        ]


@dataclass(frozen=True)
class StreamStats:
    """What `--stats-json` writes (exactly these keys; `live` only in live mode, the call's keys in a call)."""

    frames: int
    frame_ms: float
    algorithmic_latency_ms: float
    compute_ms: ComputeMs
    real_time_factor: float  # compute time / audio time: below 1 keeps up with real time
    bitrate_kbps: float  # from the packed bytes actually produced
    codebooks: int
    underflows: int  # output frames played as silence because no decoded audio was ready
    overflows: int  # frames of audio lost because a queue was full
    live: LiveStats | None = None
    call: CallStats | None = None

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        if self.live is None:
            del data["live"]
        call = data.pop("call")
        if call is not None:
            data.update({key: call.pop(key) for key in CallStats.CONTRACT_KEYS})
            data["call"] = call
        return data

    def summary(self) -> str:
        """A few human-readable lines for the terminal."""
        c = self.compute_ms
        seconds = self.frames * self.frame_ms / 1000
        lines = [
            f"frames: {self.frames} ({seconds:.2f} s of audio, {self.frame_ms:g} ms each)",
            f"bitrate: {self.bitrate_kbps:.2f} kbps ({self.codebooks} {plural(self.codebooks, 'codebook')})",
            f"algorithmic latency: {self.algorithmic_latency_ms:g} ms",
            f"compute per chunk: p50 {c.p50:.3f} ms, p95 {c.p95:.3f} ms, p99 {c.p99:.3f} ms, max {c.max:.3f} ms",
            f"real-time factor: {self.real_time_factor:.4f} (compute / audio time)",
            f"underflows: {self.underflows}, overflows: {self.overflows}",
        ]
        if self.live is not None:
            d = self.live
            lines += [
                (f"device: {d.device_rate_hz} Hz, latency in {_ms(d.input_latency_ms)}, "
                 f"out {_ms(d.output_latency_ms)} (PortAudio), resampling {d.resampler_delay_ms:.1f} ms"),
                f"expected mouth-to-ear latency: {_ms(d.expected_latency_ms)}",
                f"stream reopened: {d.reopens} {plural(d.reopens, 'time')} ({d.reopen_gap_ms:.0f} ms without audio)",
            ]
        if self.call is not None:
            lines += self.call.summary()
        return "\n".join(lines)


def _ms(value: float | None) -> str:
    return "unknown" if value is None else f"{value:.1f} ms"


class StatsRecorder:
    """Accumulates what each encoded and decoded chunk cost and produced."""

    def __init__(self, frame_ms: float, chunk_frames: int, codebooks: int) -> None:
        self._frame_ms = frame_ms
        self._chunk_frames = chunk_frames
        self._codebooks = codebooks
        self._compute_ms: list[float] = []
        self._frames = 0
        self._payload_bytes = 0

    def add(self, frames: int, payload_bytes: int, compute_ms: float) -> None:
        """Record one chunk of `frames` frames that packed to `payload_bytes` bytes."""
        self._frames += frames
        self._payload_bytes += payload_bytes
        self._compute_ms.append(compute_ms)

    def finish(self, underflows: int = 0, overflows: int = 0) -> StreamStats:
        """The statistics so far."""
        times = np.asarray(self._compute_ms, dtype=np.float64)
        if times.size:
            p50, p95, p99 = (float(v) for v in np.percentile(times, [50, 95, 99]))
            compute = ComputeMs(p50, p95, p99, float(times.max()))
        else:
            compute = ComputeMs(0.0, 0.0, 0.0, 0.0)
        audio_ms = self._frames * self._frame_ms
        return StreamStats(
            frames=self._frames,
            frame_ms=self._frame_ms,
            algorithmic_latency_ms=self._chunk_frames * self._frame_ms,
            compute_ms=compute,
            real_time_factor=float(times.sum() / audio_ms) if audio_ms else 0.0,
            bitrate_kbps=self._payload_bytes * 8 / audio_ms if audio_ms else 0.0,
            codebooks=self._codebooks,
            underflows=underflows,
            overflows=overflows,
        )


def write_stats_json(path: str | os.PathLike, stats: StreamStats) -> None:
    """Write the stats as one JSON object, whole or not at all (`atomic_output`)."""
    path = Path(path)
    try:
        with atomic_output(path) as temp:
            temp.write_text(json.dumps(stats.to_dict(), indent=2) + "\n")
    except OSError as error:
        raise StreamError(f"{path}: cannot write stats ({error.strerror or error})") from None
