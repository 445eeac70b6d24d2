"""REST face of evaluations (``/api/v1/evals``; the seed 004 ``POST /api/prompt/evaluate`` is in
``promptops.contract_api``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from promptops.auth.deps import require
from promptops.auth.principal import Principal
from promptops.evals import scoring, service
from promptops.evals.models import EvalRun
from promptops.evals.schemas import (
    ComparisonOut,
    EvalResultOut,
    EvalResultPage,
    EvalRunIn,
    EvalRunOut,
    EvalRunPage,
    LatestEvalOut,
    ScorerTypeOut,
    dump_scorers,
)
from promptops.governance.rbac import Permission as P
from promptops.idempotency import idempotent
from promptops.jobs import lifecycle
from promptops.jobs.lifecycle import JobStatus
from promptops.pagination import PageLimit, PromptFilter, VersionIdFilter
from promptops.runtime import runtime_of

router = APIRouter(prefix="/api/v1/evals", tags=["evaluations"])
Reader = Annotated[Principal, Depends(require(P.EVAL_READ))]
Runner = Annotated[Principal, Depends(require(P.EVAL_RUN))]


def run_out(run: EvalRun, summary: list[dict] | None = None) -> EvalRunOut:
    spec = run.spec_model
    return EvalRunOut(
        id=run.id,
        name=run.name,
        status=run.status,
        dataset_id=run.dataset_id,
        dataset_version_id=run.dataset_version_id,
        dataset=spec.dataset.dump() if spec.dataset is not None else {},
        versions=[v.dump() for v in spec.versions],
        scorers=dump_scorers(spec.scorers),
        concurrency=spec.concurrency,
        pass_threshold=spec.pass_threshold,
        total_cells=run.total_cells,
        done_cells=run.done_cells,
        error_cells=run.error_cells,
        progress=round(run.done_cells / run.total_cells, 4) if run.total_cells else 0.0,
        cancel_requested=run.cancel_requested,
        attempts=run.attempts,
        error=run.error,
        summary=summary if summary is not None else (run.summary.get("groups") or []),
        created_by=run.created_by,
        created_at=run.created_at,
        started_at=run.started_at,
        finished_at=run.finished_at,
    )


@router.post("", status_code=201, response_model=EvalRunOut, summary="Start an evaluation (background job)")
@idempotent
async def create_eval(request: Request, principal: Runner, body: EvalRunIn) -> EvalRunOut:
    runtime = runtime_of(request)
    return await lifecycle.start(
        runtime, "eval", lambda session: service.create_run(session, principal, body, runtime.caller), run_out
    )


@router.get("", response_model=EvalRunPage, summary="List evaluations, newest first")
async def list_evals(
    request: Request,
    principal: Reader,
    status: JobStatus | None = None,
    prompt: PromptFilter = None,
    dataset: Annotated[str | None, Query(max_length=200)] = None,
    cursor: Annotated[str | None, Query(max_length=100)] = None,
    limit: PageLimit = 50,
) -> EvalRunPage:
    async with runtime_of(request).db.transaction() as session:
        rows, next_cursor = await service.list_runs(
            session, principal, status=status, prompt=prompt, dataset=dataset, cursor=cursor, limit=limit
        )
        return EvalRunPage(items=[run_out(r) for r in rows], next_cursor=next_cursor)


@router.get(
    "/scorers", response_model=list[ScorerTypeOut], summary="Scorer types, their value rule and options"
)
async def scorer_types(principal: Reader) -> list[ScorerTypeOut]:
    return [ScorerTypeOut.model_validate(row) for row in scoring.describe_types()]


@router.get("/compare", response_model=ComparisonOut, summary="Paired comparison with significance")
async def compare(
    request: Request,
    principal: Reader,
    run: Annotated[str, Query(min_length=1, max_length=40, description="Evaluation holding side A")],
    against: Annotated[
        str | None, Query(max_length=40, description="Evaluation holding side B (default: the same)")
    ] = None,
    a: Annotated[
        str | None, Query(max_length=250, description="Version of side A (id, ref or label)")
    ] = None,
    b: Annotated[str | None, Query(max_length=250, description="Version of side B")] = None,
    target_a: Annotated[int, Query(alias="targetA", ge=0, le=9)] = 0,
    target_b: Annotated[int, Query(alias="targetB", ge=0, le=9)] = 0,
    alpha: Annotated[float, Query(gt=0, lt=0.5)] = 0.05,
) -> ComparisonOut:
    async with runtime_of(request).db.transaction() as session:
        result = await service.compare(
            session,
            principal,
            run_a=run,
            run_b=against,
            version_a=a,
            version_b=b,
            target_a=target_a,
            target_b=target_b,
            alpha=alpha,
        )
    return ComparisonOut.model_validate(result)


@router.get("/latest", response_model=LatestEvalOut, summary="Latest completed evaluation of a version")
async def latest(
    request: Request,
    principal: Reader,
    prompt: Annotated[str, Query(min_length=1, max_length=250, description="name@label, name@3 or ver_ id")],
) -> LatestEvalOut:
    async with runtime_of(request).db.transaction() as session:
        _, version = await service.resolve_prompt_ref(session, principal, prompt)
        return LatestEvalOut.model_validate(await service.latest_for_version(session, principal, version.id))


@router.get("/{run_id}", response_model=EvalRunOut, summary="One evaluation with progress and aggregates")
async def get_eval(run_id: str, request: Request, principal: Reader) -> EvalRunOut:
    async with runtime_of(request).db.transaction() as session:
        run = await service.get_run(session, principal, run_id)
        return run_out(run, await service.live_summary(session, run))


@router.get("/{run_id}/results", response_model=EvalResultPage, summary="Per-case results")
async def list_results(
    run_id: str,
    request: Request,
    principal: Reader,
    version_id: VersionIdFilter = None,
    target_index: Annotated[int | None, Query(alias="targetIndex", ge=0, le=9)] = None,
    passed: bool | None = None,
    errors: bool = False,
    case_key: Annotated[str | None, Query(alias="caseKey", max_length=200)] = None,
    cursor: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> EvalResultPage:
    async with runtime_of(request).db.transaction() as session:
        rows, next_cursor = await service.list_results(
            session,
            principal,
            run_id,
            version_id=version_id,
            target_index=target_index,
            passed=passed,
            errors_only=errors,
            case_key=case_key,
            cursor=cursor,
            limit=limit,
        )
        return EvalResultPage(items=[EvalResultOut.model_validate(r) for r in rows], next_cursor=next_cursor)


@router.post("/{run_id}/cancel", response_model=EvalRunOut, summary="Cancel a queued or running evaluation")
async def cancel(run_id: str, request: Request, principal: Runner) -> EvalRunOut:
    async with runtime_of(request).db.transaction(write=True) as session:
        return run_out(await service.cancel_run(session, principal, run_id))
