"""Paired comparison statistics: McNemar, paired bootstrap CI, sample sizes and the verdict text."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from promptops.evals.stats import (
    cases_needed,
    cases_needed_for_scores,
    compare_paired,
    format_p,
    mcnemar,
    paired_bootstrap_ci,
)


def _pairs(a_only: int, b_only: int, both: int, neither: int) -> tuple[list[bool], list[bool]]:
    """Pass/fail lists with the given 2x2 table (A pass/B fail, A fail/B pass, both pass, both fail)."""
    a = [True] * a_only + [False] * b_only + [True] * both + [False] * neither
    b = [False] * a_only + [True] * b_only + [True] * both + [False] * neither
    return a, b


def _exact_two_sided(k: int, n: int) -> float:
    """Two-sided exact binomial p for a symmetric null, from first principles."""
    tail = sum(math.comb(n, i) for i in range(min(k, n - k) + 1)) / 2**n
    return min(1.0, 2 * tail)


def _chi2_1df_sf(x: float) -> float:
    return math.erfc(math.sqrt(x / 2))


# --- McNemar ----------------------------------------------------------------------------------------------


def test_mcnemar_textbook_exact_example() -> None:
    # Classic 2x2 table: 59 both, 6 / 16 discordant, 80 neither. 22 discordant pairs -> exact binomial test.
    a, b = _pairs(a_only=6, b_only=16, both=59, neither=80)
    result = mcnemar(a, b)
    assert (result.a_only, result.b_only, result.both, result.neither) == (6, 16, 59, 80)
    assert result.method == "exact"
    # 2 * sum_{k<=6} C(22, k) / 2^22 = 2 * 110056 / 4194304
    assert result.p_value == pytest.approx(2 * 110056 / 4194304, rel=1e-9)
    assert result.p_value == pytest.approx(0.05248, abs=1e-5)


def test_mcnemar_textbook_chi_square_example() -> None:
    # Agresti's approval ratings (794 / 150 / 86 / 570): 236 discordant -> chi-square with continuity correction.
    a, b = _pairs(a_only=150, b_only=86, both=794, neither=570)
    result = mcnemar(a, b)
    assert result.method == "chi2"
    statistic = (abs(150 - 86) - 1) ** 2 / 236  # 16.818
    assert statistic == pytest.approx(16.818, abs=1e-3)
    assert result.p_value == pytest.approx(_chi2_1df_sf(statistic), rel=1e-9)
    assert result.p_value < 0.001


@pytest.mark.parametrize(("discordant", "method"), [(1, "exact"), (24, "exact"), (25, "chi2"), (40, "chi2")])
def test_mcnemar_switches_from_exact_to_chi2_at_25_discordant_pairs(discordant: int, method: str) -> None:
    b_only = discordant * 2 // 3
    a, b = _pairs(a_only=discordant - b_only, b_only=b_only, both=10, neither=3)
    result = mcnemar(a, b)
    assert result.method == method
    if method == "exact":
        assert result.p_value == pytest.approx(_exact_two_sided(discordant - b_only, discordant), rel=1e-9)
    else:
        statistic = (abs(discordant - 2 * b_only) - 1) ** 2 / discordant
        assert result.p_value == pytest.approx(_chi2_1df_sf(statistic), rel=1e-9)


def test_mcnemar_without_discordant_pairs_is_p_one() -> None:
    a, b = _pairs(0, 0, both=5, neither=7)
    result = mcnemar(a, b)
    assert result.p_value == 1.0
    assert result.discordant == 0 and result.n == 12


def test_mcnemar_balanced_discordance_is_p_one() -> None:
    assert mcnemar(*_pairs(4, 4, 3, 3)).p_value == pytest.approx(1.0)


def test_mcnemar_accepts_numpy_arrays_and_zero_one_ints() -> None:
    a, b = _pairs(6, 16, 59, 80)
    from_lists = mcnemar(a, b)
    assert mcnemar(np.array(a), np.array(b)) == from_lists
    assert mcnemar([int(x) for x in a], [int(x) for x in b]) == from_lists


@pytest.mark.parametrize(
    ("a", "b", "message"),
    [
        ([], [], "empty"),
        ([True], [], "empty"),
        ([True, False], [True], "same length"),
        ([True, "yes"], [True, True], "#1 must be true or false"),
        ([True, 2], [True, True], "must be true or false"),
    ],
)
def test_mcnemar_rejects_bad_input(a: list, b: list, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        mcnemar(a, b)


# --- bootstrap ---------------------------------------------------------------------------------------------


def test_bootstrap_ci_covers_true_difference_of_constructed_data() -> None:
    rng = np.random.default_rng(42)
    a = rng.uniform(0.2, 0.8, size=400)
    true_diff = 0.07
    b = np.clip(a + true_diff + rng.normal(0, 0.05, size=400), 0, 1)
    ci = paired_bootstrap_ci(a.tolist(), b.tolist(), resamples=4000, seed=1)
    assert ci.low < true_diff < ci.high
    assert ci.mean_diff == pytest.approx(float(np.mean(b - a)))
    assert ci.low > 0  # a 7-point improvement on 400 cases is clearly detectable
    assert ci.high - ci.low < 0.03
    assert ci.p_value < 0.001
    assert ci.confidence == 0.95 and ci.resamples == 4000


def test_bootstrap_ci_width_follows_confidence() -> None:
    rng = np.random.default_rng(7)
    a = rng.uniform(size=60).tolist()
    b = rng.uniform(size=60).tolist()
    narrow = paired_bootstrap_ci(a, b, confidence=0.8, resamples=3000)
    wide = paired_bootstrap_ci(a, b, confidence=0.99, resamples=3000)
    assert wide.low < narrow.low and narrow.high < wide.high


def test_bootstrap_is_deterministic_with_seed_and_varies_without() -> None:
    rng = np.random.default_rng(3)
    a = rng.uniform(size=50).tolist()
    b = rng.uniform(size=50).tolist()
    first = paired_bootstrap_ci(a, b, resamples=2000, seed=11)
    assert paired_bootstrap_ci(a, b, resamples=2000, seed=11) == first
    other = paired_bootstrap_ci(a, b, resamples=2000, seed=12)
    assert (other.low, other.high) != (first.low, first.high)
    assert other.mean_diff == first.mean_diff


def test_bootstrap_on_many_cases() -> None:
    # Many cases force several chunks of resamples; the answer must still be a proper interval.
    a = [0.0] * 30_000 + [1.0] * 30_000
    b = [1.0] * 33_000 + [0.0] * 27_000
    ci = paired_bootstrap_ci(a, b, resamples=200, seed=0)
    assert ci.mean_diff == pytest.approx(0.05)  # 30000 gains, 27000 losses
    assert 0.04 < ci.low < 0.05 < ci.high < 0.06


def test_bootstrap_constant_difference_is_a_point() -> None:
    ci = paired_bootstrap_ci([0.5, 0.2, 0.1], [0.75, 0.45, 0.35])
    assert ci.low == ci.mean_diff == ci.high == pytest.approx(0.25)
    assert ci.p_value == 0.0
    same = paired_bootstrap_ci([0.5, 0.2], [0.5, 0.2])
    assert (same.low, same.mean_diff, same.high, same.p_value) == (0.0, 0.0, 0.0, 1.0)


def test_bootstrap_single_case() -> None:
    ci = paired_bootstrap_ci([0.2], [0.9])
    assert ci.low == ci.high == ci.mean_diff == pytest.approx(0.7)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"confidence": 1.0}, "confidence"),
        ({"confidence": 0}, "confidence"),
        ({"resamples": 0}, "resamples"),
        ({"resamples": 2.5}, "resamples"),
    ],
)
def test_bootstrap_rejects_bad_parameters(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        paired_bootstrap_ci([0.1, 0.2], [0.3, 0.4], **kwargs)


@pytest.mark.parametrize(
    ("a", "b", "message"),
    [
        ([], [], "empty"),
        ([0.1, 0.2], [0.1], "same length"),
        ([0.1, float("nan")], [0.1, 0.2], "finite"),
        ([0.1, "0.2"], [0.1, 0.2], "must be a number"),
        ([0.1, None], [0.1, 0.2], "must be a number"),
    ],
)
def test_bootstrap_rejects_bad_scores(a: list, b: list, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        paired_bootstrap_ci(a, b)


# --- sample size -------------------------------------------------------------------------------------------


def test_cases_needed_matches_connor_formula_by_hand() -> None:
    # 100 cases: 5 A-only, 15 B-only -> p10 = 0.05, p01 = 0.15, psi = 0.2, delta = 0.1
    a, b = _pairs(5, 15, 50, 30)
    z_a, z_b = 1.959963984540054, 0.8416212335729143
    expected = math.ceil((z_a * math.sqrt(0.2) + z_b * math.sqrt(0.2 - 0.01)) ** 2 / 0.01)
    assert expected == 155  # (0.8765 + 0.3668)^2 / 0.01 = 154.6
    assert cases_needed(a, b) == expected
    # higher power or a stricter alpha need more cases
    assert cases_needed(a, b, power=0.9) > expected
    assert cases_needed(a, b, alpha=0.01) > expected


def test_cases_needed_none_when_effect_is_zero() -> None:
    assert cases_needed(*_pairs(3, 3, 4, 0)) is None
    assert cases_needed(*_pairs(0, 0, 4, 1)) is None
    assert cases_needed_for_scores([0.1, 0.5], [0.5, 0.1]) is None


def test_cases_needed_for_scores_by_hand() -> None:
    a = [0.5, 0.5, 0.5, 0.5]
    b = [0.6, 0.7, 0.5, 0.6]  # diffs 0.1, 0.2, 0.0, 0.1: mean 0.1, sd sqrt(0.02/3)
    z = 1.959963984540054 + 0.8416212335729143
    assert cases_needed_for_scores(a, b) == math.ceil((z * math.sqrt(0.02 / 3) / 0.1) ** 2)


@pytest.mark.parametrize("kwargs", [{"alpha": 0}, {"alpha": 1.5}, {"power": 1}, {"power": -0.1}])
def test_cases_needed_rejects_bad_parameters(kwargs: dict) -> None:
    with pytest.raises(ValueError, match=r"alpha|power"):
        cases_needed(*_pairs(1, 3, 0, 0), **kwargs)


# --- verdict -----------------------------------------------------------------------------------------------


def test_p_formatting() -> None:
    assert format_p(0.0042) == "p = 0.004"
    assert format_p(0.41) == "p = 0.410"
    assert format_p(0.00099) == "p < 0.001"
    assert format_p(0.001) == "p = 0.001"
    assert format_p(1.0) == "p = 1.000"


def test_verdict_b_beats_a_with_labels() -> None:
    # 40 cases: few-shot passes 19 cases zero-shot fails, the reverse 2 times; pass/fail scorers (score = pass).
    a, b = _pairs(a_only=2, b_only=19, both=12, neither=7)
    scores_a = [float(x) for x in a]
    scores_b = [float(x) for x in b]
    result = compare_paired(
        "sentiment/zero-shot@1", "sentiment/few-shot@3", a, b, scores_a, scores_b, resamples=5000
    )
    assert result.significant and result.winner == "B" and result.basis == "mcnemar"
    assert result.mcnemar.method == "exact"
    assert result.p_value == pytest.approx(_exact_two_sided(2, 21))
    assert result.n == 40
    assert result.a_pass_rate == pytest.approx(14 / 40) and result.b_pass_rate == pytest.approx(31 / 40)
    assert result.b_mean - result.a_mean == pytest.approx(0.425)
    low, high = f"{result.ci.low * 100:.1f}", f"{result.ci.high * 100:.1f}"
    assert result.verdict == (
        f"sentiment/few-shot@3 beats sentiment/zero-shot@1 by 42.5 points, 95% CI [{low}, {high}], p < 0.001"
    )
    assert result.ci.low > 0.2 and result.ci.high < 0.65


def test_verdict_a_beats_b_reports_positive_points_and_flipped_interval() -> None:
    a, b = _pairs(a_only=20, b_only=3, both=5, neither=2)
    result = compare_paired("A", "B", a, b, [float(x) for x in a], [float(x) for x in b], confidence=0.9)
    assert result.winner == "A"
    diff = -result.ci.mean_diff
    assert diff == pytest.approx(17 / 30)
    assert result.verdict == (
        f"A beats B by {diff * 100:.1f} points, 90% CI [{-result.ci.high * 100:.1f}, "
        f"{-result.ci.low * 100:.1f}], {format_p(result.p_value)}"
    )


def test_verdict_not_significant_gives_cases_needed() -> None:
    a, b = _pairs(a_only=4, b_only=7, both=20, neither=9)
    result = compare_paired("v1", "v2", a, b, [float(x) for x in a], [float(x) for x in b])
    assert not result.significant and result.winner is None
    needed = cases_needed(a, b)
    assert needed is not None and needed > 40
    assert result.cases_needed == needed
    assert result.verdict == (
        f"no significant difference between v1 and v2 ({format_p(result.p_value)}); "
        f"about {needed} cases would be needed to detect a difference of this size"
    )
    assert result.p_value == pytest.approx(_exact_two_sided(4, 11))


def test_verdict_identical_results() -> None:
    passed = [True, False, True]
    scores = [1.0, 0.0, 0.8]
    result = compare_paired("x", "y", passed, passed, scores, scores)
    assert (
        result.verdict
        == "no significant difference between x and y (p = 1.000); no difference observed on 3 cases"
    )
    assert result.basis == "none" and not result.significant and result.cases_needed is None


def test_verdict_balanced_discordance_has_zero_effect() -> None:
    a, b = _pairs(3, 3, 2, 2)
    result = compare_paired("A", "B", a, b, [float(x) for x in a], [float(x) for x in b])
    assert result.cases_needed is None
    assert result.verdict == (
        "no significant difference between A and B (p = 1.000); "
        "the observed difference is zero, so no number of cases would detect one"
    )


def test_single_case() -> None:
    result = compare_paired("A", "B", [False], [True], [0.0], [1.0])
    assert not result.significant
    assert result.p_value == 1.0  # one discordant pair: exact binomial p = 1
    assert result.cases_needed is not None and result.cases_needed >= 1
    assert "about" in result.verdict


def test_scores_decide_when_pass_fail_agree_everywhere() -> None:
    # Every case passes under both versions, but B's graded scores are consistently higher.
    n = 30
    a_scores = [0.6 + 0.01 * (i % 5) for i in range(n)]
    b_scores = [s + 0.1 + 0.01 * (i % 3) for i, s in enumerate(a_scores)]
    passed = [True] * n
    result = compare_paired("A", "B", passed, passed, a_scores, b_scores, resamples=3000)
    assert result.basis == "bootstrap"
    assert result.significant and result.winner == "B"
    assert result.verdict.startswith("B beats A by 11.0 points, 95% CI [")
    assert result.verdict.endswith("p < 0.001")


def test_pass_fail_and_scores_disagreeing_is_not_significant() -> None:
    # B passes 12 more cases narrowly, but A's scores are much higher everywhere else.
    a_passed = [False] * 12 + [True] * 18
    b_passed = [True] * 12 + [True] * 18
    a_scores = [0.79] * 12 + [1.0] * 18
    b_scores = [0.8] * 12 + [0.5] * 18
    result = compare_paired("A", "B", a_passed, b_passed, a_scores, b_scores)
    assert result.mcnemar.p_value < 0.05
    assert not result.significant and result.winner is None
    assert result.verdict.startswith(
        "no significant difference between A and B: pass/fail favours B (p < 0.001)"
    )
    assert "mean score difference (B - A) is -29.6 points" in result.verdict


def test_compare_rejects_mismatched_lengths() -> None:
    with pytest.raises(ValueError, match="same cases"):
        compare_paired("A", "B", [True, False], [True, True], [1.0], [1.0])
    with pytest.raises(ValueError, match="empty"):
        compare_paired("A", "B", [], [], [], [])
    with pytest.raises(ValueError, match="alpha"):
        compare_paired("A", "B", [True], [True], [1.0], [1.0], alpha=0)


# --- properties --------------------------------------------------------------------------------------------

_case = st.tuples(st.booleans(), st.booleans(), st.floats(0, 1), st.floats(0, 1))


@settings(max_examples=60, deadline=None)
@given(st.lists(_case, min_size=1, max_size=40))
def test_properties_swap_mirrors_and_bounds(cases: list[tuple[bool, bool, float, float]]) -> None:
    a_passed = [c[0] for c in cases]
    b_passed = [c[1] for c in cases]
    a_scores = [c[2] for c in cases]
    b_scores = [c[3] for c in cases]
    ab = compare_paired("A", "B", a_passed, b_passed, a_scores, b_scores, resamples=300)
    ba = compare_paired("B", "A", b_passed, a_passed, b_scores, a_scores, resamples=300)

    assert 0.0 <= ab.mcnemar.p_value <= 1.0
    assert 0.0 <= ab.ci.p_value <= 1.0
    assert ab.ci.low <= ab.ci.mean_diff <= ab.ci.high
    # swapping A and B mirrors the difference and keeps McNemar's p
    assert ba.mcnemar.p_value == pytest.approx(ab.mcnemar.p_value)
    assert (ba.mcnemar.a_only, ba.mcnemar.b_only) == (ab.mcnemar.b_only, ab.mcnemar.a_only)
    assert ba.ci.mean_diff == pytest.approx(-ab.ci.mean_diff, abs=1e-12)
    assert ba.ci.low == pytest.approx(-ab.ci.high, abs=1e-9)
    assert ba.ci.high == pytest.approx(-ab.ci.low, abs=1e-9)
    assert ba.p_value == pytest.approx(ab.p_value)
    assert (ba.significant, ba.cases_needed, ba.basis) == (ab.significant, ab.cases_needed, ab.basis)
    if ab.significant:
        # the same physical version (label "B" in both runs) wins, from the other position
        assert {ab.winner, ba.winner} == {"A", "B"}
        assert ab.verdict.split(" beats ")[0] == ba.verdict.split(" beats ")[0]
    else:
        assert ab.verdict.startswith("no significant difference")
