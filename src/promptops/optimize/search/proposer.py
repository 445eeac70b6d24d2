"""The LLM proposer (OPRO style): show a model the best prompts so far with their training scores and a few
worked examples, ask for a new prompt that scores higher, keep the answer only when it is usable.

A proposal is discarded when it cannot be parsed as a template, drops a variable the starting prompt
requires, or repeats a prompt already tried. Every proposer call is a model call and counts against the
optimization's budget like an evaluation call.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from promptops.errors import ProblemError
from promptops.optimize.examples import Example, value_text
from promptops.optimize.search.mutations import Draft
from promptops.providers.calls import CallContext, CallInput, ModelCaller, Target
from promptops.templates import engine as templates

MAX_SHOWN_PROMPTS = 8
MAX_SHOWN_EXAMPLES = 3
MAX_PROMPT_CHARS = 4_000
MAX_PROPOSAL_CHARS = 8_000
DEFAULT_PARAMS = {"temperature": 0.8, "max_tokens": 600}
FENCE = re.compile(r"<PROMPT>\s*(.*?)\s*</PROMPT>", re.DOTALL | re.IGNORECASE)


@dataclass(frozen=True)
class LlmProposal:
    draft: Draft | None
    reason: str  # why it was discarded, or "" when usable
    calls: int


def opro_prompt(
    scored: Sequence[tuple[Draft, float]], examples: Sequence[Example], variables: Sequence[str]
) -> str:
    """The OPRO meta-prompt: earlier prompts worst to best with their scores, examples, the instruction."""
    shown = sorted(scored, key=lambda item: item[1])[-MAX_SHOWN_PROMPTS:]
    lines = [
        "Your task is to write a prompt for a language model. Below are earlier prompts with their accuracy "
        "on training examples (0 to 100, higher is better), from worst to best.",
        "",
    ]
    for draft, score in shown:
        lines += [
            "<PROMPT>",
            draft.main_text[:MAX_PROMPT_CHARS],
            "</PROMPT>",
            f"Accuracy: {score * 100:.0f}",
            "",
        ]
    if examples:
        lines.append("Examples of the task (input and the expected answer):")
        for example in examples[:MAX_SHOWN_EXAMPLES]:
            values = "; ".join(f"{k} = {value_text(v)}" for k, v in sorted(example.variables.items()))
            lines.append(f"- input: {values[:500]} -> expected: {example.expected[:200]}")
        lines.append("")
    placeholders = ", ".join("{{ " + name + " }}" for name in variables)
    lines += [
        "Write a new prompt that is different from every prompt above and reaches a higher accuracy. "
        f"It must contain the placeholder(s) {placeholders} exactly where the input goes. "
        "Answer with the new prompt only, between <PROMPT> and </PROMPT>.",
    ]
    return "\n".join(lines)


def parse_proposal(
    text: str | None,
    base: Draft,
    required: Sequence[str],
    seen: set[str],
    allowed: Sequence[str] | None = None,
) -> tuple[Draft | None, str]:
    """The proposed prompt as a draft of the base's shape, or (None, reason) when it must be discarded."""
    if not text:
        return None, "empty answer"
    found = FENCE.search(text)
    body = (found.group(1) if found else text).strip()
    if not body:
        return None, "empty prompt"
    if len(body) > MAX_PROPOSAL_CHARS:
        return None, "prompt too long"
    try:
        used = set(templates.analyze("text", body, None, []).used)
    except ProblemError as error:
        return None, f"not a valid template: {error.detail[:200]}"
    dropped = [name for name in required if name not in used]
    if dropped:
        return None, f"drops required variable(s) {', '.join(dropped)}"
    unknown = sorted(used - set(allowed)) if allowed is not None else []
    if unknown:
        return None, f"uses undeclared variable(s) {', '.join(unknown)}"
    draft = base.with_main_text(body)
    if draft.key() in seen:
        return None, "duplicate of an earlier prompt"
    return draft, ""


async def propose(
    caller: ModelCaller,
    ctx: CallContext,
    target: dict[str, Any],
    *,
    base: Draft,
    scored: Sequence[tuple[Draft, float]],
    examples: Sequence[Example],
    required: Sequence[str],
    variables: Sequence[str],
    seen: set[str],
    allowed: Sequence[str] | None = None,
) -> LlmProposal:
    """One proposer call: a usable new prompt, or the reason the answer was discarded."""
    params = {**DEFAULT_PARAMS, **dict(target.get("params") or {})}
    model = Target(target["provider"], target["model"], params)
    outcome = await caller.call(ctx, model, CallInput(prompt=opro_prompt(scored, examples, variables)))
    if not outcome.ok:
        assert outcome.error is not None
        return LlmProposal(None, f"proposer call failed: {outcome.error.code}", 1)
    draft, reason = parse_proposal(outcome.text, base, required, seen, allowed)
    return LlmProposal(draft, reason, 1)
