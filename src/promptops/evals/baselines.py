"""How a prompt compares with the trivial baselines of a classification: always answering the majority label
and guessing uniformly. Used by every face that reports a score on labelled cases (the evaluate contract,
evaluation runs, the optimizer), so a score of 0.50 on a task where "always answer literal" also scores 0.50
is reported as what it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from promptops.evals import stats
from promptops.evals.scoring.builtin import normalise_label


def versus_majority(
    expected: Sequence[str | None],
    passed: Sequence[bool],
    scores: Sequence[float],
    *,
    reference: Sequence[str | None] | None = None,
    who: str = "The prompt",
) -> dict[str, Any] | None:
    """``{"trivialBaselines", "beatsMajority", "pValue", "sentence"}`` for cases with ``expected`` labels and
    the prompt's per-case ``passed`` / ``scores``; the majority label is taken from ``reference`` (a training
    split) when given. "Beats" needs a significant paired difference (McNemar), not just a higher mean.
    None when the expected outputs are not at least two labels or the lengths differ."""
    trivial = stats.trivial_baselines(expected, reference, normalise=normalise_label)
    if (
        trivial is None
        or not passed
        or len(passed) != len(trivial.majority_passed)
        or len(scores) != len(passed)
    ):
        return None
    majority = [float(p) for p in trivial.majority_passed]
    c = stats.compare_paired("majority", "prompt", list(trivial.majority_passed), passed, majority, scores)
    beats = bool(c.significant and c.winner == "B")
    score = sum(scores) / len(scores)
    always = (
        f"always answering {trivial.majority_label!r} ({trivial.majority:.3f}; chance {trivial.chance:.3f})"
    )
    if beats:
        sentence = f"{who} ({score:.3f}) beats {always}, {stats.format_p(c.p_value)}."
    elif score <= trivial.majority + 1e-9:
        sentence = f"{who} ({score:.3f}) is no better than {always}: it has not learned the task."
    else:
        sentence = (
            f"{who} ({score:.3f}) is above {always} but not significantly on {len(scores)} cases "
            f"({stats.format_p(c.p_value)})."
        )
    return {
        "trivialBaselines": trivial.to_json(),
        "beatsMajority": beats,
        "pValue": round(c.p_value, 6),
        "sentence": sentence,
    }
