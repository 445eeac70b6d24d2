"""The shapes every scorer shares: what it reads (:class:`ScoreInput`), what it returns (:class:`Outcome`),
what a case ends up with (:class:`ScorerResult`, :class:`CaseScore`), and how a scorer reaches models
(:class:`ModelAccess`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple, Protocol, runtime_checkable

import orjson

from promptops.evals.schemas import ScorerSpec
from promptops.providers.schemas import ModelTarget

MAX_REASON_CHARS = 2000
MAX_DETAILS_BYTES = 16_384


@dataclass(frozen=True)
class ScoreInput:
    """One model answer to score, with what the case expected and what the call cost."""

    output: str | None  # the model's answer; None when the call failed
    expected: str | None  # the case's expected output
    variables: dict[str, Any]  # the case's input variables
    prompt_text: str  # the rendered prompt (text, or the chat messages joined), shown to judges
    latency_ms: float = 0.0
    cost_usd: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    error: str | None = None  # the error code when the call failed


class Outcome(NamedTuple):
    """What one scorer says about one answer.

    ``score`` is in [0, 1] before ``negate``. ``passed`` is normally left ``None``: the scorer passes when its
    score reaches the threshold. A scorer with its own pass rule (``levenshtein`` with ``max_distance``) sets
    it. Custom scorers may return a plain ``(score, reason, details)`` tuple.
    """

    score: float
    reason: str
    details: dict[str, Any] | None = None
    passed: bool | None = None


@dataclass(frozen=True)
class ScorerResult:
    """One scorer's verdict on one answer, after threshold and ``negate``."""

    name: str
    type: str
    score: float  # in [0, 1]
    passed: bool
    weight: float
    reason: str
    details: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The plain dict stored in ``EvalResult.scores``."""
        return {
            "name": self.name,
            "type": self.type,
            "score": self.score,
            "passed": self.passed,
            "weight": self.weight,
            "reason": self.reason,
            "details": self.details,
        }


@dataclass(frozen=True)
class CaseScore:
    """A case's weighted score over its scorers (weight-0 scorers are informative only) and whether it passed."""

    score: float
    passed: bool
    results: list[ScorerResult]

    def to_json(self) -> list[dict[str, Any]]:
        return [result.to_json() for result in self.results]


@dataclass(frozen=True)
class PairwiseVerdict:
    """Which of two answers a judge prefers: ``A``, ``B`` or ``tie`` (also when the two orders disagree)."""

    winner: Literal["A", "B", "tie"]
    reasoning: str
    # the verdict of each order, in the caller's labels: [as asked (A first), swapped (B first)];
    # None where the judge's answer named no winner
    votes: list[Literal["A", "B", "tie"] | None] = field(default_factory=list)


@runtime_checkable
class ModelAccess(Protocol):
    """How scorers reach models; every call is recorded as a Run (source "eval") by the implementation.

    ``target`` None means the default: the judge default is the local model; the embedding default is what
    the deployment configured, else :class:`~promptops.errors.ValidationProblem` ``no_embedding_model``.
    Failed calls raise :class:`~promptops.errors.ProblemError`.
    """

    async def complete(
        self, target: ModelTarget | None, prompt: str, *, max_tokens: int = 256, stop: list[str] | None = None
    ) -> str: ...

    async def embed(self, target: ModelTarget | None, texts: list[str]) -> list[list[float]]: ...


@runtime_checkable
class Scorer(Protocol):
    """A scorer type: built-ins and operators' entry points (group ``promptops.scorers``) implement this.

    ``validate`` raises ``ValueError`` (or a ProblemError) saying what is wrong with a spec; it runs when an
    evaluation is created, before any model call. ``score`` returns an :class:`Outcome` or a
    ``(score, reason, details)`` tuple with the score in [0, 1] before ``negate``.
    """

    @property
    def type(self) -> str: ...

    @property
    def default_threshold(self) -> float: ...

    def validate(self, spec: ScorerSpec) -> None: ...

    async def score(self, spec: ScorerSpec, inp: ScoreInput, models: ModelAccess) -> Any: ...


class NoReference(Exception):
    """The scorer compares against something, but it has no ``value`` and the case no expected output."""


def reference(spec: ScorerSpec, inp: ScoreInput) -> Any:
    """The spec's ``value``, else the case's expected output."""
    if spec.value is not None:
        return spec.value
    if inp.expected is not None:
        return inp.expected
    raise NoReference("no value to compare with: the scorer has no value and the case no expected output")


def json_safe(details: Any) -> dict[str, Any]:
    """``details`` as a small JSON-serialisable dict (custom scorers may return anything)."""
    if not isinstance(details, dict):
        return {} if details is None else {"value": str(details)[:MAX_REASON_CHARS]}
    try:
        raw = orjson.dumps(details, default=str, option=orjson.OPT_NON_STR_KEYS)
    except (TypeError, orjson.JSONEncodeError):
        return {"unserializable": repr(details)[:MAX_REASON_CHARS]}
    if len(raw) > MAX_DETAILS_BYTES:
        return {"truncated": True, "size": len(raw)}
    value: dict[str, Any] = orjson.loads(raw)
    return value


def clamp01(value: float) -> float:
    if math.isnan(value):
        raise ValueError("score is NaN")
    return min(1.0, max(0.0, float(value)))


def clip(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, marked when cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"
