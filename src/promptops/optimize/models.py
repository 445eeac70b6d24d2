"""Optimization jobs and every candidate they evaluated (the trajectory report)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from promptops.db import Base, JSONType, UTCDateTime, utcnow


class Optimization(Base):
    __tablename__ = "optimizations"
    __table_args__ = (
        Index("ix_optimizations_project_created", "project_id", "created_at"),
        Index("ix_optimizations_status", "status"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    prompt_id: Mapped[str] = mapped_column(String(40))
    base_version_id: Mapped[str] = mapped_column(String(40))
    dataset_version_id: Mapped[str] = mapped_column(String(40))
    spec: Mapped[dict] = mapped_column(JSONType)  # budget, target, scorers, splits, seed, promote
    status: Mapped[str] = mapped_column(String(12), default="queued")
    calls_used: Mapped[int] = mapped_column(Integer, default=0)
    best_candidate_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    winner_version_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    report: Mapped[dict] = mapped_column(JSONType, default=dict)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    error: Mapped[str | None] = mapped_column(String(2000), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    worker_id: Mapped[str | None] = mapped_column(String(80), nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_by: Mapped[str | None] = mapped_column(String(40), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class OptimizationCandidate(Base):
    __tablename__ = "optimization_candidates"
    __table_args__ = (Index("ix_optimization_candidates_opt", "optimization_id", "round"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    optimization_id: Mapped[str] = mapped_column(ForeignKey("optimizations.id", ondelete="CASCADE"))
    round: Mapped[int] = mapped_column(Integer)
    strategy: Mapped[str] = mapped_column(String(60))
    template: Mapped[str] = mapped_column(Text)
    parent_candidate_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    train_score: Mapped[float | None] = mapped_column(Float, nullable=True)
    val_score: Mapped[float | None] = mapped_column(Float, nullable=True)
    calls: Mapped[int] = mapped_column(Integer, default=0)
    details: Mapped[dict] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
