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


class ProjectSettingsIn(ApiModel):
    deployable_labels: list[str] | None = Field(
        default=None, max_length=20, description="Labels whose moves are deployments (need label:deploy)"
    )
    lint: LintSettingsIn | None = Field(default=None, description="Prompt lint configuration")
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
