"""Bodies and answers of the regression schedule API (camelCase on the wire)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field, field_validator

from promptops.evals.schemas import MAX_SCORERS, ScorerSpec
from promptops.providers.schemas import ModelTarget
from promptops.registry.schemas import label_name_problem
from promptops.schemas import ApiModel, ApiOut
from promptops.validation import Ref

MAX_MODELS = 5
ScheduleRunStatus = Literal["running", "baseline", "pass", "regressed", "failed"]


def _label(value: str) -> str:
    problem = label_name_problem(value)
    if problem:
        raise ValueError(problem)
    return value


class EvalScheduleIn(ApiModel):
    """``POST /api/v1/eval-schedules``: re-run a pinned dataset against ``prompt@label`` on a cron schedule."""

    name: str = Field(min_length=1, max_length=200, pattern=r"^[^\s].*$")
    prompt: Ref = Field(min_length=1, max_length=200, description="Prompt name or prm_ id")
    label: str = Field(default="production", max_length=63, description="The label whose version is re-run")
    cron: str = Field(
        min_length=9, max_length=120, description="Five-field cron expression, e.g. '0 3 * * *' (03:00 daily)"
    )
    timezone: str = Field(
        default="UTC", min_length=1, max_length=64, description="IANA zone, e.g. Europe/Riga"
    )
    dataset: Ref = Field(
        min_length=1,
        max_length=250,
        description="Dataset name (its latest version is pinned), name@N or dsv_ id",
    )
    scorers: list[ScorerSpec] = Field(
        default_factory=list, max_length=MAX_SCORERS, description="Default: from the expected outputs"
    )
    models: list[ModelTarget] = Field(
        default_factory=list, max_length=MAX_MODELS, description="Default: the version's own model"
    )
    pass_threshold: float = Field(default=1.0, ge=0, le=1)
    alpha: float = Field(
        default=0.05, gt=0, le=0.2, description="Significance level of the paired comparison"
    )
    enabled: bool = True

    @field_validator("label")
    @classmethod
    def _check_label(cls, value: str) -> str:
        return _label(value)


class EvalScheduleUpdate(ApiModel):
    """``PATCH /api/v1/eval-schedules/{id}``: change the timing, the comparison or switch it on/off."""

    name: str | None = Field(default=None, min_length=1, max_length=200, pattern=r"^[^\s].*$")
    cron: str | None = Field(default=None, min_length=9, max_length=120)
    timezone: str | None = Field(default=None, min_length=1, max_length=64)
    alpha: float | None = Field(default=None, gt=0, le=0.2)
    pass_threshold: float | None = Field(default=None, ge=0, le=1)
    enabled: bool | None = None


class EvalScheduleOut(ApiOut):
    id: str
    name: str
    prompt_id: str
    prompt_name: str
    label: str
    cron: str
    timezone: str
    description: str = Field(description="The cron expression in words")
    dataset: dict[str, Any] = Field(description="{name, version, versionId}: the pinned dataset version")
    scorers: list[dict[str, Any]]
    models: list[dict[str, Any]]
    pass_threshold: float
    alpha: float
    enabled: bool
    next_run_at: datetime | None
    last_run_at: datetime | None
    baseline_eval_run_id: str | None = Field(description="The last good run the next run is compared with")
    last_status: ScheduleRunStatus | None = None
    created_by: str | None
    created_at: datetime
    updated_at: datetime


class EvalSchedulePage(ApiOut):
    items: list[EvalScheduleOut]
    next_cursor: str | None


class EvalScheduleRunOut(ApiOut):
    id: str
    schedule_id: str
    status: ScheduleRunStatus
    scheduled_for: datetime
    eval_run_id: str | None
    version_id: str | None
    version: int | None
    baseline_eval_run_id: str | None
    pass_rate: float | None
    mean_score: float | None
    comparison: dict[str, Any] | None = Field(
        description="The paired comparison with the baseline (McNemar, bootstrap CI, verdict)"
    )
    error: str | None
    started_at: datetime
    finished_at: datetime | None


class EvalScheduleRunPage(ApiOut):
    items: list[EvalScheduleRunOut]
    next_cursor: str | None
