"""Feedback records (on prompt versions, single runs or evaluation results) and annotation items."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from promptops.db import Base, JSONType, UTCDateTime, utcnow


class Feedback(Base):
    __tablename__ = "feedback"
    __table_args__ = (
        Index("ix_feedback_project_version", "project_id", "version_id"),
        Index("ix_feedback_project_created", "project_id", "created_at"),
        Index("ix_feedback_run", "run_id"),
        Index("ix_feedback_project_subject", "project_id", "subject_id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    prompt_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    version_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    run_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    eval_result_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    # the "user" of the seed's FeedbackPayload (who the feedback is from, as given); actor_id is who sent it.
    # ``user`` and ``notes`` are sealed under the key of ``subject_id`` (promptops.personal.vault): the end
    # user named by ``user``, else the acting user.
    user: Mapped[str] = mapped_column(Text, default="")
    subject_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    actor_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    source: Mapped[str] = mapped_column(String(20), default="human")  # human | automated | annotation
    score: Mapped[float | None] = mapped_column(Float, nullable=True)  # 1-5 rubric scale
    thumbs: Mapped[int | None] = mapped_column(Integer, nullable=True)  # +1 / -1
    rubric: Mapped[dict] = mapped_column(JSONType, default=dict)  # criterion -> 1-5
    tags: Mapped[list] = mapped_column(JSONType, default=list)
    notes: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class AnnotationItem(Base):
    """A run or evaluation result waiting for a QA rating: pending -> claimed -> done | skipped."""

    __tablename__ = "annotation_items"
    __table_args__ = (Index("ix_annotation_items_project_status", "project_id", "status", "created_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    queue: Mapped[str] = mapped_column(String(64), default="default")
    run_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    eval_result_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    prompt_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    version_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    status: Mapped[str] = mapped_column(String(10), default="pending")
    claimed_by: Mapped[str | None] = mapped_column(String(40), nullable=True)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    feedback_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    skip_reason: Mapped[str] = mapped_column(String(2000), default="")
    created_by: Mapped[str | None] = mapped_column(String(40), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
