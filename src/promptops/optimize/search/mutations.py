"""Deterministic proposal operators of the optimizer: few-shot examples, an output-format line, role and
instruction variants, output parameters, and combinations of what worked.

A candidate is described by a *recipe* applied to the starting prompt: a small JSON object with at most one
entry per operator (``rewrite``, ``role``, ``instruction``, ``format``, ``cue``, ``shots``, ``params``). Building is a
pure function of (starting prompt, recipe, training examples), so a candidate's recipe is all the search has
to store to reproduce it, and combining two candidates is merging their recipes. The few-shot examples come
from the *training* split only, so the validation split stays unseen until the final choice.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import orjson

from promptops.optimize.examples import MAX_EXAMPLE_CHARS, Example, pick_examples, value_text

SIMPLE_VAR = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
JINJA_SYNTAX = re.compile(r"\{\{|\{%|\{#")

ROLES = (
    "You are an expert annotator. You label each input accurately and consistently.",
    "You are a careful, precise assistant that follows the instructions exactly.",
)
INSTRUCTIONS = (
    "Read the input carefully and give the single correct answer.",
    "Decide based on the overall meaning of the input, not on single words.",
)
# Recipe keys in the order their operators are applied.
OPERATORS = ("rewrite", "instruction", "role", "format", "cue", "shots", "params")


@dataclass(frozen=True)
class Draft:
    """A prompt the optimizer can evaluate: a text template or chat messages, plus model parameters."""

    kind: str
    template: str | None = None
    messages: tuple[tuple[str, str], ...] | None = None
    params: Mapping[str, Any] = field(default_factory=dict)

    @property
    def main_text(self) -> str:
        """The text the operators edit: the template, or the last user message of a chat prompt."""
        if self.kind == "text":
            return self.template or ""
        assert self.messages is not None
        for role, content in reversed(self.messages):
            if role == "user":
                return content
        return self.messages[-1][1]

    def with_main_text(self, text: str) -> Draft:
        if self.kind == "text":
            return replace(self, template=text)
        assert self.messages is not None
        messages = list(self.messages)
        index = max((i for i, (role, _) in enumerate(messages) if role == "user"), default=len(messages) - 1)
        messages[index] = (messages[index][0], text)
        return replace(self, messages=tuple(messages))

    def with_system(self, text: str) -> Draft:
        """Prepend ``text`` as a role line (text prompts) or to the system message (chat prompts)."""
        if self.kind == "text":
            return replace(self, template=f"{text}\n\n{self.template or ''}")
        assert self.messages is not None
        messages = list(self.messages)
        if messages and messages[0][0] == "system":
            messages[0] = ("system", f"{text}\n\n{messages[0][1]}")
        else:
            messages.insert(0, ("system", text))
        return replace(self, messages=tuple(messages))

    def message_dicts(self) -> list[dict[str, str]] | None:
        if self.messages is None:
            return None
        return [{"role": role, "content": content} for role, content in self.messages]

    def display(self) -> str:
        """The prompt as one text (chat messages as ``role: content`` lines)."""
        if self.kind == "text":
            return self.template or ""
        return "\n\n".join(f"[{role}]\n{content}" for role, content in self.messages or ())

    def key(self) -> str:
        """Identity for de-duplication: the content and parameters, white space at the ends ignored."""
        body = {
            "kind": self.kind,
            "template": (self.template or "").strip() if self.kind == "text" else None,
            "messages": [[r, c.strip()] for r, c in self.messages or ()],
            "params": dict(self.params),
        }
        return orjson.dumps(body, option=orjson.OPT_SORT_KEYS).decode()

    def size(self) -> int:
        """Approximate tokens of the prompt (about four characters a token): the tie-breaker."""
        return max(1, len(self.display()) // 4)

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "template": self.template,
            "messages": self.message_dicts(),
            "params": dict(self.params),
        }

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> Draft:
        messages = data.get("messages")
        return Draft(
            kind=data["kind"],
            template=data.get("template"),
            messages=tuple((m["role"], m["content"]) for m in messages) if messages else None,
            params=dict(data.get("params") or {}),
        )


def recipe_key(recipe: Mapping[str, Any]) -> str:
    return orjson.dumps(dict(recipe), option=orjson.OPT_SORT_KEYS).decode()


# --- the operators -----------------------------------------------------------------------------------------


def _split_input(text: str, variables: Sequence[str]) -> tuple[str, str]:
    """(head, input block): the block starts at the first line that uses one of ``variables``."""
    lines = text.split("\n")
    for index, line in enumerate(lines):
        if any(name in SIMPLE_VAR.findall(line) for name in variables) or (
            JINJA_SYNTAX.search(line) and any(name in line for name in variables)
        ):
            return "\n".join(lines[:index]), "\n".join(lines[index:])
    return text, ""


def _answer_cue(block: str) -> str:
    """The input block ending in a cue for the answer (``Sentiment:``); adds ``Answer:`` when it has none."""
    last = block.rstrip().rsplit("\n", 1)[-1]
    if last.rstrip().endswith(":") and not SIMPLE_VAR.search(last):
        return block.rstrip()
    return block.rstrip() + "\nAnswer:"


def _escape(text: str) -> str | None:
    """Literal text safe inside a template (a raw block when it looks like template syntax)."""
    if not JINJA_SYNTAX.search(text) and "}}" not in text and "%}" not in text:
        return text
    if "endraw" in text:
        return None
    return "{% raw %}" + text + "{% endraw %}"


def _render_example(block: str, example: Example) -> str | None:
    """The input block filled in with the example's values and followed by its expected answer."""
    if JINJA_SYNTAX.search(SIMPLE_VAR.sub("", block)):
        # Not a plain ``{{ name }}`` block (filters, statements): a generic input/answer pair instead.
        values = "\n".join(f"{k}: {value_text(v)}" for k, v in sorted(example.variables.items()))
        filled = f"Input:\n{values}\nAnswer:"
    else:
        missing = [n for n in SIMPLE_VAR.findall(block) if n not in example.variables]
        if missing:
            return None
        filled = SIMPLE_VAR.sub(lambda m: value_text(example.variables[m.group(1)]), block)
    text = f"{filled.rstrip()} {example.expected.strip()}"
    if len(text) > MAX_EXAMPLE_CHARS:
        return None
    return _escape(text)


def with_shots(draft: Draft, shots: Sequence[Example], variables: Sequence[str]) -> Draft | None:
    """Insert worked examples between the instructions and the input."""
    text = draft.main_text
    head, block = _split_input(text, variables)
    if not block:
        return None
    cued = _answer_cue(block)
    rendered = [_render_example(cued, e) for e in shots]
    if not rendered or any(r is None for r in rendered):
        return None
    parts = [head.rstrip()] if head.strip() else []
    parts.append("\n\n".join(r for r in rendered if r))
    parts.append(cued)
    return draft.with_main_text("\n\n".join(parts))


def with_cue(draft: Draft, variables: Sequence[str]) -> Draft | None:
    """End the input with a cue for the answer (``Answer:``) unless it has one: a base model then writes the
    answer next, on the same line, instead of continuing the input."""
    head, block = _split_input(draft.main_text, variables)
    if not block:
        return None
    cued = _answer_cue(block)
    if cued == block.rstrip():
        return None
    return draft.with_main_text(f"{head.rstrip()}\n\n{cued}" if head.strip() else cued)


def with_format_line(draft: Draft, labels: Sequence[str]) -> Draft | None:
    """Say exactly what the answer looks like: one of the labels seen in the expected outputs."""
    if not labels:
        return None
    line = f"Answer with one of: {', '.join(labels)}."
    if line in draft.main_text:
        return None
    return draft.with_main_text(f"{line}\n\n{draft.main_text}")


def with_params(draft: Draft, labels: Sequence[str]) -> Draft | None:
    """Short, deterministic answers for label outputs: temperature 0, a few tokens, stop at the line end."""
    if not labels:
        return None
    current = dict(draft.params)
    if current.get("stop") and current.get("max_tokens") and current.get("temperature") == 0:
        return None
    longest = max(len(label) for label in labels)
    wanted = {"temperature": 0, "max_tokens": max(3, longest // 3 + 2), "stop": ["\n"]}
    params = {**draft.params, **wanted}
    if params == dict(draft.params):
        return None
    return replace(draft, params=params)


def build(
    base: Draft,
    recipe: Mapping[str, Any],
    examples: Mapping[str, Example],
    labels: Sequence[str],
    variables: Sequence[str],
) -> Draft | None:
    """The starting prompt with the recipe's operators applied in a fixed order; None when one cannot apply."""
    draft: Draft | None = base
    for op in OPERATORS:
        if op not in recipe or draft is None:
            continue
        value = recipe[op]
        if op == "rewrite":
            draft = Draft.from_json(value)
        elif op == "instruction":
            head, block = _split_input(draft.main_text, variables)
            line = INSTRUCTIONS[int(value) % len(INSTRUCTIONS)]
            text = f"{head.rstrip()}\n{line}\n\n{block}" if head.strip() else f"{line}\n\n{block}"
            draft = draft.with_main_text(text)
        elif op == "role":
            draft = draft.with_system(ROLES[int(value) % len(ROLES)])
        elif op == "format":
            draft = with_format_line(draft, labels)
        elif op == "cue":
            draft = with_cue(draft, variables)
        elif op == "shots":
            shots = [examples[k] for k in value if k in examples]
            draft = with_shots(draft, shots, variables) if len(shots) == len(value) else None
        elif op == "params":
            draft = with_params(draft, labels)
    return draft


def shots_recipe(examples: Sequence[Example], k: int, variant: int, seed: int) -> list[str] | None:
    picked = pick_examples(examples, k, seed=seed, variant=variant)
    return [e.key for e in picked] if len(picked) == k else None


def mutations(
    parent: Mapping[str, Any],
    examples: Sequence[Example],
    labels: Sequence[str],
    *,
    seed: int,
    attempt: int,
    format_first: bool = False,
) -> list[tuple[str, dict[str, Any]]]:
    """``(strategy, recipe)`` proposals derived from one parent recipe, most promising first.

    ``attempt`` (the round) varies the few-shot selections, so later rounds propose new ones. With
    ``format_first`` (the parent's answers often could not be read) the output-format operators come before
    the few-shot ones: an answer cue, the list of labels (with the cue), short-answer parameters.
    """
    shots_out: list[tuple[str, dict[str, Any]]] = []
    width = max(2, len(labels) or 2)
    if examples:
        current = parent.get("shots")
        if current is None:
            for k in (width, 2 * width):
                shots = shots_recipe(examples, k, attempt, seed)
                if shots:
                    shots_out.append((f"few-shot:{k}", {**parent, "shots": shots}))
        else:
            k = len(current)
            for delta, variant in ((0, attempt + 101), (width, attempt + 211)):
                shots = shots_recipe(examples, k + delta, variant, seed)
                if shots and shots != current:
                    shots_out.append((f"few-shot:{k + delta}", {**parent, "shots": shots}))
            if k > 1:
                shots_out.append(("few-shot:reorder", {**parent, "shots": list(reversed(current))}))
    format_out: list[tuple[str, dict[str, Any]]] = []
    if "cue" not in parent and "shots" not in parent:
        format_out.append(("answer-cue", {**parent, "cue": True}))
    if labels and "format" not in parent:
        format_out.append(
            ("format-line", {**parent, "format": True, **({} if "shots" in parent else {"cue": True})})
        )
    if labels and "params" not in parent:
        format_out.append(("format-params", {**parent, "params": True}))
    out = format_out + shots_out if format_first else shots_out + format_out
    if "role" not in parent:
        out.append(("role", {**parent, "role": attempt % len(ROLES)}))
    if "instruction" not in parent:
        out.append(("instruction", {**parent, "instruction": attempt % len(INSTRUCTIONS)}))
    return out


def combine(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any] | None:
    """``a`` plus every operator of ``b`` that ``a`` lacks (the best parts of both); None if nothing new."""
    merged = dict(a)
    for op in OPERATORS:
        if op in b and op not in merged and op != "rewrite":
            merged[op] = b[op]
    return merged if merged != dict(a) else None
