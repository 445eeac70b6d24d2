"""Optimization jobs and every candidate they evaluated (the trajectory report)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from promptops.db import Base, JSONType, UTCDateTime, utcnow
from promptops.jobs.lifecycle import JobRow
from promptops.optimize.schemas import OptimizationSpec


class Optimization(JobRow[OptimizationSpec], Base):
    """A durable job: search for a better version of one prompt on one pinned dataset version.

    ``spec`` (an :class:`OptimizationSpec`) holds the budget, target, scorers, splits, seed and promotion;
    ``report`` the live progress and the final verdict. Status, cancellation and worker bookkeeping:
    :class:`promptops.jobs.lifecycle.JobRow`.
    """

    __tablename__ = "optimizations"
    spec_type = OptimizationSpec

    prompt_id: Mapped[str] = mapped_column(String(40))
    base_version_id: Mapped[str] = mapped_column(String(40))
    dataset_version_id: Mapped[str] = mapped_column(String(40))
    calls_used: Mapped[int] = mapped_column(Integer, default=0)
    best_candidate_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    winner_version_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    report: Mapped[dict] = mapped_column(JSONType, default=dict)


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
