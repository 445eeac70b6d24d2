"""Bodies of the seed 004 ``POST /api/prompt/generate`` and ``POST /api/prompt/refine`` (camelCase on the wire).

The seed's fields (``task``, ``context``, ``templateId``, ``count``; ``candidates[].prompt/score/modelVersion``)
keep their names and meaning; everything else is an optional extension.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from promptops.evals.schemas import ScorerSpec
from promptops.providers.schemas import ModelTarget
from promptops.schemas import ApiModel, ApiOut, SmallJson
from promptops.validation import Ref

MAX_SCORERS = 10
GenerateStrategy = Literal[
    "llm", "structural", "clarify", "role", "format", "step-by-step", "few-shot", "constrain-length"
]
RefineStrategy = Literal["tighten-format", "counter-examples", "critique-and-edit", "apply-notes"]


class PromptGenerationRequest(ApiModel):
    """Seed 004 PromptGenerationRequest, plus optional extensions."""

    task: str = Field(min_length=1, max_length=4000)
    context: str = Field(default="", max_length=20_000)
    # a registry reference (name, name@label, name@3) or a version id: the prompt the candidates start from
    template_id: Ref | None = Field(default=None, max_length=250)
    count: int = Field(default=4, ge=1, le=20)
    # --- extensions ---
    # where new drafts are saved when there is no templateId (default generated/<slug of task>)
    name: str | None = Field(default=None, max_length=200)
    # dataset (name, name@N or dsv_ id): few-shot examples are drawn from it and candidates are quick-evaluated
    dataset: Ref | None = Field(default=None, max_length=250)
    # the model that writes LLM candidates and answers the quick evaluation (default: templateId's model
    # config, else the local model)
    model: ModelTarget | None = None
    strategies: list[GenerateStrategy] | None = Field(default=None, max_length=10)
    scorers: list[ScorerSpec] = Field(default_factory=list, max_length=MAX_SCORERS)
    # input variables of a new prompt (default: the dataset's input keys, else ["input"])
    variables: list[str] | None = Field(default=None, max_length=20)
    max_cases: int = Field(default=8, ge=1, le=50)
    seed: int = Field(default=0, ge=0, le=2**31 - 1)


class PromptCandidate(ApiOut):
    """Seed 004 candidate (``prompt``, ``score``, ``modelVersion``) and where it was saved."""

    prompt: str
    score: float
    # the model that wrote the candidate ("provider/model"), or "structural" for deterministic assembly
    model_version: str
    prompt_id: str
    version_id: str
    version: int
    strategy: str
    quality_score: float
    lint_findings: int
    eval_score: float | None = None
    pass_rate: float | None = None
    eval_model: str | None = None
    model_config_: dict[str, Any] = Field(default_factory=dict, alias="modelConfig")


class DiscardedCandidate(ApiOut):
    strategy: str
    reason: str


class PromptCandidateList(ApiOut):
    """Seed 004 PromptCandidateList: ``candidates`` best first, plus how they were scored."""

    candidates: list[PromptCandidate]
    prompt_id: str
    name: str
    template_id: str | None = None
    base_version_id: str | None = None
    dataset_version_id: str | None = None
    cases: int = 0
    scoring: str = ""
    discarded: list[DiscardedCandidate] = Field(default_factory=list)


class RefineAccept(ApiModel):
    """The proposal a ``dryRun`` answered (its ``prompt`` text, ``strategy`` and ``modelConfig.params``),
    possibly edited by the reviewer, to save as the refined version."""

    template: str = Field(min_length=1, max_length=100_000)
    strategy: str = Field(default="reviewed", max_length=64)
    params: SmallJson | None = None


class PromptRefineRequest(ApiModel):
    """``prompt`` (or raw ``text``) + feedback -> an improved version (seed 004 ``/api/prompt/refine``)."""

    # registry reference (name, name@label, name@3) or a version id
    prompt: Ref | None = Field(default=None, min_length=1, max_length=250)
    # raw template text instead of a registry reference (an editor selection): proposed only, nothing saved
    text: str | None = Field(default=None, min_length=1, max_length=100_000)
    feedback: str = Field(default="", max_length=10_000)
    # also use the version's recent feedback notes and low ratings
    use_feedback: bool = False
    # failed cases of this evaluation (for this version) become counter-examples and the test set
    eval_run_id: str | None = Field(default=None, max_length=40)
    dataset: Ref | None = Field(default=None, max_length=250)
    model: ModelTarget | None = None
    strategies: list[RefineStrategy] | None = Field(default=None, max_length=4)
    scorers: list[ScorerSpec] = Field(default_factory=list, max_length=MAX_SCORERS)
    max_cases: int = Field(default=12, ge=1, le=50)
    # Review before saving: ``dryRun`` proposes and saves nothing (versionId/version are null); ``accept`` saves
    # a reviewed proposal (possibly edited) as the refined version without calling a model again.
    dry_run: bool = False
    accept: RefineAccept | None = None

    @model_validator(mode="after")
    def _one_step(self) -> PromptRefineRequest:
        if self.dry_run and self.accept is not None:
            raise ValueError("dryRun proposes and accept saves: send one of them, not both")
        if (self.prompt is None) == (self.text is None):
            raise ValueError("send 'prompt' (a registry reference) or 'text' (raw template text), not both")
        if self.text is not None and (self.accept is not None or self.use_feedback or self.eval_run_id):
            raise ValueError(
                "raw 'text' is refined without saving: 'accept', 'useFeedback' and 'evalRunId' need a registry "
                "'prompt'"
            )
        return self


class RefineCandidateOut(ApiOut):
    strategy: str
    applied: bool
    note: str
    score: float | None = None
    pass_rate: float | None = None


class PromptRefineResult(ApiOut):
    """The saved refined version, why it was chosen, and what changed."""

    prompt_id: str
    version_id: str | None = Field(description="Null for a dryRun: nothing was saved")
    parent_id: str
    version: int | None = Field(description="Null for a dryRun: nothing was saved")
    prompt: str
    rationale: str
    diff: str
    strategy: str
    scores: dict[str, Any] | None = None
    model_config_: dict[str, Any] = Field(default_factory=dict, alias="modelConfig")
    deltas: dict[str, Any] = Field(default_factory=dict)
    candidates: list[RefineCandidateOut] = Field(default_factory=list)
    feedback_used: dict[str, Any] = Field(default_factory=dict)
