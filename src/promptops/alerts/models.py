"""Alert rules, alerts (one open per rule and subject) with their events, channels and the delivery log."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from promptops.db import Base, JSONType, UTCDateTime, utcnow


class AlertRule(Base):
    """What to watch: ``kind`` threshold | drift | regression | experiment_guardrail with its ``params``,
    optionally narrowed to a prompt (and label); ``channel_ids`` are notified when an alert opens or resolves."""

    __tablename__ = "alert_rules"
    __table_args__ = (Index("ix_alert_rules_project_name", "project_id", "name", unique=True),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    kind: Mapped[str] = mapped_column(String(24))
    severity: Mapped[str] = mapped_column(String(10), default="warning")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    prompt_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    label: Mapped[str | None] = mapped_column(String(63), nullable=True)
    params: Mapped[dict] = mapped_column(JSONType, default=dict)
    channel_ids: Mapped[list] = mapped_column(JSONType, default=list)
    last_evaluated_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_error: Mapped[str | None] = mapped_column(String(2000), nullable=True)
    created_by: Mapped[str | None] = mapped_column(String(40), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Alert(Base):
    """One incident of a rule on one subject (``prompt@label``, a schedule, an experiment arm).

    ``open_key`` is ``rule_id|subject`` while the alert is open or acknowledged and NULL once resolved: its
    unique index keeps one open alert per rule and subject on both databases. A repeated firing increments
    ``count`` and moves ``last_seen_at``; the condition clearing resolves it (``resolution`` auto)."""

    __tablename__ = "alerts"
    __table_args__ = (
        Index("ix_alerts_open_key", "open_key", unique=True),
        Index("ix_alerts_project_status", "project_id", "status", "id"),
        Index("ix_alerts_rule", "rule_id", "id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    rule_id: Mapped[str] = mapped_column(ForeignKey("alert_rules.id", ondelete="CASCADE"))
    rule_name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(24))
    severity: Mapped[str] = mapped_column(String(10))
    subject: Mapped[str] = mapped_column(String(300))
    open_key: Mapped[str | None] = mapped_column(String(400), nullable=True)
    status: Mapped[str] = mapped_column(String(12), default="open")  # open | acknowledged | resolved
    title: Mapped[str] = mapped_column(String(500))
    summary: Mapped[str] = mapped_column(Text, default="")
    prompt_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    details: Mapped[dict] = mapped_column(JSONType, default=dict)
    count: Mapped[int] = mapped_column(Integer, default=1)
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    acknowledged_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    resolved_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    resolution: Mapped[str | None] = mapped_column(String(10), nullable=True)  # auto | manual
    annotation_queue: Mapped[str | None] = mapped_column(String(64), nullable=True)


class AlertEvent(Base):
    """The history of an alert: fired, acknowledged, resolved, notified, notify_failed, review_queued."""

    __tablename__ = "alert_events"
    __table_args__ = (Index("ix_alert_events_alert", "alert_id", "id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    alert_id: Mapped[str] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(20))
    actor: Mapped[str] = mapped_column(String(200))
    message: Mapped[str] = mapped_column(String(2000), default="")
    data: Mapped[dict] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class AlertChannel(Base):
    """Where notifications go: a generic webhook (HMAC-signed JSON), a Slack incoming webhook or email (SMTP).

    ``config`` holds what may be shown (webhook URL, SMTP host/port/from/to/user); ``secret_ciphertext`` the
    secret, encrypted with the server's SecretBox: the webhook signing secret, the whole Slack webhook URL (its
    path is the credential) or the SMTP password."""

    __tablename__ = "alert_channels"
    __table_args__ = (Index("ix_alert_channels_project_name", "project_id", "name", unique=True),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    type: Mapped[str] = mapped_column(String(10))  # webhook | slack | email
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    config: Mapped[dict] = mapped_column(JSONType, default=dict)
    secret_ciphertext: Mapped[str | None] = mapped_column(Text, nullable=True)
    secret_hint: Mapped[str | None] = mapped_column(String(80), nullable=True)
    created_by: Mapped[str | None] = mapped_column(String(40), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class AlertDelivery(Base):
    """One notification to one channel, sent off the request path with retries: ``pending`` (``next_attempt_at``
    is when it may be tried; a sender claims it by moving that forward), then ``sent`` or ``failed``."""

    __tablename__ = "alert_deliveries"
    __table_args__ = (
        Index("ix_alert_deliveries_due", "status", "next_attempt_at"),
        Index("ix_alert_deliveries_channel", "channel_id", "id"),
        Index("ix_alert_deliveries_alert", "alert_id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    channel_id: Mapped[str] = mapped_column(ForeignKey("alert_channels.id", ondelete="CASCADE"))
    alert_id: Mapped[str | None] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"), nullable=True)
    event: Mapped[str] = mapped_column(String(12))  # fired | resolved | test
    status: Mapped[str] = mapped_column(String(10), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    payload: Mapped[dict] = mapped_column(JSONType, default=dict)
    response_status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_error: Mapped[str | None] = mapped_column(String(2000), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
