"""Regression schedules (a cron expression per prompt label) and the history of their runs."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from promptops.db import Base, JSONType, UTCDateTime, utcnow


class EvalSchedule(Base):
    """Re-run ``dataset_version_id`` (pinned) with ``scorers`` against whatever version ``prompt_id@label``
    points at when the cron expression (in ``timezone``) comes due; compare with ``baseline_eval_run_id``, the
    last good run. ``next_run_at`` is NULL while disabled; the periodic task claims a due row by moving it
    forward with a conditional UPDATE (``WHERE next_run_at = :seen``), so two replicas never both run it."""

    __tablename__ = "eval_schedules"
    __table_args__ = (
        Index("ix_eval_schedules_project_created", "project_id", "created_at"),
        Index("ix_eval_schedules_next_run", "next_run_at"),
        Index("ix_eval_schedules_project_name", "project_id", "name", unique=True),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    prompt_id: Mapped[str] = mapped_column(String(40))
    prompt_name: Mapped[str] = mapped_column(String(200))
    label: Mapped[str] = mapped_column(String(63))
    cron: Mapped[str] = mapped_column(String(120))
    timezone: Mapped[str] = mapped_column(String(64))
    dataset_id: Mapped[str] = mapped_column(String(40))
    dataset_name: Mapped[str] = mapped_column(String(200))
    dataset_version_id: Mapped[str] = mapped_column(String(40))
    dataset_version: Mapped[int] = mapped_column(Integer)
    scorers: Mapped[list] = mapped_column(JSONType, default=list)  # ScorerSpec dicts (camelCase)
    models: Mapped[list] = mapped_column(
        JSONType, default=list
    )  # ModelTarget dicts; [] = the version's model
    pass_threshold: Mapped[float] = mapped_column(Float, default=1.0)
    alpha: Mapped[float] = mapped_column(Float, default=0.05)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    next_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    baseline_eval_run_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    principal: Mapped[dict] = mapped_column(JSONType, default=dict)  # who the runs act as (JobPrincipal)
    created_by: Mapped[str | None] = mapped_column(String(40), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class EvalScheduleRun(Base):
    """One firing of a schedule: ``running`` while its evaluation works, then ``baseline`` (the first good
    run), ``pass``, ``regressed`` (significantly worse than the baseline; ``comparison`` holds the paired
    statistics) or ``failed`` (the evaluation could not be queued or did not complete)."""

    __tablename__ = "eval_schedule_runs"
    __table_args__ = (
        Index("ix_eval_schedule_runs_schedule", "schedule_id", "id"),
        Index("ix_eval_schedule_runs_status", "status"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    schedule_id: Mapped[str] = mapped_column(ForeignKey("eval_schedules.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(12))
    scheduled_for: Mapped[datetime] = mapped_column(UTCDateTime())
    eval_run_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    version_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    baseline_eval_run_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    pass_rate: Mapped[float | None] = mapped_column(Float, nullable=True)
    mean_score: Mapped[float | None] = mapped_column(Float, nullable=True)
    comparison: Mapped[dict | None] = mapped_column(JSONType, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
