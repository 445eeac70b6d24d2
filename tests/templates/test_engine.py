"""Tests for the sandboxed prompt template engine."""

from __future__ import annotations

import inspect
import time
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from promptops.errors import NotFound, TemplateProblem
from promptops.templates import diff as diffing
from promptops.templates import engine, limits, lint, pool
from promptops.templates.engine import (
    IncludedPrompt,
    RenderResult,
    VariableSpec,
    analyze,
    coerce_variables,
    render,
    sources_of,
)

# --- render modes -------------------------------------------------------------------------------------------


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Every async test runs twice: as configured (small templates get an in-process attempt first), and with
    every render in a worker process, which must give the same results and the same problems."""
    if inspect.iscoroutinefunction(metafunc.function):
        metafunc.parametrize("render_mode", ["inline", "worker"], indirect=True)


@pytest.fixture(autouse=True)
def render_mode(request: pytest.FixtureRequest) -> Iterator[str]:
    mode: str = getattr(request, "param", "inline")
    previous = limits.configure(limits.current(), inline_ms=0 if mode == "worker" else 20.0)
    try:
        yield mode
    finally:
        limits.configure(previous)


@pytest.fixture
def small_limits() -> Iterator[None]:
    previous = limits.configure(limits.current(), max_items=1000, max_output_chars=5000)
    try:
        yield
    finally:
        limits.configure(previous)


# --- helpers ------------------------------------------------------------------------------------------------


def spec(name: str, **kwargs: Any) -> VariableSpec:
    return VariableSpec(name=name, **kwargs)


async def render_text(
    template: str,
    values: dict[str, Any] | None = None,
    specs: Sequence[VariableSpec] = (),
    **kwargs: Any,
) -> str:
    result = await render("text", template, None, specs, values or {}, **kwargs)
    assert result.text is not None
    return result.text


async def problem_of(template: str, values: dict[str, Any] | None = None, **kwargs: Any) -> TemplateProblem:
    with pytest.raises(TemplateProblem) as info:
        await render("text", template, None, kwargs.pop("specs", ()), values or {}, **kwargs)
    return info.value


class Registry:
    """An in-memory stand-in for the prompt registry: resolves ``name``, ``name@label`` and ``name@3``."""

    def __init__(self) -> None:
        self.versions: dict[str, list[IncludedPrompt]] = {}
        self.labels: dict[tuple[str, str], int] = {}
        self.calls: list[str] = []

    def add(
        self,
        name: str,
        template: str,
        *,
        kind: str = "text",
        variables: Sequence[VariableSpec] = (),
        labels: Sequence[str] = (),
    ) -> IncludedPrompt:
        versions = self.versions.setdefault(name, [])
        number = len(versions) + 1
        prompt = IncludedPrompt(
            ref="",
            prompt_id=f"prm_{name}",
            prompt_name=name,
            version_id=f"ver_{name}_{number}",
            version=number,
            kind=kind,
            template=template,
            variables=tuple(variables),
        )
        versions.append(prompt)
        for label in labels:
            self.labels[(name, label)] = number
        return prompt

    async def resolve(self, ref: str) -> IncludedPrompt:
        self.calls.append(ref)
        name, _, selector = ref.partition("@")
        versions = self.versions.get(name)
        if not versions:
            raise NotFound(f"Prompt {name!r} not found")
        if not selector or selector == "latest":
            number = len(versions)
        elif selector.isdigit():
            number = int(selector)
        else:
            if (name, selector) not in self.labels:
                raise NotFound(f"Label {selector!r} not found on {name!r}")
            number = self.labels[(name, selector)]
        if not 1 <= number <= len(versions):
            raise NotFound(f"Version {number} of {name!r} not found")
        found = versions[number - 1]
        return IncludedPrompt(
            ref=ref,
            prompt_id=found.prompt_id,
            prompt_name=found.prompt_name,
            version_id=found.version_id,
            version=found.version,
            kind=found.kind,
            template=found.template,
            variables=found.variables,
        )


@pytest.fixture
def registry() -> Registry:
    return Registry()


# --- variable specs -----------------------------------------------------------------------------------------


def test_variable_spec_round_trip() -> None:
    original = {
        "name": "tone",
        "type": "string",
        "required": False,
        "default": "warm",
        "description": "Voice",
    }
    parsed = VariableSpec.from_dict(original)
    assert parsed == VariableSpec("tone", "string", False, "warm", "Voice")
    assert parsed.to_dict() == original


def test_variable_spec_defaults_and_nulls() -> None:
    parsed = VariableSpec.from_dict({"name": "x", "type": None, "required": None, "description": None})
    assert parsed.to_dict() == {
        "name": "x",
        "type": "string",
        "required": True,
        "default": None,
        "description": "",
    }


@pytest.mark.parametrize(
    "data",
    [
        {"name": "1abc"},
        {"name": "has-dash"},
        {"name": "a" * 65},
        {"name": ""},
        {"name": "none"},
        {"name": "self"},
        {"type": "string"},
        {"name": "x", "type": "float"},
        {"name": "x", "required": "yes"},
        {"name": "x", "requried": True},
        {"name": "x", "type": "integer", "default": "three"},
        {"name": "x", "type": "integer", "default": True},
        "not a mapping",
    ],
)
def test_variable_spec_rejects_invalid(data: Any) -> None:
    with pytest.raises(TemplateProblem) as info:
        VariableSpec.from_dict(data)
    assert info.value.code == "invalid_variable_spec"
    assert info.value.status == 422


def test_variable_spec_accepts_64_char_name() -> None:
    assert VariableSpec.from_dict({"name": "a" * 64}).name == "a" * 64


# --- coerce_variables ---------------------------------------------------------------------------------------


def test_coerce_applies_defaults_and_passes_through_undeclared() -> None:
    specs = [spec("name"), spec("tone", required=False, default="warm"), spec("extra", required=False)]
    values = coerce_variables(specs, {"name": "Ann", "other": [1, 2]})
    assert values == {"name": "Ann", "tone": "warm", "extra": None, "other": [1, 2]}


def test_coerce_reports_all_missing() -> None:
    specs = [spec("alpha"), spec("beta"), spec("gamma", required=False), spec("delta", default="d")]
    with pytest.raises(TemplateProblem) as info:
        coerce_variables(specs, {"gamma": None})
    problem = info.value
    assert problem.code == "missing_variables"
    assert problem.extra["missing"] == ["alpha", "beta"]
    assert "alpha" in problem.detail and "beta" in problem.detail
    assert problem.to_problem()["missing"] == ["alpha", "beta"]


@pytest.mark.parametrize(
    ("type_", "good", "bad"),
    [
        ("string", ["", "x"], [1, True, ["x"]]),
        ("number", [1, 2.5, -3], [True, "1", [1]]),
        ("integer", [0, 7], [1.5, False, "3"]),
        ("boolean", [True, False], [0, 1, "true"]),
        ("array", [[], [1, "a"], ("t",)], ["a", {"a": 1}]),
        ("object", [{}, {"a": 1}], [[], "x"]),
        ("any", [1, "x", [1], {"a": None}, True], []),
    ],
)
def test_coerce_type_checks(type_: str, good: list[Any], bad: list[Any]) -> None:
    specs = [spec("v", type=type_)]
    for value in good:
        assert coerce_variables(specs, {"v": value})["v"] == value
    for value in bad:
        with pytest.raises(TemplateProblem) as info:
            coerce_variables(specs, {"v": value})
        assert info.value.code == "invalid_variable_type"
        assert info.value.extra["errors"][0]["name"] == "v"
        assert info.value.extra["errors"][0]["expected"] == type_


def test_coerce_reports_all_type_errors() -> None:
    specs = [spec("age", type="integer"), spec("tags", type="array"), spec("ok")]
    with pytest.raises(TemplateProblem) as info:
        coerce_variables(specs, {"age": "ten", "tags": "a,b", "ok": "fine"})
    problem = info.value
    assert problem.code == "invalid_variable_type"
    assert problem.extra["errors"] == [
        {"name": "age", "expected": "integer", "got": "string"},
        {"name": "tags", "expected": "array", "got": "string"},
    ]
    assert "age" in problem.detail and "tags" in problem.detail


def test_coerce_rejects_duplicate_declarations() -> None:
    with pytest.raises(TemplateProblem) as info:
        coerce_variables([spec("a"), spec("a")], {"a": "x"})
    assert info.value.code == "invalid_variable_spec"


# --- sources_of and analyze ---------------------------------------------------------------------------------


def test_sources_of() -> None:
    assert sources_of("text", "hi {{ x }}", None) == ["hi {{ x }}"]
    assert sources_of("text", None, None) == [""]
    messages = [{"role": "system", "content": "a"}, {"role": "user", "content": "{{ b }}"}]
    assert sources_of("chat", None, messages) == ["a", "{{ b }}"]
    assert sources_of("chat", None, None) == []


def test_sources_of_rejects_bad_input() -> None:
    with pytest.raises(TemplateProblem) as info:
        sources_of("image", "x", None)
    assert info.value.code == "invalid_kind"
    with pytest.raises(TemplateProblem) as info:
        sources_of("chat", None, [{"role": "user"}])
    assert info.value.code == "invalid_messages"
    assert info.value.extra["messageIndex"] == 0


def test_analyze_used_undeclared_unused() -> None:
    template = (
        "Hi {{ name }}! {% for item in items %}{{ item.title }} {{ loop.index }}{% endfor %}"
        "{% set greeting = 'yo' %}{{ greeting }} {{ range(3)|join(',') }}"
        "{% macro shout(text) %}{{ text|upper }}{% endmacro %}{{ shout(topic) }}"
    )
    analysis = analyze("text", template, None, [spec("name"), spec("unused_var")])
    assert analysis.used == ("items", "name", "topic")
    assert analysis.undeclared == ("items", "topic")
    assert analysis.unused == ("unused_var",)
    assert analysis.includes == ()


def test_analyze_loop_and_set_variables_not_used() -> None:
    analysis = analyze("text", "{% for x in xs %}{% set y = x %}{{ y }}{% endfor %}", None, [])
    assert analysis.used == ("xs",)


def test_analyze_chat_and_includes() -> None:
    messages = [
        {"role": "system", "content": '{% include "shared/tone@production" %} {{ a }}'},
        {"role": "user", "content": '{% include "shared/tone@production" %}{% include "footer@3" %}{{ b }}'},
    ]
    analysis = analyze("chat", None, messages, [spec("a")])
    assert analysis.used == ("a", "b")
    assert analysis.undeclared == ("b",)
    assert analysis.includes == ("shared/tone@production", "footer@3")


def test_analyze_syntax_error_has_line() -> None:
    with pytest.raises(TemplateProblem) as info:
        analyze("text", "line one\nline two\n{% if x %}\nnever closed", None, [])
    problem = info.value
    assert problem.code == "template_syntax_error"
    assert problem.extra["line"] >= 3
    assert f"line {problem.extra['line']}" in problem.detail
    assert "messageIndex" not in problem.extra


def test_analyze_syntax_error_in_chat_message() -> None:
    messages = [{"role": "system", "content": "fine"}, {"role": "user", "content": "ok\n{{ broken }"}]
    with pytest.raises(TemplateProblem) as info:
        analyze("chat", None, messages, [])
    assert info.value.code == "template_syntax_error"
    assert info.value.extra["messageIndex"] == 1
    assert info.value.extra["line"] == 2
    assert "message 1" in info.value.detail


def test_analyze_unknown_filter_is_syntax_error() -> None:
    with pytest.raises(TemplateProblem) as info:
        analyze("text", "{{ x|no_such_filter }}", None, [])
    assert info.value.code == "template_syntax_error"
    assert "no_such_filter" in info.value.detail


def test_analyze_dynamic_include() -> None:
    with pytest.raises(TemplateProblem) as info:
        analyze("text", "a\n{% include which %}", None, [])
    assert info.value.code == "dynamic_include"
    assert info.value.extra["line"] == 2


# --- rendering ----------------------------------------------------------------------------------------------


async def test_render_text() -> None:
    assert await render_text("Hello {{ name }}!", {"name": "Ann"}) == "Hello Ann!"


async def test_render_mustache_style() -> None:
    assert await render_text("Hi {{name}}, re: {{topic}}", {"name": "Bo", "topic": "tax"}) == "Hi Bo, re: tax"


async def test_render_keeps_trailing_newline_and_no_escaping() -> None:
    assert await render_text("<b>{{ x }}</b>\n", {"x": "a & <c>"}) == "<b>a & <c></b>\n"


async def test_render_chat() -> None:
    messages = [
        {"role": "system", "content": "You are {{ persona }}."},
        {"role": "user", "content": "{{ question }}"},
    ]
    result = await render("chat", None, messages, [spec("persona", default="helpful")], {"question": "Why?"})
    assert result == RenderResult(
        text=None,
        messages=[
            {"role": "system", "content": "You are helpful."},
            {"role": "user", "content": "Why?"},
        ],
        included=(),
    )


async def test_render_defaults_and_optional_none() -> None:
    specs = [spec("name", default="friend"), spec("extra", required=False)]
    template = "Hi {{ name }}{% if extra %} ({{ extra }}){% endif %}.{{ extra }}"
    assert await render_text(template, {}, specs) == "Hi friend."
    assert await render_text(template, {"extra": "x"}, specs) == "Hi friend (x).x"


async def test_render_loops_and_filters() -> None:
    template = (
        "{% for i in items %}{{ loop.index }}.{{ i|upper }}{% if not loop.last %}, {% endif %}{% endfor %}"
    )
    assert await render_text(template, {"items": ["a", "b"]}) == "1.A, 2.B"
    assert await render_text("{{ xs|join('-') }} {{ '%s=%d'|format('n', 3) }}", {"xs": [1, 2]}) == "1-2 n=3"


async def test_render_missing_variables_names_all() -> None:
    problem = await problem_of(
        "{{ a }} {{ b }} {{ c }}", {"b": "given"}, specs=[spec("a"), spec("declared_unused")]
    )
    assert problem.code == "missing_variables"
    assert set(problem.extra["missing"]) == {"a", "declared_unused", "c"}
    for name in ("a", "declared_unused", "c"):
        assert name in problem.detail


async def test_render_undeclared_but_supplied_is_fine() -> None:
    assert await render_text("{{ free }}", {"free": 3}) == "3"


async def test_render_type_error() -> None:
    problem = await problem_of("{{ n }}", {"n": "five"}, specs=[spec("n", type="integer")])
    assert problem.code == "invalid_variable_type"
    assert "n" in problem.detail


async def test_render_runtime_error_is_problem() -> None:
    problem = await problem_of("ok\n{{ 1 / 0 }}")
    assert problem.code == "template_render_error"
    assert problem.extra["line"] == 2
    problem = await problem_of("{{ user.nmae }}", {"user": {"name": "x"}})
    assert problem.code == "template_render_error"
    assert "nmae" in problem.detail


async def test_render_chat_runtime_error_has_message_index() -> None:
    messages = [{"role": "system", "content": "fine"}, {"role": "user", "content": "{{ 1 // 0 }}"}]
    with pytest.raises(TemplateProblem) as info:
        await render("chat", None, messages, [], {})
    assert info.value.code == "template_render_error"
    assert info.value.extra["messageIndex"] == 1


async def test_render_syntax_error() -> None:
    problem = await problem_of("a\nb\n{{ x }")
    assert problem.code == "template_syntax_error"
    assert problem.extra["line"] == 3
    assert "line 3" in problem.detail


async def test_render_deep_macro_recursion_is_problem() -> None:
    problem = await problem_of("{% macro r() %}{{ r() }}{% endmacro %}{{ r() }}")
    assert problem.code in ("template_render_error", "render_budget_exceeded")


# --- includes -----------------------------------------------------------------------------------------------


async def test_include_by_label_version_and_name(registry: Registry) -> None:
    registry.add("tone", "v1 tone")
    registry.add("tone", "Be {{ mood }}.", labels=["production"])
    registry.add("tone", "v3 tone")
    result = await render(
        "text",
        '{% include "tone@production" %}|{% include "tone@1" %}|{% include "tone" %}',
        None,
        [],
        {"mood": "kind"},
        registry.resolve,
    )
    assert result.text == "Be kind.|v1 tone|v3 tone"
    assert [(p.ref, p.version) for p in result.included] == [
        ("tone@production", 2),
        ("tone@1", 1),
        ("tone", 3),
    ]


async def test_include_nested_records_first_use_order(registry: Registry) -> None:
    registry.add("inner", "[inner {{ x }}]")
    registry.add("middle", '<middle {% include "inner" %}>')
    registry.add("other", "(other)")
    result = await render(
        "text",
        '{% include "middle" %}{% include "other" %}{% include "inner" %}',
        None,
        [],
        {"x": 1},
        registry.resolve,
    )
    assert result.text == "<middle [inner 1]>(other)[inner 1]"
    assert [p.prompt_name for p in result.included] == ["middle", "inner", "other"]
    # Each reference is resolved once per render even when used several times.
    assert sorted(registry.calls) == ["inner", "middle", "other"]


async def test_include_in_chat_message(registry: Registry) -> None:
    registry.add("persona", "a pirate")
    messages = [{"role": "system", "content": 'You are {% include "persona" %}.'}]
    result = await render("chat", None, messages, [], {}, registry.resolve)
    assert result.messages == [{"role": "system", "content": "You are a pirate."}]
    assert result.included[0].prompt_name == "persona"


async def test_include_sees_loop_variables(registry: Registry) -> None:
    registry.add("row", "<{{ item }}>")
    template = '{% for item in items %}{% include "row" %}{% endfor %}'
    result = await render("text", template, None, [], {"items": [1, 2]}, registry.resolve)
    assert result.text == "<1><2>"


async def test_included_required_variables_enforced(registry: Registry) -> None:
    registry.add("sig", "-- {{ signer }}", variables=[spec("signer"), spec("title", default="CEO")])
    with pytest.raises(TemplateProblem) as info:
        await render("text", '{% include "sig" %}', None, [], {}, registry.resolve)
    assert info.value.code == "missing_variables"
    assert info.value.extra["missing"] == ["signer"]
    result = await render(
        "text", '{% include "sig" %} {{ title }}', None, [], {"signer": "Ann"}, registry.resolve
    )
    assert result.text == "-- Ann CEO"


async def test_included_undeclared_variables_reported_missing(registry: Registry) -> None:
    registry.add("part", "{{ hidden }}")
    with pytest.raises(TemplateProblem) as info:
        await render("text", '{{ shown }}{% include "part" %}', None, [], {}, registry.resolve)
    assert info.value.code == "missing_variables"
    assert info.value.extra["missing"] == ["hidden", "shown"]


async def test_include_cycle(registry: Registry) -> None:
    registry.add("a", 'A{% include "b" %}')
    registry.add("b", 'B{% include "a" %}')
    with pytest.raises(TemplateProblem) as info:
        await render("text", registry.versions["a"][0].template, None, [], {}, registry.resolve)
    problem = info.value
    assert problem.code == "include_cycle"
    assert problem.extra["chain"] == ["b", "a", "b"]
    assert "b -> a -> b" in problem.detail


async def test_include_self_cycle_across_versions(registry: Registry) -> None:
    registry.add("loop", "v1")
    registry.add("loop", '{% include "loop@1" %}{% include "loop@2" %}')
    with pytest.raises(TemplateProblem) as info:
        await render("text", '{% include "loop@2" %}', None, [], {}, registry.resolve)
    assert info.value.code == "include_cycle"


async def test_include_depth_limit(registry: Registry) -> None:
    for level in range(1, 8):
        registry.add(f"p{level}", f'{level}{{% include "p{level + 1}" %}}' if level < 7 else "7")
    ok = await render("text", '{% include "p1" %}', None, [], {}, registry.resolve, max_depth=7)
    assert ok.text == "1234567"
    with pytest.raises(TemplateProblem) as info:
        await render("text", '{% include "p1" %}', None, [], {}, registry.resolve, max_depth=5)
    assert info.value.code == "include_depth_exceeded"
    assert info.value.extra["chain"][:2] == ["p1", "p2"]


async def test_include_fan_out_is_resolved_efficiently(registry: Registry) -> None:
    # Every level includes the next one twice; without memoisation this would walk 2**depth paths.
    registry.add("leaf", "x")
    previous = "leaf"
    for level in range(5):
        registry.add(f"n{level}", f'{{% include "{previous}" %}}{{% include "{previous}" %}}')
        previous = f"n{level}"
    result = await render(
        "text", f'{{% include "{previous}" %}}', None, [], {}, registry.resolve, max_depth=6
    )
    assert result.text == "x" * 32
    assert len(registry.calls) == 6


async def test_chat_include_refused(registry: Registry) -> None:
    registry.add("convo", "", kind="chat")
    with pytest.raises(TemplateProblem) as info:
        await render("text", '{% include "convo" %}', None, [], {}, registry.resolve)
    assert info.value.code == "include_not_text"


async def test_dynamic_include_refused(registry: Registry) -> None:
    registry.add("x", "X")
    for template in ("{% include name %}", "{% include ['x', name] %}", "{% include 'x' ~ suffix %}"):
        with pytest.raises(TemplateProblem) as info:
            await render("text", template, None, [], {"name": "x", "suffix": ""}, registry.resolve)
        assert info.value.code == "dynamic_include"


async def test_dynamic_include_in_included_prompt_refused(registry: Registry) -> None:
    registry.add("bad", "{% include target %}")
    with pytest.raises(TemplateProblem) as info:
        await render("text", '{% include "bad" %}', None, [], {"target": "x"}, registry.resolve)
    assert info.value.code == "dynamic_include"
    assert info.value.extra["include"] == "bad"


async def test_include_without_resolver() -> None:
    problem = await problem_of('{% include "anything" %}')
    assert problem.code == "include_unavailable"


async def test_include_not_found_propagates(registry: Registry) -> None:
    with pytest.raises(NotFound):
        await render("text", '{% include "ghost@production" %}', None, [], {}, registry.resolve)


async def test_include_syntax_error_names_include(registry: Registry) -> None:
    registry.add("broken", "ok\n{% if %}")
    with pytest.raises(TemplateProblem) as info:
        await render("text", '{% include "broken" %}', None, [], {}, registry.resolve)
    assert info.value.code == "template_syntax_error"
    assert info.value.extra["include"] == "broken"
    assert info.value.extra["line"] == 2


async def test_include_runtime_error_names_include(registry: Registry) -> None:
    registry.add("divide", "a\n{{ 1 / 0 }}")
    with pytest.raises(TemplateProblem) as info:
        await render("text", '{% include "divide" %}', None, [], {}, registry.resolve)
    assert info.value.code == "template_render_error"
    assert info.value.extra["include"] == "divide"
    assert info.value.extra["line"] == 2


async def test_import_macros_from_registry(registry: Registry) -> None:
    registry.add("macros", "{% macro bullet(text) %}- {{ text }}{% endmacro %}")
    template = '{% from "macros" import bullet %}{{ bullet("one") }}'
    result = await render("text", template, None, [], {}, registry.resolve)
    assert result.text == "- one"


# --- sandbox and resource limits ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "template",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ joiner.__init__.__globals__.os }}",
        "{{ x.__class__ }}",
        "{{ dict.__subclasses__() }}",
        "{{ ''|attr('__class__') }}",
        "{{ '{0.__class__}'.format(x) }}",
        "{{ namespace.__init__ }}",
        "{% if ''.__class__.__base__.__subclasses__() %}yes{% endif %}",
        "{{ items.append(1) }}",
        "{{ self.__dict__ }}",
    ],
)
async def test_sandbox_blocks_internals(template: str) -> None:
    problem = await problem_of(template, {"x": "s", "items": []})
    assert problem.code == "template_security_error"
    assert problem.status == 422


async def test_output_limit_stops_nested_loops() -> None:
    template = "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}"
    problem = await problem_of(template)
    assert problem.code == "render_output_too_large"
    problem = await problem_of(template, max_output_chars=50)
    assert problem.code == "render_output_too_large"
    assert problem.extra["limit"] == 50


async def test_output_limit_exact_boundary() -> None:
    assert await render_text("{{ 'x' * 10 }}", max_output_chars=10) == "x" * 10
    problem = await problem_of("{{ 'x' * 10 }}!", max_output_chars=10)
    assert problem.code == "render_output_too_large"


async def test_output_limit_counts_all_chat_messages() -> None:
    messages = [{"role": "user", "content": "{{ 'x' * 6 }}"}, {"role": "user", "content": "{{ 'y' * 6 }}"}]
    with pytest.raises(TemplateProblem) as info:
        await render("chat", None, messages, [], {}, max_output_chars=10)
    assert info.value.code == "render_output_too_large"


@pytest.mark.parametrize(
    "template",
    [
        "{{ 'a' * 1000000000 }}",
        "{{ [0] * 1000000000 }}",
        "{{ 'x'|center(1000000000) }}",
        "{{ 'x'.ljust(1000000000) }}",
        "{{ '%999999999d' % 1 }}",
        "{{ '{:>999999999}'.format(1) }}",
        "{{ 'ab'|replace('', 'x' * 900000) }}",
        "{{ range(100000)|join('x' * 100) }}",
        "{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
        "{% macro d(s, n) %}{% if n %}{{ d(s ~ s, n - 1) }}{% endif %}{% endmacro %}{{ d('x', 40) }}",
        "{{ 9 ** 99999999 }}",
    ],
)
async def test_amplification_refused(template: str) -> None:
    problem = await problem_of(template)
    assert problem.code == "render_output_too_large"


@pytest.mark.parametrize(
    "template",
    [
        "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
        "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(40) }}",
    ],
)
async def test_work_budget_stops_silent_loops(template: str) -> None:
    problem = await problem_of(template)
    assert problem.code == "render_budget_exceeded"


async def test_lipsum_is_not_available() -> None:
    problem = await problem_of("{{ lipsum(1000000) }}")
    assert problem.code == "missing_variables"


def test_public_names_exported() -> None:
    import promptops.templates as package

    for name in engine.__all__:
        assert getattr(package, name) is getattr(engine, name)


# --- limits checked before allocation -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "construct"),
    [
        ("{{ range(10)|slice(2000)|list|length }}", "slice(2000)"),
        ("{{ range(10)|batch(2000)|list|length }}", "batch(2000)"),
        ("{{ range(2000)|list|length }}", "range(2000)"),
        ("{{ [0] * 2000 }}", "repeating a list (* 2000)"),
        ("{{ 'x' * 6000 }}", "repeating a text (* 6000)"),
        ("{{ ('x' * 2000)|map('upper')|list|length }}", "|list"),
        ("{{ ('x' * 2000)|map('upper')|join|length }}", "|join"),
        ("{{ ('x' * 2000)|map('upper')|sort|length }}", "|sort"),
        ("{{ ''.join(('x' * 2000)|map('upper')) }}", "join()"),
        ("{{ 'x'|center(6000) }}", "center(6000)"),
        ("{{ 'x'.rjust(6000) }}", "str.rjust(6000)"),
        ("{{ ('x\n' * 100)|indent(60) }}", "indent(60)"),
        ("{{ ('x' * 1000)|wordwrap(1, wrapstring='yyyy') }}", "wordwrap(1)"),
        ("{{ range(900)|join('xxxxxx') }}", "join"),
        ("{{ ('x' * 100).translate({120: 'y' * 100}) }}", "str.translate()"),
        ("{{ '%6000d' % 1 }}", "a % format width"),
        ("{{ '{:>6000}'.format(1) }}", "a format width"),
        ("{% set a = [0] * 100 %}{% set b = [a] * 100 %}{{ b }}", "printing a value"),
        ("{% set a = [0] * 100 %}{% set b = [a] * 100 %}{{ b|string }}", "|string"),
        ("{% set a = [0] * 100 %}{% set b = [a] * 100 %}{{ '%s' % (b,) }}", "% format"),
        ("{% set a = [0] * 100 %}{% set b = [a] * 100 %}{{ '{}'.format(b) }}", "str.format()"),
        ("{% set a = [0] * 100 %}{% set b = [a] * 100 %}{{ [b]|join }}", "join"),
        ("{% set a = [0] * 100 %}{% set b = [a] * 100 %}{{ 'x' ~ b }}", "~"),
        ("{{ range(900)|batch(1)|sum(start=[0] * 500)|length }}", "sum"),
        ("{{ 'x'|center(6000) }}{{ 'x'|indent(6000, true) }}", "center(6000)"),  # not folded at compile time
    ],
)
async def test_sizes_are_checked_from_the_arguments(
    small_limits: None, template: str, construct: str
) -> None:
    """Each refusal names the construct and the limit (1000 items, 5000 characters here)."""
    started = time.perf_counter()
    problem = await problem_of(template)
    assert time.perf_counter() - started < 5
    assert problem.code == "render_output_too_large", problem.detail
    assert problem.extra["construct"] == construct
    assert str(problem.extra["limit"]) in problem.detail
    assert problem.extra["limit"] in (1000, 5000)


async def test_slice_of_a_huge_count_is_refused_before_slicing() -> None:
    # The probe: this grew the server to 18.8 GB before the size check ran on the finished list.
    started = time.perf_counter()
    problem = await problem_of("{{ range(10)|slice(10**9)|list|length }}")
    assert time.perf_counter() - started < 2
    assert problem.code == "render_output_too_large"
    assert problem.detail == "slice(1000000000) would make 1000000000 items, more than the limit of 100000"
    assert problem.extra == {"limit": 100_000, "construct": "slice(1000000000)"}


async def test_values_up_to_the_limits_still_render(small_limits: None) -> None:
    assert await render_text("{{ range(10)|slice(1000)|list|length }}") == "1000"
    assert await render_text("{{ range(1000)|batch(7)|list|length }}") == "143"
    assert await render_text("{{ ('x' * 1000)|map('upper')|list|length }}") == "1000"
    assert await render_text("{{ 'x' * 5000 }}") == "x" * 5000
    assert await render_text("{% set a = [0] * 10 %}{{ [a] * 10 }}") == str([[0] * 10] * 10)


async def test_comparing_nested_values_is_charged() -> None:
    template = (
        "{% set a = [0] * 1000 %}{% set a2 = [0] * 1000 %}{% set b = [a] * 1000 %}{% set b2 = [a2] * 1000 %}"
        "{% set c = [b] * 1000 %}{% set c2 = [b2] * 1000 %}{{ c == c2 }}"
    )
    started = time.perf_counter()
    problem = await problem_of(template)
    assert problem.code == "render_budget_exceeded"
    assert time.perf_counter() - started < 5


# --- where rendering happens ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "simple"),
    [
        ("Hello {{ name }}", True),
        ("{% for x in items %}{{ loop.index }}. {{ x|trim }}{% endfor %}", True),
        ("{% if a in ['x', 'y'] %}{{ b|default('-')|upper }}{% endif %}", True),
        ("{{ x.strip() }}{% for i in range(3) %}{{ loop.cycle('a', 'b') }}{% endfor %}", True),
        ("{% macro m(v) %}<{{ v }}>{% endmacro %}{{ m(x) }}", True),
        ("{% include 'other' %}", True),
        ("{{ [x, x] }}", False),
        ("{{ x * 3 }}", False),
        ("{{ '%s' % x }}", False),
        ("{{ items|batch(2)|list }}", False),
        ("{{ items|map('upper')|list }}", False),
        ("{{ namespace(a=1) }}", False),
        ("{{ dict(a=x) }}", False),
        ("{{ x.__class__ }}", True),  # refused by the sandbox wherever it runs
    ],
)
def test_only_input_bound_templates_get_an_in_process_attempt(template: str, simple: bool) -> None:
    parsed = engine._compile_source(engine._PromptEnvironment(), template, engine._root_origin("text", 0))
    assert parsed.simple is simple


async def test_in_process_attempt_hands_over_to_a_worker(render_mode: str) -> None:
    # A simple template whose loop is too long for the in-process slice finishes in a worker, with the same
    # output as if it had run here.
    items = list(range(300_000))
    output = await render_text("{% for i in items %}{% endfor %}{{ items|length }}", {"items": items})
    assert output == "300000"


async def test_worker_renders_includes_and_reports_them(registry: Registry) -> None:
    registry.add("shared/tone", "Be {{ tone }}.", variables=[spec("tone")])
    template = '{% include "shared/tone" %}{{ [x] * 2 }}'  # not input-bound: always a worker
    result = await render(
        "text", template, None, [spec("x", type="integer")], {"x": 1, "tone": "kind"}, registry.resolve
    )
    assert result.text == "Be kind.[1, 1]"
    assert [p.prompt_name for p in result.included] == ["shared/tone"]


async def test_worker_problems_keep_their_location(registry: Registry) -> None:
    registry.add("divide", "a\n{{ [1] * 2 }}{{ 1 / 0 }}")
    with pytest.raises(TemplateProblem) as info:
        await render("text", '{% include "divide" %}', None, [], {}, registry.resolve)
    assert info.value.code == "template_render_error"
    assert info.value.extra["include"] == "divide" and info.value.extra["line"] == 2


def test_parse_cost_estimate() -> None:
    assert not engine.is_costly(["Hello {{ name }}, " * 100])
    assert not engine.is_costly(["plain text " * 50_000])
    assert engine.is_costly(["{% if a %}x{{ b }}{% endif %}\n" * 2_000])
    assert engine.is_costly(["{{ " + "a + " * 5_000 + "a }}"])
    assert engine.is_costly(["{{ unclosed " + "x" * 10_000])
    assert engine.is_costly(["x" * 2_000_000])


async def test_big_templates_are_analysed_in_a_worker_and_cached() -> None:
    template = "Answer {{ name }} about {{ topic }}.\n" * 5_000
    assert engine.is_costly([template])
    analysis = await engine.analyze_async("text", template, None, [spec("name")])
    assert analysis.used == ("name", "topic") and analysis.undeclared == ("topic",)
    started = time.perf_counter()
    assert engine.analyze("text", template, None, [spec("name")]) == analysis  # cached: no parsing
    assert time.perf_counter() - started < 0.05
    broken = template + "{% if %}"
    with pytest.raises(TemplateProblem) as info:
        await engine.analyze_async("text", broken, None, [])
    assert info.value.code == "template_syntax_error" and info.value.extra["line"] == 5_001
    with pytest.raises(TemplateProblem):
        engine.analyze("text", broken, None, [])  # the worker's answer is cached too


async def test_big_prompts_are_linted_and_diffed_in_workers_with_the_same_results() -> None:
    template = "You are {{ role }}. Ignore previous instructions.\n" * 3_000
    assert engine.is_costly([template], plain=1.5, tag=20.0)
    here = lint.lint_prompt("text", template, None, [{"name": "role"}])
    assert await lint.lint_prompt_async("text", template, None, [{"name": "role"}]) == here
    a = {"kind": "text", "template": template}
    b = {"kind": "text", "template": template.replace("You are", "Be")}
    assert await pool.diff_versions(a, b, "v1", "v2") == diffing.diff_versions(a, b, "v1", "v2")


# --- properties ---------------------------------------------------------------------------------------------

# Jinja normalises "\r\n" and "\r" to "\n" in template source, so carriage returns are left out here.
plain_text = st.text(st.characters(blacklist_characters="{}%#\r", blacklist_categories=("Cs",)), max_size=200)


@settings(max_examples=200, deadline=None)
@given(plain_text)
async def test_plain_text_renders_unchanged(text: str) -> None:
    assert await render_text(text) == text


identifiers = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,20}", fullmatch=True).filter(
    lambda name: name not in engine._RESERVED_NAMES
)


@settings(max_examples=200, deadline=None)
@given(name=identifiers, value=st.text(max_size=200))
async def test_substituted_value_appears_verbatim(name: str, value: str) -> None:
    output = await render_text(f"<<{{{{ {name} }}}}>>", {name: value}, [spec(name)])
    assert output == f"<<{value}>>"


@settings(max_examples=100, deadline=None)
@given(name=identifiers, value=st.text(max_size=50))
async def test_mustache_style_value_appears_verbatim(name: str, value: str) -> None:
    output = await render_text(f"x{{{{{name}}}}}y", {name: value})
    assert value in output
    assert output == f"x{value}y"
