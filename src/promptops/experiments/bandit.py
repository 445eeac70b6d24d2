"""Bandit allocation by Thompson sampling: each arm's share of new units is the posterior chance that it is the
best arm on the experiment's bandit metric.

* Conversion metrics: Beta-Bernoulli. An arm with ``k`` converting units out of ``n`` exposed has the posterior
  Beta(1 + k, 1 + n - k) for its rate (a uniform prior).
* Continuous metrics: a normal posterior for the arm's mean, N(mean, s^2 / n), with the pooled variance of all
  arms standing in for an arm's own until it has :data:`MIN_OWN_VARIANCE_UNITS` units, and a flat prior (an
  arm without data draws from a wide normal around the pooled mean, so it is explored).

The chance that each arm is best is estimated from :data:`DRAWS` joint posterior draws (seeded, so a given set
of outcomes gives the same allocation in every process). A ``floor`` keeps every live arm at a minimum share
(exploration that never stops, at the cost of linear regret of floor x gap); paused arms get nothing.

Regret: with the posterior means m_a and n_a units exposed per arm, ``sum_a n_a (max m - m_a)`` is the estimated
outcome lost so far against serving the best arm to everyone (in the metric's unit, the direction applied).
``tests/experiments/test_bandit_simulation.py`` checks by simulation that the best arm ends up with most of the
traffic and that the regret grows sublinearly.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

DRAWS = 20_000
MIN_OWN_VARIANCE_UNITS = 10
MAX_FLOOR = 0.2


@dataclass(frozen=True)
class ArmData:
    """What the allocation knows of one arm: ``n`` units with values summing to ``total`` (and squares to
    ``total_sq``); for a conversion metric ``total`` is the number of converting units."""

    name: str
    n: int
    total: float
    total_sq: float
    live: bool = True


@dataclass(frozen=True)
class ArmAllocation:
    name: str
    share: float
    probability_best: float
    mean: float | None  # the posterior mean of the metric (not direction-adjusted)
    n: int


@dataclass(frozen=True)
class Allocation:
    arms: list[ArmAllocation]
    regret: float | None
    best: str | None  # the arm with the highest chance of being best


def seed_of(*parts: object) -> int:
    return int(hashlib.sha256(":".join(map(str, parts)).encode()).hexdigest()[:16], 16)


def _posterior_draws(
    arms: Sequence[ArmData], kind: str, rng: np.random.Generator, draws: int
) -> tuple[np.ndarray, list[float | None]]:
    """(draws x arms) samples of each arm's mean, and the posterior means."""
    samples = np.empty((draws, len(arms)))
    means: list[float | None] = []
    if kind == "conversion":
        for i, arm in enumerate(arms):
            k = min(max(arm.total, 0.0), float(arm.n))
            a, b = 1.0 + k, 1.0 + arm.n - k
            samples[:, i] = rng.beta(a, b, size=draws)
            means.append(a / (a + b))
        return samples, means
    units = sum(a.n for a in arms)
    grand = sum(a.total for a in arms) / units if units else 0.0
    pooled_ss = sum(max(0.0, a.total_sq - (a.total * a.total / a.n)) for a in arms if a.n)
    pooled_var = pooled_ss / (units - len([a for a in arms if a.n])) if units > len(arms) else 0.0
    spread = math.sqrt(pooled_var) if pooled_var > 0 else max(1.0, abs(grand))
    for i, arm in enumerate(arms):
        if arm.n == 0:
            samples[:, i] = rng.normal(grand, spread * 3, size=draws)
            means.append(None)
            continue
        mean = arm.total / arm.n
        own = (
            max(0.0, arm.total_sq - arm.total * arm.total / arm.n) / (arm.n - 1)
            if arm.n >= MIN_OWN_VARIANCE_UNITS
            else 0.0
        )
        variance = own if own > 0 else (pooled_var if pooled_var > 0 else spread * spread)
        samples[:, i] = rng.normal(mean, math.sqrt(variance / arm.n), size=draws)
        means.append(mean)
    return samples, means


def allocate(
    arms: Sequence[ArmData],
    *,
    kind: str,
    direction: str,
    floor: float = 0.0,
    seed: int = 0,
    draws: int = DRAWS,
) -> Allocation:
    """Thompson-sampling shares for the live arms (see the module docstring)."""
    if not arms:
        raise ValueError("no arms to allocate")
    rng = np.random.default_rng(seed)
    samples, means = _posterior_draws(arms, kind, rng, draws)
    sign = 1.0 if direction == "increase" else -1.0
    live = np.array([a.live for a in arms])
    oriented = np.where(live, samples * sign, -np.inf)
    if not live.any():
        shares = np.zeros(len(arms))
        best_counts = np.zeros(len(arms))
    else:
        winners = np.argmax(oriented, axis=1)
        best_counts = np.bincount(winners, minlength=len(arms)).astype(float)
        shares = best_counts / draws
        live_count = int(live.sum())
        floor = min(max(floor, 0.0), MAX_FLOOR, 1.0 / live_count)
        if floor > 0:
            shares = np.where(live, floor + (1.0 - floor * live_count) * shares, 0.0)
    total = shares.sum()
    if total > 0:
        shares = shares / total
    known = [(m, a) for m, a in zip(means, arms, strict=True) if m is not None]
    regret: float | None = None
    best: str | None = None
    if known:
        top = max(sign * m for m, _ in known)
        regret = sum(a.n * (top - sign * m) for m, a in known)
        best = arms[int(np.argmax(np.where(live, best_counts, -1.0)))].name if live.any() else None
    return Allocation(
        arms=[
            ArmAllocation(a.name, float(s), float(c / draws), m, a.n)
            for a, s, c, m in zip(arms, shares, best_counts, means, strict=True)
        ],
        regret=regret,
        best=best,
    )
