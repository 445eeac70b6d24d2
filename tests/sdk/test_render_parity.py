"""Render parity: every template feature of docs/api.md section 4, rendered by the server's render endpoint and
by the SDK's local renderer, gives the same text, messages or error (code and its fields)."""

from __future__ import annotations

from typing import Any

import httpx
from promptops_sdk import PromptOps, TemplateError

from tests.sdk.support import create_prompt
from tests.support.app import ADMIN_KEY
from tests.support.server_process import ServerProcess

V = dict[str, Any]


def text(name: str, template: str, variables: list[V] | None = None, **extra: Any) -> V:
    return {"name": name, "template": template, "variables": variables or [], **extra}


# prompts that others include (created first; some include each other)
LIBRARY: list[V] = [
    text("lib/tone", "Be kind, {{ agent }}.", [{"name": "agent", "default": "Sam"}], labels=["production"]),
    text("lib/sig", "-- {{ team }}", [{"name": "team"}]),
    text("lib/macros", "{% macro shout(x) %}{{ x | upper }}!{% endmacro %}"),
    text("lib/base", "<doc>{% block body %}default{% endblock %}</doc>"),
    text("lib/outer", '[{% include "lib/inner" %}]'),
    text("lib/inner", '({% include "lib/tone@production" %})'),
    text("lib/cycle-a", '{% include "lib/cycle-b" %}'),
    text("lib/cycle-b", '{% include "lib/cycle-a" %}'),
    *[text(f"lib/deep{i}", f'{{% include "lib/deep{i + 1}" %}}') for i in range(6)],
    text("lib/deep6", "bottom"),
    {"name": "lib/chat", "kind": "chat", "messages": [{"role": "system", "content": "hi"}]},
]

# (prompt, values): each is rendered by both
CASES: list[tuple[V, V]] = [
    (text("p/subst", "Hello {{ name }} and {{name}}!", [{"name": "name"}]), {"name": "Ada"}),
    (
        text(
            "p/filters",
            "{{ name | upper }} {{ items | join(', ') }} {{ n | round(1) }} {{ s | title }} {{ '%05d' % k }} "
            "{{ items | length }} {{ s | replace('a', 'o') }} {{ items | first }} {{ 'x' * 3 }}",
            [
                {"name": "name"},
                {"name": "items", "type": "array"},
                {"name": "n", "type": "number"},
                {"name": "s"},
                {"name": "k", "type": "integer"},
            ],
        ),
        {"name": "ada", "items": ["a", "b", "c"], "n": 3.14159, "s": "banana split", "k": 42},
    ),
    (
        text(
            "p/loops",
            "{% for i in items %}{{ loop.index }}:{{ i }}{% if not loop.last %}, {% endif %}{% endfor %}"
            "{% for k, v in obj | dictsort %} {{ k }}={{ v }}{% endfor %}{% for i in range(3) %}{{ i }}{% endfor %}",
            [{"name": "items", "type": "array"}, {"name": "obj", "type": "object"}],
        ),
        {"items": ["x", "y"], "obj": {"b": 2, "a": 1}},
    ),
    (
        text(
            "p/set-macro-comment-ws",
            "{% set greeting = 'Hi' %}{# a comment #}{% macro b(x) %}[{{ x }}]{% endmacro %}{{ greeting }} "
            "{{ b(name) }}\n{%- if flag %} yes{% endif -%}\n  end\n",
            [{"name": "name"}, {"name": "flag", "type": "boolean"}],
        ),
        {"name": "Ada", "flag": True},
    ),
    (text("p/trailing-newline", "Line\n\n"), {}),
    (
        text(
            "p/optional-null",
            "A{{ title }}B{% if title %}T{% else %}F{% endif %}{{ none_value }}",
            [{"name": "title", "required": False}],
        ),
        {"none_value": None},
    ),
    (
        text(
            "p/defaults",
            "{{ a }} {{ b }} {{ c }}",
            [
                {"name": "a", "default": "da"},
                {"name": "b", "type": "integer", "default": 7},
                {"name": "c", "default": "dc"},
            ],
        ),
        {"b": None, "c": "given"},
    ),
    (
        text(
            "p/types",
            "{{ s }} {{ n }} {{ i }} {{ b }} {{ arr }} {{ obj['k'] }} {{ anything }}",
            [
                {"name": "s"},
                {"name": "n", "type": "number"},
                {"name": "i", "type": "integer"},
                {"name": "b", "type": "boolean"},
                {"name": "arr", "type": "array"},
                {"name": "obj", "type": "object"},
                {"name": "anything", "type": "any"},
            ],
        ),
        {"s": "x", "n": 2, "i": 3, "b": False, "arr": [1, "two"], "obj": {"k": "v"}, "anything": {"z": [1]}},
    ),
    (
        text("p/extra-values", "{{ declared }} {{ extra }}", [{"name": "declared"}]),
        {"declared": "d", "extra": 5},
    ),
    (
        {
            "name": "p/chat",
            "kind": "chat",
            "messages": [
                {"role": "system", "content": "You help with {{ product }}."},
                {"role": "user", "content": "{% for q in questions %}- {{ q }}\n{% endfor %}"},
            ],
            "variables": [{"name": "product"}, {"name": "questions", "type": "array"}],
        },
        {"product": "Acme", "questions": ["a?", "b?"]},
    ),
    (
        text(
            "p/includes",
            '{% include "lib/tone@production" %} {% include "lib/sig" %} {% include "lib/outer" %}',
            [{"name": "team", "default": "Support"}],
        ),
        {"agent": "Kim"},
    ),
    (text("p/include-default", '{% include "lib/tone@1" %}'), {}),
    (
        text("p/import", '{% import "lib/macros" as m %}{{ m.shout(name) }}', [{"name": "name"}]),
        {"name": "hey"},
    ),
    (text("p/from-import", '{% from "lib/macros@1" import shout %}{{ shout("yo") }}'), {}),
    (text("p/extends", '{% extends "lib/base" %}{% block body %}custom {{ x }}{% endblock %}'), {"x": 1}),
    # errors
    (
        text(
            "e/missing",
            "{{ a }} {{ b }} {{ c }}",
            [{"name": "b"}, {"name": "a"}, {"name": "c", "required": False}],
        ),
        {},
    ),
    (
        text(
            "e/types",
            "{{ a }}{{ b }}{{ c }}",
            [
                {"name": "a", "type": "integer"},
                {"name": "b", "type": "number"},
                {"name": "c", "type": "array"},
            ],
        ),
        {"a": 1.5, "b": True, "c": "no"},
    ),
    (text("e/undeclared", "{{ known }} {{ unknown }}", [{"name": "known"}]), {"known": "k"}),
    (text("e/included-required", '{% include "lib/sig" %}'), {}),
    (text("e/undefined-attribute", "Hi {{ user.name }}", [{"name": "user", "type": "object"}]), {"user": {}}),
    (text("e/sandbox", "{{ ''.__class__.__mro__ }}"), {}),
    (text("e/mutation", "{% set l = [1] %}{{ l.append(2) }}"), {}),
    (text("e/cycle", '{% include "lib/cycle-a" %}'), {}),
    (text("e/depth", '{% include "lib/deep0" %}'), {}),
    (text("e/not-text", '{% include "lib/chat" %}'), {}),
    (text("e/unknown-prompt", '{% include "lib/nope@production" %}'), {}),
    (text("e/unknown-label", '{% include "lib/sig@canary" %}'), {"team": "t"}),
    (text("e/unknown-version", '{% if false %}{% include "lib/sig@99" %}{% endif %}'), {}),
    (text("e/division", "{{ 1 / zero }}", [{"name": "zero", "type": "integer"}]), {"zero": 0}),
    (
        {
            "name": "e/chat-error",
            "kind": "chat",
            "messages": [{"role": "system", "content": "ok"}, {"role": "user", "content": "{{ x.y }}"}],
        },
        {"x": 1},
    ),
]

COMPARED_FIELDS = ("missing", "errors", "chain", "include", "messageIndex", "maxDepth", "kind")


def server_render(server: ServerProcess, name: str, values: V) -> V:
    r = httpx.post(
        f"{server.url}/api/v1/prompts/{name}/render",
        json={"variables": values},
        headers={"Authorization": f"Bearer {ADMIN_KEY}"},
        timeout=30,
    )
    body = r.json()
    if r.status_code == 200:
        return {"text": body["text"], "messages": body["messages"]}
    return {"code": body["code"], **{k: body[k] for k in COMPARED_FIELDS if k in body}}


def sdk_render(po: PromptOps, name: str, values: V) -> V:
    prompt = po.get_prompt(name)
    try:
        rendered = prompt.render(**values)
    except TemplateError as error:
        return {"code": error.code, **{k: error.extra[k] for k in COMPARED_FIELDS if k in error.extra}}
    if isinstance(rendered, str):
        return {"text": rendered, "messages": None}
    return {"text": None, "messages": rendered}


def test_every_documented_template_feature_renders_the_same_locally(
    served: ServerProcess, po: PromptOps
) -> None:
    for body in LIBRARY:
        create_prompt(served, **body)
    for body, _ in CASES:
        create_prompt(served, **body)
    outcomes = {"ok": 0, "error": 0}
    for body, values in CASES:
        expected = server_render(served, body["name"], values)
        assert sdk_render(po, body["name"], values) == expected, body["name"]
        outcomes["error" if "code" in expected else "ok"] += 1
    # the cases cover both outcomes, and every error code of section 4 that a saved version can produce
    assert outcomes == {"ok": 15, "error": 15}
    codes = {server_render(served, body["name"], values).get("code") for body, values in CASES}
    assert codes >= {
        "missing_variables",
        "invalid_variable_type",
        "template_render_error",
        "template_security_error",
        "include_cycle",
        "include_depth_exceeded",
        "include_not_text",
        "prompt_not_found",
        "label_not_found",
        "version_not_found",
    }
