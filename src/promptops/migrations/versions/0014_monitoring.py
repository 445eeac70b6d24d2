"""monitoring: online-evaluation configs, sampled runs with their scores, and the per-version score rollup

``monitoring_online_configs`` holds one row per (project, prompt, label) (``""`` = project-wide / every
label); ``monitoring_online_evals`` one row per sampled run (unique per run); ``monitoring_online_rollups``
additive sums of scored samples per hour and day, keyed like ``run_rollups``. Volume, errors, latency,
tokens and cost keep coming from ``run_rollups`` (0006), which is already per prompt version. The index
``ix_runs_project_prompt_created`` on ``runs`` serves the drift check's samples of a prompt's runs in a window.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05 09:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from promptops.db import UTCDateTime

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _project_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["project_id"], ["projects.id"], name=op.f(f"fk_{table}_project_id_projects"), ondelete="CASCADE"
    )


def upgrade() -> None:
    op.create_index("ix_runs_project_prompt_created", "runs", ["project_id", "prompt_id", "created_at"])
    op.create_table(
        "monitoring_online_configs",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("project_id", sa.String(length=40), nullable=False),
        sa.Column("prompt_id", sa.String(length=40), nullable=False),
        sa.Column("prompt_name", sa.String(length=200), nullable=False),
        sa.Column("label", sa.String(length=64), nullable=False),
        sa.Column("sample_rate", sa.Float(), nullable=False),
        sa.Column("scorers", JSON, nullable=False),
        sa.Column("pass_threshold", sa.Float(), nullable=False),
        sa.Column("sources", JSON, nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("principal", JSON, nullable=False),
        sa.Column("scanned_until", UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=40), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        _project_fk("monitoring_online_configs"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_monitoring_online_configs")),
    )
    op.create_index(
        "ix_monitoring_online_configs_key",
        "monitoring_online_configs",
        ["project_id", "prompt_id", "label"],
        unique=True,
    )
    op.create_index("ix_monitoring_online_configs_enabled", "monitoring_online_configs", ["enabled"])

    op.create_table(
        "monitoring_online_evals",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("project_id", sa.String(length=40), nullable=False),
        sa.Column("config_id", sa.String(length=40), nullable=False),
        sa.Column("run_id", sa.String(length=40), nullable=False),
        sa.Column("prompt_id", sa.String(length=40), nullable=False),
        sa.Column("version_id", sa.String(length=40), nullable=False),
        sa.Column("run_created_at", UTCDateTime(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("passed", sa.Boolean(), nullable=True),
        sa.Column("scores", JSON, nullable=False),
        sa.Column("error", sa.String(length=2000), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("scored_at", UTCDateTime(), nullable=True),
        _project_fk("monitoring_online_evals"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_monitoring_online_evals")),
    )
    op.create_index(
        "ix_monitoring_online_evals_run", "monitoring_online_evals", ["project_id", "run_id"], unique=True
    )
    op.create_index("ix_monitoring_online_evals_status", "monitoring_online_evals", ["status", "project_id"])
    op.create_index(
        "ix_monitoring_online_evals_prompt_time",
        "monitoring_online_evals",
        ["project_id", "prompt_id", "run_created_at"],
    )

    op.create_table(
        "monitoring_online_rollups",
        sa.Column("project_id", sa.String(length=40), nullable=False),
        sa.Column("grain", sa.Integer(), nullable=False),
        sa.Column("bucket", sa.Integer(), nullable=False),
        sa.Column("prompt_id", sa.String(length=40), nullable=False),
        sa.Column("version_id", sa.String(length=40), nullable=False),
        sa.Column("scored", sa.Integer(), nullable=False),
        sa.Column("passed", sa.Integer(), nullable=False),
        sa.Column("score_sum", sa.Float(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        _project_fk("monitoring_online_rollups"),
        sa.PrimaryKeyConstraint(
            "project_id",
            "grain",
            "bucket",
            "prompt_id",
            "version_id",
            name=op.f("pk_monitoring_online_rollups"),
        ),
    )


def downgrade() -> None:
    op.drop_table("monitoring_online_rollups")
    op.drop_index("ix_monitoring_online_evals_prompt_time", table_name="monitoring_online_evals")
    op.drop_index("ix_monitoring_online_evals_status", table_name="monitoring_online_evals")
    op.drop_index("ix_monitoring_online_evals_run", table_name="monitoring_online_evals")
    op.drop_table("monitoring_online_evals")
    op.drop_index("ix_monitoring_online_configs_enabled", table_name="monitoring_online_configs")
    op.drop_index("ix_monitoring_online_configs_key", table_name="monitoring_online_configs")
    op.drop_table("monitoring_online_configs")
    op.drop_index("ix_runs_project_prompt_created", table_name="runs")
