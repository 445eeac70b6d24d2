"""Slack tables: users linked to PromptOps accounts, pending one-time link codes, events already handled."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from promptops.db import Base, UTCDateTime, utcnow


class SlackLink(Base):
    """A Slack user (of one workspace) acting as a PromptOps user in one project."""

    __tablename__ = "slack_links"

    team_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    slack_user_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class SlackLinkCode(Base):
    """A one-time code answered by ``/prompt login``; only its SHA-256 digest is stored."""

    __tablename__ = "slack_link_codes"

    code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    team_id: Mapped[str] = mapped_column(String(32))
    slack_user_id: Mapped[str] = mapped_column(String(32))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())


class SlackEvent(Base):
    """An Events API event already handled: Slack's retries of the same event id are acknowledged, not redone."""

    __tablename__ = "slack_events"

    event_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)


class SlackChannel(Base):
    """Where a project's notices go, and the next audit sequence number to look at (the cursor).

    ``team_id`` is the workspace the channel belongs to (where ``/prompt notify`` was typed): a project that posts
    its notices into a workspace also lets that workspace's unlinked users search its prompts (as a Viewer).
    """

    __tablename__ = "slack_channels"

    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True)
    team_id: Mapped[str | None] = mapped_column(String(32), index=True)
    channel: Mapped[str] = mapped_column(String(100))
    next_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
