"""Per prompt version metrics over time, read from rollups only (never from the runs table).

* volume, errors, tokens, cost and the latency histogram: ``run_rollups`` (the runs engine keeps it in the
  transaction that inserts runs; it is already keyed by prompt version, source and hour/day);
* online-evaluation pass rate and mean score: ``monitoring_online_rollups`` (written with each scored sample);
* feedback mean: the feedback service sums its records per hour and version in the database.

Latency percentiles come from the rollups' fixed histogram (16 doubling buckets from 10 ms), which merges by
addition across hours, versions and sources; a percentile is interpolated inside its bucket, so it is exact to
within that bucket's width. Only production traffic counts: runs from the gateway, SDKs, the playground and
experiments; evaluation runs (including the online judges' own calls) are left out.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from promptops.auth.principal import Principal
from promptops.errors import ValidationProblem
from promptops.feedback import service as feedback
from promptops.governance.rbac import Role
from promptops.monitoring.models import OnlineEvalRollup
from promptops.registry import service as registry
from promptops.runs import rollup
from promptops.tenancy.service import scoped

PRODUCTION_SOURCES = ("gateway", "sdk", "playground", "experiment")
EVAL_SOURCE = "eval"  # every run source that is not production traffic (runs.models: the five sources)
METRICS = (
    "volume",
    "error_rate",
    "latency_p50_ms",
    "latency_p95_ms",
    "tokens",
    "cost_usd",
    "feedback_mean",
    "online_eval_pass_rate",
)
BUCKET_HOURS = {"hour": 1, "day": 24}
MAX_RANGE = timedelta(days=400)
MAX_BUCKETS = 1000
DEFAULT_RANGE = timedelta(days=7)
DEFAULT_LABEL = "production"
LABEL_HISTORY_LIMIT = 1000


def at_hour(hour: int) -> datetime:
    return datetime.fromtimestamp(hour * 3600, UTC)


def utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def reader(project_id: str) -> Principal:
    """A read-only principal of ``project_id``: what scopes the queries of a project-level caller."""
    return Principal(
        kind="system", id="monitoring", name="monitoring", project_id=project_id, org_id="", role=Role.VIEWER
    )


# --- time windows -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    """Whole buckets [since_hour, until_hour) of ``bucket_hours`` (1 or 24), in hours since the epoch."""

    bucket: str
    since_hour: int
    until_hour: int
    bucket_hours: int

    @property
    def since(self) -> datetime:
        return at_hour(self.since_hour)

    @property
    def until(self) -> datetime:
        return at_hour(self.until_hour)

    @property
    def grain(self) -> int:
        return rollup.DAY if self.bucket_hours == rollup.DAY else rollup.HOUR

    def starts(self) -> range:
        return range(self.since_hour, self.until_hour, self.bucket_hours)

    def bucket_of_hour(self, hour: int) -> int:
        return hour - hour % self.bucket_hours


def window(
    since: datetime | None, until: datetime | None, bucket: str, *, now: datetime | None = None
) -> Window:
    """The bucketed range (default: the last 7 days); a clear 422 when it is backwards, longer than 400 days or
    has more than 1000 buckets. ``from`` moves back to its bucket's start and ``to`` forward to its end."""
    if bucket not in BUCKET_HOURS:
        raise ValidationProblem(f"Unknown bucket {bucket!r}: use hour or day", code="bad_bucket")
    end = utc(until or now or datetime.now(UTC))
    start = utc(since) if since else end - DEFAULT_RANGE
    if start >= end:
        raise ValidationProblem(
            f"'from' ({start.isoformat()}) must be before 'to' ({end.isoformat()})", code="invalid_range"
        )
    if end - start > MAX_RANGE:
        raise ValidationProblem(
            f"The range is {(end - start).days} days; at most {MAX_RANGE.days} days", code="range_too_long"
        )
    width = BUCKET_HOURS[bucket]
    first = rollup.hour_of(start)
    last = rollup.hour_of(end - timedelta(microseconds=1))
    since_hour = first - first % width
    until_hour = last - last % width + width
    if (until_hour - since_hour) // width > MAX_BUCKETS:
        raise ValidationProblem(
            f"bucket={bucket} over this range gives {(until_hour - since_hour) // width} buckets; at most "
            f"{MAX_BUCKETS}: choose bucket=day or a shorter range",
            code="too_many_buckets",
        )
    return Window(bucket, since_hour, until_hour, width)


def trailing_window(span: timedelta, now: datetime) -> Window:
    """The hours covering [now - span, now): whole hours, the current (partial) hour included."""
    end = utc(now)
    start = end - span
    return Window("hour", rollup.hour_of(start), rollup.hour_of(end - timedelta(microseconds=1)) + 1, 1)


# --- the versions that served a label -----------------------------------------------------------------------


@dataclass(frozen=True)
class Serving:
    """A version and the intervals it served the label (``until`` None: it still does)."""

    version_id: str
    version: int | None
    intervals: list[tuple[datetime, datetime | None]]


@dataclass(frozen=True)
class Scope:
    """What a monitoring question is about: a prompt, optionally a label, and the versions that count."""

    prompt_id: str
    prompt_name: str
    label: str | None
    versions: list[Serving]

    @property
    def version_ids(self) -> set[str] | None:
        """The versions whose runs count; None = every version (no label)."""
        return None if self.label is None else {v.version_id for v in self.versions}


def check_label(label: str | None) -> None:
    if label == "latest":
        raise ValidationProblem(
            "'latest' is derived, not a deployment: leave out the label to monitor every version",
            code="bad_label",
        )
    if label is not None:
        registry.check_label_name(label)


async def scope(
    session: AsyncSession,
    principal: Principal,
    prompt: str,
    label: str | None,
    since: datetime,
    until: datetime,
) -> Scope:
    """The prompt (404 ``prompt_not_found``) and the versions that served ``label`` at some time in
    [since, until), from the label's move history; every version of the prompt with runs when ``label`` is None."""
    check_label(label)
    found = await registry.get_prompt(session, principal, prompt)
    if label is None:
        return Scope(found.id, found.name, None, [])
    history = await registry.label_history(session, principal, found.id, label, limit=LABEL_HISTORY_LIMIT)
    # oldest first: each move starts an interval for its target that the next move ends
    moves = [(event.created_at, event.to_version_id, to_number) for event, _, to_number in reversed(history)]
    spans: dict[str, Serving] = {}
    for index, (start, version_id, number) in enumerate(moves):
        end = moves[index + 1][0] if index + 1 < len(moves) else None
        if version_id is None or start >= until or (end is not None and end <= since):
            continue
        entry = spans.setdefault(version_id, Serving(version_id, number, []))
        entry.intervals.append((utc(start), utc(end) if end is not None else None))
    return Scope(found.id, found.name, label, list(spans.values()))


# --- sums ---------------------------------------------------------------------------------------------------


def histogram_percentile(counts: Sequence[int], q: float) -> float | None:
    """The ``q``-th percentile from latency histogram counts (linear inside the bucket that holds it)."""
    total = sum(counts)
    if total == 0:
        return None
    rank = q / 100 * total
    seen = 0
    bounds = rollup.LATENCY_BOUNDS_MS
    for index, count in enumerate(counts):
        if count and seen + count >= rank:
            lower = bounds[index - 1] if index > 0 else 0.0
            upper = bounds[index] if index < len(bounds) else lower * 2
            return round(lower + (upper - lower) * max(0.0, rank - seen) / count, 1)
        seen += count
    return bounds[-1] * 2


@dataclass
class Cell:
    """Additive sums for one (bucket, version) or any merge of them."""

    runs: int = 0
    errors: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    latency_ms_sum: float = 0.0
    histogram: list[int] = field(default_factory=lambda: [0] * rollup.LATENCY_BUCKETS)
    feedback_count: int = 0
    feedback_scored: int = 0
    feedback_score_sum: float = 0.0
    thumbs_up: int = 0
    thumbs_down: int = 0
    online_scored: int = 0
    online_passed: int = 0
    online_score_sum: float = 0.0
    online_failed: int = 0

    def add_run_sums(self, values: Sequence[Any]) -> None:
        sums = dict(zip(rollup.SUM_COLUMNS, values, strict=True))
        self.runs += int(sums["runs"] or 0)
        self.errors += int(sums["errors"] or 0)
        self.input_tokens += int(sums["input_tokens"] or 0)
        self.output_tokens += int(sums["output_tokens"] or 0)
        self.cost_usd += float(sums["cost_usd"] or 0.0)
        self.latency_ms_sum += float(sums["latency_ms_sum"] or 0.0)
        for i, name in enumerate(rollup.LATENCY_COLUMNS):
            self.histogram[i] += int(sums[name] or 0)

    def merge(self, other: Cell) -> None:
        for name, value in vars(other).items():
            if name == "histogram":
                self.histogram = [a + b for a, b in zip(self.histogram, value, strict=True)]
            else:
                setattr(self, name, getattr(self, name) + value)

    # derived values (None where undefined: no runs, no scores)
    @property
    def error_rate(self) -> float | None:
        return round(self.errors / self.runs, 6) if self.runs else None

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    @property
    def latency_ms_avg(self) -> float | None:
        return round(self.latency_ms_sum / self.runs, 1) if self.runs else None

    @property
    def latency_p50_ms(self) -> float | None:
        return histogram_percentile(self.histogram, 50)

    @property
    def latency_p95_ms(self) -> float | None:
        return histogram_percentile(self.histogram, 95)

    @property
    def feedback_mean(self) -> float | None:
        return round(self.feedback_score_sum / self.feedback_scored, 4) if self.feedback_scored else None

    @property
    def online_pass_rate(self) -> float | None:
        return round(self.online_passed / self.online_scored, 4) if self.online_scored else None

    @property
    def online_score_mean(self) -> float | None:
        return round(self.online_score_sum / self.online_scored, 4) if self.online_scored else None


Cells = dict[tuple[int, str], Cell]  # (bucket start hour, version id) -> sums


async def _run_cells(
    session: AsyncSession,
    principal: Principal,
    win: Window,
    prompt_id: str,
    wanted: set[str] | None,
    cells: Cells,
) -> None:
    """Production runs per (bucket, version): every run of the prompt minus its evaluation runs (two reads of the
    rollup; the sums are additive, so the difference is exact)."""
    for source, sign in ((None, 1), (EVAL_SOURCE, -1)):
        query = rollup.RollupQuery(
            since_hour=win.since_hour,
            until_hour=win.until_hour,
            bucket_hours=win.bucket_hours,
            grain=win.grain,
            group_by="version",
            prompt_id=prompt_id,
            source=source,
        )
        for row in await rollup.usage_buckets(session, principal, query):
            version_id = row[2]
            if wanted is not None and version_id not in wanted:
                continue
            values = row[3:] if sign > 0 else [-(v or 0) for v in row[3:]]
            cells.setdefault((row[0], version_id), Cell()).add_run_sums(values)
    for key in [key for key, cell in cells.items() if cell.runs == 0]:
        del cells[key]  # a bucket and version with evaluation runs only


async def _online_cells(
    session: AsyncSession,
    principal: Principal,
    win: Window,
    prompt_id: str,
    wanted: set[str] | None,
    cells: Cells,
) -> None:
    c = OnlineEvalRollup.__table__.c
    bucket = ((c.bucket // win.bucket_hours) * win.bucket_hours).label("b")
    stmt = (
        scoped(
            select(
                bucket,
                c.version_id,
                func.sum(c.scored),
                func.sum(c.passed),
                func.sum(c.score_sum),
                func.sum(c.failed),
            ),
            OnlineEvalRollup,
            principal,
        )
        .where(
            c.grain == win.grain,
            c.bucket >= win.since_hour,
            c.bucket < win.until_hour,
            c.prompt_id == prompt_id,
        )
        .group_by(bucket, c.version_id)
    )
    for start, version_id, scored, passed, score_sum, failed in (await session.execute(stmt)).all():
        if wanted is not None and version_id not in wanted:
            continue
        cell = cells.setdefault((int(start), version_id), Cell())
        cell.online_scored += int(scored or 0)
        cell.online_passed += int(passed or 0)
        cell.online_score_sum += float(score_sum or 0.0)
        cell.online_failed += int(failed or 0)


async def _feedback_cells(
    session: AsyncSession,
    principal: Principal,
    win: Window,
    prompt_id: str,
    wanted: set[str] | None,
    cells: Cells,
) -> None:
    rows = await feedback.score_buckets(
        session,
        principal,
        prompt_id=prompt_id,
        since=win.since,
        until=win.until,
        version_ids=sorted(wanted) if wanted is not None else None,
    )
    for row in rows:
        cell = cells.setdefault((win.bucket_of_hour(row.hour), row.version_id), Cell())
        cell.feedback_count += row.count
        cell.feedback_scored += row.scored
        cell.feedback_score_sum += row.score_sum
        cell.thumbs_up += row.thumbs_up
        cell.thumbs_down += row.thumbs_down


async def cells(session: AsyncSession, principal: Principal, win: Window, target: Scope) -> Cells:
    """Every metric's sums per (bucket, version) over ``win`` for the scope's versions."""
    found: Cells = {}
    wanted = target.version_ids
    if wanted is not None and not wanted:
        return found
    await _run_cells(session, principal, win, target.prompt_id, wanted, found)
    await _online_cells(session, principal, win, target.prompt_id, wanted, found)
    await _feedback_cells(session, principal, win, target.prompt_id, wanted, found)
    return found


def merged(parts: Iterable[Cell]) -> Cell:
    total = Cell()
    for part in parts:
        total.merge(part)
    return total


# --- writing the online rollup --------------------------------------------------------------------------------


async def add_online_scores(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Add scored samples to ``monitoring_online_rollups`` in the caller's transaction. Each row:
    project_id, prompt_id, version_id, run_created_at, passed (bool | None), score (float | None), failed (bool)."""
    sums: dict[tuple[Any, ...], list[Any]] = {}
    for row in rows:
        hour = rollup.hour_of(row["run_created_at"])
        for grain in rollup.GRAINS:
            key = (row["project_id"], grain, hour - hour % grain, row["prompt_id"], row["version_id"] or "")
            acc = sums.setdefault(key, [0, 0, 0.0, 0])
            if row["failed"]:
                acc[3] += 1
            else:
                acc[0] += 1
                acc[1] += bool(row["passed"])
                acc[2] += float(row["score"] or 0.0)
    if not sums:
        return
    keys = ("project_id", "grain", "bucket", "prompt_id", "version_id")
    values = ("scored", "passed", "score_sum", "failed")
    table: Any = OnlineEvalRollup.__table__
    dialect = session.get_bind().dialect.name
    stmt = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)
    stmt = stmt.on_conflict_do_update(
        index_elements=list(keys), set_={name: table.c[name] + stmt.excluded[name] for name in values}
    )
    # in key order, so concurrent writers lock shared rows in the same order
    await session.execute(
        stmt, [dict(zip(keys + values, (*key, *sums[key]), strict=True)) for key in sorted(sums)]
    )
