"""Numbering a live source's packets by capture time, as RTP timestamps follow the sampling clock (RFC 3550, 5.1).

A call's receiver plays packet n at anchor + n · packet_ms. A sound card that delivers nothing for a while (PulseAudio's
ALSA plugin pauses about 2 s after an underrun; a stream being reopened) loses that audio, and if the packets after
the hole were numbered on from before it, every one of them would reach the peer one hole late: the peer's jitter
buffer would conceal their slots, discard them as late, and stretch back over seconds. Found from outside: a 2 s
pause at the start of a `--mic` call made 224 of its 349 packets late at the peer. Skipping the hole's sequence
numbers instead makes it a loss the peer conceals once, and what follows plays on time.

The hole is told by wall time against packets numbered, looked at only when the sender has taken everything the
device delivered after new audio came (audio still queued, or a device that pauses and then delivers its backlog,
is late, not lost; so the first packet after a hole still goes out under the old numbering): lag = now −
numbered · packet_s. The least lag of the last
`window_s` is the path's own delay; a lag beyond it by more than `hole_s` plus one packet (a chunk's own jitter) is
audio that never came. The window lets the base follow a device clock that drifts against the system's (50 ppm is
0.5 ms in 10 s), so drift never reads as a hole.
"""

from __future__ import annotations

from collections import deque

HOLE_S = 0.2  # beyond scheduling noise and any chunk's jitter; a shorter hole is left to the peer's jitter buffer
WINDOW_S = 10.0


class CaptureClock:
    """How many packets of capture a live source lost, from wall time and the packets numbered so far."""

    def __init__(self, packet_s: float, hole_s: float = HOLE_S, window_s: float = WINDOW_S) -> None:
        if packet_s <= 0 or hole_s < 0 or window_s <= 0:
            raise ValueError("need packet_s > 0, hole_s >= 0 and window_s > 0")
        self.packet_s, self.hole_s, self.window_s = packet_s, hole_s, window_s
        self._lags: deque[tuple[float, float]] = deque()  # (time, lag) of the last window_s, seconds

    def missing(self, now: float, numbered: int) -> int:
        """Packets to skip: 0 unless the lag of `numbered` packets (sent and skipped) at `now` (monotonic seconds)
        exceeds the least lag of the last `window_s` by more than `hole_s` plus one packet; then the whole packets
        of that excess. Call only when the source has nothing more to give, after it gave something."""
        lag = now - numbered * self.packet_s
        while self._lags and self._lags[0][0] < now - self.window_s:
            self._lags.popleft()
        base = min([lag, *(seen for _, seen in self._lags)])
        excess = lag - base
        # Whole packets, a rounding error short of one counted (0.3 / 0.02 is 14.999...).
        skipped = int(excess / self.packet_s + 1e-6) if excess > self.hole_s + self.packet_s else 0
        self._lags.append((now, lag - skipped * self.packet_s))
        return skipped
