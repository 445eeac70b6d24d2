"""approvals: approval requests for moves of labels a project gates (settings.approvals) and reviewers' decisions

``approval_requests.open_key`` (``prompt_id:label`` while open, else NULL) carries a unique index: one open request
per (prompt, label) on both databases; a newer request supersedes the open one. ``approval_decisions`` holds one
approve/reject per reviewer and request (unique).

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-05 09:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from promptops.db import UTCDateTime

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "approval_requests",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("project_id", sa.String(length=40), nullable=False),
        sa.Column("prompt_id", sa.String(length=40), nullable=False),
        sa.Column("prompt_name", sa.String(length=200), nullable=False),
        sa.Column("label", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=20), nullable=False),
        sa.Column("version_id", sa.String(length=40), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("base_version_id", sa.String(length=40), nullable=True),
        sa.Column("base_version", sa.Integer(), nullable=True),
        sa.Column("reason", sa.String(length=2000), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("open_key", sa.String(length=110), nullable=True),
        sa.Column("required", sa.Integer(), nullable=False),
        sa.Column("roles", JSON, nullable=False),
        sa.Column("requested_by", sa.String(length=40), nullable=False),
        sa.Column("requested_by_name", sa.String(length=300), nullable=False),
        sa.Column("author_id", sa.String(length=40), nullable=True),
        sa.Column("superseded_by", sa.String(length=40), nullable=True),
        sa.Column("resolved_by", sa.String(length=40), nullable=True),
        sa.Column("resolved_by_name", sa.String(length=300), nullable=True),
        sa.Column("resolution_note", sa.String(length=2000), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("resolved_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_approval_requests_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["prompt_id"],
            ["prompts.id"],
            name=op.f("fk_approval_requests_prompt_id_prompts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["prompt_versions.id"],
            name=op.f("fk_approval_requests_version_id_prompt_versions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_approval_requests")),
    )
    op.create_index(
        "ix_approval_requests_project_status", "approval_requests", ["project_id", "status", "created_at"]
    )
    op.create_index("ix_approval_requests_open_key", "approval_requests", ["open_key"], unique=True)
    op.create_index(op.f("ix_approval_requests_prompt_id"), "approval_requests", ["prompt_id"])

    op.create_table(
        "approval_decisions",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("project_id", sa.String(length=40), nullable=False),
        sa.Column("request_id", sa.String(length=40), nullable=False),
        sa.Column("decision", sa.String(length=10), nullable=False),
        sa.Column("reviewer_id", sa.String(length=40), nullable=False),
        sa.Column("reviewer_name", sa.String(length=300), nullable=False),
        sa.Column("reviewer_role", sa.String(length=40), nullable=False),
        sa.Column("comment", sa.String(length=2000), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_approval_decisions_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["approval_requests.id"],
            name=op.f("fk_approval_decisions_request_id_approval_requests"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_approval_decisions")),
        sa.UniqueConstraint(
            "request_id", "reviewer_id", name=op.f("uq_approval_decisions_request_id_reviewer_id")
        ),
    )
    op.create_index(op.f("ix_approval_decisions_project_id"), "approval_decisions", ["project_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_approval_decisions_project_id"), table_name="approval_decisions")
    op.drop_table("approval_decisions")
    op.drop_index(op.f("ix_approval_requests_prompt_id"), table_name="approval_requests")
    op.drop_index("ix_approval_requests_open_key", table_name="approval_requests")
    op.drop_index("ix_approval_requests_project_status", table_name="approval_requests")
    op.drop_table("approval_requests")
