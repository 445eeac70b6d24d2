"""periodic_tasks: the scheduler's row per periodic task (next due time, the lease of the process running it)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05 09:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from promptops.db import UTCDateTime

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "periodic_tasks",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("next_due_at", UTCDateTime(), nullable=False),
        sa.Column("lease_owner", sa.String(120)),
        sa.Column("lease_until", UTCDateTime()),
        sa.Column("last_started_at", UTCDateTime()),
        sa.Column("last_finished_at", UTCDateTime()),
        sa.Column("last_error", sa.Text()),
        sa.Column("runs", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("failures", sa.Integer(), nullable=False, server_default="0"),
    )


def downgrade() -> None:
    op.drop_table("periodic_tasks")
