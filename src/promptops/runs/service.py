"""Reading runs: list with filters (newest first, cursor = last id seen) and detail."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from promptops.auth.principal import Principal
from promptops.pagination import fetch_page, id_cursor
from promptops.runs.models import Run
from promptops.tenancy.service import get_scoped, scoped


async def list_runs(
    session: AsyncSession,
    principal: Principal,
    *,
    prompt_id: str | None = None,
    version_id: str | None = None,
    model: str | None = None,
    provider: str | None = None,
    status: str | None = None,
    source: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    trace_id: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> tuple[list[Run], str | None]:
    stmt = scoped(select(Run), Run, principal)
    if prompt_id:
        stmt = stmt.where(Run.prompt_id == prompt_id)
    for column, value in (
        (Run.version_id, version_id),
        (Run.model, model),
        (Run.provider, provider),
        (Run.status, status),
        (Run.source, source),
        (Run.trace_id, trace_id),
    ):
        if value:
            stmt = stmt.where(column == value)
    if since:
        stmt = stmt.where(Run.created_at >= since)
    if until:
        stmt = stmt.where(Run.created_at < until)
    if cursor:
        stmt = stmt.where(Run.id < id_cursor(cursor, "run"))
    return await fetch_page(session, stmt.order_by(Run.id.desc()), limit, lambda row: row.id)


async def get_run(session: AsyncSession, principal: Principal, run_id: str) -> Run:
    return await get_scoped(
        session, principal, Run, run_id, missing=f"Run {run_id} not found", code="run_not_found"
    )
