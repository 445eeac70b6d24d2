"""Seed 004 ``POST /api/prompt/generate``: prompt candidates for a task, scored and saved as draft versions.

How candidates are made (in this order, until ``count`` distinct ones exist):

1. **LLM meta-prompts** (``clarify``, ``role``, ``format``, ``step-by-step``, ``few-shot``,
   ``constrain-length``): the model rewrites a starting draft (the ``templateId`` version, else the most complete
   structural draft). A rewrite is kept only if it parses, keeps every required variable, uses no undeclared
   one, is non-empty and differs from every other candidate; otherwise it is listed under ``discarded``. By
   default LLM strategies take at most half of the slots.
2. **Structural assembly** (deterministic per ``seed``): instruction + constraints + output format + examples
   (label-balanced, drawn from the dataset) + role, in different combinations and layouts; with a
   ``templateId``, edits of that template first. These always fill the remaining slots, so ``count`` distinct
   candidates come back even when the model writes nothing usable.

Scoring: ``qualityScore`` comes from the save-time lint findings and simple structure checks (output format
stated, input labelled or delimited, an instruction of sensible length). With a dataset (and scorers, or
expected answers for the default label scorer) every candidate is also run on up to ``maxCases`` cases and
``score`` = 0.9 x mean case score + 0.1 x quality; without one, ``score`` = quality. ``modelVersion`` is the
model that wrote the candidate (``provider/model``) or ``structural``; ``evalModel`` the model that answered the
quick evaluation.

Every candidate is saved (one transaction, after all model calls) as a draft version without labels, with
source ``generated``: on the ``templateId`` prompt (parent = that version), else on the prompt ``name`` (default
``generated/<slug of task>``; created when missing). Each save writes ``PromptGenerated`` (seed 004 section 12:
promptId, templateId, user, timestamp) to the audit log.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from promptops.auth.principal import Principal
from promptops.datasets import service as datasets
from promptops.datasets.binding import case_variables
from promptops.db import utcnow
from promptops.errors import Conflict, NotFound, ProblemError, ValidationProblem
from promptops.evals import quick
from promptops.evals import service as evals
from promptops.evals.schemas import ScorerSpec
from promptops.evals.scoring import scorers_for, validate_specs
from promptops.governance import audit
from promptops.optimize import strategies as st
from promptops.optimize.schemas import (
    DiscardedCandidate,
    PromptCandidate,
    PromptCandidateList,
    PromptGenerationRequest,
)
from promptops.providers.calls import CallContext, CallInput, Target
from promptops.providers.service import LOCAL_MODEL, LOCAL_NAME
from promptops.registry import service as registry
from promptops.registry.models import Prompt, PromptVersion
from promptops.registry.refs import validate_prompt_name
from promptops.registry.schemas import CreatePromptIn, CreateVersionIn
from promptops.runtime import Runtime
from promptops.templates import engine as templates

STRUCTURAL = "structural"
LLM_GROUP = "llm"
LLM_MAX_TOKENS = 512
EVAL_CONCURRENCY = 4
MAX_EXAMPLES = 4


# --- shared with refine -----------------------------------------------------------------------------------------


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


_FORMAT_STATED = re.compile(
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
        (1.0 if _FORMAT_STATED.search(template) else 0.0)
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


# --- generate -------------------------------------------------------------------------------------------------


@dataclass
class _Candidate:
    draft: st.Draft
    eval_score: float | None = None
    pass_rate: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _llm_names(requested: Sequence[str] | None) -> tuple[list[str], bool]:
    """(LLM strategies to try, whether only LLM strategies were asked for)."""
    names = list(dict.fromkeys(requested or [LLM_GROUP, STRUCTURAL]))
    llm: list[str] = []
    for name in names:
        if name == LLM_GROUP:
            llm.extend(st.LLM_STRATEGIES)
        elif name in st.LLM_STRATEGIES:
            llm.append(name)
    return list(dict.fromkeys(llm)), STRUCTURAL not in names


def _variables_for_new(
    body: PromptGenerationRequest, cases: Sequence[quick.QuickCase]
) -> list[dict[str, Any]]:
    names = list(body.variables or [])
    if not names and cases:
        names = sorted({k for c in cases for k in c.variables})
    names = names or ["input"]
    try:
        return [templates.VariableSpec(name=n, type="string").to_dict() for n in dict.fromkeys(names)]
    except ProblemError as problem:
        raise ValidationProblem(problem.detail, code="invalid_variable")


async def generate(
    runtime: Runtime, principal: Principal, body: PromptGenerationRequest
) -> PromptCandidateList:
    """Make, score and save ``body.count`` distinct candidates (see the module docstring)."""
    base_prompt: Prompt | None = None
    base: PromptVersion | None = None
    if body.template_id:
        base_prompt, base = await load_version(runtime, principal, body.template_id)
    elif body.name:
        validate_prompt_name(body.name)
    loaded = (
        await load_dataset_cases(runtime, principal, body.dataset, body.max_cases + MAX_EXAMPLES * 3, base)
        if body.dataset
        else None
    )
    all_cases = loaded.cases if loaded else []
    variables = list(base.variables) if base is not None else _variables_for_new(body, all_cases)
    names = [v["name"] for v in variables]
    required = required_names(variables) if base is not None else set(names)
    missing = sorted({n for n in required if any(n not in c.variables for c in all_cases)})
    if missing:
        raise ValidationProblem(
            f"Dataset {body.dataset!r} has cases without the variable(s) {', '.join(missing)} the prompt needs",
            code="dataset_mismatch",
        )
    base_includes = (
        (await templates.analyze_async("text", base.template, None, [])).includes if base is not None else ()
    )

    # Examples for few-shot strategies come from the dataset; the rest of the cases evaluate the candidates.
    labels = st.infer_labels(c.expected for c in all_cases)
    if base is not None and not labels:
        meta_labels = (base.metadata_ or {}).get("labels")
        if isinstance(meta_labels, list):
            labels = [str(x) for x in meta_labels if isinstance(x, str | int)][:10]
    labelled = [c for c in all_cases if c.expected is not None]
    pairs = [
        (c, st.Example({k: v for k, v in c.variables.items() if k in names}, c.expected or ""))
        for c in labelled
    ]
    examples = st.pick_examples([ex for _, ex in pairs], MAX_EXAMPLES, body.seed)
    shown = {id(ex) for ex in examples}
    eval_cases = [c for c, ex in pairs if id(ex) not in shown] + [c for c in all_cases if c.expected is None]
    if len(eval_cases) < 2:
        eval_cases = list(all_cases)
    eval_cases = eval_cases[: body.max_cases]
    scorers = pick_scorers(body.scorers, eval_cases) if eval_cases else []

    base_target = {**evals.version_target(base), "params": {}} if base is not None else local_target()
    model_target = body.model.model_dump() if body.model else base_target
    await evals.check_targets(runtime.caller, principal, [model_target])
    base_params = dict((base.model_config_ or {}).get("params") or {}) if base is not None else {}
    new_model_config: dict[str, Any] = (
        dict(base.model_config_ or {})
        if base is not None
        else (
            {"provider": body.model.provider, "model": body.model.model, "params": dict(body.model.params)}
            if body.model
            else {}
        )
    )

    # 1. structural drafts (needed as LLM starting points and to fill the slots)
    structural = st.structural_candidates(
        body.task,
        body.context,
        names,
        examples=examples,
        labels=labels,
        base_template=base.template if base is not None else None,
        seed=body.seed,
        limit=max(20, body.count),
    )
    seen = {st.normalized(base.template or "")} if base is not None else set()
    chosen: list[_Candidate] = []
    discarded: list[DiscardedCandidate] = []

    # 2. LLM strategies
    llm_names, llm_only = _llm_names(body.strategies)
    slots = body.count if llm_only else math.ceil(body.count / 2)
    start = base.template if base is not None else structural[0].template
    for name in llm_names[:slots]:
        text, error = await ask_model(
            runtime,
            principal,
            model_target,
            st.meta_prompt(name, body.task, body.context, start or "", names, examples),
            # about twice the starting draft's tokens: room for a rewrite, not for rambling
            max_tokens=min(LLM_MAX_TOKENS, 96 + len(start or "") // 2),
            prompt_id=base_prompt.id if base_prompt else None,
            version_id=base.id if base else None,
        )
        strategy = f"llm:{name}"
        written = st.extract_prompt(text)
        reason = error and f"model call failed ({error})"
        if reason is None:
            reason = (
                "the model returned nothing"
                if written is None
                else st.check_candidate(written, variables, required, base_includes)
            )
        if reason is None and written is not None and st.normalized(written) == st.normalized(start or ""):
            reason = "the model returned the starting prompt unchanged"
        elif reason is None and written is not None and st.normalized(written) in seen:
            reason = "duplicate of another candidate"
        if reason is not None or written is None:
            discarded.append(DiscardedCandidate(strategy=strategy, reason=reason or "invalid"))
            continue
        seen.add(st.normalized(written))
        chosen.append(_Candidate(st.Draft(strategy, written, None, evals.target_label(model_target))))

    # 3. structural fill
    for draft in structural:
        if len(chosen) >= body.count:
            break
        key = st.normalized(draft.template)
        if key in seen or st.check_candidate(draft.template, variables, required, base_includes):
            continue
        seen.add(key)
        chosen.append(_Candidate(draft))
    if len(chosen) < body.count:  # pragma: no cover - structural_candidates guarantees 20 distinct drafts
        raise ValidationProblem("Could not assemble enough distinct candidates", code="too_few_candidates")

    # 4. quick evaluation
    eval_label: str | None = None
    if eval_cases and scorers:
        eval_label = evals.target_label(model_target)
        for candidate in chosen:
            params = {**base_params, **(candidate.draft.params or {})}
            version = quick.unsaved_version(
                "text", candidate.draft.template, variables=variables, model_config=new_model_config
            )
            result = await quick.evaluate_version(
                runtime,
                principal,
                version,
                target_with_params(model_target, params),
                eval_cases,
                scorers,
                prompt_id=base_prompt.id if base_prompt else None,
                concurrency=EVAL_CONCURRENCY,
            )
            candidate.eval_score = round(result.score, 4)
            candidate.pass_rate = round(result.pass_rate, 4)

    # 5. save every candidate as a draft version, with a PromptGenerated event each
    out: list[PromptCandidate] = []
    async with runtime.db.transaction(write=True) as session:
        target_name = (
            base_prompt.id if base_prompt is not None else (body.name or f"generated/{slug(body.task)}")
        )
        if base_prompt is None:
            validate_prompt_name(target_name)
        exists = True
        if base_prompt is None:
            try:
                await registry.get_prompt(session, principal, target_name)
            except NotFound:
                exists = False
        for candidate in chosen:
            draft = candidate.draft
            config = dict(new_model_config)
            if draft.params:
                config["params"] = {**(config.get("params") or {}), **draft.params}
            fields: dict[str, Any] = {
                "kind": "text",
                "template": draft.template,
                "variables": variables,
                "modelConfig": config,
                "responseSchema": base.response_schema if base is not None else None,
                "metadata": {
                    **((base.metadata_ or {}) if base is not None else {}),
                    "promptopt": {
                        "generatedBy": "generate",
                        "strategy": draft.strategy,
                        "modelVersion": draft.model_version,
                        "task": body.task[:500],
                    },
                },
                "commitMessage": f"Generated candidate ({draft.strategy}) for: {body.task[:200]}",
                "source": "generated",
                "parentVersionId": base.id if base is not None else None,
            }
            if exists:
                prompt, version = await registry.create_version(
                    session, principal, target_name, CreateVersionIn.model_validate(fields)
                )
            else:
                prompt, version = await registry.create_prompt(
                    session,
                    principal,
                    CreatePromptIn.model_validate(
                        {
                            **fields,
                            "name": target_name,
                            "description": f"Generated for: {body.task[:1900]}",
                            "tags": ["generated"],
                        }
                    ),
                )
                exists = True
            findings, _ = registry.stored_findings(version)
            q = quality(draft.template, findings)
            score = q if candidate.eval_score is None else round(0.9 * candidate.eval_score + 0.1 * q, 4)
            await audit.record(
                session,
                principal,
                "PromptGenerated",
                prompt_id=prompt.id,
                data={
                    "promptId": prompt.id,
                    "templateId": body.template_id,
                    "user": principal.name,
                    "timestamp": now_iso(),
                    "versionId": version.id,
                    "version": version.version,
                    "strategy": draft.strategy,
                    "modelVersion": draft.model_version,
                    "score": score,
                },
            )
            out.append(
                PromptCandidate(
                    prompt=draft.template,
                    score=score,
                    model_version=draft.model_version,
                    prompt_id=prompt.id,
                    version_id=version.id,
                    version=version.version,
                    strategy=draft.strategy,
                    quality_score=q,
                    lint_findings=blocking_count(findings),
                    eval_score=candidate.eval_score,
                    pass_rate=candidate.pass_rate,
                    eval_model=eval_label,
                    model_config_=version.model_config_ or {},
                )
            )
            saved_name = prompt.name
            saved_id = prompt.id
    out.sort(key=lambda c: -c.score)
    scoring = (
        f"score = 0.9 x mean case score on {len(eval_cases)} case(s) ({eval_label}) + 0.1 x quality"
        if eval_label
        else "score = quality (lint findings and structure); give a dataset to score by evaluation"
    )
    return PromptCandidateList(
        candidates=out,
        prompt_id=saved_id,
        name=saved_name,
        template_id=body.template_id,
        base_version_id=base.id if base is not None else None,
        dataset_version_id=loaded.dataset_version_id if loaded else None,
        cases=len(eval_cases) if eval_label else 0,
        scoring=scoring,
        discarded=discarded,
    )
