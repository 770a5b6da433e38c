"""The network simulator: seeded reproducibility, loss rates within statistical bounds, bursts, delays."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sscodec.stream.netsim import REORDER_HOLD_MS, NetworkConditions, NetworkSimulator, parse_conditions


def fates(conditions: NetworkConditions, packets: int) -> list[list[float]]:
    simulator = NetworkSimulator(conditions)
    return [simulator.fate() for _ in range(packets)]


def lost_runs(lost: np.ndarray) -> list[int]:
    """Lengths of the runs of consecutive lost packets."""
    runs, current = [], 0
    for flag in lost:
        if flag:
            current += 1
        elif current:
            runs.append(current)
            current = 0
    return runs + ([current] if current else [])


def test_the_same_seed_gives_the_same_fates_and_another_seed_does_not() -> None:
    conditions = NetworkConditions(loss=0.2, burst=3, jitter_ms=40, reorder=0.05, duplicate=0.05, seed=7)
    assert fates(conditions, 2000) == fates(conditions, 2000)
    other = fates(
        NetworkConditions(loss=0.2, burst=3, jitter_ms=40, reorder=0.05, duplicate=0.05, seed=8), 2000
    )
    assert other != fates(conditions, 2000)


@pytest.mark.parametrize("seed", range(5))
def test_random_loss_rate_is_within_five_standard_errors(seed: int) -> None:
    n, rate = 20_000, 0.1
    lost = np.array([not f for f in fates(NetworkConditions(loss=rate, seed=seed), n)])
    assert abs(lost.mean() - rate) < 5 * math.sqrt(rate * (1 - rate) / n)
    # Independent losses: a lost packet is followed by another with probability `rate`, not more.
    after_loss = lost[1:][lost[:-1]]
    assert abs(after_loss.mean() - rate) < 5 * math.sqrt(rate * (1 - rate) / after_loss.size)


@pytest.mark.parametrize("seed", range(3))
def test_bursty_loss_keeps_the_rate_and_makes_runs_of_the_mean_length(seed: int) -> None:
    n, rate, burst = 50_000, 0.1, 4.0
    lost = np.array([not f for f in fates(NetworkConditions(loss=rate, burst=burst, seed=seed), n)])
    leave = 1 / burst
    enter = rate * leave / (1 - rate)
    # A two-state chain's mean over n steps has variance p(1-p)/n · (1 + λ)/(1 - λ), λ = 1 - enter - leave.
    lam = 1 - enter - leave
    assert abs(lost.mean() - rate) < 5 * math.sqrt(rate * (1 - rate) / n * (1 + lam) / (1 - lam))
    runs = lost_runs(lost)
    # Run lengths are geometric with mean `burst` (standard deviation sqrt(burst² - burst) per run).
    assert abs(np.mean(runs) - burst) < 5 * math.sqrt(burst * burst - burst) / math.sqrt(len(runs))
    random_runs = lost_runs(np.array([not f for f in fates(NetworkConditions(loss=rate, seed=seed), n)]))
    assert np.mean(random_runs) < 1.2 < np.mean(runs)


def test_delay_and_jitter_are_uniform_above_the_fixed_delay() -> None:
    n = 20_000
    first = np.array([f[0] for f in fates(NetworkConditions(delay_ms=10, jitter_ms=30, seed=3), n)])
    assert first.min() >= 10 and first.max() <= 10 + 60
    assert abs(first.mean() - 40) < 1.0  # uniform 10 + 0..60 ms: mean 40, standard error 0.12 ms
    assert abs(np.mean(first < 25) - 0.25) < 5 * math.sqrt(0.25 * 0.75 / n)


def test_reorder_and_duplicates_happen_at_their_rates() -> None:
    n = 20_000
    result = fates(NetworkConditions(delay_ms=10, reorder=0.1, duplicate=0.05, seed=4), n)
    assert all(result)  # no loss asked for
    held = np.array([f[0] == 10 + REORDER_HOLD_MS for f in result])
    assert all(f[0] in (10, 10 + REORDER_HOLD_MS) for f in result)
    assert abs(held.mean() - 0.1) < 5 * math.sqrt(0.1 * 0.9 / n)
    doubles = np.array([len(f) == 2 for f in result])
    assert abs(doubles.mean() - 0.05) < 5 * math.sqrt(0.05 * 0.95 / n)
    assert all(f[1] == f[0] + 1.0 for f in result if len(f) == 2)


def test_perfect_conditions_change_nothing() -> None:
    assert NetworkConditions().is_perfect
    assert fates(NetworkConditions(seed=5), 100) == [[0.0]] * 100


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("loss=0.1,jitter=40ms,seed=1", NetworkConditions(loss=0.1, jitter_ms=40, seed=1)),
        (
            "loss=5%, burst=3, delay=20, reorder=1%, duplicate=0.5%",
            NetworkConditions(loss=0.05, burst=3, delay_ms=20, reorder=0.01, duplicate=0.005),
        ),
        ("seed=0", NetworkConditions()),
    ],
)
def test_parse_conditions(text: str, expected: NetworkConditions) -> None:
    assert parse_conditions(text) == expected
    assert parse_conditions(expected.describe()) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("loss=1", "loss must be in [0, 1)"),
        ("loss=-0.1", "loss must be in [0, 1)"),
        ("burst=0.5", "burst"),
        ("jitter=-3ms", "delay and jitter must be >= 0"),
        ("speed=3", "KEY=VALUE"),
        ("loss", "KEY=VALUE"),
        ("loss=lots", "loss='lots' is not a fraction (0.1) or a percentage (10%)"),
        ("loss=0.1,loss=0.2", "given twice"),
        ("jitter=nan", "finite"),
        # Found from outside: these said only "not a number", and an empty list simulated nothing without a word.
        # Found from outside: -1 and 10^23 were "not a whole number", though they are: the range is what is wrong.
        ("seed=1.5", "seed='1.5': expected a whole number from 0 to 999999999999999999 (e.g. seed=1)"),
        ("seed=-1", "seed='-1': expected a whole number from 0 to 999999999999999999"),
        ("seed=99999999999999999999999", "seed='99999999999999999999999': expected a whole number from 0 to"),
        ("delay=20s", "delay='20s' is not a number of milliseconds (e.g. 20 or 20ms)"),
        ("burst=many", "burst='many' is not a mean number of packets (e.g. burst=3)"),
        ("", "no conditions given (e.g. loss=0.05,jitter=30ms)"),
        (" , ,", "no conditions given"),
    ],
)
def test_bad_conditions_are_one_line_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError, match="--simulate") as caught:
        parse_conditions(text)
    assert message in str(caught.value) and "\n" not in str(caught.value)
