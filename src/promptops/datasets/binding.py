"""A dataset case as the variables of a prompt version: one rule for evaluation runs, the optimizer and
prompt generation.

A case's input is an object of variables (used as it is) or a text (``{"input": "some text"}`` in a file, see
:mod:`promptops.datasets.formats`). A text binds to the prompt's only variable, or to ``input`` when the
prompt has none; a prompt with several variables is an error naming them (``422 ambiguous_input``).
Variables the caller already gives (an evaluation's shared ``variables``) do not count: a prompt with
``context`` and ``question`` whose evaluation gives ``context`` binds the text to ``question``.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from promptops.datasets.formats import TEXT_VARIABLE, Input, from_row
from promptops.datasets.models import DatasetCase
from promptops.errors import ProblemError, ValidationProblem
from promptops.templates import engine as templates

if TYPE_CHECKING:
    from promptops.registry.models import PromptVersion


def variable_names(version: PromptVersion | None) -> list[str]:
    """The variables of a version: the declared ones, else those its templates use (none without a version)."""
    if version is None:
        return []
    declared = [v["name"] for v in version.variables or []]
    if declared:
        return declared
    try:
        used = templates.analyze(version.kind, version.template, version.messages, []).used
    except ProblemError:  # a template that does not parse fails when it renders, with its own error
        return []
    return sorted(used)


def bind(
    value: Input, names: Sequence[str], *, given: Collection[str] = (), case: str = "A case"
) -> dict[str, Any]:
    """The variables of an input for a prompt with the variables ``names`` (``given`` ones excepted)."""
    if isinstance(value, dict):
        return dict(value)
    free = [n for n in names if n not in given]
    if len(free) == 1:
        return {free[0]: value}
    if not names:
        return {TEXT_VARIABLE: value}
    wanted = free or list(names)
    raise ValidationProblem(
        f"{case} has a text input but the prompt has the variables {', '.join(wanted)}; give the case an "
        "object with a value for each",
        code="ambiguous_input",
        variables=wanted,
    )


def case_input(case: DatasetCase) -> Input:
    """A stored case's input as it was imported: an object of variables or a text."""
    return from_row(case.input, case.metadata_)[0]


def case_variables(
    case: DatasetCase, version: PromptVersion | None, given: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The variables to render ``version`` with for ``case``: ``given`` (e.g. an evaluation's shared
    variables) overridden by the case's own (see the module docstring)."""
    base = dict(given or {})
    value = case_input(case)
    if isinstance(value, dict):
        return {**base, **value}
    return {**base, **bind(value, variable_names(version), given=base, case=f"Case {case.key!r}")}


def check_cases(
    cases: Iterable[DatasetCase], version: PromptVersion, given: Mapping[str, Any] | None = None
) -> None:
    """``422 ambiguous_input`` for the first case whose text input cannot bind to ``version`` (for checks
    before a job starts)."""
    for case in cases:
        if isinstance(case_input(case), str):
            case_variables(case, version, given)
