"""Scheduled regression evaluations: a cron schedule per prompt label re-runs a pinned dataset (and scorers)
against the version the label points at when it fires, through the evaluation engine, and compares the result
with the schedule's last good run using the paired statistics of :func:`promptops.evals.service.compare`.

One periodic task (``evals.schedules``, every 15 s, in one process of the installation) does two things:

1. **fire**: every enabled schedule whose ``next_run_at`` has come is claimed with a conditional UPDATE
   (``WHERE next_run_at = :seen``: two replicas never both fire it), moved to its next cron time (missed times
   are skipped, not caught up), and gets an evaluation run (``EvaluationQueued``, actor ``system``) and a
   ``running`` history row;
2. **conclude**: every ``running`` history row whose evaluation has finished becomes ``baseline`` (the first
   good run), ``pass`` (the new last good run), ``regressed`` (significantly worse than the last good run:
   McNemar on pass/fail, else the paired bootstrap on scores) or ``failed``; ``RegressionCheckFinished``
   records it. The alert rules of kind ``regression`` (:mod:`promptops.alerts`) read these outcomes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from promptops.auth.principal import Principal, system_principal
from promptops.datasets import service as datasets
from promptops.db import utcnow
from promptops.errors import Conflict, ProblemError, ValidationProblem
from promptops.evals import service as evals
from promptops.evals.schedules.models import EvalSchedule, EvalScheduleRun
from promptops.evals.schedules.schemas import EvalScheduleIn, EvalScheduleUpdate
from promptops.evals.schemas import EvalRunIn, ScorerSpec
from promptops.evals.scoring import scorers_for, validate_specs
from promptops.governance import audit
from promptops.ids import new_id
from promptops.jobs.lifecycle import JobPrincipal
from promptops.jobs.periodic import register_periodic
from promptops.jobs.states import TERMINAL
from promptops.logging import log
from promptops.pagination import fetch_page, id_cursor
from promptops.registry import service as registry
from promptops.tenancy.service import get_scoped, scoped

if TYPE_CHECKING:
    from promptops.evals.models import EvalRun
    from promptops.providers.calls import ModelCaller
    from promptops.runtime import Runtime

TASK = "evals.schedules"
MIN_INTERVAL = timedelta(minutes=5)
MAX_DUE_PER_ROUND = 50
MAX_REVIEW_RESULTS = 500
CONCLUDED = ("baseline", "pass", "regressed", "failed")


# --- cron ----------------------------------------------------------------------------------------------------


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationProblem(
            f"Unknown time zone {name!r}: use an IANA name such as 'UTC' or 'Europe/Riga'",
            code="invalid_timezone",
        )


def next_run(cron: str, timezone: str, after: datetime) -> datetime:
    """The first time strictly after ``after`` that ``cron`` (read in ``timezone``) names, in UTC."""
    local = after.astimezone(zone(timezone))
    try:
        found: datetime = next(CronSim(cron, local))
    except CronSimError as exc:
        raise ValidationProblem(f"Invalid cron expression {cron!r}: {exc}", code="invalid_cron")
    except StopIteration:
        raise ValidationProblem(f"Cron expression {cron!r} never fires", code="invalid_cron")
    return found.astimezone(UTC)


def check_cron(cron: str, timezone: str, now: datetime) -> datetime:
    """Validate ``cron`` in ``timezone`` (five fields, at most every 5 minutes); the first run after ``now``."""
    if len(cron.split()) != 5:
        raise ValidationProblem(
            f"Invalid cron expression {cron!r}: give five fields (minute hour day-of-month month day-of-week)",
            code="invalid_cron",
        )
    first = previous = next_run(cron, timezone, now)
    for _ in range(12):
        following = next_run(cron, timezone, previous)
        if following - previous < MIN_INTERVAL:
            raise ValidationProblem(
                f"Cron expression {cron!r} fires every {int((following - previous).total_seconds() // 60)} "
                f"minute(s); a regression schedule may fire at most every {MIN_INTERVAL.seconds // 60} minutes",
                code="cron_too_frequent",
            )
        previous = following
    return first


def describe(cron: str) -> str:
    """The expression in words ("At 03:00"), or the expression itself when it cannot be explained."""
    try:
        return str(CronSim(cron, datetime.now(UTC)).explain())
    except (CronSimError, AttributeError, ValueError):
        return cron


# --- create, read, change ------------------------------------------------------------------------------------


async def _check_models(caller: ModelCaller, principal: Principal, models: Sequence[dict[str, Any]]) -> None:
    if models:
        await evals.check_targets(caller, principal, models)


async def create_schedule(
    session: AsyncSession, principal: Principal, body: EvalScheduleIn, caller: ModelCaller
) -> EvalSchedule:
    """A schedule on ``body.prompt@body.label`` pinned to a dataset version; validated like an evaluation
    (prompt label, dataset cases, scorers, models) so that a firing can only fail on what changes later."""
    now = utcnow()
    first = check_cron(body.cron, body.timezone, now)
    prompt, version, _ = await registry.resolve(session, principal, body.prompt, label=body.label)
    dataset, dataset_version = await datasets.resolve_version(session, principal, body.dataset)
    cases = await datasets.list_cases(session, principal, dataset_version.id)
    if not cases:
        raise ValidationProblem(
            f"Dataset {dataset.name!r} version {dataset_version.version} has no cases", code="empty_dataset"
        )
    scorers: list[ScorerSpec] = scorers_for(body.scorers, (c.expected for c in cases))
    if not scorers:
        raise ValidationProblem(
            "No scorers given and the dataset has no expected outputs to compare with; add 'scorers'",
            code="no_scorers",
        )
    validate_specs(scorers)
    models = [m.model_dump() for m in body.models]
    await _check_models(caller, principal, models)
    taken = (
        await session.execute(
            scoped(select(EvalSchedule.id), EvalSchedule, principal).where(EvalSchedule.name == body.name)
        )
    ).first()
    if taken is not None:
        raise Conflict(f"A regression schedule named {body.name!r} already exists", code="schedule_exists")
    schedule = EvalSchedule(
        id=new_id("eval_schedule"),
        project_id=principal.project_id,
        name=body.name,
        prompt_id=prompt.id,
        prompt_name=prompt.name,
        label=body.label,
        cron=body.cron,
        timezone=body.timezone,
        dataset_id=dataset.id,
        dataset_name=dataset.name,
        dataset_version_id=dataset_version.id,
        dataset_version=dataset_version.version,
        scorers=[s.model_dump(exclude_none=True, by_alias=True) for s in scorers],
        models=models,
        pass_threshold=body.pass_threshold,
        alpha=body.alpha,
        enabled=body.enabled,
        next_run_at=first if body.enabled else None,
        principal=JobPrincipal.of(principal).dump(),
        created_by=principal.id,
        created_at=now,
        updated_at=now,
    )
    session.add(schedule)
    await session.flush()
    await audit.record(
        session,
        principal,
        "EvalScheduleCreated",
        prompt_id=prompt.id,
        data={**_audit_view(schedule), "currentVersion": version.version},
    )
    return schedule


def _audit_view(schedule: EvalSchedule) -> dict[str, Any]:
    return {
        "scheduleId": schedule.id,
        "name": schedule.name,
        "promptName": schedule.prompt_name,
        "label": schedule.label,
        "cron": schedule.cron,
        "timezone": schedule.timezone,
        "dataset": schedule.dataset_name,
        "datasetVersion": schedule.dataset_version,
        "enabled": schedule.enabled,
    }


async def get_schedule(
    session: AsyncSession, principal: Principal, schedule_id: str, *, for_update: bool = False
) -> EvalSchedule:
    return await get_scoped(
        session,
        principal,
        EvalSchedule,
        schedule_id,
        missing=f"Regression schedule {schedule_id} not found",
        code="schedule_not_found",
        for_update=for_update,
    )


async def list_schedules(
    session: AsyncSession,
    principal: Principal,
    *,
    prompt: str | None = None,
    label: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> tuple[list[EvalSchedule], str | None]:
    """The project's schedules, newest first."""
    stmt = scoped(select(EvalSchedule), EvalSchedule, principal)
    if prompt:
        stmt = stmt.where(EvalSchedule.prompt_id == await registry.prompt_id_of(session, principal, prompt))
    if label:
        stmt = stmt.where(EvalSchedule.label == label)
    if cursor:
        stmt = stmt.where(EvalSchedule.id < id_cursor(cursor, "eval_schedule"))
    return await fetch_page(session, stmt.order_by(EvalSchedule.id.desc()), limit, lambda s: s.id)


async def last_statuses(session: AsyncSession, schedules: Sequence[EvalSchedule]) -> dict[str, str]:
    """{schedule id: status of its newest history row} for the given schedules (one query)."""
    if not schedules:
        return {}
    newest = (
        select(func.max(EvalScheduleRun.id))
        .where(EvalScheduleRun.schedule_id.in_([s.id for s in schedules]))
        .group_by(EvalScheduleRun.schedule_id)
    )
    rows = await session.execute(
        select(EvalScheduleRun.schedule_id, EvalScheduleRun.status).where(EvalScheduleRun.id.in_(newest))
    )
    return {schedule_id: status for schedule_id, status in rows.all()}


async def update_schedule(
    session: AsyncSession, principal: Principal, schedule_id: str, body: EvalScheduleUpdate
) -> EvalSchedule:
    """Change name, timing, significance level or pass threshold, or switch the schedule on or off."""
    schedule = await get_schedule(session, principal, schedule_id, for_update=True)
    changes: dict[str, dict[str, Any]] = {}
    cron = body.cron if body.cron is not None else schedule.cron
    timezone = body.timezone if body.timezone is not None else schedule.timezone
    enabled = body.enabled if body.enabled is not None else schedule.enabled
    now = utcnow()
    first = check_cron(cron, timezone, now)
    if body.name is not None and body.name != schedule.name:
        taken = (
            await session.execute(
                scoped(select(EvalSchedule.id), EvalSchedule, principal).where(EvalSchedule.name == body.name)
            )
        ).first()
        if taken is not None:
            raise Conflict(
                f"A regression schedule named {body.name!r} already exists", code="schedule_exists"
            )
    for attr, key in (
        ("name", "name"),
        ("cron", "cron"),
        ("timezone", "timezone"),
        ("alpha", "alpha"),
        ("pass_threshold", "passThreshold"),
        ("enabled", "enabled"),
    ):
        value = getattr(body, attr)
        if value is not None and value != getattr(schedule, attr):
            changes[key] = {"from": getattr(schedule, attr), "to": value}
            setattr(schedule, attr, value)
    if changes:
        if {"cron", "timezone", "enabled"} & set(changes):
            schedule.next_run_at = first if enabled else None
        schedule.updated_at = now
        await session.flush()
        await audit.record(
            session,
            principal,
            "EvalScheduleUpdated",
            prompt_id=schedule.prompt_id,
            data={"scheduleId": schedule.id, "name": schedule.name, "changes": changes},
        )
    return schedule


async def delete_schedule(session: AsyncSession, principal: Principal, schedule_id: str) -> None:
    """Remove the schedule and its history (the evaluation runs it made stay)."""
    schedule = await get_schedule(session, principal, schedule_id, for_update=True)
    view = _audit_view(schedule)
    await session.delete(schedule)
    await audit.record(session, principal, "EvalScheduleDeleted", prompt_id=schedule.prompt_id, data=view)


async def trigger(session: AsyncSession, principal: Principal, schedule_id: str) -> EvalSchedule:
    """Make the schedule due now: the periodic task fires it within its next round (even when disabled)."""
    schedule = await get_schedule(session, principal, schedule_id, for_update=True)
    now = utcnow()
    schedule.next_run_at, schedule.updated_at = now, now
    await audit.record(
        session,
        principal,
        "EvalScheduleTriggered",
        prompt_id=schedule.prompt_id,
        data={"scheduleId": schedule.id, "name": schedule.name},
    )
    return schedule


async def list_history(
    session: AsyncSession,
    principal: Principal,
    schedule_id: str,
    *,
    status: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> tuple[list[EvalScheduleRun], str | None]:
    """A schedule's runs, newest first."""
    await get_schedule(session, principal, schedule_id)
    stmt = scoped(select(EvalScheduleRun), EvalScheduleRun, principal).where(
        EvalScheduleRun.schedule_id == schedule_id
    )
    if status:
        stmt = stmt.where(EvalScheduleRun.status == status)
    if cursor:
        stmt = stmt.where(EvalScheduleRun.id < id_cursor(cursor, "eval_schedule_run"))
    return await fetch_page(session, stmt.order_by(EvalScheduleRun.id.desc()), limit, lambda r: r.id)


@dataclass(frozen=True)
class Outcome:
    """A schedule and its newest concluded run (None before the first one concluded)."""

    schedule: EvalSchedule
    run: EvalScheduleRun | None


async def latest_outcomes(
    session: AsyncSession,
    principal: Principal,
    *,
    prompt_name: str | None = None,
    label: str | None = None,
    schedule_id: str | None = None,
) -> list[Outcome]:
    """Each matching schedule of the project with its newest concluded run (for regression alert rules)."""
    stmt = scoped(select(EvalSchedule), EvalSchedule, principal)
    if prompt_name:
        stmt = stmt.where(EvalSchedule.prompt_name == prompt_name)
    if label:
        stmt = stmt.where(EvalSchedule.label == label)
    if schedule_id:
        stmt = stmt.where(EvalSchedule.id == schedule_id)
    schedules = list((await session.execute(stmt.order_by(EvalSchedule.id).limit(1000))).scalars())
    if not schedules:
        return []
    newest = (
        select(func.max(EvalScheduleRun.id))
        .where(
            EvalScheduleRun.schedule_id.in_([s.id for s in schedules]),
            EvalScheduleRun.status.in_(CONCLUDED),
        )
        .group_by(EvalScheduleRun.schedule_id)
    )
    runs = {
        r.schedule_id: r
        for r in (
            await session.execute(select(EvalScheduleRun).where(EvalScheduleRun.id.in_(newest)))
        ).scalars()
    }
    return [Outcome(s, runs.get(s.id)) for s in schedules]


# --- the periodic task ---------------------------------------------------------------------------------------


def _acting(schedule: EvalSchedule) -> Principal:
    """The scheduler acts as the system in the schedule's project (its events have actor ``system``)."""
    return system_principal(schedule.project_id, str((schedule.principal or {}).get("orgId", "")))


async def _claim(runtime: Runtime, schedule_id: str, seen: datetime, now: datetime) -> EvalSchedule | None:
    """Move a due schedule to its next time if nobody else did; the schedule when this process won it."""
    async with runtime.db.transaction(write=True) as session:
        schedule = await session.get(EvalSchedule, schedule_id)
        if schedule is None:
            return None
        try:
            following: datetime | None = next_run(schedule.cron, schedule.timezone, now)
        except ValidationProblem:
            following = None  # an expression that no longer parses stops the schedule
        claimed = await session.execute(
            update(EvalSchedule)
            .where(EvalSchedule.id == schedule_id, EvalSchedule.next_run_at == seen)
            .values(next_run_at=following if schedule.enabled else None, last_run_at=now)
            .execution_options(synchronize_session=False)
        )
        if getattr(claimed, "rowcount", 0) != 1:
            return None
        return schedule


async def _fire(runtime: Runtime, schedule: EvalSchedule, scheduled_for: datetime) -> EvalScheduleRun:
    """Queue the evaluation of the label's current version; a problem (label removed, dataset gone, model
    not allowed) is a ``failed`` history row with the problem's detail."""
    principal = _acting(schedule)
    history = EvalScheduleRun(
        id=new_id("eval_schedule_run"),
        project_id=schedule.project_id,
        schedule_id=schedule.id,
        status="running",
        scheduled_for=scheduled_for,
        baseline_eval_run_id=schedule.baseline_eval_run_id,
        started_at=utcnow(),
    )
    run: EvalRun | None = None
    try:
        async with runtime.db.transaction(write=True) as session:
            _, version, _ = await registry.resolve(
                session, principal, schedule.prompt_id, label=schedule.label
            )
            history.version_id, history.version = version.id, version.version
            body = EvalRunIn(
                name=f"{schedule.name}: {schedule.prompt_name}@{schedule.label} (v{version.version}), scheduled",
                prompts=[version.id],
                dataset=schedule.dataset_version_id,
                models=schedule.models,
                scorers=schedule.scorers,
                pass_threshold=schedule.pass_threshold,
            )
            run = await evals.create_run(session, principal, body, runtime.caller)
            history.eval_run_id = run.id
            session.add(history)
            await audit.record(
                session,
                principal,
                "EvalScheduleFired",
                prompt_id=schedule.prompt_id,
                data={
                    "scheduleId": schedule.id,
                    "scheduleRunId": history.id,
                    "evalRunId": run.id,
                    "versionId": version.id,
                    "version": version.version,
                    "scheduledFor": scheduled_for.isoformat(),
                },
            )
    except (ProblemError, ValueError) as exc:  # ValueError: a stored scorer or model no longer validates
        run = None
        detail = exc.detail if isinstance(exc, ProblemError) else str(exc)
        history.status, history.error, history.finished_at = "failed", detail[:2000], utcnow()
        history.eval_run_id = None
        async with runtime.db.transaction(write=True) as session:
            session.add(history)
            await _record_finished(session, principal, schedule, history)
        log.warning("eval_schedule_fire_failed", schedule_id=schedule.id, error=detail[:200])
    if run is not None:
        await runtime.jobs.submit("eval", run.id)
    return history


async def fire_due(runtime: Runtime, now: datetime) -> list[EvalScheduleRun]:
    """Fire every schedule due at ``now`` (claimed one by one, so replicas share the work)."""
    async with runtime.db.transaction() as session:
        due = (
            await session.execute(
                select(EvalSchedule.id, EvalSchedule.next_run_at)
                .where(EvalSchedule.next_run_at.is_not(None), EvalSchedule.next_run_at <= now)
                .order_by(EvalSchedule.next_run_at)
                .limit(MAX_DUE_PER_ROUND)
            )
        ).all()
    fired: list[EvalScheduleRun] = []
    for schedule_id, seen in due:
        assert seen is not None  # selected with next_run_at IS NOT NULL
        schedule = await _claim(runtime, schedule_id, seen, now)
        if schedule is not None:
            fired.append(await _fire(runtime, schedule, seen))
    return fired


async def _record_finished(
    session: AsyncSession, principal: Principal, schedule: EvalSchedule, history: EvalScheduleRun
) -> None:
    comparison = history.comparison or {}
    await audit.record(
        session,
        principal,
        "RegressionCheckFinished",
        prompt_id=schedule.prompt_id,
        data={
            "scheduleId": schedule.id,
            "scheduleRunId": history.id,
            "status": history.status,
            "evalRunId": history.eval_run_id,
            "baselineEvalRunId": history.baseline_eval_run_id,
            "version": history.version,
            "passRate": history.pass_rate,
            "verdict": comparison.get("verdict"),
            "error": history.error,
        },
    )


async def _broken_results(
    session: AsyncSession, principal: Principal, run_id: str, broken_keys: set[str]
) -> list[str]:
    """Ids of the new run's failed results on the cases that passed in the baseline (for QA review)."""
    if not broken_keys:
        return []
    found: list[str] = []
    cursor: str | None = None
    while len(found) < MAX_REVIEW_RESULTS:
        rows, cursor = await evals.list_results(
            session, principal, run_id, passed=False, cursor=cursor, limit=200
        )
        found += [r.id for r in rows if r.case_key in broken_keys]
        if cursor is None:
            break
    return found[:MAX_REVIEW_RESULTS]


async def _conclude(session: AsyncSession, history: EvalScheduleRun) -> bool:
    """Settle one running history row whose evaluation finished; False while it still works."""
    schedule = await session.get(EvalSchedule, history.schedule_id)
    if schedule is None:
        return False
    principal = _acting(schedule)
    assert history.eval_run_id is not None
    run = await evals.get_run(session, principal, history.eval_run_id)
    if run.status not in TERMINAL:
        return False
    history.finished_at = utcnow()
    groups = run.summary.get("groups") or []
    if groups:
        history.pass_rate, history.mean_score = groups[0].get("passRate"), groups[0].get("meanScore")
    baseline = schedule.baseline_eval_run_id
    history.baseline_eval_run_id = baseline
    if run.status != "completed":
        history.status = "failed"
        history.error = f"the evaluation {run.status}" + (f": {run.error}" if run.error else "")
    elif baseline is None:
        history.status = "baseline"
        schedule.baseline_eval_run_id = run.id
    else:
        try:
            found = await evals.compare(
                session, principal, run_a=baseline, run_b=run.id, alpha=schedule.alpha, resamples=5_000
            )
        except ProblemError as exc:
            history.status, history.error = "failed", f"no comparison with the last good run: {exc.detail}"
        else:
            flipped = found.pop("flipped")
            broken = {f["caseKey"] for f in flipped if f["direction"] == "broken"}
            found["broken"] = sorted(broken)[:MAX_REVIEW_RESULTS]
            found["fixed"] = sorted(f["caseKey"] for f in flipped if f["direction"] == "fixed")[
                :MAX_REVIEW_RESULTS
            ]
            regressed = bool(found["significant"] and found["winner"] == "A")
            if regressed:
                found["brokenResultIds"] = await _broken_results(session, principal, run.id, broken)
            history.comparison = found
            history.status = "regressed" if regressed else "pass"
            if not regressed:
                schedule.baseline_eval_run_id = run.id
    await _record_finished(session, principal, schedule, history)
    return True


async def conclude_finished(runtime: Runtime) -> list[str]:
    """Settle the running history rows whose evaluations finished; their ids."""
    async with runtime.db.transaction() as session:
        ids = list(
            (
                await session.execute(
                    select(EvalScheduleRun.id)
                    .where(EvalScheduleRun.status == "running")
                    .order_by(EvalScheduleRun.id)
                    .limit(200)
                )
            ).scalars()
        )
    done: list[str] = []
    for history_id in ids:
        try:
            async with runtime.db.transaction(write=True) as session:
                history = await session.get(EvalScheduleRun, history_id, with_for_update=True)
                if history is not None and history.status == "running" and await _conclude(session, history):
                    done.append(history_id)
        except Exception:
            log.exception("eval_schedule_conclude_failed", schedule_run_id=history_id)
    return done


async def run_schedules(runtime: Runtime, now: datetime | None = None) -> None:
    """One round of the periodic task: settle finished runs, then fire what is due at ``now``."""
    await conclude_finished(runtime)
    await fire_due(runtime, now or utcnow())


async def _periodic(runtime: Runtime) -> None:
    await run_schedules(runtime)


register_periodic(TASK, every_seconds=15, run=_periodic)
