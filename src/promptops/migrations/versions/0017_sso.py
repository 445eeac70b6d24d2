"""sso: OpenID Connect providers per organization, group -> role mappings per project, identities, login states,
and the organization's "SSO only" policy

``sso_login_states`` rows are single use (deleted by the callback) and short-lived (``expires_at``, swept when a
login starts). Client secrets are SecretBox ciphertexts bound to the provider id.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-05 09:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from promptops.db import UTCDateTime

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "sso_providers",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("display_name", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("issuer", sa.String(length=500), nullable=False),
        sa.Column("client_id", sa.String(length=255), nullable=False),
        sa.Column("client_secret_enc", sa.Text(), nullable=False),
        sa.Column("scopes", JSON, nullable=False),
        sa.Column("allowed_domains", JSON, nullable=False),
        sa.Column("groups_claim", sa.String(length=100), nullable=False),
        sa.Column("link_existing_users", sa.Boolean(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.String(length=40), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_sso_providers_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sso_providers")),
        sa.UniqueConstraint("name", name=op.f("uq_sso_providers_name")),
    )
    op.create_index(op.f("ix_sso_providers_org_id"), "sso_providers", ["org_id"])

    op.create_table(
        "sso_role_mappings",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("provider_id", sa.String(length=40), nullable=False),
        sa.Column("project_id", sa.String(length=40), nullable=False),
        sa.Column("group_value", sa.String(length=256), nullable=False),
        sa.Column("role", sa.String(length=40), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["provider_id"],
            ["sso_providers.id"],
            name=op.f("fk_sso_role_mappings_provider_id_sso_providers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_sso_role_mappings_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sso_role_mappings")),
        sa.UniqueConstraint(
            "provider_id",
            "project_id",
            "group_value",
            name=op.f("uq_sso_role_mappings_provider_id_project_id_group_value"),
        ),
    )
    op.create_index(op.f("ix_sso_role_mappings_provider_id"), "sso_role_mappings", ["provider_id"])
    op.create_index(op.f("ix_sso_role_mappings_project_id"), "sso_role_mappings", ["project_id"])

    op.create_table(
        "sso_identities",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("provider_id", sa.String(length=40), nullable=False),
        sa.Column("subject", sa.String(length=255), nullable=False),
        sa.Column("user_id", sa.String(length=40), nullable=False),
        sa.Column("managed_projects", JSON, nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("last_login_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["provider_id"],
            ["sso_providers.id"],
            name=op.f("fk_sso_identities_provider_id_sso_providers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_sso_identities_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sso_identities")),
        sa.UniqueConstraint("provider_id", "subject", name=op.f("uq_sso_identities_provider_id_subject")),
    )
    op.create_index(op.f("ix_sso_identities_provider_id"), "sso_identities", ["provider_id"])
    op.create_index(op.f("ix_sso_identities_user_id"), "sso_identities", ["user_id"])

    op.create_table(
        "sso_login_states",
        sa.Column("state_hash", sa.String(length=64), nullable=False),
        sa.Column("provider_id", sa.String(length=40), nullable=False),
        sa.Column("browser_hash", sa.String(length=64), nullable=False),
        sa.Column("nonce", sa.String(length=128), nullable=False),
        sa.Column("code_verifier", sa.String(length=128), nullable=False),
        sa.Column("redirect_uri", sa.String(length=1000), nullable=False),
        sa.Column("next_path", sa.String(length=500), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["provider_id"],
            ["sso_providers.id"],
            name=op.f("fk_sso_login_states_provider_id_sso_providers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("state_hash", name=op.f("pk_sso_login_states")),
    )
    op.create_index(op.f("ix_sso_login_states_provider_id"), "sso_login_states", ["provider_id"])
    op.create_index(op.f("ix_sso_login_states_expires_at"), "sso_login_states", ["expires_at"])

    op.create_table(
        "sso_org_policies",
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("sso_only", sa.Boolean(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_sso_org_policies_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("org_id", name=op.f("pk_sso_org_policies")),
    )


def downgrade() -> None:
    op.drop_table("sso_org_policies")
    op.drop_index(op.f("ix_sso_login_states_expires_at"), table_name="sso_login_states")
    op.drop_index(op.f("ix_sso_login_states_provider_id"), table_name="sso_login_states")
    op.drop_table("sso_login_states")
    op.drop_index(op.f("ix_sso_identities_user_id"), table_name="sso_identities")
    op.drop_index(op.f("ix_sso_identities_provider_id"), table_name="sso_identities")
    op.drop_table("sso_identities")
    op.drop_index(op.f("ix_sso_role_mappings_project_id"), table_name="sso_role_mappings")
    op.drop_index(op.f("ix_sso_role_mappings_provider_id"), table_name="sso_role_mappings")
    op.drop_table("sso_role_mappings")
    op.drop_index(op.f("ix_sso_providers_org_id"), table_name="sso_providers")
    op.drop_table("sso_providers")
