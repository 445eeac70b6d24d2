"""Provider connections (per project, key encrypted), price overrides and the response cache."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from promptops.db import Base, JSONType, UTCDateTime, utcnow


class ProviderConnection(Base):
    __tablename__ = "provider_connections"
    __table_args__ = (UniqueConstraint("project_id", "name"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    type: Mapped[str] = mapped_column(String(20))
    base_url: Mapped[str | None] = mapped_column(String(500), nullable=True)
    api_key_ciphertext: Mapped[str | None] = mapped_column(Text, nullable=True)
    api_key_hint: Mapped[str | None] = mapped_column(String(8), nullable=True)
    api_version: Mapped[str | None] = mapped_column(String(40), nullable=True)
    default_params: Mapped[dict] = mapped_column(JSONType, default=dict)
    allowed_models: Mapped[list] = mapped_column(JSONType, default=list)
    options: Mapped[dict] = mapped_column(JSONType, default=dict)
    max_concurrency: Mapped[int] = mapped_column(Integer, default=8)
    timeout_seconds: Mapped[float] = mapped_column(Float, default=60.0)
    max_retries: Mapped[int] = mapped_column(Integer, default=2)
    created_by: Mapped[str | None] = mapped_column(String(40), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ModelPrice(Base):
    """A project's override of the catalog price or context window of one model."""

    __tablename__ = "model_prices"

    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True)
    provider: Mapped[str] = mapped_column(String(64), primary_key=True)
    model: Mapped[str] = mapped_column(String(200), primary_key=True)
    input_per_1m: Mapped[float] = mapped_column(Float)
    output_per_1m: Mapped[float] = mapped_column(Float)
    context_window: Mapped[int | None] = mapped_column(Integer, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ResponseCacheEntry(Base):
    __tablename__ = "response_cache"
    __table_args__ = (Index("ix_response_cache_expires", "expires_at"),)

    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    response: Mapped[dict] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
