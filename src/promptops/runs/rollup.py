"""The runs rollup: additive sums per hour and per day, kept in the transaction that inserts the runs.

Dashboards read sums of ``run_rollups`` rows instead of scanning ``runs`` (wide rows with inputs and outputs),
so a 90-day chart reads at most one row per (day, prompt, version, model, source) whatever the traffic. Every
column is a sum (runs, errors, tokens, cost, latency, a fixed latency histogram), so concurrent writers simply
add with ``INSERT ... ON CONFLICT DO UPDATE SET c = c + excluded.c`` and never lose a count, and any bucket
width that is a multiple of the stored grain is a GROUP BY away.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import Integer, Select, and_, case, cast, delete, false, func, null, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from promptops.auth.principal import Principal
from promptops.db import utcnow
from promptops.runs.models import LATENCY_BOUNDS_MS, LATENCY_BUCKETS, Run, RunRollup
from promptops.runs.payloads import insert_runs
from promptops.tenancy.service import scoped

HOUR = 1
DAY = 24
GRAINS = (HOUR, DAY)
# 1970-01-01 was a Thursday: the first Monday 00:00 UTC is hour 96, so weeks (ISO, Monday first) start there.
WEEK_OFFSET_HOURS = 96

KEY_COLUMNS = ("project_id", "grain", "bucket", "prompt_id", "version_id", "provider", "model", "source")
LATENCY_COLUMNS = tuple(f"lat_{i}" for i in range(LATENCY_BUCKETS))
SUM_COLUMNS = (
    "runs",
    "errors",
    "input_tokens",
    "output_tokens",
    "cost_usd",
    "latency_ms_sum",
    *LATENCY_COLUMNS,
)
GROUPS: dict[str, tuple[str, ...]] = {
    "none": (),
    "prompt": ("prompt_id",),
    "version": ("prompt_id", "version_id"),
    "model": ("provider", "model"),
    "source": ("source",),
}


class RunLike(Protocol):
    """What the rollup reads of a run (a :class:`Run` or any row with these attributes)."""

    project_id: str
    prompt_id: str | None
    version_id: str | None
    provider: str
    model: str
    source: str
    status: str
    input_tokens: int
    output_tokens: int
    cost_usd: float
    latency_ms: float
    created_at: datetime


def hour_of(moment: datetime) -> int:
    """Hours since the Unix epoch (UTC) of ``moment``; naive datetimes are taken as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() // 3600)


def latency_bucket(latency_ms: float) -> int:
    """Index of the histogram bucket holding ``latency_ms``: bucket i covers (bound[i-1], bound[i]]."""
    return bisect_left(LATENCY_BOUNDS_MS, latency_ms)


def rollup_rows(runs: Iterable[RunLike]) -> list[dict[str, Any]]:
    """The runs summed per rollup key, for every grain: one row per key (what one upsert statement takes)."""
    sums: dict[tuple[Any, ...], list[Any]] = {}
    for run in runs:
        hour = hour_of(run.created_at)
        lat = latency_bucket(run.latency_ms or 0.0)
        for grain in GRAINS:
            key = (
                run.project_id,
                grain,
                hour - hour % grain,
                run.prompt_id or "",
                run.version_id or "",
                run.provider,
                run.model,
                run.source,
            )
            acc = sums.get(key)
            if acc is None:
                acc = sums[key] = [0, 0, 0, 0, 0.0, 0.0] + [0] * LATENCY_BUCKETS
            acc[0] += 1
            acc[1] += run.status == "error"
            acc[2] += run.input_tokens or 0
            acc[3] += run.output_tokens or 0
            acc[4] += run.cost_usd or 0.0
            acc[5] += run.latency_ms or 0.0
            acc[6 + lat] += 1
    # in key order, so concurrent writers lock the rows they share in the same order (no deadlock on PostgreSQL)
    return [dict(zip(KEY_COLUMNS + SUM_COLUMNS, (*key, *sums[key]), strict=True)) for key in sorted(sums)]


async def add_runs(session: AsyncSession, runs: Sequence[RunLike]) -> None:
    """Add ``runs`` to the rollup in the caller's transaction (call it wherever runs are inserted)."""
    rows = rollup_rows(runs)
    if not rows:
        return
    table: Any = RunRollup.__table__
    dialect = session.get_bind().dialect.name
    stmt = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)
    stmt = stmt.on_conflict_do_update(
        index_elements=list(KEY_COLUMNS),
        set_={name: table.c[name] + stmt.excluded[name] for name in SUM_COLUMNS},
    )
    await session.execute(stmt, rows)


def stamp_runs(runs: Sequence[Run]) -> None:
    """Fix each run's ``created_at`` now (the column default), so the rollup buckets the moment stored."""
    for run in runs:
        if run.created_at is None:
            run.created_at = utcnow()


async def store_runs(session: AsyncSession, runs: Sequence[Run]) -> None:
    """Insert ``runs`` (payloads sealed where the project asks for it) and add them to the rollup, in the
    caller's transaction."""
    stamp_runs(runs)
    await insert_runs(session, runs)
    await add_runs(session, runs)


REBUILD_BATCH = 5000


async def rebuild(session: AsyncSession, project_id: str, *, batch: int = REBUILD_BATCH) -> int:
    """Recompute a project's rollup from its runs, in the caller's transaction; the number of runs read.

    The repair for runs written without their rollup (an instance of an older release still running during a
    rolling upgrade, a bulk load that bypassed :func:`store_runs`). Reads only the columns the rollup sums,
    ``batch`` runs at a time in id order.
    """
    await session.execute(delete(RunRollup).where(RunRollup.project_id == project_id))
    columns = [getattr(Run, name) for name in RunLike.__annotations__]
    last, total = "", 0
    while True:
        stmt = select(Run.id, *columns).where(Run.project_id == project_id, Run.id > last)
        rows = list((await session.execute(stmt.order_by(Run.id).limit(batch))).all())
        if not rows:
            return total
        await add_runs(session, rows)
        total += len(rows)
        last = rows[-1].id


# --- reading --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RollupQuery:
    """One aggregation: buckets of ``bucket_hours`` (aligned at ``offset_hours``) over [since_hour, until_hour)."""

    since_hour: int
    until_hour: int
    bucket_hours: int
    offset_hours: int = 0
    grain: int = HOUR  # which stored rows to sum: DAY only when every bucket is made of whole UTC days
    group_by: str = "none"
    prompt_id: str | None = None
    model: str | None = None
    source: str | None = None


def _sums(columns: Any) -> list[Any]:
    return [func.sum(columns[name]).label(name) for name in SUM_COLUMNS]


def _bucket_of(hour: ColumnElement[Any], query: RollupQuery) -> ColumnElement[Any]:
    return ((hour - query.offset_hours) // query.bucket_hours) * query.bucket_hours + query.offset_hours


def _filtered(stmt: Select[Any], columns: Any, query: RollupQuery) -> Select[Any]:
    for name, value in (("prompt_id", query.prompt_id), ("model", query.model), ("source", query.source)):
        if value:
            stmt = stmt.where(columns[name] == value)
    return stmt


async def usage_buckets(
    session: AsyncSession,
    principal: Principal,
    query: RollupQuery,
    *,
    by_bucket: bool = True,
    keep: Sequence[tuple[str, ...]] | None = None,
) -> list[Any]:
    """Rows of ([bucket,] *group columns, *sums) from the rollup, for the principal's project.

    ``keep``: the groups to return as they are; every other group is summed into one row whose group columns
    are NULL (stored keys are never NULL), so an answer has at most (buckets x (len(keep) + 1)) rows.
    """
    columns = RunRollup.__table__.c
    groups: list[Any] = [columns[name] for name in GROUPS[query.group_by]]
    if keep is not None and groups:
        if not keep:
            kept: Any = false()
        elif len(groups) == 1:
            kept = groups[0].in_([k[0] for k in keep])
        else:  # OR of ANDs: SQLite runs a row-value IN list as a subquery per row
            kept = or_(*(and_(*(g == v for g, v in zip(groups, k, strict=True))) for k in keep))
        groups = [case((kept, g), else_=null()).label(g.name) for g in groups]
    bucket = [_bucket_of(columns.bucket, query).label("bucket")] if by_bucket else []
    stmt = scoped(select(*bucket, *groups, *_sums(columns)), RunRollup, principal).where(
        columns.grain == query.grain,
        columns.bucket >= query.since_hour,
        columns.bucket < query.until_hour,
    )
    stmt = _filtered(stmt, columns, query).group_by(*bucket, *groups)
    return list((await session.execute(stmt)).all())


def run_hour(dialect: str, created_at: Any) -> ColumnElement[Any]:
    """SQL for the epoch hour of a ``runs.created_at`` value (SQLite stores text, PostgreSQL timestamptz)."""
    if dialect == "postgresql":
        return cast(func.floor(func.extract("epoch", created_at) / 3600), Integer)
    return cast(func.strftime("%s", created_at), Integer) // 3600


async def usage_buckets_from_runs(
    session: AsyncSession, principal: Principal, query: RollupQuery
) -> list[Any]:
    """The same answer as :func:`usage_buckets` without the latency histogram, computed over ``runs`` directly
    (for comparison in ``bench/analytics.py``: it is why the rollup exists)."""
    c = Run.__table__.c
    hour = run_hour(session.get_bind().dialect.name, c.created_at)
    bucket = _bucket_of(hour, query).label("bucket")
    coalesced = {name: func.coalesce(c[name], "") for name in ("prompt_id", "version_id")}
    groups = [coalesced.get(name, c[name]) for name in GROUPS[query.group_by]]
    since = datetime.fromtimestamp(query.since_hour * 3600, UTC)
    until = datetime.fromtimestamp(query.until_hour * 3600, UTC)
    stmt = scoped(
        select(
            bucket,
            *groups,
            func.count().label("runs"),
            func.sum(cast(c.status == "error", Integer)).label("errors"),
            func.sum(c.input_tokens),
            func.sum(c.output_tokens),
            func.sum(c.cost_usd),
            func.sum(c.latency_ms),
        ),
        Run,
        principal,
    ).where(c.created_at >= since, c.created_at < until)
    stmt = _filtered(stmt, c, query).group_by(bucket, *groups)
    return list((await session.execute(stmt)).all())
