"""Monitoring behaviour: per-version metrics over time, one metric over a trailing window, drift checks.

The interface other features code against (alerts evaluates its rules with these):

* :func:`metric_value` — one metric of a prompt (label) over a trailing window, from rollups;
* :func:`drift_check` — the current window against a baseline window, every drift signal, and the runs to
  review when something drifted.

Both take a ``project_id`` (the caller has already decided the project, e.g. an alert rule's) and read with a
read-only principal of that project, so every query stays scoped to it. :func:`series` serves the charts.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from promptops.auth.principal import Principal
from promptops.errors import ValidationProblem
from promptops.logging import log
from promptops.monitoring import drift
from promptops.monitoring.drift import DriftSignal, HourlySeries, RunPoint, Sample, input_text
from promptops.monitoring.metrics import (
    DEFAULT_LABEL,
    METRICS,
    PRODUCTION_SOURCES,
    Cell,
    Scope,
    Serving,
    Window,
    at_hour,
    cells,
    merged,
    reader,
    scope,
    trailing_window,
    utc,
    window,
)
from promptops.monitoring.models import OnlineEval
from promptops.registry import service as registry
from promptops.runs import service as runs
from promptops.tenancy.service import scoped

__all__ = [
    "DEFAULT_LABEL",
    "METRICS",
    "DriftReport",
    "DriftSignal",
    "MetricValue",
    "Series",
    "drift_check",
    "metric_value",
    "reader",
    "series",
]

MAX_WINDOW = timedelta(days=90)
MAX_SAMPLE = 2000  # runs read per drift window (spread over the window)
SAMPLE_SLICES = 10
MAX_SCORES = 5000
MAX_AFFECTED = 200


# --- one metric over a trailing window ------------------------------------------------------------------------


@dataclass(frozen=True)
class MetricValue:
    """A metric's value over a window and how many observations it rests on (runs, scored samples or scored
    feedback records)."""

    value: float
    samples: int


def _check_metric(metric: str) -> None:
    if metric not in METRICS:
        raise ValidationProblem(
            f"Unknown metric {metric!r}: use one of {', '.join(METRICS)}", code="bad_metric"
        )


def _check_window(name: str, span: timedelta) -> None:
    if span <= timedelta(0) or span > MAX_WINDOW:
        raise ValidationProblem(
            f"{name} must be more than 0 and at most {MAX_WINDOW.days} days", code="bad_window"
        )


def value_of(cell: Cell, metric: str) -> MetricValue | None:
    """``metric`` of summed ``cell``: None where it is undefined (a rate or latency without runs, a mean
    without scores); volume, tokens and cost are 0 without runs."""
    if metric == "volume":
        return MetricValue(float(cell.runs), cell.runs)
    if metric == "tokens":
        return MetricValue(float(cell.tokens), cell.runs)
    if metric == "cost_usd":
        return MetricValue(round(cell.cost_usd, 8), cell.runs)
    if metric == "feedback_mean":
        mean = cell.feedback_mean
        return None if mean is None else MetricValue(mean, cell.feedback_scored)
    if metric == "online_eval_pass_rate":
        rate = cell.online_pass_rate
        return None if rate is None else MetricValue(rate, cell.online_scored)
    found = {
        "error_rate": cell.error_rate,
        "latency_p50_ms": cell.latency_p50_ms,
        "latency_p95_ms": cell.latency_p95_ms,
    }[metric]
    return None if found is None else MetricValue(float(found), cell.runs)


async def metric_value(
    session: AsyncSession,
    project_id: str,
    *,
    prompt_name: str,
    label: str | None,
    metric: str,
    window: timedelta,
    now: datetime,
) -> MetricValue | None:
    """``metric`` (one of :data:`METRICS`) of prompt ``prompt_name`` over [now - window, now), for the runs of
    the versions that served ``label`` in that time (every version when ``label`` is None).

    Read from the hourly rollups, so the window is widened to whole hours (the current hour included). None
    when the metric is undefined for the window (no runs for a rate or a latency, no scores for a mean).
    Raises NotFound (``prompt_not_found``) for an unknown prompt, ValidationProblem for a bad metric/window.
    """
    _check_metric(metric)
    _check_window("window", window)
    principal = reader(project_id)
    win = trailing_window(window, now)
    target = await scope(session, principal, prompt_name, label, win.since, win.until)
    found = await cells(session, principal, win, target)
    return value_of(merged(found.values()), metric)


# --- charts -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Series:
    window: Window
    scope: Scope
    versions: list[tuple[str, int | None]]  # (version id, number), newest number first
    points: dict[tuple[int, str], Cell]  # (bucket start hour, version id) -> sums; missing = nothing
    per_version: dict[str, Cell]
    totals: Cell
    per_bucket: dict[int, Cell]


async def series(
    session: AsyncSession, principal: Principal, prompt: str, *, label: str | None, win: Window
) -> Series:
    """Every metric per bucket for each version that served ``label`` in the window (every version with
    traffic when ``label`` is None), with per-version and overall totals."""
    target = await scope(session, principal, prompt, label, win.since, win.until)
    found = await cells(session, principal, win, target)
    numbers: dict[str, int | None] = {v.version_id: v.version for v in target.versions}
    unknown = sorted({vid for _, vid in found if vid not in numbers and vid})
    if unknown:
        refs = await registry.version_refs(session, principal, unknown)
        numbers.update({vid: ref[1] for vid, ref in refs.items()})
    for _, vid in found:
        numbers.setdefault(vid, None)
    versions = sorted(numbers.items(), key=lambda item: (item[1] is None, -(item[1] or 0), item[0]))
    per_version = {vid: merged(c for (_, v), c in found.items() if v == vid) for vid, _ in versions}
    per_bucket = {start: merged(c for (s, _), c in found.items() if s == start) for start in win.starts()}
    return Series(win, target, versions, found, per_version, merged(found.values()), per_bucket)


# --- drift ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DriftReport:
    """``drifted`` when any signal drifted; ``run_ids``: up to 200 runs of the current window behind the
    drifted signals (for an annotation queue), empty when nothing drifted."""

    drifted: bool
    signals: list[DriftSignal]
    run_ids: list[str]
    prompt_id: str = ""
    prompt_name: str = ""
    label: str | None = None
    current: tuple[datetime, datetime] | None = None
    baseline: tuple[datetime, datetime] | None = None
    current_runs: int = 0
    baseline_runs: int = 0
    current_scores: int = 0
    baseline_scores: int = 0
    skipped: tuple[tuple[str, str], ...] = ()
    alpha: float = drift.DEFAULT_ALPHA
    versions: tuple[Serving, ...] = ()


async def _runs_sample(
    session: AsyncSession, principal: Principal, target: Scope, since: datetime, until: datetime
) -> list[RunPoint]:
    """Up to :data:`MAX_SAMPLE` production runs of the scope in [since, until), spread over the window: the
    newest runs of each of :data:`SAMPLE_SLICES` equal slices (so a sample is not just the window's end)."""
    per_slice = MAX_SAMPLE // SAMPLE_SLICES
    step = (until - since) / SAMPLE_SLICES
    points: list[RunPoint] = []
    for index in range(SAMPLE_SLICES):
        start = since + step * index
        end = until if index == SAMPLE_SLICES - 1 else since + step * (index + 1)
        rows = await runs.sample_runs(
            session,
            principal,
            prompt_id=target.prompt_id,
            since=start,
            until=end,
            limit=per_slice,
            version_ids=target.version_ids,
            sources=PRODUCTION_SOURCES,
        )
        points.extend(
            RunPoint(
                run.id,
                run.status == "ok",
                run.output,
                input_text(run.input),
                float(run.latency_ms or 0.0),
                float(run.cost_usd or 0.0),
            )
            for run in rows
        )
    return points


async def _scores(
    session: AsyncSession, principal: Principal, target: Scope, since: datetime, until: datetime
) -> list[tuple[str, float]]:
    stmt = scoped(
        select(OnlineEval.run_id, OnlineEval.score, OnlineEval.version_id), OnlineEval, principal
    ).where(
        OnlineEval.prompt_id == target.prompt_id,
        OnlineEval.status == "done",
        OnlineEval.run_created_at >= since,
        OnlineEval.run_created_at < until,
        OnlineEval.score.is_not(None),
    )
    wanted = target.version_ids
    rows = (await session.execute(stmt.order_by(OnlineEval.run_created_at.desc()).limit(MAX_SCORES))).all()
    return [(run_id, float(score or 0.0)) for run_id, score, vid in rows if wanted is None or vid in wanted]


async def _hourly(
    session: AsyncSession, principal: Principal, target: Scope, since: datetime, until: datetime
) -> HourlySeries:
    win = trailing_window(until - since, until)
    found = await cells(session, principal, win, target)
    hours, latency, cost = [], [], []
    for start in win.starts():
        cell = merged(c for (s, _), c in found.items() if s == start)
        if cell.runs:
            hours.append(at_hour(start))
            latency.append(cell.latency_ms_sum / cell.runs)
            cost.append(cell.cost_usd / cell.runs)
    return HourlySeries(hours, latency, cost)


_embedder: Any = None


def _embed(texts: list[str]) -> np.ndarray:
    global _embedder
    if _embedder is None:
        from promptops.search.embed import embedder

        _embedder = embedder("static")
    return np.asarray(_embedder.embed(texts), dtype=np.float32)


def _embedding_available() -> bool:
    try:
        from promptops.search.embed import embedder

        embedder("static")
    except Exception as exc:  # the weights package is optional at run time
        log.warning("monitoring_embedder_unavailable", error_type=type(exc).__name__)
        return False
    return True


async def drift_check(
    session: AsyncSession,
    project_id: str,
    *,
    prompt_name: str,
    label: str | None,
    window: timedelta,
    baseline: timedelta,
    now: datetime,
    alpha: float = drift.DEFAULT_ALPHA,
) -> DriftReport:
    """Compare the runs of [now - window, now) with those of the ``baseline`` before it, for the versions that
    served ``label`` (every version when None). Signals and their tests: :mod:`promptops.monitoring.drift`.

    Reads a bounded sample of runs per window (at most 2,000, spread over the window), the online-evaluation
    scores of both windows and the hourly rollup for change points. Raises NotFound for an unknown prompt.
    """
    _check_window("window", window)
    _check_window("baseline", baseline)
    if not 0 < alpha < 0.5:
        raise ValidationProblem("alpha must be in (0, 0.5)", code="bad_alpha")
    principal = reader(project_id)
    end = utc(now)
    current_since = end - window
    baseline_since = current_since - baseline
    target = await scope(session, principal, prompt_name, label, baseline_since, end)
    if target.version_ids == set():
        cur_runs: list[RunPoint] = []
        base_runs: list[RunPoint] = []
        cur_scores: list[tuple[str, float]] = []
        base_scores: list[tuple[str, float]] = []
        hourly = HourlySeries([], [], [])
    else:
        cur_runs = await _runs_sample(session, principal, target, current_since, end)
        base_runs = await _runs_sample(session, principal, target, baseline_since, current_since)
        cur_scores = await _scores(session, principal, target, current_since, end)
        base_scores = await _scores(session, principal, target, baseline_since, current_since)
        hourly = await _hourly(session, principal, target, baseline_since, end)
    embed = None
    if bool(cur_runs) and bool(base_runs) and await asyncio.to_thread(_embedding_available):
        embed = _embed
    baseline_sample = Sample(base_runs, base_scores)
    current_sample = Sample(cur_runs, cur_scores)

    def run() -> drift.Comparison:
        return drift.compare(
            baseline_sample,
            current_sample,
            alpha=alpha,
            embed=embed,
            hourly=hourly,
            max_affected=MAX_AFFECTED,
        )

    comparison = await asyncio.to_thread(run)  # scipy, embeddings and permutations: off the event loop
    drifted = any(signal.drifted for signal in comparison.signals)
    return DriftReport(
        drifted=drifted,
        signals=comparison.signals,
        run_ids=comparison.affected if drifted else [],
        prompt_id=target.prompt_id,
        prompt_name=target.prompt_name,
        label=label,
        current=(current_since, end),
        baseline=(baseline_since, current_since),
        current_runs=len(cur_runs),
        baseline_runs=len(base_runs),
        current_scores=len(cur_scores),
        baseline_scores=len(base_scores),
        skipped=tuple(comparison.skipped),
        alpha=alpha,
        versions=tuple(target.versions),
    )


def monitoring_window(since: datetime | None, until: datetime | None, bucket: str) -> Window:
    """The chart window for ``from``/``to``/``bucket`` (see :func:`promptops.monitoring.metrics.window`)."""
    return window(since, until, bucket)
