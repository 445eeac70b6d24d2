"""Experiment bodies and answers (camelCase on the wire)."""

from __future__ import annotations

import math
import re
from datetime import datetime
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from promptops.registry.schemas import label_name_problem
from promptops.schemas import ApiModel, ApiOut
from promptops.validation import DB_INT_MAX, Ref

MIN_ARMS, MAX_ARMS = 2, 10
MAX_METRICS = 20
MAX_EVENTS = 1000
ARM_PATTERN = r"^[a-z][a-z0-9_-]{0,62}$"
METRIC_PATTERN = r"^[a-z][a-z0-9_.]{0,63}$"
MAX_WEIGHT = 1000.0
ExperimentStatus = Literal["draft", "running", "paused", "stopped", "shipped"]
MetricKind = Literal["conversion", "continuous"]
Direction = Literal["increase", "decrease"]


class ArmIn(ApiModel):
    """One arm: a version of the experiment's prompt (number or id), optionally on another model."""

    name: str | None = Field(
        default=None,
        max_length=63,
        description="Arm name (lowercase letters, digits, '-', '_'); default 'control', then 'b', 'c', ...",
    )
    version: int | None = Field(default=None, ge=1, le=DB_INT_MAX, description="Version number of the prompt")
    version_id: str | None = Field(default=None, max_length=40, description="Or the version's id (ver_...)")
    model: str | None = Field(
        default=None, min_length=1, max_length=200, description="Serve this model instead of the version's"
    )
    weight: float = Field(default=1.0, description=f"Traffic weight, > 0 and at most {MAX_WEIGHT:g}")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        if value is not None and not re.match(ARM_PATTERN, value):
            raise ValueError(
                f"invalid arm name {value!r}: 1-63 lowercase letters, digits, '-' or '_', starting with a letter"
            )
        return value

    @field_validator("weight", mode="before")
    @classmethod
    def _weight(cls, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError("weight must be a number")
        if not math.isfinite(value) or not 0 < value <= MAX_WEIGHT:
            raise ValueError(f"weight must be greater than 0 and at most {MAX_WEIGHT:g}, got {value}")
        return float(value)

    @model_validator(mode="after")
    def _one_version(self) -> ArmIn:
        if (self.version is None) == (self.version_id is None):
            raise ValueError("give exactly one of 'version' (a number) or 'versionId' for each arm")
        return self


class MetricIn(ApiModel):
    """A metric the application reports as outcome events. ``conversion``: 0/1 per event, a unit converts
    when any of its events is 1 (units without events count as 0); ``continuous``: the mean of a unit's
    values, over the units that reported one."""

    name: str = Field(max_length=64, pattern=METRIC_PATTERN)
    kind: MetricKind = "conversion"
    direction: Direction = Field(default="increase", description="Which way is better")
    guardrail: bool = Field(default=False, description="Pause an arm that is significantly worse on it")


DEFAULT_GUARDRAILS = (
    MetricIn(name="error", kind="conversion", direction="decrease", guardrail=True),
    MetricIn(name="latency_ms", kind="continuous", direction="decrease", guardrail=True),
)


class ExperimentIn(ApiModel):
    """``POST /api/v1/experiments``: a draft experiment on a prompt's label."""

    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=5000)
    prompt: Ref = Field(min_length=1, max_length=200, description="Prompt name or prm_ id")
    label: str = Field(default="production", max_length=63, description="The label whose traffic is split")
    arms: list[ArmIn] = Field(
        min_length=MIN_ARMS, max_length=MAX_ARMS, description="The first is the control"
    )
    metrics: list[MetricIn] = Field(
        default_factory=lambda: [MetricIn(name="conversion")],
        max_length=MAX_METRICS,
        description="The first is the primary metric; guardrails 'error' and 'latency_ms' are always added",
    )
    alpha: float = Field(default=0.05, gt=0, le=0.2, description="False-positive rate of the sequential test")

    @field_validator("label")
    @classmethod
    def _label(cls, value: str) -> str:
        problem = label_name_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _unique(self) -> ExperimentIn:
        names = [a.name for a in self.arms if a.name]
        if len(names) != len(set(names)):
            raise ValueError("arm names must be unique")
        metric_names = [m.name for m in self.metrics]
        if len(metric_names) != len(set(metric_names)):
            raise ValueError("metric names must be unique")
        if not self.metrics:
            raise ValueError("give at least one metric")
        return self


class ReasonIn(ApiModel):
    reason: str = Field(default="", max_length=500)


class ShipIn(ApiModel):
    """``POST /api/v1/experiments/{id}/ship``: point the label at this arm's version and end the experiment."""

    arm: str = Field(max_length=63, pattern=ARM_PATTERN)
    reason: str = Field(default="", max_length=500)


MAX_EVENT_VALUE = 1e9


class EventIn(ApiModel):
    unit: str = Field(
        min_length=1, max_length=200, description="The unit (user or session id) of the resolve"
    )
    metric: str = Field(max_length=64, pattern=METRIC_PATTERN)
    value: float = Field(
        default=1.0,
        description=f"0 or 1 for a conversion metric; a number within +-{MAX_EVENT_VALUE:g} otherwise",
    )

    @field_validator("value", mode="before")
    @classmethod
    def _value(cls, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise ValueError("value must be a finite number")
        if abs(value) > MAX_EVENT_VALUE:  # sums of squares must stay far from the database's float range
            raise ValueError(f"value must be within +-{MAX_EVENT_VALUE:g}")
        return float(value)


class EventsIn(ApiModel):
    """One event {unit, metric, value} or a batch {events: [...]} of at most 1000."""

    unit: str | None = Field(default=None, min_length=1, max_length=200)
    metric: str | None = Field(default=None, max_length=64, pattern=METRIC_PATTERN)
    value: float | None = None
    events: list[EventIn] | None = Field(default=None, min_length=1, max_length=MAX_EVENTS)

    @field_validator("value", mode="before")
    @classmethod
    def _value(cls, value: Any) -> Any:
        if value is None:
            return None
        return EventIn._value(value)

    @model_validator(mode="after")
    def _one_form(self) -> EventsIn:
        single = self.unit is not None or self.metric is not None or self.value is not None
        if self.events is not None and single:
            raise ValueError(
                "give either one event {unit, metric, value} or a batch {events: [...]}, not both"
            )
        if self.events is None and (self.unit is None or self.metric is None):
            raise ValueError(
                "give 'unit' and 'metric' (and 'value'), or 'events': [{unit, metric, value}, ...]"
            )
        return self

    def all_events(self) -> list[EventIn]:
        if self.events is not None:
            return self.events
        assert self.unit is not None and self.metric is not None
        return [EventIn(unit=self.unit, metric=self.metric, value=1.0 if self.value is None else self.value)]


# --- answers ----------------------------------------------------------------------------------------------------


class ArmOut(ApiOut):
    name: str
    version: int
    version_id: str
    model: str | None
    weight: float
    share: float = Field(description="The arm's share of the traffic (its weight over the sum)")
    control: bool
    paused: bool
    paused_reason: str


class MetricOut(ApiOut):
    name: str
    kind: MetricKind
    direction: Direction
    guardrail: bool


class ExperimentOut(ApiOut):
    id: str
    name: str
    description: str
    prompt_id: str
    prompt_name: str
    label: str
    status: ExperimentStatus
    alpha: float
    arms: list[ArmOut]
    metrics: list[MetricOut]
    shipped_arm: str | None
    created_by: str | None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    ended_at: datetime | None


class ExperimentPage(ApiOut):
    items: list[ExperimentOut]
    next_cursor: str | None


class EventsOut(ApiOut):
    accepted: int
    paused_arms: list[str] = Field(description="Arms a guardrail check run after these events paused")


class GuardrailCheckOut(ApiOut):
    paused_arms: list[str] = Field(description="Arms paused by this check (empty when none is worse)")


class ExperimentTagOut(ApiOut):
    """On a resolve with ``unit``: the experiment and arm that unit is in (sticky)."""

    id: str
    arm: str
    model: str | None = Field(default=None, description="The arm's model override, when it has one")


class ArmMetricOut(ApiOut):
    arm: str
    n: int = Field(description="Units: exposed units for a conversion, units that reported for continuous")
    mean: float | None
    ci_low: float | None
    ci_high: float | None


class ArmComparisonOut(ApiOut):
    arm: str
    control: str
    difference: float | None
    relative: float | None = Field(description="difference / the control's mean")
    ci_low: float | None = Field(description="Fixed-horizon 95% interval of the difference")
    ci_high: float | None
    sequence_low: float | None = Field(description="Always-valid (1 - alpha) confidence sequence")
    sequence_high: float | None
    p_value: float | None = Field(description="Always-valid mSPRT p-value")
    significant: bool
    better: bool | None = Field(description="Significant and in the metric's good direction")


class MetricResultOut(ApiOut):
    name: str
    kind: MetricKind
    direction: Direction
    guardrail: bool
    arms: list[ArmMetricOut]
    comparisons: list[ArmComparisonOut]


class ArmExposureOut(ApiOut):
    name: str
    version: int
    model: str | None
    weight: float
    paused: bool
    exposures: int


class SampleRatioOut(ApiOut):
    chi_square: float | None
    p_value: float | None
    mismatch: bool
    threshold: float
    arms: list[str] = Field(description="The arms tested (paused arms are left out)")


class GuardrailOut(ApiOut):
    arm: str
    metric: str
    difference: float | None
    p_value: float | None


class ResultsOut(ApiOut):
    experiment_id: str
    status: ExperimentStatus
    alpha: float
    test: str
    computed_at: datetime
    exposures: int
    arms: list[ArmExposureOut]
    metrics: list[MetricResultOut]
    sample_ratio: SampleRatioOut
    guardrail_violations: list[GuardrailOut]
