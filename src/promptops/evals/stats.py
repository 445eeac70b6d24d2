"""Statistics of comparing two prompt versions on the same cases (a paired design).

Every case was run by both versions A and B, so the comparison is paired: the pass/fail outcomes are
compared with McNemar's test (only the cases where the two versions disagree carry information), and the
per-case scores with a paired bootstrap of the mean difference. :func:`compare_paired` turns both into a
plain verdict such as ``"B beats A by 7.2 points, 95% CI [3.1, 11.0], p = 0.004"``.

Conventions: a difference is always ``B - A``; "points" are a score difference times 100 (scores are in
[0, 1], so points are percentage points); p-values are written with three decimals and ``< 0.001`` below.
Everything is pure and deterministic (the bootstrap takes a seed); inputs are validated and bad input raises
:class:`ValueError` with a message that says what is wrong.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

if TYPE_CHECKING:
    from types import ModuleType


def _sps() -> ModuleType:
    """scipy.stats, imported on first use: it takes seconds to import and only a few requests need it."""
    from scipy import stats

    return stats


__all__ = [
    "BootstrapCI",
    "Comparison",
    "McNemarResult",
    "TrivialBaselines",
    "cases_needed",
    "cases_needed_for_scores",
    "compare_paired",
    "format_p",
    "mcnemar",
    "paired_bootstrap_ci",
    "trivial_baselines",
]

# Per-case outcomes: any sequence (list, tuple) or a one-dimensional numpy array.
Bools = Sequence[bool] | np.ndarray
Floats = Sequence[float] | np.ndarray

# Below this many discordant pairs McNemar's chi-square approximation is poor; use the exact binomial test.
EXACT_BELOW = 25
MAX_RESAMPLES = 1_000_000
# Resampled index matrices are built in chunks of about this many cells to bound memory.
_CHUNK_CELLS = 2_000_000
# Score differences this small are floating-point noise (scores live in [0, 1]).
_NOISE = 1e-12


# --- McNemar --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class McNemarResult:
    """McNemar's test on paired pass/fail outcomes.

    ``a_only``: cases A passed and B failed; ``b_only``: B passed and A failed (the discordant pairs);
    ``both`` / ``neither``: the concordant pairs. ``method`` is ``"exact"`` (two-sided binomial test on the
    discordant pairs) or ``"chi2"`` (chi-square with continuity correction).
    """

    a_only: int
    b_only: int
    both: int
    neither: int
    p_value: float
    method: Literal["exact", "chi2"]

    @property
    def discordant(self) -> int:
        return self.a_only + self.b_only

    @property
    def n(self) -> int:
        return self.a_only + self.b_only + self.both + self.neither


def mcnemar(a_passed: Bools, b_passed: Bools) -> McNemarResult:
    """McNemar's test of whether A and B pass at different rates on the same cases.

    With fewer than 25 discordant pairs the exact two-sided binomial test (``scipy.stats.binomtest``, p = 0.5)
    is used, otherwise the chi-square statistic ``(|a_only - b_only| - 1)^2 / (a_only + b_only)`` with one
    degree of freedom. Without any discordant pair there is no evidence of a difference: p = 1.0 (exact).
    """
    a, b = _paired_bools(a_passed, b_passed)
    a_only = int(np.count_nonzero(a & ~b))
    b_only = int(np.count_nonzero(b & ~a))
    both = int(np.count_nonzero(a & b))
    neither = int(np.count_nonzero(~a & ~b))
    discordant = a_only + b_only
    if discordant == 0:
        return McNemarResult(a_only, b_only, both, neither, 1.0, "exact")
    if discordant < EXACT_BELOW:
        p = float(_sps().binomtest(min(a_only, b_only), discordant, 0.5, alternative="two-sided").pvalue)
        method: Literal["exact", "chi2"] = "exact"
    else:
        statistic = (abs(a_only - b_only) - 1) ** 2 / discordant
        p = float(_sps().chi2.sf(statistic, 1))
        method = "chi2"
    return McNemarResult(a_only, b_only, both, neither, _clamp01(p), method)


# --- paired bootstrap -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BootstrapCI:
    """Percentile bootstrap confidence interval of the mean paired score difference ``B - A``.

    ``mean_diff``, ``low`` and ``high`` are in score units (multiply by 100 for points). ``p_value`` is the
    two-sided bootstrap p-value of "no difference" that matches the interval: twice the smaller share of
    resampled means on either side of zero (so the interval at confidence 1 - alpha excludes 0 about
    exactly when p < alpha); 1.0 when every case has the same score under both versions.
    """

    mean_diff: float
    low: float
    high: float
    confidence: float
    resamples: int
    p_value: float = 1.0

    @property
    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0


def paired_bootstrap_ci(
    a_scores: Floats,
    b_scores: Floats,
    *,
    confidence: float = 0.95,
    resamples: int = 10_000,
    seed: int = 0,
) -> BootstrapCI:
    """Paired percentile bootstrap CI of ``mean(B - A)``: resample case indices with replacement.

    Vectorised with numpy (resamples are drawn in chunks to bound memory) and deterministic for a given
    ``seed``. The observed mean always lies inside the reported interval (the percentile bounds are widened
    to include it in the rare skewed cases where they would not, and to absorb floating-point noise).
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1 (exclusive), got {confidence!r}")
    if isinstance(resamples, bool) or not isinstance(resamples, int) or not 1 <= resamples <= MAX_RESAMPLES:
        raise ValueError(f"resamples must be an integer from 1 to {MAX_RESAMPLES}, got {resamples!r}")
    a, b = _paired_floats(a_scores, b_scores)
    diff = b - a
    mean = float(diff.mean())
    n = diff.size
    if float(np.ptp(diff)) <= _NOISE:
        # Every case has the same difference (up to float noise), so every resample has the same mean: the
        # interval is a point, and there is no difference at all when that point is 0.
        if abs(mean) <= _NOISE:
            return BootstrapCI(0.0, 0.0, 0.0, confidence, resamples, 1.0)
        return BootstrapCI(mean, mean, mean, confidence, resamples, 0.0)
    rng = np.random.default_rng(seed)
    means = np.empty(resamples, dtype=np.float64)
    rows = max(1, _CHUNK_CELLS // n)
    for start in range(0, resamples, rows):
        stop = min(resamples, start + rows)
        idx = rng.integers(0, n, size=(stop - start, n))
        means[start:stop] = diff[idx].mean(axis=1)
    tail = (1 - confidence) / 2
    low, high = (float(x) for x in np.quantile(means, [tail, 1 - tail]))
    low, high = min(low, mean), max(high, mean)
    at_or_below = np.count_nonzero(means <= 0) / resamples
    at_or_above = np.count_nonzero(means >= 0) / resamples
    p = _clamp01(2 * min(at_or_below, at_or_above))
    return BootstrapCI(mean, low, high, confidence, resamples, p)


# --- sample sizes -------------------------------------------------------------------------------------------------


def cases_needed(a_passed: Bools, b_passed: Bools, *, alpha: float = 0.05, power: float = 0.8) -> int | None:
    """Cases a paired pass/fail comparison needs to detect the observed effect (Connor 1987).

    With the observed discordant proportions ``p10`` (A only) and ``p01`` (B only), ``psi = p10 + p01`` and
    ``delta = p01 - p10``::

        n = (z[1 - alpha/2] * sqrt(psi) + z[power] * sqrt(psi - delta^2))^2 / delta^2

    rounded up. ``None`` when the observed effect is zero (no number of cases would detect it).
    """
    _check_alpha_power(alpha, power)
    result = mcnemar(a_passed, b_passed)
    p10 = result.a_only / result.n
    p01 = result.b_only / result.n
    delta = p01 - p10
    if delta == 0:
        return None
    psi = p10 + p01
    z_alpha = float(_sps().norm.ppf(1 - alpha / 2))
    z_beta = float(_sps().norm.ppf(power))
    n = (z_alpha * math.sqrt(psi) + z_beta * math.sqrt(max(psi - delta * delta, 0.0))) ** 2 / delta**2
    return max(1, math.ceil(n - 1e-9))


def cases_needed_for_scores(
    a_scores: Floats, b_scores: Floats, *, alpha: float = 0.05, power: float = 0.8
) -> int | None:
    """Cases a paired comparison of mean scores needs to detect the observed mean difference.

    Normal approximation for a paired design: ``n = ((z[1 - alpha/2] + z[power]) * sd / mean)^2`` with the
    observed mean and standard deviation of the per-case differences, rounded up. ``None`` when the mean
    difference is zero; when the differences do not vary (sd = 0), at least 2 cases.
    """
    _check_alpha_power(alpha, power)
    a, b = _paired_floats(a_scores, b_scores)
    diff = b - a
    mean = float(diff.mean())
    if abs(mean) <= _NOISE:
        return None
    sd = float(diff.std(ddof=1)) if diff.size > 1 else 0.0
    z = float(_sps().norm.ppf(1 - alpha / 2)) + float(_sps().norm.ppf(power))
    return max(2, math.ceil((z * sd / mean) ** 2 - 1e-9))


# --- verdict ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Comparison:
    """The paired comparison of versions ``a`` and ``b`` (labels as given) on ``n`` shared cases.

    ``basis`` says which test decided: ``"mcnemar"`` (pass/fail, when some case passed under one version
    only), ``"bootstrap"`` (scores, when pass/fail agree on every case) or ``"none"`` (identical results).
    ``p_value`` is that test's p-value; ``cases_needed`` estimates the cases needed to detect an effect of the
    observed size (``None`` when the observed effect is zero).
    """

    a: str
    b: str
    n: int
    a_pass_rate: float
    b_pass_rate: float
    a_mean: float
    b_mean: float
    mcnemar: McNemarResult
    ci: BootstrapCI
    significant: bool
    winner: Literal["A", "B"] | None
    verdict: str
    cases_needed: int | None
    basis: Literal["mcnemar", "bootstrap", "none"] = "mcnemar"
    p_value: float = 1.0


def compare_paired(
    a_label: str,
    b_label: str,
    a_passed: Bools,
    b_passed: Bools,
    a_scores: Floats,
    b_scores: Floats,
    *,
    alpha: float = 0.05,
    confidence: float = 0.95,
    resamples: int = 10_000,
    seed: int = 0,
) -> Comparison:
    """Compare versions A and B run on the same cases (position i of every sequence is the same case).

    Decision rule:

    1. When some case passed under one version only, pass/fail decides: the difference is significant when
       McNemar's p < ``alpha`` and the mean score difference points the same way as the pass/fail difference
       (the version with more exclusive passes also has the higher mean score). When the two disagree the
       verdict says so and nothing is significant.
    2. When pass/fail agree on every case but the scores differ, the paired bootstrap decides: significant when
       the ``confidence`` interval of the score difference excludes 0 (p is the matching bootstrap p-value).
    3. Identical results on every case: no difference observed.

    The verdict always reports the score difference in points (100 x mean of ``B - A``, or of ``A - B`` when A
    wins) with its bootstrap interval, e.g. ``"B beats A by 7.2 points, 95% CI [3.1, 11.0], p = 0.004"``;
    otherwise ``"no significant difference between A and B (p = 0.410); about 120 cases would be needed to
    detect a difference of this size"``.
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be between 0 and 1 (exclusive), got {alpha!r}")
    a_ok, b_ok = _paired_bools(a_passed, b_passed)
    a_sc, b_sc = _paired_floats(a_scores, b_scores)
    if a_ok.size != a_sc.size:
        raise ValueError(
            f"pass/fail and scores must describe the same cases: {a_ok.size} pass/fail outcomes but "
            f"{a_sc.size} scores"
        )
    n = int(a_ok.size)
    test = mcnemar(a_ok, b_ok)
    ci = paired_bootstrap_ci(a_sc, b_sc, confidence=confidence, resamples=resamples, seed=seed)
    conf = f"{_trim(confidence * 100)}% CI"
    a_name, b_name = a_label or "A", b_label or "B"

    basis: Literal["mcnemar", "bootstrap", "none"]
    winner: Literal["A", "B"] | None = None
    needed: int | None = None
    verdict: str | None = None
    if test.discordant:
        basis, p = "mcnemar", test.p_value
        needed = cases_needed(a_ok, b_ok, alpha=alpha)
        favoured: Literal["A", "B"] | None = None
        if test.b_only != test.a_only:
            favoured = "B" if test.b_only > test.a_only else "A"
        if p < alpha and favoured is not None:
            if (ci.mean_diff > 0) == (favoured == "B") and ci.mean_diff != 0:
                winner = favoured
            else:
                verdict = (
                    f"no significant difference between {a_name} and {b_name}: pass/fail favours "
                    f"{b_name if favoured == 'B' else a_name} ({format_p(p)}) but the mean score difference "
                    f"({b_name} - {a_name}) is {_points(ci.mean_diff)} points, "
                    f"{conf} [{_points(ci.low)}, {_points(ci.high)}]"
                )
    elif np.any(np.abs(b_sc - a_sc) > _NOISE):
        basis, p = "bootstrap", ci.p_value
        needed = cases_needed_for_scores(a_sc, b_sc, alpha=alpha)
        if ci.excludes_zero:
            winner = "B" if ci.mean_diff > 0 else "A"
    else:
        basis, p = "none", 1.0
        verdict = (
            f"no significant difference between {a_name} and {b_name} ({format_p(p)}); "
            f"no difference observed on {n} case{'s' if n != 1 else ''}"
        )

    if verdict is None and winner is not None:
        if winner == "B":
            first, second, diff, low, high = b_name, a_name, ci.mean_diff, ci.low, ci.high
        else:
            first, second, diff, low, high = a_name, b_name, -ci.mean_diff, -ci.high, -ci.low
        verdict = (
            f"{first} beats {second} by {_points(diff)} points, {conf} [{_points(low)}, {_points(high)}], "
            f"{format_p(p)}"
        )
    elif verdict is None:
        verdict = f"no significant difference between {a_name} and {b_name} ({format_p(p)}); " + (
            f"about {needed} cases would be needed to detect a difference of this size"
            if needed is not None
            else "the observed difference is zero, so no number of cases would detect one"
        )
    return Comparison(
        a=a_name,
        b=b_name,
        n=n,
        a_pass_rate=float(a_ok.mean()),
        b_pass_rate=float(b_ok.mean()),
        a_mean=float(a_sc.mean()),
        b_mean=float(b_sc.mean()),
        mcnemar=test,
        ci=ci,
        significant=winner is not None,
        winner=winner,
        verdict=verdict,
        cases_needed=needed,
        basis=basis,
        p_value=p,
    )


def format_p(p: float) -> str:
    """``"p = 0.004"`` with three decimals, ``"p < 0.001"`` below 0.001."""
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


# --- helpers --------------------------------------------------------------------------------------------------


def _paired_bools(a: Bools, b: Bools) -> tuple[np.ndarray, np.ndarray]:
    _same_length(a, b, "pass/fail outcomes")
    return _bools(a, "A"), _bools(b, "B")


def _paired_floats(a: Floats, b: Floats) -> tuple[np.ndarray, np.ndarray]:
    _same_length(a, b, "scores")
    return _floats(a, "A"), _floats(b, "B")


def _same_length(a: Bools | Floats, b: Bools | Floats, what: str) -> None:
    if len(a) == 0 or len(b) == 0:
        raise ValueError(f"cannot compare empty {what}: both versions need at least one case")
    if len(a) != len(b):
        raise ValueError(
            f"paired {what} must have the same length (one per case): A has {len(a)}, B has {len(b)}"
        )


def _bools(values: Bools, side: str) -> np.ndarray:
    if isinstance(values, np.ndarray) and values.dtype == np.bool_ and values.ndim == 1:
        return values.copy()
    out = np.empty(len(values), dtype=bool)
    for i, value in enumerate(values):
        if isinstance(value, bool | np.bool_ | int | np.integer) and value in (0, 1):
            out[i] = bool(value)
        else:
            raise ValueError(f"{side} pass/fail outcome #{i} must be true or false, got {value!r}")
    return out


def _floats(values: Floats, side: str) -> np.ndarray:
    if (
        isinstance(values, np.ndarray)
        and values.ndim == 1
        and values.dtype.kind in "fiu"
        and np.all(np.isfinite(values))
    ):
        return values.astype(np.float64)
    out = np.empty(len(values), dtype=np.float64)
    for i, value in enumerate(values):
        if isinstance(value, str | bytes) or not isinstance(value, int | float | np.integer | np.floating):
            raise ValueError(f"{side} score #{i} must be a number, got {value!r}")
        number = float(value)
        if not math.isfinite(number):
            raise ValueError(f"{side} score #{i} must be a finite number, got {value!r}")
        out[i] = number
    return out


def _check_alpha_power(alpha: float, power: float) -> None:
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be between 0 and 1 (exclusive), got {alpha!r}")
    if not 0 < power < 1:
        raise ValueError(f"power must be between 0 and 1 (exclusive), got {power!r}")


def _clamp01(p: float) -> float:
    return min(1.0, max(0.0, p))


def _points(x: float) -> str:
    text = f"{x * 100:.1f}"
    return "0.0" if text == "-0.0" else text


def _trim(x: float) -> str:
    return f"{round(x, 6):g}"


# --- trivial baselines ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrivialBaselines:
    """What a prompt must beat on a classification: always answering the majority label, and guessing.

    ``majority_label`` is the most frequent expected label of the *reference* cases (the training split, or
    the evaluated cases themselves when there is none; ties go to the label first in sorted order);
    ``majority`` is the share of the evaluated cases that answer would get right (``majority_passed`` per
    case); ``chance`` is a uniform guess over the ``labels`` distinct labels.
    """

    labels: int
    majority_label: str
    majority: float
    chance: float
    majority_passed: tuple[bool, ...]

    def to_json(self) -> dict[str, object]:
        return {
            "labels": self.labels,
            "majorityLabel": self.majority_label,
            "majority": round(self.majority, 4),
            "chance": round(self.chance, 4),
        }

    def sentence(self) -> str:
        return (
            f"always answering {self.majority_label!r} scores {self.majority:.3f}, "
            f"a uniform guess over {self.labels} labels {self.chance:.3f}"
        )


def trivial_baselines(
    expected: Sequence[str | None],
    reference: Sequence[str | None] | None = None,
    *,
    normalise: Callable[[str], str] = str.casefold,
) -> TrivialBaselines | None:
    """The trivial baselines of evaluated cases with ``expected`` labels (None where a case has none), the
    majority taken over ``reference`` (default: ``expected``). None without at least two distinct labels."""
    keys = [normalise(e) if e is not None else None for e in expected]
    ref = keys if reference is None else [normalise(e) for e in reference if e is not None]
    counts: dict[str, int] = {}
    for key in ref:
        if key is not None:
            counts[key] = counts.get(key, 0) + 1
    distinct = set(counts) | {k for k in keys if k is not None}
    if len(distinct) < 2 or not counts:
        return None
    label = min(counts, key=lambda k: (-counts[k], k))
    passed = tuple(k == label for k in keys)
    return TrivialBaselines(
        labels=len(distinct),
        majority_label=label,
        majority=sum(passed) / len(passed) if passed else 0.0,
        chance=1 / len(distinct),
        majority_passed=passed,
    )
