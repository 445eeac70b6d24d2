"""Tests for the version diff functions."""

from __future__ import annotations

import copy
import re
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from promptops.templates.diff import (
    diff_versions,
    messages_as_text,
    structured_diff,
    unified_text_diff,
    variables_diff,
)


def version(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "kind": "text",
        "template": "Hello {{ name }}\n",
        "messages": None,
        "variables": [
            {"name": "name", "type": "string", "required": True, "default": None, "description": ""}
        ],
        "modelConfig": {"model": "gpt-x", "params": {"temperature": 0.2}},
        "responseSchema": None,
        "metadata": {},
    }
    base.update(overrides)
    return base


# --- messages_as_text ---------------------------------------------------------------------------------------


def test_messages_as_text_format() -> None:
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi {{ x }}"}]
    assert messages_as_text(messages) == "[system]\nBe brief.\n\n[user]\nHi {{ x }}\n"


def test_messages_as_text_empty() -> None:
    assert messages_as_text(None) == ""
    assert messages_as_text([]) == ""


# --- unified_text_diff --------------------------------------------------------------------------------------


def test_unified_diff_equal_is_empty() -> None:
    assert unified_text_diff("same\n", "same\n", "a@1", "a@2") == ""


def test_unified_diff_shows_change() -> None:
    diff = unified_text_diff("one\ntwo\nthree\n", "one\n2\nthree\n", "p@1", "p@2")
    assert diff.startswith("--- p@1\n+++ p@2\n")
    assert "-two\n" in diff
    assert "+2\n" in diff
    assert " one\n" in diff


def test_unified_diff_context_lines() -> None:
    a = "".join(f"line {i}\n" for i in range(20))
    b = a.replace("line 10\n", "line ten\n")
    narrow = unified_text_diff(a, b, "x", "y", context=1)
    assert " line 9\n" in narrow and " line 11\n" in narrow
    assert " line 8\n" not in narrow
    assert " line 7\n" in unified_text_diff(a, b, "x", "y")


def test_unified_diff_missing_final_newline() -> None:
    diff = unified_text_diff("a\nb", "a\nc", "x", "y")
    assert "-b\n\\ No newline at end of file\n" in diff
    assert "+c\n\\ No newline at end of file\n" in diff
    # Only the trailing newline differs: still a visible change.
    assert unified_text_diff("a", "a\n", "x", "y") != ""


# --- structured_diff ----------------------------------------------------------------------------------------


def test_structured_diff_nested() -> None:
    a = {"model": "m1", "params": {"temperature": 0.2, "top_p": 1}, "stop": ["a", "b", "c"], "old": 1}
    b = {"model": "m1", "params": {"temperature": 0.7, "top_p": 1}, "stop": ["a", "x"], "new": True}
    assert structured_diff(a, b) == [
        {"path": "new", "op": "added", "to": True},
        {"path": "old", "op": "removed", "from": 1},
        {"path": "params.temperature", "op": "changed", "from": 0.2, "to": 0.7},
        {"path": "stop[1]", "op": "changed", "from": "b", "to": "x"},
        {"path": "stop[2]", "op": "removed", "from": "c"},
    ]


def test_structured_diff_list_growth_and_prefix() -> None:
    assert structured_diff({"items": [1]}, {"items": [1, {"k": 2}]}, "cfg") == [
        {"path": "cfg.items[1]", "op": "added", "to": {"k": 2}}
    ]


def test_structured_diff_type_changes() -> None:
    assert structured_diff({"x": 1}, {"x": True}) == [{"path": "x", "op": "changed", "from": 1, "to": True}]
    assert structured_diff({"x": {"a": 1}}, {"x": [1]}) == [
        {"path": "x", "op": "changed", "from": {"a": 1}, "to": [1]}
    ]
    assert structured_diff(None, {"type": "object"}) == [
        {"path": "", "op": "changed", "from": None, "to": {"type": "object"}}
    ]
    assert structured_diff(1, 1.0) == []


def test_structured_diff_equal() -> None:
    assert structured_diff({}, {}) == []
    assert structured_diff({"a": [1, {"b": None}]}, {"a": [1, {"b": None}]}) == []
    assert structured_diff(float("nan"), float("nan")) == []


# --- variables_diff -----------------------------------------------------------------------------------------


def test_variables_diff() -> None:
    a = [
        {"name": "name", "type": "string", "required": True},
        {"name": "age", "type": "string", "required": True},
        {"name": "gone", "type": "string"},
    ]
    b = [
        {"name": "age", "type": "integer", "required": False},
        {"name": "name", "type": "string", "required": True},
        {"name": "fresh", "type": "boolean"},
    ]
    assert variables_diff(a, b) == [
        {"path": "age.required", "op": "changed", "from": True, "to": False},
        {"path": "age.type", "op": "changed", "from": "string", "to": "integer"},
        {"path": "fresh", "op": "added", "to": {"name": "fresh", "type": "boolean"}},
        {"path": "gone", "op": "removed", "from": {"name": "gone", "type": "string"}},
    ]


def test_variables_diff_reordering_is_not_a_change() -> None:
    a = [{"name": "a"}, {"name": "b"}]
    assert variables_diff(a, list(reversed(a))) == []


# --- diff_versions ------------------------------------------------------------------------------------------


def test_diff_versions_identical() -> None:
    result = diff_versions(version(), version(), "p@1", "p@2")
    assert result == {
        "kindChanged": False,
        "template": "",
        "variables": [],
        "modelConfig": [],
        "responseSchema": [],
        "metadata": [],
        "identical": True,
    }


def test_diff_versions_text_changes() -> None:
    b = version(
        template="Hi {{ name }}\n",
        modelConfig={"model": "gpt-x", "params": {"temperature": 0.7}},
        responseSchema={"type": "object"},
        metadata={"owner": "team-a"},
    )
    result = diff_versions(version(), b, "p@1", "p@2")
    assert result["identical"] is False
    assert result["kindChanged"] is False
    assert "-Hello {{ name }}\n+Hi {{ name }}\n" in result["template"]
    assert result["modelConfig"] == [{"path": "params.temperature", "op": "changed", "from": 0.2, "to": 0.7}]
    assert result["responseSchema"] == [{"path": "", "op": "changed", "from": None, "to": {"type": "object"}}]
    assert result["metadata"] == [{"path": "owner", "op": "added", "to": "team-a"}]
    assert result["variables"] == []


def test_diff_versions_chat_uses_message_text() -> None:
    a = version(kind="chat", template=None, messages=[{"role": "user", "content": "Q1"}])
    b = version(kind="chat", template=None, messages=[{"role": "user", "content": "Q2"}])
    result = diff_versions(a, b, "c@1", "c@2")
    assert " [user]\n-Q1\n+Q2\n" in result["template"]
    assert result["kindChanged"] is False


def test_diff_versions_kind_change() -> None:
    b = version(kind="chat", template=None, messages=[{"role": "user", "content": "Hello {{ name }}"}])
    result = diff_versions(version(), b, "p@1", "p@2")
    assert result["kindChanged"] is True
    assert "+[user]\n" in result["template"]
    assert result["identical"] is False


def test_diff_versions_none_config_equals_empty() -> None:
    result = diff_versions(
        version(modelConfig=None, metadata=None), version(modelConfig={}, metadata={}), "a", "b"
    )
    assert result["modelConfig"] == [] and result["metadata"] == []
    assert result["identical"] is True


# --- properties ---------------------------------------------------------------------------------------------

keys = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True)
scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=4),
    max_leaves=20,
)
dict_values = st.recursive(
    scalars, lambda children: st.dictionaries(keys, children, max_size=4), max_leaves=20
)
nested_dicts = st.dictionaries(keys, dict_values, max_size=5)

_SEGMENT = re.compile(r"[^.\[\]]+")


def apply_patch(document: Any, changes: list[dict[str, Any]]) -> Any:
    """Apply structured_diff changes over dicts and scalars (paths of dot-separated keys)."""
    if any(change["path"] == "" for change in changes):
        (change,) = changes
        return copy.deepcopy(change["to"])
    result = copy.deepcopy(document)
    for change in changes:
        *parents, last = _SEGMENT.findall(change["path"])
        target = result
        for key in parents:
            target = target[key]
        if change["op"] == "removed":
            del target[last]
        else:
            target[last] = copy.deepcopy(change["to"])
    return result


@settings(max_examples=300)
@given(json_values)
def test_diff_with_itself_is_empty(value: Any) -> None:
    assert structured_diff(value, copy.deepcopy(value)) == []


@settings(max_examples=300)
@given(nested_dicts, nested_dicts)
def test_structured_diff_patch_round_trip(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert apply_patch(a, structured_diff(a, b)) == b


@settings(max_examples=200)
@given(dict_values, dict_values)
def test_structured_diff_patch_round_trip_any_root(a: Any, b: Any) -> None:
    assert structured_diff(apply_patch(a, structured_diff(a, b)), b) == []


@settings(max_examples=300)
@given(st.text(max_size=300), st.integers(min_value=0, max_value=5))
def test_unified_diff_of_equal_texts_is_empty(text: str, context: int) -> None:
    assert unified_text_diff(text, text, "a", "b", context) == ""


@settings(max_examples=300)
@given(st.text(max_size=200), st.text(max_size=200))
def test_unified_diff_nonempty_iff_different(a: str, b: str) -> None:
    assert (unified_text_diff(a, b, "a", "b") == "") == (a == b)


@given(
    st.lists(
        st.fixed_dictionaries({"name": keys, "type": st.sampled_from(["string", "integer"])}),
        max_size=5,
        unique_by=lambda v: v["name"],
    )
)
def test_variables_diff_with_itself_is_empty(variables: list[dict[str, Any]]) -> None:
    assert variables_diff(variables, copy.deepcopy(variables)) == []
    assert diff_versions(version(variables=variables), version(variables=variables), "a", "b")["identical"]
