"""Monitoring tables: online-evaluation configs, the sampled runs they score, and the per-version score rollup."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from promptops.db import Base, JSONType, UTCDateTime, utcnow


class OnlineEvalConfig(Base):
    """Which production runs are scored after the fact, and how.

    ``prompt_id`` ``""`` is the project-wide default; a prompt's own config (optionally for one ``label``,
    ``""`` = every version) overrides it for that prompt's runs. ``scanned_until`` is the sampler's watermark:
    runs created before it were considered. ``principal`` is who last changed the config (the scoring job acts
    as them, so judge calls are attributed and limited like theirs).
    """

    __tablename__ = "monitoring_online_configs"
    __table_args__ = (
        Index("ix_monitoring_online_configs_key", "project_id", "prompt_id", "label", unique=True),
        Index("ix_monitoring_online_configs_enabled", "enabled"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    prompt_id: Mapped[str] = mapped_column(String(40), default="")
    prompt_name: Mapped[str] = mapped_column(String(200), default="")
    label: Mapped[str] = mapped_column(String(64), default="")
    sample_rate: Mapped[float] = mapped_column(Float)
    scorers: Mapped[list] = mapped_column(JSONType, default=list)  # ScorerSpec dicts (camelCase)
    pass_threshold: Mapped[float] = mapped_column(Float, default=1.0)
    sources: Mapped[list] = mapped_column(JSONType, default=list)  # run sources sampled
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    principal: Mapped[dict] = mapped_column(JSONType, default=dict)
    scanned_until: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str | None] = mapped_column(String(40), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class OnlineEval(Base):
    """One sampled run: pending until the ``online_eval`` job scores it (done) or gives up on it (failed)."""

    __tablename__ = "monitoring_online_evals"
    __table_args__ = (
        Index("ix_monitoring_online_evals_run", "project_id", "run_id", unique=True),
        Index("ix_monitoring_online_evals_status", "status", "project_id"),
        Index("ix_monitoring_online_evals_prompt_time", "project_id", "prompt_id", "run_created_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    config_id: Mapped[str] = mapped_column(String(40))
    run_id: Mapped[str] = mapped_column(String(40))
    prompt_id: Mapped[str] = mapped_column(String(40))
    version_id: Mapped[str] = mapped_column(String(40), default="")
    run_created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(10), default="pending")  # pending | done | failed
    score: Mapped[float | None] = mapped_column(Float, nullable=True)
    passed: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    scores: Mapped[list] = mapped_column(JSONType, default=list)  # one ScorerResult dict per scorer
    error: Mapped[str | None] = mapped_column(String(2000), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    scored_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class OnlineEvalRollup(Base):
    """Additive sums of scored samples per (project, grain, bucket, prompt, version), bucketed by the time of the
    run (not of the scoring), so the pass rate lines up with the runs rollup. Same keys and arithmetic as
    ``run_rollups``: ``grain`` 1 or 24 hours, ``bucket`` the first hour since the epoch."""

    __tablename__ = "monitoring_online_rollups"

    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True)
    grain: Mapped[int] = mapped_column(Integer, primary_key=True)
    bucket: Mapped[int] = mapped_column(Integer, primary_key=True)
    prompt_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    version_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    scored: Mapped[int] = mapped_column(Integer, default=0)
    passed: Mapped[int] = mapped_column(Integer, default=0)
    score_sum: Mapped[float] = mapped_column(Float, default=0.0)
    failed: Mapped[int] = mapped_column(Integer, default=0)  # samples the scorers could not score
