"""Reading and verifying the audit trail."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from promptops.auth import service as auth_service
from promptops.auth.principal import Principal
from promptops.errors import ValidationProblem
from promptops.governance import audit
from promptops.governance.models import AuditEvent, AuditOrgEvent
from promptops.governance.rbac import Permission
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
    chain: str = "project",
) -> tuple[list[audit.AnyAuditEvent], str | None]:
    """The project's audit events (``chain="org"``: the organization's sign-in chain, which needs
    ``audit:verify``), newest first; ``cursor`` is the last seq seen."""
    model: type[AuditEvent] | type[AuditOrgEvent]
    if chain == "org":
        principal.require(Permission.AUDIT_VERIFY)
        model = AuditOrgEvent
        stmt = select(AuditOrgEvent).where(AuditOrgEvent.org_id == principal.org_id)
    else:
        model = AuditEvent
        stmt = scoped(select(AuditEvent), AuditEvent, principal)
    if prompt_id:
        stmt = stmt.where(model.prompt_id == prompt_id)
    if user:
        # Users are recorded by id; an email finds its user through the keyed email hash.
        found = await auth_service.user_by_email(session, user.strip().lower()) if "@" in user else None
        names = [user, found.id] if found is not None else [user]
        stmt = stmt.where(or_(model.actor_id.in_(names), model.actor_name.in_(names)))
    if event_type:
        stmt = stmt.where(model.event_type == event_type)
    if since:
        stmt = stmt.where(model.occurred_at >= since)
    if until:
        stmt = stmt.where(model.occurred_at < until)
    if cursor:
        if not cursor.isdigit():
            raise ValidationProblem("Invalid cursor", code="invalid_cursor")
        stmt = stmt.where(model.seq < int(cursor))
    rows: list[audit.AnyAuditEvent] = list(
        (await session.execute(stmt.order_by(model.seq.desc()).limit(limit + 1))).scalars()
    )
    next_cursor = str(rows[limit - 1].seq) if len(rows) > limit else None
    return rows[:limit], next_cursor


async def verify(session: AsyncSession, principal: Principal, chain: str = "project") -> audit.VerifyResult:
    """Recompute the principal's project chain (or organization chain: ``audit:verify`` covers it) and
    report every break."""
    if chain == "org":
        return await audit.verify_org(session, principal.org_id)
    return await audit.verify_project(session, principal.project_id)
