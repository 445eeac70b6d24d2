"""Alert rules, their evaluation, and the alerts they raise.

* **Rules** watch a condition (:mod:`promptops.alerts.conditions`): a monitoring metric over a window against a
  threshold, monitoring drift, a scheduled regression evaluation that regressed, or an experiment arm paused by
  a guardrail. The periodic task ``alerts.evaluate`` (every 60 s, one process of the installation) evaluates
  every enabled rule; ``POST /api/v1/alert-rules/{id}/evaluate`` evaluates one at once.
* **Deduplication**: one open (or acknowledged) alert per rule and subject (unique ``open_key``). A firing that
  finds it open increments ``count`` and moves ``last_seen_at``; nothing is sent again.
* **Auto-resolve**: a subject whose condition is clear (or that no longer exists: a deleted schedule, an
  ended experiment) resolves its alert (``resolution`` auto). An *unknown* finding leaves it as it is.
* **History**: every alert keeps its events (fired, acknowledged, resolved, notified, notify_failed,
  review_queued); every change is also in the audit log (``AlertFired``, ``AlertAcknowledged``,
  ``AlertResolved``, ``AlertReviewQueued``; actor ``system`` for the evaluator).
* **Notifications**: opening and resolving queue one delivery per enabled channel of the rule
  (:mod:`promptops.alerts.channels`), sent right after the round and retried by ``alerts.deliver``.
* **QA review**: :func:`review_queue` puts the affected runs (or evaluation results) of an alert into an
  annotation queue through the feedback feature.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from promptops.alerts import channels as channel_service
from promptops.alerts.conditions import EVALUATORS, Finding, plain
from promptops.alerts.models import Alert, AlertChannel, AlertEvent, AlertRule
from promptops.alerts.schemas import AlertRuleIn, AlertRuleUpdate, RuleCondition
from promptops.auth.principal import Principal, system_principal
from promptops.db import utcnow
from promptops.errors import Conflict, NotFound, ProblemError, ValidationProblem
from promptops.feedback import annotation_queue
from promptops.feedback.schemas import MAX_ENQUEUE, EnqueueIn
from promptops.governance import audit
from promptops.governance.rbac import Permission
from promptops.ids import has_prefix, new_id
from promptops.jobs.periodic import register_periodic
from promptops.logging import log
from promptops.pagination import fetch_page, id_cursor
from promptops.registry import service as registry
from promptops.runs import service as runs_service
from promptops.tenancy.service import get_scoped, project_org_ids, scoped

if TYPE_CHECKING:
    from promptops.runtime import Runtime

EVALUATE_TASK = "alerts.evaluate"
DELIVER_TASK = "alerts.deliver"
OPEN = ("open", "acknowledged")
MAX_REVIEW_RUNS = 200
CONDITION_FIELDS = {
    "threshold": ("metric", "op", "value", "window_minutes", "min_samples"),
    "drift": ("window_minutes", "baseline_minutes"),
    "regression": ("schedule_id",),
    "experiment_guardrail": ("experiment_id",),
}


# --- rules -------------------------------------------------------------------------------------------------------


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)


def _condition(kind: str, given: RuleCondition, current: dict[str, Any] | None = None) -> dict[str, Any]:
    """The stored ``params`` of a rule of ``kind``: the fields that apply, checked as a whole."""
    allowed = CONDITION_FIELDS[kind]
    stray = [
        _camel(name)
        for name in RuleCondition.model_fields
        if name not in allowed and getattr(given, name) is not None
    ]
    if stray:
        raise ValidationProblem(
            f"{', '.join(stray)} do(es) not apply to a {kind} rule; it takes: {', '.join(map(_camel, allowed))}",
            code="invalid_rule_condition",
        )
    params = dict(current or {})
    for name in allowed:
        value = getattr(given, name)
        if value is not None:
            params[_camel(name)] = value
    if kind == "threshold":
        missing = [k for k in ("metric", "op", "value") if params.get(k) is None]
        if missing:
            raise ValidationProblem(
                f"A threshold rule needs {', '.join(missing)} (e.g. metric error_rate, op gt, value 0.05)",
                code="invalid_rule_condition",
            )
        params.setdefault("windowMinutes", 60)
        params.setdefault("minSamples", 1)
    elif kind == "drift":
        params.setdefault("windowMinutes", 60)
        params.setdefault("baselineMinutes", 24 * 60)
    return params


async def _channel_ids(session: AsyncSession, principal: Principal, refs: Sequence[str]) -> list[str]:
    ids: list[str] = []
    for ref in refs:
        channel = await channel_service.get_channel(session, principal, ref)
        if channel.id not in ids:
            ids.append(channel.id)
    return ids


def _rule_view(rule: AlertRule) -> dict[str, Any]:
    return {
        "ruleId": rule.id,
        "name": rule.name,
        "kind": rule.kind,
        "severity": rule.severity,
        "enabled": rule.enabled,
        "prompt": rule.prompt_name,
        "label": rule.label,
        "condition": rule.params,
        "channelIds": rule.channel_ids,
    }


async def _unique_rule_name(session: AsyncSession, principal: Principal, name: str) -> None:
    taken = (
        await session.execute(
            scoped(select(AlertRule.id), AlertRule, principal).where(AlertRule.name == name)
        )
    ).first()
    if taken is not None:
        raise Conflict(f"An alert rule named {name!r} already exists", code="rule_exists")


async def create_rule(session: AsyncSession, principal: Principal, body: AlertRuleIn) -> AlertRule:
    """A rule of the project (``AlertRuleCreated``). Threshold and drift rules watch one ``prompt@label``
    (label default ``production``); regression and guardrail rules may narrow to a prompt, label or object."""
    params = _condition(body.kind, body)
    label = body.label
    prompt_name: str | None = None
    if body.kind in ("threshold", "drift"):
        if not body.prompt:
            raise ValidationProblem(f"A {body.kind} rule needs 'prompt'", code="invalid_rule_condition")
        label = label or "production"
    if body.prompt:
        prompt_name = (await registry.get_prompt(session, principal, body.prompt)).name
    await _unique_rule_name(session, principal, body.name)
    now = utcnow()
    rule = AlertRule(
        id=new_id("alert_rule"),
        project_id=principal.project_id,
        name=body.name,
        description=body.description,
        kind=body.kind,
        severity=body.severity,
        enabled=body.enabled,
        prompt_name=prompt_name,
        label=label,
        params=params,
        channel_ids=await _channel_ids(session, principal, body.channels),
        created_by=principal.id,
        created_at=now,
        updated_at=now,
    )
    session.add(rule)
    await session.flush()
    await audit.record(session, principal, "AlertRuleCreated", data=_rule_view(rule))
    return rule


async def get_rule(
    session: AsyncSession, principal: Principal, ref: str, *, for_update: bool = False
) -> AlertRule:
    """A rule by id (``alr_...``) or name."""
    return await get_scoped(
        session,
        principal,
        AlertRule,
        ref,
        missing=f"Alert rule {ref!r} not found",
        code="rule_not_found",
        column=AlertRule.id if has_prefix(ref, "alert_rule") else AlertRule.name,
        for_update=for_update,
    )


async def list_rules(
    session: AsyncSession,
    principal: Principal,
    *,
    kind: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> tuple[list[AlertRule], str | None]:
    stmt = scoped(select(AlertRule), AlertRule, principal)
    if kind:
        stmt = stmt.where(AlertRule.kind == kind)
    if cursor:
        stmt = stmt.where(AlertRule.id > id_cursor(cursor, "alert_rule"))
    return await fetch_page(session, stmt.order_by(AlertRule.id), limit, lambda r: r.id)


async def open_counts(session: AsyncSession, rules: Sequence[AlertRule]) -> dict[str, int]:
    if not rules:
        return {}
    rows = await session.execute(
        select(Alert.rule_id, func.count())
        .where(Alert.rule_id.in_([r.id for r in rules]), Alert.status.in_(OPEN))
        .group_by(Alert.rule_id)
    )
    return {rule_id: int(n) for rule_id, n in rows.all()}


async def rule_channels(session: AsyncSession, rules: Sequence[AlertRule]) -> dict[str, AlertChannel]:
    ids = sorted({c for r in rules for c in r.channel_ids})
    return await channel_service.channels_by_id(session, rules[0].project_id, ids) if rules else {}


async def update_rule(
    session: AsyncSession, principal: Principal, ref: str, body: AlertRuleUpdate
) -> AlertRule:
    rule = await get_rule(session, principal, ref, for_update=True)
    before = _rule_view(rule)
    if body.name is not None and body.name != rule.name:
        await _unique_rule_name(session, principal, body.name)
        rule.name = body.name
    for attr in ("description", "severity", "enabled"):
        value = getattr(body, attr)
        if value is not None:
            setattr(rule, attr, value)
    rule.params = _condition(rule.kind, body, rule.params)
    if body.channels is not None:
        rule.channel_ids = await _channel_ids(session, principal, body.channels)
    after = _rule_view(rule)
    changed = [k for k in after if after[k] != before[k]]
    if changed:
        rule.updated_at = utcnow()
        await session.flush()
        await audit.record(session, principal, "AlertRuleUpdated", data={**after, "changed": changed})
    return rule


async def delete_rule(session: AsyncSession, principal: Principal, ref: str) -> None:
    """Remove a rule with its alerts and their history (the audit log keeps what happened)."""
    rule = await get_rule(session, principal, ref, for_update=True)
    view = _rule_view(rule)
    await session.delete(rule)
    await audit.record(session, principal, "AlertRuleDeleted", data=view)


# --- alerts ------------------------------------------------------------------------------------------------------


async def get_alert(
    session: AsyncSession, principal: Principal, alert_id: str, *, for_update: bool = False
) -> Alert:
    return await get_scoped(
        session,
        principal,
        Alert,
        alert_id,
        missing=f"Alert {alert_id} not found",
        code="alert_not_found",
        for_update=for_update,
    )


async def alert_events(session: AsyncSession, alert: Alert) -> list[AlertEvent]:
    rows = await session.execute(
        select(AlertEvent)
        .where(AlertEvent.project_id == alert.project_id, AlertEvent.alert_id == alert.id)
        .order_by(AlertEvent.id)
        .limit(1000)
    )
    return list(rows.scalars())


async def list_alerts(
    session: AsyncSession,
    principal: Principal,
    *,
    status: str | None = None,
    rule: str | None = None,
    severity: str | None = None,
    kind: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> tuple[list[Alert], str | None]:
    """Alerts newest first; ``status`` open | acknowledged | resolved (``active`` = open or acknowledged)."""
    stmt = scoped(select(Alert), Alert, principal)
    if status == "active":
        stmt = stmt.where(Alert.status.in_(OPEN))
    elif status:
        stmt = stmt.where(Alert.status == status)
    if rule:
        stmt = stmt.where(Alert.rule_id == (await get_rule(session, principal, rule)).id)
    if severity:
        stmt = stmt.where(Alert.severity == severity)
    if kind:
        stmt = stmt.where(Alert.kind == kind)
    if cursor:
        stmt = stmt.where(Alert.id < id_cursor(cursor, "alert"))
    return await fetch_page(session, stmt.order_by(Alert.id.desc()), limit, lambda a: a.id)


def _event(
    alert: Alert, kind: str, actor: str, message: str, data: dict[str, Any] | None = None
) -> AlertEvent:
    return AlertEvent(
        id=new_id("alert_event"),
        project_id=alert.project_id,
        alert_id=alert.id,
        kind=kind,
        actor=actor[:200],
        message=message[:2000],
        data=data or {},
        created_at=utcnow(),
    )


def _alert_audit(alert: Alert, **extra: Any) -> dict[str, Any]:
    return {
        "alertId": alert.id,
        "ruleId": alert.rule_id,
        "rule": alert.rule_name,
        "kind": alert.kind,
        "severity": alert.severity,
        "subject": alert.subject,
        **{k: v for k, v in extra.items() if v is not None},
    }


def notification(alert: Alert, event: str) -> dict[str, Any]:
    """The JSON a channel receives about ``alert`` (``event`` fired | resolved)."""
    return {
        "event": event,
        "projectId": alert.project_id,
        "alert": {
            "id": alert.id,
            "rule": alert.rule_name,
            "ruleId": alert.rule_id,
            "kind": alert.kind,
            "severity": alert.severity,
            "subject": alert.subject,
            "status": alert.status,
            "title": alert.title,
            "summary": alert.summary,
            "count": alert.count,
            "firstSeenAt": alert.first_seen_at.isoformat(),
            "lastSeenAt": alert.last_seen_at.isoformat(),
            "resolvedAt": alert.resolved_at.isoformat() if alert.resolved_at else None,
            "resolution": alert.resolution,
        },
    }


async def _notify(session: AsyncSession, rule: AlertRule, alert: Alert, event: str) -> list[str]:
    """Queue ``event`` about ``alert`` to every enabled channel of the rule; the delivery ids."""
    found = await channel_service.channels_by_id(session, rule.project_id, rule.channel_ids)
    ids = []
    for channel_id in rule.channel_ids:
        channel = found.get(channel_id)
        if channel is not None and channel.enabled:
            ids.append(
                channel_service.queue_delivery(
                    session, channel, event, notification(alert, event), alert.id
                ).id
            )
    return ids


async def acknowledge(session: AsyncSession, principal: Principal, alert_id: str, note: str = "") -> Alert:
    """open -> acknowledged: someone is on it (notifications stop; it still resolves when the condition clears)."""
    alert = await get_alert(session, principal, alert_id, for_update=True)
    if alert.status != "open":
        raise Conflict(
            f"Alert {alert.id} is {alert.status}; only an open alert can be acknowledged",
            code="invalid_alert_state",
            state=alert.status,
        )
    now = utcnow()
    alert.status, alert.acknowledged_by, alert.acknowledged_at = "acknowledged", principal.display, now
    session.add(_event(alert, "acknowledged", principal.display, note or "acknowledged"))
    await audit.record(
        session,
        principal,
        "AlertAcknowledged",
        prompt_id=alert.prompt_id,
        data=_alert_audit(alert, note=note or None),
    )
    return alert


def _close(alert: Alert, by: str, resolution: str, now: datetime) -> None:
    alert.status, alert.open_key = "resolved", None
    alert.resolved_by, alert.resolved_at, alert.resolution = by, now, resolution


async def resolve(
    session: AsyncSession, principal: Principal, alert_id: str, note: str = ""
) -> tuple[Alert, list[str]]:
    """open | acknowledged -> resolved (manual); channels hear of it. Returns the alert and delivery ids."""
    alert = await get_alert(session, principal, alert_id, for_update=True)
    if alert.status == "resolved":
        raise Conflict(
            f"Alert {alert.id} is already resolved", code="invalid_alert_state", state=alert.status
        )
    _close(alert, principal.display, "manual", utcnow())
    session.add(_event(alert, "resolved", principal.display, note or "resolved by hand"))
    await audit.record(
        session,
        principal,
        "AlertResolved",
        prompt_id=alert.prompt_id,
        data=_alert_audit(alert, resolution="manual", note=note or None),
    )
    rule = await session.get(AlertRule, alert.rule_id)
    ids = await _notify(session, rule, alert, "resolved") if rule is not None else []
    await session.flush()
    return alert, ids


# --- evaluation --------------------------------------------------------------------------------------------------


@dataclass
class RoundResult:
    rules: int = 0
    fired: int = 0
    refired: int = 0
    resolved: int = 0
    errors: int = 0
    deliveries: list[str] | None = None

    def add(self, other: RoundResult) -> None:
        self.rules += other.rules
        self.fired += other.fired
        self.refired += other.refired
        self.resolved += other.resolved
        self.errors += other.errors
        self.deliveries = (self.deliveries or []) + (other.deliveries or [])


def _open_key(rule: AlertRule, subject: str) -> str:
    return f"{rule.id}|{subject}"[:400]


async def _apply(
    session: AsyncSession, system: Principal, rule: AlertRule, findings: Sequence[Finding], now: datetime
) -> RoundResult:
    result = RoundResult(rules=1, deliveries=[])
    assert result.deliveries is not None
    rows = await session.execute(
        select(Alert).where(
            Alert.project_id == rule.project_id, Alert.rule_id == rule.id, Alert.status.in_(OPEN)
        )
    )
    open_alerts = {a.subject: a for a in rows.scalars()}
    seen: set[str] = set()
    for finding in findings:
        subject = finding.subject[:300]
        seen.add(subject)
        alert = open_alerts.get(subject)
        if finding.firing and alert is not None:
            alert.count += 1
            alert.last_seen_at = now
            alert.title, alert.summary = finding.title[:500], finding.summary
            alert.details = plain(finding.details)
            result.refired += 1
        elif finding.firing:
            alert = Alert(
                id=new_id("alert"),
                project_id=rule.project_id,
                rule_id=rule.id,
                rule_name=rule.name,
                kind=rule.kind,
                severity=rule.severity,
                subject=subject,
                open_key=_open_key(rule, subject),
                status="open",
                title=finding.title[:500],
                summary=finding.summary,
                prompt_id=finding.prompt_id,
                details=plain(finding.details),
                count=1,
                first_seen_at=now,
                last_seen_at=now,
            )
            session.add(alert)
            await session.flush()
            session.add(
                _event(alert, "fired", "system", finding.summary or finding.title, {"details": alert.details})
            )
            await audit.record(
                session,
                system,
                "AlertFired",
                prompt_id=alert.prompt_id,
                data=_alert_audit(alert, title=alert.title),
            )
            result.deliveries += await _notify(session, rule, alert, "fired")
            result.fired += 1
        elif finding.firing is False and alert is not None:
            result.deliveries += await _auto_resolve(
                session, system, rule, alert, now, finding.summary or "condition cleared"
            )
            result.resolved += 1
    for subject, alert in open_alerts.items():
        if subject not in seen:
            result.deliveries += await _auto_resolve(
                session, system, rule, alert, now, "the subject no longer exists"
            )
            result.resolved += 1
    return result


async def _auto_resolve(
    session: AsyncSession, system: Principal, rule: AlertRule, alert: Alert, now: datetime, why: str
) -> list[str]:
    _close(alert, "system", "auto", now)
    session.add(_event(alert, "resolved", "system", f"resolved automatically: {why}"))
    await audit.record(
        session,
        system,
        "AlertResolved",
        prompt_id=alert.prompt_id,
        data=_alert_audit(alert, resolution="auto"),
    )
    return await _notify(session, rule, alert, "resolved")


async def _system_for(session: AsyncSession, project_id: str) -> Principal:
    org = (await project_org_ids(session, [project_id])).get(project_id, "")
    return system_principal(project_id, org)


async def evaluate_rule(runtime: Runtime, rule_id: str, now: datetime) -> RoundResult:
    """Evaluate one rule at ``now`` and apply what it found, in one transaction (the rule row locked, so two
    evaluations of one rule never interleave). A failing check is kept in the rule's ``last_error``."""
    try:
        async with runtime.db.transaction(write=True) as session:
            rule = await session.get(AlertRule, rule_id, with_for_update=True)
            if rule is None:
                return RoundResult()
            system = await _system_for(session, rule.project_id)
            findings = await EVALUATORS[rule.kind](session, system, rule, now)
            result = await _apply(session, system, rule, findings, now)
            rule.last_evaluated_at, rule.last_error = now, None
            return result
    except Exception as exc:
        detail = exc.detail if isinstance(exc, ProblemError) else f"{type(exc).__name__}: {exc}"
        log.warning("alert_rule_evaluation_failed", rule_id=rule_id, error=detail[:300])
        async with runtime.db.transaction(write=True) as session:
            rule = await session.get(AlertRule, rule_id)
            if rule is not None:
                rule.last_evaluated_at, rule.last_error = now, detail[:2000]
        return RoundResult(rules=1, errors=1)


async def evaluate_now(runtime: Runtime, principal: Principal, ref: str) -> RoundResult:
    """Evaluate one rule of the principal's project at once (its deliveries go out off the request path)."""
    async with runtime.db.transaction() as session:
        rule = await get_rule(session, principal, ref)
    result = await evaluate_rule(runtime, rule.id, utcnow())
    channel_service.deliver_soon(runtime, result.deliveries or [])
    return result


async def evaluate_all(runtime: Runtime, now: datetime | None = None) -> RoundResult:
    """One round: every enabled rule of every project, then send what it queued."""
    at = now or utcnow()
    async with runtime.db.transaction() as session:
        ids = list(
            (
                await session.execute(
                    select(AlertRule.id).where(AlertRule.enabled.is_(True)).order_by(AlertRule.id)
                )
            ).scalars()
        )
    total = RoundResult(deliveries=[])
    for rule_id in ids:
        total.add(await evaluate_rule(runtime, rule_id, at))
    if total.deliveries:
        await channel_service.deliver_due(runtime, ids=total.deliveries)
    return total


# --- QA review ---------------------------------------------------------------------------------------------------


def queue_name(alert: Alert) -> str:
    return f"alert-{alert.id.split('_', 1)[1]}"


def _when(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None


async def _affected(session: AsyncSession, principal: Principal, alert: Alert) -> tuple[list[str], list[str]]:
    """(run ids, evaluation result ids) an alert is about."""
    d = alert.details or {}
    if alert.kind == "regression":
        return [], [str(i) for i in d.get("evalResultIds", [])][:MAX_ENQUEUE]
    if alert.kind == "drift":
        return [str(i) for i in d.get("runIds", [])][:MAX_ENQUEUE], []
    if alert.kind == "threshold" and alert.prompt_id:
        since = _when(d.get("since"))
        until = _when(d.get("until"))
        if until is not None:
            until = max(until, alert.last_seen_at) + timedelta(seconds=1)
        status = "error" if d.get("metric") == "error_rate" else None
        runs, _ = await runs_service.list_runs(
            session,
            principal,
            prompt_id=alert.prompt_id,
            status=status,
            since=since,
            until=until,
            limit=MAX_REVIEW_RUNS,
        )
        return [r.id for r in runs], []
    if alert.kind == "experiment_guardrail" and d.get("versionId"):
        runs, _ = await runs_service.list_runs(
            session,
            principal,
            version_id=str(d["versionId"]),
            since=_when(d.get("since")),
            limit=MAX_REVIEW_RUNS,
        )
        return [r.id for r in runs], []
    return [], []


async def review_queue(session: AsyncSession, principal: Principal, alert_id: str) -> tuple[str, int, int]:
    """Put the alert's affected runs (or evaluation results) into its annotation queue (created on first use);
    returns (queue, items added now, items already waiting). ``AlertReviewQueued`` besides ``AnnotationsQueued``."""
    principal.require(Permission.ALERT_READ)
    alert = await get_alert(session, principal, alert_id, for_update=True)
    run_ids, result_ids = await _affected(session, principal, alert)
    if not run_ids and not result_ids:
        raise Conflict(
            f"Alert {alert.id} names no runs or evaluation results to review", code="nothing_to_review"
        )
    queue = alert.annotation_queue or queue_name(alert)
    present_runs = await runs_service.runs_by_id(session, principal, run_ids)
    body = EnqueueIn(
        queue=queue, run_ids=[r for r in run_ids if r in present_runs], eval_result_ids=result_ids
    )
    if not body.run_ids and not body.eval_result_ids:
        raise Conflict(f"The runs alert {alert.id} names no longer exist", code="nothing_to_review")
    try:
        created, already = await annotation_queue.enqueue(session, principal, body)
    except NotFound as exc:
        raise Conflict(f"Alert {alert.id}: {exc.detail}", code="nothing_to_review")
    alert.annotation_queue = queue
    session.add(
        _event(
            alert,
            "review_queued",
            principal.display,
            f"{len(created)} item(s) queued for review in {queue!r} ({len(already)} already waiting)",
            {"queue": queue, "created": len(created), "alreadyQueued": len(already)},
        )
    )
    await audit.record(
        session,
        principal,
        "AlertReviewQueued",
        prompt_id=alert.prompt_id,
        data=_alert_audit(alert, queue=queue, created=len(created), alreadyQueued=len(already)),
    )
    return queue, len(created), len(already)


# --- periodic tasks ----------------------------------------------------------------------------------------------


async def _evaluate_task(runtime: Runtime) -> None:
    await evaluate_all(runtime)


async def _deliver_task(runtime: Runtime) -> None:
    await channel_service.deliver_due(runtime)


register_periodic(EVALUATE_TASK, every_seconds=60, run=_evaluate_task)
register_periodic(DELIVER_TASK, every_seconds=15, run=_deliver_task)
