"""Recover template variables from a rendered prompt, so recorded runs become reusable test cases.

Runs store the rendered prompt, not the variables. When a run was made from a registry version whose
templates are *simple* (literal text and plain ``{{ name }}`` placeholders, no tags, filters, expressions or
includes, and never two placeholders side by side), the rendered text determines the variables: the literal
parts are matched exactly and each placeholder captures the text between them. Anything else (or a text
that does not match, e.g. because of an include) yields ``None`` and the caller falls back to the raw text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from jinja2 import Environment, nodes
from jinja2.exceptions import TemplateSyntaxError

from promptops.safe_regex import UserPattern, compile_built_pattern

MAX_PLACEHOLDERS = 20
MAX_TEXT_CHARS = 200_000

# Parsing only (nothing is compiled or rendered); same lexer options as the prompt engine.
_ENV = Environment(autoescape=False, keep_trailing_newline=True)  # noqa: S701 - never renders


@dataclass(frozen=True)
class Pattern:
    regex: UserPattern  # RE2: a template of many placeholders would backtrack for ever on Python's re
    names: tuple[str, ...]  # group i+1 captures names[i]; a name used twice has two groups


def compile_template(source: str) -> Pattern | None:
    """A matcher for ``source``, or None when the template is not simple enough to invert."""
    try:
        ast = _ENV.parse(source)
    except TemplateSyntaxError:
        return None
    parts: list[str] = []
    names: list[str] = []
    previous_was_variable = False
    for node in ast.body:
        if not isinstance(node, nodes.Output):
            return None
        for child in node.nodes:
            if isinstance(child, nodes.TemplateData):
                if child.data:
                    parts.append(re.escape(child.data))
                    previous_was_variable = False
            elif isinstance(child, nodes.Name) and child.ctx == "load":
                if previous_was_variable:
                    return None
                parts.append("(.*?)")
                names.append(child.name)
                previous_was_variable = True
            else:
                return None
    if len(set(names)) > MAX_PLACEHOLDERS:
        return None
    regex = compile_built_pattern("(?s)" + "".join(parts))
    return Pattern(regex, tuple(names)) if regex else None


def match(pattern: Pattern, text: str) -> dict[str, str] | None:
    if len(text) > MAX_TEXT_CHARS:
        return None
    groups = pattern.regex.fullmatch_groups(text)
    if groups is None:
        return None
    values: dict[str, str] = {}
    for name, value in zip(pattern.names, groups, strict=True):
        if values.setdefault(name, value) != value:  # RE2 has no backreferences: a repeat is checked here
            return None
    return values


def coerce(value: str, type_: str) -> Any:
    """Undo ``str()`` for declared number, integer and boolean variables; everything else stays text."""
    if type_ == "integer" and re.fullmatch(r"-?\d+", value):
        return int(value)
    if type_ == "number" and re.fullmatch(r"-?\d+(\.\d+)?([eE][-+]?\d+)?", value):
        number = float(value)
        return (
            int(number) if number.is_integer() and "." not in value and "e" not in value.lower() else number
        )
    if type_ == "boolean" and value in ("True", "False"):
        return value == "True"
    return value


def recover_variables(
    kind: str,
    template: str | None,
    messages: list[dict[str, Any]] | None,
    variables: list[dict[str, Any]],
    run_input: dict[str, Any],
) -> dict[str, Any] | None:
    """The variables that rendered ``run_input`` from a version, or None when they cannot be told."""
    found: dict[str, str] = {}
    if kind == "text":
        text = run_input.get("prompt")
        if template is None or not isinstance(text, str):
            return None
        pattern = compile_template(template)
        values = match(pattern, text) if pattern else None
        if values is None:
            return None
        found.update(values)
    else:
        sent = run_input.get("messages")
        if not messages or not isinstance(sent, list) or len(sent) != len(messages):
            return None
        for spec, message in zip(messages, sent, strict=True):
            if not isinstance(message, dict) or message.get("role") != spec.get("role"):
                return None
            content = message.get("content")
            pattern = compile_template(str(spec.get("content") or ""))
            values = match(pattern, content) if pattern and isinstance(content, str) else None
            if values is None:
                return None
            for name, value in values.items():
                if found.get(name, value) != value:
                    return None
                found[name] = value
    types = {str(v.get("name")): str(v.get("type") or "string") for v in variables}
    return {name: coerce(value, types.get(name, "string")) for name, value in found.items()}
