"""search: a project's own embedding model

``search_settings``: the provider connection and embedding model a project's search uses instead of the
deployment's offline model; ``search_documents.embedding_model`` gets an index, by which the background embedding
finds documents waiting for their vectors.

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-03 17:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from promptops.db import UTCDateTime

revision: str = "0024"
down_revision: str | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "search_settings",
        sa.Column(
            "project_id", sa.String(40), sa.ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("connection", sa.String(100), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("label", sa.String(64), nullable=False),
        sa.Column("duplicate_score", sa.Float(), nullable=True),
        sa.Column("min_similarity", sa.Float(), nullable=True),
        sa.Column("dimensions", sa.Integer(), nullable=True),
        sa.Column("updated_by", sa.String(40), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_search_documents_embedding_model", "search_documents", ["embedding_model"])


def downgrade() -> None:
    op.drop_index("ix_search_documents_embedding_model", table_name="search_documents")
    op.drop_table("search_settings")
