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
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession

from promptops.auth.principal import Principal
from promptops.errors import NotFound, ProblemError, ValidationProblem
from promptops.evals import quick
from promptops.evals import service as evals
from promptops.evals.schemas import ScorerSpec
from promptops.governance import audit
from promptops.optimize.contract import strategies as st
from promptops.optimize.contract.common import (
    LLM_MAX_TOKENS,
    ask_rewrite,
    blocking_count,
    labels_for,
    load_dataset_cases,
    load_version,
    local_target,
    now_iso,
    pick_scorers,
    quality,
    required_names,
    score_proposal,
    slug,
    target_with_params,
)
from promptops.optimize.contract.schemas import PromptGenerationRequest
from promptops.optimize.examples import Example, pick_examples
from promptops.registry import service as registry
from promptops.registry.refs import validate_prompt_name
from promptops.registry.schemas import CreatePromptIn, CreateVersionIn
from promptops.runtime import Runtime
from promptops.templates import engine as templates

if TYPE_CHECKING:
    from promptops.registry.models import Prompt, PromptVersion

STRUCTURAL = "structural"
LLM_GROUP = "llm"
MAX_EXAMPLES = 4


# --- what generate returns (the router maps it to PromptCandidateList) ------------------------------------------


@dataclass(frozen=True)
class GeneratedCandidate:
    """One saved candidate: its template, scores, the model that wrote it and the version it was saved as."""

    prompt: str
    score: float
    model_version: str
    prompt_id: str
    version_id: str
    version: int
    strategy: str
    quality_score: float
    lint_findings: int
    eval_score: float | None
    pass_rate: float | None
    eval_model: str | None
    model_config: dict[str, Any]


@dataclass(frozen=True)
class Discarded:
    """A model rewrite that was not kept, and why."""

    strategy: str
    reason: str


@dataclass(frozen=True)
class Generated:
    """The saved candidates (best first), where they were saved and how they were scored."""

    candidates: tuple[GeneratedCandidate, ...]
    prompt_id: str
    name: str
    template_id: str | None
    base_version_id: str | None
    dataset_version_id: str | None
    cases: int
    scoring: str
    discarded: tuple[Discarded, ...]


# --- the flow -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Setup:
    """Everything loaded and decided before the first model call."""

    base_prompt: Prompt | None
    base: PromptVersion | None
    dataset_version_id: str | None
    variables: list[dict[str, Any]]
    required: set[str]
    includes: tuple[str, ...]
    labels: list[str]
    examples: list[Example]
    eval_cases: list[quick.QuickCase]
    scorers: list[ScorerSpec]
    model_target: dict[str, Any]
    base_params: dict[str, Any]
    model_config: dict[str, Any]  # of every saved candidate (before its own parameters)

    @property
    def names(self) -> list[str]:
        return [v["name"] for v in self.variables]

    @property
    def prompt_id(self) -> str | None:
        return self.base_prompt.id if self.base_prompt is not None else None


async def generate(runtime: Runtime, principal: Principal, body: PromptGenerationRequest) -> Generated:
    """Make, score and save ``body.count`` distinct candidates (see the module docstring).

    Load (short read transactions), then the model calls (rewrites, quick evaluation), then one write
    transaction that saves every candidate with its ``PromptGenerated`` event.
    """
    setup = await _prepare(runtime, principal, body)
    base = setup.base
    structural = st.structural_candidates(
        body.task,
        body.context,
        setup.names,
        examples=setup.examples,
        labels=setup.labels,
        base_template=base.template if base is not None else None,
        seed=body.seed,
        limit=max(20, body.count),
    )
    seen = {st.normalized(base.template or "")} if base is not None else set()
    start = (base.template if base is not None else structural[0].template) or ""
    chosen, discarded = await _rewrites(runtime, principal, body, setup, start, seen)
    _fill_structural(chosen, structural, setup, body.count, seen)
    eval_model = await _evaluate(runtime, principal, setup, chosen)
    return await _save(runtime, principal, body, setup, chosen, discarded, eval_model)


async def _prepare(runtime: Runtime, principal: Principal, body: PromptGenerationRequest) -> Setup:
    """Load the starting version and the dataset, check that they fit, pick examples, scorers and the model."""
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
    required = required_names(variables) if base is not None else {v["name"] for v in variables}
    missing = sorted({n for n in required if any(n not in c.variables for c in all_cases)})
    if missing:
        raise ValidationProblem(
            f"Dataset {body.dataset!r} has cases without the variable(s) {', '.join(missing)} the prompt needs",
            code="dataset_mismatch",
        )
    includes = (
        (await templates.analyze_async("text", base.template, None, [])).includes if base is not None else ()
    )
    examples, eval_cases = _split_cases(all_cases, [v["name"] for v in variables], body)
    scorers = pick_scorers(body.scorers, eval_cases) if eval_cases else []
    base_target = {**evals.version_target(base), "params": {}} if base is not None else local_target()
    model_target = body.model.model_dump() if body.model else base_target
    await evals.check_targets(runtime.caller, principal, [model_target])
    return Setup(
        base_prompt=base_prompt,
        base=base,
        dataset_version_id=loaded.dataset_version_id if loaded else None,
        variables=variables,
        required=required,
        includes=tuple(includes),
        labels=labels_for(base, all_cases),
        examples=examples,
        eval_cases=eval_cases,
        scorers=scorers,
        model_target=model_target,
        base_params=dict((base.model_config_ or {}).get("params") or {}) if base is not None else {},
        model_config=_new_model_config(base, body),
    )


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


def _split_cases(
    cases: Sequence[quick.QuickCase], names: Sequence[str], body: PromptGenerationRequest
) -> tuple[list[Example], list[quick.QuickCase]]:
    """(few-shot examples drawn from the labelled cases, the cases that evaluate the candidates)."""
    pairs = [
        (c, Example(c.key or "", {k: v for k, v in c.variables.items() if k in names}, c.expected or ""))
        for c in cases
        if c.expected is not None
    ]
    examples = pick_examples([ex for _, ex in pairs], MAX_EXAMPLES, seed=body.seed)
    shown = {id(ex) for ex in examples}
    eval_cases = [c for c, ex in pairs if id(ex) not in shown] + [c for c in cases if c.expected is None]
    if len(eval_cases) < 2:
        eval_cases = list(cases)
    return examples, eval_cases[: body.max_cases]


def _new_model_config(base: PromptVersion | None, body: PromptGenerationRequest) -> dict[str, Any]:
    if base is not None:
        return dict(base.model_config_ or {})
    if body.model:
        return {"provider": body.model.provider, "model": body.model.model, "params": dict(body.model.params)}
    return {}


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


async def _rewrites(
    runtime: Runtime,
    principal: Principal,
    body: PromptGenerationRequest,
    setup: Setup,
    start: str,
    seen: set[str],
) -> tuple[list[st.Proposal], list[Discarded]]:
    """The LLM strategies: the model rewrites ``start``; a usable, new rewrite is kept, the rest discarded."""
    chosen: list[st.Proposal] = []
    discarded: list[Discarded] = []
    names, llm_only = _llm_names(body.strategies)
    slots = body.count if llm_only else math.ceil(body.count / 2)
    for name in names[:slots]:
        strategy = f"llm:{name}"
        written, reason = await ask_rewrite(
            runtime,
            principal,
            setup.model_target,
            st.meta_prompt(name, body.task, body.context, start, setup.names, setup.examples),
            start=start,
            unchanged="the model returned the starting prompt unchanged",
            variables=setup.variables,
            required=setup.required,
            includes=setup.includes,
            # about twice the starting draft's tokens: room for a rewrite, not for rambling
            max_tokens=min(LLM_MAX_TOKENS, 96 + len(start) // 2),
            prompt_id=setup.prompt_id,
            version_id=setup.base.id if setup.base is not None else None,
        )
        if written is not None and st.normalized(written) in seen:
            written, reason = None, "duplicate of another candidate"
        if written is None:
            discarded.append(Discarded(strategy, reason or "invalid"))
            continue
        seen.add(st.normalized(written))
        chosen.append(st.Proposal(strategy, written, model_version=evals.target_label(setup.model_target)))
    return chosen, discarded


def _fill_structural(
    chosen: list[st.Proposal], structural: Sequence[st.Proposal], setup: Setup, count: int, seen: set[str]
) -> None:
    """Structural drafts fill the remaining slots (valid and distinct ones only)."""
    for proposal in structural:
        if len(chosen) >= count:
            break
        key = st.normalized(proposal.text)
        if key in seen or st.check_candidate(proposal.text, setup.variables, setup.required, setup.includes):
            continue
        seen.add(key)
        chosen.append(proposal)
    if len(chosen) < count:  # pragma: no cover - structural_candidates guarantees 20 distinct drafts
        raise ValidationProblem("Could not assemble enough distinct candidates", code="too_few_candidates")


async def _evaluate(
    runtime: Runtime, principal: Principal, setup: Setup, chosen: Sequence[st.Proposal]
) -> str | None:
    """Quick-evaluate every candidate on the evaluation cases; the answering model's label (None: no cases)."""
    if not (setup.eval_cases and setup.scorers):
        return None
    for proposal in chosen:
        params = {**setup.base_params, **(proposal.params or {})}
        version = registry.unsaved_version(
            "text", proposal.text, variables=setup.variables, model_config=setup.model_config
        )
        proposal.score, proposal.pass_rate = await score_proposal(
            runtime,
            principal,
            version,
            target_with_params(setup.model_target, params),
            setup.eval_cases,
            setup.scorers,
            prompt_id=setup.prompt_id,
        )
    return evals.target_label(setup.model_target)


async def _save(
    runtime: Runtime,
    principal: Principal,
    body: PromptGenerationRequest,
    setup: Setup,
    chosen: Sequence[st.Proposal],
    discarded: Sequence[Discarded],
    eval_model: str | None,
) -> Generated:
    """One write transaction: every candidate as a draft version, each with its ``PromptGenerated`` event."""
    saved: list[GeneratedCandidate] = []
    async with runtime.db.transaction(write=True) as session:
        target, exists = await _save_target(session, principal, body, setup)
        for proposal in chosen:
            prompt, version = await _save_version(session, principal, target, exists, body, setup, proposal)
            exists = True
            saved.append(await _record(session, principal, body, proposal, prompt, version, eval_model))
    saved.sort(key=lambda c: -c.score)
    scoring = (
        f"score = 0.9 x mean case score on {len(setup.eval_cases)} case(s) ({eval_model}) + 0.1 x quality"
        if eval_model
        else "score = quality (lint findings and structure); give a dataset to score by evaluation"
    )
    return Generated(
        candidates=tuple(saved),
        prompt_id=prompt.id,
        name=prompt.name,
        template_id=body.template_id,
        base_version_id=setup.base.id if setup.base is not None else None,
        dataset_version_id=setup.dataset_version_id,
        cases=len(setup.eval_cases) if eval_model else 0,
        scoring=scoring,
        discarded=tuple(discarded),
    )


async def _save_target(
    session: AsyncSession, principal: Principal, body: PromptGenerationRequest, setup: Setup
) -> tuple[str, bool]:
    """(the prompt the candidates are saved on, whether it exists yet)."""
    if setup.base_prompt is not None:
        return setup.base_prompt.id, True
    name = body.name or f"generated/{slug(body.task)}"
    validate_prompt_name(name)
    try:
        await registry.get_prompt(session, principal, name)
    except NotFound:
        return name, False
    return name, True


async def _save_version(
    session: AsyncSession,
    principal: Principal,
    target: str,
    exists: bool,
    body: PromptGenerationRequest,
    setup: Setup,
    proposal: st.Proposal,
) -> tuple[Prompt, PromptVersion]:
    base = setup.base
    config = dict(setup.model_config)
    if proposal.params:
        config["params"] = {**(config.get("params") or {}), **proposal.params}
    fields: dict[str, Any] = {
        "kind": "text",
        "template": proposal.text,
        "variables": setup.variables,
        "modelConfig": config,
        "responseSchema": base.response_schema if base is not None else None,
        "metadata": {
            **((base.metadata_ or {}) if base is not None else {}),
            "promptopt": {
                "generatedBy": "generate",
                "strategy": proposal.strategy,
                "modelVersion": proposal.model_version,
                "task": body.task[:500],
            },
        },
        "commitMessage": f"Generated candidate ({proposal.strategy}) for: {body.task[:200]}",
        "source": "generated",
        "parentVersionId": base.id if base is not None else None,
    }
    if exists:
        return await registry.create_version(
            session, principal, target, CreateVersionIn.model_validate(fields)
        )
    new = {
        **fields,
        "name": target,
        "description": f"Generated for: {body.task[:1900]}",
        "tags": ["generated"],
    }
    return await registry.create_prompt(session, principal, CreatePromptIn.model_validate(new))


async def _record(
    session: AsyncSession,
    principal: Principal,
    body: PromptGenerationRequest,
    proposal: st.Proposal,
    prompt: Prompt,
    version: PromptVersion,
    eval_model: str | None,
) -> GeneratedCandidate:
    """Score a saved candidate (lint quality, and the evaluation when there was one) and audit it."""
    findings, _ = registry.stored_findings(version)
    q = quality(proposal.text, findings)
    score = q if proposal.score is None else round(0.9 * proposal.score + 0.1 * q, 4)
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
            "strategy": proposal.strategy,
            "modelVersion": proposal.model_version,
            "score": score,
        },
    )
    return GeneratedCandidate(
        prompt=proposal.text,
        score=score,
        model_version=proposal.model_version,
        prompt_id=prompt.id,
        version_id=version.id,
        version=version.version,
        strategy=proposal.strategy,
        quality_score=q,
        lint_findings=blocking_count(findings),
        eval_score=proposal.score,
        pass_rate=proposal.pass_rate,
        eval_model=eval_model,
        model_config=version.model_config_ or {},
    )
