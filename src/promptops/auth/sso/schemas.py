"""Bodies of the SSO endpoints (camelCase on the wire). Client secrets go in, never out."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from promptops.governance.rbac import Role
from promptops.schemas import ApiModel, ApiOut

SsoKind = Literal["generic", "entra", "okta", "keycloak", "google"]
MAX_SCOPES = 20
MAX_DOMAINS = 50
MAX_MAPPINGS = 200

ScopeStr = Annotated[
    str, StringConstraints(min_length=1, max_length=100, pattern=r"^[\x21\x23-\x5b\x5d-\x7e]+$")
]
DomainStr = Annotated[
    str, StringConstraints(min_length=1, max_length=253, pattern=r"^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$")
]


class SsoProviderIn(ApiModel):
    name: str = Field(
        min_length=1,
        max_length=63,
        pattern=r"^[a-z0-9][a-z0-9-]{0,62}$",
        description="Used in the login URL /api/v1/auth/sso/{name}/login; unique on the server",
    )
    display_name: str = Field(default="", max_length=100, description="Shown on the sign-in button")
    kind: SsoKind = Field(
        default="generic",
        description="Which provider's claim quirks apply (groups claim, Google hd, Entra email)",
    )
    issuer: str = Field(
        min_length=8, max_length=500, description="The issuer URL exactly as its discovery names it"
    )
    client_id: str = Field(min_length=1, max_length=255)
    client_secret: str = Field(min_length=1, max_length=1000, description="Stored encrypted; never returned")
    scopes: list[ScopeStr] | None = Field(
        default=None, max_length=MAX_SCOPES, description="Default: per kind"
    )
    allowed_domains: list[DomainStr] = Field(default_factory=list, max_length=MAX_DOMAINS)
    groups_claim: str | None = Field(
        default=None,
        max_length=100,
        pattern=r"^[A-Za-z0-9_:./-]*(,[A-Za-z0-9_:./-]+)*$",
        description="Claim(s) holding the groups, comma-separated, dotted for nested (realm_access.roles)",
    )
    link_existing_users: bool = Field(
        default=False, description="A first login whose email matches an existing user signs in as that user"
    )
    enabled: bool = True


class SsoProviderUpdateIn(ApiModel):
    """Issuer and client id cannot change (a different IdP must not inherit the mappings): delete and re-create."""

    display_name: str | None = Field(default=None, max_length=100)
    client_secret: str | None = Field(default=None, min_length=1, max_length=1000)
    scopes: list[ScopeStr] | None = Field(default=None, max_length=MAX_SCOPES)
    allowed_domains: list[DomainStr] | None = Field(default=None, max_length=MAX_DOMAINS)
    groups_claim: str | None = Field(
        default=None, max_length=100, pattern=r"^[A-Za-z0-9_:./-]*(,[A-Za-z0-9_:./-]+)*$"
    )
    link_existing_users: bool | None = None
    enabled: bool | None = None


class SsoProviderOut(ApiOut):
    id: str
    name: str
    display_name: str
    kind: str
    issuer: str
    client_id: str
    has_client_secret: bool = True
    scopes: list[str]
    allowed_domains: list[str]
    groups_claim: str
    link_existing_users: bool
    enabled: bool
    login_url: str
    callback_url: str = Field(description="The redirect URI to register at the identity provider")
    created_at: datetime
    updated_at: datetime


class SsoLoginOptionOut(ApiOut):
    name: str
    display_name: str
    login_url: str


class SsoRoleMappingIn(ApiModel):
    group: str = Field(
        min_length=1,
        max_length=256,
        description="A value of the groups claim; '*' maps every user of the provider",
    )
    role: Role


class SsoRoleMappingsIn(ApiModel):
    mappings: list[SsoRoleMappingIn] = Field(max_length=MAX_MAPPINGS)


class SsoRoleMappingOut(ApiOut):
    group: str
    role: Role


class SsoRoleMappingsOut(ApiOut):
    provider: str
    project_id: str
    mappings: list[SsoRoleMappingOut]


class SsoPolicyIn(ApiModel):
    sso_only: bool


class SsoPolicyOut(ApiOut):
    org_id: str
    sso_only: bool
    break_glass_email: str = Field(description="The bootstrap admin, who may still sign in with a password")


class SsoEndSessionOut(ApiOut):
    end_session_url: str | None = Field(
        description="Where to send the browser to end the identity provider's session too (null: none)"
    )
