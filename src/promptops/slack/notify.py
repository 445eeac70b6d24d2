"""Project notices in Slack: moves of protected labels and finished evaluations, read from the audit log.

A label is protected when moving it is gated: the project's deployable labels (``settings.deployableLabels``,
default ``production``: moves need ``label:deploy`` and are audited as ``PromptDeployed``) and the labels lint
guards (``settings.lint.blockOnLabels``). Moves of other labels (``canary``, a personal ``try-me``) are not
announced: a channel that hears about every label move stops being read.

The audit chain is the outbox: each project's channel row keeps the last audit sequence number notified. A
round claims the next events by moving that cursor with a compare-and-set before posting, so several
processes (``promptops serve`` workers, ``promptops slack``) never post an event twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Any

from fastapi import FastAPI
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from promptops.auth.principal import Principal
from promptops.db import utcnow
from promptops.governance import audit
from promptops.governance.models import AuditEvent
from promptops.registry import service as registry
from promptops.registry.approvals import rules as approval_rules
from promptops.runtime import Runtime
from promptops.slack import blocks as bk
from promptops.slack.models import SlackChannel

log = logging.getLogger(__name__)

LABEL_MOVES = ("PromptDeployed", "LabelMoved", "RollbackTriggered")
EVALUATED = "PromptEvaluated"
APPROVAL_REQUESTED = "ApprovalRequested"  # with Approve / Reject buttons (slack.handling.handle_interaction)
APPROVE_ACTION = "approval_approve"
REJECT_ACTION = "approval_reject"
BATCH = 20


async def set_channel(
    runtime: Runtime, principal: Principal, channel: str | None, *, team_id: str | None = None
) -> None:
    """Send the project's notices to ``channel`` (of workspace ``team_id``) from now on (None: stop)."""
    async with runtime.db.transaction(write=True) as session:
        row = await session.get(SlackChannel, principal.project_id)
        head = (
            await session.execute(
                select(func.coalesce(func.max(AuditEvent.seq), 0)).where(
                    AuditEvent.project_id == principal.project_id
                )
            )
        ).scalar_one()
        if channel is None:
            if row is not None:
                await session.delete(row)
        elif row is None:
            session.add(
                SlackChannel(
                    project_id=principal.project_id, team_id=team_id, channel=channel, next_seq=head + 1
                )
            )
        else:
            row.team_id, row.channel, row.next_seq = team_id, channel, head + 1
            row.updated_at = utcnow()
        await audit.record(
            session, principal, "slack.notices_set", data={"channel": channel, "teamId": team_id}
        )


async def protected_labels(session: AsyncSession, project_id: str) -> frozenset[str]:
    """The project's protected labels: deployable ones, those lint guards and those gated by approvals (read when
    the notices go out)."""
    lint = await registry.lint_config(session, project_id)
    gated = (await approval_rules.approval_policy(session, project_id)).rules
    return (
        await registry.deployable_labels(session, project_id)
        | frozenset(lint.block_on_labels)
        | frozenset(gated)
    )


def worth_a_notice(event: AuditEvent, protected: frozenset[str]) -> bool:
    """Finished evaluations, and moves (sets, deployments, rollbacks) of protected labels."""
    if event.event_type in (EVALUATED, APPROVAL_REQUESTED):
        return True
    if event.event_type not in LABEL_MOVES:
        return False
    # A deployment was of a deployable label when it happened, even if the settings changed since.
    return event.event_type == "PromptDeployed" or (event.data or {}).get("label") in protected


def approval_notice(event: AuditEvent) -> dict[str, Any]:
    """A new approval request, with buttons that approve or reject it as the clicking user's linked account."""
    data = event.data or {}
    before = f"v{data['baseVersion']}" if data.get("baseVersion") else "none"
    text = (
        f":raising_hand: *{data.get('name')}@{data.get('label')}*: {event.actor_name} asks to move it "
        f"{before} → v{data.get('version')} ({data.get('required')} approval(s) from "
        f"{', '.join(str(r) for r in data.get('roles') or [])})"
        + (f": {bk.escape(str(data['reason']))}" if data.get("reason") else "")
    )
    request_id = str(data.get("requestId", ""))
    buttons = bk.action_buttons(
        ("Approve", APPROVE_ACTION, request_id, "primary"), ("Reject", REJECT_ACTION, request_id, "danger")
    )
    return bk.message(
        text, [bk.section(text), bk.context(f"Request `{request_id}`"), buttons], in_channel=True
    )


def notice(event: AuditEvent) -> dict[str, Any]:
    data = event.data or {}
    if event.event_type == APPROVAL_REQUESTED:
        return approval_notice(event)
    if event.event_type == EVALUATED:
        text = (
            f":bar_chart: Evaluation finished for `{data.get('promptId')}`: pass rate "
            f"{float(data.get('passRate') or 0):.0%}, mean score {float(data.get('evalScore') or 0):.2f} "
            f"({data.get('feedback', '')})"
        )
    else:
        verb = {"PromptDeployed": "deployed", "RollbackTriggered": "rolled back", "LabelMoved": "moved"}
        before = f"v{data['previousVersion']}" if data.get("previousVersion") else "none"
        text = (
            f":label: *{data.get('name')}@{data.get('label')}* {verb[event.event_type]}: "
            f"{before} → v{data.get('version')} by {event.actor_name}"
            + (f" ({bk.escape(str(data['reason']))})" if data.get("reason") else "")
        )
    return bk.message(text, [bk.section(text)], in_channel=True)


async def notify_once(runtime: Runtime, post: Any) -> int:
    """Post the next notices of every project with a channel; returns how many were posted."""
    posted = 0
    async with runtime.db.transaction() as session:
        channels = list((await session.execute(select(SlackChannel))).scalars())
    for row in channels:
        async with runtime.db.transaction(write=True) as session:
            events = list(
                (
                    await session.execute(
                        select(AuditEvent)
                        .where(AuditEvent.project_id == row.project_id, AuditEvent.seq >= row.next_seq)
                        .order_by(AuditEvent.seq)
                        .limit(BATCH)
                    )
                ).scalars()
            )
            if not events:
                continue
            protected = await protected_labels(session, row.project_id)
            claimed = await session.execute(
                update(SlackChannel)
                .where(SlackChannel.project_id == row.project_id, SlackChannel.next_seq == row.next_seq)
                .values(next_seq=events[-1].seq + 1)
            )
            if claimed.rowcount != 1:  # type: ignore[attr-defined]  # another process took these
                continue
        for event in events:
            if worth_a_notice(event, protected):
                try:
                    await post(runtime, row.channel, notice(event))
                    posted += 1
                except Exception as exc:  # a notice is best-effort; the next ones still go out
                    log.warning("slack notice to %s failed: %s", row.channel, type(exc).__name__)
    return posted


async def _loop(runtime: Runtime, post: Any, interval: float) -> None:
    while True:
        try:
            await notify_once(runtime, post)
        except Exception as exc:  # keep notifying after a database hiccup
            log.warning("slack notices failed: %s", type(exc).__name__)
        await asyncio.sleep(interval)


def notices_lifespan(post: Any) -> Any:
    """A router lifespan running the notifier while the app runs (when a bot token and an interval are set)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime: Runtime = app.state.runtime
        interval = runtime.settings.slack_notify_interval_seconds
        if not runtime.settings.slack_bot_token or interval <= 0:
            yield
            return
        task = asyncio.create_task(_loop(runtime, post, interval))
        try:
            yield
        finally:
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task

    return lifespan
