"""Deterministic, sticky assignment: a unit's arm is a weighted bucket of sha256(salt ":" unit).

Nothing is stored to decide an arm of an A/B experiment, so every process (and every restart, replica or SDK
that knows the salt) gives a unit the same arm. Weights are fixed once an A/B experiment starts, so the buckets
never move. A bandit's weights move with each allocation: a unit seen before keeps the arm it was first served
(its exposure row, :func:`assign_known`), and a new unit falls in the buckets of the current allocation.
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

BUCKET_DIGITS = 15  # 60 bits of the hash: far finer than any weight


def unit_hash(salt: str, unit: str) -> str:
    """The salted hash of a unit (32 hex digits): what exposures and outcomes are keyed by."""
    return hashlib.sha256(f"{salt}:{unit}".encode("utf-8", "surrogatepass")).hexdigest()[:32]


def position(hashed: str) -> float:
    """Where a hashed unit falls in [0, 1)."""
    return int(hashed[:BUCKET_DIGITS], 16) / 16**BUCKET_DIGITS


def cumulative(weights: Sequence[float]) -> tuple[float, ...]:
    """Upper bounds in [0, 1] of each arm's share, in arm order."""
    total = sum(weights)
    bounds: list[float] = []
    running = 0.0
    for weight in weights:
        running += weight
        bounds.append(running / total)
    bounds[-1] = 1.0
    return tuple(bounds)


def arm_index(bounds: Sequence[float], hashed: str) -> int:
    return min(bisect.bisect_right(bounds, position(hashed)), len(bounds) - 1)


@dataclass(frozen=True)
class ActiveArm:
    name: str
    version_id: str
    version: int
    model: str | None
    paused: bool


@dataclass(frozen=True)
class ActiveExperiment:
    """A running experiment as the resolve path needs it (held in the per-project cache)."""

    id: str
    prompt_id: str
    label: str
    salt: str
    arms: tuple[ActiveArm, ...]
    bounds: tuple[float, ...]
    mode: str = "ab"


@dataclass(frozen=True)
class Assignment:
    experiment_id: str
    arm: ActiveArm
    unit_hash: str
    exposed: bool  # False when the unit's arm is paused and it is served the control instead


def assign(experiment: ActiveExperiment, unit: str) -> Assignment:
    """The arm ``unit`` is served. A unit whose arm a guardrail paused gets the control and no exposure."""
    hashed = unit_hash(experiment.salt, unit)
    arm = experiment.arms[arm_index(experiment.bounds, hashed)]
    if arm.paused:
        return Assignment(experiment.id, experiment.arms[0], hashed, exposed=False)
    return Assignment(experiment.id, arm, hashed, exposed=True)


def live_bounds(arms: Sequence[ActiveArm], weights: Sequence[float]) -> tuple[float, ...]:
    """A bandit's buckets for new units: paused arms get none (all paused: everything to the control)."""
    live = [0.0 if arm.paused else weight for arm, weight in zip(arms, weights, strict=True)]
    if sum(live) <= 0:
        live = [1.0] + [0.0] * (len(arms) - 1)
    return cumulative(live)


def new_arm(experiment: ActiveExperiment, hashed: str) -> ActiveArm:
    """The arm a bandit serves a unit it has not seen (by the current allocation)."""
    return experiment.arms[arm_index(experiment.bounds, hashed)]


def assign_known(experiment: ActiveExperiment, hashed: str, arm_name: str) -> Assignment:
    """A bandit's answer for a unit whose arm is known; a paused (or removed) arm's units get the control."""
    arm = next((a for a in experiment.arms if a.name == arm_name), None)
    if arm is None or arm.paused:
        return Assignment(experiment.id, experiment.arms[0], hashed, exposed=False)
    return Assignment(experiment.id, arm, hashed, exposed=True)
