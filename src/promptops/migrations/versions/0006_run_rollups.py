"""run rollups: additive sums of runs per hour and per day for the dashboards

``run_rollups`` is written in the transaction that inserts runs (``runs.rollup.add_runs``); this revision
creates it and backfills it from the runs already stored with one ``INSERT ... SELECT ... GROUP BY`` per grain.
The SQL is frozen here (not imported from the application) so the revision keeps meaning what it meant.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 20:55:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Upper bounds of the latency histogram buckets in ms (10 ms doubling; the 16th bucket is open-ended).
LATENCY_BOUNDS_MS = tuple(10.0 * 2**i for i in range(15))
GRAINS = (1, 24)
_KEYS = ("project_id", "grain", "bucket", "prompt_id", "version_id", "provider", "model", "source")
_SUMS = ("runs", "errors", "input_tokens", "output_tokens", "cost_usd", "latency_ms_sum")
_LATENCY = tuple(f"lat_{i}" for i in range(len(LATENCY_BOUNDS_MS) + 1))


def _hour_sql(dialect: str) -> str:
    if dialect == "postgresql":
        return "CAST(floor(extract(epoch FROM created_at) / 3600) AS INTEGER)"
    return "(CAST(strftime('%s', created_at) AS INTEGER) / 3600)"


def _latency_sums() -> list[str]:
    sums = []
    for i in range(len(LATENCY_BOUNDS_MS) + 1):
        conditions = []
        if i > 0:
            conditions.append(f"latency_ms > {LATENCY_BOUNDS_MS[i - 1]!r}")
        if i < len(LATENCY_BOUNDS_MS):
            conditions.append(f"latency_ms <= {LATENCY_BOUNDS_MS[i]!r}")
        sums.append(f"SUM(CASE WHEN {' AND '.join(conditions)} THEN 1 ELSE 0 END)")
    return sums


def backfill_sql(dialect: str) -> list[str]:
    """One INSERT ... SELECT ... GROUP BY per grain, summing every run already stored."""
    hour = _hour_sql(dialect)
    statements = []
    for grain in GRAINS:
        selected = [
            "project_id",
            str(grain),
            f"({hour} / {grain}) * {grain}",
            "COALESCE(prompt_id, '')",
            "COALESCE(version_id, '')",
            "provider",
            "model",
            "source",
            "COUNT(*)",
            "SUM(CASE WHEN status = 'error' THEN 1 ELSE 0 END)",
            "SUM(input_tokens)",
            "SUM(output_tokens)",
            "SUM(cost_usd)",
            "SUM(latency_ms)",
            *_latency_sums(),
        ]
        columns = ", ".join(_KEYS + _SUMS + _LATENCY)
        statements.append(
            f"INSERT INTO run_rollups ({columns}) SELECT {', '.join(selected)} "  # noqa: S608 (constants only)
            "FROM runs GROUP BY 1, 2, 3, 4, 5, 6, 7, 8"
        )
    return statements


def upgrade() -> None:
    op.create_table(
        "run_rollups",
        sa.Column("project_id", sa.String(length=40), nullable=False),
        sa.Column("grain", sa.Integer(), nullable=False),
        sa.Column("bucket", sa.Integer(), nullable=False),
        sa.Column("prompt_id", sa.String(length=40), nullable=False),
        sa.Column("version_id", sa.String(length=40), nullable=False),
        sa.Column("provider", sa.String(length=64), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("runs", sa.Integer(), nullable=False),
        sa.Column("errors", sa.Integer(), nullable=False),
        sa.Column("input_tokens", sa.BigInteger(), nullable=False),
        sa.Column("output_tokens", sa.BigInteger(), nullable=False),
        sa.Column("cost_usd", sa.Float(), nullable=False),
        sa.Column("latency_ms_sum", sa.Float(), nullable=False),
        *(sa.Column(name, sa.Integer(), nullable=False) for name in _LATENCY),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_run_rollups_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(*_KEYS, name=op.f("pk_run_rollups")),
    )
    dialect = op.get_bind().dialect.name
    for statement in backfill_sql(dialect):
        op.execute(statement)


def downgrade() -> None:
    op.drop_table("run_rollups")
