"""experiment_bandit: bandit experiments (Thompson sampling) with their allocation history; runs carry the
experiment and arm they were served

``experiments.mode`` is ``ab`` (fixed weights) or ``bandit`` (the arms' weights are the current allocation,
recomputed from the outcomes every ``bandit.intervalSeconds``; ``next_allocation_at`` says when next).
``experiment_allocations`` keeps every allocation computed (shares, exposures, posterior means, the chance
each arm is best, the regret estimate). ``experiment_snapshots`` keeps the primary metric's per-arm means and
intervals as the periodic task sees them (intervals over time). ``runs.experiment_id``/``experiment_arm`` tag a run made with an
arm's version (gateway calls and SDK traces with a unit), so run latency, cost, errors and feedback count per
arm.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-05 09:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from promptops.db import UTCDateTime

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("experiments") as batch:
        batch.add_column(sa.Column("mode", sa.String(length=10), nullable=False, server_default="ab"))
        batch.add_column(sa.Column("bandit", JSON, nullable=True))
        batch.add_column(sa.Column("next_allocation_at", UTCDateTime(), nullable=True))
    op.create_table(
        "experiment_allocations",
        sa.Column("experiment_id", sa.String(length=40), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("computed_at", UTCDateTime(), nullable=False),
        sa.Column("reason", sa.String(length=20), nullable=False),
        sa.Column("exposures", sa.Integer(), nullable=False),
        sa.Column("regret", sa.Float(), nullable=True),
        sa.Column("arms", JSON, nullable=False),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["experiments.id"],
            name=op.f("fk_experiment_allocations_experiment_id_experiments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("experiment_id", "seq", name=op.f("pk_experiment_allocations")),
    )
    op.create_table(
        "experiment_snapshots",
        sa.Column("experiment_id", sa.String(length=40), nullable=False),
        sa.Column("taken_at", UTCDateTime(), nullable=False),
        sa.Column("metric", sa.String(length=64), nullable=False),
        sa.Column("exposures", sa.Integer(), nullable=False),
        sa.Column("arms", JSON, nullable=False),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["experiments.id"],
            name=op.f("fk_experiment_snapshots_experiment_id_experiments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("experiment_id", "taken_at", name=op.f("pk_experiment_snapshots")),
    )
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("experiment_id", sa.String(length=40), nullable=True))
        batch.add_column(sa.Column("experiment_arm", sa.String(length=63), nullable=True))
    op.create_index("ix_runs_experiment", "runs", ["experiment_id", "experiment_arm"])


def downgrade() -> None:
    op.drop_index("ix_runs_experiment", table_name="runs")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("experiment_arm")
        batch.drop_column("experiment_id")
    op.drop_table("experiment_snapshots")
    op.drop_table("experiment_allocations")
    with op.batch_alter_table("experiments") as batch:
        batch.drop_column("next_allocation_at")
        batch.drop_column("bandit")
        batch.drop_column("mode")
