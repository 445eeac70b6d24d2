"""Thompson-sampling allocation checked by simulation: with enough outcomes the best arm gets most new units, the
regret grows sublinearly, and a floor keeps every live arm explored; paused arms get nothing."""

from __future__ import annotations

import random

from promptops.experiments.assign import (
    ActiveArm,
    ActiveExperiment,
    assign_known,
    live_bounds,
    new_arm,
    unit_hash,
)
from promptops.experiments.bandit import ArmData, allocate, seed_of


def _simulate(
    rates: list[float], rounds: int, per_round: int, seed: int, *, kind: str = "conversion"
) -> tuple[list[list[float]], list[float]]:
    """A bandit over arms with true means ``rates``: each round sends ``per_round`` new units by the current
    allocation, observes them, and reallocates. Returns the shares per round and the true cumulative regret
    after each round."""
    rng = random.Random(seed)
    n = [0] * len(rates)
    total = [0.0] * len(rates)
    total_sq = [0.0] * len(rates)
    shares = [1.0 / len(rates)] * len(rates)
    history: list[list[float]] = []
    regret: list[float] = []
    lost = 0.0
    best = max(rates)
    for r in range(rounds):
        for _ in range(per_round):
            arm = rng.choices(range(len(rates)), weights=shares)[0]
            if kind == "conversion":
                value = 1.0 if rng.random() < rates[arm] else 0.0
            else:
                value = rng.gauss(rates[arm], 1.0)
            n[arm] += 1
            total[arm] += value
            total_sq[arm] += value * value
            lost += best - rates[arm]
        found = allocate(
            [ArmData(f"a{i}", n[i], total[i], total_sq[i]) for i in range(len(rates))],
            kind=kind,
            direction="increase",
            seed=seed_of(seed, r),
            draws=4000,
        )
        shares = [max(a.share, 0.0) for a in found.arms]
        if sum(shares) == 0:
            shares = [1.0] * len(rates)
        history.append(shares)
        regret.append(lost)
    return history, regret


def test_best_arm_gets_most_traffic_and_regret_is_sublinear() -> None:
    rates = [0.05, 0.06, 0.08, 0.12, 0.07]  # arm 3 is best
    wins = 0
    for seed in range(6):
        history, regret = _simulate(rates, rounds=60, per_round=100, seed=seed)
        if history[-1][3] > 0.6:
            wins += 1
        # sublinear: the second half of the traffic loses much less than the first half
        half = len(regret) // 2
        first, second = regret[half - 1], regret[-1] - regret[half - 1]
        assert second < 0.6 * first, (seed, first, second)
        # and far less than uniform allocation would lose over the same traffic
        uniform = sum(max(rates) - r for r in rates) / len(rates) * 60 * 100
        assert regret[-1] < 0.5 * uniform
    assert wins >= 5, wins


def test_continuous_metric_and_decreasing_direction() -> None:
    history, _ = _simulate([0.0, 0.3, 0.1], rounds=40, per_round=60, seed=11, kind="continuous")
    assert history[-1][1] > 0.6
    # "decrease": the lowest mean is best
    found = allocate(
        [
            ArmData("fast", 200, 200 * 300.0, 200 * (300.0**2 + 2500)),
            ArmData("slow", 200, 200 * 420.0, 200 * (420.0**2 + 2500)),
        ],
        kind="continuous",
        direction="decrease",
        seed=1,
    )
    assert found.best == "fast" and found.arms[0].share > 0.99
    assert found.regret is not None and abs(found.regret - 200 * 120.0) < 1e-6


def test_floor_paused_arms_and_no_data() -> None:
    empty = allocate([ArmData("a", 0, 0, 0), ArmData("b", 0, 0, 0)], kind="conversion", direction="increase")
    assert abs(empty.arms[0].share - 0.5) < 0.05  # no data: an even split
    clear = [ArmData("a", 1000, 50, 50), ArmData("b", 1000, 150, 150), ArmData("c", 1000, 60, 60, live=False)]
    plain = allocate(clear, kind="conversion", direction="increase")
    assert plain.arms[1].share > 0.99 and plain.arms[2].share == 0.0 and plain.best == "b"
    floored = allocate(clear, kind="conversion", direction="increase", floor=0.1)
    assert abs(floored.arms[0].share - 0.1) < 1e-9 and floored.arms[2].share == 0.0
    assert abs(sum(a.share for a in floored.arms) - 1.0) < 1e-9
    # the same data and seed give the same allocation (every replica agrees)
    assert allocate(clear, kind="conversion", direction="increase", seed=5) == allocate(
        clear, kind="conversion", direction="increase", seed=5
    )


def test_new_units_follow_the_allocation_known_units_keep_their_arm() -> None:
    arms = (
        ActiveArm("control", "v1", 1, None, False),
        ActiveArm("b", "v2", 2, None, False),
        ActiveArm("c", "v3", 3, None, True),
    )
    experiment = ActiveExperiment(
        "exp", "prm", "production", "salt", arms, live_bounds(arms, [0.2, 0.5, 0.3]), "bandit"
    )
    picked = [new_arm(experiment, unit_hash("salt", f"u{i}")).name for i in range(4000)]
    assert "c" not in picked  # paused: no new units
    assert 0.67 < picked.count("b") / len(picked) < 0.76  # 0.5 of the 0.7 live weight
    kept = assign_known(experiment, unit_hash("salt", "x"), "b")
    assert kept.arm.name == "b" and kept.exposed
    paused = assign_known(experiment, unit_hash("salt", "x"), "c")
    assert paused.arm.name == "control" and not paused.exposed
