"""privacy_hardening: per-subject data keys (crypto-shredding), sealed personal fields, retention policies

- ``privacy_subject_keys``: one AES-256 data key per data subject (user or end user), wrapped by the master
  key; erasure sets ``wrapped_key`` to NULL.
- ``users``: ``email`` and ``name`` become TEXT (they hold ciphertext), the unique constraint moves from
  ``email`` to the new keyed hash ``email_hash`` (login lookups).
- ``feedback``: ``user`` becomes TEXT (ciphertext) and gains ``subject_id`` (whose key seals ``user`` and
  ``notes``) with an index per project.
- ``privacy_retention_policies``: days to keep runs / feedback per project.

Existing plaintext rows are sealed lazily on the next start (``promptops.privacy.legacy``): encrypting needs the
master key, which a migration does not have. Downgrading keeps whatever is sealed as ciphertext.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-05 09:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from promptops.db import UTCDateTime

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "privacy_subject_keys",
        sa.Column("subject_id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("project_id", sa.String(length=40), nullable=True),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("wrapped_key", sa.String(length=200), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("erased_at", UTCDateTime(), nullable=True),
        sa.Column("erased_by", sa.String(length=40), nullable=True),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_privacy_subject_keys_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("subject_id", name=op.f("pk_privacy_subject_keys")),
    )
    op.create_index("ix_privacy_subject_keys_project", "privacy_subject_keys", ["project_id"])
    op.create_table(
        "privacy_retention_policies",
        sa.Column("project_id", sa.String(length=40), nullable=False),
        sa.Column("runs_days", sa.Integer(), nullable=True),
        sa.Column("feedback_days", sa.Integer(), nullable=True),
        sa.Column("updated_by", sa.String(length=40), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("last_applied_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_privacy_retention_policies_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("project_id", name=op.f("pk_privacy_retention_policies")),
    )
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_constraint("uq_users_email", type_="unique")
        batch_op.alter_column(
            "email", existing_type=sa.String(length=254), type_=sa.Text(), existing_nullable=False
        )
        batch_op.alter_column(
            "name", existing_type=sa.String(length=200), type_=sa.Text(), existing_nullable=False
        )
        batch_op.add_column(sa.Column("email_hash", sa.String(length=64), nullable=True))
        batch_op.create_unique_constraint(batch_op.f("uq_users_email_hash"), ["email_hash"])
    with op.batch_alter_table("feedback", schema=None) as batch_op:
        batch_op.alter_column(
            "user", existing_type=sa.String(length=200), type_=sa.Text(), existing_nullable=False
        )
        batch_op.add_column(sa.Column("subject_id", sa.String(length=40), nullable=True))
        batch_op.create_index("ix_feedback_project_subject", ["project_id", "subject_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("feedback", schema=None) as batch_op:
        batch_op.drop_index("ix_feedback_project_subject")
        batch_op.drop_column("subject_id")
        batch_op.alter_column(
            "user", existing_type=sa.Text(), type_=sa.String(length=200), existing_nullable=False
        )
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_users_email_hash"), type_="unique")
        batch_op.drop_column("email_hash")
        batch_op.alter_column(
            "name", existing_type=sa.Text(), type_=sa.String(length=200), existing_nullable=False
        )
        batch_op.alter_column(
            "email", existing_type=sa.Text(), type_=sa.String(length=254), existing_nullable=False
        )
        batch_op.create_unique_constraint("uq_users_email", ["email"])
    op.drop_table("privacy_retention_policies")
    op.drop_index("ix_privacy_subject_keys_project", table_name="privacy_subject_keys")
    op.drop_table("privacy_subject_keys")
