"""REST face of regression schedules (``/api/v1/eval-schedules``): thin handlers over
:mod:`promptops.evals.schedules.service`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from promptops.auth.deps import require
from promptops.auth.principal import Principal
from promptops.evals.schedules import service
from promptops.evals.schedules.models import EvalSchedule, EvalScheduleRun
from promptops.evals.schedules.schemas import (
    EvalScheduleIn,
    EvalScheduleOut,
    EvalSchedulePage,
    EvalScheduleRunOut,
    EvalScheduleRunPage,
    EvalScheduleUpdate,
    ScheduleRunStatus,
)
from promptops.governance.rbac import Permission as P
from promptops.idempotency import idempotent
from promptops.pagination import IdCursor, PageLimit, PromptFilter
from promptops.runtime import runtime_of

router = APIRouter(prefix="/api/v1/eval-schedules", tags=["evaluations"])
Reader = Annotated[Principal, Depends(require(P.EVAL_READ))]
Runner = Annotated[Principal, Depends(require(P.EVAL_RUN))]


def schedule_out(schedule: EvalSchedule, last_status: str | None = None) -> EvalScheduleOut:
    return EvalScheduleOut(
        id=schedule.id,
        name=schedule.name,
        prompt_id=schedule.prompt_id,
        prompt_name=schedule.prompt_name,
        label=schedule.label,
        cron=schedule.cron,
        timezone=schedule.timezone,
        description=service.describe(schedule.cron),
        dataset={
            "name": schedule.dataset_name,
            "version": schedule.dataset_version,
            "versionId": schedule.dataset_version_id,
        },
        scorers=schedule.scorers,
        models=schedule.models,
        pass_threshold=schedule.pass_threshold,
        alpha=schedule.alpha,
        enabled=schedule.enabled,
        next_run_at=schedule.next_run_at,
        last_run_at=schedule.last_run_at,
        baseline_eval_run_id=schedule.baseline_eval_run_id,
        last_status=last_status,
        created_by=schedule.created_by,
        created_at=schedule.created_at,
        updated_at=schedule.updated_at,
    )


def history_out(row: EvalScheduleRun) -> EvalScheduleRunOut:
    return EvalScheduleRunOut.model_validate(row, from_attributes=True)


@router.post("", status_code=201, response_model=EvalScheduleOut, summary="Create a regression schedule")
@idempotent
async def create_schedule(body: EvalScheduleIn, request: Request, principal: Runner) -> EvalScheduleOut:
    runtime = runtime_of(request)
    async with runtime.db.transaction(write=True) as session:
        return schedule_out(await service.create_schedule(session, principal, body, runtime.caller))


@router.get("", response_model=EvalSchedulePage, summary="List regression schedules, newest first")
async def list_schedules(
    request: Request,
    principal: Reader,
    prompt: PromptFilter = None,
    label: Annotated[str | None, Query(max_length=63)] = None,
    cursor: IdCursor = None,
    limit: PageLimit = 50,
) -> EvalSchedulePage:
    async with runtime_of(request).db.transaction() as session:
        rows, next_cursor = await service.list_schedules(
            session, principal, prompt=prompt, label=label, cursor=cursor, limit=limit
        )
        statuses = await service.last_statuses(session, rows)
    return EvalSchedulePage(
        items=[schedule_out(s, statuses.get(s.id)) for s in rows], next_cursor=next_cursor
    )


@router.get("/{schedule_id}", response_model=EvalScheduleOut, summary="One regression schedule")
async def get_schedule(schedule_id: str, request: Request, principal: Reader) -> EvalScheduleOut:
    async with runtime_of(request).db.transaction() as session:
        schedule = await service.get_schedule(session, principal, schedule_id)
        statuses = await service.last_statuses(session, [schedule])
    return schedule_out(schedule, statuses.get(schedule.id))


@router.patch("/{schedule_id}", response_model=EvalScheduleOut, summary="Change or switch a schedule on/off")
async def update_schedule(
    schedule_id: str, body: EvalScheduleUpdate, request: Request, principal: Runner
) -> EvalScheduleOut:
    async with runtime_of(request).db.transaction(write=True) as session:
        schedule = await service.update_schedule(session, principal, schedule_id, body)
        statuses = await service.last_statuses(session, [schedule])
    return schedule_out(schedule, statuses.get(schedule.id))


@router.delete("/{schedule_id}", status_code=204, summary="Remove a schedule and its history")
async def delete_schedule(schedule_id: str, request: Request, principal: Runner) -> Response:
    async with runtime_of(request).db.transaction(write=True) as session:
        await service.delete_schedule(session, principal, schedule_id)
    return Response(status_code=204)


@router.post(
    "/{schedule_id}/run",
    response_model=EvalScheduleOut,
    summary="Make the schedule due now (the scheduler fires it within its next round)",
)
async def run_schedule(schedule_id: str, request: Request, principal: Runner) -> EvalScheduleOut:
    async with runtime_of(request).db.transaction(write=True) as session:
        schedule = await service.trigger(session, principal, schedule_id)
        statuses = await service.last_statuses(session, [schedule])
    return schedule_out(schedule, statuses.get(schedule.id))


@router.get(
    "/{schedule_id}/runs",
    response_model=EvalScheduleRunPage,
    summary="The schedule's history: baseline, pass, regressed (with the comparison), failed",
)
async def list_history(
    schedule_id: str,
    request: Request,
    principal: Reader,
    status: ScheduleRunStatus | None = None,
    cursor: IdCursor = None,
    limit: PageLimit = 50,
) -> EvalScheduleRunPage:
    async with runtime_of(request).db.transaction() as session:
        rows, next_cursor = await service.list_history(
            session, principal, schedule_id, status=status, cursor=cursor, limit=limit
        )
    return EvalScheduleRunPage(items=[history_out(r) for r in rows], next_cursor=next_cursor)
