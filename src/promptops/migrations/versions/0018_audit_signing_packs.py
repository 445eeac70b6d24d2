"""audit_signing_packs: organization audit chains, Ed25519 signing keys, signed checkpoints, template pack imports

- ``audit_org_events`` / ``audit_org_chain_heads``: the per-organization chain that sign-in events go to (same
  fields and hashing as ``audit_events``, keyed by organization).
- ``audit_signing_keys``: each organization's Ed25519 keys (private key encrypted by the secret box) with their
  validity periods; ``audit_checkpoints``: signed heads of project and organization chains.
- ``pack_imports`` / ``pack_provenance``: template pack imports and the pack, signer and item hash behind every
  imported prompt version and dataset version.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-05 09:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from promptops.db import UTCDateTime

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _org_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["org_id"], ["organizations.id"], name=op.f(f"fk_{table}_org_id_organizations"), ondelete="RESTRICT"
    )


def _project_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["project_id"], ["projects.id"], name=op.f(f"fk_{table}_project_id_projects"), ondelete="CASCADE"
    )


def upgrade() -> None:
    op.create_table(
        "audit_org_chain_heads",
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.Column("last_hash", sa.String(length=64), nullable=False),
        _org_fk("audit_org_chain_heads"),
        sa.PrimaryKeyConstraint("org_id", name=op.f("pk_audit_org_chain_heads")),
    )
    op.create_table(
        "audit_org_events",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("project_id", sa.String(length=40), nullable=True),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("event_type", sa.String(length=60), nullable=False),
        sa.Column("actor_type", sa.String(length=20), nullable=False),
        sa.Column("actor_id", sa.String(length=40), nullable=True),
        sa.Column("actor_name", sa.String(length=254), nullable=True),
        sa.Column("prompt_id", sa.String(length=40), nullable=True),
        sa.Column("request_id", sa.String(length=64), nullable=True),
        sa.Column("occurred_at", UTCDateTime(), nullable=False),
        sa.Column("data", JSON, nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        _org_fk("audit_org_events"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_org_events")),
        sa.UniqueConstraint("org_id", "seq", name=op.f("uq_audit_org_events_org_id_seq")),
    )
    op.create_index("ix_audit_org_events_org_time", "audit_org_events", ["org_id", "occurred_at"])
    op.create_table(
        "audit_signing_keys",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("algorithm", sa.String(length=20), nullable=False),
        sa.Column("public_key", sa.String(length=64), nullable=False),
        sa.Column("private_key_ciphertext", sa.Text(), nullable=False),
        sa.Column("valid_from", UTCDateTime(), nullable=False),
        sa.Column("valid_until", UTCDateTime(), nullable=True),
        sa.Column("created_by", sa.String(length=40), nullable=True),
        _org_fk("audit_signing_keys"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_signing_keys")),
    )
    op.create_index("ix_audit_signing_keys_org", "audit_signing_keys", ["org_id", "valid_from"])
    op.create_table(
        "audit_checkpoints",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("chain", sa.String(length=10), nullable=False),
        sa.Column("chain_id", sa.String(length=40), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("head_hash", sa.String(length=64), nullable=False),
        sa.Column("signed_at", UTCDateTime(), nullable=False),
        sa.Column("key_id", sa.String(length=40), nullable=False),
        sa.Column("signature", sa.String(length=100), nullable=False),
        sa.Column("trigger", sa.String(length=10), nullable=False),
        _org_fk("audit_checkpoints"),
        sa.ForeignKeyConstraint(
            ["key_id"],
            ["audit_signing_keys.id"],
            name=op.f("fk_audit_checkpoints_key_id_audit_signing_keys"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_checkpoints")),
        sa.UniqueConstraint(
            "chain_id", "seq", "key_id", name=op.f("uq_audit_checkpoints_chain_id_seq_key_id")
        ),
    )
    op.create_index("ix_audit_checkpoints_org", "audit_checkpoints", ["org_id", "signed_at"])
    op.create_table(
        "pack_imports",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("project_id", sa.String(length=40), nullable=False),
        sa.Column("pack_name", sa.String(length=100), nullable=False),
        sa.Column("pack_version", sa.String(length=40), nullable=False),
        sa.Column("signer_key_id", sa.String(length=40), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("on_conflict", sa.String(length=20), nullable=False),
        sa.Column("counts", JSON, nullable=False),
        sa.Column("created_by", sa.String(length=40), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        _project_fk("pack_imports"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pack_imports")),
    )
    op.create_index("ix_pack_imports_project_created", "pack_imports", ["project_id", "created_at"])
    op.create_table(
        "pack_provenance",
        sa.Column("target_id", sa.String(length=40), nullable=False),
        sa.Column("project_id", sa.String(length=40), nullable=False),
        sa.Column("import_id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("item_name", sa.String(length=200), nullable=False),
        sa.Column("item_hash", sa.String(length=64), nullable=False),
        sa.Column("pack_name", sa.String(length=100), nullable=False),
        sa.Column("pack_version", sa.String(length=40), nullable=False),
        sa.Column("signer_key_id", sa.String(length=40), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        _project_fk("pack_provenance"),
        sa.ForeignKeyConstraint(
            ["import_id"],
            ["pack_imports.id"],
            name=op.f("fk_pack_provenance_import_id_pack_imports"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("target_id", name=op.f("pk_pack_provenance")),
    )
    op.create_index("ix_pack_provenance_project_pack", "pack_provenance", ["project_id", "pack_name"])
    op.create_index(op.f("ix_pack_provenance_import_id"), "pack_provenance", ["import_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_pack_provenance_import_id"), table_name="pack_provenance")
    op.drop_index("ix_pack_provenance_project_pack", table_name="pack_provenance")
    op.drop_table("pack_provenance")
    op.drop_index("ix_pack_imports_project_created", table_name="pack_imports")
    op.drop_table("pack_imports")
    op.drop_index("ix_audit_checkpoints_org", table_name="audit_checkpoints")
    op.drop_table("audit_checkpoints")
    op.drop_index("ix_audit_signing_keys_org", table_name="audit_signing_keys")
    op.drop_table("audit_signing_keys")
    op.drop_index("ix_audit_org_events_org_time", table_name="audit_org_events")
    op.drop_table("audit_org_events")
    op.drop_table("audit_org_chain_heads")
