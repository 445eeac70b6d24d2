"""Optimizations: create (validate everything, pin the starting version and the dataset version, split the
cases), read with the live trajectory, list candidates, cancel.

The search itself runs in :mod:`promptops.optimize.engine` as a durable background job (kind ``optimize``).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from promptops.auth.principal import Principal
from promptops.datasets import service as datasets
from promptops.datasets.binding import check_cases
from promptops.db import utcnow
from promptops.errors import Conflict, ValidationProblem
from promptops.evals import service as evals
from promptops.evals.schemas import ScorerSpec
from promptops.evals.scoring import scorers_for, validate_specs
from promptops.evals.scoring.builtin import normalise_label
from promptops.evals.scoring.registry import resolve as resolve_scorer
from promptops.governance import audit
from promptops.governance.rbac import Permission
from promptops.ids import new_id
from promptops.jobs import lifecycle
from promptops.jobs.lifecycle import JobPrincipal
from promptops.optimize.models import Optimization, OptimizationCandidate
from promptops.optimize.schemas import (
    OptimizationDataset,
    OptimizationIn,
    OptimizationSpec,
    ProposerSpec,
)
from promptops.optimize.search.mutations import Draft
from promptops.providers.calls import ModelCaller
from promptops.providers.schemas import ModelTarget
from promptops.providers.service import LOCAL_NAME
from promptops.registry import service as registry
from promptops.templates import engine as templates
from promptops.tenancy.service import get_scoped, scoped

if TYPE_CHECKING:
    from promptops.datasets.models import DatasetCase
    from promptops.registry.models import PromptVersion

MAX_DATASET_CASES = 20_000
# what an optimization request pins into the spec as given
SEARCH_OPTIONS = {
    "budget",
    "train_fraction",
    "seed",
    "top_k",
    "max_rounds",
    "patience",
    "candidates_per_round",
    "promote_label",
    "concurrency",
}
# Scorer types that call a model for every case (judges, embeddings): each is one more call per case.
MODEL_SCORERS = frozenset({"llm-rubric", "similar"})


def calls_per_case(scorers: Sequence[ScorerSpec]) -> int:
    """Upper bound of model calls one case costs: the target call plus one per model-backed scorer.

    Scorers from operators' entry points may call models too, so they are counted as if they did.
    """
    extra = 0
    for spec in scorers:
        try:
            entry, _ = resolve_scorer(spec.type)
        except KeyError:
            extra += 1
            continue
        scorer_type = getattr(entry.scorer, "type", spec.type)
        if not entry.builtin or scorer_type in MODEL_SCORERS:
            extra += 1
    return 1 + extra


def split_cases(
    cases: Sequence[DatasetCase], train_fraction: float, seed: int
) -> tuple[list[str], list[str]]:
    """(training ids, validation ids): deterministic by ``seed``, stratified by expected label when the cases
    have one, at least one case on each side."""
    groups: dict[str, list[DatasetCase]] = {}
    for case in cases:
        label = normalise_label(case.expected) if case.expected is not None else ""
        groups.setdefault(label, []).append(case)
    rng = random.Random(seed)  # noqa: S311 - a reproducible split, not security
    train: list[str] = []
    val: list[str] = []
    leftovers = 0.0
    for label in sorted(groups):
        members = sorted(groups[label], key=lambda c: c.key)
        rng.shuffle(members)
        exact = len(members) * train_fraction + leftovers
        n_train = int(exact)
        leftovers = exact - n_train
        train += [c.id for c in members[:n_train]]
        val += [c.id for c in members[n_train:]]
    if not train and len(val) > 1:
        train.append(val.pop(0))
    if not val and len(train) > 1:
        val.append(train.pop())
    return train, val


def version_draft(version: PromptVersion, target: dict[str, Any]) -> Draft:
    return Draft(
        kind=version.kind,
        template=version.template,
        messages=tuple((m["role"], m["content"]) for m in version.messages) if version.messages else None,
        params=dict(target.get("params") or {}),
    )


def proposer_mode(body: OptimizationIn, target: dict[str, Any]) -> str:
    mode = body.proposer.mode
    if mode != "auto":
        return mode
    if body.proposer.model is not None or target["provider"] != LOCAL_NAME:
        return "mixed"
    return "deterministic"


async def _check_promotion(session: AsyncSession, principal: Principal, label: str) -> None:
    """Refuse at start what set_label would refuse at the end: the label name and the principal's rights."""
    if label == "latest":
        raise ValidationProblem("'latest' is derived and cannot be set", code="invalid_label")
    registry.check_label_name(label)
    principal.require(Permission.LABEL_WRITE)
    if label in await registry.deployable_labels(session, principal.project_id):
        principal.require(Permission.LABEL_DEPLOY)


async def create_optimization(
    session: AsyncSession, principal: Principal, body: OptimizationIn, caller: ModelCaller
) -> Optimization:
    """Validate the request, split the dataset and queue the job; nothing is called here.

    Every problem a user can fix (unknown prompt, dataset, model or scorer, a budget too small for even one
    candidate, a label the user may not move) is a 4xx before a single model call.
    """
    prompt, version = await evals.resolve_prompt_ref(session, principal, body.prompt)
    if prompt.archived:
        raise Conflict(f"Prompt {prompt.name!r} is archived", code="prompt_archived")
    dataset, dataset_version = await datasets.resolve_version(session, principal, body.dataset)
    cases = await datasets.list_cases(session, principal, dataset_version.id, limit=MAX_DATASET_CASES + 1)
    if len(cases) > MAX_DATASET_CASES:
        raise ValidationProblem(
            f"Dataset {dataset.name!r} has more than {MAX_DATASET_CASES} cases; use a smaller version",
            code="dataset_too_large",
        )
    if len(cases) < 2:
        raise ValidationProblem(
            f"Dataset {dataset.name!r} version {dataset_version.version} needs at least 2 cases "
            "(a training and a validation split)",
            code="dataset_too_small",
        )
    await templates.preanalyze(version.kind, version.template, version.messages)  # off the event loop
    check_cases(cases, version)
    scorers = scorers_for(body.scorers, (c.expected for c in cases))
    if not scorers:
        raise ValidationProblem(
            "No scorers given and the dataset has no expected outputs to compare with; add 'scorers'",
            code="no_scorers",
        )
    validate_specs(scorers)
    if body.promote_label:
        await _check_promotion(session, principal, body.promote_label)

    target = body.model.model_dump() if body.model else evals.version_target(version)
    mode = proposer_mode(body, target)
    proposer_target = body.proposer.model.model_dump() if body.proposer.model else target
    await evals.check_targets(
        caller, principal, [target, proposer_target] if mode in ("llm", "mixed") else [target]
    )

    train_ids, val_ids = split_cases(cases, body.train_fraction, body.seed)
    train_ids, val_ids = train_ids[: body.max_train_cases], val_ids[: body.max_val_cases]
    per_case = calls_per_case(scorers)
    baseline = (len(train_ids) + len(val_ids)) * per_case
    one_candidate = (len(train_ids) + len(val_ids)) * per_case
    if body.budget < baseline + one_candidate:
        raise ValidationProblem(
            f"A budget of {body.budget} model calls is too small: scoring the starting version on "
            f"{len(train_ids)} training and {len(val_ids)} validation cases takes {baseline} calls and one "
            f"candidate {one_candidate} more; give at least {baseline + one_candidate} or use a smaller "
            "dataset (maxTrainCases, maxValCases)",
            code="budget_too_small",
        )
    used = sorted((await templates.analyze_async(version.kind, version.template, version.messages, [])).used)
    draft = version_draft(version, target)
    optimization = Optimization(
        id=new_id("optimization"),
        project_id=principal.project_id,
        prompt_id=prompt.id,
        base_version_id=version.id,
        dataset_version_id=dataset_version.id,
        spec=OptimizationSpec(
            **body.model_dump(include=SEARCH_OPTIONS),
            ref=body.prompt,
            prompt_name=prompt.name,
            version=version.version,
            dataset=OptimizationDataset(name=dataset.name, version=dataset_version.version, ref=body.dataset),
            target=ModelTarget.model_validate(target),
            scorers=scorers,
            calls_per_case=per_case,
            proposer=ProposerSpec(
                mode=mode,
                target=ModelTarget.model_validate(proposer_target),
                per_round=body.proposer.per_round,
            ),
            train_case_ids=train_ids,
            val_case_ids=val_ids,
            variables=used,
            base=draft.to_json(),
            principal=JobPrincipal.of(principal),
        ).dump(),
        status=lifecycle.QUEUED,
        calls_used=0,
        report={"round": 0, "phase": "queued"},
        created_by=principal.id,
        created_at=utcnow(),
    )
    session.add(optimization)
    await session.flush()
    await audit.record(
        session,
        principal,
        "OptimizationStarted",
        prompt_id=prompt.id,
        data={
            "optimizationId": optimization.id,
            "promptId": prompt.id,
            "templateId": version.id,
            "version": version.version,
            "dataset": dataset.name,
            "datasetVersion": dataset_version.version,
            "budget": body.budget,
            "target": evals.target_label(target),
            "trainCases": len(train_ids),
            "valCases": len(val_ids),
            "proposer": mode,
            "promoteLabel": body.promote_label,
        },
    )
    return optimization


# --- reading --------------------------------------------------------------------------------------------


async def get_optimization(session: AsyncSession, principal: Principal, optimization_id: str) -> Optimization:
    return await get_scoped(
        session,
        principal,
        Optimization,
        optimization_id,
        missing=f"Optimization {optimization_id} not found",
        code="optimization_not_found",
    )


async def candidates_of(session: AsyncSession, optimization: Optimization) -> list[OptimizationCandidate]:
    """Every candidate of an optimization in the order it was proposed."""
    rows = (
        await session.execute(
            select(OptimizationCandidate).where(
                OptimizationCandidate.project_id == optimization.project_id,
                OptimizationCandidate.optimization_id == optimization.id,
            )
        )
    ).scalars()
    return sorted(rows, key=lambda c: (c.round, (c.details or {}).get("seq", 0), c.id))


async def list_optimizations(
    session: AsyncSession,
    principal: Principal,
    *,
    status: str | None = None,
    prompt: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> tuple[list[Optimization], str | None]:
    """Optimizations, newest first; ``prompt`` (id or name) keeps those of one prompt."""
    stmt = scoped(select(Optimization), Optimization, principal)
    if prompt:
        found = await registry.get_prompt(session, principal, prompt)
        stmt = stmt.where(Optimization.prompt_id == found.id)
    return await lifecycle.list_page(session, stmt, Optimization, status=status, cursor=cursor, limit=limit)


def trajectory(candidates: Sequence[OptimizationCandidate]) -> list[dict[str, Any]]:
    """One row per candidate: the report the CLI prints."""
    return [
        {
            "candidateId": c.id,
            "round": c.round,
            "strategy": c.strategy,
            "status": (c.details or {}).get("status", "scored"),
            "screenScore": ((c.details or {}).get("screen") or {}).get("score"),
            "trainScore": c.train_score,
            "valScore": c.val_score,
            "calls": c.calls,
            "tokens": (c.details or {}).get("tokens"),
            "parentId": c.parent_candidate_id,
        }
        for c in candidates
    ]


async def cancel_optimization(
    session: AsyncSession, principal: Principal, optimization_id: str
) -> Optimization:
    """Ask a queued or running optimization to stop; evaluated candidates are kept, no version is saved."""
    optimization = await get_optimization(session, principal, optimization_id)
    lifecycle.request_cancel(optimization, what="Optimization", code="optimization_finished")
    await audit.record(
        session,
        principal,
        "OptimizationCancelled",
        prompt_id=optimization.prompt_id,
        data={"optimizationId": optimization.id, "callsUsed": optimization.calls_used},
    )
    return optimization
