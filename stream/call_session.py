"""One call's media, whatever carries it (README, "Calls"): capture → StreamEncoder → messages out; messages in →
checks → (network simulator) → jitter buffer → decoder or concealment → playback; round-trip probes; the end.

The transport hands received messages to `on_media` / `on_control` and sends with the two callables it is given;
everything runs on one asyncio loop, whose clock (`loop.time()`, seconds) is the receiver clock of the jitter
buffer. Nothing a peer sends can raise out of `on_media` / `on_control`: it is played, or dropped and counted.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import replace

import numpy as np

from sscodec.common.errors import StreamError, first_line
from sscodec.stream.call_audio import CallSink, CallSource
from sscodec.stream.call_wire import (
    End,
    EndAck,
    Kind,
    Probe,
    WireError,
    end_ack_message,
    end_message,
    media_message,
    parse_message,
    probe_message,
)
from sscodec.stream.capture_clock import CaptureClock
from sscodec.stream.concealment import Concealer, ConcealMethod
from sscodec.stream.decoder import StreamDecoder
from sscodec.stream.encoder import StreamEncoder
from sscodec.stream.jitter import DEFAULT_MIN_DELAY_MS, Arrival, JitterBuffer, JitterSettings, Slot, SlotKind
from sscodec.stream.model import CodecModel
from sscodec.stream.netsim import NetworkConditions, NetworkSimulator
from sscodec.stream.packet import Packet
from sscodec.stream.signalling import Hello
from sscodec.stream.stats import CallStats, StatsRecorder, StreamStats

DROP_REASONS = ("malformed", "oversized", "wrong_model")
# A side that has sent its whole stream hangs up once the peer has acknowledged its END, or after this long.
END_ACK_TIMEOUT_S = 2.0


class CallSession:
    """The media of one call between this side (`model`, sending `codebooks` in packets of `chunk_frames`) and a
    peer that declared `peer` in signalling."""

    def __init__(
        self,
        model: CodecModel,
        codebooks: int,
        chunk_frames: int,
        peer: Hello,
        source: CallSource,
        sink: CallSink,
        send_media: Callable[[bytes], None],
        send_control: Callable[[bytes], None],
        role: str,
        concealment: ConcealMethod = ConcealMethod.REPEAT,
        simulate: NetworkConditions | None = None,
        min_playout_delay_ms: float = DEFAULT_MIN_DELAY_MS,
        silence_timeout_s: float = 10.0,
        probe_interval_s: float = 1.0,
    ) -> None:
        info = model.info
        self.info = info
        self.model = model
        self.role = role
        self.peer = peer
        self.chunk_frames = chunk_frames
        self.source, self.sink = source, sink
        self._send_media, self._send_control = send_media, send_control
        self.encoder = StreamEncoder(model, codebooks)
        self._decoder = StreamDecoder(model)
        self.concealer = Concealer(self._decoder, concealment)
        peer_ms = peer.chunk_frames * info.frame_ms
        # A peer's encoder numbers its packets from 0 (StreamEncoder): the packets lost before the first arrival
        # are concealed in their place, so what is heard keeps the peer's timeline.
        self.buffer = JitterBuffer(JitterSettings(peer_ms, min_delay_ms=min_playout_delay_ms), first_sequence=0)
        self.simulator = NetworkSimulator(simulate) if simulate is not None else None
        self._silence_timeout_s = silence_timeout_s
        self._probe_interval_s = probe_interval_s
        self._fingerprint = model.fingerprint
        self.dropped: Counter[str] = Counter(dict.fromkeys(DROP_REASONS, 0))
        self._rtts: list[float] = []
        self._probes_out: dict[int, float] = {}
        self._encode_ms: list[float] = []
        self._encoded: list[tuple[int, int]] = []  # (frames, payload bytes) of each packet sent
        self._render_ms: list[float] = []
        self._packets_sent = 0
        self._capture = CaptureClock(chunk_frames * info.frame_ms / 1000)
        self.capture_skipped = 0  # sequence numbers a live source left out for audio its device never delivered
        self._peer_end: End | None = None
        self._own_done = False
        self._end_acked = False  # the peer acknowledged our END: it has everything we sent before it
        self._ack_wait_over = False  # END_ACK_TIMEOUT_S passed without that acknowledgement
        self._start_offset: int | None = None
        # A timeline sink's concealed slots after the newest packet received, before the peer's END: they may lie
        # past the peer's end (a stalled receiver runs its schedule on while the END waits to be read), so they are
        # written only once a later packet or the END shows they belong to the stream: (position in the stream's
        # sequence, kind, audio).
        self._held: list[tuple[float, SlotKind, np.ndarray]] = []
        self._past_end_frames = 0  # concealed frames of slots dropped as past the end
        self._past_end_stretches = 0
        self._finished = asyncio.Event()
        self._arrived = asyncio.Event()
        self._ended_by = ""
        self._error: str | None = None
        self._peer_gone = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._t0 = 0.0
        self._last_heard = 0.0

    # ---- the transport's side ----

    def on_media(self, data: object) -> None:
        """A message from the media channel: a packet, or a probe. Never raises."""
        message = self._parse(data)
        try:
            if isinstance(message, Packet):
                self._receive_packet(message)
            elif isinstance(message, Probe):
                self._receive_probe(message)
            elif message is not None:
                raise WireError("malformed", "END belongs on the control channel")
        except WireError as error:
            self.dropped[error.reason] += 1

    def on_control(self, data: object) -> None:
        """A message from the control channel: the peer's END, or its acknowledgement of ours. Never raises."""
        message = self._parse(data)
        if message is None:
            return
        if isinstance(message, EndAck) and self._own_done:
            self._end_acked = True
            self._check_done()
            return
        if not isinstance(message, End) or self._peer_end is not None:
            self.dropped["malformed"] += 1
            return
        self._peer_end = message
        self._send_control(end_ack_message())
        self.buffer.end(message.last_sequence, self._loop.time() * 1000)
        self._release_held(self.buffer.last_sequence)
        self._arrived.set()
        self._check_done()

    def peer_closed(self) -> None:
        """The transport closed (the peer hung up, or the connection failed). A stream that had ended is played
        out to its end first."""
        self._peer_gone = True
        if self._peer_end is None:
            self.finish("peer hung up")
        else:
            self._check_done()

    def finish(self, reason: str, error: str | None = None) -> None:
        """End the call now (the first reason given is the one reported)."""
        if not self._finished.is_set():
            self._ended_by, self._error = reason, error
            self._finished.set()

    def _parse(self, data: object) -> Packet | Probe | End | EndAck | None:
        """A received message, or None (counted) when it is refused or the call has not started."""
        if self._loop is None:
            return None
        self._last_heard = self._loop.time()
        try:
            return parse_message(data, self._fingerprint)  # type: ignore[arg-type]
        except WireError as error:
            self.dropped[error.reason] += 1
            return None

    # ---- running ----

    async def run(self) -> str | None:
        """Send, receive and play until the call ends; a one-line error if it ended by a failure (`stats` then
        tells the rest)."""
        self._loop = asyncio.get_running_loop()
        self._t0 = self._last_heard = self._loop.time()
        tasks = [
            asyncio.ensure_future(job()) for job in (self._send_loop, self._playout_loop, self._probe_loop)
        ]
        finished = asyncio.ensure_future(self._finished.wait())
        try:
            # A loop that fails must end the call with its error, not leave the others running without it.
            while not self._finished.is_set():
                await asyncio.wait([finished, *tasks], return_when=asyncio.FIRST_COMPLETED)
                for task in tasks:
                    if task.done() and not task.cancelled() and task.exception() is not None:
                        self.finish("error", f"call failed: {first_line(task.exception())}")
                tasks = [task for task in tasks if not task.done()]
        finally:
            finished.cancel()
            for task in tasks:
                task.cancel()
            await asyncio.gather(finished, *tasks, return_exceptions=True)
            self._cut_at_newest()
        return self._error

    async def _send_loop(self) -> None:
        loop = self._loop
        packet_s = self.chunk_frames * self.info.frame_ms / 1000
        upcoming = None if self.source.live else self.source.next_chunk()
        fresh = False  # a live chunk was sent since the capture clock last looked
        while True:
            if self.source.live:
                chunk = self.source.next_chunk()
                if chunk is None:
                    error = self.source.check_device()
                    if error is not None:
                        self.finish("the audio device stopped", error)
                        return
                    if fresh:  # caught up after new audio: a hole before it is now known to be lost, not late
                        lost = self._capture.missing(loop.time(), self._packets_sent + self.capture_skipped)
                        self.encoder.skip(lost)  # numbered by capture time: what follows reaches the peer on time
                        self.capture_skipped += lost
                        fresh = False
                    await asyncio.sleep(packet_s / 4)
                    continue
            else:
                # A file is sent as if captured live: chunk k leaves once its audio "has been spoken".
                await asyncio.sleep(max(0.0, self._t0 + (self._packets_sent + 1) * packet_s - loop.time()))
                chunk, upcoming = upcoming, self.source.next_chunk()
            if chunk is not None:
                start = time.perf_counter()
                packet = self.encoder.encode(chunk)
                self._encode_ms.append((time.perf_counter() - start) * 1000)
                self._encoded.append((packet.frames, len(packet.payload)))
                self._send_media(media_message(self._fingerprint, packet))
                self._packets_sent += 1
                fresh = True
            if not self.source.live and upcoming is None:
                # Right behind the last packet, so the receiver knows the exact end before it plays it.
                self._send_control(end_message(self._packets_sent - 1, self.source.samples))
                self._own_done = True
                loop.call_later(END_ACK_TIMEOUT_S, self._give_up_on_end_ack)
                self._check_done()
                return

    async def _playout_loop(self) -> None:
        loop = self._loop
        rate = self.info.sample_rate
        while True:
            if self.buffer.finished:
                self._check_done()
                return
            due = self.buffer.next_due_ms()
            if due is None:
                self._arrived.clear()
                await self._arrived.wait()
                continue
            wait = due / 1000 - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            slots = self.buffer.pop_due(loop.time() * 1000)
            if slots and self._start_offset is None:
                self._start_offset = max(0, round((slots[0].due_ms / 1000 - self._t0) * rate))
                if self.sink.timeline:
                    self.sink.write(np.zeros(self._start_offset, dtype=np.float32))
            for slot in slots:
                start = time.perf_counter()
                audio = self._trim_last(slot, self._render(slot))
                self._render_ms.append((time.perf_counter() - start) * 1000)
                self._play(slot, audio)

    def _play(self, slot: Slot, audio: np.ndarray) -> None:
        """Write a rendered slot, holding back a timeline sink's concealment that may lie past the peer's end: a
        missing slot after the newest packet received, and any stretch that follows one."""
        newest = self.buffer.highest_received
        if self.sink.timeline and self._peer_end is None and (
            (slot.kind is SlotKind.MISSING and (newest is None or slot.sequence > newest))
            or (slot.kind is SlotKind.STRETCH and self._held)
        ):
            # A stretch is placed after the sequence before it: past the end when that one is the last or later.
            position = slot.sequence if slot.sequence is not None else self._held[-1][0] + 0.5
            self._held.append((position, slot.kind, audio))
            return
        self._release_held()
        self.sink.write(audio)

    def _cut_at_newest(self) -> None:
        """A call that ended without the peer's END (hung up, gone silent, interrupted) ends the peer's stream at its
        newest packet received: nothing after it is known to have been sent, so slots concealed past it are neither
        loss (RFC 3550 counts loss up to the highest sequence received) nor written to a timeline sink. Found from
        outside: a killed peer's 10 s silence timeout was reported as 65.8 % loss and recorded as 10 s of audio."""
        newest = self.buffer.highest_received
        if self._peer_end is None and newest is not None:
            self.buffer.end(self.buffer.wire_sequence(newest), self._loop.time() * 1000)
        self._release_held(self.buffer.last_sequence)

    def _release_held(self, last_sequence: int | None = None) -> None:
        """Write the held slots up to `last_sequence` (all when None); those after it were past the peer's end."""
        for position, kind, audio in self._held:
            if last_sequence is None or position <= last_sequence:
                self.sink.write(audio)
            else:
                self._past_end_frames += self.peer.chunk_frames
                self._past_end_stretches += kind is SlotKind.STRETCH
        self._held.clear()

    async def _probe_loop(self) -> None:
        loop = self._loop
        probe_id = 0
        while True:
            now = loop.time()
            if now - self._last_heard > self._silence_timeout_s:
                self.finish(
                    "peer silent",
                    f"nothing from the peer for {self._silence_timeout_s:g} s: the connection is lost",
                )
                return
            self._probes_out[probe_id] = now
            if len(self._probes_out) > 16:  # unanswered probes are forgotten, not kept
                del self._probes_out[min(self._probes_out)]
            self._send_media(probe_message(Kind.PING, probe_id, now))
            probe_id += 1
            await asyncio.sleep(self._probe_interval_s)

    # ---- receiving ----

    def _receive_packet(self, packet: Packet) -> None:
        if packet.frames > self.peer.chunk_frames:  # fewer is the last packet of a file
            raise WireError(
                "malformed", f"packet of {packet.frames} frames; the peer declared {self.peer.chunk_frames}"
            )
        try:
            codes = self._decoder.unpack(packet)
        except (ValueError, StreamError) as error:
            raise WireError("malformed", str(error)) from None
        if self.simulator is None:
            self._deliver(packet.sequence, codes)
            return
        for delay_ms in self.simulator.fate():
            self._loop.call_later(delay_ms / 1000, self._deliver, packet.sequence, codes)

    def _deliver(self, sequence: int, codes: np.ndarray) -> None:
        if self._finished.is_set():
            return
        if self.buffer.push(sequence, self._loop.time() * 1000, codes) is Arrival.ACCEPTED:
            self._arrived.set()

    def _receive_probe(self, probe: Probe) -> None:
        if probe.kind is Kind.PING:
            self._send_media(probe_message(Kind.PONG, probe.probe_id, probe.sent_s))
            return
        sent = self._probes_out.pop(probe.probe_id, None)
        if sent is None or sent != probe.sent_s:
            raise WireError("malformed", "PONG for no PING of ours")
        self._rtts.append((self._loop.time() - sent) * 1000)

    # ---- playing ----

    def _render(self, slot: Slot) -> np.ndarray:
        frames = self.peer.chunk_frames
        if slot.kind is SlotKind.PLAY:
            return self.concealer.decode(slot.items[0])
        if slot.kind is SlotKind.COMPRESS:
            present = [codes for codes in slot.items if codes is not None]
            if len(present) == 2:
                return self.concealer.merge(*present)
            return self.concealer.decode(present[0]) if present else self.concealer.conceal(frames)
        return self.concealer.conceal(frames)

    def _trim_last(self, slot: Slot, audio: np.ndarray) -> np.ndarray:
        """The stream's last packet (played or concealed) without the samples past the peer's exact end (its END
        says where)."""
        end = self._peer_end
        if end is None or slot.kind not in (SlotKind.PLAY, SlotKind.MISSING) or slot.sequence != self.buffer.last_sequence:
            return audio
        keep = end.samples - end.last_sequence * self.peer.chunk_frames * self.info.frame_size
        return audio[:keep] if 0 < keep < audio.size else audio

    def _give_up_on_end_ack(self) -> None:
        self._ack_wait_over = True
        self._check_done()

    def _check_done(self) -> None:
        if not self.buffer.finished:
            return
        if self._own_done and (self._end_acked or self._ack_wait_over or self._peer_gone):
            # Without the acknowledgement the peer may have gone (or given up on a stalled call) before our
            # stream's end reached it: say so rather than report a whole call.
            self.finish("end of both streams" if self._end_acked else
                        "end of both streams, but the peer never acknowledged ours (it may not have heard all of it)")
        elif self.source.live:
            self.finish("end of the peer's stream")
        elif self._peer_gone:
            self.finish("peer hung up")

    # ---- results ----

    def stats(self, underflows: int = 0, overflows: int = 0) -> StreamStats:
        """The stream stats so far, with the call's part (the sound card's glitch counts come from its owner)."""
        info = self.info
        recorder = StatsRecorder(info.frame_ms, self.chunk_frames, self.encoder.codebooks)
        ticks = max(len(self._encode_ms), len(self._render_ms))
        for i in range(ticks):
            sent = i < len(self._encode_ms)
            compute = (self._encode_ms[i] if sent else 0.0) + (
                self._render_ms[i] if i < len(self._render_ms) else 0.0
            )
            recorder.add(*(self._encoded[i] if sent else (0, 0)), compute)  # a file's last packet may be short
        stats = recorder.finish(underflows, overflows)
        # Both directions run at once: the compute of sending ours and rendering the peer's, per second of the longer
        # stream (found from outside: 7 s decoded over the 20 ms sent read as a real-time factor of 11).
        heard_ms = len(self._render_ms) * self.peer.chunk_frames * info.frame_ms
        audio_ms = max(stats.frames * info.frame_ms, heard_ms)
        compute_ms = sum(self._encode_ms) + sum(self._render_ms)
        stats = replace(stats, real_time_factor=compute_ms / audio_ms if audio_ms else 0.0)
        c = self.buffer.counters
        slots = c.played + c.missing
        lost = max(0, c.missing - c.late)
        end = self._peer_end
        if end is not None and not c.accepted:
            # Nothing arrived, and a stream too long to conceal has no slots: its END says how many packets were
            # sent (found from outside: all 351 dropped read "lost 0 (0.0 %)").
            lost = slots = end.last_sequence + 1
        now = self._loop.time() if self._loop else self._t0
        call = CallStats(
            loss=lost / slots if slots else 0.0,
            late=c.late,
            concealed=self.concealer.concealed_frames - self._past_end_frames,
            jitter_ms=self.buffer.jitter_ms,
            playout_delay_ms=c.waited_ms_mean,
            rtt_ms=statistics.median(self._rtts) if self._rtts else None,
            role=self.role,
            ended_by=self._ended_by or "still running",
            seconds=now - self._t0,
            start_offset_samples=self._start_offset,
            peer_samples=None if end is None else end.samples,
            packets_sent=self._packets_sent,
            packets_received=c.accepted,
            packets_lost=lost,
            duplicates=c.duplicates,
            out_of_window=c.out_of_window,
            dropped=dict(self.dropped),
            stretched=c.stretched - self._past_end_stretches,
            compressed=c.compressed,
            target_delay_ms=self.buffer.target_delay_ms,
            playout_delay_max_ms=c.waited_ms_max,
            concealment=self.concealer.method.value,
            simulated=None if self.simulator is None else self.simulator.conditions.describe(),
            simulated_dropped=0 if self.simulator is None else self.simulator.lost,
            refused_offers={},
            peer=self.peer.to_dict(),
        )
        return replace(stats, call=call)
