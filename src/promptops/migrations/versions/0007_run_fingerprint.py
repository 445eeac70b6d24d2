"""runs.fingerprint: groups gateway calls of prompts that are not in the registry

Nullable, so existing runs need no backfill; indexed with the project for the gateway's prompt listing.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 02:40:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("fingerprint", sa.String(length=32), nullable=True))
    op.create_index("ix_runs_project_fingerprint", "runs", ["project_id", "fingerprint"])


def downgrade() -> None:
    op.drop_index("ix_runs_project_fingerprint", table_name="runs")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("fingerprint")
