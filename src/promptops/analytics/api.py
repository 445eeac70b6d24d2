"""REST face of the dashboards: aggregate endpoints over the runs rollup, feedback and evaluations."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from promptops.analytics import service
from promptops.analytics.schemas import (
    Bucket,
    EvalPoint,
    EvalVersionPoint,
    FeedbackPoint,
    GroupBy,
    QualityBucket,
    QualityOut,
    SeriesKey,
    TopBy,
    TopItem,
    TopMetric,
    TopOut,
    UsagePoint,
    UsageSeriesOut,
    UsageStats,
)
from promptops.auth.deps import require
from promptops.auth.principal import Principal
from promptops.governance.rbac import Permission as P
from promptops.pagination import PromptFilter, Since, Until
from promptops.registry import service as registry
from promptops.runtime import runtime_of

router = APIRouter(prefix="/api/v1/analytics", tags=["analytics"])
Reader = Annotated[Principal, Depends(require(P.RUN_READ))]
SeriesLimit = Annotated[
    int, Query(ge=1, le=50, description="Largest groups shown as series (the rest: 'other')")
]
RunSource = Annotated[str | None, Query(pattern="^(playground|eval|gateway|sdk|experiment|search)$")]


@router.get(
    "/usage", response_model=UsageSeriesOut, summary="Runs, errors, tokens, cost and latency per time bucket"
)
async def usage(
    request: Request,
    principal: Reader,
    since: Since = None,
    until: Until = None,
    bucket: Bucket = "day",
    group_by: Annotated[GroupBy, Query(alias="groupBy")] = "none",
    prompt: PromptFilter = None,
    model: Annotated[str | None, Query(max_length=200)] = None,
    source: RunSource = None,
    limit: SeriesLimit = 10,
) -> UsageSeriesOut:
    win = service.window(since, until, bucket)
    async with runtime_of(request).db.transaction() as session:
        prompt_id = await registry.prompt_id_of(session, principal, prompt) if prompt else None
        found = await service.usage(
            session,
            principal,
            win,
            group_by=group_by,
            prompt_id=prompt_id,
            model=model,
            source=source,
            limit=limit,
        )
    return UsageSeriesOut(
        from_=win.since,
        to=win.until,
        bucket=bucket,
        group_by=group_by,
        buckets=[service.at_hour(start) for start in win.starts()],
        keys=[SeriesKey.model_validate(key) for key in found.keys],
        series=[UsagePoint.model_validate(point) for point in found.points],
        totals=UsageStats.model_validate(found.totals),
        other_keys=found.other_keys,
    )


@router.get(
    "/top", response_model=TopOut, summary="Prompts or models ranked by cost, runs, errors or p95 latency"
)
async def top(
    request: Request,
    principal: Reader,
    since: Since = None,
    until: Until = None,
    by: TopBy = "prompt",
    metric: TopMetric = "cost",
    limit: SeriesLimit = 10,
) -> TopOut:
    win = service.window(since, until, "hour", max_buckets=None)
    async with runtime_of(request).db.transaction() as session:
        ranked = await service.top(session, principal, win, by=by, metric=metric, limit=limit)
    return TopOut(
        from_=win.since,
        to=win.until,
        by=by,
        metric=metric,
        items=[
            TopItem(key=SeriesKey.model_validate(key), **UsageStats.model_validate(stats).model_dump())
            for key, stats in ranked
        ],
    )


@router.get(
    "/quality", response_model=QualityOut, summary="Feedback and evaluation score trends per time bucket"
)
async def quality(
    request: Request,
    principal: Reader,
    since: Since = None,
    until: Until = None,
    bucket: QualityBucket = "day",
    prompt: PromptFilter = None,
) -> QualityOut:
    win = service.window(since, until, bucket)
    async with runtime_of(request).db.transaction() as session:
        prompt_id = await registry.prompt_id_of(session, principal, prompt) if prompt else None
        found = await service.quality(session, principal, win, prompt_id=prompt_id)
    return QualityOut(
        from_=win.since,
        to=win.until,
        bucket=bucket,
        buckets=[service.at_hour(start) for start in win.starts()],
        feedback=[FeedbackPoint.model_validate(point) for point in found.feedback],
        evals=[EvalPoint.model_validate(point) for point in found.evals],
        eval_versions=[EvalVersionPoint.model_validate(point) for point in found.eval_versions],
        truncated=found.truncated,
    )
