"""Reading runs: list with filters (newest first, cursor = last id seen) and detail; recording runs made
elsewhere (SDK traces, :func:`ingest_runs`).

Every function here that returns runs reveals their payloads (:func:`promptops.runs.payloads.reveal_runs`)
where the project seals them, so callers always read plaintext (or ``[erased]``)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import Select, case, delete, func, select, union_all
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
from promptops.runs.payloads import reveal_runs, sealed_for
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
    rows, next_cursor = await fetch_page(session, stmt.order_by(Run.id.desc()), limit, lambda row: row.id)
    await reveal_runs(session, rows)
    return rows, next_cursor


async def get_run(session: AsyncSession, principal: Principal, run_id: str) -> Run:
    run = await get_scoped(
        session, principal, Run, run_id, missing=f"Run {run_id} not found", code="run_not_found"
    )
    await reveal_runs(session, [run])
    return run


async def runs_by_id(session: AsyncSession, principal: Principal, run_ids: Iterable[str]) -> dict[str, Run]:
    """The principal's project's runs with these ids; unknown ids are left out."""
    found = await get_scoped_many(session, principal, Run, run_ids)
    await reveal_runs(session, found.values())
    return found


async def runs_of_actor(session: AsyncSession, principal: Principal, actor_id: str, limit: int) -> list[Run]:
    """The newest ``limit`` runs one user or key made in the principal's project (privacy exports)."""
    stmt = scoped(select(Run), Run, principal).where(Run.actor_id == actor_id)
    rows = list((await session.execute(stmt.order_by(Run.id.desc()).limit(limit))).scalars())
    await reveal_runs(session, rows)
    return rows


async def runs_of_subject(
    session: AsyncSession, principal: Principal, subject_id: str, limit: int
) -> list[Run]:
    """The newest ``limit`` runs of the principal's project whose payloads are sealed under ``subject_id``
    (an end user's gateway calls; privacy exports), revealed."""
    stmt = scoped(select(Run), Run, principal).where(sealed_for(subject_id))
    rows = list((await session.execute(stmt.order_by(Run.id.desc()).limit(limit))).scalars())
    await reveal_runs(session, rows)
    return rows


async def delete_runs_before(session: AsyncSession, project_id: str, cutoff: datetime) -> int:
    """Delete one project's runs created before ``cutoff`` (retention); the number deleted. The hourly and
    daily rollups keep their sums: analytics over deleted runs stay, the runs' content does not."""
    result = await session.execute(delete(Run).where(Run.project_id == project_id, Run.created_at < cutoff))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


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
                experiment_id=body.experiment_id,
                experiment_arm=body.arm,
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
                scoped(select(Run), Run, principal)
                .where(Run.fingerprint == fingerprint)
                .order_by(Run.created_at.desc())
                .limit(1)
            )
        ).scalar_one()
        await reveal_runs(session, [sample])
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


# --- runs of a live experiment's arms (the experiments feature's run metrics) ------------------------------------


@dataclass(frozen=True)
class ArmRunStats:
    """Sums over the runs attributed to one arm: counts, errors, latency and cost with their squares."""

    runs: int = 0
    errors: int = 0
    latency_sum: float = 0.0
    latency_sq: float = 0.0
    cost_sum: float = 0.0
    cost_sq: float = 0.0


def experiment_runs(
    principal: Principal,
    experiment_id: str,
    version_arms: dict[str, str],
    since: datetime,
    until: datetime | None,
) -> Select[Any]:
    """``select(run id, arm)`` of the runs that count for an experiment's arms: the runs tagged with the
    experiment (a gateway call or SDK trace with a unit), and untagged runs of an arm's version (``version_arms``:
    version id -> arm, for versions only one arm serves) made while the experiment ran."""
    tagged: Select[Any] = scoped(
        cast(Select[Any], select(Run.id.label("run_id"), Run.experiment_arm.label("arm"))), Run, principal
    ).where(Run.experiment_id == experiment_id)
    if not version_arms:
        return tagged
    untagged = scoped(
        select(Run.id.label("run_id"), case(version_arms, value=Run.version_id).label("arm")), Run, principal
    ).where(
        Run.experiment_id.is_(None),
        Run.version_id.in_(sorted(version_arms)),
        Run.created_at >= since,
    )
    if until is not None:
        untagged = untagged.where(Run.created_at < until)
    return cast(Select[Any], union_all(tagged, untagged))


async def experiment_run_stats(
    session: AsyncSession,
    principal: Principal,
    experiment_id: str,
    version_arms: dict[str, str],
    since: datetime,
    until: datetime | None,
) -> dict[str, ArmRunStats]:
    """Per arm, the sums of the runs :func:`experiment_runs` attributes to it (arms without runs left out)."""
    attributed = experiment_runs(principal, experiment_id, version_arms, since, until).subquery()
    error = case((Run.status == "error", 1), else_=0)
    rows = await session.execute(
        select(
            attributed.c.arm,
            func.count(),
            func.sum(error),
            func.sum(Run.latency_ms),
            func.sum(Run.latency_ms * Run.latency_ms),
            func.sum(Run.cost_usd),
            func.sum(Run.cost_usd * Run.cost_usd),
        )
        .join(Run, Run.id == attributed.c.run_id)
        .group_by(attributed.c.arm)
    )
    return {
        str(arm): ArmRunStats(
            int(n),
            int(errors or 0),
            float(lat or 0),
            float(lat_sq or 0),
            float(cost or 0),
            float(cost_sq or 0),
        )
        for arm, n, errors, lat, lat_sq, cost, cost_sq in rows.all()
        if arm is not None
    }


# --- a prompt's runs in a time range (monitoring's drift samples) ---------------------------------------------


async def sample_runs(
    session: AsyncSession,
    principal: Principal,
    *,
    prompt_id: str,
    since: datetime,
    until: datetime,
    limit: int,
    version_ids: Iterable[str] | None = None,
    sources: Iterable[str] | None = None,
) -> list[Run]:
    """The newest ``limit`` runs of a prompt created in [since, until), optionally of some versions and sources
    (read along the index on (project, prompt, created_at), so a window costs the same in a table of any size)."""
    stmt = scoped(select(Run), Run, principal).where(
        Run.prompt_id == prompt_id, Run.created_at >= since, Run.created_at < until
    )
    if version_ids is not None:
        stmt = stmt.where(Run.version_id.in_(sorted(set(version_ids))))
    if sources is not None:
        stmt = stmt.where(Run.source.in_(sorted(set(sources))))
    rows = list((await session.execute(stmt.order_by(Run.created_at.desc()).limit(limit))).scalars())
    await reveal_runs(session, rows)
    return rows
