"""Audit and contract (seed 004 §11) bodies."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field, model_validator

from promptops.schemas import ApiModel, ApiOut
from promptops.validation import DbInt, Ref


class AuditEventRecord(ApiOut):
    """Seed 004 ``AuditEventRecord`` (eventType, promptId, user, timestamp) plus the chain fields."""

    event_type: str
    prompt_id: str | None
    user: str | None
    timestamp: datetime
    id: str
    seq: int
    project_id: str | None = Field(description="The project (for an organization-chain event: the actor's)")
    actor_type: str
    actor_id: str | None
    request_id: str | None
    data: dict[str, Any]
    prev_hash: str
    hash: str


class AuditPage(ApiOut):
    events: list[AuditEventRecord]
    next_cursor: str | None


class ChainProblemOut(ApiOut):
    seq: int | None
    event_id: str | None
    kind: str
    detail: str


class VerifyOut(ApiOut):
    project_id: str
    ok: bool
    events_checked: int
    last_seq: int
    problems: list[ChainProblemOut]


AuditChain = Literal["project", "org"]


class AuditPublicKeyOut(ApiOut):
    key_id: str = Field(description="First 16 hex digits of SHA-256 over the raw public key")
    algorithm: str
    public_key: str = Field(description="Base64 of the 32 raw Ed25519 public-key bytes")
    public_key_pem: str
    valid_from: datetime
    valid_until: datetime | None = Field(description="When it was replaced; null for the current key")
    current: bool


class AuditPublicKeysOut(ApiOut):
    org_id: str
    keys: list[AuditPublicKeyOut]


class AuditCheckpointIn(ApiModel):
    chain: AuditChain = Field(default="project", description="project: your project's chain; org: sign-ins")


class AuditCheckpointOut(ApiOut):
    id: str
    chain: str
    chain_id: str
    org_id: str
    seq: int
    head_hash: str
    signed_at: datetime
    key_id: str
    signature: str
    trigger: str


class AuditCheckpointPage(ApiOut):
    checkpoints: list[AuditCheckpointOut]
    next_cursor: str | None


class RollbackRequest(ApiModel):
    """``POST /api/prompt/rollback``: restore a label (default production) to its previous or a named version."""

    prompt_id: Ref = Field(min_length=1, max_length=200, description="Prompt id (prm_...) or name")
    label: str = Field(default="production", max_length=63)
    to_version_id: str | None = Field(default=None, max_length=40)
    to_version: DbInt | None = None
    reason: str = Field(default="", max_length=2000)
    approver: str | None = Field(default=None, max_length=254)

    @model_validator(mode="after")
    def _one_target(self) -> RollbackRequest:
        if self.to_version_id is not None and self.to_version is not None:
            raise ValueError("give at most one of 'toVersionId' and 'toVersion'")
        return self


class RollbackResult(ApiOut):
    prompt_id: str
    name: str
    label: str
    previous_id: str | None
    previous_version: int | None
    current_id: str
    current_version: int
    event_type: str = "RollbackTriggered"
