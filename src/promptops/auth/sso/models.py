"""SSO tables: an organization's OIDC providers, their group -> role mappings per project, the identities they
sign in, the pending login states and the organization's SSO policy."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from promptops.db import Base, JSONType, UTCDateTime, utcnow


class SsoProvider(Base):
    __tablename__ = "sso_providers"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), index=True)
    # The {provider} of /api/v1/auth/sso/{provider}/login: unique on the server (the login page has no org yet).
    name: Mapped[str] = mapped_column(String(63), unique=True)
    display_name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(20))  # generic | entra | okta | keycloak | google
    issuer: Mapped[str] = mapped_column(String(500))
    client_id: Mapped[str] = mapped_column(String(255))
    # SecretBox ciphertext bound to the provider id; never returned.
    client_secret_enc: Mapped[str] = mapped_column(Text)
    scopes: Mapped[list] = mapped_column(JSONType, default=list)
    allowed_domains: Mapped[list] = mapped_column(JSONType, default=list)
    groups_claim: Mapped[str] = mapped_column(String(100))
    link_existing_users: Mapped[bool] = mapped_column(Boolean, default=False)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[str | None] = mapped_column(String(40), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class SsoRoleMapping(Base):
    """Members of ``group`` (a value of the provider's groups claim; ``*``: everyone) get ``role`` in a project."""

    __tablename__ = "sso_role_mappings"
    __table_args__ = (UniqueConstraint("provider_id", "project_id", "group_value"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    provider_id: Mapped[str] = mapped_column(ForeignKey("sso_providers.id", ondelete="CASCADE"), index=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    group_value: Mapped[str] = mapped_column(String(256))
    role: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class SsoIdentity(Base):
    """A user as known to one provider (its ``sub``), and the memberships its mappings gave."""

    __tablename__ = "sso_identities"
    __table_args__ = (UniqueConstraint("provider_id", "subject"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    provider_id: Mapped[str] = mapped_column(ForeignKey("sso_providers.id", ondelete="CASCADE"), index=True)
    subject: Mapped[str] = mapped_column(String(255))
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    # Project ids whose membership this identity's mappings manage (changed or removed on the next login).
    managed_projects: Mapped[list] = mapped_column(JSONType, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class SsoLoginState(Base):
    """A started login: single use, short-lived. Keyed by the digest of ``state``; bound to the browser by the
    digest of a cookie value."""

    __tablename__ = "sso_login_states"

    state_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    provider_id: Mapped[str] = mapped_column(ForeignKey("sso_providers.id", ondelete="CASCADE"), index=True)
    browser_hash: Mapped[str] = mapped_column(String(64))
    nonce: Mapped[str] = mapped_column(String(128))
    code_verifier: Mapped[str] = mapped_column(String(128))
    redirect_uri: Mapped[str] = mapped_column(String(1000))
    next_path: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class SsoOrgPolicy(Base):
    __tablename__ = "sso_org_policies"

    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True)
    sso_only: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
