"""The jitter buffer: holds packets that arrive at uneven times (and out of order) and hands them out on a
steady playout schedule, with a delay that adapts to the jitter it measures (README, "Calls").

Times are milliseconds on the receiver's clock (any origin); packets are numbered by the sender's sequence
number, one packet every `packet_ms` of audio. Packet n plays at `anchor + n · packet_ms`. Each packet's transit
r = arrival − n · packet_ms (the sender's clock offset cancels out of every difference of two r) tells how late
it came relative to the fastest packet of the last few seconds (`base`); the target delay is a high quantile of
that lateness plus a margin, kept within [min_delay_ms, max_delay_ms]. When the schedule's delay over the
fastest path falls short of the target one packet of concealment is inserted (a stretch); when it has exceeded
the target by a whole packet for a while (or max_delay_ms by a packet at once), two packets are played in the
time of one (a compress).
"""

from __future__ import annotations

import enum
import math
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np

SEQUENCE_MODULUS = 1 << 32  # the packet header's sequence number is a u32 that wraps
# The delay bounds (ms): 40 ms covers a LAN's jitter and the receiver's own scheduling; 400 ms is ITU-T G.114's
# limit for one-way delay in a conversation.
DEFAULT_MIN_DELAY_MS = 40.0
MAX_DELAY_MS = 400.0


@dataclass(frozen=True)
class JitterSettings:
    """How the buffer adapts; all times in ms.

    `window` packets of transit times feed the delay estimate (150 × 20 ms = the last 3 s); the target is their
    `quantile` of lateness plus `margin_ms` (the receiver's own scheduling), within [min_delay_ms, max_delay_ms];
    `compress_after` consecutive slots with a whole packet of excess delay trigger a compress.
    """

    packet_ms: float
    min_delay_ms: float = DEFAULT_MIN_DELAY_MS
    max_delay_ms: float = MAX_DELAY_MS
    quantile: float = 0.95
    margin_ms: float = 5.0
    window: int = 150
    compress_after: int = 50

    def __post_init__(self) -> None:
        if self.packet_ms <= 0:
            raise ValueError(f"packet_ms must be > 0, got {self.packet_ms:g}")
        if not 0 <= self.min_delay_ms <= self.max_delay_ms:
            raise ValueError("need 0 <= min_delay_ms <= max_delay_ms")
        if not 0 < self.quantile <= 1 or self.window < 1 or self.compress_after < 1:
            raise ValueError("need 0 < quantile <= 1, window >= 1 and compress_after >= 1")

    @property
    def capacity(self) -> int:
        """The most packets held: twice what the largest delay needs, plus a few (bounds memory whatever arrives)."""
        return 2 * math.ceil(self.max_delay_ms / self.packet_ms) + 4


class SlotKind(enum.Enum):
    """What the playout does in one slot of `packet_ms`."""

    PLAY = "play"  # decode the packet of `sequence`
    MISSING = (
        "missing"  # packet `sequence` is not here at its time: conceal it (it is late if it comes later)
    )
    STRETCH = "stretch"  # conceal one packet's worth without consuming a sequence number (the delay grows)
    # Packets `sequence` and `sequence + 1` in one slot (the delay shrinks): merged when both are here; when one
    # is missing it is skipped for free, when both are, one packet's worth is concealed.
    COMPRESS = "compress"


@dataclass(frozen=True)
class Slot:
    """One step of the playout schedule, due at `due_ms`; `items` are the packets' payloads (1 for PLAY,
    2 for COMPRESS, None for a missing one; none otherwise). `sequence` counts from the first packet received (0), not the wire's u32."""

    kind: SlotKind
    sequence: int | None
    due_ms: float
    items: tuple[Any, ...] = ()


class Arrival(enum.Enum):
    """What `push` did with a packet."""

    ACCEPTED = "accepted"
    LATE = "late"  # its slot has passed (it was concealed): dropped
    DUPLICATE = "duplicate"  # already held or already played: dropped
    OUT_OF_WINDOW = (
        "out_of_window"  # too far ahead of the playout to be a real packet of this stream: dropped
    )


@dataclass
class JitterCounters:
    """What the buffer has seen and done since it started."""

    accepted: int = 0
    late: int = 0
    duplicates: int = 0
    out_of_window: int = 0
    played: int = 0  # packets decoded (a compress plays two)
    missing: int = 0  # slots concealed because their packet was not there
    # Slots handed out as missing for sequences after the stream's last one, before its END came (a stalled
    # receiver or a late END): not packets of the stream, so taken out of `missing` once the END says so.
    past_end: int = 0
    stretched: int = 0
    compressed: int = 0
    # Playout time − arrival time of the packets played: sum, count and largest (ms).
    waited_ms_sum: float = 0.0
    waited_ms_max: float = 0.0

    @property
    def waited_ms_mean(self) -> float:
        """Mean time a played packet waited in the buffer (0 before any)."""
        return self.waited_ms_sum / self.played if self.played else 0.0


class JitterBuffer:
    """Packets in (any order, any time), playout slots out (in order, on schedule). Not thread-safe."""

    def __init__(self, settings: JitterSettings, first_sequence: int | None = None) -> None:
        """`first_sequence`: the wire sequence number of the stream's first packet where the protocol fixes it
        (a call's streams start at 0). Packets lost before the first one that arrives are then missing slots of
        the schedule like any others (counted, and concealed where they belonged) rather than unseen, unless the
        first arrival is beyond the window (`capacity`): the schedule then starts at it, as for an unknown start."""
        self.settings = settings
        self._start = None if first_sequence is None else first_sequence % SEQUENCE_MODULUS
        self.counters = JitterCounters()
        self._items: dict[int, tuple[Any, float]] = {}  # sequence → (payload, arrival ms)
        self._anchor: float | None = None  # packet n plays at anchor + n · packet_ms
        self._first_raw = 0  # the wire sequence number of packet 0
        self._highest = 0  # highest sequence seen (unwrapped, relative to the first)
        self._next = 0  # the next sequence the playout will consume
        self._last: int | None = None  # the stream's last sequence, once the sender has said so
        self._started = False  # a slot has been handed out
        self._transits: deque[float] = deque(maxlen=settings.window)
        self._recent_played: deque[int] = deque(maxlen=settings.capacity)
        self._previous_transit: float | None = None
        self._jitter = 0.0
        self._excess_slots = 0

    # ---- packets in ----

    def push(self, sequence: int, arrival_ms: float, item: Any) -> Arrival:
        """Offer the packet with wire sequence number `sequence` (u32) that arrived at `arrival_ms`."""
        if self._anchor is None:
            n = self._skipped_before(sequence)
            self._first_raw = (sequence - n) % SEQUENCE_MODULUS
            self._anchor = arrival_ms + self.settings.min_delay_ms - n * self.settings.packet_ms
            self._highest = n
        else:
            n = self._unwrap(sequence)
        if n < self._next and not self._started and self._next - n < self.settings.capacity:
            self._next = n  # reordered before anything played: start from the earlier packet
        if n < self._next:
            duplicate = n in self._recent_played
            self._measure(n, arrival_ms)
            if duplicate:
                self.counters.duplicates += 1
                return Arrival.DUPLICATE
            self.counters.late += 1
            return Arrival.LATE
        if n in self._items:
            self.counters.duplicates += 1
            return Arrival.DUPLICATE
        if n - self._next >= self.settings.capacity or (self._last is not None and n > self._last):
            self.counters.out_of_window += 1
            return Arrival.OUT_OF_WINDOW
        self._measure(n, arrival_ms)
        self._highest = max(self._highest, n)
        self._items[n] = (item, arrival_ms)
        self.counters.accepted += 1
        return Arrival.ACCEPTED

    def end(self, last_sequence: int, arrival_ms: float) -> None:
        """The sender's stream ends with wire sequence `last_sequence` (said at `arrival_ms`): play up to it, then
        `finished`. With no packet received, a known start makes the whole stream missing slots from then on."""
        if self._anchor is None:
            n = self._skipped_before(last_sequence)
            if self._start is None or (last_sequence - self._start) % SEQUENCE_MODULUS != n:
                self._last = -1  # nothing to play: the start is unknown, or the stream too long to conceal
                return
            self._first_raw = self._start
            self._anchor = arrival_ms + self.settings.min_delay_ms
        self._last = self._unwrap(last_sequence)
        for n in [n for n in self._items if n > self._last]:
            del self._items[n]
        past_end = max(0, self._next - self._last - 1)  # none of those could be here: all were missing slots
        self.counters.missing -= past_end
        self.counters.past_end += past_end

    # ---- slots out ----

    def next_due_ms(self) -> float | None:
        """When the next slot is due (receiver clock, ms); None before the first packet or once finished."""
        if self._anchor is None or self.finished:
            return None
        return self._anchor + self._next * self.settings.packet_ms

    def wire_sequence(self, sequence: int) -> int:
        """The wire's u32 sequence number of a Slot's (relative) `sequence`."""
        return (self._first_raw + sequence) % SEQUENCE_MODULUS

    @property
    def last_sequence(self) -> int | None:
        """The stream's last packet (relative sequence, as in Slot), once `end` has said; else None."""
        return self._last

    @property
    def highest_received(self) -> int | None:
        """The highest (relative) sequence accepted so far; None before any packet."""
        return self._highest if self.counters.accepted else None

    @property
    def finished(self) -> bool:
        """The stream has ended (`end`) and every slot up to its last packet has been handed out."""
        return self._last is not None and self._next > self._last

    def pop_due(self, now_ms: float) -> list[Slot]:
        """Every slot due by `now_ms`, in order (several when the caller was late to ask)."""
        slots: list[Slot] = []
        p = self.settings.packet_ms
        while True:
            due = self.next_due_ms()
            if due is None or due > now_ms:
                return slots
            self._started = True
            target, delay = self.target_delay_ms, self.delay_ms
            if target > delay + 1e-9 and self._last is None:
                self._anchor += p
                self.counters.stretched += 1
                slots.append(Slot(SlotKind.STRETCH, None, due))
                continue
            self._excess_slots = self._excess_slots + 1 if delay - target > p else 0
            n = self._next
            shrink = (
                self._excess_slots >= self.settings.compress_after or delay > self.settings.max_delay_ms + p
            )
            if shrink and (self._last is None or n + 1 <= self._last):
                # Two sequence numbers in one slot: merged when both are here, else the missing one costs nothing.
                self._anchor -= p
                self._excess_slots = 0
                self.counters.compressed += 1
                pair = tuple(self._take(k, now_ms) if k in self._items else None for k in (n, n + 1))
                self.counters.missing += sum(item is None for item in pair)  # items may be arrays
                slots.append(Slot(SlotKind.COMPRESS, n, due, pair))
                self._next += 2
                continue
            if n in self._items:
                slots.append(Slot(SlotKind.PLAY, n, due, (self._take(n, now_ms),)))
            else:
                self.counters.missing += 1
                slots.append(Slot(SlotKind.MISSING, n, due))
            self._next += 1

    # ---- what it measures ----

    @property
    def target_delay_ms(self) -> float:
        """The delay over the fastest recent packet that the schedule aims for."""
        s = self.settings
        if not self._transits:
            return s.min_delay_ms
        transits = np.fromiter(self._transits, dtype=np.float64)
        lateness = float(np.quantile(transits - transits.min(), s.quantile))
        return min(max(lateness + s.margin_ms, s.min_delay_ms), s.max_delay_ms)

    @property
    def delay_ms(self) -> float:
        """The schedule's current delay over the fastest recent packet (what the target steers)."""
        if self._anchor is None or not self._transits:
            return self.settings.min_delay_ms
        return self._anchor - min(self._transits)

    @property
    def jitter_ms(self) -> float:
        """RFC 3550's interarrival jitter estimate: a running mean (gain 1/16) of |change in transit time|."""
        return self._jitter

    @property
    def held(self) -> int:
        """Packets waiting in the buffer."""
        return len(self._items)

    # ---- internals ----

    def _take(self, n: int, now_ms: float) -> Any:
        item, arrival = self._items.pop(n)
        self._recent_played.append(n)
        self.counters.played += 1
        self.counters.waited_ms_sum += now_ms - arrival
        self.counters.waited_ms_max = max(self.counters.waited_ms_max, now_ms - arrival)
        return item

    def _measure(self, n: int, arrival_ms: float) -> None:
        transit = arrival_ms - n * self.settings.packet_ms
        if self._previous_transit is not None:
            self._jitter += (abs(transit - self._previous_transit) - self._jitter) / 16.0
        self._previous_transit = transit
        self._transits.append(transit)

    def _skipped_before(self, sequence: int) -> int:
        """How many packets of a known start come before wire `sequence` when it is the first to arrive: 0 for an
        unknown start or beyond the window (the schedule cannot hold that many missing slots)."""
        if self._start is None:
            return 0
        skipped = (sequence - self._start) % SEQUENCE_MODULUS
        return skipped if skipped < self.settings.capacity else 0

    def _unwrap(self, sequence: int) -> int:
        """The wire's u32 sequence as a packet index relative to the first, the nearest to the highest seen."""
        reference = (self._first_raw + self._highest) % SEQUENCE_MODULUS
        step = (sequence - reference) % SEQUENCE_MODULUS
        if step >= SEQUENCE_MODULUS // 2:
            step -= SEQUENCE_MODULUS
        return self._highest + step
