"""Wire shapes of the dashboards' aggregate endpoints (camelCase JSON)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from promptops.schemas import ApiOut

Bucket = Literal["hour", "day", "week"]
QualityBucket = Literal["day", "week"]
GroupBy = Literal["none", "prompt", "model", "version", "source"]
TopBy = Literal["prompt", "model"]
TopMetric = Literal["cost", "runs", "errors", "latency"]


class UsageStats(ApiOut):
    runs: int
    errors: int
    error_rate: float | None
    input_tokens: int
    output_tokens: int
    cost_usd: float
    latency_ms_avg: float | None
    latency_ms_p50: float | None
    latency_ms_p95: float | None


class UsagePoint(UsageStats):
    bucket_start: datetime
    key: str


class SeriesKey(ApiOut):
    """One series: ``key`` is what points carry; ``label`` is readable (prompt name, ``provider/model``, ...)."""

    key: str
    label: str
    prompt_id: str | None = None
    prompt_name: str | None = None
    version: int | None = None
    provider: str | None = None
    model: str | None = None
    source: str | None = None


class UsageSeriesOut(ApiOut):
    from_: datetime = Field(alias="from")
    to: datetime
    bucket: Bucket
    group_by: GroupBy
    buckets: list[datetime]
    keys: list[SeriesKey]
    series: list[UsagePoint]
    totals: UsageStats
    other_keys: int  # groups folded into the key "other" beyond the ``limit`` largest


class TopItem(UsageStats):
    key: SeriesKey


class TopOut(ApiOut):
    from_: datetime = Field(alias="from")
    to: datetime
    by: TopBy
    metric: TopMetric
    items: list[TopItem]


class FeedbackPoint(ApiOut):
    bucket_start: datetime
    count: int
    scored: int
    mean_score: float | None
    thumbs_up: int
    thumbs_down: int


class EvalPoint(ApiOut):
    bucket_start: datetime
    evaluations: int
    results: int
    mean_score: float | None
    pass_rate: float | None


class EvalVersionPoint(ApiOut):
    bucket_start: datetime
    version_id: str
    prompt_name: str | None
    version: int | None
    results: int
    mean_score: float | None


class QualityOut(ApiOut):
    from_: datetime = Field(alias="from")
    to: datetime
    bucket: QualityBucket
    buckets: list[datetime]
    feedback: list[FeedbackPoint]
    evals: list[EvalPoint]
    eval_versions: list[EvalVersionPoint]
    truncated: bool  # more than 100,000 records in the range: summarised from the newest
