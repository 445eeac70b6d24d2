"""What an optimization may claim: the held-out gain of the winner over the starting prompt with its 95%
interval and a paired test, and whether the winner beats the trivial baselines (always answering the majority
label of the training split, a uniform guess).

Pure functions over the per-case validation outcomes the search stored; the engine puts the result in the
optimization's report and the CLI prints its sentences.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from promptops.evals import stats
from promptops.evals.baselines import versus_majority

START, WINNER = "the starting prompt", "the winner"


def _cases(candidate_details: dict[str, Any]) -> tuple[list[bool], list[float]]:
    rows = (candidate_details.get("val") or {}).get("cases") or []
    return [bool(r[0]) for r in rows], [float(r[1]) for r in rows]


def _interval(c: stats.Comparison) -> list[float]:
    return [round(100 * c.ci.low, 1), round(100 * c.ci.high, 1)]


def held_out(
    baseline: dict[str, Any],
    winner: dict[str, Any],
    *,
    same: bool,
    val_expected: Sequence[str | None],
    train_expected: Sequence[str | None],
    classification: bool,
) -> dict[str, Any]:
    """The report's ``heldOut`` entry from the baseline's and the winner's stored details."""
    base_ok, base_sc = _cases(baseline)
    win_ok, win_sc = _cases(winner)
    out: dict[str, Any] = {"cases": len(base_ok)}
    sentences: list[str] = []
    if not same and base_ok and len(base_ok) == len(win_ok):
        c = stats.compare_paired(START, WINNER, base_ok, win_ok, base_sc, win_sc)
        gain = round(100 * c.ci.mean_diff, 1)
        out.update(
            gainPoints=gain,
            ci95=_interval(c),
            pValue=round(c.p_value, 6),
            test=c.basis,
            significant=bool(c.significant and c.winner == "B"),
        )
        where = f"on {len(base_ok)} held-out cases ({c.a_mean:.3f} -> {c.b_mean:.3f})"
        interval = f"95% CI [{out['ci95'][0]:+.1f}, {out['ci95'][1]:+.1f}], {stats.format_p(c.p_value)}"
        if out["significant"]:
            sentences.append(f"The winner gains {gain:+.1f} points {where}, {interval}.")
        else:
            sentences.append(f"No significant gain: {gain:+.1f} points {where}, {interval}.")
    else:
        out.update(gainPoints=0.0, significant=False)
        sentences.append("No candidate beat the starting prompt on the held-out cases.")
    chosen_ok, chosen_sc = (base_ok, base_sc) if same else (win_ok, win_sc)
    versus = (
        versus_majority(
            val_expected,
            chosen_ok,
            chosen_sc,
            reference=train_expected,
            who="The starting prompt" if same else "The winner",
        )
        if classification
        else None
    )
    if versus is not None:
        out["trivialBaselines"] = versus["trivialBaselines"]
        out["beatsMajority"] = versus["beatsMajority"]
        sentences.append(versus["sentence"])
    out["summary"] = " ".join(sentences)
    return out
