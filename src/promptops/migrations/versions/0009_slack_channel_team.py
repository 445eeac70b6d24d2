"""slack_channels.team_id: the workspace a project's notice channel is in

A project whose notices go to a workspace lets that workspace's unlinked Slack users search its prompts (what a
Viewer may read). Nullable: channels set before this revision share nothing until ``/prompt notify`` is run again.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 06:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("slack_channels") as batch:
        batch.add_column(sa.Column("team_id", sa.String(length=32), nullable=True))
    op.create_index("ix_slack_channels_team_id", "slack_channels", ["team_id"])


def downgrade() -> None:
    op.drop_index("ix_slack_channels_team_id", table_name="slack_channels")
    with op.batch_alter_table("slack_channels") as batch:
        batch.drop_column("team_id")
