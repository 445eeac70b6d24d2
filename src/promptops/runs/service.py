"""Reading runs: list with filters (newest first, cursor = last id seen) and detail."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from promptops.auth.principal import Principal
from promptops.pagination import fetch_page, id_cursor
from promptops.runs.models import Run
from promptops.tenancy.service import get_scoped, get_scoped_many, scoped


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
    cost: tuple[float | None, float | None] = (None, None),
    exclude: Select[Any] | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> tuple[list[Run], str | None]:
    """Runs newest first, filtered; ``exclude``: a select of run ids to leave out (e.g. runs already queued
    for review by the feedback feature); ``cost``: an inclusive (min, max) range in USD, either end open."""
    stmt = scoped(select(Run), Run, principal)
    if exclude is not None:
        stmt = stmt.where(Run.id.not_in(exclude))
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
    if cost[0] is not None:
        stmt = stmt.where(Run.cost_usd >= cost[0])
    if cost[1] is not None:
        stmt = stmt.where(Run.cost_usd <= cost[1])
    if cursor:
        stmt = stmt.where(Run.id < id_cursor(cursor, "run"))
    return await fetch_page(session, stmt.order_by(Run.id.desc()), limit, lambda row: row.id)


async def get_run(session: AsyncSession, principal: Principal, run_id: str) -> Run:
    return await get_scoped(
        session, principal, Run, run_id, missing=f"Run {run_id} not found", code="run_not_found"
    )


async def runs_by_id(session: AsyncSession, principal: Principal, run_ids: Iterable[str]) -> dict[str, Run]:
    """The principal's project's runs with these ids; unknown ids are left out."""
    return await get_scoped_many(session, principal, Run, run_ids)
