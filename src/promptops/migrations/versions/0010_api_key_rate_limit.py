"""api_keys.rate_limit_per_minute: a key's own gateway rate limit

Nullable: a key without one is limited by its project's ``gatewayRateLimitPerMinute`` setting, else by the
server's ``PROMPTOPS_GATEWAY_RATE_LIMIT_PER_MINUTE``; existing keys need no backfill.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 08:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("rate_limit_per_minute", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("rate_limit_per_minute")
