"""REST face of alerting: ``/api/v1/alerts`` (the inbox), ``/api/v1/alert-rules`` and ``/api/v1/alert-channels``.
Thin handlers over :mod:`promptops.alerts.service` and :mod:`promptops.alerts.channels`; notifications a
request queues are sent after its transaction commits, from a background task (never in the request)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response

from promptops.alerts import channels as channel_service
from promptops.alerts import service
from promptops.alerts.models import Alert, AlertChannel, AlertDelivery, AlertEvent, AlertRule
from promptops.alerts.schemas import (
    AlertChannelIn,
    AlertChannelOut,
    AlertChannelPage,
    AlertChannelUpdate,
    AlertDeliveryOut,
    AlertDeliveryPage,
    AlertDetailOut,
    AlertEvaluationOut,
    AlertEventOut,
    AlertNoteIn,
    AlertOut,
    AlertPage,
    AlertQueueOut,
    AlertRuleIn,
    AlertRuleOut,
    AlertRulePage,
    AlertRuleUpdate,
    RuleKind,
    Severity,
)
from promptops.auth.deps import require
from promptops.auth.principal import Principal
from promptops.governance.rbac import Permission as P
from promptops.idempotency import idempotent
from promptops.pagination import IdCursor, PageLimit
from promptops.runtime import runtime_of

router = APIRouter(prefix="/api/v1/alerts", tags=["alerts"])
rules_router = APIRouter(prefix="/api/v1/alert-rules", tags=["alerts"])
channels_router = APIRouter(prefix="/api/v1/alert-channels", tags=["alerts"])

Reader = Annotated[Principal, Depends(require(P.ALERT_READ))]
Manager = Annotated[Principal, Depends(require(P.ALERT_MANAGE))]
Reviewer = Annotated[Principal, Depends(require(P.ANNOTATION_MANAGE))]
DeliveryStatus = Literal["pending", "sent", "failed"]


def alert_out(alert: Alert) -> AlertOut:
    return AlertOut.model_validate(alert, from_attributes=True)


def event_out(event: AlertEvent) -> AlertEventOut:
    return AlertEventOut.model_validate(event, from_attributes=True)


def delivery_out(delivery: AlertDelivery) -> AlertDeliveryOut:
    return AlertDeliveryOut.model_validate(delivery, from_attributes=True)


def rule_out(rule: AlertRule, channels: dict[str, AlertChannel], open_alerts: int = 0) -> AlertRuleOut:
    return AlertRuleOut(
        id=rule.id,
        name=rule.name,
        description=rule.description,
        kind=rule.kind,
        severity=rule.severity,
        enabled=rule.enabled,
        prompt=rule.prompt_name,
        label=rule.label,
        condition=rule.params,
        channels=[
            {"id": c.id, "name": c.name, "type": c.type}
            for c in (channels.get(i) for i in rule.channel_ids)
            if c is not None
        ],
        open_alerts=open_alerts,
        last_evaluated_at=rule.last_evaluated_at,
        last_error=rule.last_error,
        created_by=rule.created_by,
        created_at=rule.created_at,
        updated_at=rule.updated_at,
    )


def channel_out(channel: AlertChannel, signing_secret: str | None = None) -> AlertChannelOut:
    return AlertChannelOut(
        id=channel.id,
        name=channel.name,
        type=channel.type,
        enabled=channel.enabled,
        config=channel.config,
        secret_hint=channel.secret_hint,
        signing_secret=signing_secret,
        created_by=channel.created_by,
        created_at=channel.created_at,
        updated_at=channel.updated_at,
    )


# --- alerts ------------------------------------------------------------------------------------------------------


@router.get("", response_model=AlertPage, summary="The alert inbox, newest first")
async def list_alerts(
    request: Request,
    principal: Reader,
    status: Annotated[
        Literal["open", "acknowledged", "resolved", "active"] | None,
        Query(description="active = open or acknowledged"),
    ] = None,
    rule: Annotated[str | None, Query(max_length=100, description="Rule name or id")] = None,
    severity: Severity | None = None,
    kind: RuleKind | None = None,
    cursor: IdCursor = None,
    limit: PageLimit = 50,
) -> AlertPage:
    async with runtime_of(request).db.transaction() as session:
        rows, next_cursor = await service.list_alerts(
            session,
            principal,
            status=status,
            rule=rule,
            severity=severity,
            kind=kind,
            cursor=cursor,
            limit=limit,
        )
    return AlertPage(items=[alert_out(a) for a in rows], next_cursor=next_cursor)


@router.get("/{alert_id}", response_model=AlertDetailOut, summary="One alert with its history")
async def get_alert(alert_id: str, request: Request, principal: Reader) -> AlertDetailOut:
    async with runtime_of(request).db.transaction() as session:
        alert = await service.get_alert(session, principal, alert_id)
        events = await service.alert_events(session, alert)
    return AlertDetailOut(**alert_out(alert).model_dump(), events=[event_out(e) for e in events])


async def _detail(request: Request, principal: Principal, alert_id: str) -> AlertDetailOut:
    return await get_alert(alert_id, request, principal)


@router.post("/{alert_id}/ack", response_model=AlertDetailOut, summary="Acknowledge an open alert")
async def acknowledge(
    alert_id: str, request: Request, principal: Manager, body: AlertNoteIn | None = None
) -> AlertDetailOut:
    async with runtime_of(request).db.transaction(write=True) as session:
        await service.acknowledge(session, principal, alert_id, (body or AlertNoteIn()).note)
    return await _detail(request, principal, alert_id)


@router.post("/{alert_id}/resolve", response_model=AlertDetailOut, summary="Resolve an alert by hand")
async def resolve(
    alert_id: str, request: Request, principal: Manager, body: AlertNoteIn | None = None
) -> AlertDetailOut:
    runtime = runtime_of(request)
    async with runtime.db.transaction(write=True) as session:
        _, deliveries = await service.resolve(session, principal, alert_id, (body or AlertNoteIn()).note)
    channel_service.deliver_soon(runtime, deliveries)
    return await _detail(request, principal, alert_id)


@router.post(
    "/{alert_id}/annotation-queue",
    response_model=AlertQueueOut,
    summary="Queue the alert's affected runs for QA review (creates or reuses the alert's annotation queue)",
)
async def review_queue(alert_id: str, request: Request, principal: Reviewer) -> AlertQueueOut:
    async with runtime_of(request).db.transaction(write=True) as session:
        queue, created, already = await service.review_queue(session, principal, alert_id)
    return AlertQueueOut(queue=queue, created=created, already_queued=already, items=created + already)


@router.get(
    "/{alert_id}/deliveries", response_model=AlertDeliveryPage, summary="Notifications sent about the alert"
)
async def alert_deliveries(
    alert_id: str, request: Request, principal: Reader, cursor: IdCursor = None, limit: PageLimit = 50
) -> AlertDeliveryPage:
    async with runtime_of(request).db.transaction() as session:
        alert = await service.get_alert(session, principal, alert_id)
        rows, next_cursor = await channel_service.list_deliveries(
            session, principal, alert_id=alert.id, cursor=cursor, limit=limit
        )
    return AlertDeliveryPage(items=[delivery_out(d) for d in rows], next_cursor=next_cursor)


# --- rules -------------------------------------------------------------------------------------------------------


async def _rule_answer(request: Request, principal: Principal, rule: AlertRule) -> AlertRuleOut:
    async with runtime_of(request).db.transaction() as session:
        channels = await service.rule_channels(session, [rule])
        counts = await service.open_counts(session, [rule])
    return rule_out(rule, channels, counts.get(rule.id, 0))


@rules_router.post("", status_code=201, response_model=AlertRuleOut, summary="Create an alert rule")
@idempotent
async def create_rule(body: AlertRuleIn, request: Request, principal: Manager) -> AlertRuleOut:
    async with runtime_of(request).db.transaction(write=True) as session:
        rule = await service.create_rule(session, principal, body)
    return await _rule_answer(request, principal, rule)


@rules_router.get("", response_model=AlertRulePage, summary="The project's alert rules")
async def list_rules(
    request: Request,
    principal: Reader,
    kind: RuleKind | None = None,
    cursor: IdCursor = None,
    limit: PageLimit = 50,
) -> AlertRulePage:
    async with runtime_of(request).db.transaction() as session:
        rows, next_cursor = await service.list_rules(
            session, principal, kind=kind, cursor=cursor, limit=limit
        )
        channels = await service.rule_channels(session, rows)
        counts = await service.open_counts(session, rows)
    return AlertRulePage(
        items=[rule_out(r, channels, counts.get(r.id, 0)) for r in rows], next_cursor=next_cursor
    )


@rules_router.get("/{rule}", response_model=AlertRuleOut, summary="One alert rule (by name or id)")
async def get_rule(rule: str, request: Request, principal: Reader) -> AlertRuleOut:
    async with runtime_of(request).db.transaction() as session:
        found = await service.get_rule(session, principal, rule)
    return await _rule_answer(request, principal, found)


@rules_router.patch("/{rule}", response_model=AlertRuleOut, summary="Change an alert rule")
async def update_rule(rule: str, body: AlertRuleUpdate, request: Request, principal: Manager) -> AlertRuleOut:
    async with runtime_of(request).db.transaction(write=True) as session:
        found = await service.update_rule(session, principal, rule, body)
    return await _rule_answer(request, principal, found)


@rules_router.delete("/{rule}", status_code=204, summary="Remove an alert rule and its alerts")
async def delete_rule(rule: str, request: Request, principal: Manager) -> Response:
    async with runtime_of(request).db.transaction(write=True) as session:
        await service.delete_rule(session, principal, rule)
    return Response(status_code=204)


@rules_router.post(
    "/{rule}/evaluate", response_model=AlertEvaluationOut, summary="Evaluate the rule now (fire or resolve)"
)
async def evaluate_rule(rule: str, request: Request, principal: Manager) -> AlertEvaluationOut:
    result = await service.evaluate_now(runtime_of(request), principal, rule)
    return AlertEvaluationOut(
        rules=result.rules,
        fired=result.fired,
        refired=result.refired,
        resolved=result.resolved,
        errors=result.errors,
    )


# --- channels ----------------------------------------------------------------------------------------------------


@channels_router.post(
    "",
    status_code=201,
    response_model=AlertChannelOut,
    summary="Add a notification channel (a webhook's signing secret is returned once)",
)
@idempotent
async def create_channel(body: AlertChannelIn, request: Request, principal: Manager) -> AlertChannelOut:
    runtime = runtime_of(request)
    async with runtime.db.transaction(write=True) as session:
        channel, secret = await channel_service.create_channel(
            session, principal, body, runtime.box, runtime.settings.provider_allowed_hosts
        )
    return channel_out(channel, secret)


@channels_router.get("", response_model=AlertChannelPage, summary="The project's notification channels")
async def list_channels(
    request: Request, principal: Reader, cursor: IdCursor = None, limit: PageLimit = 50
) -> AlertChannelPage:
    async with runtime_of(request).db.transaction() as session:
        rows, next_cursor = await channel_service.list_channels(
            session, principal, cursor=cursor, limit=limit
        )
    return AlertChannelPage(items=[channel_out(c) for c in rows], next_cursor=next_cursor)


@channels_router.get("/{channel}", response_model=AlertChannelOut, summary="One channel (by name or id)")
async def get_channel(channel: str, request: Request, principal: Reader) -> AlertChannelOut:
    async with runtime_of(request).db.transaction() as session:
        return channel_out(await channel_service.get_channel(session, principal, channel))


@channels_router.patch("/{channel}", response_model=AlertChannelOut, summary="Change a channel")
async def update_channel(
    channel: str, body: AlertChannelUpdate, request: Request, principal: Manager
) -> AlertChannelOut:
    runtime = runtime_of(request)
    async with runtime.db.transaction(write=True) as session:
        found, secret = await channel_service.update_channel(
            session, principal, channel, body, runtime.box, runtime.settings.provider_allowed_hosts
        )
    return channel_out(found, secret)


@channels_router.delete("/{channel}", status_code=204, summary="Remove a channel")
async def delete_channel(channel: str, request: Request, principal: Manager) -> Response:
    async with runtime_of(request).db.transaction(write=True) as session:
        await channel_service.delete_channel(session, principal, channel)
    return Response(status_code=204)


@channels_router.post(
    "/{channel}/test",
    status_code=202,
    response_model=AlertDeliveryOut,
    summary="Send a test notification (off the request path; see its deliveries)",
)
async def test_channel(channel: str, request: Request, principal: Manager) -> AlertDeliveryOut:
    runtime = runtime_of(request)
    async with runtime.db.transaction(write=True) as session:
        delivery = await channel_service.queue_test(session, principal, channel)
    channel_service.deliver_soon(runtime, [delivery.id])
    return delivery_out(delivery)


@channels_router.get(
    "/{channel}/deliveries",
    response_model=AlertDeliveryPage,
    summary="The channel's delivery log, newest first",
)
async def channel_deliveries(
    channel: str,
    request: Request,
    principal: Reader,
    status: DeliveryStatus | None = None,
    cursor: IdCursor = None,
    limit: PageLimit = 50,
) -> AlertDeliveryPage:
    async with runtime_of(request).db.transaction() as session:
        rows, next_cursor = await channel_service.list_deliveries(
            session, principal, channel=channel, status=status, cursor=cursor, limit=limit
        )
    return AlertDeliveryPage(items=[delivery_out(d) for d in rows], next_cursor=next_cursor)
