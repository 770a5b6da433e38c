"""`codec-bench call`: what a listener gets through loss and jitter, for our concealment, silence insertion and
libopus with its own PLC, under the same simulated network.

The network is simulated in-process over packets (stream/netsim.py; not over real WebRTC, which on one machine
adds neither loss nor jitter): packet n leaves at n × 20 ms, the simulator drops or delays it, and the receiver's
real JitterBuffer, driven by a virtual clock at exactly those arrival times, decides what plays when. Every method
then renders the same playout plan, so they differ only in what they do with a missing packet. The score is taken
on the aligned output: for each sent frame, what played in its place (decoded, or concealed because its packet was
lost or came too late). Frames the buffer inserts to grow its delay (stretches) are concealed like any other, so
they shape what follows, but are left out of the aligned output; compresses are scored unmerged. The playout
delay and the counts of stretches and compresses are reported beside the scores.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from sscodec.benchmarks.metrics import ClipScorer, spread
from sscodec.benchmarks.opus_packets import OpusPackets
from sscodec.stream.concealment import Concealer, ConcealMethod
from sscodec.stream.decoder import StreamDecoder
from sscodec.stream.encoder import StreamEncoder
from sscodec.stream.jitter import JitterBuffer, JitterSettings, SlotKind
from sscodec.stream.model import CodecModel
from sscodec.stream.netsim import NetworkConditions, NetworkSimulator
from sscodec.train.perceptual import pesq_wb

LOSSES = (0.0, 0.05, 0.10, 0.20)
BURST = 3.0  # mean run of lost packets in the bursty pattern
JITTERS_MS = (0.0, 20.0, 40.0, 60.0)
SCORES = ("pesq_wb", "mel_distance")


@dataclass(frozen=True)
class Network:
    """One simulated network: `loss` long-run fraction, `pattern` random or bursty, uniform 0..2·jitter delays."""

    loss: float
    pattern: str  # "random" or "bursty"
    jitter_ms: float

    def conditions(self, seed: int) -> NetworkConditions:
        burst = BURST if self.pattern == "bursty" else 1.0
        return NetworkConditions(loss=self.loss, burst=burst, jitter_ms=self.jitter_ms, seed=seed)

    def to_dict(self) -> dict:
        return {"loss": self.loss, "pattern": self.pattern, "jitter_ms": self.jitter_ms}


def networks(losses: tuple[float, ...] = LOSSES, jitters_ms: tuple[float, ...] = JITTERS_MS) -> list[Network]:
    """Every loss rate, random and bursty (one pattern at 0 %), at every jitter."""
    return [
        Network(loss, pattern, jitter)
        for jitter in jitters_ms
        for loss in losses
        for pattern in (("random",) if loss == 0 else ("random", "bursty"))
    ]


# One playout slot as the renderers see it: (frame index or None for a stretch, whether its packet is here).
Step = tuple[int | None, bool]


@dataclass(frozen=True)
class Playout:
    """The receiver's plan for one clip: steps in playout order, and what the jitter buffer did."""

    steps: list[Step]
    late: int
    lost: int  # never arrived
    concealed_frames: int  # missing at their time (lost or late)
    stretched: int
    compressed: int
    playout_delay_ms: float  # mean wait of a played packet between arrival and playout


def plan_playout(frames: int, conditions: NetworkConditions, settings: JitterSettings) -> Playout:
    """Send `frames` one-frame packets through the simulator into a JitterBuffer on a virtual clock."""
    p = settings.packet_ms
    simulator = NetworkSimulator(conditions)
    arrivals = sorted((n * p + delay, n) for n in range(frames) for delay in simulator.fate())
    end_at = (frames - 1) * p  # END travels on the reliable channel, right behind the last packet
    buffer = JitterBuffer(settings, first_sequence=0)  # as in a call: the sender numbers its packets from 0
    if not arrivals:
        return Playout([(n, False) for n in range(frames)], 0, frames, frames, 0, 0, 0.0)
    steps: list[Step] = []
    ended, index = False, 0
    while not buffer.finished:
        due = buffer.next_due_ms()
        arrival = arrivals[index][0] if index < len(arrivals) else float("inf")
        if not ended and end_at <= arrival and (due is None or end_at < due):
            buffer.end(frames - 1, end_at)
            ended = True
        elif index < len(arrivals) and (due is None or arrival <= due):
            buffer.push(arrivals[index][1], arrival, arrivals[index][1])
            index += 1
        else:
            for slot in buffer.pop_due(due):
                if slot.kind is SlotKind.STRETCH:
                    steps.append((None, False))
                elif slot.kind is SlotKind.PLAY:
                    steps.append((slot.items[0], True))
                elif slot.kind is SlotKind.MISSING:
                    steps.append((buffer.wire_sequence(slot.sequence), False))
                else:
                    first = buffer.wire_sequence(slot.sequence)
                    steps += [(first, slot.items[0] is not None), (first + 1, slot.items[1] is not None)]
    c = buffer.counters
    concealed = sum(1 for n, here in steps if n is not None and not here)
    played = {n for n, here in steps if here}
    return Playout(
        steps, c.late, frames - len(played) - c.late, concealed, c.stretched, c.compressed, c.waited_ms_mean
    )


def render_codec(steps: list[Step], codes: np.ndarray, concealer: Concealer, frame_size: int) -> np.ndarray:
    """The aligned output of our decoder with `concealer`'s method: codes [Q, frames] in, audio [frames · frame]."""
    concealer.reset()
    frames = codes.shape[1]
    out = np.zeros(frames * frame_size, dtype=np.float32)
    run: list[int] = []  # consecutive received frames, decoded in one call (the same samples as one by one)

    def flush() -> None:
        if run:
            audio = concealer.decode(codes[:, run[0] : run[-1] + 1])
            out[run[0] * frame_size : (run[-1] + 1) * frame_size] = audio
            run.clear()

    for n, here in steps:
        if here and (not run or n == run[-1] + 1):
            run.append(n)
            continue
        flush()
        if here:
            run.append(n)
            continue
        audio = concealer.conceal(1)
        if n is not None:
            out[n * frame_size : (n + 1) * frame_size] = audio
    flush()
    return out


def render_opus(steps: list[Step], packets: list[bytes], opus: OpusPackets) -> np.ndarray:
    """The aligned output of libopus: each packet decoded, or concealed by libopus's PLC; lookahead removed."""
    opus.reset_decoder()
    size = opus.frame_size
    out = np.zeros(len(packets) * size + opus.lookahead, dtype=np.float32)
    for n, here in steps:
        audio = opus.decode(packets[n] if here else None)
        if n is not None:
            out[n * size : (n + 1) * size] = audio
    return out[opus.lookahead :]


# What each result row scores: our decoder with each concealment method, and libopus with its PLC.
METHODS = {"codec_repeat": ConcealMethod.REPEAT, "codec_silence": ConcealMethod.SILENCE, "opus_plc": None}


def run_call_bench(
    model: CodecModel,
    clips: dict[str, np.ndarray],
    codebooks: int,
    opus_kbps: float,
    nets: list[Network],
    scorer: ClipScorer,
    progress: Callable[[str], None] = lambda text: None,
    settings: JitterSettings | None = None,
) -> list[dict]:
    """Score every clip through every network with each method; one result per network, means over clips."""
    info = model.info
    frame = info.frame_size
    settings = settings or JitterSettings(info.frame_ms)
    encoder = StreamEncoder(model, codebooks)
    opus = OpusPackets(info.sample_rate, opus_kbps, frame)
    concealers = {method: Concealer(StreamDecoder(model), method) for method in ConcealMethod}
    prepared = []
    for name, audio in clips.items():
        padded = np.pad(audio, (0, -audio.size % frame))
        encoder.reset()
        prepared.append((name, audio, encoder.encode_codes(padded), opus.encode(padded)))
    results = []
    for net in nets:
        progress(f"loss {net.loss:.0%} {net.pattern}, jitter {net.jitter_ms:g} ms")
        scores: dict[str, dict[str, list[float]]] = {}
        network_stats: dict[str, list[float]] = {}
        for seed, (name, audio, codes, packets) in enumerate(prepared):
            playout = plan_playout(codes.shape[1], net.conditions(seed), settings)
            frames = codes.shape[1]
            for key, value in (
                ("late", playout.late / frames),
                ("lost", playout.lost / frames),
                ("concealed", playout.concealed_frames / frames),
                ("stretched", playout.stretched),
                ("compressed", playout.compressed),
                ("playout_delay_ms", playout.playout_delay_ms),
            ):
                network_stats.setdefault(key, []).append(value)
            for method in METHODS:
                if method == "opus_plc":
                    decoded = render_opus(playout.steps, packets, opus)
                else:
                    decoded = render_codec(playout.steps, codes, concealers[METHODS[method]], frame)
                decoded = decoded[: audio.size]
                clip_scores = score(scorer, decoded, audio)
                for metric in SCORES:
                    scores.setdefault(method, {}).setdefault(metric, []).append(clip_scores[metric])
        results.append(
            {
                **net.to_dict(),
                "network": {key: float(np.mean(values)) for key, values in network_stats.items()},
                "methods": {
                    method: {metric: spread(values) for metric, values in metrics.items()}
                    for method, metrics in scores.items()
                },
            }
        )
    opus.close()
    return results


def score(scorer: ClipScorer, decoded: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    """PESQ-WB and the training mel distance of one clip (NaN where a clip is too short for either)."""
    import torch

    est, ref = torch.from_numpy(decoded)[None].float(), torch.from_numpy(reference)[None].float()
    with torch.no_grad():
        mel = (
            float(scorer.mel.distance(est, ref)[0]) if ref.shape[1] >= scorer.mel.min_length else float("nan")
        )
    return {"pesq_wb": pesq_wb(decoded, reference, scorer.sample_rate), "mel_distance": mel}


def verdict(results: list[dict]) -> dict:
    """Does our concealment beat silence insertion (higher PESQ-WB and lower mel distance) at every loss rate
    above 0, whatever the jitter? The conditions where it does not, if any. (At 0 % loss only late packets are
    concealed, a frame or two per clip: there the two tie and are not judged.)"""
    failures = []
    for row in results:
        if row["loss"] == 0:
            continue
        ours, silence = row["methods"]["codec_repeat"], row["methods"]["codec_silence"]
        if not (
            ours["pesq_wb"]["mean"] > silence["pesq_wb"]["mean"]
            and ours["mel_distance"]["mean"] < silence["mel_distance"]["mean"]
        ):
            failures.append({k: row[k] for k in ("loss", "pattern", "jitter_ms")})
    return {"beats_silence_everywhere": not failures, "exceptions": failures}
