"""The one example picker both halves of PromptOpt use (``optimize/examples.py``): generate and refine put its
picks into templates, the optimizer into ``shots`` recipes, so its rules hold for both."""

from __future__ import annotations

from collections import Counter

from promptops.optimize.examples import MAX_EXAMPLE_CHARS, Example, pick_examples

CASES = [
    Example(f"c{i:02d}", {"review": f"review {i}"}, ["positive", "negative", "neutral"][i % 3])
    for i in range(30)
]


def test_picks_are_balanced_over_the_answers() -> None:
    picked = pick_examples(CASES, 6, seed=3)
    assert len(picked) == 6
    assert Counter(e.expected for e in picked) == {"positive": 2, "negative": 2, "neutral": 2}


def test_labels_that_differ_only_in_case_or_punctuation_are_one_answer() -> None:
    cases = [Example("a", {}, "Positive"), Example("b", {}, "positive."), Example("c", {}, "negative")]
    picked = pick_examples(cases, 2, seed=0)
    assert sorted(e.expected.lower().rstrip(".") for e in picked) == ["negative", "positive"]


def test_same_seed_same_pick_whatever_the_input_order() -> None:
    first = pick_examples(CASES, 5, seed=7, variant=2)
    again = pick_examples(list(reversed(CASES)), 5, seed=7, variant=2)
    assert [e.key for e in first] == [e.key for e in again]
    others = {tuple(e.key for e in pick_examples(CASES, 5, seed=7, variant=v)) for v in range(5)}
    assert len(others) > 1  # another variant is another selection


def test_cases_too_long_to_show_are_left_out() -> None:
    long_case = Example("long", {"review": "x" * MAX_EXAMPLE_CHARS}, "positive")
    short_case = Example("short", {"review": "fine"}, "positive")
    assert pick_examples([long_case, short_case], 2) == [short_case]
    assert pick_examples([long_case], 1) == []


def test_no_examples_asked_or_available() -> None:
    assert pick_examples(CASES, 0) == []
    assert pick_examples([], 3) == []
    assert len(pick_examples(CASES[:2], 5)) == 2  # fewer when there are not enough
