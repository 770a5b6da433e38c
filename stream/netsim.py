"""A network simulator in user space, for tests and benchmarks (the kernel here has no `netem`).

Applied to the codec's packets as they arrive: each one is dropped, or delivered after an extra delay, maybe twice.
Seeded, so a run is reproducible packet for packet. `codec-stream --simulate loss=0.1,jitter=40ms,seed=1` and
`codec-bench call` use it; it is a test aid, not a model of any particular network.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sscodec.common.text import decimal

# How long a packet picked for reordering is held back beyond its other delay: more than one 20 ms frame, so it
# arrives after the packet sent after it.
REORDER_HOLD_MS = 30.0


@dataclass(frozen=True)
class NetworkConditions:
    """What the simulator does to each packet.

    - `loss`: long-run fraction of packets dropped, 0 ≤ loss < 1.
    - `burst`: mean length of a run of lost packets. 1 (the default) drops each packet independently (Bernoulli);
      above 1 the losses come in bursts from a two-state Gilbert-Elliott chain (every packet lost in the bad
      state, none in the good one) with the same long-run `loss`.
    - `delay_ms`: fixed extra one-way delay.
    - `jitter_ms`: each packet is held an extra uniform 0..2·jitter ms (mean `jitter_ms`), independently, so
      packets sent less than 2·jitter apart can arrive out of order.
    - `reorder`: probability that a packet is held another REORDER_HOLD_MS (arrives after its successor).
    - `duplicate`: probability that a delivered packet is delivered a second time, 1 ms later.
    - `seed`: the random generator's seed; the same seed gives the same fate to the same n-th packet.
    """

    loss: float = 0.0
    burst: float = 1.0
    delay_ms: float = 0.0
    jitter_ms: float = 0.0
    reorder: float = 0.0
    duplicate: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0.0 <= self.loss < 1.0:
            raise ValueError(f"loss must be in [0, 1), got {self.loss:g}")
        if self.burst < 1.0:
            raise ValueError(f"burst (mean lost run, packets) must be >= 1, got {self.burst:g}")
        if self.delay_ms < 0 or self.jitter_ms < 0:
            raise ValueError("delay and jitter must be >= 0 ms")
        for name in ("reorder", "duplicate"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name):g}")

    @property
    def is_perfect(self) -> bool:
        """True when the simulator changes nothing."""
        return (self.loss, self.delay_ms, self.jitter_ms, self.reorder, self.duplicate) == (0, 0, 0, 0, 0)

    def describe(self) -> str:
        """The conditions in `parse_conditions`' syntax (every field, so it parses back to the same value)."""
        return (
            f"loss={self.loss:g},burst={self.burst:g},delay={self.delay_ms:g}ms,jitter={self.jitter_ms:g}ms,"
            f"reorder={self.reorder:g},duplicate={self.duplicate:g},seed={self.seed}"
        )


_KEYS = {
    "loss": "loss",
    "burst": "burst",
    "delay": "delay_ms",
    "jitter": "jitter_ms",
    "reorder": "reorder",
    "duplicate": "duplicate",
    "seed": "seed",
}


SEED_DIGITS = 18  # seeds up to 10^18 - 1: any number a user types, and never thousands of digits to parse


def parse_conditions(text: str) -> NetworkConditions:
    """`loss=0.1,burst=3,delay=20ms,jitter=40ms,reorder=0.01,duplicate=0.01,seed=1` (any subset, any order).

    Loss, reorder and duplicate take a fraction (0.1) or a percentage (10%); delay and jitter milliseconds, with or
    without `ms`. ValueError (one line) for an unknown key, a repeated key or a value out of range.
    """
    values: dict[str, float | int] = {}
    items = [part.strip() for part in text.split(",") if part.strip()]
    if not items:  # found from outside: `--simulate ''` ran unsimulated without a word
        raise ValueError("--simulate: no conditions given (e.g. loss=0.05,jitter=30ms)")
    for item in items:
        key, sep, raw = item.partition("=")
        key, raw = key.strip().lower(), raw.strip().lower()
        if not sep or key not in _KEYS:
            raise ValueError(
                f"--simulate: expected KEY=VALUE with KEY one of {', '.join(_KEYS)}, got {item!r}"
            )
        if _KEYS[key] in values:
            raise ValueError(f"--simulate: {key} given twice")
        # Each kind of value says what it takes (found from outside: seed=1.5 and delay=20s were "not a number").
        if key == "seed":
            seed = decimal(raw, SEED_DIGITS)
            if seed is None:
                raise ValueError(f"--simulate: seed={raw!r}: expected a whole number from 0 to {10 ** SEED_DIGITS - 1} "
                                 "(e.g. seed=1)")
            values["seed"] = seed
            continue
        try:
            if key in ("delay", "jitter"):
                values[_KEYS[key]] = float(raw.removesuffix("ms"))
            elif raw.endswith("%"):
                values[_KEYS[key]] = float(raw[:-1]) / 100
            else:
                values[_KEYS[key]] = float(raw)
        except ValueError:
            what = ("a number of milliseconds (e.g. 20 or 20ms)" if key in ("delay", "jitter")
                    else "a mean number of packets (e.g. burst=3)" if key == "burst"
                    else "a fraction (0.1) or a percentage (10%)")
            raise ValueError(f"--simulate: {key}={raw!r} is not {what}") from None
    if any(not np.isfinite(v) for v in values.values()):
        raise ValueError("--simulate: values must be finite")
    try:
        return NetworkConditions(**values)  # type: ignore[arg-type]
    except ValueError as error:
        raise ValueError(f"--simulate: {error}") from None


class NetworkSimulator:
    """Decides, packet by packet in arrival order, whether each is lost and how much later it is delivered.

    The n-th call to `fate` always draws the same random numbers for a given seed (a fixed number per packet),
    so the loss pattern does not depend on the delays chosen or on which packets came before.
    """

    def __init__(self, conditions: NetworkConditions) -> None:
        self.conditions = conditions
        self._rng = np.random.default_rng(conditions.seed)
        self._bad = False  # the Gilbert-Elliott chain's state: True while in a loss burst
        c = conditions
        if c.burst > 1.0:
            self._leave_bad = 1.0 / c.burst  # mean run of the bad state = burst packets
            # Stationary loss p / (p + r) = loss  ⇒  p = loss · r / (1 − loss).
            self._enter_bad = min(1.0, c.loss * self._leave_bad / (1.0 - c.loss))
        self.packets = 0
        self.lost = 0

    def fate(self) -> list[float]:
        """Extra delays (ms) at which the next packet is delivered: [] when it is lost, two when duplicated."""
        c = self.conditions
        u_loss, u_jitter, u_reorder, u_dup = self._rng.random(4)
        self.packets += 1
        if c.burst > 1.0:
            self._bad = u_loss < (1.0 - self._leave_bad if self._bad else self._enter_bad)
            lost = self._bad
        else:
            lost = u_loss < c.loss
        if lost:
            self.lost += 1
            return []
        delay = (
            c.delay_ms + 2.0 * c.jitter_ms * u_jitter + (REORDER_HOLD_MS if u_reorder < c.reorder else 0.0)
        )
        return [delay, delay + 1.0] if u_dup < c.duplicate else [delay]
