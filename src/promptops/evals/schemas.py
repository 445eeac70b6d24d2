"""Request and response bodies of the evaluation API (camelCase on the wire)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field, PlainSerializer, model_validator

from promptops.jobs.lifecycle import JobPrincipal, JobSpec
from promptops.providers.schemas import ModelTarget
from promptops.schemas import ApiModel, ApiOut, SmallJson
from promptops.validation import Ref

MAX_SCORERS = 20


class ScorerSpec(ApiModel):
    """One scorer of a case: ``type`` names a built-in (or an operator's entry-point) scorer.

    ``value`` is the scorer's argument (the substring, regex, schema, tolerance target ...); when it is
    omitted, scorers that compare against something use the case's ``expected``. The scorer passes when its
    score in [0, 1] reaches ``threshold`` (the scorer's own default when unset); ``negate`` inverts it.
    """

    type: str = Field(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_.:-]*$")
    name: str | None = Field(default=None, max_length=100)
    value: Any = None
    threshold: float | None = Field(default=None, ge=0, le=1)
    weight: float = Field(default=1.0, ge=0, le=1000)
    negate: bool = False
    options: SmallJson = Field(default_factory=dict)


class EvalRunIn(ApiModel):
    """Prompt versions x models x one dataset version, run as a background job."""

    name: str = Field(default="", max_length=200)
    # registry references: name, name@label, name@3 or a version id (ver_...)
    prompts: list[Ref] = Field(min_length=1, max_length=10)
    # dataset name (latest version), name@N, or a dataset version id (dsv_...)
    dataset: Ref = Field(min_length=1, max_length=250)
    # models to run each prompt on; empty = each version's modelConfig, else the local model
    models: list[ModelTarget] = Field(default_factory=list, max_length=10)
    scorers: list[ScorerSpec] = Field(default_factory=list, max_length=MAX_SCORERS)
    # extra variables merged under each case's input (case values win)
    variables: SmallJson = Field(default_factory=dict)
    concurrency: int = Field(default=8, ge=1, le=64)
    cache_ttl_seconds: int | None = Field(default=None, ge=1, le=30 * 24 * 3600)
    # a case passes when its weighted score reaches this and every scorer passed
    pass_threshold: float = Field(default=1.0, ge=0, le=1)
    # limit to cases carrying one of these tags
    tags: list[str] = Field(default_factory=list, max_length=20)
    limit: int | None = Field(default=None, ge=1, le=100_000)

    @model_validator(mode="after")
    def _distinct(self) -> EvalRunIn:
        if len(set(self.prompts)) != len(self.prompts):
            raise ValueError("prompts: the same reference is listed twice")
        return self


# --- the stored spec of a run (EvalRun.spec) -----------------------------------------------------------


def dump_scorers(scorers: list[ScorerSpec]) -> list[dict[str, Any]]:
    """Scorers as stored in a job's spec and shown by the API: unset options left out."""
    return [s.model_dump(exclude_none=True) for s in scorers]


StoredScorers = Annotated[list[ScorerSpec], PlainSerializer(dump_scorers, return_type=list[dict[str, Any]])]


class DatasetPin(JobSpec):
    """The dataset version a job was pinned to, by name and number (for messages and summaries)."""

    name: str
    version: int


class RunVersion(JobSpec):
    """One prompt version of a run and the models it runs on."""

    ref: str
    prompt_id: str
    prompt_name: str
    version_id: str
    version: int
    label: str  # name@version
    targets: list[ModelTarget]


class EvalRunSpec(JobSpec):
    """What an evaluation run runs, pinned when it was created; ``EvalRun.spec`` holds its JSON."""

    versions: list[RunVersion]
    scorers: StoredScorers
    variables: dict[str, Any] = Field(default_factory=dict)
    concurrency: int = 8
    cache_ttl_seconds: int | None = None
    pass_threshold: float = 1.0
    tags: list[str] = Field(default_factory=list)
    limit: int | None = None
    case_ids: list[str] = Field(default_factory=list)
    dataset: DatasetPin | None = None
    principal: JobPrincipal


class EvalRunOut(ApiOut):
    id: str
    name: str
    status: str
    dataset_id: str | None
    dataset_version_id: str | None
    dataset: dict[str, Any] = Field(default_factory=dict)
    versions: list[dict[str, Any]]
    scorers: list[dict[str, Any]]
    concurrency: int
    pass_threshold: float
    total_cells: int
    done_cells: int
    error_cells: int
    progress: float
    cancel_requested: bool
    attempts: int
    error: str | None
    summary: list[dict[str, Any]] = Field(default_factory=list)
    created_by: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class EvalRunPage(ApiOut):
    items: list[EvalRunOut]
    next_cursor: str | None


class EvalResultOut(ApiOut):
    id: str
    case_id: str
    case_key: str
    version_id: str
    target_index: int
    target: str
    output: str | None
    scores: list[dict[str, Any]]
    score: float
    passed: bool
    latency_ms: float
    input_tokens: int
    output_tokens: int
    cost_usd: float
    cached: bool
    error_class: str | None
    error_message: str | None
    run_id: str | None
    created_at: datetime


class EvalResultPage(ApiOut):
    items: list[EvalResultOut]
    next_cursor: str | None


class ComparisonOut(ApiOut):
    a: dict[str, Any]
    b: dict[str, Any]
    cases: int
    a_pass_rate: float
    b_pass_rate: float
    a_mean_score: float
    b_mean_score: float
    mcnemar: dict[str, Any]
    score_diff: dict[str, Any]
    significant: bool
    winner: str | None
    verdict: str
    cases_needed: int | None
    flipped: list[dict[str, Any]]


class ScorerTypeOut(ApiOut):
    type: str
    aliases: list[str]
    builtin: bool = Field(description="False for a scorer an operator installed (entry point)")
    description: str
    default_threshold: float
    value_kind: Literal["required", "reference", "optional", "none"] = Field(
        description="required: a value must be given; reference: the value, else the case's expected output"
    )
    options: list[str] = Field(description="Option names a built-in accepts (empty for operators' scorers)")


class LatestEvalOut(ApiOut):
    eval_run_id: str
    finished_at: datetime | None
    dataset: dict[str, Any] | None
    groups: list[dict[str, Any]]


# --- seed 004 §11 contract --------------------------------------------------------------------------------


class ContractTestCase(ApiModel):
    # a string binds to the prompt's single variable (or ``input``); an object gives every variable
    input: str | dict[str, Any] = Field(default="")
    expected: Any = None


class PromptEvalRequest(ApiModel):
    """Seed 004 PromptEvalRequest: ``prompt`` is raw template text or a registry reference."""

    prompt: str = Field(min_length=1, max_length=200_000)
    test_cases: list[ContractTestCase] = Field(alias="testCases", min_length=1, max_length=100)
    # optional extensions (not in the seed): the model and scorers to use
    model: ModelTarget | None = None
    scorers: list[ScorerSpec] = Field(default_factory=list, max_length=MAX_SCORERS)


class PromptEvalResult(ApiOut):
    """Seed 004 PromptEvalResult, plus the details a client needs to act on it."""

    prompt_id: str
    score: float
    feedback: str
    version_id: str | None = None
    pass_rate: float = 0.0
    cases: list[dict[str, Any]] = Field(default_factory=list)
    # labelled cases: always answering the majority label, a uniform guess, and whether the prompt beats them
    baselines: dict[str, Any] | None = None
