"""Request and response bodies of the optimizer API (``/api/v1/optimizations``, camelCase on the wire)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from promptops.evals.schemas import MAX_SCORERS, DatasetPin, ScorerSpec, StoredScorers
from promptops.jobs.lifecycle import JobPrincipal, JobSpec
from promptops.providers.schemas import ModelTarget
from promptops.schemas import ApiModel, ApiOut
from promptops.validation import Ref

MIN_BUDGET = 10
MAX_BUDGET = 5000
DEFAULT_BUDGET = 300


class ProposerIn(ApiModel):
    """Who proposes new candidates.

    ``deterministic``: the built-in operators only (few-shot examples from the training split, an output
    format line, role and instruction variants, output parameters, combinations). ``llm``: an OPRO-style
    meta-prompt to ``model``. ``mixed``: both. ``auto`` (default): ``mixed`` when a proposer model is given or
    the target is not the embedded local model (too weak to write prompts), else ``deterministic``.
    """

    mode: Literal["auto", "deterministic", "llm", "mixed"] = "auto"
    model: ModelTarget | None = None  # default: the target model
    per_round: int = Field(default=2, ge=1, le=10, description="LLM proposals asked for per round")


class OptimizationIn(ApiModel):
    # registry reference of the starting version: name, name@label, name@3 or a version id
    prompt: Ref = Field(min_length=1, max_length=250)
    # dataset name (latest version), name@N or a dataset version id
    dataset: Ref = Field(min_length=1, max_length=250)
    budget: int = Field(default=DEFAULT_BUDGET, ge=MIN_BUDGET, le=MAX_BUDGET, description="Model calls")
    # the model the prompt is optimized for (default: the version's modelConfig, else the local model)
    model: ModelTarget | None = None
    # default: label match against the expected output
    scorers: list[ScorerSpec] = Field(default_factory=list, max_length=MAX_SCORERS)
    train_fraction: float = Field(default=0.5, ge=0.1, le=0.9)
    seed: int = Field(default=0, ge=0, le=2**31 - 1)
    top_k: int = Field(default=3, ge=1, le=10)
    max_rounds: int = Field(default=10, ge=1, le=100)
    # stop after this many rounds without a better training score
    patience: int = Field(default=2, ge=1, le=20)
    candidates_per_round: int = Field(default=6, ge=1, le=20)
    proposer: ProposerIn = Field(default_factory=ProposerIn)
    # move this label to the winner when it beats the starting version on validation (needs label:write,
    # and label:deploy for deployable labels such as production; lint gates apply)
    promote_label: str | None = Field(
        default=None, min_length=1, max_length=63, pattern=r"^[a-z][a-z0-9_-]*$"
    )
    # caps on the split sizes (large datasets): at most this many cases per split
    max_train_cases: int = Field(default=200, ge=1, le=5000)
    max_val_cases: int = Field(default=200, ge=1, le=5000)
    concurrency: int = Field(default=8, ge=1, le=64)


# --- the stored spec of an optimization (Optimization.spec) ---------------------------------------------


class OptimizationDataset(DatasetPin):
    ref: str  # as the request named it


class ProposerSpec(JobSpec):
    mode: Literal["deterministic", "llm", "mixed"]
    target: ModelTarget
    per_round: int


class OptimizationSpec(JobSpec):
    """What an optimization searches with, pinned when it was created; ``Optimization.spec`` holds its JSON."""

    ref: str
    prompt_name: str
    version: int
    dataset: OptimizationDataset
    budget: int
    target: ModelTarget
    scorers: StoredScorers
    calls_per_case: int
    train_fraction: float
    seed: int
    top_k: int
    max_rounds: int
    patience: int
    candidates_per_round: int
    proposer: ProposerSpec
    promote_label: str | None = None
    concurrency: int = 8
    train_case_ids: list[str] = Field(default_factory=list)
    val_case_ids: list[str] = Field(default_factory=list)
    variables: list[str] = Field(default_factory=list)  # the variables the starting version uses
    base: dict[str, Any]  # the starting prompt as a Draft (optimize.search.mutations.Draft.to_json)
    principal: JobPrincipal

    def public(self) -> dict[str, Any]:
        """The spec as the API shows it: split sizes instead of case ids, without the acting principal."""
        out = self.dump(exclude={"principal", "train_case_ids", "val_case_ids"})
        out["trainCases"] = len(self.train_case_ids)
        out["valCases"] = len(self.val_case_ids)
        return out


class CandidateOut(ApiOut):
    id: str
    round: int
    strategy: str
    template: str
    parent_candidate_id: str | None
    train_score: float | None
    val_score: float | None
    calls: int
    status: str
    tokens: int
    recipe: dict[str, Any] = Field(default_factory=dict)
    details: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime


class CandidatePage(ApiOut):
    items: list[CandidateOut]


class OptimizationOut(ApiOut):
    id: str
    status: str
    prompt_id: str
    base_version_id: str
    dataset_version_id: str
    spec: dict[str, Any]
    budget: int
    calls_used: int
    round: int
    phase: str
    best_candidate_id: str | None
    best_train_score: float | None
    winner_version_id: str | None
    report: dict[str, Any]
    trajectory: list[dict[str, Any]] = Field(default_factory=list)
    cancel_requested: bool
    attempts: int
    error: str | None
    created_by: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class OptimizationPage(ApiOut):
    items: list[OptimizationOut]
    next_cursor: str | None
