"""Approval requests for label moves on labels a project gates, and the reviewers' decisions on them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from promptops.db import Base, JSONType, UTCDateTime, utcnow


class ApprovalRequest(Base):
    """A label move waiting for reviewers: point ``label`` of a prompt at ``version_id``.

    ``status``: open -> applied (the rule was met and the label moved) | rejected | superseded (a newer request
    for the same label) | cancelled (by its requester or an admin) | overridden (an admin moved it with a note).
    ``open_key`` is ``prompt_id:label`` while open, else NULL; its unique index keeps one open request per
    (prompt, label) on both databases. The rule (approvals needed, roles that count) is copied in at request
    time, so changing the settings later does not change what an open request needs.
    """

    __tablename__ = "approval_requests"
    __table_args__ = (
        Index("ix_approval_requests_project_status", "project_id", "status", "created_at"),
        Index("ix_approval_requests_open_key", "open_key", unique=True),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    prompt_id: Mapped[str] = mapped_column(ForeignKey("prompts.id", ondelete="CASCADE"), index=True)
    prompt_name: Mapped[str] = mapped_column(String(200))
    label: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(20))  # set | rollback
    version_id: Mapped[str] = mapped_column(ForeignKey("prompt_versions.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    # The version on the label when the request was made (None: the label did not exist yet).
    base_version_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    base_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    reason: Mapped[str] = mapped_column(String(2000), default="")
    status: Mapped[str] = mapped_column(String(12))
    open_key: Mapped[str | None] = mapped_column(String(110), nullable=True)
    required: Mapped[int] = mapped_column(Integer)
    roles: Mapped[list] = mapped_column(JSONType, default=list)
    # Who asked (a user id or an API key id) and who wrote the version: neither may approve it.
    requested_by: Mapped[str] = mapped_column(String(40))
    requested_by_name: Mapped[str] = mapped_column(String(300))
    author_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    superseded_by: Mapped[str | None] = mapped_column(String(40), nullable=True)
    resolved_by: Mapped[str | None] = mapped_column(String(40), nullable=True)
    resolved_by_name: Mapped[str | None] = mapped_column(String(300), nullable=True)
    resolution_note: Mapped[str] = mapped_column(String(2000), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class ApprovalDecision(Base):
    """One reviewer's approval or rejection of a request, with a comment; one per reviewer."""

    __tablename__ = "approval_decisions"
    __table_args__ = (UniqueConstraint("request_id", "reviewer_id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    request_id: Mapped[str] = mapped_column(ForeignKey("approval_requests.id", ondelete="CASCADE"))
    decision: Mapped[str] = mapped_column(String(10))  # approve | reject
    reviewer_id: Mapped[str] = mapped_column(String(40))  # a user id or an API key id
    reviewer_name: Mapped[str] = mapped_column(String(300))
    reviewer_role: Mapped[str] = mapped_column(String(40))
    comment: Mapped[str] = mapped_column(String(2000), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
