"""Live experiments: split a prompt label's traffic between versions (or models), measure, decide.

Lifecycle: ``draft`` -> ``running`` <-> ``paused`` -> ``stopped`` | ``shipped``. One experiment per (prompt,
label) may be active (running or paused) at a time. While one runs, resolving the label with a ``unit``
serves that unit's arm (:mod:`promptops.experiments.assign`) and queues an exposure; the application posts
outcome events for the unit; results compare every arm with the control (:mod:`promptops.experiments.stats`).
Guardrail metrics (``error``, ``latency_ms`` by default) pause an arm that is significantly worse. Shipping
moves the label to the chosen arm's version through the registry's own label path (permission, lint gate,
``PromptDeployed``). Every change appends an audit event in the caller's transaction.

A ``bandit`` experiment (:mod:`promptops.experiments.bandit`) keeps its arms' weights as the current
allocation: :func:`reallocate` recomputes them by Thompson sampling on the bandit metric (every
``bandit.intervalSeconds`` from the periodic task ``experiments.tick``, or on demand) and stores each allocation
(``experiment_allocations``). A unit keeps the arm it was first served (its exposure); new units follow the
current allocation.

Metrics come from three sources: outcome events the application posts, the runs made with an arm's version
(``run.error``, ``run.latency_ms``, ``run.cost_usd``: runs tagged with the experiment and arm by the gateway or
an SDK trace with a unit, plus untagged runs of a version only one arm serves, made while the experiment ran),
and the feedback on those runs (``feedback.score``, ``feedback.thumbs``). Guardrails use all three.
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Float, case, cast, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from promptops.auth.principal import Principal, system_principal
from promptops.cache import TTLCache
from promptops.db import Database, utcnow
from promptops.errors import Conflict, NotFound, ValidationProblem
from promptops.experiments import bandit as thompson
from promptops.experiments import stats
from promptops.experiments.assign import (
    ActiveArm,
    ActiveExperiment,
    Assignment,
    assign,
    assign_known,
    cumulative,
    live_bounds,
    new_arm,
    unit_hash,
)
from promptops.experiments.models import (
    Experiment,
    ExperimentAllocation,
    ExperimentArm,
    ExperimentExposure,
    ExperimentOutcome,
    ExperimentSnapshot,
)
from promptops.experiments.schemas import (
    DEFAULT_GUARDRAILS,
    EventIn,
    ExperimentIn,
    MetricIn,
    metric_source,
)
from promptops.feedback import service as feedback
from promptops.governance import audit
from promptops.governance.rbac import Permission
from promptops.ids import new_id
from promptops.pagination import fetch_page, id_cursor
from promptops.registry import service as registry
from promptops.runs import service as runs
from promptops.tenancy.service import get_scoped, scoped

if TYPE_CHECKING:
    from promptops.registry.approvals.gate import PendingApproval
    from promptops.registry.models import PromptVersion

ACTIVE = ("running", "paused")
TEST_NAME = "mSPRT (normal mixture), always valid"


@dataclass(frozen=True)
class ExperimentView:
    """An experiment with its arms in order (the control first)."""

    experiment: Experiment
    arms: list[ExperimentArm]


# --- the resolve path --------------------------------------------------------------------------------------------

# Running experiments per project: {(prompt_id, label): ActiveExperiment}. Every experiment change in this
# process drops its project's entry; other replicas converge within the TTL (the resolve cache's, set at start).
running_cache: TTLCache[dict[tuple[str, str], ActiveExperiment]] = TTLCache(ttl=0)


def invalidate(project_id: str) -> None:
    running_cache.invalidate(lambda key: key == project_id)


def _load_running(session: Session, project_id: str) -> dict[tuple[str, str], ActiveExperiment]:
    experiments = list(
        session.execute(
            select(Experiment).where(Experiment.project_id == project_id, Experiment.status == "running")
        ).scalars()
    )
    if not experiments:
        return {}
    arms: dict[str, list[ExperimentArm]] = defaultdict(list)
    for arm in session.execute(
        select(ExperimentArm)
        .where(ExperimentArm.experiment_id.in_([e.id for e in experiments]))
        .order_by(ExperimentArm.experiment_id, ExperimentArm.position)
    ).scalars():
        arms[arm.experiment_id].append(arm)
    found: dict[tuple[str, str], ActiveExperiment] = {}
    for e in experiments:
        its = arms[e.id]
        active = tuple(ActiveArm(a.name, a.version_id, a.version, a.model, a.paused) for a in its)
        weights = [a.weight for a in its]
        found[(e.prompt_id, e.label)] = ActiveExperiment(
            id=e.id,
            prompt_id=e.prompt_id,
            label=e.label,
            salt=e.salt,
            arms=active,
            bounds=live_bounds(active, weights) if e.mode == "bandit" else cumulative(weights),
            mode=e.mode,
        )
    return found


async def running_experiment(
    db: Database, project_id: str, prompt_id: str, label: str
) -> ActiveExperiment | None:
    """The running experiment on (prompt, label), through the per-project cache (one read on a miss)."""

    async def load() -> dict[tuple[str, str], ActiveExperiment]:
        return await db.read(lambda session: _load_running(session, project_id))

    return (await running_cache.get_or_load(project_id, load)).get((prompt_id, label))


# A bandit's units seen by this process: (experiment id, unit hash) -> arm (their exposures are the record).
BANDIT_UNITS_MAX = 200_000
_bandit_units: OrderedDict[tuple[str, str], str] = OrderedDict()


def _remember(key: tuple[str, str], arm: str) -> None:
    _bandit_units[key] = arm
    if len(_bandit_units) > BANDIT_UNITS_MAX:
        _bandit_units.popitem(last=False)


async def assignment_for(
    db: Database,
    project_id: str,
    prompt_id: str,
    label: str,
    unit: str,
    pending: Callable[[str, str], str | None] | None = None,
) -> Assignment | None:
    """The arm ``unit`` gets when resolving (prompt, label), or None when no experiment runs there.

    A/B: the unit's hash bucket (no I/O). Bandit: the arm the unit was first served (this process's memory,
    an exposure still queued here (``pending``), else its exposure row: one primary-key read for a unit this
    process has not seen), or for a new unit the bucket of the current allocation."""
    experiment = await running_experiment(db, project_id, prompt_id, label)
    if experiment is None:
        return None
    if experiment.mode != "bandit":
        return assign(experiment, unit)
    hashed = unit_hash(experiment.salt, unit)
    key = (experiment.id, hashed)
    arm_name = _bandit_units.get(key) or (pending(*key) if pending is not None else None)
    if arm_name is None:
        arm_name = await db.read(
            lambda session: session.execute(
                select(ExperimentExposure.arm).where(
                    ExperimentExposure.experiment_id == experiment.id, ExperimentExposure.unit_hash == hashed
                )
            ).scalar_one_or_none()
        )
    if arm_name is None:
        arm_name = new_arm(experiment, hashed).name
    _remember(key, arm_name)
    return assign_known(experiment, hashed, arm_name)


# --- create, read ------------------------------------------------------------------------------------------------


async def _arms(session: AsyncSession, experiment_id: str) -> list[ExperimentArm]:
    rows = await session.execute(
        select(ExperimentArm)
        .where(ExperimentArm.experiment_id == experiment_id)
        .order_by(ExperimentArm.position)
    )
    return list(rows.scalars())


async def get_experiment(session: AsyncSession, principal: Principal, experiment_id: str) -> ExperimentView:
    experiment = await get_scoped(
        session,
        principal,
        Experiment,
        experiment_id,
        missing=f"Experiment {experiment_id} not found",
        code="experiment_not_found",
    )
    return ExperimentView(experiment, await _arms(session, experiment.id))


async def _lock(session: AsyncSession, principal: Principal, experiment_id: str) -> ExperimentView:
    stmt = (
        scoped(select(Experiment), Experiment, principal)
        .where(Experiment.id == experiment_id)
        .with_for_update()
    )
    experiment = (await session.execute(stmt)).scalar_one_or_none()
    if experiment is None:
        raise NotFound(f"Experiment {experiment_id} not found", code="experiment_not_found")
    return ExperimentView(experiment, await _arms(session, experiment.id))


def _metrics(declared: Sequence[MetricIn]) -> list[dict[str, Any]]:
    names = {m.name for m in declared}
    every = list(declared) + [g for g in DEFAULT_GUARDRAILS if g.name not in names]
    return [m.model_dump() for m in every]


async def create(session: AsyncSession, principal: Principal, body: ExperimentIn) -> ExperimentView:
    """A draft experiment on ``body.prompt``'s ``body.label`` with 2-10 arms (versions of that prompt)."""
    prompt = await registry.get_prompt(session, principal, body.prompt)
    experiment = Experiment(
        id=new_id("experiment"),
        project_id=principal.project_id,
        prompt_id=prompt.id,
        prompt_name=prompt.name,
        label=body.label,
        name=body.name,
        description=body.description,
        status="draft",
        salt=secrets.token_hex(16),
        metrics=_metrics(body.metrics),
        alpha=body.alpha,
        created_by=principal.id,
        mode=body.mode,
        bandit=body.bandit.model_dump(by_alias=True) if body.bandit is not None else None,
    )
    session.add(experiment)
    arms: list[ExperimentArm] = []
    used = {a.name for a in body.arms if a.name}
    spare = iter(n for n in "bcdefghijk" if n not in used)
    for position, arm in enumerate(body.arms):
        version = await _arm_version(session, principal, prompt.id, prompt.name, arm.version, arm.version_id)
        name = arm.name or ("control" if position == 0 and "control" not in used else next(spare))
        used.add(name)
        arms.append(
            ExperimentArm(
                experiment_id=experiment.id,
                position=position,
                name=name,
                version_id=version.id,
                version=version.version,
                model=arm.model,
                weight=arm.weight,
                paused=False,
                paused_reason="",
            )
        )
    session.add_all(arms)
    await session.flush()
    await audit.record(
        session,
        principal,
        "ExperimentCreated",
        prompt_id=prompt.id,
        data={
            "experimentId": experiment.id,
            "name": experiment.name,
            "promptName": prompt.name,
            "label": experiment.label,
            "arms": [
                {"name": a.name, "version": a.version, "model": a.model, "weight": a.weight} for a in arms
            ],
            "metrics": [m["name"] for m in experiment.metrics],
            "alpha": experiment.alpha,
            "mode": experiment.mode,
            **({"bandit": experiment.bandit} if experiment.bandit else {}),
        },
    )
    return ExperimentView(experiment, arms)


async def _arm_version(
    session: AsyncSession,
    principal: Principal,
    prompt_id: str,
    prompt_name: str,
    number: int | None,
    version_id: str | None,
) -> PromptVersion:
    if version_id is not None:
        found = (await registry.versions_by_id(session, principal, [version_id])).get(version_id)
        if found is None:
            raise NotFound(f"Version {version_id} not found", code="version_not_found")
        if found.prompt_id != prompt_id:
            raise ValidationProblem(
                f"Version {version_id} belongs to another prompt than {prompt_name!r}",
                code="version_mismatch",
            )
        return found
    assert number is not None
    prompt = await registry.get_prompt(session, principal, prompt_id)
    version, _ = await registry.select_version(session, prompt, version=number)
    return version


async def list_experiments(
    session: AsyncSession,
    principal: Principal,
    *,
    prompt: str | None = None,
    status: str | None = None,
    label: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> tuple[list[ExperimentView], str | None]:
    """Experiments of the project, newest first."""
    stmt = scoped(select(Experiment), Experiment, principal)
    if prompt:
        stmt = stmt.where(Experiment.prompt_id == await registry.prompt_id_of(session, principal, prompt))
    if status:
        stmt = stmt.where(Experiment.status == status)
    if label:
        stmt = stmt.where(Experiment.label == label)
    if cursor:
        stmt = stmt.where(Experiment.id < id_cursor(cursor, "experiment"))
    rows, next_cursor = await fetch_page(session, stmt.order_by(Experiment.id.desc()), limit, lambda e: e.id)
    arms: dict[str, list[ExperimentArm]] = defaultdict(list)
    if rows:
        found = await session.execute(
            select(ExperimentArm)
            .where(ExperimentArm.experiment_id.in_([e.id for e in rows]))
            .order_by(ExperimentArm.position)
        )
        for arm in found.scalars():
            arms[arm.experiment_id].append(arm)
    return [ExperimentView(e, arms[e.id]) for e in rows], next_cursor


# --- lifecycle ---------------------------------------------------------------------------------------------------


def _conflict(view: ExperimentView, action: str, allowed: Sequence[str]) -> Conflict:
    e = view.experiment
    return Conflict(
        f"Cannot {action} experiment {e.id}: it is {e.status}; {action} needs a {' or '.join(allowed)} experiment",
        code="invalid_experiment_state",
        state=e.status,
    )


async def _audit(
    session: AsyncSession, principal: Principal, event: str, view: ExperimentView, **extra: Any
) -> None:
    e = view.experiment
    data: dict[str, Any] = {
        "experimentId": e.id,
        "name": e.name,
        "promptName": e.prompt_name,
        "label": e.label,
    }
    data.update({k: v for k, v in extra.items() if v is not None})
    await audit.record(session, principal, event, prompt_id=e.prompt_id, data=data)


async def _check_can_serve(session: AsyncSession, principal: Principal, view: ExperimentView) -> None:
    """Serving arms on a label is a deployment to that label's traffic: the same rights and lint gate."""
    e = view.experiment
    principal.require(Permission.LABEL_WRITE)
    if e.label in await registry.deployable_labels(session, e.project_id):
        principal.require(Permission.LABEL_DEPLOY)
    config = await registry.lint_config(session, e.project_id)
    if e.label not in config.block_on_labels:
        return
    versions = await registry.versions_by_id(session, principal, [a.version_id for a in view.arms])
    for arm in view.arms:
        version = versions.get(arm.version_id)
        if version is None:
            raise Conflict(
                f"Arm {arm.name!r}: version {arm.version_id} no longer exists", code="version_not_found"
            )
        blocking = config.blocking(await registry.lint_version(session, principal, version, config))
        if blocking:
            summary = "; ".join(f"{f.rule} {f.name}: {f.message}" for f in blocking[:3])
            raise Conflict(
                f"Label {e.label!r} is protected by lint and arm {arm.name!r} (v{arm.version}) fails it: {summary}",
                code="lint_blocked",
            )


async def start(session: AsyncSession, principal: Principal, experiment_id: str) -> ExperimentView:
    """draft -> running: from now on resolving the label with a ``unit`` serves the unit's arm."""
    view = await _lock(session, principal, experiment_id)
    e = view.experiment
    if e.status != "draft":
        raise _conflict(view, "start", ["draft"])
    await _check_can_serve(session, principal, view)
    key = f"{e.prompt_id}:{e.label}"
    other = (
        await session.execute(
            select(Experiment.id).where(Experiment.project_id == e.project_id, Experiment.active_key == key)
        )
    ).scalar_one_or_none()
    if other is not None:
        raise Conflict(
            f"Experiment {other} is already active on {e.prompt_name}@{e.label}; stop it first",
            code="experiment_already_active",
            experimentId=other,
        )
    now = utcnow()
    e.status, e.active_key, e.started_at, e.updated_at = "running", key, now, now
    await session.flush()  # the unique active_key index settles a concurrent start
    if e.mode == "bandit":
        total = sum(a.weight for a in view.arms) or 1.0
        for arm in view.arms:
            arm.weight = arm.weight / total
        session.add(
            ExperimentAllocation(
                experiment_id=e.id,
                seq=0,
                computed_at=now,
                reason="start",
                exposures=0,
                regret=None,
                arms=[
                    {
                        "name": a.name,
                        "share": a.weight,
                        "probabilityBest": None,
                        "mean": None,
                        "n": 0,
                        "exposures": 0,
                    }
                    for a in view.arms
                ],
            )
        )
        e.next_allocation_at = now + timedelta(seconds=_bandit_settings(e)["intervalSeconds"])
    await _audit(
        session,
        principal,
        "ExperimentStarted",
        view,
        arms=[
            {"name": a.name, "version": a.version, "model": a.model, "weight": a.weight} for a in view.arms
        ],
    )
    invalidate(e.project_id)
    return view


async def pause(
    session: AsyncSession, principal: Principal, experiment_id: str, reason: str = ""
) -> ExperimentView:
    """running -> paused: the label serves its own version again (the experiment stays active)."""
    view = await _lock(session, principal, experiment_id)
    if view.experiment.status != "running":
        raise _conflict(view, "pause", ["running"])
    view.experiment.status, view.experiment.updated_at = "paused", utcnow()
    await _audit(session, principal, "ExperimentPaused", view, reason=reason or None)
    invalidate(view.experiment.project_id)
    return view


async def resume(
    session: AsyncSession, principal: Principal, experiment_id: str, reason: str = ""
) -> ExperimentView:
    """paused -> running, with the same assignment as before."""
    view = await _lock(session, principal, experiment_id)
    if view.experiment.status != "paused":
        raise _conflict(view, "resume", ["paused"])
    await _check_can_serve(session, principal, view)
    view.experiment.status, view.experiment.updated_at = "running", utcnow()
    await _audit(session, principal, "ExperimentResumed", view, reason=reason or None)
    invalidate(view.experiment.project_id)
    return view


def _end(view: ExperimentView, status: str) -> None:
    now = utcnow()
    e = view.experiment
    e.status, e.active_key, e.ended_at, e.updated_at = status, None, now, now


async def stop(
    session: AsyncSession, principal: Principal, experiment_id: str, reason: str = ""
) -> ExperimentView:
    """draft | running | paused -> stopped: the label serves its own version; results stay readable."""
    view = await _lock(session, principal, experiment_id)
    if view.experiment.status not in ("draft", *ACTIVE):
        raise _conflict(view, "stop", ["draft", "running", "paused"])
    _end(view, "stopped")
    await _audit(session, principal, "ExperimentStopped", view, reason=reason or None)
    invalidate(view.experiment.project_id)
    return view


async def ship(
    session: AsyncSession, principal: Principal, experiment_id: str, arm_name: str, reason: str = ""
) -> tuple[ExperimentView, registry.LabelMove | PendingApproval]:
    """Point the label at ``arm_name``'s version through the registry's label path (its permission, lint gate
    and ``PromptDeployed``/``LabelMoved`` event), then mark the experiment shipped (``ExperimentShipped``)."""
    view = await _lock(session, principal, experiment_id)
    e = view.experiment
    if e.status not in (*ACTIVE, "stopped"):
        raise _conflict(view, "ship", ["running", "paused", "stopped"])
    arm = next((a for a in view.arms if a.name == arm_name), None)
    if arm is None:
        raise ValidationProblem(
            f"Experiment {e.id} has no arm {arm_name!r}; its arms: {', '.join(a.name for a in view.arms)}",
            code="unknown_arm",
        )
    if arm.model is not None:
        raise Conflict(
            f"Arm {arm.name!r} serves v{arm.version} on model {arm.model!r}; a label points at a version only. "
            "Save a version with that model and move the label to it.",
            code="arm_not_shippable",
        )
    move = await registry.set_label(
        session,
        principal,
        e.prompt_id,
        e.label,
        version_id=arm.version_id,
        reason=reason or f"experiment {e.id}: ship arm {arm.name}",
    )
    if not isinstance(move, registry.LabelMove):
        # the label is gated by approvals: the move is a request; the experiment ends when it is shipped again
        # after the approval (or stopped)
        await _audit(
            session,
            principal,
            "ExperimentShipRequested",
            view,
            arm=arm.name,
            versionId=arm.version_id,
            version=arm.version,
            approvalRequestId=move.request.id,
            reason=reason or None,
        )
        return view, move
    _end(view, "shipped")
    e.shipped_arm = arm.name
    await _audit(
        session,
        principal,
        "ExperimentShipped",
        view,
        arm=arm.name,
        versionId=arm.version_id,
        version=arm.version,
        previousVersion=move.previous.version if move.previous else None,
        reason=reason or None,
    )
    invalidate(e.project_id)
    return view, move


# --- outcome events ----------------------------------------------------------------------------------------------


async def record_events(
    session: AsyncSession, principal: Principal, experiment_id: str, events: Sequence[EventIn]
) -> ExperimentView:
    """Add outcome events to their units' sums (one upsert per (metric, unit) of the batch)."""
    view = await get_experiment(session, principal, experiment_id)
    e = view.experiment
    if e.status not in ACTIVE:
        raise Conflict(
            f"Experiment {e.id} is {e.status}: outcome events are taken while it runs or is paused",
            code="experiment_not_running",
        )
    kinds = {m["name"]: m["kind"] for m in e.metrics}
    sums: dict[tuple[str, str], list[float]] = {}
    for position, event in enumerate(events):
        kind = kinds.get(event.metric)
        if metric_source(event.metric) != "events":
            raise ValidationProblem(
                f"events[{position}]: {event.metric!r} is measured by PromptOps from the arm's runs and their "
                "feedback; it is not posted as an event",
                code="platform_metric",
            )
        if kind is None:
            raise ValidationProblem(
                f"events[{position}]: unknown metric {event.metric!r}; this experiment measures "
                + ", ".join(sorted(kinds)),
                code="unknown_metric",
            )
        if kind == "conversion" and event.value not in (0.0, 1.0):
            raise ValidationProblem(
                f"events[{position}]: {event.metric!r} is a conversion metric: value must be 0 or 1, got {event.value}",
                code="invalid_event_value",
            )
        key = (event.metric, unit_hash(e.salt, event.unit))
        found = sums.get(key)
        if found is None:
            sums[key] = [1, event.value, event.value]
        else:
            found[0] += 1
            found[1] += event.value
            found[2] = max(found[2], event.value)
    now = utcnow()
    rows = [
        {
            "experiment_id": e.id,
            "metric": metric,
            "unit_hash": hashed,
            "events": int(count),
            "total": total,
            "maximum": maximum,
            "updated_at": now,
        }
        for (metric, hashed), (count, total, maximum) in sorted(sums.items())  # one lock order on PostgreSQL
    ]
    dialect = session.get_bind().dialect.name
    insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(ExperimentOutcome)
    table = ExperimentOutcome.__table__.c
    greater = func.greatest if dialect == "postgresql" else func.max
    await session.execute(
        insert.on_conflict_do_update(
            index_elements=["experiment_id", "metric", "unit_hash"],
            set_={
                "events": table.events + insert.excluded.events,
                "total": table.total + insert.excluded.total,
                "maximum": greater(table.maximum, insert.excluded.maximum),
                "updated_at": insert.excluded.updated_at,
            },
        ),
        rows,
    )
    return view


# --- results -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ArmMetric:
    arm: str
    n: int
    mean: float | None
    ci_low: float | None
    ci_high: float | None


@dataclass(frozen=True)
class ComparisonResult:
    arm: str
    control: str
    difference: float | None
    relative: float | None
    ci_low: float | None
    ci_high: float | None
    sequence_low: float | None
    sequence_high: float | None
    p_value: float | None
    significant: bool
    better: bool | None


@dataclass(frozen=True)
class MetricResult:
    name: str
    kind: str
    direction: str
    guardrail: bool
    source: str
    arms: list[ArmMetric]
    comparisons: list[ComparisonResult]


@dataclass(frozen=True)
class ArmExposure:
    name: str
    version: int
    model: str | None
    weight: float
    paused: bool
    exposures: int


@dataclass(frozen=True)
class SampleRatioResult:
    since: datetime | None
    chi_square: float | None
    p_value: float | None
    mismatch: bool
    threshold: float
    arms: list[str]


@dataclass(frozen=True)
class GuardrailViolation:
    arm: str
    metric: str
    difference: float | None
    p_value: float | None


@dataclass(frozen=True)
class BanditArm:
    name: str
    share: float
    probability_best: float
    mean: float | None
    n: int
    exposures: int


@dataclass(frozen=True)
class AllocationView:
    seq: int
    computed_at: datetime
    reason: str
    exposures: int
    regret: float | None
    arms: list[BanditArm]


@dataclass(frozen=True)
class BanditResults:
    metric: str
    kind: str
    direction: str
    best_arm: str | None
    regret: float | None
    regret_per_unit: float | None
    allocation: list[AllocationView]


@dataclass(frozen=True)
class SnapshotArm:
    arm: str
    n: int
    mean: float | None
    ci_low: float | None
    ci_high: float | None


@dataclass(frozen=True)
class Snapshot:
    taken_at: datetime
    metric: str
    exposures: int
    arms: list[SnapshotArm]


@dataclass(frozen=True)
class Results:
    experiment_id: str
    status: str
    mode: str
    alpha: float
    test: str
    computed_at: datetime
    exposures: int
    arms: list[ArmExposure]
    metrics: list[MetricResult]
    sample_ratio: SampleRatioResult
    guardrail_violations: list[GuardrailViolation] = field(default_factory=list)
    bandit: BanditResults | None = None
    timeline: list[Snapshot] = field(default_factory=list)


async def _summaries(
    session: AsyncSession, experiment: Experiment
) -> tuple[dict[str, int], dict[str, dict[str, stats.Summary]]]:
    """Exposed units per arm, and per metric per arm the summary of the per-unit values."""
    counted = await session.execute(
        select(ExperimentExposure.arm, func.count())
        .where(ExperimentExposure.experiment_id == experiment.id)
        .group_by(ExperimentExposure.arm)
    )
    exposures = {arm: int(n) for arm, n in counted.all()}
    o, x = ExperimentOutcome, ExperimentExposure
    unit_mean = cast(o.total, Float) / o.events
    converted = case((o.maximum > 0, 1), else_=0)
    rows = await session.execute(
        select(
            o.metric,
            x.arm,
            func.count(),
            func.sum(converted),
            func.sum(unit_mean),
            func.sum(unit_mean * unit_mean),
        )
        .join(x, (x.experiment_id == o.experiment_id) & (x.unit_hash == o.unit_hash))
        .where(o.experiment_id == experiment.id)
        .group_by(o.metric, x.arm)
    )
    kinds = {m["name"]: m["kind"] for m in experiment.metrics}
    summaries: dict[str, dict[str, stats.Summary]] = defaultdict(dict)
    for metric, arm, units, conversions, total, total_sq in rows.all():
        if kinds.get(metric) == "conversion":
            k = float(conversions or 0)
            summaries[metric][arm] = stats.Summary(exposures.get(arm, 0), k, k)
        else:
            summaries[metric][arm] = stats.Summary(int(units), float(total or 0.0), float(total_sq or 0.0))
    return exposures, summaries


RUN_METRICS = ("run.error", "run.latency_ms", "run.cost_usd")
FEEDBACK_METRICS = ("feedback.score", "feedback.thumbs")


async def _platform_summaries(
    session: AsyncSession, principal: Principal, view: ExperimentView
) -> dict[str, dict[str, stats.Summary]]:
    """Per platform metric per arm: the summary of its runs (one value per run) or of the feedback on them
    (one value per feedback record)."""
    e = view.experiment
    wanted = {m["name"] for m in e.metrics if metric_source(m["name"]) != "events"}
    found: dict[str, dict[str, stats.Summary]] = defaultdict(dict)
    if not wanted or e.started_at is None:
        return found
    served: dict[str, int] = defaultdict(int)
    for a in view.arms:
        served[a.version_id] += 1
    version_arms = {a.version_id: a.name for a in view.arms if served[a.version_id] == 1}
    names = {a.name for a in view.arms}
    if wanted.intersection(RUN_METRICS):
        per_arm = await runs.experiment_run_stats(
            session, principal, e.id, version_arms, e.started_at, e.ended_at
        )
        for arm, r in per_arm.items():
            if arm in names:
                found["run.error"][arm] = stats.Summary(r.runs, float(r.errors), float(r.errors))
                found["run.latency_ms"][arm] = stats.Summary(r.runs, r.latency_sum, r.latency_sq)
                found["run.cost_usd"][arm] = stats.Summary(r.runs, r.cost_sum, r.cost_sq)
    if wanted.intersection(FEEDBACK_METRICS):
        attributed = runs.experiment_runs(principal, e.id, version_arms, e.started_at, e.ended_at)
        for arm, g in (await feedback.scores_by_run_group(session, principal, attributed)).items():
            if arm in names:
                found["feedback.score"][arm] = stats.Summary(g.scores, g.score_sum, g.score_sq)
                found["feedback.thumbs"][arm] = stats.Summary(g.thumbs, g.thumbs_sum, g.thumbs_sq)
    return found


def bandit_settings(e: Experiment) -> dict[str, Any] | None:
    """A bandit's settings {metric, intervalSeconds, floor}; None for an A/B experiment."""
    return _bandit_settings(e) if e.mode == "bandit" else None


def _bandit_settings(e: Experiment) -> dict[str, Any]:
    settings = {"metric": e.metrics[0]["name"], "intervalSeconds": 3600, "floor": 0.0}
    settings.update({k: v for k, v in (e.bandit or {}).items() if v is not None})
    return settings


def _arm_summaries(
    view: ExperimentView,
    metric: dict[str, Any],
    exposures: dict[str, int],
    summaries: dict[str, dict[str, stats.Summary]],
) -> dict[str, stats.Summary]:
    """Every arm's summary of one metric (an arm without data: no units; a conversion metric of events
    counts its exposed units as not converted)."""
    per_arm = summaries.get(metric["name"], {})
    by_exposure = metric["kind"] == "conversion" and metric_source(metric["name"]) == "events"
    return {
        a.name: per_arm.get(a.name)
        or (stats.Summary(exposures.get(a.name, 0), 0.0, 0.0) if by_exposure else stats.Summary(0, 0.0, 0.0))
        for a in view.arms
    }


def _is_better(direction: str, difference: float | None) -> bool | None:
    if difference is None:
        return None
    return difference > 0 if direction == "increase" else difference < 0


async def _all_summaries(
    session: AsyncSession, principal: Principal, view: ExperimentView
) -> tuple[dict[str, int], dict[str, dict[str, stats.Summary]]]:
    exposures, summaries = await _summaries(session, view.experiment)
    merged = dict(summaries)
    merged.update(await _platform_summaries(session, principal, view))
    return exposures, merged


async def compute_results(session: AsyncSession, principal: Principal, view: ExperimentView) -> Results:
    e = view.experiment
    exposures, summaries = await _all_summaries(session, principal, view)
    control = view.arms[0]
    metrics: list[MetricResult] = []
    violations: list[GuardrailViolation] = []
    for metric in e.metrics:
        name, kind, direction = metric["name"], metric["kind"], metric["direction"]
        arm_summaries = _arm_summaries(view, metric, exposures, summaries)
        arms_out = []
        for a in view.arms:
            s = arm_summaries[a.name]
            interval = s.interval(bounded=kind == "conversion")
            arms_out.append(ArmMetric(a.name, s.n, s.mean, *(interval or (None, None))))
        comparisons = []
        for a in view.arms[1:]:
            c = stats.compare(arm_summaries[control.name], arm_summaries[a.name], alpha=e.alpha)
            better = _is_better(direction, c.difference) if c.significant else None
            comparisons.append(
                ComparisonResult(
                    arm=a.name,
                    control=control.name,
                    difference=c.difference,
                    relative=c.relative,
                    ci_low=c.interval[0] if c.interval else None,
                    ci_high=c.interval[1] if c.interval else None,
                    sequence_low=c.sequence[0] if c.sequence else None,
                    sequence_high=c.sequence[1] if c.sequence else None,
                    p_value=c.p_value,
                    significant=c.significant,
                    better=better,
                )
            )
            if metric.get("guardrail") and c.significant and better is False:
                violations.append(GuardrailViolation(a.name, name, c.difference, c.p_value))
        metrics.append(
            MetricResult(
                name,
                kind,
                direction,
                bool(metric.get("guardrail")),
                metric_source(name),
                arms_out,
                comparisons,
            )
        )
    live = [a for a in view.arms if not a.paused]
    since: datetime | None = None
    counted = exposures
    bandit_results: BanditResults | None = None
    if e.mode == "bandit":
        history = await _allocations(session, e.id)
        since = history[-1].computed_at if history else e.started_at
        if since is not None:  # units first seen under the current allocation should follow its shares
            counted = await _exposures_since(session, e.id, since)
        live = [a for a in live if a.weight > 0]
        bandit_results = _bandit_results(view, exposures, summaries, history)
    srm = stats.sample_ratio([counted.get(a.name, 0) for a in live], [a.weight for a in live])
    return Results(
        experiment_id=e.id,
        status=e.status,
        mode=e.mode,
        alpha=e.alpha,
        test=TEST_NAME,
        computed_at=utcnow(),
        exposures=sum(exposures.values()),
        arms=[
            ArmExposure(a.name, a.version, a.model, a.weight, a.paused, exposures.get(a.name, 0))
            for a in view.arms
        ],
        metrics=metrics,
        sample_ratio=SampleRatioResult(
            since, srm.chi_square, srm.p_value, srm.mismatch, stats.SRM_P, [a.name for a in live]
        ),
        guardrail_violations=violations,
        bandit=bandit_results,
        timeline=await _timeline(session, e.id),
    )


# --- the primary metric over time --------------------------------------------------------------------------------

SNAPSHOT_EVERY = timedelta(minutes=15)
MAX_SNAPSHOTS = 500


async def _timeline(session: AsyncSession, experiment_id: str) -> list[Snapshot]:
    rows = await session.execute(
        select(ExperimentSnapshot)
        .where(ExperimentSnapshot.experiment_id == experiment_id)
        .order_by(ExperimentSnapshot.taken_at.desc())
        .limit(MAX_SNAPSHOTS)
    )
    return [
        Snapshot(
            taken_at=row.taken_at,
            metric=row.metric,
            exposures=row.exposures,
            arms=[
                SnapshotArm(a["arm"], int(a["n"]), a.get("mean"), a.get("ciLow"), a.get("ciHigh"))
                for a in row.arms
            ],
        )
        for row in reversed(list(rows.scalars()))
    ]


async def snapshot_if_due(session: AsyncSession, principal: Principal, experiment_id: str) -> bool:
    """Keep the primary metric's per-arm means and intervals, at most every :data:`SNAPSHOT_EVERY` (the results'
    ``timeline``). True when one was taken."""
    view = await get_experiment(session, principal, experiment_id)
    e = view.experiment
    now = utcnow()
    last = (
        await session.execute(
            select(func.max(ExperimentSnapshot.taken_at)).where(ExperimentSnapshot.experiment_id == e.id)
        )
    ).scalar_one_or_none()
    if e.status != "running" or (last is not None and now - last < SNAPSHOT_EVERY):
        return False
    found = await compute_results(session, principal, view)
    primary = found.metrics[0]
    session.add(
        ExperimentSnapshot(
            experiment_id=e.id,
            taken_at=now,
            metric=primary.name,
            exposures=found.exposures,
            arms=[
                {"arm": a.arm, "n": a.n, "mean": a.mean, "ciLow": a.ci_low, "ciHigh": a.ci_high}
                for a in primary.arms
            ],
        )
    )
    return True


# --- bandit allocation -------------------------------------------------------------------------------------------

MAX_HISTORY = 1000


async def _allocations(session: AsyncSession, experiment_id: str) -> list[ExperimentAllocation]:
    """The latest :data:`MAX_HISTORY` allocations, oldest first."""
    rows = await session.execute(
        select(ExperimentAllocation)
        .where(ExperimentAllocation.experiment_id == experiment_id)
        .order_by(ExperimentAllocation.seq.desc())
        .limit(MAX_HISTORY)
    )
    return list(reversed(list(rows.scalars())))


async def _exposures_since(session: AsyncSession, experiment_id: str, since: datetime) -> dict[str, int]:
    counted = await session.execute(
        select(ExperimentExposure.arm, func.count())
        .where(ExperimentExposure.experiment_id == experiment_id, ExperimentExposure.first_at >= since)
        .group_by(ExperimentExposure.arm)
    )
    return {arm: int(n) for arm, n in counted.all()}


def _bandit_allocation(
    view: ExperimentView,
    exposures: dict[str, int],
    summaries: dict[str, dict[str, stats.Summary]],
    seed: int,
) -> tuple[dict[str, Any], thompson.Allocation]:
    e = view.experiment
    settings = _bandit_settings(e)
    metric = next((m for m in e.metrics if m["name"] == settings["metric"]), e.metrics[0])
    arm_summaries = _arm_summaries(view, metric, exposures, summaries)
    data = [
        thompson.ArmData(
            a.name,
            arm_summaries[a.name].n,
            arm_summaries[a.name].total,
            arm_summaries[a.name].total_sq,
            not a.paused,
        )
        for a in view.arms
    ]
    found = thompson.allocate(
        data, kind=metric["kind"], direction=metric["direction"], floor=settings["floor"], seed=seed
    )
    return metric, found


def _bandit_results(
    view: ExperimentView,
    exposures: dict[str, int],
    summaries: dict[str, dict[str, stats.Summary]],
    history: list[ExperimentAllocation],
) -> BanditResults:
    e = view.experiment
    metric, now = _bandit_allocation(
        view, exposures, summaries, thompson.seed_of(e.id, sum(exposures.values()))
    )
    units = sum(exposures.values())
    return BanditResults(
        metric=metric["name"],
        kind=metric["kind"],
        direction=metric["direction"],
        best_arm=now.best,
        regret=now.regret,
        regret_per_unit=now.regret / units if now.regret is not None and units else None,
        allocation=[
            AllocationView(
                seq=row.seq,
                computed_at=row.computed_at,
                reason=row.reason,
                exposures=row.exposures,
                regret=row.regret,
                arms=[
                    BanditArm(
                        name=a["name"],
                        share=float(a["share"]),
                        probability_best=float(a.get("probabilityBest") or 0.0),
                        mean=a.get("mean"),
                        n=int(a.get("n") or 0),
                        exposures=int(a.get("exposures") or 0),
                    )
                    for a in row.arms
                ],
            )
            for row in history
        ],
    )


async def reallocate(
    session: AsyncSession, principal: Principal, experiment_id: str, reason: str = "manual"
) -> AllocationView:
    """Recompute a bandit's allocation from the outcomes so far (Thompson sampling), set the arms' weights to
    it and store it (``ExperimentAllocated``). New units follow it; units seen before keep their arm."""
    view = await _lock(session, principal, experiment_id)
    e = view.experiment
    if e.mode != "bandit":
        raise Conflict(
            f"Experiment {e.id} is an A/B experiment with fixed weights; only a bandit is reallocated",
            code="not_a_bandit",
        )
    if e.status not in ACTIVE:
        raise _conflict(view, "reallocate", list(ACTIVE))
    exposures, summaries = await _all_summaries(session, principal, view)
    last = (
        await session.execute(
            select(func.max(ExperimentAllocation.seq)).where(ExperimentAllocation.experiment_id == e.id)
        )
    ).scalar_one_or_none()
    seq = 0 if last is None else int(last) + 1
    _, found = _bandit_allocation(view, exposures, summaries, thompson.seed_of(e.id, seq))
    now = utcnow()
    arms_out: list[dict[str, Any]] = []
    for arm, allocated in zip(view.arms, found.arms, strict=True):
        arm.weight = allocated.share
        arms_out.append(
            {
                "name": arm.name,
                "share": allocated.share,
                "probabilityBest": allocated.probability_best,
                "mean": allocated.mean,
                "n": allocated.n,
                "exposures": exposures.get(arm.name, 0),
            }
        )
    row = ExperimentAllocation(
        experiment_id=e.id,
        seq=seq,
        computed_at=now,
        reason=reason,
        exposures=sum(exposures.values()),
        regret=found.regret,
        arms=arms_out,
    )
    session.add(row)
    e.next_allocation_at = now + timedelta(seconds=int(_bandit_settings(e)["intervalSeconds"]))
    e.updated_at = now
    await session.flush()
    await _audit(
        session,
        principal,
        "ExperimentAllocated",
        view,
        seq=seq,
        reason=reason,
        shares={str(a["name"]): round(float(a["share"]), 6) for a in arms_out},
        regret=found.regret,
    )
    invalidate(e.project_id)
    return _bandit_results(view, exposures, summaries, [row]).allocation[0]


async def results(session: AsyncSession, principal: Principal, experiment_id: str) -> Results:
    """Per-arm means and intervals, differences against the control with the always-valid test, the
    sample-ratio check and the guardrail violations (as of the exposures written so far)."""
    return await compute_results(session, principal, await get_experiment(session, principal, experiment_id))


# --- guardrails --------------------------------------------------------------------------------------------------

_last_check: dict[str, float] = {}


def guardrail_check_due(experiment_id: str, interval: float) -> bool:
    """At most one automatic guardrail check per experiment per ``interval`` seconds in this process."""
    now = time.monotonic()
    last = _last_check.get(experiment_id)
    if last is not None and now - last < interval:
        return False
    _last_check[experiment_id] = now
    return True


async def enforce_guardrails(session: AsyncSession, principal: Principal, experiment_id: str) -> list[str]:
    """Pause every arm that a guardrail metric shows significantly worse than the control
    (``ExperimentArmPaused``, by the system on behalf of ``principal``); when no treatment arm is left, pause
    the experiment too. Returns the names of the arms paused now."""
    view = await _lock(session, principal, experiment_id)
    e = view.experiment
    if e.status != "running":
        return []
    found = await compute_results(session, principal, view)
    system = system_principal(e.project_id, principal.org_id)
    paused: list[str] = []
    for violation in found.guardrail_violations:
        arm = next(a for a in view.arms if a.name == violation.arm)
        if arm.paused:
            continue
        arm.paused = True
        arm.paused_reason = (
            f"guardrail {violation.metric}: worse than the control by {violation.difference:.4g} "
            f"(p={violation.p_value:.3g})"
        )
        paused.append(arm.name)
        await _audit(
            session,
            system,
            "ExperimentArmPaused",
            view,
            arm=arm.name,
            metric=violation.metric,
            difference=violation.difference,
            pValue=violation.p_value,
            automatic=True,
            triggeredBy=principal.id,
        )
    if paused:
        e.updated_at = utcnow()
        if all(a.paused for a in view.arms[1:]):
            e.status = "paused"
            await _audit(
                session,
                system,
                "ExperimentPaused",
                view,
                reason="every treatment arm was paused by a guardrail",
                automatic=True,
            )
        invalidate(e.project_id)
    return paused
