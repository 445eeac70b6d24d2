"""Dataset file formats: import -> export -> import keeps the content hash (property tests), and error texts."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from promptops.datasets import formats
from promptops.errors import ProblemError, ValidationProblem

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

text = st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=40)
names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True)
tags = st.lists(st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.:/-]{0,10}", fullmatch=True), max_size=4)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | text
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=8,
)
keys = st.none() | st.from_regex(r"[A-Za-z0-9][A-Za-z0-9 _.-]{0,20}", fullmatch=True)


@st.composite
def json_cases(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Objects of any shape the JSON formats carry: any JSON values, optional ids, tags and metadata."""
    objects = draw(
        st.lists(
            st.fixed_dictionaries(
                {"input": st.dictionaries(names, json_values, max_size=4)},
                optional={
                    "id": keys,
                    "expected": json_values,
                    "tags": tags,
                    "metadata": st.dictionaries(text, json_values, max_size=3),
                },
            ),
            max_size=8,
        )
    )
    return _unique(objects)


@st.composite
def csv_cases(draw: st.DrawFn) -> list[dict[str, Any]]:
    """What a table holds: the same string variables in every row."""
    columns = draw(st.lists(names, min_size=1, max_size=4, unique_by=str.lower))
    rows = draw(
        st.lists(
            st.fixed_dictionaries(
                {"input": st.fixed_dictionaries({c: text for c in columns})},
                optional={
                    "id": keys,
                    "expected": text,
                    "tags": tags,
                    "metadata": st.dictionaries(text, json_values, max_size=3),
                },
            ),
            max_size=8,
        )
    )
    return _unique(rows)


def _unique(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Drop objects whose (given or derived) id repeats an earlier one: those are an error by design."""
    seen: set[str] = set()
    result = []
    for obj in objects:
        key = formats.make_case(key=obj.get("id"), inputs=obj["input"]).key
        if key not in seen:
            seen.add(key)
            result.append(obj)
    return result


def round_trip(cases: list[formats.Case], fmt: formats.Format) -> list[formats.Case]:
    data = formats.write(cases, fmt, {"name": "x", "version": 1}).encode()
    return formats.parse(data, fmt)


@SETTINGS
@given(json_cases(), st.sampled_from(["jsonl", "json"]))
def test_json_formats_round_trip_any_content(objects: list[dict[str, Any]], fmt: formats.Format) -> None:
    cases = formats.normalize_cases(objects)
    again = round_trip(cases, fmt)
    assert formats.content_hash(again) == formats.content_hash(cases)
    assert [c.canonical() for c in again] == [c.canonical() for c in cases]
    # and once more through the other JSON format
    other: formats.Format = "json" if fmt == "jsonl" else "jsonl"
    assert formats.content_hash(round_trip(again, other)) == formats.content_hash(cases)


@SETTINGS
@given(csv_cases())
def test_csv_round_trips_tables_of_text(objects: list[dict[str, Any]]) -> None:
    cases = formats.normalize_cases(objects)
    again = round_trip(cases, "csv")
    assert [c.canonical() for c in again] == [c.canonical() for c in cases]
    for fmt in ("jsonl", "json"):
        assert formats.content_hash(round_trip(again, fmt)) == formats.content_hash(cases)


def test_hash_changes_with_any_field_and_order() -> None:
    base = formats.normalize_cases([{"id": "a", "input": {"x": "1"}}, {"id": "b", "input": {"x": "2"}}])
    variants = [
        [base[1], base[0]],
        [formats.make_case(key="a", inputs={"x": "1"}, expected="y"), base[1]],
        [formats.make_case(key="a", inputs={"x": "1"}, tags=["t"]), base[1]],
        [formats.make_case(key="a", inputs={"x": "1"}, metadata={"m": 1}), base[1]],
        [formats.make_case(key="z", inputs={"x": "1"}), base[1]],
    ]
    hashes = {formats.content_hash(v) for v in variants} | {formats.content_hash(base)}
    assert len(hashes) == len(variants) + 1


def test_normalization_rules() -> None:
    [a, b, c] = formats.normalize_cases(
        [
            {"id": 7, "input": {"q": 1}, "expected": {"b": 1, "a": 2}, "tags": "z, a|a"},
            {"key": " k ", "vars": {"q": "x"}, "expected": ""},
            {"q": "flat", "expected": True, "metadata": {"m": [1]}},
        ]
    )
    assert (a.key, a.expected, a.tags) == ("7", '{"a":2,"b":1}', ("a", "z"))
    assert (b.key, b.input, b.expected) == ("k", {"q": "x"}, None)
    assert (c.input, c.expected, c.metadata) == ({"q": "flat"}, "true", {"m": [1]})
    assert len(c.key) == 16 and c.key == formats.derived_key({"q": "flat"})


def test_csv_columns() -> None:
    data = (
        "ID,vars.expected,__expected,Tags,__note,metadata,question\n"
        'q1,is reserved,yes,"a, b",hello,"{""m"": 1}",why?\n'
    )
    [case] = formats.parse(data.encode("utf-8-sig"), "csv")
    assert case.key == "q1" and case.input == {"expected": "is reserved", "question": "why?"}
    assert case.expected == "yes" and case.tags == ("a", "b") and case.metadata == {"m": 1, "note": "hello"}
    written = formats.to_csv([case])
    assert written.splitlines()[0] == "id,vars.expected,question,expected,tags,metadata"


@pytest.mark.parametrize(
    ("data", "fmt", "message"),
    [
        ('{"input": {}}\n\n{"input": {"a": "1"}}\nnot json\n', "jsonl", "line 4: invalid JSON at column 1"),
        ("a,b\n1,2\n3\n", "csv", "row 2 (line 3): column count 1, header has 2"),
        ('a,b\n1,"two\nlines"\n3,4,5\n', "csv", "row 2 (line 4): column count 3, header has 2"),
        ("a,a\n1,2\n", "csv", "columns 1 and 2 both give the variable 'a'"),
        ("id,key\n1,2\n", "csv", "both give the case id"),
        ("1a\nx\n", "csv", "header column 1 ('1a') is not a valid variable name"),
        ('{"cases": [], "extra": 1}', "json", "unknown field(s): extra"),
        ('"text"', "json", "expected an array of cases"),
        ('[{"id": "a", "input": {"x": "1"}}, {"id": "a", "input": {"x": "2"}}]', "json", "duplicate id 'a'"),
        ('[{"input": {"x": "1"}, "tags": ["no spaces"]}]', "json", "case 1: column 'tags': invalid tag"),
        ('[{"input": {"x": "1"}, "metadata": [1]}]', "json", "must be a JSON object, got an array"),
        ('[{"id": "a", "key": "b", "input": {}}]', "json", "give 'id' or 'key'"),
    ],
)
def test_errors_point_at_the_place(data: str, fmt: formats.Format, message: str) -> None:
    with pytest.raises(ValidationProblem) as raised:
        formats.parse(data.encode(), fmt, source="upload")
    assert message in raised.value.detail, raised.value.detail
    assert raised.value.detail.startswith("upload: ")


def test_many_errors_are_listed_together_up_to_a_limit() -> None:
    data = "".join("bad line\n" for _ in range(80))
    with pytest.raises(ValidationProblem) as raised:
        formats.parse(data.encode(), "jsonl")
    extra = raised.value.extra
    assert extra["errorCount"] == 80 and len(extra["errors"]) == formats.MAX_ERRORS
    assert "(and 79 more errors" in raised.value.detail


def test_format_detection() -> None:
    assert formats.detect_format(None, "text/csv; charset=utf-8") == "csv"
    assert formats.detect_format(None, "application/x-ndjson") == "jsonl"
    assert formats.detect_format("NDJSON", "text/csv") == "jsonl"
    assert formats.detect_format(None, None, "cases.json") == "json"
    for bad in ((None, "text/plain"), ("xml", None)):
        with pytest.raises(ProblemError):
            formats.detect_format(*bad)
