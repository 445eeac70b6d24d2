"""Project bodies."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from promptops.governance.rbac import Role
from promptops.schemas import ApiModel, ApiOut


class ProjectIn(ApiModel):
    name: str = Field(min_length=1, max_length=63)
    description: str = Field(default="", max_length=2000)


class LintSettingsIn(ApiModel):
    """``settings.lint``: which rules run, at what severity, and which label moves lint findings block."""

    disabled: list[str] = Field(default_factory=list, max_length=50, description="Rule ids or slugs to skip")
    severity: dict[str, Literal["error", "warning", "info"]] = Field(
        default_factory=dict, max_length=50, description="Severity overrides by rule id or slug"
    )
    block_on_labels: list[str] = Field(
        default_factory=list, max_length=20, description="Labels that only accept versions passing lint"
    )
    block_on: Literal["error", "warning"] = "error"
    context_tokens: int | None = Field(
        default=None, ge=1, le=100_000_000, description="Context window when the model's is unknown"
    )
    expected_labels: list[str] | None = Field(
        default=None, max_length=100, description="Exact output labels every prompt must name"
    )

    @model_validator(mode="after")
    def _rules(self) -> LintSettingsIn:
        from promptops.registry.schemas import validate_label_list
        from promptops.templates.lint import rule_for, unknown_rules_message

        unknown = sorted({key for key in [*self.disabled, *self.severity] if rule_for(key) is None})
        if unknown:
            raise ValueError(unknown_rules_message(unknown))
        validate_label_list(self.block_on_labels)
        return self


class ApprovalRuleIn(ApiModel):
    """How many approvals a label needs, and from which roles."""

    required: int = Field(default=1, ge=1, le=10, strict=True, description="Approvals needed (1-10)")
    roles: list[Role] = Field(
        default_factory=lambda: [Role.PROMPT_ENGINEER, Role.ADMIN],
        min_length=1,
        max_length=5,
        description="Roles whose approvals count (each must hold approval:review)",
    )

    @field_validator("roles")
    @classmethod
    def _reviewing_roles(cls, value: list[Role]) -> list[Role]:
        from promptops.governance.rbac import Permission, has_permission

        cannot = [r.value for r in value if not has_permission(r, Permission.APPROVAL_REVIEW)]
        if cannot:
            raise ValueError(f"role(s) {', '.join(cannot)} cannot review (they lack approval:review)")
        return sorted(set(value), key=lambda r: r.value)


class ApprovalSettingsIn(ApiModel):
    """``settings.approvals``: labels whose moves need approvals, and the rollback fast path."""

    labels: dict[str, ApprovalRuleIn] = Field(
        default_factory=dict, max_length=20, description="Gated labels and their rules"
    )
    rollback: Literal["previousVersion", "sameAsForward", "admins"] = Field(
        default="previousVersion",
        description="previousVersion: a rollback to a version that held the label before needs no approval; "
        "sameAsForward: rollbacks need the same approvals as any move; admins: admins roll back at once",
    )

    @field_validator("labels")
    @classmethod
    def _label_names(cls, value: dict[str, ApprovalRuleIn]) -> dict[str, ApprovalRuleIn]:
        from promptops.registry.schemas import validate_label_list

        validate_label_list(list(value))
        return value


class ProjectPrivacySettingsIn(ApiModel):
    """``settings.privacy``: personal data in what the project stores."""

    seal_run_payloads: bool = Field(
        default=False,
        strict=True,
        description="Seal runs' inputs, outputs, tool calls and error messages when stored: under the end "
        "user's key for gateway calls that name one, else under the project's run-payload key, so erasing "
        "either shreds them (default off; runs stored before it was turned on stay as they are)",
    )


class ProjectSettingsIn(ApiModel):
    deployable_labels: list[str] | None = Field(
        default=None, max_length=20, description="Labels whose moves are deployments (need label:deploy)"
    )
    lint: LintSettingsIn | None = Field(default=None, description="Prompt lint configuration")
    approvals: ApprovalSettingsIn | None = Field(
        default=None, description="Labels that need approvals before a version may take them"
    )
    privacy: ProjectPrivacySettingsIn | None = Field(
        default=None, description="Personal-data settings (sealing run payloads)"
    )
    gateway_rate_limit_per_minute: int | None = Field(
        default=None,
        ge=0,
        le=1_000_000,
        strict=True,
        description="Gateway requests a minute per API key or user of this project (0: no limit); a key's own "
        "rateLimitPerMinute wins",
    )
    gateway_monthly_budget_usd: float | None = Field(
        default=None,
        ge=0,
        le=1_000_000_000,
        strict=True,
        allow_inf_nan=False,
        description="Model spend this project may reach per calendar month (UTC) before the gateway answers "
        "429 (0: no budget)",
    )

    @field_validator("deployable_labels")
    @classmethod
    def _labels(cls, value: list[str] | None) -> list[str] | None:
        from promptops.registry.schemas import validate_label_list

        if value is not None:
            validate_label_list(value)
        return value


class ProjectUpdateIn(ApiModel):
    description: str | None = Field(default=None, max_length=2000)
    settings: ProjectSettingsIn | None = None


class ProjectOut(ApiOut):
    id: str
    org_id: str
    name: str
    description: str
    settings: dict[str, Any]
    role: Role
    created_at: datetime
