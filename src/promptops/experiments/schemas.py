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
ExperimentMode = Literal["ab", "bandit"]
MetricSource = Literal["events", "runs", "feedback"]

# Metrics the platform measures itself, from the runs served an arm's version (and their feedback):
# name -> (kind, direction). They are not posted as events.
PLATFORM_METRICS: dict[str, tuple[str, str]] = {
    "run.error": ("conversion", "decrease"),
    "run.latency_ms": ("continuous", "decrease"),
    "run.cost_usd": ("continuous", "decrease"),
    "feedback.score": ("continuous", "increase"),
    "feedback.thumbs": ("continuous", "increase"),
}


def metric_source(name: str) -> str:
    """Where a metric's values come from: posted events, the arm's runs, or the feedback on those runs."""
    if name.startswith("run."):
        return "runs"
    if name.startswith("feedback."):
        return "feedback"
    return "events"


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

    @model_validator(mode="after")
    def _platform(self) -> MetricIn:
        if metric_source(self.name) == "events":
            return self
        known = PLATFORM_METRICS.get(self.name)
        if known is None:
            raise ValueError(
                f"unknown platform metric {self.name!r}: 'run.' and 'feedback.' names are measured by PromptOps; "
                f"known: {', '.join(PLATFORM_METRICS)}"
            )
        self.kind, self.direction = known  # type: ignore[assignment]
        return self


DEFAULT_GUARDRAILS = (
    MetricIn(name="error", kind="conversion", direction="decrease", guardrail=True),
    MetricIn(name="latency_ms", kind="continuous", direction="decrease", guardrail=True),
    MetricIn(name="run.error", guardrail=True),
    MetricIn(name="run.latency_ms", guardrail=True),
    MetricIn(name="run.cost_usd", guardrail=True),
    MetricIn(name="feedback.score"),
)

MIN_ALLOCATION_INTERVAL, MAX_ALLOCATION_INTERVAL = 60, 7 * 24 * 3600


class BanditIn(ApiModel):
    """Bandit settings: the metric Thompson sampling optimises, how often the allocation is recomputed, and
    the least share every live arm keeps."""

    metric: str | None = Field(
        default=None, max_length=64, pattern=METRIC_PATTERN, description="Default: the primary metric"
    )
    interval_seconds: int = Field(
        default=3600,
        ge=MIN_ALLOCATION_INTERVAL,
        le=MAX_ALLOCATION_INTERVAL,
        description="Recompute the allocation this often (seconds)",
    )
    floor: float = Field(
        default=0.0, ge=0.0, le=0.2, description="Least share of new units every live arm keeps (exploration)"
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
    mode: ExperimentMode = Field(
        default="ab",
        description="'ab': fixed weights; 'bandit': Thompson sampling moves new units to the arms likely best",
    )
    bandit: BanditIn | None = Field(default=None, description="With mode 'bandit' (defaults apply)")

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
        if self.mode == "ab" and self.bandit is not None:
            raise ValueError("'bandit' settings need mode 'bandit'")
        if self.mode == "bandit":
            self.bandit = self.bandit or BanditIn()
            known = metric_names + [g.name for g in DEFAULT_GUARDRAILS if g.name not in metric_names]
            if self.bandit.metric is None:
                self.bandit.metric = metric_names[0]
            elif self.bandit.metric not in known:
                raise ValueError(
                    f"bandit metric {self.bandit.metric!r} is not a metric of this experiment: "
                    + ", ".join(known)
                )
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
    source: MetricSource = Field(description="events posted by the app, the arm's runs, or their feedback")


class BanditOut(ApiOut):
    metric: str
    interval_seconds: int
    floor: float
    next_allocation_at: datetime | None


class ExperimentOut(ApiOut):
    id: str
    name: str
    description: str
    prompt_id: str
    prompt_name: str
    label: str
    status: ExperimentStatus
    alpha: float
    mode: ExperimentMode
    bandit: BanditOut | None
    arms: list[ArmOut]
    metrics: list[MetricOut]
    shipped_arm: str | None
    pending_approval: str | None = Field(
        default=None, description="On ship to a label gated by approvals: the approval request made"
    )
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


class AllocationRunOut(ApiOut):
    """``POST /api/v1/experiments/{id}/allocation``: the allocation just computed."""

    allocation: AllocationOut


class GuardrailCheckOut(ApiOut):
    paused_arms: list[str] = Field(description="Arms paused by this check (empty when none is worse)")


class ExperimentTagOut(ApiOut):
    """On a resolve with ``unit``: the experiment and arm that unit is in (sticky)."""

    id: str
    arm: str
    model: str | None = Field(default=None, description="The arm's model override, when it has one")


class ArmMetricOut(ApiOut):
    arm: str
    n: int = Field(
        description="Units: exposed units for a conversion, units that reported for continuous; runs (or "
        "feedback records) for a platform metric"
    )
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
    source: MetricSource
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
    since: datetime | None = Field(
        description="A bandit's check counts the units first exposed since its current allocation"
    )
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


class BanditArmOut(ApiOut):
    name: str
    share: float = Field(description="Share of new units")
    probability_best: float = Field(description="Posterior chance that this arm is the best")
    mean: float | None = Field(description="Posterior mean of the bandit metric")
    n: int
    exposures: int


class AllocationOut(ApiOut):
    seq: int
    computed_at: datetime
    reason: str = Field(description="start | scheduled | manual")
    exposures: int
    regret: float | None = Field(description="Estimated cumulative regret at that time (the metric's unit)")
    arms: list[BanditArmOut]


class BanditResultsOut(ApiOut):
    metric: str
    kind: MetricKind
    direction: Direction
    best_arm: str | None
    regret: float | None = Field(
        description="Estimated cumulative regret now: sum over arms of units x (best posterior mean - the arm's)"
    )
    regret_per_unit: float | None
    allocation: list[AllocationOut] = Field(
        description="Every allocation, oldest first (allocation over time)"
    )


class SnapshotArmOut(ApiOut):
    arm: str
    n: int
    mean: float | None
    ci_low: float | None
    ci_high: float | None


class SnapshotOut(ApiOut):
    taken_at: datetime
    metric: str
    exposures: int
    arms: list[SnapshotArmOut]


class ResultsOut(ApiOut):
    experiment_id: str
    status: ExperimentStatus
    mode: ExperimentMode
    alpha: float
    test: str
    computed_at: datetime
    exposures: int
    arms: list[ArmExposureOut]
    metrics: list[MetricResultOut]
    sample_ratio: SampleRatioOut
    guardrail_violations: list[GuardrailOut]
    bandit: BanditResultsOut | None
    timeline: list[SnapshotOut] = Field(
        description="The primary metric per arm as the periodic task saw it (every 15 min at most while running)"
    )
