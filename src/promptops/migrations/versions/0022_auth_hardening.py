"""auth hardening: login throttling/lockout, TOTP second factor, API key scopes

* ``login_throttle``: failed password logins per email digest and per client address, and the lock they lead to.
* ``user_totp``: a user's TOTP secret (sealed by the server's SecretBox), when it was confirmed, the last time
  step used (a code is accepted once).
* ``api_keys.permissions``: the permissions a key is limited to (a subset of its role's); NULL: the whole role.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-05 10:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from promptops.db import UTCDateTime

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "login_throttle",
        sa.Column("key", sa.String(80), primary_key=True),
        sa.Column("failures", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("window_started_at", UTCDateTime(), nullable=False),
        sa.Column("locked_until", UTCDateTime()),
    )
    op.create_table(
        "user_totp",
        sa.Column("user_id", sa.String(40), sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("confirmed_at", UTCDateTime()),
        sa.Column("last_step", sa.BigInteger()),
    )
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("permissions", JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("permissions")
    op.drop_table("user_totp")
    op.drop_table("login_throttle")
