"""Feedback and annotation-queue bodies (camelCase on the wire).

Scores are on the 1-5 scale of the QA rubric ("scores above 4 out of 5", seed 004). The rubric criteria are
fixed: correctness, relevance, clarity, safety, format, each optional and each scored 1-5.
"""

from __future__ import annotations

import math
import re
from datetime import datetime
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from promptops.schemas import ApiModel, ApiOut
from promptops.validation import Ref, check_json

SCORE_MIN = 1.0
SCORE_MAX = 5.0
CRITERIA = ("correctness", "relevance", "clarity", "safety", "format")
Criterion = Literal["correctness", "relevance", "clarity", "safety", "format"]
TAG_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$"
QUEUE_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,63}$"
MAX_NOTES = 10_000
MAX_TAGS = 20
MAX_ENQUEUE = 500
SCORE_RANGE_MESSAGE = f"must be between {SCORE_MIN:g} and {SCORE_MAX:g} (the QA rubric scale)"
# Documents the range for OpenAPI; the validators below enforce it (with the message above).
SCORE_SCHEMA: dict[str, Any] = {"minimum": SCORE_MIN, "maximum": SCORE_MAX}


def check_score(value: float | None, what: str = "score") -> float | None:
    """``value`` if it is a finite number on the 1-5 scale; a ValueError naming the scale otherwise."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(f"{what} must be a number {SCORE_RANGE_MESSAGE}")
    if not math.isfinite(value) or not SCORE_MIN <= value <= SCORE_MAX:
        raise ValueError(f"{what} {SCORE_RANGE_MESSAGE}, got {value}")
    return float(value)


class FeedbackPayload(ApiModel):
    """Seed 004 ``FeedbackPayload`` for ``POST /api/prompt/feedback``: {promptId, user, score, notes}."""

    prompt_id: Ref = Field(
        min_length=1,
        max_length=300,
        description="A prompt id (prm_...), a version id (ver_...) or a reference: name, name@label, name@3",
    )
    user: str = Field(
        default="", max_length=200, description="Who the feedback is from (default: the caller's name)"
    )
    score: float = Field(description="1-5 on the QA rubric scale", json_schema_extra=SCORE_SCHEMA)
    notes: str = Field(default="", max_length=MAX_NOTES)

    @field_validator("score", mode="before")
    @classmethod
    def _score(cls, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"score must be a number {SCORE_RANGE_MESSAGE}")
        return check_score(float(check_json(value)))


class RatingFields(ApiModel):
    """What a rating says: at least one of score, thumbs or rubric; optional tags and notes."""

    score: float | None = Field(
        default=None, description="1-5 on the QA rubric scale", json_schema_extra=SCORE_SCHEMA
    )
    thumbs: Literal[1, -1] | None = Field(default=None, description="+1 (thumbs up) or -1 (thumbs down)")
    rubric: dict[Criterion, float] = Field(
        default_factory=dict, description="Per-criterion scores 1-5: " + ", ".join(CRITERIA)
    )
    tags: list[str] = Field(default_factory=list, max_length=MAX_TAGS)
    notes: str = Field(default="", max_length=MAX_NOTES)
    user: str = Field(
        default="", max_length=200, description="Who the feedback is from (default: the caller's name)"
    )

    @field_validator("score", mode="before")
    @classmethod
    def _score(cls, value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"score must be a number {SCORE_RANGE_MESSAGE}")
        return check_score(float(check_json(value)))

    @field_validator("thumbs", mode="before")
    @classmethod
    def _thumbs(cls, value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, bool) or value not in (1, -1):
            raise ValueError("thumbs must be 1 (up) or -1 (down)")
        return int(value)

    @field_validator("rubric", mode="before")
    @classmethod
    def _rubric(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        for criterion, score in value.items():
            if isinstance(score, bool) or not isinstance(score, int | float):
                raise ValueError(f"rubric.{criterion} must be a number {SCORE_RANGE_MESSAGE}")
            check_score(float(check_json(score)), f"rubric.{criterion}")
        return value

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: list[str]) -> list[str]:
        seen: list[str] = []
        for tag in value:
            if not 1 <= len(tag) <= 64 or not re.match(TAG_PATTERN, tag):
                raise ValueError(
                    f"invalid tag {tag!r}: 1-64 letters, digits, '_', '.', ':' or '-', "
                    "starting with a letter or digit"
                )
            if tag not in seen:
                seen.append(tag)
        return seen

    @model_validator(mode="after")
    def _something(self) -> RatingFields:
        if self.score is None and self.thumbs is None and not self.rubric:
            raise ValueError("give at least one of 'score' (1-5), 'thumbs' (1 or -1) or 'rubric'")
        return self


class FeedbackIn(RatingFields):
    """``POST /api/v1/feedback``: a rating of exactly one run, evaluation result or prompt version."""

    run_id: str | None = Field(default=None, max_length=40)
    eval_result_id: str | None = Field(default=None, max_length=40)
    prompt: Ref | None = Field(
        default=None,
        max_length=300,
        description="prm_ id, ver_ id, name, name@label or name@3 (rates the version, not one run)",
    )
    source: Literal["human", "automated"] = "human"

    @model_validator(mode="after")
    def _one_subject(self) -> FeedbackIn:
        given = [x for x in (self.run_id, self.eval_result_id, self.prompt) if x]
        if len(given) != 1:
            raise ValueError("give exactly one of 'runId', 'evalResultId' or 'prompt'")
        return self


class FeedbackOut(ApiOut):
    """A stored feedback record (the answer of both feedback endpoints)."""

    id: str
    prompt_id: str | None
    version_id: str | None
    user: str
    score: float | None
    notes: str
    created_at: datetime
    run_id: str | None
    eval_result_id: str | None
    thumbs: int | None
    rubric: dict[str, float]
    tags: list[str]
    source: str
    actor_id: str | None
    event_type: str = "FeedbackSubmitted"


class FeedbackPage(ApiOut):
    items: list[FeedbackOut]
    next_cursor: str | None


class CriterionSummary(ApiOut):
    count: int
    mean: float | None


class FeedbackAggregate(ApiOut):
    """Aggregates over a set of feedback records."""

    count: int
    scored: int
    mean_score: float | None
    min_score: float | None
    max_score: float | None
    score_histogram: dict[str, int]
    thumbs_up: int
    thumbs_down: int
    rubric: dict[str, CriterionSummary]
    tags: dict[str, int]
    last_at: datetime | None


class VersionFeedbackOut(FeedbackAggregate):
    version_id: str
    version: int | None


class FeedbackSummaryOut(ApiOut):
    prompt_id: str | None
    name: str | None
    overall: FeedbackAggregate
    versions: list[VersionFeedbackOut]


# --- annotation queue -----------------------------------------------------------------------------------------


class SampleIn(ApiModel):
    """Enqueue the most recent successful runs of a prompt (or of one version: name@label, name@3)."""

    prompt: Ref = Field(min_length=1, max_length=300)
    source: Literal["playground", "eval", "gateway", "sdk", "experiment"] | None = None
    limit: int = Field(default=20, ge=1, le=MAX_ENQUEUE)
    since: datetime | None = None


class EnqueueIn(ApiModel):
    queue: str = Field(default="default", pattern=QUEUE_PATTERN, max_length=64)
    run_ids: list[str] = Field(default_factory=list, max_length=MAX_ENQUEUE)
    eval_result_ids: list[str] = Field(default_factory=list, max_length=MAX_ENQUEUE)
    sample: SampleIn | None = None

    @model_validator(mode="after")
    def _something(self) -> EnqueueIn:
        if not self.run_ids and not self.eval_result_ids and self.sample is None:
            raise ValueError("give 'runIds', 'evalResultIds' and/or a 'sample' {prompt, source, limit}")
        if len(self.run_ids) + len(self.eval_result_ids) > MAX_ENQUEUE:
            raise ValueError(f"at most {MAX_ENQUEUE} items per request")
        for ids in (self.run_ids, self.eval_result_ids):
            if any(not i or len(i) > 40 for i in ids):
                raise ValueError("ids must be 1-40 characters")
        return self


class NextIn(ApiModel):
    queue: str = Field(default="default", pattern=QUEUE_PATTERN, max_length=64)
    prompt: str | None = Field(default=None, max_length=300, description="Only items of this prompt")


class SkipIn(ApiModel):
    reason: str = Field(default="", max_length=2000)


class RateIn(RatingFields):
    """``POST /api/v1/annotations/{id}/rate``: a rating of the item's run or evaluation result."""


class SubjectOut(ApiOut):
    """What the analyst rates: the run's (or evaluation result's) input and output."""

    kind: Literal["run", "eval_result"]
    id: str
    run_id: str | None
    eval_run_id: str | None = None
    case_key: str | None = None
    expected: str | None = None
    provider: str | None = None
    model: str | None = None
    input: dict[str, Any] | None
    output: str | None
    status: str | None
    created_at: datetime | None


class AnnotationOut(ApiOut):
    id: str
    queue: str
    status: Literal["pending", "claimed", "done", "skipped"]
    run_id: str | None
    eval_result_id: str | None
    prompt_id: str | None
    version_id: str | None
    claimed_by: str | None
    claimed_at: datetime | None
    claim_expires_at: datetime | None
    feedback_id: str | None
    skip_reason: str
    created_by: str | None
    created_at: datetime
    updated_at: datetime
    subject: SubjectOut | None = None


class AnnotationPage(ApiOut):
    items: list[AnnotationOut]
    next_cursor: str | None


class EnqueueOut(ApiOut):
    queue: str
    created: list[AnnotationOut]
    already_queued: list[str] = Field(description="Run / evaluation result ids already waiting in the queue")


class RateOut(ApiOut):
    item: AnnotationOut
    feedback: FeedbackOut
