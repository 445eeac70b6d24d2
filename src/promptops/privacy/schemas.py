"""Privacy wire formats (camelCase): subject exports, erasure results, retention policies."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field, model_validator

from promptops.schemas import ApiModel, ApiOut

MAX_RETENTION_DAYS = 36_500


class PrivacySubjectResolveIn(ApiModel):
    """Find the subject id of an end user (as applications name them in feedback) or of a user by email."""

    end_user: str | None = Field(default=None, min_length=1, max_length=200)
    email: str | None = Field(default=None, min_length=3, max_length=254)

    @model_validator(mode="after")
    def _exactly_one(self) -> PrivacySubjectResolveIn:
        if (self.end_user is None) == (self.email is None):
            raise ValueError("give exactly one of endUser or email")
        return self


class PrivacySubjectOut(ApiOut):
    subject_id: str
    kind: str  # user | end_user
    known: bool  # the project holds data of this subject (or the user is a member)
    erased: bool


class PrivacyErasureOut(ApiOut):
    subject_id: str
    kind: str
    erased_at: datetime
    already_erased: bool
    sessions_revoked: int


class PrivacyExportOut(ApiOut):
    """Everything the project holds about one data subject (a data subject access request)."""

    format: str = "promptops.dsar/v1"
    generated_at: datetime
    project_id: str
    subject_id: str
    kind: str
    erased: bool
    account: dict[str, Any] | None
    memberships: list[dict[str, Any]]
    feedback: list[dict[str, Any]]
    runs: list[dict[str, Any]]
    dataset_cases: list[dict[str, Any]] = Field(
        description="Dataset cases copied from the subject's sealed runs (sealed under the subject's key)."
    )
    audit_events: list[dict[str, Any]]
    truncated: list[str] = Field(description="Sections cut at the export limit (newest kept).")


class RetentionPolicyIn(ApiModel):
    """Days to keep runs / feedback (1-36500); null keeps them forever."""

    runs_days: int | None = Field(default=None, ge=1, le=MAX_RETENTION_DAYS)
    feedback_days: int | None = Field(default=None, ge=1, le=MAX_RETENTION_DAYS)


class RetentionPolicyOut(ApiOut):
    project_id: str
    runs_days: int | None
    feedback_days: int | None
    updated_by: str | None
    updated_at: datetime | None
    last_applied_at: datetime | None


class RetentionAppliedOut(ApiOut):
    project_id: str
    runs_deleted: int
    feedback_deleted: int
    runs_cutoff: datetime | None
    feedback_cutoff: datetime | None
