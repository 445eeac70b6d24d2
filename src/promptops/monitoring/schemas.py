"""Monitoring wire shapes (camelCase JSON); class names carry a ``Monitoring``/``OnlineEval``/``Drift`` prefix."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from promptops.evals.schemas import ScorerSpec
from promptops.schemas import ApiModel, ApiOut

MonitoringBucket = Literal["hour", "day"]
MonitoringMetric = Literal[
    "volume",
    "error_rate",
    "latency_p50_ms",
    "latency_p95_ms",
    "tokens",
    "cost_usd",
    "feedback_mean",
    "online_eval_pass_rate",
]
OnlineEvalSource = Literal["gateway", "sdk", "playground", "experiment"]
OnlineEvalStatus = Literal["pending", "done", "failed"]
ALL_SOURCES: tuple[OnlineEvalSource, ...] = ("gateway", "sdk", "playground", "experiment")
MAX_SCORERS = 10


class MonitoringStatsOut(ApiOut):
    """Every metric of one bucket (or a total): volume, errors, tokens, cost, latency, feedback, online scores."""

    runs: int
    errors: int
    error_rate: float | None
    input_tokens: int
    output_tokens: int
    tokens: int
    cost_usd: float
    latency_ms_avg: float | None
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    feedback_count: int
    feedback_scored: int
    feedback_mean: float | None  # 1-5
    thumbs_up: int
    thumbs_down: int
    online_scored: int
    online_passed: int
    online_failed: int
    online_eval_pass_rate: float | None
    online_score_mean: float | None


class MonitoringPointOut(MonitoringStatsOut):
    bucket_start: datetime
    version_id: str


class MonitoringIntervalOut(ApiOut):
    start: datetime
    end: datetime | None  # None: still serving


class MonitoringVersionOut(ApiOut):
    version_id: str
    version: int | None
    serving: list[MonitoringIntervalOut]  # when the version served the label (empty without a label)
    totals: MonitoringStatsOut


class MonitoringSeriesOut(ApiOut):
    prompt_id: str
    prompt_name: str
    label: str | None
    from_: datetime = Field(alias="from")
    to: datetime
    bucket: MonitoringBucket
    buckets: list[datetime]
    versions: list[MonitoringVersionOut]
    points: list[MonitoringPointOut]  # one per (bucket, version) that has data
    overall: list[MonitoringPointOut]  # one per bucket, every version summed (versionId "")
    totals: MonitoringStatsOut


class MonitoringMetricOut(ApiOut):
    prompt_name: str
    label: str | None
    metric: MonitoringMetric
    from_: datetime = Field(alias="from")
    to: datetime
    value: float | None  # None: undefined for the window (no runs for a rate, no scores for a mean)
    samples: int


class DriftSignalOut(ApiOut):
    name: str
    statistic: float
    threshold: float
    drifted: bool
    detail: str
    p_value: float | None
    baseline_value: float | None
    current_value: float | None
    change_point_at: datetime | None


class DriftSkippedOut(ApiOut):
    name: str
    reason: str


class DriftWindowOut(ApiOut):
    from_: datetime = Field(alias="from")
    to: datetime
    runs: int  # runs read (a sample of at most 2,000)
    scores: int  # online-evaluation scores read


class DriftReportOut(ApiOut):
    prompt_id: str
    prompt_name: str
    label: str | None
    drifted: bool
    alpha: float
    current: DriftWindowOut
    baseline: DriftWindowOut
    signals: list[DriftSignalOut]
    skipped: list[DriftSkippedOut]
    run_ids: list[str]  # up to 200 runs of the current window behind the drifted signals


class OnlineEvalConfigIn(ApiModel):
    """Score a share of production runs after the fact. No ``prompt``: the project-wide default; ``label``:
    only runs of the versions serving it (needs ``prompt``)."""

    prompt: str | None = Field(default=None, min_length=1, max_length=200, description="Prompt name or id")
    label: str | None = Field(default=None, min_length=1, max_length=63)
    sample_rate: float = Field(ge=0, le=1, description="Share of matching runs scored, 0-1")
    scorers: list[ScorerSpec] = Field(min_length=1, max_length=MAX_SCORERS)
    pass_threshold: float = Field(default=1.0, ge=0, le=1)
    sources: list[OnlineEvalSource] = Field(
        default_factory=lambda: list(ALL_SOURCES), min_length=1, max_length=4
    )
    enabled: bool = True


class OnlineEvalConfigOut(ApiOut):
    id: str
    prompt_id: str | None
    prompt_name: str | None
    label: str | None
    sample_rate: float
    scorers: list[dict[str, Any]]
    pass_threshold: float
    sources: list[str]
    enabled: bool
    scanned_until: datetime
    created_at: datetime
    updated_at: datetime


class OnlineEvalConfigListOut(ApiOut):
    items: list[OnlineEvalConfigOut]


class OnlineEvalSampleOut(ApiOut):
    id: str
    config_id: str
    run_id: str
    prompt_id: str
    version_id: str | None
    run_created_at: datetime
    status: OnlineEvalStatus
    score: float | None
    passed: bool | None
    scores: list[dict[str, Any]]
    error: str | None
    created_at: datetime
    scored_at: datetime | None


class OnlineEvalSamplePage(ApiOut):
    items: list[OnlineEvalSampleOut]
    next_cursor: str | None
