"""One data key per data subject, wrapped by the master key; erasing a subject destroys its key."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from promptops.db import Base, UTCDateTime, utcnow


class SubjectKey(Base):
    """A data subject's key: a user (``usr_...``, any project) or an end user of one project (``eus_...``).

    ``wrapped_key`` is the subject's AES-256 key sealed by the master key (:class:`promptops.crypto.SecretBox`);
    erasure sets it to NULL (the key is gone, so is every ciphertext made with it). ``generation`` grows when a
    subject seen again after erasure gets a fresh key: data sealed under an earlier generation stays unreadable.
    """

    __tablename__ = "privacy_subject_keys"
    __table_args__ = (Index("ix_privacy_subject_keys_project", "project_id"),)

    subject_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    kind: Mapped[str] = mapped_column(String(10))  # user | end_user | system
    project_id: Mapped[str | None] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), nullable=True
    )
    generation: Mapped[int] = mapped_column(Integer, default=1)
    wrapped_key: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    erased_by: Mapped[str | None] = mapped_column(String(40), nullable=True)
