"""Audit trail endpoints (``/api/v1/audit``); ``promptops.contract_api`` serves the same listing at the seed 004
``/api/prompt/audit``."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from promptops.auth.deps import require
from promptops.auth.principal import Principal
from promptops.governance import service
from promptops.governance.models import AuditEvent
from promptops.governance.rbac import Permission as P
from promptops.governance.schemas import (
    AuditEventRecord,
    AuditPage,
    ChainProblemOut,
    VerifyOut,
)
from promptops.pagination import IdCursor, PageLimit, Since, Until
from promptops.registry import service as registry
from promptops.runtime import runtime_of
from promptops.validation import SEQ_CURSOR

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])

AuditReader = Annotated[Principal, Depends(require(P.AUDIT_READ))]


def record_out(event: AuditEvent) -> AuditEventRecord:
    return AuditEventRecord(
        event_type=event.event_type,
        prompt_id=event.prompt_id,
        user=event.actor_name,
        timestamp=event.occurred_at,
        id=event.id,
        seq=event.seq,
        project_id=event.project_id,
        actor_type=event.actor_type,
        actor_id=event.actor_id,
        request_id=event.request_id,
        data=event.data,
        prev_hash=event.prev_hash,
        hash=event.hash,
    )


async def _list(
    request: Request,
    principal: Principal,
    prompt_id: str | None,
    user: str | None,
    event_type: str | None,
    since: datetime | None,
    until: datetime | None,
    cursor: str | None,
    limit: int,
) -> AuditPage:
    async with runtime_of(request).db.transaction() as session:
        events, next_cursor = await service.list_events(
            session,
            principal,
            prompt_id=await registry.prompt_id_of(session, principal, prompt_id) if prompt_id else None,
            user=user,
            event_type=event_type,
            since=since,
            until=until,
            cursor=cursor,
            limit=limit,
        )
    return AuditPage(events=[record_out(e) for e in events], next_cursor=next_cursor)


@router.get("", response_model=AuditPage, summary="List audit events")
async def list_audit(
    request: Request,
    principal: AuditReader,
    prompt_id: Annotated[str | None, Query(alias="promptId", max_length=200)] = None,
    user: Annotated[str | None, Query(max_length=254)] = None,
    event_type: Annotated[str | None, Query(alias="eventType", max_length=60)] = None,
    since: Since = None,
    until: Until = None,
    cursor: Annotated[IdCursor, SEQ_CURSOR] = None,
    limit: PageLimit = 50,
) -> AuditPage:
    return await _list(request, principal, prompt_id, user, event_type, since, until, cursor, limit)


@router.get("/verify", response_model=VerifyOut, summary="Verify the project's audit hash chain")
async def verify(
    request: Request, principal: Annotated[Principal, Depends(require(P.AUDIT_VERIFY))]
) -> VerifyOut:
    async with runtime_of(request).db.transaction() as session:
        result = await service.verify(session, principal)
    return VerifyOut(
        project_id=result.project_id,
        ok=result.ok,
        events_checked=result.events_checked,
        last_seq=result.last_seq,
        problems=[ChainProblemOut(**p.__dict__) for p in result.problems],
    )
