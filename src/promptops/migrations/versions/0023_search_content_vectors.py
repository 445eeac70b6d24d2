"""search: content vectors stored with each document

``search_documents.content_embedding``: the vector of a version's description and text alone (duplicate scores
compare these; the ``embedding`` column, read by the vector index, adds the prompt's name). Existing rows get it
when the background refresh embeds them again with the new model and recipe.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-03 13:20:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("search_documents") as batch:
        batch.add_column(sa.Column("content_embedding", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("search_documents") as batch:
        batch.drop_column("content_embedding")
