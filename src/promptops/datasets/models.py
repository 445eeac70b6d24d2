"""Datasets, their immutable versions and the test cases of each version."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from promptops.db import Base, JSONType, UTCDateTime, utcnow


class Dataset(Base):
    __tablename__ = "datasets"
    __table_args__ = (UniqueConstraint("project_id", "name"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(String(2000), default="")
    archived: Mapped[bool] = mapped_column(Boolean, default=False)
    latest_version: Mapped[int] = mapped_column(Integer, default=0)
    created_by: Mapped[str | None] = mapped_column(String(40), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class DatasetVersion(Base):
    """An immutable snapshot of a dataset's cases; evaluation runs pin one."""

    __tablename__ = "dataset_versions"
    __table_args__ = (
        UniqueConstraint("dataset_id", "version"),
        Index("ix_dataset_versions_project", "project_id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    dataset_id: Mapped[str] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    case_count: Mapped[int] = mapped_column(Integer, default=0)
    content_hash: Mapped[str] = mapped_column(String(64))
    commit_message: Mapped[str] = mapped_column(String(2000), default="")
    source: Mapped[str] = mapped_column(String(20), default="manual")  # manual | import | runs | edit
    created_by: Mapped[str | None] = mapped_column(String(40), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class DatasetCase(Base):
    """One test case: input variables, the expected output, tags and free metadata.

    ``key`` is stable across versions of the same dataset (given by the user or derived from the
    input), so results of two dataset versions can be matched case by case.
    """

    __tablename__ = "dataset_cases"
    __table_args__ = (
        UniqueConstraint("dataset_version_id", "key"),
        Index("ix_dataset_cases_version_position", "dataset_version_id", "position"),
        Index("ix_dataset_cases_project", "project_id"),
        Index("ix_dataset_cases_subject", "project_id", "subject_id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    dataset_version_id: Mapped[str] = mapped_column(ForeignKey("dataset_versions.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    key: Mapped[str] = mapped_column(String(200))
    input: Mapped[dict] = mapped_column(JSONType, default=dict)  # template variables
    expected: Mapped[str | None] = mapped_column(Text, nullable=True)
    tags: Mapped[list] = mapped_column(JSONType, default=list)
    metadata_: Mapped[dict] = mapped_column("metadata", JSONType, default=dict)
    source_run_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    # the subject a case copied from a sealed run is sealed under (promptops.datasets.sealing); None: plain
    subject_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
