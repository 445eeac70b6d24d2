"""Worked examples: the one vocabulary both halves of PromptOpt use for dataset cases shown inside a prompt.

``contract`` (``/api/prompt/generate|refine``) puts examples into assembled and refined templates; ``search``
(the optimizer job) puts training examples into candidates through the ``shots`` operator. Both pick them with
:func:`pick_examples`: balanced over the answers, reproducible for a seed, cases too long to show left out.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from promptops.evals.scoring.builtin import label_set, normalise_label

MAX_EXAMPLE_CHARS = 1_500  # cases longer than this (inputs and answer) are not used as examples


@dataclass(frozen=True)
class Example:
    """A case usable as a worked example: its key (ordering, references from optimizer recipes), its input
    variables and the answer the prompt should produce."""

    key: str
    variables: Mapping[str, Any]
    expected: str


def value_text(value: Any) -> str:
    """A variable's value as prompt text (strings as they are, anything else as JSON)."""
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def labels_of(examples: Sequence[Example]) -> list[str]:
    """The distinct expected outputs when they look like class labels (few, short); else an empty list."""
    return label_set(e.expected for e in examples)


def pick_examples(examples: Sequence[Example], k: int, *, seed: int = 0, variant: int = 0) -> list[Example]:
    """``k`` examples balanced over the answers (round robin over the labels), a different selection and order
    per ``(seed, variant)``; examples too long to show are left out. Fewer when there are not enough."""
    groups: dict[str, list[Example]] = {}
    for example in examples:
        if len(orjson.dumps(dict(example.variables))) + len(example.expected) > MAX_EXAMPLE_CHARS:
            continue
        groups.setdefault(normalise_label(example.expected), []).append(example)
    if k <= 0 or not groups:
        return []
    rng = random.Random(f"{seed}:{variant}")  # noqa: S311 - reproducible selection, not security
    order = sorted(groups)
    for name in order:
        groups[name] = sorted(groups[name], key=lambda e: e.key)
        rng.shuffle(groups[name])
    rng.shuffle(order)
    picked: list[Example] = []
    index = 0
    while len(picked) < k and any(index < len(groups[n]) for n in order):
        for name in order:
            if index < len(groups[name]) and len(picked) < k:
                picked.append(groups[name][index])
        index += 1
    return picked
