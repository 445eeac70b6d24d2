"""The experiment statistics validated by simulation: A/A with daily peeking keeps false positives at or below
alpha, an A/B with a known effect is detected, and the sample-ratio check flags a broken split. Seeded, so a run
is repeatable; the tolerances are several binomial standard errors wide."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from promptops.experiments import stats
from promptops.experiments.assign import ActiveArm, ActiveExperiment, arm_index, assign, cumulative, unit_hash

ALPHA = 0.05
PEEKS = 20
UNITS = 4000  # per arm at the last peek


def _summary(values: np.ndarray) -> stats.Summary:
    return stats.Summary(len(values), float(values.sum()), float((values * values).sum()))


def _rejected_at_some_peek(a: np.ndarray, b: np.ndarray, test: str = "msprt") -> bool:
    for peek in range(1, PEEKS + 1):
        n = UNITS * peek // PEEKS
        control, treatment = _summary(a[:n]), _summary(b[:n])
        if test == "msprt":
            if stats.compare(control, treatment, alpha=ALPHA).significant:
                return True
        else:  # the naive fixed-horizon z-test, looked at every time
            assert control.mean is not None and treatment.mean is not None
            se = math.sqrt(control.variance / n + treatment.variance / n)
            if se > 0 and abs(treatment.mean - control.mean) / se > stats.Z95:
                return True
    return False


def _simulate(rng: np.random.Generator, runs: int, draw: str, effect: float, test: str = "msprt") -> float:
    hits = 0
    for _ in range(runs):
        if draw == "conversion":
            a = (rng.random(UNITS) < 0.10).astype(float)
            b = (rng.random(UNITS) < 0.10 + effect).astype(float)
        else:
            a = rng.lognormal(5.0, 0.6, UNITS)  # skewed, like latencies or revenue
            b = rng.lognormal(5.0, 0.6, UNITS) * (1 + effect)
        hits += _rejected_at_some_peek(a, b, test)
    return hits / runs


def test_a_a_conversion_false_positives_stay_below_alpha_while_peeking() -> None:
    rate = _simulate(np.random.default_rng(1), 500, "conversion", 0.0)
    assert rate <= ALPHA + 0.02, rate


def test_a_a_continuous_false_positives_stay_below_alpha_while_peeking() -> None:
    rate = _simulate(np.random.default_rng(2), 500, "continuous", 0.0)
    assert rate <= ALPHA + 0.02, rate


def test_peeking_at_a_fixed_horizon_test_would_not() -> None:
    """The simulation can see the problem the sequential test solves: 20 looks at a z-test reject far too often."""
    rate = _simulate(np.random.default_rng(3), 300, "conversion", 0.0, test="naive")
    assert rate > 2 * ALPHA, rate


def test_a_b_with_a_known_effect_is_detected() -> None:
    power = _simulate(np.random.default_rng(4), 200, "conversion", 0.03)  # 10% -> 13%
    assert power >= 0.8, power
    power = _simulate(np.random.default_rng(5), 200, "continuous", 0.08)  # +8% on a skewed metric
    assert power >= 0.8, power


def test_sequence_covers_the_true_difference() -> None:
    rng = np.random.default_rng(6)
    misses = 0
    for _ in range(300):
        a = (rng.random(UNITS) < 0.2).astype(float)
        b = (rng.random(UNITS) < 0.25).astype(float)
        found = stats.compare(_summary(a), _summary(b), alpha=ALPHA)
        assert found.sequence is not None and found.interval is not None
        assert found.sequence[0] <= found.interval[0] and found.interval[1] <= found.sequence[1]
        misses += not found.sequence[0] <= 0.05 <= found.sequence[1]
    assert misses / 300 <= ALPHA


def test_sample_ratio_mismatch() -> None:
    rng = np.random.default_rng(7)
    fair = [rng.multinomial(10_000, [0.5, 0.5]) for _ in range(1000)]
    flagged = sum(stats.sample_ratio(list(c), [1, 1]).mismatch for c in fair)
    assert flagged <= 5  # p < 0.001: about one in a thousand
    weighted = rng.multinomial(10_000, [0.2, 0.3, 0.5])
    assert not stats.sample_ratio(list(weighted), [2, 3, 5]).mismatch
    broken = [rng.multinomial(20_000, [0.52, 0.48]) for _ in range(100)]  # ~8% of one arm's exposures lost
    assert sum(stats.sample_ratio(list(c), [1, 1]).mismatch for c in broken) >= 95
    assert not stats.sample_ratio([3, 1], [1, 1]).mismatch  # too few units to test
    assert stats.sample_ratio([3, 1], [1, 1]).p_value is None


def test_small_and_degenerate_samples_are_not_significant() -> None:
    tiny = stats.compare(stats.Summary(5, 0, 0), stats.Summary(5, 5, 5))
    assert tiny.difference == 1.0 and tiny.p_value is None and not tiny.significant
    flat = stats.compare(stats.Summary(100, 0, 0), stats.Summary(100, 0, 0))
    assert flat.p_value == 1.0 and not flat.significant
    empty = stats.compare(stats.Summary(0, 0, 0), stats.Summary(10, 1, 1))
    assert empty.difference is None


@given(salt=st.text(min_size=1, max_size=32), unit=st.text(min_size=1, max_size=200))
def test_assignment_is_deterministic(salt: str, unit: str) -> None:
    bounds = cumulative([1, 2, 3])
    assert arm_index(bounds, unit_hash(salt, unit)) == arm_index(bounds, unit_hash(salt, unit))
    assert 0 <= arm_index(bounds, unit_hash(salt, unit)) < 3


def test_assignment_follows_the_weights_and_paused_arms_get_the_control() -> None:
    arms = tuple(ActiveArm(n, f"ver_{n}", i + 1, None, n == "c") for i, n in enumerate(["control", "b", "c"]))
    experiment = ActiveExperiment("exp_x", "prm_x", "production", "salt-1", arms, cumulative([1, 1, 2]))
    counts = {"control": 0, "b": 0, "c": 0}
    exposed = 0
    for i in range(20_000):
        hashed = unit_hash("salt-1", f"user-{i}")
        counts[arms[arm_index(experiment.bounds, hashed)].name] += 1
        got = assign(experiment, f"user-{i}")
        exposed += got.exposed
        assert got.arm.name != "c"
    assert abs(counts["control"] / 20_000 - 0.25) < 0.015
    assert abs(counts["c"] / 20_000 - 0.5) < 0.015
    assert exposed == counts["control"] + counts["b"]
    # another salt reshuffles the units
    moved = sum(
        arm_index(experiment.bounds, unit_hash("salt-1", f"u{i}"))
        != arm_index(experiment.bounds, unit_hash("salt-2", f"u{i}"))
        for i in range(1000)
    )
    assert moved > 400
