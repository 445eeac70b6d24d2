"""REST face of the optimizer (``/api/v1/optimizations``): start a search, follow it, read its candidates."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from promptops.auth.deps import require
from promptops.auth.principal import Principal
from promptops.governance.rbac import Permission as P
from promptops.idempotency import idempotent
from promptops.jobs import lifecycle
from promptops.jobs.lifecycle import JobStatus
from promptops.optimize import engine, service
from promptops.optimize.models import Optimization, OptimizationCandidate
from promptops.optimize.schemas import (
    CandidateOut,
    CandidatePage,
    OptimizationIn,
    OptimizationOut,
    OptimizationPage,
)
from promptops.runtime import runtime_of

router = APIRouter(prefix="/api/v1/optimizations", tags=["promptopt optimizer"])
Reader = Annotated[Principal, Depends(require(P.PROMPT_READ))]
Optimizer = Annotated[Principal, Depends(require(P.PROMPT_OPTIMIZE))]


def optimization_out(
    optimization: Optimization, candidates: list[OptimizationCandidate] | None = None
) -> OptimizationOut:
    report = dict(optimization.report or {})
    spec = optimization.spec_model
    best = report.get("best") or {}
    return OptimizationOut(
        id=optimization.id,
        status=optimization.status,
        prompt_id=optimization.prompt_id,
        base_version_id=optimization.base_version_id,
        dataset_version_id=optimization.dataset_version_id,
        spec=spec.public(),
        budget=spec.budget,
        calls_used=optimization.calls_used,
        round=int(report.get("round", 0)),
        phase=str(report.get("phase", optimization.status)),
        best_candidate_id=optimization.best_candidate_id or best.get("candidateId"),
        best_train_score=best.get("trainScore"),
        winner_version_id=optimization.winner_version_id,
        report=report,
        trajectory=service.trajectory(candidates) if candidates is not None else [],
        cancel_requested=optimization.cancel_requested,
        attempts=optimization.attempts,
        error=optimization.error,
        created_by=optimization.created_by,
        created_at=optimization.created_at,
        started_at=optimization.started_at,
        finished_at=optimization.finished_at,
    )


def candidate_out(row: OptimizationCandidate) -> CandidateOut:
    details = dict(row.details or {})
    status = details.pop("status", "scored")
    recipe = details.pop("recipe", {})
    tokens = details.pop("tokens", 0)
    details.pop("draft", None)
    details.pop("seq", None)
    return CandidateOut(
        id=row.id,
        round=row.round,
        strategy=row.strategy,
        template=row.template,
        parent_candidate_id=row.parent_candidate_id,
        train_score=row.train_score,
        val_score=row.val_score,
        calls=row.calls,
        status=status,
        tokens=tokens,
        recipe=recipe,
        details=details,
        created_at=row.created_at,
    )


@router.post(
    "", status_code=201, response_model=OptimizationOut, summary="Start an optimization (background job)"
)
@idempotent
async def start(request: Request, principal: Optimizer, body: OptimizationIn) -> OptimizationOut:
    runtime = runtime_of(request)
    return await lifecycle.start(
        runtime,
        engine.KIND,
        lambda session: service.create_optimization(session, principal, body, runtime.caller),
        lambda optimization: optimization_out(optimization, []),
    )


@router.get("", response_model=OptimizationPage, summary="List optimizations, newest first")
async def list_optimizations(
    request: Request,
    principal: Reader,
    status: JobStatus | None = None,
    prompt: Annotated[str | None, Query(max_length=200, description="Prompt id or name")] = None,
    cursor: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> OptimizationPage:
    async with runtime_of(request).db.transaction() as session:
        rows, next_cursor = await service.list_optimizations(
            session, principal, status=status, prompt=prompt, cursor=cursor, limit=limit
        )
        return OptimizationPage(items=[optimization_out(r) for r in rows], next_cursor=next_cursor)


@router.get("/{optimization_id}", response_model=OptimizationOut, summary="Progress, trajectory and result")
async def get_optimization(optimization_id: str, request: Request, principal: Reader) -> OptimizationOut:
    async with runtime_of(request).db.transaction() as session:
        optimization = await service.get_optimization(session, principal, optimization_id)
        return optimization_out(optimization, await service.candidates_of(session, optimization))


@router.get(
    "/{optimization_id}/candidates",
    response_model=CandidatePage,
    summary="Every candidate with its template and scores",
)
async def list_candidates(optimization_id: str, request: Request, principal: Reader) -> CandidatePage:
    async with runtime_of(request).db.transaction() as session:
        optimization = await service.get_optimization(session, principal, optimization_id)
        rows = await service.candidates_of(session, optimization)
        return CandidatePage(items=[candidate_out(r) for r in rows])


@router.post(
    "/{optimization_id}/cancel",
    response_model=OptimizationOut,
    summary="Cancel a queued or running optimization",
)
async def cancel(optimization_id: str, request: Request, principal: Optimizer) -> OptimizationOut:
    async with runtime_of(request).db.transaction(write=True) as session:
        optimization = await service.cancel_optimization(session, principal, optimization_id)
        return optimization_out(optimization, await service.candidates_of(session, optimization))
