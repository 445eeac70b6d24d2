"""Notification channels and the delivery of notifications to them.

Three kinds: a generic **webhook** (JSON body signed with HMAC-SHA256, see :func:`signature`), a **Slack**
incoming webhook (``text`` + Block Kit ``blocks``) and **email** over SMTP (optional STARTTLS and login;
``smtplib`` in a worker thread). Secrets (the webhook signing secret, the whole Slack URL, the SMTP password) are
encrypted with the server's :class:`~promptops.crypto.SecretBox`; the signing secret is shown once. Every URL
and SMTP host passes the SSRF guard of the provider connections (operators allow private hosts with
``PROMPTOPS_PROVIDER_ALLOWED_HOSTS``), when saved and again before each send.

Notifications are rows of ``alert_deliveries``, sent off the request path: by the periodic task
``alerts.deliver`` (and right after the evaluation round or the test request that queued them). A sender claims
a row by moving ``next_attempt_at`` forward with a conditional UPDATE, so two processes never send one twice at
once; a failure is retried with exponential backoff up to :data:`MAX_ATTEMPTS` times.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import smtplib
import ssl
import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx
import orjson
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from promptops.alerts.models import AlertChannel, AlertDelivery, AlertEvent
from promptops.alerts.schemas import AlertChannelIn, AlertChannelUpdate, EmailConfigIn
from promptops.auth.principal import Principal
from promptops.crypto import SecretBox
from promptops.db import utcnow
from promptops.errors import Conflict
from promptops.governance import audit
from promptops.ids import has_prefix, new_id
from promptops.logging import log
from promptops.pagination import fetch_page, id_cursor
from promptops.providers.ssrf import check_base_url
from promptops.tenancy.service import get_scoped, scoped

if TYPE_CHECKING:
    from promptops.runtime import Runtime

MAX_ATTEMPTS = 5
RETRY_BASE = timedelta(seconds=30)
CLAIM_LEASE = timedelta(minutes=2)
SEND_TIMEOUT_SECONDS = 10.0
SIGNATURE_HEADER = "X-PromptOps-Signature"
TIMESTAMP_HEADER = "X-PromptOps-Timestamp"
USER_AGENT = "PromptOps-Alerts/1"


class DeliveryError(Exception):
    """A send that did not go through (kept, shortened, in the delivery log; never holds a secret)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


# --- secrets -----------------------------------------------------------------------------------------------------


def _associated(channel_id: str) -> str:
    return f"alert-channel:{channel_id}"


def _hint(secret: str) -> str:
    return f"{secret[:6]}…{secret[-4:]}" if len(secret) > 12 else "…"


def new_signing_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """``v1=`` + hex HMAC-SHA256 of ``"<timestamp>.<body>"`` under the channel's signing secret.

    Receivers recompute it from the ``X-PromptOps-Timestamp`` header and the raw body, compare in constant time
    and reject old timestamps (replays)."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"v1={mac}"


# --- channels ----------------------------------------------------------------------------------------------------


def _email_config(email: EmailConfigIn) -> dict[str, Any]:
    return {
        "host": email.host,
        "port": email.port,
        "from": email.sender,
        "to": list(email.to),
        "starttls": email.starttls,
        "username": email.username,
    }


async def _check_email_host(email: EmailConfigIn | dict[str, Any], allowed_hosts: Sequence[str]) -> None:
    host = email.host if isinstance(email, EmailConfigIn) else email["host"]
    port = email.port if isinstance(email, EmailConfigIn) else email["port"]
    shown = f"[{host}]" if ":" in host and not host.startswith("[") else host
    await check_base_url(f"http://{shown}:{port}/", list(allowed_hosts))


def _audit_view(channel: AlertChannel) -> dict[str, Any]:
    return {
        "channelId": channel.id,
        "name": channel.name,
        "type": channel.type,
        "enabled": channel.enabled,
        "config": channel.config,
        "hasSecret": channel.secret_ciphertext is not None,
    }


async def _unique_name(session: AsyncSession, principal: Principal, name: str) -> None:
    taken = (
        await session.execute(
            scoped(select(AlertChannel.id), AlertChannel, principal).where(AlertChannel.name == name)
        )
    ).first()
    if taken is not None:
        raise Conflict(f"An alert channel named {name!r} already exists", code="channel_exists")


def _set_target(
    channel: AlertChannel, url: str | None, email: EmailConfigIn | None, box: SecretBox
) -> str | None:
    """Store the channel's target; returns a new signing secret of a webhook (shown once)."""
    created_secret: str | None = None
    if channel.type == "webhook" and url is not None:
        channel.config = {"url": url}
        if channel.secret_ciphertext is None:
            created_secret = new_signing_secret()
            channel.secret_ciphertext = box.encrypt(created_secret, _associated(channel.id))
            channel.secret_hint = _hint(created_secret)
    elif channel.type == "slack" and url is not None:
        # The path of a Slack incoming-webhook URL is its credential: only the host is shown.
        channel.config = {"host": urlsplit(url).hostname or ""}
        channel.secret_ciphertext = box.encrypt(url, _associated(channel.id))
        channel.secret_hint = f"{urlsplit(url).scheme}://{urlsplit(url).hostname}/…{url[-4:]}"
    elif channel.type == "email" and email is not None:
        channel.config = _email_config(email)
        if email.password is not None:
            channel.secret_ciphertext = box.encrypt(email.password, _associated(channel.id))
            channel.secret_hint = "password set"
        else:
            channel.secret_ciphertext, channel.secret_hint = None, None
    return created_secret


async def create_channel(
    session: AsyncSession,
    principal: Principal,
    body: AlertChannelIn,
    box: SecretBox,
    allowed_hosts: Sequence[str],
) -> tuple[AlertChannel, str | None]:
    """A channel (URL or SMTP host through the SSRF guard); a webhook's signing secret is returned once."""
    if body.url is not None:
        await check_base_url(body.url, list(allowed_hosts))
    if body.email is not None:
        await _check_email_host(body.email, allowed_hosts)
    await _unique_name(session, principal, body.name)
    now = utcnow()
    channel = AlertChannel(
        id=new_id("alert_channel"),
        project_id=principal.project_id,
        name=body.name,
        type=body.type,
        enabled=body.enabled,
        config={},
        created_by=principal.id,
        created_at=now,
        updated_at=now,
    )
    created_secret = _set_target(channel, body.url, body.email, box)
    session.add(channel)
    await session.flush()
    await audit.record(session, principal, "AlertChannelCreated", data=_audit_view(channel))
    return channel, created_secret


async def get_channel(
    session: AsyncSession, principal: Principal, ref: str, *, for_update: bool = False
) -> AlertChannel:
    """A channel of the project by id (``ach_...``) or name."""
    return await get_scoped(
        session,
        principal,
        AlertChannel,
        ref,
        missing=f"Alert channel {ref!r} not found",
        code="channel_not_found",
        column=AlertChannel.id if has_prefix(ref, "alert_channel") else AlertChannel.name,
        for_update=for_update,
    )


async def channels_by_id(
    session: AsyncSession, project_id: str, ids: Sequence[str]
) -> dict[str, AlertChannel]:
    if not ids:
        return {}
    rows = await session.execute(
        select(AlertChannel).where(AlertChannel.project_id == project_id, AlertChannel.id.in_(list(ids)))
    )
    return {c.id: c for c in rows.scalars()}


async def list_channels(
    session: AsyncSession, principal: Principal, *, cursor: str | None = None, limit: int = 50
) -> tuple[list[AlertChannel], str | None]:
    stmt = scoped(select(AlertChannel), AlertChannel, principal)
    if cursor:
        stmt = stmt.where(AlertChannel.id > id_cursor(cursor, "alert_channel"))
    return await fetch_page(session, stmt.order_by(AlertChannel.id), limit, lambda c: c.id)


async def update_channel(
    session: AsyncSession,
    principal: Principal,
    ref: str,
    body: AlertChannelUpdate,
    box: SecretBox,
    allowed_hosts: Sequence[str],
) -> tuple[AlertChannel, str | None]:
    channel = await get_channel(session, principal, ref, for_update=True)
    changed: list[str] = []
    if body.url is not None and channel.type == "email":
        raise Conflict("'url' does not apply to an email channel", code="channel_type_mismatch")
    if body.email is not None and channel.type != "email":
        raise Conflict(f"'email' does not apply to a {channel.type} channel", code="channel_type_mismatch")
    if body.rotate_secret and channel.type != "webhook":
        raise Conflict("Only a webhook channel has a signing secret to rotate", code="channel_type_mismatch")
    if body.name is not None and body.name != channel.name:
        await _unique_name(session, principal, body.name)
        channel.name = body.name
        changed.append("name")
    if body.enabled is not None and body.enabled != channel.enabled:
        channel.enabled = body.enabled
        changed.append("enabled")
    if body.url is not None:
        await check_base_url(body.url, list(allowed_hosts))
        _set_target(channel, body.url, None, box)
        changed.append("url")
    if body.email is not None:
        await _check_email_host(body.email, allowed_hosts)
        _set_target(channel, None, body.email, box)
        changed.append("email")
    created_secret: str | None = None
    if body.rotate_secret:
        created_secret = new_signing_secret()
        channel.secret_ciphertext = box.encrypt(created_secret, _associated(channel.id))
        channel.secret_hint = _hint(created_secret)
        changed.append("signingSecret")
    if changed:
        channel.updated_at = utcnow()
        await session.flush()
        await audit.record(
            session, principal, "AlertChannelUpdated", data={**_audit_view(channel), "changed": changed}
        )
    return channel, created_secret


async def delete_channel(session: AsyncSession, principal: Principal, ref: str) -> AlertChannel:
    """Remove a channel (and its delivery log); rules that named it stop notifying it."""
    channel = await get_channel(session, principal, ref, for_update=True)
    view = _audit_view(channel)
    await session.delete(channel)
    await audit.record(session, principal, "AlertChannelDeleted", data=view)
    return channel


# --- deliveries --------------------------------------------------------------------------------------------------


def queue_delivery(
    session: AsyncSession, channel: AlertChannel, event: str, payload: dict[str, Any], alert_id: str | None
) -> AlertDelivery:
    """Add a pending notification (sent after the caller's transaction commits)."""
    now = utcnow()
    delivery = AlertDelivery(
        id=new_id("alert_delivery"),
        project_id=channel.project_id,
        channel_id=channel.id,
        alert_id=alert_id,
        event=event,
        status="pending",
        attempts=0,
        next_attempt_at=now,
        payload=payload,
        created_at=now,
    )
    session.add(delivery)
    return delivery


async def queue_test(session: AsyncSession, principal: Principal, ref: str) -> AlertDelivery:
    """A test notification to the channel (``AlertChannelTested``); sent off the request path."""
    channel = await get_channel(session, principal, ref)
    payload = {
        "event": "test",
        "projectId": channel.project_id,
        "channel": channel.name,
        "message": f"Test notification from PromptOps to channel {channel.name!r}, sent by {principal.display}",
        "sentBy": principal.display,
    }
    delivery = queue_delivery(session, channel, "test", payload, None)
    await session.flush()
    await audit.record(
        session,
        principal,
        "AlertChannelTested",
        data={"channelId": channel.id, "name": channel.name, "deliveryId": delivery.id},
    )
    return delivery


async def list_deliveries(
    session: AsyncSession,
    principal: Principal,
    *,
    channel: str | None = None,
    alert_id: str | None = None,
    status: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> tuple[list[AlertDelivery], str | None]:
    """The delivery log, newest first."""
    stmt = scoped(select(AlertDelivery), AlertDelivery, principal)
    if channel:
        stmt = stmt.where(AlertDelivery.channel_id == (await get_channel(session, principal, channel)).id)
    if alert_id:
        stmt = stmt.where(AlertDelivery.alert_id == alert_id)
    if status:
        stmt = stmt.where(AlertDelivery.status == status)
    if cursor:
        stmt = stmt.where(AlertDelivery.id < id_cursor(cursor, "alert_delivery"))
    return await fetch_page(session, stmt.order_by(AlertDelivery.id.desc()), limit, lambda d: d.id)


def _headline(payload: dict[str, Any]) -> tuple[str, str]:
    """(subject line, plain-text body) of a notification."""
    event = payload.get("event")
    if event == "test":
        return "[PromptOps] Test notification", str(payload.get("message", ""))
    alert = payload.get("alert") or {}
    verb = "Resolved" if event == "resolved" else "Alert"
    subject = f"[PromptOps] {verb} ({alert.get('severity', 'warning')}): {alert.get('title', '')}"
    lines = [
        str(alert.get("title", "")),
        "",
        str(alert.get("summary", "")),
        "",
        f"Rule: {alert.get('rule', '')} ({alert.get('kind', '')})",
        f"Subject: {alert.get('subject', '')}",
        f"Status: {alert.get('status', '')}, seen {alert.get('count', 1)} time(s)",
        f"Alert id: {alert.get('id', '')}",
    ]
    return " ".join(subject.split())[:250], "\n".join(lines)  # one header line, whatever names hold


def _slack_body(payload: dict[str, Any]) -> dict[str, Any]:
    subject, text = _headline(payload)
    return {
        "text": subject,
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": subject[:150]}},
            {"type": "section", "text": {"type": "mrkdwn", "text": text[:2900]}},
        ],
    }


async def _post(url: str, body: bytes, headers: dict[str, str], allowed_hosts: Sequence[str]) -> int:
    await check_base_url(url, list(allowed_hosts))  # again at send time: DNS may have changed since
    try:
        async with httpx.AsyncClient(
            timeout=SEND_TIMEOUT_SECONDS, follow_redirects=False, trust_env=False
        ) as client:
            response = await client.post(url, content=body, headers=headers)
    except httpx.HTTPError as exc:
        raise DeliveryError(f"{type(exc).__name__}: could not reach {urlsplit(url).hostname}")
    if not 200 <= response.status_code < 300:
        raise DeliveryError(f"the receiver answered HTTP {response.status_code}", response.status_code)
    return response.status_code


def _send_email(config: dict[str, Any], password: str | None, subject: str, text: str) -> None:
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = config["from"]
    message["To"] = ", ".join(config["to"])
    message.set_content(text)
    with smtplib.SMTP(config["host"], int(config["port"]), timeout=SEND_TIMEOUT_SECONDS) as smtp:
        if config.get("starttls"):
            smtp.starttls(context=ssl.create_default_context())
        if config.get("username") and password is not None:
            smtp.login(config["username"], password)
        smtp.send_message(message)


async def send(
    channel: AlertChannel, delivery: AlertDelivery, box: SecretBox, allowed_hosts: Sequence[str]
) -> int | None:
    """Send one notification now; the HTTP status (None for email). Raises :class:`DeliveryError`."""
    secret = (
        box.decrypt(channel.secret_ciphertext, _associated(channel.id)) if channel.secret_ciphertext else None
    )
    payload = {**delivery.payload, "deliveryId": delivery.id}
    if channel.type == "webhook":
        if secret is None:
            raise DeliveryError("the channel has no signing secret")
        body = orjson.dumps(payload)
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: signature(secret, timestamp, body),
            "X-PromptOps-Event": delivery.event,
            "X-PromptOps-Delivery": delivery.id,
        }
        return await _post(channel.config["url"], body, headers, allowed_hosts)
    if channel.type == "slack":
        if secret is None:
            raise DeliveryError("the channel has no webhook URL")
        body = orjson.dumps(_slack_body(payload))
        headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
        return await _post(secret, body, headers, allowed_hosts)
    await _check_email_host(channel.config, allowed_hosts)
    subject, text = _headline(payload)
    try:
        await asyncio.to_thread(_send_email, channel.config, secret, subject, text)
    except (OSError, smtplib.SMTPException) as exc:
        raise DeliveryError(f"SMTP: {type(exc).__name__}: {str(exc)[:300]}")
    return None


async def _claim(runtime: Runtime, delivery_id: str, seen: datetime, now: datetime) -> bool:
    async with runtime.db.transaction(write=True) as session:
        claimed = await session.execute(
            update(AlertDelivery)
            .where(
                AlertDelivery.id == delivery_id,
                AlertDelivery.status == "pending",
                AlertDelivery.next_attempt_at == seen,
            )
            .values(next_attempt_at=now + CLAIM_LEASE, attempts=AlertDelivery.attempts + 1)
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(claimed, "rowcount", 0) == 1)


async def _attempt(runtime: Runtime, delivery_id: str) -> None:
    async with runtime.db.transaction() as session:
        delivery = await session.get(AlertDelivery, delivery_id)
        channel = await session.get(AlertChannel, delivery.channel_id) if delivery else None
    if delivery is None:
        return
    status: int | None = None
    error: str | None = None
    if channel is None or not channel.enabled:
        error = "the channel is disabled"
    else:
        try:
            status = await send(channel, delivery, runtime.box, runtime.settings.provider_allowed_hosts)
        except DeliveryError as exc:
            error, status = str(exc), exc.status
        except Exception as exc:  # an SSRF refusal, a secret that no longer decrypts, ...
            error = f"{type(exc).__name__}: {getattr(exc, 'detail', str(exc))}"[:2000]
    now = utcnow()
    async with runtime.db.transaction(write=True) as session:
        row = await session.get(AlertDelivery, delivery_id, with_for_update=True)
        if row is None:
            return
        row.response_status = status
        if error is None:
            row.status, row.sent_at, row.last_error = "sent", now, None
        else:
            row.last_error = error[:2000]
            if row.attempts >= MAX_ATTEMPTS or (channel is not None and not channel.enabled):
                row.status = "failed"
            else:
                row.next_attempt_at = now + RETRY_BASE * 2 ** (row.attempts - 1)
        final = row.status in ("sent", "failed")
        if row.alert_id and final and channel is not None:
            session.add(
                AlertEvent(
                    id=new_id("alert_event"),
                    project_id=row.project_id,
                    alert_id=row.alert_id,
                    kind="notified" if row.status == "sent" else "notify_failed",
                    actor="system",
                    message=(
                        f"{row.event} notification sent to {channel.type} channel {channel.name!r}"
                        if row.status == "sent"
                        else f"{row.event} notification to {channel.name!r} failed after {row.attempts} attempt(s): {error}"
                    )[:2000],
                    data={"deliveryId": row.id, "channelId": channel.id, "attempts": row.attempts},
                    created_at=now,
                )
            )
    if error is not None:
        log.warning("alert_delivery_failed", delivery_id=delivery_id, error=error[:200])


async def deliver_due(runtime: Runtime, now: datetime | None = None, ids: Sequence[str] | None = None) -> int:
    """Send every pending notification whose time has come (or just ``ids``); how many were attempted."""
    at = now or utcnow()
    async with runtime.db.transaction() as session:
        stmt = select(AlertDelivery.id, AlertDelivery.next_attempt_at).where(
            AlertDelivery.status == "pending", AlertDelivery.next_attempt_at <= at
        )
        if ids is not None:
            stmt = stmt.where(AlertDelivery.id.in_(list(ids)))
        due = (await session.execute(stmt.order_by(AlertDelivery.next_attempt_at).limit(100))).all()
    attempted = 0
    for delivery_id, seen in due:
        if await _claim(runtime, delivery_id, seen, at):
            attempted += 1
            await _attempt(runtime, delivery_id)
    return attempted


_background: set[asyncio.Task[int]] = set()


def deliver_soon(runtime: Runtime, ids: Sequence[str]) -> None:
    """Send ``ids`` from a background task of this process (the periodic task retries whatever fails)."""
    if not ids:
        return

    async def run() -> int:
        try:
            return await deliver_due(runtime, ids=list(ids))
        except Exception:  # the periodic task retries; a background failure must not go unnoticed
            log.exception("alert_delivery_background_failed", count=len(ids))
            return 0

    task = asyncio.get_running_loop().create_task(run())
    _background.add(task)
    task.add_done_callback(_background.discard)
