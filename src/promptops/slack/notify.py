"""Project notices in Slack: label moves and finished evaluations, read from the audit log.

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

from promptops.auth.principal import Principal
from promptops.governance import audit
from promptops.governance.models import AuditEvent
from promptops.runtime import Runtime
from promptops.slack import blocks as bk
from promptops.slack.models import SlackChannel

log = logging.getLogger(__name__)

NOTICE_TYPES = ("PromptDeployed", "LabelMoved", "RollbackTriggered", "PromptEvaluated")
BATCH = 20


async def set_channel(runtime: Runtime, principal: Principal, channel: str | None) -> None:
    """Send the project's notices to ``channel`` from now on (None: stop)."""
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
            session.add(SlackChannel(project_id=principal.project_id, channel=channel, next_seq=head + 1))
        else:
            row.channel, row.next_seq = channel, head + 1
        await audit.record(session, principal, "slack.notices_set", data={"channel": channel})


def notice(event: AuditEvent) -> dict[str, Any]:
    data = event.data or {}
    if event.event_type == "PromptEvaluated":
        text = (
            f":bar_chart: Evaluation finished for `{data.get('promptId')}`: pass rate "
            f"{float(data.get('passRate') or 0):.0%}, mean score {float(data.get('evalScore') or 0):.2f} "
            f"({data.get('feedback', '')})"
        )
    else:
        verb = {"PromptDeployed": "deployed", "RollbackTriggered": "rolled back", "LabelMoved": "moved"}
        text = (
            f":label: *{data.get('name')}@{data.get('label')}* {verb[event.event_type]}: "
            f"v{data.get('previousVersion') or 'none'} → v{data.get('version')} by {event.actor_name}"
            + (f" ({data['reason']})" if data.get("reason") else "")
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
            claimed = await session.execute(
                update(SlackChannel)
                .where(SlackChannel.project_id == row.project_id, SlackChannel.next_seq == row.next_seq)
                .values(next_seq=events[-1].seq + 1)
            )
            if claimed.rowcount != 1:  # type: ignore[attr-defined]  # another process took these
                continue
        for event in events:
            if event.event_type in NOTICE_TYPES:
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
