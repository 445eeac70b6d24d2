"""Statistics of live experiments that stay trustworthy while people look at them every day.

* Per arm: the mean of the per-unit values and a 95% normal interval.
* Per difference against the control: the difference, a fixed-horizon 95% interval, and the **mixture
  sequential probability ratio test** (mSPRT, Johari, Pekelis & Walsh, "Always valid inference", 2017) with a
  normal mixing distribution N(0, tau^2) over the true difference. Its likelihood ratio

      Lambda = sqrt(V / (V + tau^2)) * exp(tau^2 * d^2 / (2 V (V + tau^2))),   V = var_a / n_a + var_b / n_b

  is a martingale under "no difference", so by Ville's inequality the chance that 1 / Lambda ever falls to
  alpha, however often it is looked at, is at most alpha: the p-value ``min(1, 1 / Lambda)`` and its
  ``significant`` flag (p <= alpha) are valid at every peek. Inverting the test gives an always-valid
  confidence sequence for the difference. tau defaults to a tenth of the pooled standard deviation (effects of
  about 0.1 sd are what the test is most sensitive to); the normal approximation needs a few dozen units per
  arm, so nothing is declared below :data:`MIN_UNITS`.
* Sample-ratio mismatch: a chi-square goodness-of-fit test of the exposure counts against the weights; a
  p-value below :data:`SRM_P` means the assignment or the exposure logging is broken, and no result should be
  trusted until it is understood.

Tests in ``tests/experiments/test_stats_simulation.py`` check the false-positive rate and the power by
simulation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

Z95 = 1.959963984540054
MIN_UNITS = 30
SRM_P = 0.001
SRM_MIN_EXPECTED = 5.0
DEFAULT_TAU_SD = 0.1


@dataclass(frozen=True)
class Summary:
    """n units with per-unit values summing to ``total`` and squares summing to ``total_sq``."""

    n: int
    total: float
    total_sq: float

    @property
    def mean(self) -> float | None:
        return self.total / self.n if self.n else None

    @property
    def variance(self) -> float:
        """The sample variance (0 below two units)."""
        if self.n < 2:
            return 0.0
        return max(0.0, (self.total_sq - self.total * self.total / self.n) / (self.n - 1))

    def interval(self, *, bounded: bool = False) -> tuple[float, float] | None:
        """A 95% normal interval for the mean (clipped to [0, 1] for conversions)."""
        mean = self.mean
        if mean is None or self.n < 2:
            return None
        half = Z95 * math.sqrt(self.variance / self.n)
        low, high = mean - half, mean + half
        if bounded:
            low, high = max(0.0, low), min(1.0, high)
        return low, high


@dataclass(frozen=True)
class Comparison:
    """A treatment arm against the control (difference = treatment - control)."""

    difference: float | None
    relative: float | None
    interval: tuple[float, float] | None  # fixed-horizon 95%
    sequence: tuple[float, float] | None  # always-valid (1 - alpha) confidence sequence
    p_value: float | None  # always-valid mSPRT p-value
    significant: bool


def _tau2(control: Summary, treatment: Summary, tau: float | None) -> float:
    if tau is not None:
        return tau * tau
    pooled = (control.variance * (control.n - 1) + treatment.variance * (treatment.n - 1)) / max(
        1, control.n + treatment.n - 2
    )
    return (DEFAULT_TAU_SD**2) * pooled


def msprt_p_value(difference: float, v: float, tau2: float) -> float:
    """``min(1, 1 / Lambda)`` for an observed difference with variance ``v`` under the N(0, tau2) mixture."""
    if v <= 0 or tau2 <= 0:
        return 1.0
    log_lambda = 0.5 * math.log(v / (v + tau2)) + tau2 * difference * difference / (2 * v * (v + tau2))
    return 1.0 if log_lambda <= 0 else math.exp(-log_lambda)


def compare(
    control: Summary, treatment: Summary, *, alpha: float = 0.05, tau: float | None = None
) -> Comparison:
    """The treatment against the control: difference, intervals and the always-valid test."""
    if control.n == 0 or treatment.n == 0:
        return Comparison(None, None, None, None, None, False)
    assert control.mean is not None and treatment.mean is not None
    difference = treatment.mean - control.mean
    relative = difference / control.mean if control.mean else None
    if control.n < MIN_UNITS or treatment.n < MIN_UNITS:
        return Comparison(difference, relative, None, None, None, False)
    v = control.variance / control.n + treatment.variance / treatment.n
    tau2 = _tau2(control, treatment, tau)
    if v <= 0 or tau2 <= 0:  # no variation at all yet (e.g. no conversion anywhere): nothing to test
        return Comparison(difference, relative, None, None, 1.0, False)
    half = Z95 * math.sqrt(v)
    # {delta: Lambda(d - delta) < 1/alpha} = d +- sqrt(2 V (V + tau2) / tau2 * (log(1/alpha) + log((V+tau2)/V)/2))
    radius = math.sqrt(2 * v * (v + tau2) / tau2 * (math.log(1 / alpha) + 0.5 * math.log((v + tau2) / v)))
    p_value = msprt_p_value(difference, v, tau2)
    return Comparison(
        difference,
        relative,
        (difference - half, difference + half),
        (difference - radius, difference + radius),
        p_value,
        p_value <= alpha,
    )


@dataclass(frozen=True)
class SampleRatio:
    chi_square: float | None
    p_value: float | None
    mismatch: bool


def sample_ratio(counts: Sequence[int], weights: Sequence[float]) -> SampleRatio:
    """Chi-square goodness of fit of exposure ``counts`` against the arms' ``weights``; a mismatch is
    flagged when p < :data:`SRM_P` (tested only once every arm expects at least 5 units)."""
    total, weight_sum = sum(counts), sum(weights)
    if len(counts) < 2 or total == 0 or weight_sum <= 0:
        return SampleRatio(None, None, False)
    expected = [total * w / weight_sum for w in weights]
    if min(expected) < SRM_MIN_EXPECTED:
        return SampleRatio(None, None, False)
    chi = sum((o - e) ** 2 / e for o, e in zip(counts, expected, strict=True))
    from scipy.stats import chi2  # imported on first use: seconds to import, few requests need it

    p_value = float(chi2.sf(chi, len(counts) - 1))
    return SampleRatio(chi, p_value, p_value < SRM_P)
