"""Dataset file formats: import -> export -> import keeps the content hash (property tests), and error texts."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from promptops.datasets import binding, formats
from promptops.datasets.models import DatasetCase
from promptops.errors import ProblemError, ValidationProblem
from promptops.registry.models import PromptVersion

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# text a database can store: no lone surrogates and no NUL (both are refused on import, see test_datasets_api)
text = st.text(alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=40)
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
chat = st.lists(
    st.fixed_dictionaries({"role": st.sampled_from(["system", "user", "assistant"]), "content": text}),
    min_size=1,
    max_size=3,
)
# every input shape: variables, a text, chat messages (which become the variable 'messages')
inputs = st.dictionaries(names, json_values, max_size=4) | text.filter(bool) | chat


@st.composite
def json_cases(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Objects of any shape the JSON formats carry: any JSON values, optional ids, tags and metadata."""
    objects = draw(
        st.lists(
            st.fixed_dictionaries(
                {"input": inputs},
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
    """What a table holds: the same string variables in every row, or a text input."""
    columns = draw(st.lists(names, min_size=1, max_size=4, unique_by=str.lower))
    rows = draw(
        st.lists(
            st.fixed_dictionaries(
                # a row holds the variables, or a text input (the __input column)
                {"input": st.fixed_dictionaries({c: text for c in columns}) | text.filter(bool)},
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
        ('[{"input": {"x": "1"}, "tags": ["no spaces"]}]', "json", "case 1: field 'tags': invalid tag"),
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


# --- the shapes people have -----------------------------------------------------------------------------------


def one(data: str, fmt: formats.Format = "jsonl", **kw: Any) -> formats.Case:
    [case] = formats.parse(data.encode(), fmt, **kw)
    return case


def test_text_input_is_kept_as_it_is_and_stored_as_a_marked_variable() -> None:
    case = one('{"input": "some text", "expected": "label"}')
    assert (case.input, case.expected, case.metadata) == ("some text", "label", {})
    assert case.key == formats.derived_key("some text")
    assert formats.to_jsonl([case]) == f'{{"id":"{case.key}","input":"some text","expected":"label"}}\n'
    stored = formats.to_row(case)
    assert stored == ({"input": "some text"}, {"$input": "string"})
    assert formats.from_row(*stored) == ("some text", {})
    # a stored object of variables named 'input' stays an object
    variables = one('{"input": {"input": "some text"}}')
    assert formats.to_row(variables) == ({"input": "some text"}, {})
    assert formats.from_row(*formats.to_row(variables)) == ({"input": "some text"}, {})
    assert formats.content_hash([case]) != formats.content_hash([variables])


def test_openai_evals_samples() -> None:
    messages = [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": "2+2?"}]
    case = one(json.dumps({"input": messages, "ideal": "4"}))
    assert (case.input, case.expected, case.metadata) == ({"messages": messages}, "4", {})
    several = one(json.dumps({"id": "s", "input": messages, "ideal": ["4", "four"]}))
    assert (several.expected, several.metadata) == ("4", {"ideal": ["4", "four"]})
    # export -> import keeps the content
    assert round_trip([case, several], "jsonl") == [case, several]


def test_langfuse_items() -> None:
    case = one('{"input": {"q": "hi"}, "expected_output": {"a": 1}, "metadata": {"source": "prod"}}')
    assert (case.input, case.expected, case.metadata) == ({"q": "hi"}, '{"a":1}', {"source": "prod"})
    camel = one('{"id": "i1", "input": "hi", "expectedOutput": "hello", "metadata": null}')
    assert (camel.key, camel.input, camel.expected) == ("i1", "hi", "hello")
    # flat objects keep every key but the reserved ones as a variable, as before
    flat = one('{"review": "ok", "ideal": "x"}')
    assert flat.input == {"review": "ok", "ideal": "x"} and flat.expected is None


def test_promptfoo_tests_reuse_the_promptfoo_translation() -> None:
    test = {
        "description": "refund",
        "vars": {"ticket": "I was charged twice"},
        "assert": [
            {"type": "icontains", "value": "billing"},
            {"type": "not-contains", "value": "sales"},
            {"type": "javascript", "value": "output.length < 10"},
        ],
        "metadata": {"owner": "qa"},
        "tags": ["billing"],
    }
    case = one(json.dumps(test))
    assert case.input == {"ticket": "I was charged twice"} and case.expected == "billing"
    assert case.tags == ("billing",)
    meta = case.metadata
    assert meta["assert"] == test["assert"] and meta["description"] == "refund" and meta["owner"] == "qa"
    assert meta["scorers"] == [
        {"type": "icontains", "value": "billing"},
        {"type": "contains", "value": "sales", "negate": True},
    ]
    assert meta["unsupported"] == [
        "assert[2]: type 'javascript' is not supported: PromptOps runs no code from evaluation configs"
    ]
    # equals gives the expected output; a test without a comparing assertion has none
    assert one('{"vars": {"q": "2+2"}, "assert": [{"type": "equals", "value": "4"}]}').expected == "4"
    assert one('{"vars": {"q": "x"}, "description": "smoke"}').expected is None
    # list variables expand into one case per value, as promptfoo does
    cases = formats.parse(
        b'{"vars": {"q": ["a", "b"]}, "assert": [{"type": "equals", "value": "{{q}}"}]}', "jsonl"
    )
    assert [(c.input, c.expected) for c in cases] == [({"q": "a"}, "a"), ({"q": "b"}, "b")]
    assert round_trip(cases, "json") == cases


def test_promptfoo_tests_use_the_scorer_rules_the_evaluation_layer_registers() -> None:
    """The datasets layer does not import evals: evals registers what it knows about scorers (which types
    exist, whether a spec is valid), and an upload's promptfoo assertions are checked against it."""
    import promptops.evals.promptfoo  # noqa: F401 (registers the rules)
    from promptops.datasets import promptfoo_tests

    rules = promptfoo_tests.scorer_rules()
    assert rules is not None and "icontains" in rules.known and "moderation" not in rules.known
    case = one(
        json.dumps(
            {
                "vars": {"q": "hi"},
                "assert": [
                    {"type": "moderation"},
                    {"type": "regex", "value": "("},
                    {"type": "contains", "value": "hi"},
                ],
            }
        )
    )
    assert case.metadata["scorers"] == [{"type": "contains", "value": "hi"}]
    assert case.metadata["unsupported"][0] == "assert[0]: type 'moderation' is not supported"
    assert case.metadata["unsupported"][1].startswith("assert[1]: type 'regex' cannot be translated")


def test_csv_column_mapping() -> None:
    table = "id,question,answer,source\nq1,Why?,Because,faq\nq2,How?,Like this,\n"
    cases = formats.parse(table.encode(), "csv", columns=formats.ColumnMap.of(["question"], "answer"))
    assert [(c.key, c.input, c.expected, c.metadata) for c in cases] == [
        ("q1", "Why?", "Because", {"source": "faq"}),
        ("q2", "How?", "Like this", {}),
    ]
    # the export writes the text input as __input, which imports back without a mapping
    exported = formats.to_csv(cases)
    assert exported.splitlines()[0] == "id,__input,expected,metadata"
    assert formats.parse(exported, "csv") == cases
    several = formats.parse(table.encode(), "csv", columns=formats.ColumnMap.of(["question", "source"], None))
    assert several[0].input == {"question": "Why?", "source": "faq"} and several[0].metadata == {
        "answer": "Because"
    }
    only_expected = formats.parse(table.encode(), "csv", columns=formats.ColumnMap.of(None, "answer"))
    assert (
        only_expected[0].input == {"question": "Why?", "source": "faq"}
        and only_expected[0].expected == "Because"
    )
    # without a mapping the defaults are unchanged: every other column is a variable
    assert formats.parse(table.encode(), "csv")[0].input == {
        "question": "Why?",
        "answer": "Because",
        "source": "faq",
    }
    assert formats.ColumnMap.of(None, None) is None and formats.ColumnMap.of([], None) is None


def test_csv_text_column_and_variables_in_one_file() -> None:
    cases = formats.parse(b"id,__input,q\n1,hello,\n2,,world\n", "csv")
    assert [c.input for c in cases] == ["hello", {"q": "world"}]
    assert formats.parse(formats.to_csv(cases), "csv") == cases


@pytest.mark.parametrize(
    ("data", "fmt", "message"),
    [
        (
            '{"q": 1}\n{"input": 3}\n',
            "jsonl",
            "line 2: field 'input': must be a string, an object of variables or "
            "a list of chat messages, got a number",
        ),
        (
            '[{"input": {}}, {"input": true}]',
            "json",
            "case 2: field 'input': must be a string, an object of "
            "variables or a list of chat messages, got a boolean",
        ),
        ('{"input": ""}', "jsonl", "line 1: field 'input': must not be empty"),
        (
            '{"input": []}',
            "jsonl",
            "line 1: field 'input': must be a string, an object of variables or a list of "
            "chat messages; the list is empty",
        ),
        (
            '\n{"input": [{"content": "hi"}]}',
            "jsonl",
            "line 2: field 'input': must be a string, an object of "
            "variables or a list of chat messages; item 1 of the list is not a chat message",
        ),
        (
            '{"input": "a", "ideal": "x", "expected": "y"}',
            "jsonl",
            "line 1: field 'ideal': give one of 'expected' or 'ideal', not several",
        ),
        (
            '{"input": "a", "ideal": ["x"], "metadata": {"ideal": 1}}',
            "jsonl",
            "field 'metadata': 'ideal' is a list",
        ),
        ('{"input": "a", "output": "x"}', "jsonl", "line 1: field 'output': unknown field(s) 'output'"),
        (
            '{"input": "a", "metadata": {"$input": 1}}',
            "jsonl",
            "field 'metadata': the key '$input' is reserved",
        ),
        (
            '{"vars": "x", "assert": []}',
            "jsonl",
            "line 1: field 'vars': must be an object of variables, got a string",
        ),
        (
            '{"vars": {}, "assert": {"type": "equals"}}',
            "jsonl",
            "line 1: field 'assert': must be a list of assertions",
        ),
        (
            '{"vars": {}, "assert": [{"value": 1}]}',
            "jsonl",
            "field 'assert': must be a list of assertions, each an object with a 'type'",
        ),
        (
            '{"vars": {}, "assert": [], "provider": "x"}',
            "jsonl",
            "line 1: field 'provider': unknown field(s) 'provider' in a promptfoo test",
        ),
        (
            '{"vars": {"doc": "file://secrets.txt"}, "assert": []}',
            "jsonl",
            "line 1: file:// references (secrets.txt) cannot be read from an uploaded dataset",
        ),
        (
            '{"vars": {}, "assert": [{"type": "equals", "value": "file:///etc/answer.txt"}]}',
            "jsonl",
            "file:// references (/etc/answer.txt) cannot be read",
        ),
        (
            '{"id": "t", "vars": {"q": ["a", "b"]}, "description": "d"}',
            "jsonl",
            "line 1: field 'id': its list variables expand into 2 cases",
        ),
        (
            "id,__input,q\n1,hello,world\n",
            "csv",
            "row 1 (line 2): give the input as text (__input) or as variables",
        ),
    ],
)
def test_shape_errors_name_the_place_and_the_field(data: str, fmt: formats.Format, message: str) -> None:
    with pytest.raises(ValidationProblem) as raised:
        formats.parse(data.encode(), fmt, source="upload")
    assert message in raised.value.detail, raised.value.detail
    assert raised.value.code == "invalid_dataset" and raised.value.status == 422


@pytest.mark.parametrize(
    ("table", "inputs", "expected", "message"),
    [
        ("id,text\n1,\n", ["text"], None, "row 1 (line 2): column 'text': must not be empty"),
        ("a,b\n1,2\n", ["c"], "d", "line 1: the header has no column 'c' (an input column); it has: a, b"),
        ("a,b\n1,2\n", ["a"], "d", "the header has no column 'd' (the expected column)"),
        ("a,expected,b\n1,2,3\n", ["a"], "b", "columns 2 and 3 both give the expected output"),
    ],
)
def test_csv_mapping_errors(table: str, inputs: list[str], expected: str | None, message: str) -> None:
    with pytest.raises(ValidationProblem) as raised:
        formats.parse(table.encode(), "csv", columns=formats.ColumnMap.of(inputs, expected))
    assert message in raised.value.detail, raised.value.detail


def test_column_mapping_is_for_csv_and_must_make_sense() -> None:
    mapping = formats.ColumnMap.of(["q"], None)
    with pytest.raises(ValidationProblem) as raised:
        formats.parse(b'{"q": "x"}', "jsonl", columns=mapping)
    assert raised.value.code == "invalid_column_map" and "only be chosen for CSV files" in raised.value.detail
    for inputs, expected, message in [
        (["q", "q"], None, "input columns repeat"),
        (["q"], "q", "cannot be both an input and the expected output"),
        ([" "], None, "a column name is empty"),
    ]:
        with pytest.raises(ValidationProblem, match=message):
            formats.ColumnMap.of(inputs, expected)


def test_case_limit_counts_expanded_promptfoo_cases(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(formats, "MAX_CASES", 3)
    data = (
        b'{"vars": {"q": ["a", "b"]}, "description": "x"}\n{"vars": {"q": ["c", "d"]}, "description": "y"}\n'
    )
    with pytest.raises(ValidationProblem) as raised:
        formats.parse(data, "jsonl")
    assert raised.value.code == "too_many_cases"


# --- binding a case to a prompt's variables -------------------------------------------------------------------


def stored(value: Any, key: str = "k") -> DatasetCase:
    """A dataset case row as the service stores it."""
    case = formats.make_case(key=key, inputs=value)
    inputs, metadata = formats.to_row(case)
    return DatasetCase(key=case.key, input=inputs, metadata_=metadata)


def version(variables: list[str], template: str = "{{ a }}") -> PromptVersion:
    return PromptVersion(
        kind="text", template=template, messages=None, variables=[{"name": n} for n in variables]
    )


def test_a_text_input_binds_to_the_only_variable_or_to_input() -> None:
    text = stored("Arrived broken")
    assert binding.case_variables(text, version(["review"])) == {"review": "Arrived broken"}
    # no declared variables: the ones the template uses, else 'input'
    assert binding.case_variables(text, version([], "Review: {{ review }}")) == {"review": "Arrived broken"}
    assert binding.case_variables(text, version([], "Say hi")) == {"input": "Arrived broken"}
    assert binding.case_variables(text, None) == {"input": "Arrived broken"}
    # variables the evaluation gives do not count, and the case's own win over them
    given = {"context": "shop", "review": "x"}
    two = version(["context", "review"])
    assert binding.case_variables(text, two, {"context": "shop"}) == {
        "context": "shop",
        "review": "Arrived broken",
    }
    assert binding.case_variables(stored({"review": "own"}), two, given) == {
        "context": "shop",
        "review": "own",
    }


def test_a_text_input_for_several_variables_is_an_error_naming_them() -> None:
    with pytest.raises(ValidationProblem) as raised:
        binding.case_variables(stored("Arrived broken", key="r7"), version(["product", "review"]))
    problem = raised.value
    assert problem.code == "ambiguous_input" and problem.status == 422
    assert problem.detail.startswith(
        "Case 'r7' has a text input but the prompt has the variables product, review"
    )
    assert problem.extra["variables"] == ["product", "review"]
    with pytest.raises(ValidationProblem, match="Case 'r7'"):
        binding.check_cases(
            [stored({"a": "1"}), stored("Arrived broken", key="r7")], version(["product", "review"])
        )
    binding.check_cases([stored("fine")], version(["review"]))
    assert binding.bind({"x": 1}, ["a", "b"]) == {"x": 1}
