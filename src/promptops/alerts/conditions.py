"""What each kind of alert rule finds when evaluated: one :class:`Finding` per subject it watches.

A finding is *firing* (the condition holds), *clear* (it does not) or *unknown* (``firing`` None: too few
samples, a check that could not run): unknown leaves an open alert as it is. Each kind reads through the
service of the feature that owns the data: monitoring (threshold, drift), regression schedules
(:mod:`promptops.evals.schedules.service`) and experiments (guardrail pauses).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession

from promptops.auth.principal import Principal
from promptops.evals.schedules import service as schedules
from promptops.experiments import service as experiments
from promptops.monitoring import service as monitoring
from promptops.registry import service as registry

if TYPE_CHECKING:
    from promptops.alerts.models import AlertRule

DEFAULT_WINDOW_MINUTES = 60
DEFAULT_BASELINE_MINUTES = 24 * 60
MAX_RUN_IDS = 500
OPERATORS = {
    "gt": (">", lambda a, b: a > b),
    "gte": (">=", lambda a, b: a >= b),
    "lt": ("<", lambda a, b: a < b),
    "lte": ("<=", lambda a, b: a <= b),
}


@dataclass
class Finding:
    subject: str
    firing: bool | None
    title: str
    summary: str = ""
    prompt_id: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


def plain(value: Any) -> Any:
    """A JSON-ready copy of what another feature reports (dataclasses, pydantic models, datetimes)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return plain(dataclasses.asdict(value))
    if hasattr(value, "model_dump"):
        return plain(value.model_dump(mode="json", by_alias=True))
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [plain(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, float) and value != value:  # NaN is not JSON
        return None
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def _target(rule: AlertRule) -> str:
    return f"{rule.prompt_name}@{rule.label}"


async def _prompt_id(session: AsyncSession, principal: Principal, name: str | None) -> str | None:
    if not name:
        return None
    return (await registry.get_prompt(session, principal, name)).id


async def threshold(
    session: AsyncSession, principal: Principal, rule: AlertRule, now: datetime
) -> list[Finding]:
    params = rule.params
    assert rule.prompt_name and rule.label
    minutes = int(params.get("windowMinutes") or DEFAULT_WINDOW_MINUTES)
    metric, op, limit = params["metric"], params["op"], float(params["value"])
    prompt_id = await _prompt_id(session, principal, rule.prompt_name)
    found = await monitoring.metric_value(
        session,
        rule.project_id,
        prompt_name=rule.prompt_name,
        label=rule.label,
        metric=metric,
        window=timedelta(minutes=minutes),
        now=now,
    )
    symbol, holds = OPERATORS[op]
    title = f"{metric} of {_target(rule)} {symbol} {limit:g} over the last {minutes} min"
    details: dict[str, Any] = {
        "metric": metric,
        "op": op,
        "threshold": limit,
        "windowMinutes": minutes,
        "since": (now - timedelta(minutes=minutes)).isoformat(),
        "until": now.isoformat(),
        "promptName": rule.prompt_name,
        "label": rule.label,
    }
    min_samples = int(params.get("minSamples") or 1)
    if found is None or found.samples < min_samples:
        samples = 0 if found is None else found.samples
        return [
            Finding(
                _target(rule),
                None,
                title,
                f"{samples} sample(s) in the window; at least {min_samples} needed",
                prompt_id,
                {**details, "samples": samples},
            )
        ]
    details.update(value=found.value, samples=found.samples)
    firing = bool(holds(found.value, limit))
    summary = (
        f"{metric} is {found.value:.4g} over {found.samples} sample(s) in the last {minutes} min "
        f"({'above' if op in ('gt', 'gte') else 'below'} the limit {limit:g})"
        if firing
        else f"{metric} is {found.value:.4g}, within the limit {symbol} {limit:g}"
    )
    return [
        Finding(
            _target(rule),
            firing,
            f"{title}: {found.value:.4g}" if firing else title,
            summary,
            prompt_id,
            details,
        )
    ]


async def drift(session: AsyncSession, principal: Principal, rule: AlertRule, now: datetime) -> list[Finding]:
    params = rule.params
    assert rule.prompt_name and rule.label
    window = int(params.get("windowMinutes") or DEFAULT_WINDOW_MINUTES)
    baseline = int(params.get("baselineMinutes") or DEFAULT_BASELINE_MINUTES)
    prompt_id = await _prompt_id(session, principal, rule.prompt_name)
    report = await monitoring.drift_check(
        session,
        rule.project_id,
        prompt_name=rule.prompt_name,
        label=rule.label,
        window=timedelta(minutes=window),
        baseline=timedelta(minutes=baseline),
        now=now,
    )
    signals = plain(list(report.signals))
    run_ids = [str(r) for r in list(report.run_ids)[:MAX_RUN_IDS]]
    drifted = [s for s in signals if isinstance(s, dict) and s.get("drifted")]
    summary = (
        f"{len(drifted)} of {len(signals)} drift signal(s) drifted in the last {window} min against the "
        f"{baseline} min before"
        + (": " + "; ".join(str(s.get("detail") or s.get("name")) for s in drifted[:5]) if drifted else "")
    )
    return [
        Finding(
            _target(rule),
            bool(report.drifted),
            f"Drift on {_target(rule)}" if report.drifted else f"No drift on {_target(rule)}",
            summary,
            prompt_id,
            {
                "windowMinutes": window,
                "baselineMinutes": baseline,
                "signals": signals,
                "runIds": run_ids,
                "promptName": rule.prompt_name,
                "label": rule.label,
            },
        )
    ]


async def regression(
    session: AsyncSession, principal: Principal, rule: AlertRule, now: datetime
) -> list[Finding]:
    outcomes = await schedules.latest_outcomes(
        session,
        principal,
        prompt_name=rule.prompt_name,
        label=rule.label,
        schedule_id=rule.params.get("scheduleId"),
    )
    found: list[Finding] = []
    for outcome in outcomes:
        s, run = outcome.schedule, outcome.run
        target = f"{s.prompt_name}@{s.label}"
        subject = f"schedule:{s.id}"
        if run is None or run.status == "failed":
            found.append(Finding(subject, None, f"Regression check of {target}", prompt_id=s.prompt_id))
            continue
        comparison = run.comparison or {}
        details = {
            "scheduleId": s.id,
            "scheduleName": s.name,
            "scheduleRunId": run.id,
            "evalRunId": run.eval_run_id,
            "baselineEvalRunId": run.baseline_eval_run_id,
            "version": run.version,
            "versionId": run.version_id,
            "passRate": run.pass_rate,
            "promptName": s.prompt_name,
            "label": s.label,
            "verdict": comparison.get("verdict"),
            "broken": comparison.get("broken", []),
            "evalResultIds": comparison.get("brokenResultIds", []),
        }
        if run.status == "regressed":
            title = f"Regression on {target} v{run.version}: worse than the last good run"
            summary = str(comparison.get("verdict") or "")
        else:
            title, summary = f"{target} v{run.version} passed its regression check", ""
        found.append(Finding(subject, run.status == "regressed", title, summary, s.prompt_id, details))
    return found


async def experiment_guardrail(
    session: AsyncSession, principal: Principal, rule: AlertRule, now: datetime
) -> list[Finding]:
    wanted = rule.params.get("experimentId")
    found: list[Finding] = []
    for status in ("running", "paused"):
        cursor: str | None = None
        while True:
            views, cursor = await experiments.list_experiments(
                session,
                principal,
                prompt=rule.prompt_name,
                status=status,
                label=rule.label,
                cursor=cursor,
                limit=200,
            )
            for view in views:
                e = view.experiment
                if wanted and e.id != wanted:
                    continue
                for arm in view.arms:
                    paused = bool(arm.paused and arm.paused_reason.startswith("guardrail"))
                    subject = f"experiment:{e.id}:{arm.name}"
                    found.append(
                        Finding(
                            subject,
                            paused,
                            f"Guardrail paused arm {arm.name!r} of experiment {e.name!r} ({e.prompt_name}@{e.label})",
                            arm.paused_reason if paused else "",
                            e.prompt_id,
                            {
                                "experimentId": e.id,
                                "experimentName": e.name,
                                "arm": arm.name,
                                "versionId": arm.version_id,
                                "version": arm.version,
                                "reason": arm.paused_reason,
                                "since": e.started_at.isoformat() if e.started_at else None,
                                "promptName": e.prompt_name,
                                "label": e.label,
                            },
                        )
                    )
            if cursor is None:
                break
    return found


EVALUATORS = {
    "threshold": threshold,
    "drift": drift,
    "regression": regression,
    "experiment_guardrail": experiment_guardrail,
}
