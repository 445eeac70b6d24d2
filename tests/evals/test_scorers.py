"""The deterministic scorers, spec validation, case composition and operators' entry-point scorers.

Model-calling scorers (judge, embeddings) are in test_scorer_models.py, against real model connections.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from promptops.errors import ValidationProblem
from promptops.evals.schemas import ScorerSpec
from promptops.evals.scoring import (
    CaseScore,
    ScoreInput,
    ScorerResult,
    combine,
    default_specs,
    describe_types,
    known_types,
    reset_registry,
    score_case,
    scorers_for,
    validate_specs,
)
from promptops.evals.scoring.builtin import label_set
from promptops.providers.schemas import ModelTarget


class NoModels:
    """A ModelAccess for scorers that must not call a model: any call fails the test."""

    async def complete(
        self, target: ModelTarget | None, prompt: str, *, max_tokens: int = 256, stop: list[str] | None = None
    ) -> str:
        raise AssertionError("a deterministic scorer called a model")

    async def embed(self, target: ModelTarget | None, texts: list[str]) -> list[list[float]]:
        raise AssertionError("a deterministic scorer called a model")


def inp(output: str | None, expected: str | None = None, **fields: Any) -> ScoreInput:
    values: dict[str, Any] = {
        "output": output,
        "expected": expected,
        "variables": {},
        "prompt_text": "Question?",
        "latency_ms": 120.0,
        "cost_usd": 0.002,
        "input_tokens": 10,
        "output_tokens": 5,
    }
    values.update(fields)
    return ScoreInput(**values)


def spec(type_: str, value: Any = None, **fields: Any) -> ScorerSpec:
    return ScorerSpec(type=type_, value=value, **fields)


async def one(s: ScorerSpec, i: ScoreInput) -> ScorerResult:
    validate_specs([s])
    result = await score_case([s], i, NoModels())
    return result.results[0]


ORDER_JSON = '{"order": {"id": 42, "items": [{"sku": "A1", "qty": 2}, {"sku": "B7", "qty": 1}]}, "ok": true}'
SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0}},
    "required": ["name", "age"],
}

# (spec, input, expected score before negate, passes) — a passing and a failing case per type at least.
CASES: list[tuple[str, ScorerSpec, ScoreInput, float, bool]] = [
    ("equals text", spec("equals", "Paris"), inp("  Paris\n"), 1.0, True),
    ("equals uses expected", spec("equals"), inp("Paris", "Paris"), 1.0, True),
    ("equals differs", spec("equals", "Paris"), inp("paris"), 0.0, False),
    ("equals ignore_case", spec("equals", "Paris", options={"ignore_case": True}), inp("PARIS"), 1.0, True),
    ("equals JSON value", spec("equals", {"a": 1, "b": [True]}), inp('{"b": [true], "a": 1.0}'), 1.0, True),
    ("equals JSON differs", spec("equals", {"a": 1}), inp('{"a": "1"}'), 0.0, False),
    ("equals number", spec("equals", 4), inp("4"), 1.0, True),
    ("equals JSON not JSON", spec("equals", [1]), inp("one"), 0.0, False),
    ("contains", spec("contains", "cat"), inp("the cat sat"), 1.0, True),
    ("contains case", spec("contains", "Cat"), inp("the cat sat"), 0.0, False),
    ("contains expected", spec("contains"), inp("It is Paris.", "Paris"), 1.0, True),
    ("icontains", spec("icontains", "CAT"), inp("the Cat sat"), 1.0, True),
    ("icontains missing", spec("icontains", "dog"), inp("the cat sat"), 0.0, False),
    ("contains-any", spec("contains-any", ["dog", "cat"]), inp("a cat"), 1.0, True),
    ("contains-any csv", spec("contains-any", "dog, cat"), inp("a cat"), 1.0, True),
    ("contains-any none", spec("contains-any", ["dog", "cow"]), inp("a cat"), 0.0, False),
    ("icontains-any", spec("icontains-any", ["DOG", "CAT"]), inp("a cat"), 1.0, True),
    ("contains-all", spec("contains-all", ["red", "blue"]), inp("red and blue"), 1.0, True),
    ("contains-all missing", spec("contains-all", ["red", "green"]), inp("red and blue"), 0.0, False),
    ("icontains-all", spec("icontains-all", ["RED", "Blue"]), inp("red and blue"), 1.0, True),
    ("starts-with", spec("starts-with", "Yes"), inp("\n Yes, indeed"), 1.0, True),
    ("starts-with no", spec("starts-with", "Yes"), inp("No, Yes"), 0.0, False),
    ("regex", spec("regex", r"\b\d{3}-\d{4}\b"), inp("call 555-1234 now"), 1.0, True),
    ("regex no match", spec("regex", r"^\d+$"), inp("12a"), 0.0, False),
    ("regex flags", spec("regex", "^hello$", options={"flags": "im"}), inp("x\nHELLO\ny"), 1.0, True),
    ("is-json", spec("is-json"), inp('```json\n{"a": 1}\n```'), 1.0, True),
    ("is-json prose", spec("is-json"), inp('Here: {"a": 1}'), 0.0, False),
    ("is-json schema", spec("is-json", SCHEMA), inp('{"name": "Ann", "age": 3}'), 1.0, True),
    ("is-json schema fails", spec("is-json", SCHEMA), inp('{"name": "Ann", "age": -3}'), 0.0, False),
    ("contains-json", spec("contains-json"), inp('Sure! ```json\n{"a": [1, 2]}\n``` done'), 1.0, True),
    ("contains-json none", spec("contains-json"), inp("no braces { here"), 0.0, False),
    ("contains-json schema", spec("contains-json", SCHEMA), inp('x {"name": "A", "age": 1} y'), 1.0, True),
    ("json-schema", spec("json-schema", SCHEMA), inp('{"name": "Bo", "age": 40}'), 1.0, True),
    ("json-schema missing", spec("json-schema", SCHEMA), inp('{"name": "Bo"}'), 0.0, False),
    ("json-schema not json", spec("json-schema", SCHEMA), inp("Bo, 40"), 0.0, False),
    (
        "json-schema format",
        spec("json-schema", {"type": "string", "format": "email"}),
        inp('"not-an-email"'),
        0.0,
        False,
    ),
    ("json-path", spec("json-path", 42, options={"path": "$.order.id"}), inp(ORDER_JSON), 1.0, True),
    (
        "jsonpath-equals",
        spec("jsonpath-equals", 42, options={"path": "$.order.id"}),
        inp(ORDER_JSON),
        1.0,
        True,
    ),
    ("json-path wrong", spec("json-path", 43, options={"path": "$.order.id"}), inp(ORDER_JSON), 0.0, False),
    (
        "json-path list",
        spec("json-path", ["A1", "B7"], options={"path": "$.order.items[*].sku"}),
        inp(ORDER_JSON),
        1.0,
        True,
    ),
    (
        "json-path filter",
        spec("json-path", "A1", options={"path": "$.order.items[?@.qty > 1].sku"}),
        inp(ORDER_JSON),
        1.0,
        True,
    ),
    ("json-path expected", spec("json-path", options={"path": "$.ok"}), inp(ORDER_JSON, "true"), 1.0, True),
    ("json-path exists", spec("json-path", options={"path": "$.order"}), inp(ORDER_JSON), 1.0, True),
    ("json-path nothing", spec("json-path", options={"path": "$.nope"}), inp(ORDER_JSON), 0.0, False),
    ("numeric", spec("numeric", 3.14, options={"tolerance": 0.01}), inp("pi is about 3.141"), 1.0, True),
    ("numeric off", spec("numeric", 3.14, options={"tolerance": 0.0001}), inp("3.141"), 0.0, False),
    ("numeric expected", spec("numeric"), inp("Total: 1,250 items", "1250"), 1.0, True),
    (
        "numeric relative",
        spec("numeric", 1000, options={"relative_tolerance": 0.05}),
        inp("about 1040"),
        1.0,
        True,
    ),
    ("numeric last", spec("numeric", 12, options={"pick": "last"}), inp("3 x 4 = 12"), 1.0, True),
    ("numeric none", spec("numeric", 1), inp("no digits"), 0.0, False),
    ("levenshtein same", spec("levenshtein", "kitten"), inp("kitten"), 1.0, True),
    ("levenshtein far", spec("levenshtein", "kitten"), inp("sitting"), 1 - 3 / 7, False),
    (
        "levenshtein max_distance",
        spec("levenshtein", "kitten", options={"max_distance": 3}),
        inp("sitting"),
        1 - 3 / 7,
        True,
    ),
    ("levenshtein threshold", spec("levenshtein", "kitten", threshold=0.5), inp("sitting"), 1 - 3 / 7, True),
    ("max-words", spec("max-words", 3), inp("one two three"), 1.0, True),
    ("max-words over", spec("max-words", 2), inp("one two three"), 0.0, False),
    ("min-words", spec("min-words", 2), inp("one two"), 1.0, True),
    ("min-words under", spec("min-words", 3), inp("one two"), 0.0, False),
    ("max-length", spec("max-length", 5), inp("12345"), 1.0, True),
    ("max-length over", spec("max-length", 4), inp("12345"), 0.0, False),
    ("min-length", spec("min-length", 5), inp("12345"), 1.0, True),
    ("min-length under", spec("min-length", 6), inp("12345"), 0.0, False),
    ("latency", spec("latency", 500), inp("x", latency_ms=499.0), 1.0, True),
    ("latency slow", spec("latency", 500), inp("x", latency_ms=501.0), 0.0, False),
    ("cost", spec("cost", 0.01), inp("x", cost_usd=0.01), 1.0, True),
    ("cost over", spec("cost", 0.001), inp("x", cost_usd=0.002), 0.0, False),
    ("label normalised", spec("label"), inp("  Positive.\n", "positive"), 1.0, True),
    ("label wrong", spec("label"), inp("negative", "positive"), 0.0, False),
    ("label lead-in no labels", spec("label"), inp("Sentiment: positive", "positive"), 1.0, True),
    (
        "label exact",
        spec("label", options={"exact": True}),
        inp("Sentiment: positive", "positive"),
        0.0,
        False,
    ),
    ("label exact same", spec("label", options={"exact": True}), inp(" Positive. ", "positive"), 1.0, True),
    (
        "label first line of a ramble",
        spec("label", options={"labels": ["positive", "negative"]}),
        inp(" negative\nReview: Great value.\nSentiment: positive\n", "negative"),
        1.0,
        True,
    ),
    (
        "label skips blank lines and markup",
        spec("label", options={"labels": ["positive", "negative"]}),
        inp("\n\n**Answer:** Positive.", "positive"),
        1.0,
        True,
    ),
    (
        "label in a sentence",
        spec("label", options={"labels": ["positive", "negative"]}),
        inp("The review is clearly negative.", "negative"),
        1.0,
        True,
    ),
    (
        "label two labels is a miss",
        spec("label", options={"labels": ["positive", "negative"]}),
        inp("It is mixed: negative and positive parts", "negative"),
        0.0,
        False,
    ),
    (
        "label first word counts",
        spec("label", options={"labels": ["positive", "negative"]}),
        inp("positive or negative? positive", "positive"),
        1.0,
        True,
    ),
    (
        "label negated is not named",
        spec("label", options={"labels": ["positive", "negative"]}),
        inp("Definitely not positive", "positive"),
        0.0,
        False,
    ),
    ("label empty output", spec("label", options={"labels": ["a", "b"]}), inp("\n \n", "a"), 0.0, False),
    (
        "label picks first known",
        spec("label", options={"labels": ["positive", "negative", "neutral"]}),
        inp("Sentiment: NEGATIVE (not positive)", "negative"),
        1.0,
        True,
    ),
    (
        "label whole words only",
        spec("label", options={"labels": ["pos", "neg"]}),
        inp("position: neg", "neg"),
        1.0,
        True,
    ),
    (
        "label alias",
        spec("label", options={"labels": ["positive", "negative"], "aliases": {"good": "positive"}}),
        inp("Good!", "positive"),
        1.0,
        True,
    ),
    (
        "label alias in expected",
        spec("label", options={"aliases": {"pos": "positive"}}),
        inp("positive", "POS"),
        1.0,
        True,
    ),
    (
        "label none found",
        spec("label", options={"labels": ["positive", "negative"]}),
        inp("I cannot tell", "positive"),
        0.0,
        False,
    ),
]


@pytest.mark.parametrize(("case", "s", "i", "score", "passes"), CASES, ids=[c[0] for c in CASES])
async def test_each_type_scores_and_passes(
    case: str, s: ScorerSpec, i: ScoreInput, score: float, passes: bool
) -> None:
    result = await one(s, i)

    assert result.score == pytest.approx(score, abs=1e-6), result.reason
    assert result.passed is passes, result.reason
    assert result.type == s.type and result.name == s.type and result.reason


@pytest.mark.parametrize(("case", "s", "i", "score", "passes"), CASES, ids=[c[0] for c in CASES])
async def test_negate_inverts_score_and_pass(
    case: str, s: ScorerSpec, i: ScoreInput, score: float, passes: bool
) -> None:
    negated = s.model_copy(update={"negate": True})
    prefixed = s.model_copy(update={"type": f"not-{s.type}"})

    for variant in (negated, prefixed):
        result = await one(variant, i)
        assert result.score == pytest.approx(1 - score, abs=1e-6)
        assert result.passed is (not passes)
        assert result.reason.startswith("negated: ")
    # negate on a not- type cancels out
    both = await one(prefixed.model_copy(update={"negate": True}), i)
    assert both.score == pytest.approx(score, abs=1e-6) and both.passed is passes


def test_every_builtin_type_is_covered_by_the_table() -> None:
    covered = {s.type for _, s, *_ in CASES}
    models = {"llm-rubric", "similar"}  # test_scorer_models.py
    assert set(known_types()) - models == covered


async def test_result_json_is_plain_and_details_say_why() -> None:
    result = await one(spec("contains-all", ["red", "green"], name="colours", weight=2), inp("red"))

    assert result.to_json() == {
        "name": "colours",
        "type": "contains-all",
        "score": 0.0,
        "passed": False,
        "weight": 2.0,
        "reason": "output lacks 'green'",
        "details": {"found": ["red"], "missing": ["green"], "threshold": 1.0},
    }


async def test_reference_missing_fails_with_reason() -> None:
    result = await one(spec("equals"), inp("Paris", None))

    assert result.passed is False and result.score == 0.0
    assert "no expected output" in result.reason


# --- composition -------------------------------------------------------------------------------------------------


async def test_weighted_mean_and_pass_threshold() -> None:
    specs = [
        spec("contains", "cat", weight=3),  # passes: 1.0
        spec("levenshtein", "the dog", weight=1, threshold=0.1),  # passes with a partial score
        spec("max-words", 1, weight=0),  # fails, but informative only
    ]
    i = inp("the cat")
    ratio = 1 - 3 / 7  # "the cat" -> "the dog": 3 edits over 7 characters

    strict = await score_case(specs, i, NoModels())
    lenient = await score_case(specs, i, NoModels(), pass_threshold=0.8)

    expected = (3 * 1.0 + 1 * ratio) / 4
    assert strict.score == pytest.approx(expected, abs=1e-6)
    assert [r.passed for r in strict.results] == [True, True, False]
    assert strict.passed is False  # every weighted scorer passed, but 0.857 < 1.0
    assert lenient.passed is True  # the weight-0 failure does not count
    assert [r.name for r in strict.results] == ["contains", "levenshtein", "max-words"]


async def test_one_failing_weighted_scorer_fails_the_case_whatever_the_mean() -> None:
    specs = [spec("contains", "cat", weight=99), spec("contains", "dog", weight=1)]

    result = await score_case(specs, inp("cat"), NoModels(), pass_threshold=0.5)

    assert result.score == pytest.approx(0.99)
    assert result.passed is False
    assert [r.name for r in result.results] == ["contains", "contains#2"]


async def test_failed_call_scores_zero_everywhere_even_negated() -> None:
    specs = [spec("contains", "x"), spec("contains", "x", negate=True), spec("latency", 10_000)]

    result = await score_case(specs, inp(None, "x", error="provider_timeout"), NoModels())

    assert result.score == 0.0 and result.passed is False
    for r in result.results:
        assert r.score == 0.0 and r.passed is False
        assert r.reason == "model call failed: provider_timeout"


async def test_no_scorers_passes_and_only_informative_scorers_pass() -> None:
    empty = await score_case([], inp("anything"), NoModels())
    informative = await score_case([spec("contains", "zzz", weight=0)], inp("anything"), NoModels())

    assert (empty.score, empty.passed) == (1.0, True)
    assert (informative.score, informative.passed) == (1.0, True)
    assert informative.results[0].passed is False


def test_default_specs() -> None:
    with_expected = default_specs(["positive", "negative", "positive", None])

    assert [s.type for s in with_expected] == ["label"]
    assert with_expected[0].options == {"labels": ["negative", "positive"]}
    assert default_specs([None, None]) == []
    # free-text expectations (all different) are no label set: the label scorer compares with each one
    assert default_specs(["The sky is blue.", "Paris is in France.", "Two."])[0].options == {}
    validate_specs(with_expected, has_expected=True)


def test_scorers_for_fills_the_label_set_of_a_label_scorer() -> None:
    expected = ["spam", "ham", "ham"]
    filled = scorers_for([spec("label"), spec("contains", "x")], expected)
    assert filled[0].options == {"labels": ["ham", "spam"]}
    assert filled[1].options == {}
    exact = scorers_for([spec("label", options={"exact": True})], expected)
    assert exact[0].options == {"exact": True}
    given = scorers_for([spec("label", options={"labels": ["a", "b"]})], expected)
    assert given[0].options == {"labels": ["a", "b"]}


@pytest.mark.parametrize(
    ("values", "labels"),
    [
        (["b", "a", "B"], ["a", "b"]),
        (["only"], []),
        (["x", "y", "z"], []),  # as many distinct values as cases: free text, not labels
        (["x", "y"], ["x", "y"]),
        ([f"l{i}" for i in range(21)] * 2, []),
        (["ok", "multi\nline", "ok"], []),
    ],
)
def test_label_set(values: list[str], labels: list[str]) -> None:
    assert label_set(values) == labels


def test_describe_types_lists_each_type_once_with_aliases() -> None:
    rows = {row["type"]: row for row in describe_types()}

    assert rows["json-path"]["aliases"] == ["jsonpath-equals"]
    assert "jsonpath-equals" not in rows
    assert rows["llm-rubric"]["default_threshold"] == 0.75
    assert rows["levenshtein"]["default_threshold"] == 0.8
    assert rows["contains"]["default_threshold"] == 1.0
    assert all(row["builtin"] and row["description"] for row in rows.values())


# --- validation ----------------------------------------------------------------------------------------------------


def problem_of(specs: list[ScorerSpec], **kwargs: Any) -> ValidationProblem:
    with pytest.raises(ValidationProblem) as caught:
        validate_specs(specs, **kwargs)
    assert caught.value.code == "invalid_scorer"
    assert caught.value.status == 422
    return caught.value


@pytest.mark.parametrize(
    ("s", "message"),
    [
        (spec("no-such-type"), "unknown scorer type; known types: contains, contains-all"),
        (spec("javascript", "output.length > 3"), "no code is accepted over the API"),
        (spec("python", "True"), "promptops.scorers"),
        (spec("regex", "([a-z]"), "invalid regular expression"),
        (spec("regex"), "value is required"),
        (spec("regex", 5), "non-empty regular expression"),
        (spec("regex", "a", options={"flags": "q"}), "options.flags"),
        (spec("json-schema"), "value is required"),
        (spec("json-schema", {"type": "strin"}), "invalid JSON schema"),
        (spec("json-schema", "not a schema"), "must be a JSON schema"),
        (spec("is-json", {"minimum": "zero"}), "invalid JSON schema"),
        (spec("json-path", 1), "options.path"),
        (spec("json-path", 1, options={"path": "$.[["}), "invalid JSONPath"),
        (spec("contains", ["a"]), "value must be a string"),
        (spec("contains-any"), "value is required"),
        (spec("contains-any", []), "1 to 100 non-empty strings"),
        (spec("contains-any", {"a": 1}), "list of strings"),
        (spec("numeric", "many"), "value must be a number"),
        (spec("numeric", 1, options={"tolerance": -1}), "options.tolerance"),
        (spec("numeric", 1, options={"pick": "middle"}), "options.pick"),
        (spec("levenshtein", "a", options={"max_distance": 1.5}), "options.max_distance"),
        (spec("max-words", -1), "whole number"),
        (spec("max-words", 2.5), "whole number"),
        (spec("latency"), "value is required"),
        (spec("latency", 0), "milliseconds > 0"),
        (spec("cost", True), "US dollars"),
        (spec("equals", "a", options={"ignorecase": True}), "unknown option(s) ignorecase"),
        (spec("label", options={"labels": "positive"}), "options.labels"),
        (spec("label", options={"labels": ["a"], "aliases": {"b": "c"}}), "not in labels"),
        (spec("label", options={"aliases": {"!!": "a"}}), "non-empty words"),
        (spec("label", "..."), "empty once normalised"),
        (spec("llm-rubric", "   "), "rubric must be non-empty"),
        (spec("llm-rubric", options={"model": "gpt"}), "options.model must be an object"),
        (spec("llm-rubric", options={"model": {"provider": "", "model": "x"}}), "options.model is not"),
        (spec("similar", options={"model": {"model": "x", "extra": 1}}), "options.model is not"),
    ],
)
def test_invalid_specs_are_refused_with_what_is_wrong(s: ScorerSpec, message: str) -> None:
    problem = problem_of([spec("contains", "ok"), s])

    assert f"scorers[1] ({s.type}): " in problem.detail
    assert message in problem.detail
    assert problem.extra["errors"] == [
        {"index": 1, "type": s.type, "message": problem.extra["errors"][0]["message"]}
    ]


def test_every_problem_is_reported_at_once() -> None:
    problem = problem_of(
        [spec("regex", "("), spec("contains", "fine", name="x"), spec("max-words", name="x"), spec("nope")]
    )

    indexes = [e["index"] for e in problem.extra["errors"]]
    assert indexes == [0, 2, 2, 3]  # index 2: its name is taken and it has no value
    assert "the name 'x' is used by another scorer" in problem.detail


def test_context_dependent_checks() -> None:
    problem = problem_of([spec("contains"), spec("contains", "x"), spec("llm-rubric")], has_expected=False)
    assert [e["index"] for e in problem.extra["errors"]] == [0]
    assert "no expected output" in problem.detail

    problem = problem_of([spec("similar", "ref")], embedding_available=False)
    assert "no embedding model configured" in problem.detail
    validate_specs(
        [spec("similar", "ref", options={"model": {"provider": "p", "model": "m"}})],
        embedding_available=False,
    )
    validate_specs([spec("similar", "ref")])


def test_value_size_is_limited() -> None:
    problem = problem_of([spec("contains-any", ["x" * 1000] * 100)])

    assert "larger than 65536 bytes" in problem.detail


# --- properties ---------------------------------------------------------------------------------------------------

texts = st.text(max_size=60)


@settings(max_examples=60, deadline=None)
@given(a=texts, b=texts, threshold=st.floats(0, 1), negate=st.booleans())
async def test_similarity_is_bounded_and_negation_is_an_involution(
    a: str, b: str, threshold: float, negate: bool
) -> None:
    s = spec("levenshtein", b or "x", threshold=threshold, negate=negate)
    plain = (await score_case([s], inp(a), NoModels())).results[0]
    twice = (
        await score_case(
            [s.model_copy(update={"type": "not-levenshtein", "negate": not negate})], inp(a), NoModels()
        )
    ).results[0]

    assert 0.0 <= plain.score <= 1.0
    assert twice.score == pytest.approx(plain.score) and twice.passed is plain.passed
    if not negate:
        assert plain.passed is (plain.score >= threshold - 1e-9)


# Any non-negative weight: 0, subnormal, ordinary, huge (sums overflow to inf) and inf.
weights = st.floats(min_value=0.0, allow_nan=False, allow_infinity=True, allow_subnormal=True)
SUBNORMAL = 5e-324


def exact_weighted_mean(items: list[tuple[float, bool, float]]) -> float | None:
    """The weighted mean in exact rational arithmetic (infinite weights share the weight); None when no weight."""
    counted = [(s, w) for s, _, w in items if w > 0]
    if any(math.isinf(w) for _, w in counted):
        counted = [(s, 1.0) for s, w in counted if math.isinf(w)]
    if not counted:
        return None
    total = sum(Fraction(w) for _, w in counted)
    return float(sum(Fraction(s) * Fraction(w) for s, w in counted) / total)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 1), st.booleans(), weights), max_size=8), st.floats(0, 1))
@example([(0.5, True, SUBNORMAL)], 0.5)  # 0.5 * 5e-324 underflows to 0: the naive mean is 0.0
@example([(0.5, True, SUBNORMAL), (0.25, True, SUBNORMAL * 3)], 0.0)
@example([(0.0, True, 1e308), (1.0, True, 1e308)], 0.5)  # the total overflows to inf: the naive mean is 0.0
@example([(1.0, True, 1e308), (0.0, False, SUBNORMAL)], 1.0)
@example([(0.2, True, math.inf), (0.8, True, math.inf), (0.0, True, 1.0)], 0.5)
@example([(0.3, False, 0.0), (0.9, False, 0.0)], 1.0)  # only weight-0 scorers: documented 1 and passed
@example([(0.1, True, 3.0)] * 7, 0.1)  # equal scores: exactly that score, not one ulp off
def test_case_score_is_the_weighted_mean_for_any_weights(
    items: list[tuple[float, bool, float]], threshold: float
) -> None:
    results = [ScorerResult(f"s{i}", "x", s, p, w, "r") for i, (s, p, w) in enumerate(items)]

    case: CaseScore = combine(results, threshold)

    counted = [r for r in results if r.weight > 0]
    expected = exact_weighted_mean(items)
    assert not math.isnan(case.score) and 0.0 <= case.score <= 1.0
    if expected is None:
        assert case.score == 1.0 and case.passed
        return
    assert case.score == pytest.approx(expected, rel=1e-12, abs=1e-12)
    assert min(r.score for r in counted) <= case.score <= max(r.score for r in counted)
    assert case.passed is (all(r.passed for r in counted) and case.score >= threshold - 1e-9)


# --- operators' scorers through entry points ------------------------------------------------------------------------

PLUGIN = '''
from promptops.evals.scoring import Outcome


class Politeness:
    """Share of polite words in the output."""

    type = "acme:politeness"
    default_threshold = 0.5

    def validate(self, spec):
        if spec.value is not None and not isinstance(spec.value, list):
            raise ValueError("value must be a list of polite words")

    async def score(self, spec, inp, models):
        words = spec.value or ["please", "thanks"]
        found = [w for w in words if w in inp.output.lower()]
        return len(found) / len(words), f"polite words: {found}", {"found": found}


class Overridden:
    type = "acme:strict"
    default_threshold = 1.0

    def validate(self, spec):
        pass

    async def score(self, spec, inp, models):
        return Outcome(0.9, "nearly", {"blob": object()}, passed=True)


class Crashes:
    type = "acme:crash"
    default_threshold = 1.0

    def validate(self, spec):
        pass

    async def score(self, spec, inp, models):
        raise RuntimeError("boom")


class ClashesWithBuiltin:
    type = "contains"
    default_threshold = 1.0

    def validate(self, spec):
        pass

    async def score(self, spec, inp, models):
        return 0.0, "hijacked", {}


not_a_scorer = 42
'''


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A tiny installed distribution declaring scorers (and broken entries) in the promptops.scorers group."""
    (tmp_path / "acme_scorers.py").write_text(PLUGIN)
    info = tmp_path / "acme_scorers-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-scorers\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        textwrap.dedent(
            """\
            [promptops.scorers]
            politeness = acme_scorers:Politeness
            strict = acme_scorers:Overridden
            crash = acme_scorers:Crashes
            clash = acme_scorers:ClashesWithBuiltin
            missing_module = acme_scorers_missing:Nope
            missing_attr = acme_scorers:Nope
            not_a_scorer = acme_scorers:not_a_scorer
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    reset_registry()
    yield
    reset_registry()


@pytest.mark.usefixtures("plugin")
async def test_entry_point_scorers_load_and_broken_ones_are_skipped() -> None:
    types = known_types()

    assert {"acme:politeness", "acme:strict", "acme:crash"} <= set(types)
    assert not any(t.startswith("acme_") or t == "not_a_scorer" for t in types)
    rows = {row["type"]: row for row in describe_types()}
    assert rows["acme:politeness"]["builtin"] is False
    assert rows["acme:politeness"]["description"] == "Share of polite words in the output."

    specs = [
        spec("acme:politeness", ["please", "thanks"]),
        spec("not-acme:politeness", ["please", "thanks"], name="rude"),
        spec("acme:strict"),
        spec("acme:crash", weight=0),
        spec("contains", "please"),  # still the built-in
    ]
    validate_specs(specs)
    result = await score_case(specs, inp("Yes please."), NoModels())

    polite, rude, strict, crash, contains = result.results
    assert (polite.score, polite.passed, polite.details["found"]) == (0.5, True, ["please"])
    assert (rude.score, rude.passed) == (0.5, False)
    assert (strict.score, strict.passed) == (0.9, True)
    assert "blob" in strict.details  # unserializable details are turned into text, not a crash
    assert (crash.score, crash.passed) == (0.0, False) and "boom" in crash.reason
    assert (contains.score, contains.reason) == (1.0, "output contains 'please'")
    assert result.passed is False  # rude failed


@pytest.mark.usefixtures("plugin")
def test_entry_point_validation_errors_are_invalid_scorer() -> None:
    problem = problem_of([spec("acme:politeness", "please")])

    assert "scorers[0] (acme:politeness): value must be a list of polite words" in problem.detail


def test_without_the_plugin_its_types_are_unknown() -> None:
    reset_registry()
    problem = problem_of([spec("acme:politeness")])
    assert "unknown scorer type" in problem.detail
