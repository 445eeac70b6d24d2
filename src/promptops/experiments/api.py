"""REST face of live experiments: thin handlers over :mod:`promptops.experiments.service`.

Resolving a label with ``unit`` (``GET /api/v1/prompts/{name}?label=...&unit=...``) is served by the registry's
route, which asks :func:`promptops.experiments.service.assignment_for`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from promptops.auth.deps import require
from promptops.auth.principal import Principal
from promptops.experiments import service
from promptops.experiments.schemas import (
    AllocationOut,
    AllocationRunOut,
    ArmOut,
    BanditOut,
    EventsIn,
    EventsOut,
    ExperimentIn,
    ExperimentOut,
    ExperimentPage,
    ExperimentStatus,
    GuardrailCheckOut,
    MetricOut,
    ReasonIn,
    ResultsOut,
    ShipIn,
    metric_source,
)
from promptops.governance.rbac import Permission as P
from promptops.idempotency import idempotent
from promptops.logging import log
from promptops.pagination import IdCursor, PageLimit, PromptFilter
from promptops.runtime import Runtime, runtime_of

router = APIRouter(prefix="/api/v1/experiments", tags=["experiments"])

Reader = Annotated[Principal, Depends(require(P.EXPERIMENT_READ))]
Manager = Annotated[Principal, Depends(require(P.EXPERIMENT_MANAGE))]
Tracker = Annotated[Principal, Depends(require(P.EXPERIMENT_TRACK))]


def experiment_out(view: service.ExperimentView) -> ExperimentOut:
    e = view.experiment
    total = sum(a.weight for a in view.arms) or 1.0
    return ExperimentOut(
        id=e.id,
        name=e.name,
        description=e.description,
        prompt_id=e.prompt_id,
        prompt_name=e.prompt_name,
        label=e.label,
        status=e.status,
        alpha=e.alpha,
        mode=e.mode,
        bandit=(
            BanditOut(
                metric=settings["metric"],
                interval_seconds=settings["intervalSeconds"],
                floor=settings["floor"],
                next_allocation_at=e.next_allocation_at,
            )
            if (settings := service.bandit_settings(e)) is not None
            else None
        ),
        arms=[
            ArmOut(
                name=a.name,
                version=a.version,
                version_id=a.version_id,
                model=a.model,
                weight=a.weight,
                share=a.weight / total,
                control=a.position == 0,
                paused=a.paused,
                paused_reason=a.paused_reason,
            )
            for a in view.arms
        ],
        metrics=[MetricOut.model_validate({**m, "source": metric_source(m["name"])}) for m in e.metrics],
        shipped_arm=e.shipped_arm,
        created_by=e.created_by,
        created_at=e.created_at,
        updated_at=e.updated_at,
        started_at=e.started_at,
        ended_at=e.ended_at,
    )


def _changed(runtime: Runtime, view: service.ExperimentView) -> ExperimentOut:
    """After a committed change: drop this process's cached running experiments (the service dropped them
    inside the transaction too; a resolve in between may have loaded the old state)."""
    service.invalidate(view.experiment.project_id)
    return experiment_out(view)


@router.post(
    "", status_code=201, response_model=ExperimentOut, summary="Create a draft experiment on a label"
)
@idempotent
async def create_experiment(body: ExperimentIn, request: Request, principal: Manager) -> ExperimentOut:
    async with runtime_of(request).db.transaction(write=True) as session:
        return experiment_out(await service.create(session, principal, body))


@router.get("", response_model=ExperimentPage, summary="List experiments, newest first")
async def list_experiments(
    request: Request,
    principal: Reader,
    prompt: PromptFilter = None,
    status: ExperimentStatus | None = None,
    label: Annotated[str | None, Query(max_length=63)] = None,
    cursor: IdCursor = None,
    limit: PageLimit = 50,
) -> ExperimentPage:
    async with runtime_of(request).db.transaction() as session:
        rows, next_cursor = await service.list_experiments(
            session, principal, prompt=prompt, status=status, label=label, cursor=cursor, limit=limit
        )
    return ExperimentPage(items=[experiment_out(v) for v in rows], next_cursor=next_cursor)


@router.get("/{experiment_id}", response_model=ExperimentOut, summary="One experiment")
async def get_experiment(experiment_id: str, request: Request, principal: Reader) -> ExperimentOut:
    async with runtime_of(request).db.transaction() as session:
        return experiment_out(await service.get_experiment(session, principal, experiment_id))


@router.post(
    "/{experiment_id}/start", response_model=ExperimentOut, summary="Start splitting the label's traffic"
)
async def start(experiment_id: str, request: Request, principal: Manager) -> ExperimentOut:
    runtime = runtime_of(request)
    async with runtime.db.transaction(write=True) as session:
        view = await service.start(session, principal, experiment_id)
    return _changed(runtime, view)


async def _transition(
    request: Request,
    principal: Principal,
    change: Callable[[AsyncSession, Principal, str, str], Awaitable[service.ExperimentView]],
    experiment_id: str,
    body: ReasonIn | None,
) -> ExperimentOut:
    """Pause, resume or stop: one write transaction, then the cache drop and the answer."""
    runtime = runtime_of(request)
    async with runtime.db.transaction(write=True) as session:
        view = await change(session, principal, experiment_id, (body or ReasonIn()).reason)
    return _changed(runtime, view)


@router.post(
    "/{experiment_id}/pause", response_model=ExperimentOut, summary="Pause (the label serves its version)"
)
async def pause(
    experiment_id: str, request: Request, principal: Manager, body: ReasonIn | None = None
) -> ExperimentOut:
    return await _transition(request, principal, service.pause, experiment_id, body)


@router.post("/{experiment_id}/resume", response_model=ExperimentOut, summary="Resume a paused experiment")
async def resume(
    experiment_id: str, request: Request, principal: Manager, body: ReasonIn | None = None
) -> ExperimentOut:
    return await _transition(request, principal, service.resume, experiment_id, body)


@router.post(
    "/{experiment_id}/stop", response_model=ExperimentOut, summary="End the experiment without shipping"
)
async def stop(
    experiment_id: str, request: Request, principal: Manager, body: ReasonIn | None = None
) -> ExperimentOut:
    return await _transition(request, principal, service.stop, experiment_id, body)


@router.post(
    "/{experiment_id}/ship",
    response_model=ExperimentOut,
    summary="Move the label to an arm's version (the registry's label path) and end the experiment",
)
async def ship(
    experiment_id: str, body: ShipIn, request: Request, response: Response, principal: Manager
) -> ExperimentOut:
    """On a label gated by approvals the move becomes an approval request: 202, ``pendingApproval`` names it and
    the experiment keeps running; ship again once it is approved."""
    runtime = runtime_of(request)
    async with runtime.db.transaction(write=True) as session:
        view, move = await service.ship(session, principal, experiment_id, body.arm, body.reason)
    out = _changed(runtime, view)
    if not isinstance(move, service.registry.LabelMove):
        response.status_code = 202
        out.pending_approval = move.request.id
    return out


@router.post(
    "/{experiment_id}/events",
    response_model=EventsOut,
    summary="Record outcome events {unit, metric, value} (or a batch {events: [...]})",
)
async def record_events(
    experiment_id: str, body: EventsIn, request: Request, principal: Tracker
) -> EventsOut:
    runtime = runtime_of(request)
    events = body.all_events()
    async with runtime.db.transaction(write=True) as session:
        await service.record_events(session, principal, experiment_id, events)
    paused: list[str] = []
    if service.guardrail_check_due(experiment_id, runtime.settings.experiment_guardrail_interval_seconds):
        # The events are stored: a failing check must not turn their answer into an error (a retry would count
        # them twice). It runs again with the next events or on demand (POST .../guardrails/check).
        try:
            await runtime.exposures.flush()
            async with runtime.db.transaction(write=True) as session:
                paused = await service.enforce_guardrails(session, principal, experiment_id)
        except Exception as exc:
            log.warning(
                "experiment_guardrail_check_failed",
                experiment_id=experiment_id,
                error_type=type(exc).__name__,
            )
        if paused:
            service.invalidate(principal.project_id)
    return EventsOut(accepted=len(events), paused_arms=paused)


@router.post(
    "/{experiment_id}/guardrails/check",
    response_model=GuardrailCheckOut,
    summary="Check the guardrails now and pause the arms that are significantly worse",
)
async def check_guardrails(experiment_id: str, request: Request, principal: Manager) -> GuardrailCheckOut:
    runtime = runtime_of(request)
    await runtime.exposures.flush()
    async with runtime.db.transaction(write=True) as session:
        paused = await service.enforce_guardrails(session, principal, experiment_id)
    if paused:
        service.invalidate(principal.project_id)
    return GuardrailCheckOut(paused_arms=paused)


@router.post(
    "/{experiment_id}/allocation",
    response_model=AllocationRunOut,
    summary="Recompute a bandit's allocation now (Thompson sampling on its metric)",
)
async def reallocate(experiment_id: str, request: Request, principal: Manager) -> AllocationRunOut:
    runtime = runtime_of(request)
    await runtime.exposures.flush()
    async with runtime.db.transaction(write=True) as session:
        found = await service.reallocate(session, principal, experiment_id, reason="manual")
    service.invalidate(principal.project_id)
    return AllocationRunOut(allocation=AllocationOut.model_validate(found, from_attributes=True))


@router.get(
    "/{experiment_id}/results", response_model=ResultsOut, summary="Per-arm results and the sequential test"
)
async def results(experiment_id: str, request: Request, principal: Reader) -> ResultsOut:
    runtime = runtime_of(request)
    await runtime.exposures.flush()  # count what this process has seen
    async with runtime.db.transaction() as session:
        found = await service.results(session, principal, experiment_id)
    return ResultsOut.model_validate(found, from_attributes=True)
