"""Audit and contract (seed 004 §11) bodies."""

from __future__ import annotations

from datetime import datetime
from typing import Any

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
    project_id: str
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
