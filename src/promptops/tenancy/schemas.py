"""Project bodies."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field, field_validator

from promptops.governance.rbac import Role
from promptops.schemas import ApiModel, ApiOut


class ProjectIn(ApiModel):
    name: str = Field(min_length=1, max_length=63)
    description: str = Field(default="", max_length=2000)


class ProjectSettingsIn(ApiModel):
    deployable_labels: list[str] | None = Field(
        default=None, max_length=20, description="Labels whose moves are deployments (need label:deploy)"
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
