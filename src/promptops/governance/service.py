"""Reading and verifying the audit trail."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from promptops.auth.principal import Principal
from promptops.errors import ValidationProblem
from promptops.governance import audit
from promptops.governance.models import AuditEvent
from promptops.tenancy.service import scoped


async def list_events(
    session: AsyncSession,
    principal: Principal,
    *,
    prompt_id: str | None = None,
    user: str | None = None,
    event_type: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> tuple[list[AuditEvent], str | None]:
    """The project's audit events, newest first; ``cursor`` is the last seq seen."""
    stmt = scoped(select(AuditEvent), AuditEvent, principal)
    if prompt_id:
        stmt = stmt.where(AuditEvent.prompt_id == prompt_id)
    if user:
        stmt = stmt.where(or_(AuditEvent.actor_id == user, AuditEvent.actor_name == user))
    if event_type:
        stmt = stmt.where(AuditEvent.event_type == event_type)
    if since:
        stmt = stmt.where(AuditEvent.occurred_at >= since)
    if until:
        stmt = stmt.where(AuditEvent.occurred_at < until)
    if cursor:
        if not cursor.isdigit():
            raise ValidationProblem("Invalid cursor", code="invalid_cursor")
        stmt = stmt.where(AuditEvent.seq < int(cursor))
    rows = list((await session.execute(stmt.order_by(AuditEvent.seq.desc()).limit(limit + 1))).scalars())
    next_cursor = str(rows[limit - 1].seq) if len(rows) > limit else None
    return rows[:limit], next_cursor


async def verify(session: AsyncSession, principal: Principal) -> audit.VerifyResult:
    """Recompute the principal's project chain and report every break."""
    return await audit.verify_project(session, principal.project_id)
