"""Slack identity and bookkeeping: one-time link codes, linked users (their principal), what an unlinked user of
a workspace may read, handled events."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from promptops.auth.models import User
from promptops.auth.principal import Principal
from promptops.auth.service import user_principal
from promptops.db import Database, utcnow
from promptops.errors import NotFound, ValidationProblem
from promptops.governance import audit
from promptops.governance.rbac import Role
from promptops.slack.models import SlackChannel, SlackEvent, SlackLink, SlackLinkCode
from promptops.tenancy.models import Project

CODE_TTL = timedelta(minutes=10)
EVENT_MEMORY = timedelta(days=1)  # Slack retries within minutes; older event ids are forgotten


def _digest(code: str) -> str:
    return hashlib.sha256(code.strip().upper().encode()).hexdigest()


async def new_link_code(db: Database, team_id: str, slack_user_id: str) -> str:
    """A one-time code (shown to the Slack user only) that links them once entered in PromptOps."""
    code = "-".join(secrets.token_hex(3).upper() for _ in range(2))
    async with db.transaction(write=True) as session:
        await session.execute(delete(SlackLinkCode).where(SlackLinkCode.expires_at <= utcnow()))
        session.add(
            SlackLinkCode(
                code_hash=_digest(code),
                team_id=team_id,
                slack_user_id=slack_user_id,
                expires_at=utcnow() + CODE_TTL,
            )
        )
    return code


async def redeem_code(session: AsyncSession, principal: Principal, code: str) -> SlackLink:
    """Link the code's Slack user to the calling PromptOps user in the calling project (the code is spent)."""
    if principal.user_id is None:
        raise ValidationProblem(
            "Link Slack with a user's session or personal login, not an API key", code="slack_link_needs_user"
        )
    pending = await session.get(SlackLinkCode, _digest(code))
    if pending is None or pending.expires_at <= utcnow():
        raise NotFound("This code is unknown or expired; run /prompt login again", code="slack_code_invalid")
    await session.delete(pending)
    link = await session.get(SlackLink, (pending.team_id, pending.slack_user_id))
    if link is None:
        link = SlackLink(team_id=pending.team_id, slack_user_id=pending.slack_user_id)
        session.add(link)
    link.user_id = principal.user_id
    link.project_id = principal.project_id
    link.created_at = utcnow()
    await session.flush()
    await audit.record(
        session,
        principal,
        "slack.linked",
        data={"teamId": link.team_id, "slackUserId": link.slack_user_id, "userId": link.user_id},
    )
    return link


async def links_of_user(session: AsyncSession, principal: Principal) -> list[SlackLink]:
    stmt = select(SlackLink).where(
        SlackLink.user_id == principal.user_id, SlackLink.project_id == principal.project_id
    )
    return list((await session.execute(stmt.order_by(SlackLink.created_at))).scalars())


async def unlink(session: AsyncSession, principal: Principal, team_id: str, slack_user_id: str) -> None:
    link = await session.get(SlackLink, (team_id, slack_user_id))
    if link is None or link.user_id != principal.user_id or link.project_id != principal.project_id:
        raise NotFound("No such Slack link of yours in this project", code="slack_link_not_found")
    await session.delete(link)
    await audit.record(
        session, principal, "slack.unlinked", data={"teamId": team_id, "slackUserId": slack_user_id}
    )


async def principal_of(db: Database, team_id: str, slack_user_id: str) -> Principal | None:
    """The linked user's principal in the linked project (their current role there), or None when unlinked."""
    async with db.transaction() as session:
        link = await session.get(SlackLink, (team_id, slack_user_id))
        if link is None:
            return None
        user = await session.get(User, link.user_id)
        if user is None or not user.is_active:
            return None
        try:
            return await user_principal(session, user, link.project_id)
        except NotFound:
            return None  # no longer a member of that project


async def workspace_readers(db: Database, team_id: str, slack_user_id: str) -> list[tuple[str, Principal]]:
    """For an unlinked Slack user: a Viewer principal (the lowest role) in each project that shares itself with
    the workspace ``team_id`` by posting its notices there (``/prompt notify``), with the project's name."""
    async with db.transaction() as session:
        rows = (
            await session.execute(
                select(Project.id, Project.name, Project.org_id)
                .join(SlackChannel, SlackChannel.project_id == Project.id)
                .where(SlackChannel.team_id == team_id)
                .order_by(Project.name, Project.id)
            )
        ).all()
    who = f"slack:{team_id}/{slack_user_id}"
    return [
        (name, Principal(kind="user", id=who, name=who, project_id=pid, org_id=org, role=Role.VIEWER))
        for pid, name, org in rows
    ]


async def first_time(db: Database, event_id: str) -> bool:
    """Remember ``event_id``; False when it was handled already (a retry)."""
    try:
        async with db.transaction(write=True) as session:
            await session.execute(delete(SlackEvent).where(SlackEvent.received_at <= utcnow() - EVENT_MEMORY))
            session.add(SlackEvent(event_id=event_id))
            await session.flush()
    except IntegrityError:
        return False
    return True
