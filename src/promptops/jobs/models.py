"""The scheduler's table: one row per periodic task, its next due time and the lease of the process running it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from promptops.db import Base, UTCDateTime


class PeriodicTaskRow(Base):
    """A periodic task's schedule state, shared by every process of an installation.

    A process runs a task only after it moved ``next_due_at`` forward and took the lease in one conditional
    UPDATE, so two replicas never run the same period twice. ``lease_until`` lets another process take over a
    run whose process died mid-way (after the lease expired).
    """

    __tablename__ = "periodic_tasks"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    next_due_at: Mapped[datetime] = mapped_column(UTCDateTime())
    lease_owner: Mapped[str | None] = mapped_column(String(120))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)
    runs: Mapped[int] = mapped_column(default=0)
    failures: Mapped[int] = mapped_column(default=0)
