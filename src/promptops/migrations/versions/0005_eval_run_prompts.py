"""eval run prompts: the prompts each evaluation run covers, so runs list by prompt in SQL

``GET /api/v1/evals?prompt=`` used to filter in Python on ``eval_runs.spec`` (JSON) after over-fetching a
window of rows, which missed older matching runs. ``eval_run_prompts`` holds one row per (run, prompt),
written with the run; this revision backfills it from each existing run's ``spec["versions"][*].promptId``,
in Python so that the same code runs on SQLite and PostgreSQL.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 13:44:04.247413
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 500

# The tables as this revision knows them (not the application models, which may change later).
_eval_runs = sa.table(
    "eval_runs",
    sa.column("id", sa.String(40)),
    sa.column("project_id", sa.String(40)),
    sa.column("spec", sa.JSON().with_variant(postgresql.JSONB(), "postgresql")),
)
_prompts = sa.table("prompts", sa.column("id", sa.String(40)))
_eval_run_prompts = sa.table(
    "eval_run_prompts",
    sa.column("eval_run_id", sa.String(40)),
    sa.column("prompt_id", sa.String(40)),
    sa.column("project_id", sa.String(40)),
)


def _prompt_ids(spec: Any) -> list[str]:
    """The distinct prompt ids of a run's spec, in order (a malformed spec has none)."""
    versions = spec.get("versions") if isinstance(spec, dict) else None
    ids = [v.get("promptId") for v in versions or [] if isinstance(v, dict)]
    return list(dict.fromkeys(i for i in ids if isinstance(i, str) and i))


def _backfill() -> None:
    """Rows for every existing run, a batch of runs at a time in id order (prompts that are gone are skipped)."""
    conn = op.get_bind()
    after = ""
    while True:
        runs = conn.execute(
            sa.select(_eval_runs.c.id, _eval_runs.c.project_id, _eval_runs.c.spec)
            .where(_eval_runs.c.id > after)
            .order_by(_eval_runs.c.id)
            .limit(BATCH)
        ).all()
        if not runs:
            return
        after = runs[-1].id
        wanted = [(run.id, prompt_id, run.project_id) for run in runs for prompt_id in _prompt_ids(run.spec)]
        known = set(
            conn.execute(
                sa.select(_prompts.c.id).where(
                    _prompts.c.id.in_(sorted({prompt_id for _, prompt_id, _ in wanted}))
                )
            ).scalars()
        )
        rows = [
            {"eval_run_id": run_id, "prompt_id": prompt_id, "project_id": project_id}
            for run_id, prompt_id, project_id in wanted
            if prompt_id in known
        ]
        if rows:
            conn.execute(_eval_run_prompts.insert(), rows)


def upgrade() -> None:
    op.create_table(
        "eval_run_prompts",
        sa.Column("eval_run_id", sa.String(length=40), nullable=False),
        sa.Column("prompt_id", sa.String(length=40), nullable=False),
        sa.Column("project_id", sa.String(length=40), nullable=False),
        sa.ForeignKeyConstraint(
            ["eval_run_id"],
            ["eval_runs.id"],
            name=op.f("fk_eval_run_prompts_eval_run_id_eval_runs"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_eval_run_prompts_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["prompt_id"],
            ["prompts.id"],
            name=op.f("fk_eval_run_prompts_prompt_id_prompts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("eval_run_id", "prompt_id", name=op.f("pk_eval_run_prompts")),
    )
    with op.batch_alter_table("eval_run_prompts", schema=None) as batch_op:
        batch_op.create_index(
            "ix_eval_run_prompts_project_prompt", ["project_id", "prompt_id", "eval_run_id"], unique=False
        )
    _backfill()


def downgrade() -> None:
    with op.batch_alter_table("eval_run_prompts", schema=None) as batch_op:
        batch_op.drop_index("ix_eval_run_prompts_project_prompt")
    op.drop_table("eval_run_prompts")
