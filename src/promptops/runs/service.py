"""Reading runs: list with filters (newest first, cursor = last id seen) and detail; recording runs made
elsewhere (SDK traces, :func:`ingest_runs`)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from promptops.auth.principal import Principal
from promptops.db import utcnow
from promptops.errors import ValidationProblem
from promptops.governance import audit
from promptops.ids import new_id
from promptops.pagination import fetch_page, id_cursor
from promptops.providers.base import ConnectionConfig
from promptops.providers.service import Price, ResolvedConnection, cost_usd, list_connections, price_for
from promptops.runs.models import Run
from promptops.runs.rollup import store_runs
from promptops.runs.schemas import RunIn
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


# --- recording runs made elsewhere (SDK traces) ---------------------------------------------------------------

INGEST_MAX_FUTURE = timedelta(minutes=5)
INGEST_MAX_AGE = timedelta(days=30)
# Connection types a run's ``providerType`` names; an SDK run's provider that is neither a connection of the
# project nor one of these is recorded with provider type "sdk".
KNOWN_PROVIDER_TYPES = frozenset({"openai", "azure_openai", "anthropic", "huggingface", "local"})


@dataclass(frozen=True)
class IngestItem:
    """One run to record, its prompt and version already resolved in the caller's project."""

    body: RunIn
    prompt_id: str | None
    version_id: str | None


@dataclass(frozen=True)
class IngestResult:
    accepted: int
    duplicates: int
    run_ids: list[str]


def _created_at(index: int, value: datetime | None, now: datetime) -> datetime:
    if value is None:
        return now
    moment = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    if moment > now + INGEST_MAX_FUTURE or moment < now - INGEST_MAX_AGE:
        raise ValidationProblem(
            f"Run {index}: createdAt must be within the last 30 days and at most 5 minutes ahead of the "
            "server's clock",
            code="invalid_created_at",
            index=index,
        )
    return moment.astimezone(UTC)


async def _provider_types(session: AsyncSession, principal: Principal, names: set[str]) -> dict[str, str]:
    """Provider name -> connection type: the project's connections first, then a known type's own name."""
    connections = {c.name: c.type for c in await list_connections(session, principal) if c.name in names}
    types = {name: "sdk" for name in names}
    types.update({name: name for name in names if name in KNOWN_PROVIDER_TYPES})
    types.update(connections)
    return types


async def ingest_runs(
    session: AsyncSession, principal: Principal, items: Sequence[IngestItem]
) -> IngestResult:
    """Store runs an application made itself (``source="sdk"``) with their rollup and one ``RunsIngested``
    audit event, in the caller's transaction.

    A run whose client id is already stored is a duplicate (a retried batch), not an error. An id stored in
    another project is answered exactly like a duplicate: nothing of that run is read or returned. Costs the
    client leaves out are computed from the project's model prices (override by connection name, then by
    type, then the catalog), 0 for an unpriced model.
    """
    now = utcnow()
    wanted = [item.body.id for item in items if item.body.id]
    taken: set[str] = set()
    if wanted:
        taken = set((await session.execute(select(Run.id).where(Run.id.in_(sorted(set(wanted)))))).scalars())
    types = await _provider_types(session, principal, {item.body.provider for item in items})
    prices: dict[tuple[str, str], Price | None] = {}
    runs: list[Run] = []
    run_ids: list[str] = []
    duplicates = 0
    for index, item in enumerate(items):
        body = item.body
        created_at = _created_at(index, body.created_at, now)
        run_id = body.id or new_id("run")
        run_ids.append(run_id)
        if run_id in taken:
            duplicates += 1
            continue
        taken.add(run_id)
        cost = body.cost_usd
        if cost is None:
            key = (body.provider, body.model)
            if key not in prices:
                connection = ResolvedConnection(
                    id=None,
                    name=body.provider,
                    type=cast(Any, types[body.provider]),
                    config=ConnectionConfig(type=cast(Any, types[body.provider])),
                )
                prices[key] = await price_for(session, principal.project_id, connection, body.model)
            cost = cost_usd(prices[key], body.input_tokens, body.output_tokens)
        runs.append(
            Run(
                id=run_id,
                project_id=principal.project_id,
                prompt_id=item.prompt_id,
                version_id=item.version_id,
                provider=body.provider,
                provider_type=types[body.provider],
                model=body.model,
                params=body.params,
                input=body.input,
                output=body.output,
                tool_calls=body.tool_calls,
                finish_reason=body.finish_reason,
                input_tokens=body.input_tokens,
                output_tokens=body.output_tokens,
                usage_estimated=False,
                cost_usd=cost,
                latency_ms=body.latency_ms,
                ttft_ms=body.ttft_ms,
                status=body.status,
                error_class=body.error_class,
                error_message=body.error_message,
                source="sdk",
                cached=False,
                attempt=1,
                trace_id=body.trace_id,
                actor_id=principal.id,
                created_at=created_at,
            )
        )
    if runs:
        await store_runs(session, runs)
        prompt_ids = sorted({run.prompt_id for run in runs if run.prompt_id})
        await audit.record(
            session,
            principal,
            "RunsIngested",
            prompt_id=prompt_ids[0] if len(prompt_ids) == 1 else None,
            data={"count": len(runs), "duplicates": duplicates, "promptIds": prompt_ids},
        )
    return IngestResult(accepted=len(runs), duplicates=duplicates, run_ids=run_ids)


# --- calls grouped by prompt fingerprint (the gateway's unregistered prompts) -----------------------------------


@dataclass(frozen=True)
class FingerprintGroup:
    fingerprint: str
    runs: int
    cost_usd: float
    first_seen: datetime
    last_seen: datetime
    sample_input: dict[str, Any]  # the input of the latest run with this fingerprint
    sample_model: str  # <provider>/<model> of that run


async def fingerprint_groups(
    session: AsyncSession, principal: Principal, limit: int
) -> list[FingerprintGroup]:
    """The project's runs that carry a prompt fingerprint, grouped by it, most runs first."""
    groups = (
        await session.execute(
            scoped(
                select(
                    Run.fingerprint,
                    func.count(),
                    func.min(Run.created_at),
                    func.max(Run.created_at),
                    func.sum(Run.cost_usd),
                ),
                Run,
                principal,
            )
            .where(Run.fingerprint.is_not(None))
            .group_by(Run.fingerprint)
            .order_by(func.count().desc(), Run.fingerprint)
            .limit(limit)
        )
    ).all()
    found: list[FingerprintGroup] = []
    for fingerprint, count, first, last, cost in groups:
        sample = (
            await session.execute(
                scoped(select(Run.input, Run.model, Run.provider), Run, principal)
                .where(Run.fingerprint == fingerprint)
                .order_by(Run.created_at.desc())
                .limit(1)
            )
        ).one()
        found.append(
            FingerprintGroup(
                fingerprint=str(fingerprint),
                runs=int(count),
                cost_usd=round(float(cost or 0.0), 6),
                first_seen=first,
                last_seen=last,
                sample_input=dict(sample.input or {}),
                sample_model=f"{sample.provider}/{sample.model}",
            )
        )
    return found
