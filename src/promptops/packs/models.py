"""Template pack imports and the provenance of every version a pack import created."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from promptops.db import Base, JSONType, UTCDateTime, utcnow


class PackImport(Base):
    """One import of a pack into a project (what it was, who signed it, what the import did)."""

    __tablename__ = "pack_imports"
    __table_args__ = (Index("ix_pack_imports_project_created", "project_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    pack_name: Mapped[str] = mapped_column(String(100))
    pack_version: Mapped[str] = mapped_column(String(40))
    signer_key_id: Mapped[str] = mapped_column(String(40))
    content_hash: Mapped[str] = mapped_column(String(64))
    on_conflict: Mapped[str] = mapped_column(String(20))
    counts: Mapped[dict] = mapped_column(JSONType, default=dict)
    created_by: Mapped[str | None] = mapped_column(String(40), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class PackProvenance(Base):
    """Where an imported prompt version (or dataset version) came from: pack, version, signer and item hash."""

    __tablename__ = "pack_provenance"
    __table_args__ = (Index("ix_pack_provenance_project_pack", "project_id", "pack_name"),)

    target_id: Mapped[str] = mapped_column(String(40), primary_key=True)  # ver_... or dsv_...
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    import_id: Mapped[str] = mapped_column(ForeignKey("pack_imports.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(10))  # prompt | dataset
    item_name: Mapped[str] = mapped_column(String(200))
    item_hash: Mapped[str] = mapped_column(String(64))
    pack_name: Mapped[str] = mapped_column(String(100))
    pack_version: Mapped[str] = mapped_column(String(40))
    signer_key_id: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
