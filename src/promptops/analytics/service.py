"""Dashboard aggregates: usage, cost, latency and errors from the runs rollup; feedback and evaluation trends.

Ranges are cut into whole buckets (UTC hours, days, or ISO weeks starting Monday): ``from`` is moved back to
the start of its bucket and ``to`` forward to the end of its, and every bucket in between is in the answer
(zero-filled) so charts have no gaps. The rollup stores hours and days, so an answer in day or week buckets
counts whole UTC days.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from promptops.auth.principal import Principal
from promptops.errors import NotFound, ValidationProblem
from promptops.evals import service as evals
from promptops.feedback import service as feedback
from promptops.registry import service as registry
from promptops.runs import rollup

MAX_RANGE = timedelta(days=400)
MAX_BUCKETS = 1000
BUCKET_HOURS = {"hour": 1, "day": 24, "week": 168}
DEFAULT_RANGE = timedelta(days=7)
OTHER = "other"
# Feedback and evaluations are read through their services a page at a time; a range holding more than this
# many records is summarised from the newest ones (``truncated`` in the answer says so).
MAX_QUALITY_RECORDS = 100_000
QUALITY_PAGE = 1000


@dataclass(frozen=True)
class Window:
    """A range cut into buckets: hours since the epoch [since_hour, until_hour) in steps of bucket_hours."""

    bucket: str
    since_hour: int
    until_hour: int
    bucket_hours: int
    offset_hours: int

    @property
    def since(self) -> datetime:
        return at_hour(self.since_hour)

    @property
    def until(self) -> datetime:
        return at_hour(self.until_hour)

    def starts(self) -> range:
        return range(self.since_hour, self.until_hour, self.bucket_hours)

    def bucket_of(self, moment: datetime) -> int:
        hour = rollup.hour_of(moment)
        return hour - (hour - self.offset_hours) % self.bucket_hours

    def query(self, **filters: Any) -> rollup.RollupQuery:
        return rollup.RollupQuery(
            since_hour=self.since_hour,
            until_hour=self.until_hour,
            bucket_hours=self.bucket_hours,
            offset_hours=self.offset_hours,
            # day rows serve buckets made of whole UTC days; anything else reads the hour rows
            grain=rollup.DAY
            if self.bucket_hours % rollup.DAY == 0 == self.offset_hours % rollup.DAY
            else rollup.HOUR,
            **filters,
        )


def at_hour(hour: int) -> datetime:
    return datetime.fromtimestamp(hour * 3600, UTC)


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def window(
    since: datetime | None,
    until: datetime | None,
    bucket: str,
    *,
    max_buckets: int | None = MAX_BUCKETS,
    now: datetime | None = None,
) -> Window:
    """The bucketed range for ``from``/``to`` (defaults: the last 7 days up to now); a clear 422 when the range
    is backwards, longer than 400 days, or has more than 1000 buckets of this width."""
    until = _utc(until or now or datetime.now(UTC))
    since = _utc(since) if since else until - DEFAULT_RANGE
    if since >= until:
        raise ValidationProblem(
            f"'from' ({since.isoformat()}) must be before 'to' ({until.isoformat()})", code="invalid_range"
        )
    if until - since > MAX_RANGE:
        raise ValidationProblem(
            f"The range from 'from' to 'to' is {(until - since).days} days; at most {MAX_RANGE.days} days",
            code="range_too_long",
        )
    if bucket not in BUCKET_HOURS:
        raise ValidationProblem(
            f"Unknown bucket {bucket!r}: use one of {', '.join(BUCKET_HOURS)}", code="bad_bucket"
        )
    width = BUCKET_HOURS[bucket]
    offset = rollup.WEEK_OFFSET_HOURS if bucket == "week" else 0
    first = rollup.hour_of(since)
    last = rollup.hour_of(until - timedelta(microseconds=1))
    since_hour = first - (first - offset) % width
    until_hour = last - (last - offset) % width + width
    buckets = (until_hour - since_hour) // width
    if max_buckets is not None and buckets > max_buckets:
        raise ValidationProblem(
            f"bucket={bucket} over this range gives {buckets} buckets; at most {max_buckets}: choose a wider bucket",
            code="too_many_buckets",
        )
    return Window(bucket, since_hour, until_hour, width, offset)


# --- statistics from rollup sums ------------------------------------------------------------------------------


def histogram_percentile(counts: Sequence[int], q: float) -> float | None:
    """The ``q``-th percentile estimated from histogram counts (linear within the bucket holding it)."""
    total = sum(counts)
    if total == 0:
        return None
    rank = q / 100 * total
    seen = 0
    for index, count in enumerate(counts):
        if count and seen + count >= rank:
            lower = rollup.LATENCY_BOUNDS_MS[index - 1] if index > 0 else 0.0
            upper = rollup.LATENCY_BOUNDS_MS[index] if index < len(rollup.LATENCY_BOUNDS_MS) else lower * 2
            return round(lower + (upper - lower) * max(0.0, rank - seen) / count, 1)
        seen += count
    return rollup.LATENCY_BOUNDS_MS[-1] * 2


@dataclass(frozen=True)
class Stats:
    runs: int = 0
    errors: int = 0
    error_rate: float | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    latency_ms_avg: float | None = None
    latency_ms_p50: float | None = None
    latency_ms_p95: float | None = None


class Sums:
    """Running sums of rollup rows (the columns of :data:`rollup.SUM_COLUMNS`, in order)."""

    def __init__(self) -> None:
        self.values: list[float] = [0] * len(rollup.SUM_COLUMNS)

    def add(self, values: Sequence[Any]) -> None:
        self.values = [a + (b or 0) for a, b in zip(self.values, values, strict=True)]

    def get(self, name: str) -> float:
        return self.values[rollup.SUM_COLUMNS.index(name)]

    def stats(self) -> Stats:
        runs = int(self.get("runs"))
        if runs == 0:
            return Stats()
        histogram = [int(v) for v in self.values[6:]]
        return Stats(
            runs=runs,
            errors=int(self.get("errors")),
            error_rate=round(self.get("errors") / runs, 6),
            input_tokens=int(self.get("input_tokens")),
            output_tokens=int(self.get("output_tokens")),
            cost_usd=round(self.get("cost_usd"), 8),
            latency_ms_avg=round(self.get("latency_ms_sum") / runs, 1),
            latency_ms_p50=histogram_percentile(histogram, 50),
            latency_ms_p95=histogram_percentile(histogram, 95),
        )


# --- keys -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SeriesKey:
    key: str
    label: str
    prompt_id: str | None = None
    prompt_name: str | None = None
    version: int | None = None
    provider: str | None = None
    model: str | None = None
    source: str | None = None


async def _prompt_names(
    session: AsyncSession, principal: Principal, prompt_ids: Sequence[str]
) -> dict[str, str]:
    names = {}
    for prompt_id in dict.fromkeys(p for p in prompt_ids if p):
        try:
            names[prompt_id] = (await registry.get_prompt(session, principal, prompt_id)).name
        except NotFound:
            continue
    return names


async def describe_keys(
    session: AsyncSession, principal: Principal, group_by: str, keys: Sequence[tuple[str, ...]]
) -> dict[tuple[str, ...], SeriesKey]:
    """Readable keys: prompt names through the registry, ``provider/model``, version numbers."""
    names = await _prompt_names(
        session, principal, [k[0] for k in keys] if group_by in ("prompt", "version") else []
    )
    numbers = (
        await registry.version_refs(session, principal, [k[1] for k in keys]) if group_by == "version" else {}
    )
    out = {}
    for key in keys:
        text = "|".join(key) if key else "all"
        if group_by in ("prompt", "version"):
            prompt_id = key[0] or None
            name = names.get(key[0]) if prompt_id else None
            label = name or (prompt_id or "(no prompt)")
            number = numbers.get(key[1], (None, None))[1] if group_by == "version" else None
            if group_by == "version":
                label = f"{label} v{number}" if number is not None else f"{label} (no version)"
            out[key] = SeriesKey(text, label, prompt_id=prompt_id, prompt_name=name, version=number)
        elif group_by == "model":
            out[key] = SeriesKey(text, f"{key[0]}/{key[1]}", provider=key[0], model=key[1])
        elif group_by == "source":
            out[key] = SeriesKey(text, key[0], source=key[0])
        else:
            out[key] = SeriesKey("all", "All runs")
    return out


# --- usage ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Point(Stats):
    bucket_start: datetime = field(default_factory=lambda: at_hour(0))
    key: str = ""


@dataclass(frozen=True)
class Usage:
    window: Window
    group_by: str
    keys: list[SeriesKey]
    points: list[Point]
    totals: Stats
    other_keys: int


async def usage(
    session: AsyncSession,
    principal: Principal,
    win: Window,
    *,
    group_by: str = "none",
    prompt_id: str | None = None,
    model: str | None = None,
    source: str | None = None,
    limit: int = 10,
) -> Usage:
    """Usage per bucket and group: the ``limit`` groups with most runs as series, the rest summed as "other"."""
    if group_by not in rollup.GROUPS:
        raise ValidationProblem(
            f"Unknown groupBy {group_by!r}: use one of {', '.join(rollup.GROUPS)}", code="bad_group_by"
        )
    width = len(rollup.GROUPS[group_by])
    query = win.query(group_by=group_by, prompt_id=prompt_id, model=model, source=source)
    per_key = {
        tuple(row[:width]): _sums_of(row[width:])
        for row in await rollup.usage_buckets(session, principal, query, by_bucket=False)
    }
    totals = Sums()
    for sums in per_key.values():
        totals.add(sums.values)
    ranked = sorted(per_key, key=lambda k: (-per_key[k].get("runs"), -per_key[k].get("cost_usd"), k))
    kept: list[tuple[str, ...]] = ranked[:limit]
    folded = len(ranked) - len(kept)
    keys = list((await describe_keys(session, principal, group_by, kept)).values())
    if folded:
        keys.append(SeriesKey(OTHER, f"Other ({folded})"))
    cells: dict[tuple[int, str], Sums] = {}
    rows = await rollup.usage_buckets(session, principal, query, keep=kept)
    text = {key: described.key for key, described in zip(kept, keys, strict=False)}
    for row in rows:
        group = tuple(row[1 : 1 + width])
        cells[(row[0], OTHER if width and group[0] is None else text[group])] = _sums_of(row[1 + width :])
    points = [
        Point(**vars(cells.get((start, k.key), Sums()).stats()), bucket_start=at_hour(start), key=k.key)
        for start in win.starts()
        for k in keys
    ]
    return Usage(win, group_by, keys, points, totals.stats(), folded)


# --- top ------------------------------------------------------------------------------------------------------

TOP_METRICS = {
    "cost": lambda s: s.cost_usd,
    "runs": lambda s: s.runs,
    "errors": lambda s: s.errors,
    "latency": lambda s: s.latency_ms_p95 or 0.0,
}


async def top(
    session: AsyncSession, principal: Principal, win: Window, *, by: str, metric: str, limit: int = 10
) -> list[tuple[SeriesKey, Stats]]:
    """Prompts or models ranked by ``metric`` over the whole range (latency ranks by p95), largest first."""
    if by not in ("prompt", "model"):
        raise ValidationProblem(f"Unknown by {by!r}: use prompt or model", code="bad_top_by")
    if metric not in TOP_METRICS:
        raise ValidationProblem(
            f"Unknown metric {metric!r}: use one of {', '.join(TOP_METRICS)}", code="bad_metric"
        )
    whole = Window(
        win.bucket, win.since_hour, win.until_hour, win.until_hour - win.since_hour, win.since_hour
    )
    query = whole.query(group_by=by)
    width = len(rollup.GROUPS[by])
    stats = {
        tuple(row[:width]): _sums_of(row[width:]).stats()
        for row in await rollup.usage_buckets(session, principal, query, by_bucket=False)
    }
    ranked = sorted(stats, key=lambda k: (-TOP_METRICS[metric](stats[k]), -stats[k].runs, k))[:limit]
    described = await describe_keys(session, principal, by, ranked)
    return [(described[k], stats[k]) for k in ranked]


def _sums_of(values: Sequence[Any]) -> Sums:
    sums = Sums()
    sums.add(values)
    return sums


# --- quality --------------------------------------------------------------------------------------------------


@dataclass
class FeedbackPoint:
    bucket_start: datetime
    count: int = 0
    scored: int = 0
    score_sum: float = 0.0
    thumbs_up: int = 0
    thumbs_down: int = 0

    @property
    def mean_score(self) -> float | None:
        return round(self.score_sum / self.scored, 4) if self.scored else None


@dataclass
class EvalPoint:
    bucket_start: datetime
    evaluations: int = 0
    results: int = 0
    passed: int = 0
    score_sum: float = 0.0
    version_id: str = ""
    prompt_name: str | None = None
    version: int | None = None

    @property
    def mean_score(self) -> float | None:
        return round(self.score_sum / self.results, 4) if self.results else None

    @property
    def pass_rate(self) -> float | None:
        return round(self.passed / self.results, 4) if self.results else None


@dataclass(frozen=True)
class Quality:
    window: Window
    feedback: list[FeedbackPoint]
    evals: list[EvalPoint]
    eval_versions: list[EvalPoint]
    truncated: bool


async def _feedback_trend(
    session: AsyncSession, principal: Principal, win: Window, prompt_id: str | None
) -> tuple[list[FeedbackPoint], bool]:
    points = {start: FeedbackPoint(at_hour(start)) for start in win.starts()}
    cursor: str | None = None
    seen = 0
    while True:
        rows, cursor = await feedback.list_feedback(
            session,
            principal,
            prompt=prompt_id,
            since=win.since,
            until=win.until,
            cursor=cursor,
            limit=QUALITY_PAGE,
        )
        for row in rows:
            point = points[win.bucket_of(row.created_at)]
            point.count += 1
            if row.score is not None:
                point.scored += 1
                point.score_sum += row.score
            point.thumbs_up += row.thumbs == 1
            point.thumbs_down += row.thumbs == -1
        seen += len(rows)
        if cursor is None:
            return list(points.values()), False
        if seen >= MAX_QUALITY_RECORDS:
            return list(points.values()), True


async def _eval_trend(
    session: AsyncSession, principal: Principal, win: Window, prompt_id: str | None
) -> tuple[list[EvalPoint], list[EvalPoint], bool]:
    """Completed evaluations by the bucket they finished in: overall and per version (from their summaries)."""
    overall = {start: EvalPoint(at_hour(start)) for start in win.starts()}
    per_version: dict[tuple[int, str], EvalPoint] = {}
    cursor: str | None = None
    seen = 0
    while True:
        try:
            runs, cursor = await evals.list_runs(
                session,
                principal,
                status="completed",
                prompt=prompt_id,
                finished=(win.since, win.until),
                cursor=cursor,
                limit=200,
            )
        except NotFound:  # an unknown prompt has no evaluations (as usage answers for it: nothing)
            return list(overall.values()), [], False
        for run in runs:
            finished = run.finished_at
            if finished is None:
                continue
            start = win.bucket_of(finished)
            overall[start].evaluations += 1
            for group in run.summary.get("groups") or []:
                if prompt_id and group.get("promptId") != prompt_id:
                    continue
                done, mean = int(group.get("completed") or 0), group.get("meanScore")
                if not done or mean is None:
                    continue
                key = (start, group["versionId"])
                point = per_version.setdefault(
                    key,
                    EvalPoint(
                        at_hour(start),
                        version_id=group["versionId"],
                        prompt_name=group.get("promptName"),
                        version=group.get("version"),
                    ),
                )
                for target in (overall[start], point):
                    target.results += done
                    target.passed += int(group.get("passed") or 0)
                    target.score_sum += float(mean) * done
        seen += len(runs)
        if cursor is None:
            return list(overall.values()), sorted(per_version.values(), key=_version_order), False
        if seen >= MAX_QUALITY_RECORDS:
            return list(overall.values()), sorted(per_version.values(), key=_version_order), True


def _version_order(point: EvalPoint) -> tuple[Any, ...]:
    return (point.bucket_start, point.prompt_name or "", point.version or 0)


async def quality(
    session: AsyncSession, principal: Principal, win: Window, *, prompt_id: str | None = None
) -> Quality:
    """Feedback (count, mean 1-5 score, thumbs) and evaluation scores per bucket, zero-filled."""
    if win.bucket == "hour":
        raise ValidationProblem("Quality trends use bucket=day or bucket=week", code="bad_bucket")
    feedback_points, feedback_cut = await _feedback_trend(session, principal, win, prompt_id)
    eval_points, version_points, evals_cut = await _eval_trend(session, principal, win, prompt_id)
    return Quality(win, feedback_points, eval_points, version_points, feedback_cut or evals_cut)
