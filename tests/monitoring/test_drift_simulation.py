"""The drift statistics validated by simulation: with no drift a signal is rarely flagged (at most about its
alpha), and a known shift is flagged nearly always. Pure functions over generated samples, seeded."""

from __future__ import annotations

import random
from collections.abc import Callable

import numpy as np

from promptops.monitoring import drift
from promptops.monitoring.drift import RunPoint, Sample

TRIALS = 200
N = 400
LABELS = ["positive", "negative", "neutral"]
ALPHA = 0.01


def make_sample(
    rng: random.Random,
    n: int = N,
    *,
    weights: tuple[float, ...] = (0.5, 0.3, 0.2),
    refusal: float = 0.02,
    latency: float = 200.0,
    cost: float = 0.001,
    input_words: int = 12,
    topic: str = "parcel delivery late box courier",
    score_mean: float = 0.8,
) -> Sample:
    runs = []
    for i in range(n):
        if rng.random() < refusal:
            output = "I'm sorry, I can't help with that request."
        else:
            output = rng.choices(LABELS, weights=weights)[0]
            if rng.random() < 0.3:
                output = output.capitalize() + "."
        words = topic.split()
        text = " ".join(rng.choice(words) for _ in range(max(1, int(rng.gauss(input_words, 3)))))
        runs.append(
            RunPoint(
                run_id=f"run_{i}",
                ok=True,
                output=output,
                input_text=text,
                latency_ms=rng.lognormvariate(np.log(latency), 0.4),
                cost_usd=max(0.0, rng.gauss(cost, cost / 5)),
            )
        )
    scores = [(f"run_{i}", min(1.0, max(0.0, rng.gauss(score_mean, 0.15)))) for i in range(n // 2)]
    return Sample(runs, scores)


def flag_rate(
    make: Callable[[random.Random], tuple[Sample, Sample]], name: str, trials: int = TRIALS
) -> float:
    rng = random.Random(7)
    flagged = 0
    for _ in range(trials):
        baseline, current = make(rng)
        result = drift.compare(baseline, current, alpha=ALPHA)
        signal = next(s for s in result.signals if s.name == name)
        flagged += signal.drifted
    return flagged / trials


def null(rng: random.Random) -> tuple[Sample, Sample]:
    return make_sample(rng), make_sample(rng)


def test_no_drift_is_rarely_flagged() -> None:
    rng = random.Random(11)
    any_flagged = 0
    per_signal: dict[str, int] = {}
    for _ in range(TRIALS):
        baseline, current = null(rng)
        result = drift.compare(baseline, current, alpha=ALPHA)
        for signal in result.signals:
            per_signal[signal.name] = per_signal.get(signal.name, 0) + signal.drifted
        any_flagged += any(s.drifted for s in result.signals)
        assert result.affected == [] or any(s.drifted for s in result.signals)
    # each test is at level alpha and also needs an effect above its threshold: at most ~alpha per signal
    for name, count in per_signal.items():
        assert count / TRIALS <= 0.03, (name, count)
    assert any_flagged / TRIALS <= 0.08, any_flagged


def test_label_distribution_shift_is_flagged() -> None:
    def shifted(rng: random.Random) -> tuple[Sample, Sample]:
        return make_sample(rng), make_sample(rng, weights=(0.3, 0.5, 0.2))

    def large(rng: random.Random) -> tuple[Sample, Sample]:
        return make_sample(rng), make_sample(rng, weights=(0.2, 0.6, 0.2))

    assert flag_rate(shifted, "output_label_chi2", 50) >= 0.95
    # PSI of this shift is 0.204, right at its 0.2 threshold ("significant shift"): flagged about half the time;
    # a clearly larger one (PSI 0.48) always
    assert 0.2 <= flag_rate(shifted, "output_label_psi", 50) <= 0.8
    assert flag_rate(large, "output_label_psi", 50) >= 0.95


def test_refusal_rise_is_flagged_and_names_the_refusals() -> None:
    rng = random.Random(3)
    baseline, current = make_sample(rng), make_sample(rng, refusal=0.12)
    result = drift.compare(baseline, current, alpha=ALPHA)
    signal = next(s for s in result.signals if s.name == "refusal_rate")
    assert signal.drifted and signal.current_value is not None and signal.current_value > 0.08
    refused = {r.run_id for r in current.runs if drift.is_refusal(r.output or "")}
    assert set(result.affected[:20]) & refused

    def risen(rng: random.Random) -> tuple[Sample, Sample]:
        return make_sample(rng), make_sample(rng, refusal=0.12)

    assert flag_rate(risen, "refusal_rate", 50) >= 0.95


def test_latency_cost_and_score_shifts_are_flagged() -> None:
    def slower(rng: random.Random) -> tuple[Sample, Sample]:
        return make_sample(rng), make_sample(rng, latency=320.0)

    def dearer(rng: random.Random) -> tuple[Sample, Sample]:
        return make_sample(rng), make_sample(rng, cost=0.0015)

    def worse(rng: random.Random) -> tuple[Sample, Sample]:
        return make_sample(rng), make_sample(rng, score_mean=0.7)

    def longer_inputs(rng: random.Random) -> tuple[Sample, Sample]:
        return make_sample(rng), make_sample(rng, input_words=18)

    assert flag_rate(slower, "latency_change", 50) >= 0.95
    assert flag_rate(dearer, "cost_change", 50) >= 0.95
    assert flag_rate(worse, "online_score", 50) >= 0.95
    assert flag_rate(longer_inputs, "input_length", 50) >= 0.95


def test_output_length_shift_is_flagged() -> None:
    def verbose(rng: random.Random) -> tuple[Sample, Sample]:
        base = make_sample(rng)
        cur = make_sample(rng)
        cur = Sample(
            [
                RunPoint(
                    r.run_id,
                    r.ok,
                    (r.output or "") + " because the customer says so",
                    r.input_text,
                    r.latency_ms,
                    r.cost_usd,
                )
                if rng.random() < 0.5
                else r
                for r in cur.runs
            ],
            cur.scores,
        )
        return base, cur

    assert flag_rate(verbose, "output_length", 30) >= 0.95


def test_change_point_locates_a_step() -> None:
    rng = np.random.default_rng(1)
    series = list(rng.normal(100, 5, 30)) + list(rng.normal(150, 5, 10))
    index, p_value = drift.change_point(series)
    assert index == 30 and p_value < 0.01
    flat = list(rng.normal(100, 5, 40))
    hits = sum(
        drift.change_point(list(np.random.default_rng(s).normal(100, 5, 40)), permutations=200)[1] < 0.01
        for s in range(100)
    )
    assert hits <= 4 and drift.change_point(flat)[1] >= 0.0


def test_free_text_answers_skip_the_label_signals() -> None:
    rng = random.Random(5)
    base = make_sample(rng)
    free = Sample(
        [
            RunPoint(r.run_id, True, f"answer number {i} with words", r.input_text, 1.0, 0.0)
            for i, r in enumerate(base.runs)
        ]
    )
    result = drift.compare(free, free)
    skipped = dict(result.skipped)
    assert "free text" in skipped["output_label_chi2"] and "output_label_psi" in skipped
    small = drift.compare(Sample(base.runs[:5]), Sample(base.runs[:5]))
    assert all(name in dict(small.skipped) for name in ("output_length", "refusal_rate", "latency_change"))


def test_embedding_shift_of_inputs() -> None:
    rng = random.Random(9)
    from promptops.search.embed import embedder

    model = embedder("static")

    def embed(texts: list[str]) -> np.ndarray:
        return np.asarray(model.embed(texts), dtype=np.float32)

    baseline = make_sample(rng, 200)
    same = make_sample(rng, 200)
    other = make_sample(rng, 200, topic="invoice refund payment card charged twice")
    quiet = drift.compare(baseline, same, embed=embed)
    loud = drift.compare(baseline, other, embed=embed)
    assert not next(s for s in quiet.signals if s.name == "input_embedding").drifted
    assert next(s for s in loud.signals if s.name == "input_embedding").drifted
