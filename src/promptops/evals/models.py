"""Evaluation runs and the result of every (case, prompt version, model) cell."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from promptops.db import Base, JSONType, UTCDateTime, utcnow
from promptops.evals.schemas import EvalRunSpec
from promptops.jobs.lifecycle import JobRow


class EvalRun(JobRow[EvalRunSpec], Base):
    """A durable job: prompt versions x model targets x one pinned dataset version.

    ``spec`` (an :class:`EvalRunSpec`) holds what to run (versions, targets, scorers, concurrency, cache);
    ``summary`` the aggregates per (version, target) once cells complete. A restart resumes the cells
    without a result. Status, cancellation and worker bookkeeping: :class:`promptops.jobs.lifecycle.JobRow`.
    """

    __tablename__ = "eval_runs"
    spec_type = EvalRunSpec

    name: Mapped[str] = mapped_column(String(200), default="")
    dataset_id: Mapped[str | None] = mapped_column(
        ForeignKey("datasets.id", ondelete="SET NULL"), nullable=True
    )
    dataset_version_id: Mapped[str | None] = mapped_column(
        ForeignKey("dataset_versions.id", ondelete="SET NULL"), nullable=True
    )
    total_cells: Mapped[int] = mapped_column(Integer, default=0)
    done_cells: Mapped[int] = mapped_column(Integer, default=0)
    error_cells: Mapped[int] = mapped_column(Integer, default=0)
    summary: Mapped[dict] = mapped_column(JSONType, default=dict)


class EvalRunPrompt(Base):
    """One prompt an evaluation run covers (a run evaluates versions of one or more prompts).

    The same prompt ids are in ````EvalRun.spec_model.versions````; this table lets runs be listed by prompt in SQL,
    newest first, through ``ix_eval_run_prompts_project_prompt``. Written with the run, never changed.
    """

    __tablename__ = "eval_run_prompts"
    __table_args__ = (Index("ix_eval_run_prompts_project_prompt", "project_id", "prompt_id", "eval_run_id"),)

    eval_run_id: Mapped[str] = mapped_column(ForeignKey("eval_runs.id", ondelete="CASCADE"), primary_key=True)
    prompt_id: Mapped[str] = mapped_column(ForeignKey("prompts.id", ondelete="CASCADE"), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))


class EvalResult(Base):
    """The outcome of one cell, stored as soon as it completes (what makes a run resumable)."""

    __tablename__ = "eval_results"
    __table_args__ = (
        UniqueConstraint("eval_run_id", "case_id", "version_id", "target_index"),
        Index("ix_eval_results_run_version", "eval_run_id", "version_id", "target_index"),
        Index("ix_eval_results_project_version", "project_id", "version_id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    eval_run_id: Mapped[str] = mapped_column(ForeignKey("eval_runs.id", ondelete="CASCADE"))
    case_id: Mapped[str] = mapped_column(String(40))
    case_key: Mapped[str] = mapped_column(String(200))
    version_id: Mapped[str] = mapped_column(String(40))
    target_index: Mapped[int] = mapped_column(Integer)
    target: Mapped[str] = mapped_column(String(300))  # provider/model
    output: Mapped[str | None] = mapped_column(Text, nullable=True)
    scores: Mapped[list] = mapped_column(JSONType, default=list)  # one entry per scorer
    score: Mapped[float] = mapped_column(Float, default=0.0)  # weighted case score in [0, 1]
    passed: Mapped[bool] = mapped_column(Boolean, default=False)
    latency_ms: Mapped[float] = mapped_column(Float, default=0.0)
    input_tokens: Mapped[int] = mapped_column(Integer, default=0)
    output_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cost_usd: Mapped[float] = mapped_column(Float, default=0.0)
    cached: Mapped[bool] = mapped_column(Boolean, default=False)
    error_class: Mapped[str | None] = mapped_column(String(60), nullable=True)
    error_message: Mapped[str | None] = mapped_column(String(2000), nullable=True)
    run_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
