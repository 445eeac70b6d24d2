"""Bodies of the identity endpoints (login, API keys, members)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import Field, field_validator

from promptops.governance.rbac import Role
from promptops.schemas import ApiModel, ApiOut

MAX_RATE_LIMIT_PER_MINUTE = 1_000_000


class LoginIn(ApiModel):
    email: str = Field(min_length=3, max_length=254)
    password: str = Field(min_length=1, max_length=1024)
    project: str | None = Field(default=None, max_length=100)
    totp_code: str | None = Field(
        default=None, max_length=12, description="The current two-factor code, for accounts that have one"
    )


class LoginOut(ApiOut):
    token: str
    token_type: str = "bearer"
    expires_at: datetime
    csrf_token: str
    user_id: str
    email: str
    project_id: str
    role: Role


class MeOut(ApiOut):
    kind: str
    id: str
    name: str
    project_id: str
    org_id: str
    role: Role
    permissions: list[str]


class ApiKeyIn(ApiModel):
    name: str = Field(min_length=1, max_length=100)
    role: Role
    expires_at: datetime | None = Field(default=None, description="UTC when no offset is given")
    rate_limit_per_minute: int | None = Field(
        default=None,
        ge=0,
        le=MAX_RATE_LIMIT_PER_MINUTE,
        strict=True,
        description="Gateway requests a minute for this key (0: no limit); null: the project's "
        "gatewayRateLimitPerMinute, else the server's default",
    )
    permissions: list[Annotated[str, Field(min_length=1, max_length=40)]] | None = Field(
        default=None,
        max_length=64,
        description="Limit the key to these permissions of its role (e.g. ['prompt:read']; 'read' stands for "
        "every read permission of the role); null: everything the role may do",
    )

    @field_validator("expires_at")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


class ApiKeyOut(ApiOut):
    id: str
    name: str
    role: Role
    prefix: str
    project_id: str
    created_by: str | None
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None
    rate_limit_per_minute: int | None = Field(
        default=None, description="The key's own gateway rate limit (null: the project's, else the server's)"
    )
    permissions: list[str] | None = Field(
        default=None, description="The permissions the key is limited to (null: everything its role may do)"
    )


class ApiKeyCreatedOut(ApiKeyOut):
    key: str = Field(description="The API key itself. Shown only in this response; store it now.")


class MemberIn(ApiModel):
    # The pattern documents the service's rule (an '@', not first); the service enforces it as invalid_email.
    email: str = Field(min_length=3, max_length=254, json_schema_extra={"pattern": r"^\s*[^\s@][\s\S]*@"})
    role: Role
    name: str = Field(default="", max_length=200)
    password: str | None = Field(default=None, min_length=8, max_length=1024)


class MemberUpdateIn(ApiModel):
    role: Role


class MemberOut(ApiOut):
    user_id: str
    email: str
    name: str
    role: Role
    project_id: str
    created_at: datetime


class TotpCodeIn(ApiModel):
    code: str = Field(
        min_length=6, max_length=12, description="A current 6-digit code from the authenticator"
    )


class TotpSetupOut(ApiOut):
    secret: str = Field(description="The base32 secret (shown only here); add it to an authenticator app")
    otpauth_uri: str = Field(description="The same secret as an otpauth:// URI (render it as a QR code)")


class TotpStateOut(ApiOut):
    enabled: bool
    pending: bool = Field(description="Set-up started but not yet confirmed with a code")
    confirmed_at: datetime | None = None
