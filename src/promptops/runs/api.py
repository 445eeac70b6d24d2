"""REST face of runs."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request

from promptops.auth.deps import require
from promptops.auth.principal import Principal
from promptops.governance.rbac import Permission as P
from promptops.pagination import IdCursor, PageLimit, PromptFilter, Since, Until, VersionIdFilter
from promptops.registry import service as registry
from promptops.runs import service
from promptops.runs.schemas import RunOut, RunPage
from promptops.runtime import runtime_of

router = APIRouter(prefix="/api/v1/runs", tags=["runs"])
Reader = Annotated[Principal, Depends(require(P.RUN_READ))]


@router.get("", response_model=RunPage, summary="List runs, newest first")
async def list_runs(
    request: Request,
    principal: Reader,
    prompt: PromptFilter = None,
    version_id: VersionIdFilter = None,
    model: Annotated[str | None, Query(max_length=200)] = None,
    provider: Annotated[str | None, Query(max_length=64)] = None,
    status: Literal["ok", "error"] | None = None,
    source: Literal["playground", "eval", "gateway", "sdk", "experiment"] | None = None,
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
