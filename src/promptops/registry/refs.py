"""Prompt references: ``name``, ``name@label``, ``name@3``; and prompt name rules."""

from __future__ import annotations

import re
from dataclasses import dataclass

from promptops.errors import ValidationProblem

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}(/[a-z0-9][a-z0-9._-]{0,63}){0,7}$")
# Last path segments the REST routes use after a prompt name; a prompt may not end with one of them.
RESERVED_SEGMENTS = frozenset(
    {"versions", "labels", "render", "diff", "fork", "history", "rollback", "similar"}
)
# A prompt reference in a route path (``{name:prompt}``): one or more segments, the last not a reserved word
# (optionally followed by ``@selector``), so ``/prompts/a/versions`` matches only the versions routes and a
# 405's ``Allow`` names only their methods.
ROUTE_REF_REGEX = r"(?:[^/]+/)*(?!(?:{})(?:@|/|$))[^/]+".format("|".join(sorted(RESERVED_SEGMENTS)))


@dataclass(frozen=True)
class PromptRef:
    name: str
    label: str | None = None
    version: int | None = None

    def __str__(self) -> str:
        if self.version is not None:
            return f"{self.name}@{self.version}"
        if self.label is not None:
            return f"{self.name}@{self.label}"
        return self.name


def validate_prompt_name(name: str) -> str:
    if len(name) > 200 or not NAME_RE.match(name):
        raise ValidationProblem(
            f"Invalid prompt name {name!r}: use lowercase path segments of letters, digits, '.', '_' or '-' "
            "separated by '/', e.g. 'support/triage'",
            code="invalid_prompt_name",
        )
    if name.rsplit("/", 1)[-1] in RESERVED_SEGMENTS:
        raise ValidationProblem(
            f"Invalid prompt name {name!r}: the last segment may not be one of {sorted(RESERVED_SEGMENTS)}",
            code="invalid_prompt_name",
        )
    return name


def parse_ref(ref: str) -> PromptRef:
    """Parse ``name``, ``name@label`` or ``name@<version number>``."""
    name, sep, selector = ref.partition("@")
    if not sep:
        return PromptRef(name)
    if not selector:
        raise ValidationProblem(
            f"Reference {ref!r} has an empty selector after '@'", code="invalid_reference"
        )
    if selector.isdigit():
        return PromptRef(name, version=int(selector))
    return PromptRef(name, label=selector)
