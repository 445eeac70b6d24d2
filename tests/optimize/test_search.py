"""The optimizer's search loop on its own: an in-memory store and a scripted scorer stand in for the database
and the model (the loop is storage- and model-independent by design; the REST tests run it for real).

A scripted "model" that answers with a label only when the prompt ends with an answer cue, and correctly only
when the prompt also carries worked examples, lets every rule of the loop be checked: format operators first
when answers are unreadable, screening before the full training split, exact call counting, the budget, the
held-out verdict.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import pytest

from promptops.optimize.examples import Example, labels_of
from promptops.optimize.search import loop as search
from promptops.optimize.search.mutations import Draft
from promptops.optimize.search.verdict import held_out

LABELS = ["negative", "positive"]
TRAIN = [Example(f"t{i:02d}", {"review": f"review {i}"}, LABELS[i % 2]) for i in range(40)]
VAL_EXPECTED = [LABELS[i % 2] for i in range(20)]
BASE = Draft(kind="text", template="Is this review positive or negative?\n{{ review }}")


class MemoryStore:
    def __init__(self) -> None:
        self.calls_used = 0
        self.rows: dict[str, search.Candidate] = {}
        self.reports: list[dict[str, Any]] = []

    async def add(self, candidates: Sequence[search.Candidate], calls: int) -> bool:
        self.calls_used += calls
        for c in candidates:
            self.rows[c.id] = c
        return False

    async def update(self, candidate: search.Candidate, calls: int) -> bool:
        self.calls_used += calls
        self.rows[candidate.id] = candidate
        return False

    async def progress(self, report: dict[str, Any]) -> bool:
        self.reports.append(dict(report))
        return False


class ScriptedModel:
    """Scores drafts by their shape; counts the cases each split costs."""

    sizes = {"screen": 10, "rest": 30, "val": 20}

    def __init__(self) -> None:
        self.asked: list[tuple[str, str]] = []

    def accuracy(self, draft: Draft) -> tuple[float, bool]:
        text = draft.main_text
        cued = text.rstrip().endswith(":")
        if not cued:
            return 0.0, False  # rambles on: no label can be read
        return (0.9 if "review 1" in text or "review 0" in text else 0.5), True

    async def __call__(self, draft: Draft, split: search.Split) -> search.SplitScore:
        self.asked.append((split, draft.key()))
        n = self.sizes[split]
        accuracy, readable = self.accuracy(draft)
        passed = round(accuracy * n)
        cases = tuple((i < passed, 1.0 if i < passed else 0.0) for i in range(n))
        return search.SplitScore(
            score=passed / n,
            calls=n,
            passed=passed,
            total=n,
            errors=0,
            unparsed=0 if readable else n,
            cases=cases,
        )


def make_search(budget: int, model: ScriptedModel, store: MemoryStore, **overrides: Any) -> search.Search:
    counter = itertools.count()
    settings = search.Settings(
        budget=budget,
        top_k=3,
        max_rounds=overrides.get("max_rounds", 10),
        patience=2,
        per_round=overrides.get("per_round", 6),
        seed=0,
        proposer="deterministic",
        llm_per_round=0,
        screen_cost=10,
        rest_cost=30,
        val_cost=20,
    )
    return search.Search(
        settings,
        store,
        model,
        lambda: f"c{next(counter)}",
        base=BASE,
        examples=TRAIN,
        labels=labels_of(TRAIN),
        variables=["review"],
        candidates=[],
        report={},
    )


async def test_unreadable_answers_put_the_format_operators_first() -> None:
    model, store = ScriptedModel(), MemoryStore()
    outcome = await make_search(300, model, store).run()

    round_one = [c for c in store.rows.values() if c.round == 1]
    assert [c.strategy for c in round_one][:3] == ["answer-cue", "format-line", "format-params"]
    cue = next(c for c in round_one if c.strategy == "answer-cue")
    assert cue.draft.main_text.endswith("\nAnswer:")
    # the winner reads: it has a cue, and examples made it better than the cue alone
    assert outcome.winner.strategy != "baseline" and outcome.winner.val_score == pytest.approx(0.9)
    assert outcome.baseline.val_score == 0.0
    # the start got nothing right on the screening cases: the rest of the training split was not paid for
    assert ("rest", BASE.key()) not in model.asked and outcome.baseline.details["train"]["screenOnly"]
    assert outcome.baseline.calls == 10 + 20


async def test_candidates_are_screened_before_the_whole_training_split() -> None:
    model, store = ScriptedModel(), MemoryStore()
    await make_search(300, model, store).run()

    rows = list(store.rows.values())
    screened_out = [c for c in rows if c.status == "screened"]
    assert screened_out, [(c.strategy, c.status) for c in rows]
    for c in screened_out:
        # only the screening subset was paid for
        assert c.calls == 10 and c.train_score is None and c.details["screen"]["total"] == 10
    for c in rows:
        if c.status == "scored" and c.strategy != "baseline":
            assert c.details["train"]["total"] == 40
    # exact accounting: the store's count is the sum of the candidates' calls and of what the model was asked
    assert store.calls_used == sum(c.calls for c in rows) == sum(model.sizes[s] for s, _ in model.asked)
    assert store.calls_used <= 300
    # every split of one draft is asked at most once
    assert len(model.asked) == len(set(model.asked))


async def test_a_small_budget_still_validates_the_best_candidate() -> None:
    model, store = ScriptedModel(), MemoryStore()
    outcome = await make_search(130, model, store).run()

    assert store.calls_used <= 130
    assert outcome.finalists and outcome.finalists[0].val_score is not None
    assert any(c.status == "skipped" and c.details.get("reason") == "budget" for c in store.rows.values())


async def test_readable_answers_try_examples_first() -> None:
    model, store = ScriptedModel(), MemoryStore()
    cued = Draft(kind="text", template="Is this review positive or negative?\n{{ review }}\nSentiment:")
    loop = make_search(300, model, store, max_rounds=1)
    loop.base = cued
    await loop.run()
    round_one = [c.strategy for c in store.rows.values() if c.round == 1]
    assert round_one[0].startswith("few-shot"), round_one


def details(passes: Sequence[bool]) -> dict[str, Any]:
    return {"val": {"cases": [[int(p), float(p)] for p in passes]}}


def test_verdict_states_a_significant_gain_with_its_interval() -> None:
    base = details([False] * 20)
    win = details([True] * 18 + [False] * 2)
    out = held_out(
        base, win, same=False, val_expected=VAL_EXPECTED, train_expected=VAL_EXPECTED, classification=True
    )
    assert out["significant"] is True and out["gainPoints"] == 90.0 and out["test"] == "mcnemar"
    low, high = out["ci95"]
    assert 0 < low <= 90.0 <= high
    assert out["summary"].startswith("The winner gains +90.0 points on 20 held-out cases")
    assert out["trivialBaselines"] == {
        "labels": 2,
        "majorityLabel": "negative",
        "majority": 0.5,
        "chance": 0.5,
    }
    assert out["beatsMajority"] is True


def test_verdict_says_no_significant_gain_when_the_interval_includes_zero() -> None:
    base = details([True] * 10 + [False] * 10)
    win = details([True] * 11 + [False] * 9)
    out = held_out(
        base, win, same=False, val_expected=VAL_EXPECTED, train_expected=VAL_EXPECTED, classification=True
    )
    assert out["significant"] is False
    assert out["ci95"][0] <= 0 <= out["ci95"][1]
    assert out["summary"].startswith("No significant gain: +5.0 points")


def test_verdict_says_when_the_winner_is_no_better_than_the_majority_label() -> None:
    # the "winner" answers the majority label every time: right on exactly the majority cases
    expected = ["literal"] * 12 + ["sarcastic"] * 8
    win = details([e == "literal" for e in expected])
    out = held_out(
        details([False] * 20),
        win,
        same=False,
        val_expected=expected,
        train_expected=["literal"] * 3 + ["sarcastic"] * 2,
        classification=True,
    )
    assert out["significant"] is True  # it does beat the broken start ...
    assert out["beatsMajority"] is False  # ... but not "always literal"
    assert "no better than always answering 'literal' (0.600" in out["summary"]


def test_verdict_without_labels_has_no_trivial_baselines() -> None:
    out = held_out(
        details([False] * 4),
        details([True] * 4),
        same=False,
        val_expected=["a b c", "d", "e", "f"],
        train_expected=[],
        classification=False,
    )
    assert "trivialBaselines" not in out and "beatsMajority" not in out
