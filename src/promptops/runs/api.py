"""REST face of runs."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from promptops.auth.deps import require
from promptops.auth.principal import Principal
from promptops.errors import Conflict, ProblemError, ValidationProblem
from promptops.experiments import service as experiments
from promptops.governance.rbac import Permission as P
from promptops.pagination import IdCursor, PageLimit, PromptFilter, Since, Until, VersionIdFilter
from promptops.registry import service as registry
from promptops.runs import service
from promptops.runs.schemas import RunBatchIn, RunBatchOut, RunIn, RunOut, RunPage
from promptops.runtime import runtime_of

router = APIRouter(prefix="/api/v1/runs", tags=["runs"])
Reader = Annotated[Principal, Depends(require(P.RUN_READ))]
Writer = Annotated[Principal, Depends(require(P.RUN_WRITE))]


@router.get("", response_model=RunPage, summary="List runs, newest first")
async def list_runs(
    request: Request,
    principal: Reader,
    prompt: PromptFilter = None,
    version_id: VersionIdFilter = None,
    model: Annotated[str | None, Query(max_length=200)] = None,
    provider: Annotated[str | None, Query(max_length=64)] = None,
    status: Literal["ok", "error"] | None = None,
    source: Literal["playground", "eval", "gateway", "sdk", "experiment", "search"] | None = None,
    since: Since = None,
    until: Until = None,
    trace_id: Annotated[str | None, Query(alias="traceId", max_length=64)] = None,
    min_cost: Annotated[
        float | None, Query(alias="minCostUsd", ge=0, le=1_000_000, description="Cost at least (USD)")
    ] = None,
    max_cost: Annotated[
        float | None, Query(alias="maxCostUsd", ge=0, le=1_000_000, description="Cost at most (USD)")
    ] = None,
    cursor: IdCursor = None,
    limit: PageLimit = 50,
) -> RunPage:
    async with runtime_of(request).db.transaction() as session:
        rows, next_cursor = await service.list_runs(
            session,
            principal,
            prompt_id=await registry.prompt_id_of(session, principal, prompt) if prompt else None,
            version_id=version_id,
            model=model,
            provider=provider,
            status=status,
            source=source,
            since=since,
            until=until,
            trace_id=trace_id,
            cost=(min_cost, max_cost),
            cursor=cursor,
            limit=limit,
        )
    return RunPage(items=[RunOut.model_validate(r) for r in rows], next_cursor=next_cursor)


@router.get("/{run_id}", response_model=RunOut, summary="One run")
async def get_run(run_id: str, request: Request, principal: Reader) -> RunOut:
    async with runtime_of(request).db.transaction() as session:
        return RunOut.model_validate(await service.get_run(session, principal, run_id))


async def _check_arm(
    session: AsyncSession,
    principal: Principal,
    experiment_id: str,
    arm: str,
    index: int,
    arms: dict[str, set[str]],
) -> None:
    """A run tagged with an experiment names an experiment of this project and one of its arms."""
    if experiment_id not in arms:
        try:
            view = await experiments.get_experiment(session, principal, experiment_id)
        except ProblemError as problem:
            problem.detail = f"Run {index}: {problem.detail}"
            problem.extra["index"] = index
            raise
        arms[experiment_id] = {a.name for a in view.arms}
    if arm not in arms[experiment_id]:
        raise ValidationProblem(
            f"Run {index}: experiment {experiment_id} has no arm {arm!r}; its arms: "
            + ", ".join(sorted(arms[experiment_id])),
            code="unknown_arm",
            index=index,
        )


async def _attribution(
    session: AsyncSession,
    principal: Principal,
    body: RunIn,
    index: int,
    seen: dict[tuple[str, ...], tuple[str | None, str | None]],
) -> tuple[str | None, str | None]:
    """(prompt id, version id) of one ingested run, resolved in the caller's project (errors name the item)."""
    if body.version is not None and body.prompt is None:
        raise ValidationProblem(
            f"Run {index}: 'version' needs 'prompt'", code="validation_error", index=index
        )
    key = (body.prompt or "", str(body.version or ""), body.version_id or "")
    if key in seen:
        return seen[key]
    try:
        if body.version_id is not None:
            found = await registry.get_version_by_id(session, principal, body.version_id)
            if body.prompt is not None and found.prompt_id != await registry.prompt_id_of(
                session, principal, body.prompt
            ):
                raise ValidationProblem(
                    f"Version {body.version_id} does not belong to prompt {body.prompt!r}",
                    code="version_mismatch",
                )
            if body.version is not None and found.version != body.version:
                raise ValidationProblem(
                    f"Version {body.version_id} is version {found.version}, not {body.version}",
                    code="version_mismatch",
                )
            attribution: tuple[str | None, str | None] = (found.prompt_id, found.id)
        elif body.prompt is not None and body.version is not None:
            prompt, version, _ = await registry.resolve(session, principal, body.prompt, version=body.version)
            attribution = (prompt.id, version.id)
        elif body.prompt is not None:
            attribution = ((await registry.get_prompt(session, principal, body.prompt)).id, None)
        else:
            attribution = (None, None)
    except ProblemError as problem:
        problem.detail = f"Run {index}: {problem.detail}"
        problem.extra["index"] = index
        raise
    seen[key] = attribution
    return attribution


@router.post("/batch", response_model=RunBatchOut, summary="Record runs made elsewhere (SDK traces)")
async def ingest_runs(body: RunBatchIn, request: Request, principal: Writer) -> RunBatchOut:
    """Up to 500 runs in one transaction: a bad item rejects the whole batch (its ``index`` in the problem);
    client run ids make a retried batch idempotent (stored ids count as ``duplicates``)."""
    try:
        async with runtime_of(request).db.transaction(write=True) as session:
            seen: dict[tuple[str, ...], tuple[str | None, str | None]] = {}
            arms: dict[str, set[str]] = {}
            items = []
            for index, run in enumerate(body.runs):
                prompt_id, version_id = await _attribution(session, principal, run, index, seen)
                if run.experiment_id is not None and run.arm is not None:
                    await _check_arm(session, principal, run.experiment_id, run.arm, index, arms)
                items.append(service.IngestItem(run, prompt_id, version_id))
            result = await service.ingest_runs(session, principal, items)
    except IntegrityError:
        # A concurrent batch stored one of these client ids first: retrying answers it as a duplicate.
        raise Conflict(
            "A concurrent request recorded some of these run ids; retry the batch", code="run_id_conflict"
        )
    return RunBatchOut(accepted=result.accepted, duplicates=result.duplicates, run_ids=result.run_ids)
