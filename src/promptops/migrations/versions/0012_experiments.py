"""experiments: live A/B experiments on a prompt label, their arms, exposures and per-unit outcome sums

``experiments.active_key`` (``prompt_id:label`` while running or paused, else NULL) carries a unique index: one
active experiment per (prompt, label) on both databases. Exposures and outcomes are keyed by the salted unit hash.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04 09:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from promptops.db import UTCDateTime

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "experiments",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("project_id", sa.String(length=40), nullable=False),
        sa.Column("prompt_id", sa.String(length=40), nullable=False),
        sa.Column("prompt_name", sa.String(length=200), nullable=False),
        sa.Column("label", sa.String(length=63), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("active_key", sa.String(length=110), nullable=True),
        sa.Column("salt", sa.String(length=64), nullable=False),
        sa.Column("metrics", JSON, nullable=False),
        sa.Column("alpha", sa.Float(), nullable=False),
        sa.Column("shipped_arm", sa.String(length=63), nullable=True),
        sa.Column("created_by", sa.String(length=40), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=True),
        sa.Column("ended_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_experiments_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_experiments")),
    )
    op.create_index("ix_experiments_project_created", "experiments", ["project_id", "created_at"])
    op.create_index("ix_experiments_project_status", "experiments", ["project_id", "status"])
    op.create_index("ix_experiments_active_key", "experiments", ["active_key"], unique=True)

    op.create_table(
        "experiment_arms",
        sa.Column("experiment_id", sa.String(length=40), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("version_id", sa.String(length=40), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=True),
        sa.Column("weight", sa.Float(), nullable=False),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("paused_reason", sa.String(length=500), nullable=False),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["experiments.id"],
            name=op.f("fk_experiment_arms_experiment_id_experiments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("experiment_id", "position", name=op.f("pk_experiment_arms")),
    )

    op.create_table(
        "experiment_exposures",
        sa.Column("experiment_id", sa.String(length=40), nullable=False),
        sa.Column("unit_hash", sa.String(length=32), nullable=False),
        sa.Column("arm", sa.String(length=63), nullable=False),
        sa.Column("first_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["experiments.id"],
            name=op.f("fk_experiment_exposures_experiment_id_experiments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("experiment_id", "unit_hash", name=op.f("pk_experiment_exposures")),
    )
    op.create_index("ix_experiment_exposures_arm", "experiment_exposures", ["experiment_id", "arm"])

    op.create_table(
        "experiment_outcomes",
        sa.Column("experiment_id", sa.String(length=40), nullable=False),
        sa.Column("metric", sa.String(length=64), nullable=False),
        sa.Column("unit_hash", sa.String(length=32), nullable=False),
        sa.Column("events", sa.Integer(), nullable=False),
        sa.Column("total", sa.Float(), nullable=False),
        sa.Column("maximum", sa.Float(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["experiments.id"],
            name=op.f("fk_experiment_outcomes_experiment_id_experiments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("experiment_id", "metric", "unit_hash", name=op.f("pk_experiment_outcomes")),
    )


def downgrade() -> None:
    op.drop_table("experiment_outcomes")
    op.drop_index("ix_experiment_exposures_arm", table_name="experiment_exposures")
    op.drop_table("experiment_exposures")
    op.drop_table("experiment_arms")
    op.drop_index("ix_experiments_active_key", table_name="experiments")
    op.drop_index("ix_experiments_project_status", table_name="experiments")
    op.drop_index("ix_experiments_project_created", table_name="experiments")
    op.drop_table("experiments")
