"""Retention policies: how long a project keeps its runs and its feedback."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from promptops.db import Base, UTCDateTime, utcnow


class RetentionPolicy(Base):
    """Per project: delete runs / feedback older than N days (NULL: keep them). Applied by the periodic task
    ``privacy.retention``; every application appends a ``RetentionApplied`` audit event with the counts."""

    __tablename__ = "privacy_retention_policies"

    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True)
    runs_days: Mapped[int | None] = mapped_column(Integer, nullable=True)
    feedback_days: Mapped[int | None] = mapped_column(Integer, nullable=True)
    updated_by: Mapped[str | None] = mapped_column(String(40), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_applied_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
