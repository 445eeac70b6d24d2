"""Approval request bodies and answers (camelCase on the wire)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from promptops.registry.schemas import DiffOut, LabelMoveOut, LintFindingOut
from promptops.schemas import ApiModel, ApiOut


class ApprovalDecisionIn(ApiModel):
    comment: str = Field(default="", max_length=2000, description="Why (required to reject)")


class ApprovalOverrideIn(ApiModel):
    note: str = Field(min_length=1, max_length=2000, description="Why the approvals are overridden (audited)")


class ApprovalCancelIn(ApiModel):
    note: str = Field(default="", max_length=2000)


class ApprovalDecisionOut(ApiOut):
    id: str
    decision: Literal["approve", "reject"]
    reviewer_id: str
    reviewer_name: str
    reviewer_role: str
    comment: str
    created_at: datetime


class ApprovalRequestOut(ApiOut):
    id: str
    prompt_id: str
    prompt_name: str
    label: str
    action: Literal["set", "rollback"]
    version: int
    version_id: str
    base_version: int | None = Field(description="The version on the label when the move was requested")
    base_version_id: str | None
    reason: str
    status: Literal["open", "applied", "rejected", "superseded", "cancelled", "overridden"]
    required: int
    approvals: int
    roles: list[str]
    requested_by: str
    requested_by_name: str
    author_id: str | None
    superseded_by: str | None
    resolved_by: str | None
    resolved_by_name: str | None
    resolution_note: str
    created_at: datetime
    resolved_at: datetime | None
    decisions: list[ApprovalDecisionOut]
    move: LabelMoveOut | None = Field(
        default=None, description="The label move made when this call met the rule (or overrode it)"
    )


class ApprovalPage(ApiOut):
    items: list[ApprovalRequestOut]
    next_cursor: str | None


class ApprovalLintOut(ApiOut):
    findings: list[LintFindingOut]
    blocking: int = Field(description="Findings at or above the project's lint blockOn severity")


class ApprovalEvalSideOut(ApiOut):
    version_id: str
    eval_run_id: str
    finished_at: datetime | None
    groups: list[dict[str, Any]]


class ApprovalEvalOut(ApiOut):
    """The latest completed evaluation of the requested version, of the current one, and their paired
    comparison when one evaluation (or two on shared cases) covers both."""

    candidate: ApprovalEvalSideOut | None
    current: ApprovalEvalSideOut | None
    comparison: dict[str, Any] | None
    note: str


class ApprovalReviewOut(ApiOut):
    """What a reviewer decides on: the request, the diff against the label's current version, the lint
    findings of the requested version and the latest evaluation of both."""

    request: ApprovalRequestOut
    current_version: int | None
    diff: DiffOut | None
    lint: ApprovalLintOut
    evaluation: ApprovalEvalOut
    can_decide: bool = Field(description="Whether you may approve or reject it (role, not your own, once)")
    why_not: str | None
