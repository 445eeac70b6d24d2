"""REST face of monitoring: per-version charts, one metric, drift checks, online-evaluation configs and samples.

Routes with a suffix after the prompt name (``/drift``, ``/metrics/{metric}``) are declared before the bare
``/prompts/{name}`` route, so a nested prompt name never swallows them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

import promptops.registry.api  # noqa: F401  (registers the {name:prompt} path convertor)
from promptops.auth.deps import require
from promptops.auth.principal import Principal
from promptops.governance.rbac import Permission as P
from promptops.monitoring import online, service
from promptops.monitoring.drift import DriftSignal
from promptops.monitoring.metrics import Cell, at_hour
from promptops.monitoring.models import OnlineEvalConfig
from promptops.monitoring.schemas import (
    DriftReportOut,
    DriftSignalOut,
    DriftSkippedOut,
    DriftWindowOut,
    MonitoringBucket,
    MonitoringIntervalOut,
    MonitoringMetric,
    MonitoringMetricOut,
    MonitoringPointOut,
    MonitoringSeriesOut,
    MonitoringStatsOut,
    MonitoringVersionOut,
    OnlineEvalConfigIn,
    OnlineEvalConfigListOut,
    OnlineEvalConfigOut,
    OnlineEvalSampleOut,
    OnlineEvalSamplePage,
    OnlineEvalStatus,
)
from promptops.pagination import IdCursor, PageLimit, PromptFilter, Since, Until
from promptops.registry import service as registry
from promptops.runtime import runtime_of

router = APIRouter(prefix="/api/v1/monitoring", tags=["monitoring"])
Reader = Annotated[Principal, Depends(require(P.RUN_READ))]
Manager = Annotated[Principal, Depends(require(P.MONITORING_MANAGE))]
Label = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=63,
        description="Label whose serving versions are monitored (default production); '*' = every version",
    ),
]
WindowMinutes = Annotated[int, Query(alias="windowMinutes", ge=1, le=90 * 24 * 60)]
BaselineMinutes = Annotated[int, Query(alias="baselineMinutes", ge=1, le=90 * 24 * 60)]
Alpha = Annotated[float, Query(gt=0, lt=0.5, description="Significance level of every drift test")]
EVERY = "*"


def _label(value: str | None) -> str | None:
    """The label asked for: production unless given; ``*`` means every version (no label)."""
    if value is None:
        return service.DEFAULT_LABEL
    return None if value == EVERY else value


def stats_out(cell: Cell) -> MonitoringStatsOut:
    return MonitoringStatsOut(
        runs=cell.runs,
        errors=cell.errors,
        error_rate=cell.error_rate,
        input_tokens=cell.input_tokens,
        output_tokens=cell.output_tokens,
        tokens=cell.tokens,
        cost_usd=round(cell.cost_usd, 8),
        latency_ms_avg=cell.latency_ms_avg,
        latency_p50_ms=cell.latency_p50_ms,
        latency_p95_ms=cell.latency_p95_ms,
        feedback_count=cell.feedback_count,
        feedback_scored=cell.feedback_scored,
        feedback_mean=cell.feedback_mean,
        thumbs_up=cell.thumbs_up,
        thumbs_down=cell.thumbs_down,
        online_scored=cell.online_scored,
        online_passed=cell.online_passed,
        online_failed=cell.online_failed,
        online_eval_pass_rate=cell.online_pass_rate,
        online_score_mean=cell.online_score_mean,
    )


def _point(cell: Cell, start: int, version_id: str) -> MonitoringPointOut:
    return MonitoringPointOut(
        bucket_start=at_hour(start), version_id=version_id, **stats_out(cell).model_dump(by_alias=False)
    )


def signal_out(signal: DriftSignal) -> DriftSignalOut:
    return DriftSignalOut(
        name=signal.name,
        statistic=signal.statistic,
        threshold=signal.threshold,
        drifted=signal.drifted,
        detail=signal.detail,
        p_value=signal.p_value,
        baseline_value=signal.baseline_value,
        current_value=signal.current_value,
        change_point_at=signal.change_point_at,
    )


def drift_out(report: service.DriftReport) -> DriftReportOut:
    assert report.current is not None and report.baseline is not None
    return DriftReportOut(
        prompt_id=report.prompt_id,
        prompt_name=report.prompt_name,
        label=report.label,
        drifted=report.drifted,
        alpha=report.alpha,
        current=DriftWindowOut(
            from_=report.current[0],
            to=report.current[1],
            runs=report.current_runs,
            scores=report.current_scores,
        ),
        baseline=DriftWindowOut(
            from_=report.baseline[0],
            to=report.baseline[1],
            runs=report.baseline_runs,
            scores=report.baseline_scores,
        ),
        signals=[signal_out(s) for s in report.signals],
        skipped=[DriftSkippedOut(name=name, reason=reason) for name, reason in report.skipped],
        run_ids=report.run_ids,
    )


@router.get(
    "/prompts/{name:prompt}/drift",
    response_model=DriftReportOut,
    summary="Drift of a prompt label: the current window against a baseline window",
)
async def drift(
    name: str,
    request: Request,
    principal: Reader,
    label: Label = None,
    window_minutes: WindowMinutes = 24 * 60,
    baseline_minutes: BaselineMinutes = 7 * 24 * 60,
    alpha: Alpha = 0.01,
    to: Until = None,
) -> DriftReportOut:
    """Output label distribution (chi-square, PSI), output length, refusal rate, online score, input length
    and embedding, latency and cost changes with change points; ``runIds``: runs to review when drifted."""
    async with runtime_of(request).db.transaction() as session:
        report = await service.drift_check(
            session,
            principal.project_id,
            prompt_name=name,
            label=_label(label),
            window=timedelta(minutes=window_minutes),
            baseline=timedelta(minutes=baseline_minutes),
            now=to or datetime.now(UTC),
            alpha=alpha,
        )
    return drift_out(report)


@router.get(
    "/prompts/{name:prompt}/metrics/{metric}",
    response_model=MonitoringMetricOut,
    summary="One metric of a prompt label over a trailing window",
)
async def metric(
    name: str,
    metric: MonitoringMetric,
    request: Request,
    principal: Reader,
    label: Label = None,
    window_minutes: WindowMinutes = 60,
    to: Until = None,
) -> MonitoringMetricOut:
    now = to or datetime.now(UTC)
    span = timedelta(minutes=window_minutes)
    async with runtime_of(request).db.transaction() as session:
        prompt = await registry.get_prompt(session, principal, name)
        found = await service.metric_value(
            session,
            principal.project_id,
            prompt_name=prompt.id,
            label=_label(label),
            metric=metric,
            window=span,
            now=now,
        )
    return MonitoringMetricOut(
        prompt_name=prompt.name,
        label=_label(label),
        metric=metric,
        from_=now - span,
        to=now,
        value=found.value if found else None,
        samples=found.samples if found else 0,
    )


@router.get(
    "/prompts/{name:prompt}",
    response_model=MonitoringSeriesOut,
    summary="Per-version metrics of a prompt label over time",
)
async def prompt_series(
    name: str,
    request: Request,
    principal: Reader,
    label: Label = None,
    since: Since = None,
    until: Until = None,
    bucket: MonitoringBucket = "hour",
) -> MonitoringSeriesOut:
    """Volume, errors, latency p50/p95, tokens, cost, feedback mean and online pass rate per bucket for each
    version that served the label in the range (``label=*``: every version)."""
    win = service.monitoring_window(since, until, bucket)
    async with runtime_of(request).db.transaction() as session:
        found = await service.series(session, principal, name, label=_label(label), win=win)
    serving = {v.version_id: v for v in found.scope.versions}
    return MonitoringSeriesOut(
        prompt_id=found.scope.prompt_id,
        prompt_name=found.scope.prompt_name,
        label=found.scope.label,
        from_=win.since,
        to=win.until,
        bucket=bucket,
        buckets=[at_hour(start) for start in win.starts()],
        versions=[
            MonitoringVersionOut(
                version_id=vid,
                version=number,
                serving=[
                    MonitoringIntervalOut(start=start, end=end)
                    for start, end in (serving[vid].intervals if vid in serving else [])
                ],
                totals=stats_out(found.per_version[vid]),
            )
            for vid, number in found.versions
        ],
        points=[_point(cell, start, vid) for (start, vid), cell in sorted(found.points.items())],
        overall=[_point(found.per_bucket[start], start, "") for start in win.starts()],
        totals=stats_out(found.totals),
    )


# --- online evaluation -------------------------------------------------------------------------------------------


def config_out(config: OnlineEvalConfig) -> OnlineEvalConfigOut:
    return OnlineEvalConfigOut(
        id=config.id,
        prompt_id=config.prompt_id or None,
        prompt_name=config.prompt_name or None,
        label=config.label or None,
        sample_rate=config.sample_rate,
        scorers=list(config.scorers),
        pass_threshold=config.pass_threshold,
        sources=list(config.sources),
        enabled=config.enabled,
        scanned_until=config.scanned_until,
        created_at=config.created_at,
        updated_at=config.updated_at,
    )


@router.get(
    "/online-evals/configs", response_model=OnlineEvalConfigListOut, summary="Online-evaluation configs"
)
async def list_configs(request: Request, principal: Reader) -> OnlineEvalConfigListOut:
    async with runtime_of(request).db.transaction() as session:
        return OnlineEvalConfigListOut(
            items=[config_out(c) for c in await online.list_configs(session, principal)]
        )


@router.put(
    "/online-evals/configs",
    response_model=OnlineEvalConfigOut,
    summary="Create or replace the online-evaluation config of a prompt (label) or the project",
)
async def put_config(
    body: OnlineEvalConfigIn, request: Request, response: Response, principal: Manager
) -> OnlineEvalConfigOut:
    """One config per (prompt, label); without a prompt, the project default. Audited
    ``OnlineEvalConfigured``. Answers 201 when it created the config, 200 when it replaced one."""
    async with runtime_of(request).db.transaction(write=True) as session:
        config, created = await online.put_config(
            session,
            principal,
            online.ConfigInput(
                prompt=body.prompt,
                label=body.label,
                sample_rate=body.sample_rate,
                scorers=list(body.scorers),
                pass_threshold=body.pass_threshold,
                sources=tuple(body.sources),
                enabled=body.enabled,
            ),
        )
        out = config_out(config)
    response.status_code = 201 if created else 200
    return out


@router.get(
    "/online-evals/configs/{config_id}",
    response_model=OnlineEvalConfigOut,
    summary="One online-evaluation config",
)
async def get_config(config_id: str, request: Request, principal: Reader) -> OnlineEvalConfigOut:
    async with runtime_of(request).db.transaction() as session:
        return config_out(await online.get_config(session, principal, config_id))


@router.delete(
    "/online-evals/configs/{config_id}", status_code=204, summary="Delete an online-evaluation config"
)
async def delete_config(config_id: str, request: Request, principal: Manager) -> Response:
    """Its pending samples go with it; scored ones stay in the charts. Audited ``OnlineEvalConfigDeleted``."""
    async with runtime_of(request).db.transaction(write=True) as session:
        await online.delete_config(session, principal, config_id)
    return Response(status_code=204)


@router.get(
    "/online-evals/samples", response_model=OnlineEvalSamplePage, summary="Sampled runs and their scores"
)
async def list_samples(
    request: Request,
    principal: Reader,
    prompt: PromptFilter = None,
    status: OnlineEvalStatus | None = None,
    cursor: IdCursor = None,
    limit: PageLimit = 50,
) -> OnlineEvalSamplePage:
    async with runtime_of(request).db.transaction() as session:
        prompt_id = await registry.prompt_id_of(session, principal, prompt) if prompt else None
        rows, next_cursor = await online.list_samples(
            session, principal, prompt_id=prompt_id, status=status, cursor=cursor, limit=limit
        )
    return OnlineEvalSamplePage(
        items=[
            OnlineEvalSampleOut(
                id=row.id,
                config_id=row.config_id,
                run_id=row.run_id,
                prompt_id=row.prompt_id,
                version_id=row.version_id or None,
                run_created_at=row.run_created_at,
                status=row.status,
                score=row.score,
                passed=row.passed,
                scores=list(row.scores or []),
                error=row.error,
                created_at=row.created_at,
                scored_at=row.scored_at,
            )
            for row in rows
        ],
        next_cursor=next_cursor,
    )
