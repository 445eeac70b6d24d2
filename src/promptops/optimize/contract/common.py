"""What ``generate`` and ``refine`` share: loading the version and the cases, asking a model for a rewrite and
checking it, the quick evaluation of a proposal, the lint-based quality score, prompt names and timestamps.

Every loader opens its own short transaction and returns detached rows or plain values, so the flows that
use them never hold a transaction open across a model call (docs/architecture.md, "Service functions").
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from promptops.auth.principal import Principal
from promptops.datasets import service as datasets
from promptops.datasets.binding import case_variables
from promptops.db import utcnow
from promptops.errors import Conflict, ValidationProblem
from promptops.evals import quick
from promptops.evals import service as evals
from promptops.evals.schemas import ScorerSpec
from promptops.evals.scoring import scorers_for, validate_specs
from promptops.optimize.contract import strategies as st
from promptops.providers.calls import CallContext, CallInput, Target
from promptops.providers.service import LOCAL_MODEL, LOCAL_NAME
from promptops.runtime import Runtime
from promptops.templates import engine as templates

if TYPE_CHECKING:
    from promptops.registry.models import Prompt, PromptVersion

LLM_MAX_TOKENS = 512
EVAL_CONCURRENCY = 4
MAX_LABELS = 10


def local_target() -> dict[str, Any]:
    return {"provider": LOCAL_NAME, "model": LOCAL_MODEL, "params": {}}


def target_with_params(target: dict[str, Any], params: dict[str, Any] | None) -> dict[str, Any]:
    """``target`` answering with a version's own parameters (an explicit target's params win)."""
    return {**target, "params": {**(params or {}), **(target.get("params") or {})}}


async def load_version(runtime: Runtime, principal: Principal, ref: str) -> tuple[Prompt, PromptVersion]:
    """The prompt and version a reference or ``ver_`` id names; only text prompts can be edited here."""
    async with runtime.db.transaction() as session:
        prompt, version = await evals.resolve_prompt_ref(session, principal, ref)
        session.expunge(prompt)
        session.expunge(version)
    if version.kind != "text":
        raise ValidationProblem(
            f"{prompt.name} v{version.version} is a {version.kind} prompt; PromptOpt edits text prompts only",
            code="unsupported_prompt_kind",
        )
    if prompt.archived:
        raise Conflict(f"Prompt {prompt.name!r} is archived; unarchive it first", code="prompt_archived")
    return prompt, version


@dataclass(frozen=True)
class LoadedCases:
    dataset_version_id: str
    cases: list[quick.QuickCase]


async def load_dataset_cases(
    runtime: Runtime, principal: Principal, ref: str, limit: int, prompt: PromptVersion | None = None
) -> LoadedCases:
    """Up to ``limit`` cases of a dataset version (422 when it has none), as variables of ``prompt``."""
    async with runtime.db.transaction() as session:
        _, version = await datasets.resolve_version(session, principal, ref)
        rows = await datasets.list_cases(session, principal, version.id, limit=limit)
    if not rows:
        raise ValidationProblem(f"Dataset {ref!r} has no cases", code="empty_dataset")
    if prompt is not None:  # its variables are looked up per case: parse it off the event loop first
        await templates.preanalyze(prompt.kind, prompt.template, prompt.messages)
    return LoadedCases(
        version.id, [quick.QuickCase(case_variables(r, prompt), r.expected, r.key) for r in rows]
    )


def required_names(variables: Sequence[dict[str, Any]]) -> set[str]:
    return {v["name"] for v in variables if v.get("required", True) and v.get("default") is None}


def pick_scorers(explicit: Sequence[ScorerSpec], cases: Sequence[quick.QuickCase]) -> list[ScorerSpec]:
    scorers = scorers_for(explicit, (c.expected for c in cases))
    if scorers:
        validate_specs(scorers)
    return scorers


FORMAT_STATED = re.compile(
    r"(?i)\b(?:answer|respond|reply|output|return)\b[^.\n]{0,40}\b(?:one|single|only|json|format|concise|"
    r"short|word|label|sentence)|\bone of\b|\bjson\b|\bformat\b|^\s*(?:answer|label|json|[\w -]{1,30}):\s*$",
    re.M,
)


def quality(template: str, findings: Sequence[dict[str, Any]]) -> float:
    """A 0-1 quality estimate: lint (errors and warnings cost) and structure (format, labelled input, length)."""
    errors = sum(1 for f in findings if f.get("severity") == "error")
    warnings = sum(1 for f in findings if f.get("severity") == "warning")
    lint_part = max(0.0, 1.0 - 0.4 * errors - 0.15 * warnings)
    placeholders = re.findall(r"\{\{-?\s*[A-Za-z_]\w*[^}]*\}\}", template)
    labelled = bool(placeholders) and all(
        re.search(r"(?:[\w)\]]:\s*|<[\w.-]+>\s*|#\s*\w[^\n]*\n\s*)" + re.escape(p), template)
        for p in placeholders
    )
    words = len(re.findall(r"[A-Za-z]{2,}", re.sub(r"\{\{.*?\}\}|\{%.*?%\}", " ", template)))
    structure = (
        (1.0 if FORMAT_STATED.search(template) else 0.0)
        + (1.0 if labelled else 0.0)
        + (1.0 if 5 <= words <= 600 else 0.0)
    ) / 3
    return round(0.6 * lint_part + 0.4 * structure, 4)


def blocking_count(findings: Sequence[dict[str, Any]]) -> int:
    return sum(1 for f in findings if f.get("severity") in ("warning", "error"))


async def ask_model(
    runtime: Runtime,
    principal: Principal,
    target: dict[str, Any],
    prompt: str,
    *,
    max_tokens: int = LLM_MAX_TOKENS,
    prompt_id: str | None = None,
    version_id: str | None = None,
) -> tuple[str | None, str | None]:
    """One meta-prompt call (recorded as a run, source ``eval``): (text, error code)."""
    params = {"temperature": 0, "max_tokens": max_tokens, **(target.get("params") or {})}
    outcome = await runtime.caller.call(
        CallContext(principal, source="eval", prompt_id=prompt_id, version_id=version_id),
        Target(target["provider"], target["model"], params),
        CallInput(prompt=prompt),
    )
    if outcome.error is not None:
        return None, outcome.error.code
    return outcome.text, None


def slug(text: str, limit: int = 48) -> str:
    """A prompt-name segment from free text, cut at a word boundary."""
    value = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    if len(value) > limit:
        cut = value[: limit + 1].rsplit("-", 1)[0]
        value = cut if len(cut) >= limit // 2 else value[:limit]
    return value.strip("-") or "prompt"


def now_iso() -> str:
    return utcnow().strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def labels_for(version: PromptVersion | None, cases: Iterable[quick.QuickCase]) -> list[str]:
    """The answer labels of the cases (:func:`strategies.infer_labels`), else the version's ``metadata.labels``."""
    labels = st.infer_labels(c.expected for c in cases)
    if version is not None and not labels:
        meta = (version.metadata_ or {}).get("labels")
        if isinstance(meta, list):
            labels = [str(x) for x in meta if isinstance(x, str | int)][:MAX_LABELS]
    return labels


async def ask_rewrite(
    runtime: Runtime,
    principal: Principal,
    target: dict[str, Any],
    meta_prompt: str,
    *,
    start: str,
    unchanged: str,
    variables: Sequence[dict[str, Any]],
    required: Iterable[str],
    includes: Iterable[str],
    max_tokens: int,
    prompt_id: str | None,
    version_id: str | None,
) -> tuple[str | None, str | None]:
    """Ask the model to rewrite ``start`` (:func:`ask_model`): (the rewrite, None) when it can be a candidate,
    else (None, why not); ``unchanged`` is the reason when the model gave ``start`` back."""
    text, error = await ask_model(
        runtime,
        principal,
        target,
        meta_prompt,
        max_tokens=max_tokens,
        prompt_id=prompt_id,
        version_id=version_id,
    )
    if error:
        return None, f"model call failed ({error})"
    written = st.extract_prompt(text)
    if written is None:
        return None, "the model returned nothing"
    reason = st.check_candidate(written, variables, required, includes)
    if reason is None and st.normalized(written) == st.normalized(start):
        reason = unchanged
    return (None, reason) if reason is not None else (written, None)


async def score_proposal(
    runtime: Runtime,
    principal: Principal,
    version: PromptVersion,
    target: dict[str, Any],
    cases: Sequence[quick.QuickCase],
    scorers: Sequence[ScorerSpec],
    *,
    prompt_id: str | None,
) -> tuple[float, float]:
    """(mean score, pass rate), rounded as the wire shows them, of an unsaved ``version`` on ``cases``."""
    result = await quick.evaluate_version(
        runtime,
        principal,
        version,
        target,
        cases,
        scorers,
        prompt_id=prompt_id,
        concurrency=EVAL_CONCURRENCY,
    )
    return round(result.score, 4), round(result.pass_rate, 4)
