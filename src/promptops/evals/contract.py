"""Seed 004 ``POST /api/prompt/evaluate``: score a prompt (registry reference or raw text) on inline test cases,
synchronously, with the same cell evaluation the background engine uses.
"""

from __future__ import annotations

import hashlib
import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from promptops.auth.principal import Principal
from promptops.datasets.binding import bind, variable_names
from promptops.errors import NotFound, ValidationProblem
from promptops.evals import quick, service
from promptops.evals.baselines import versus_majority
from promptops.evals.engine import CellOutcome
from promptops.evals.schemas import PromptEvalRequest, ScorerSpec
from promptops.evals.scoring import label_task, scorers_for, validate_specs
from promptops.governance import audit
from promptops.registry import service as registry
from promptops.runtime import Runtime
from promptops.templates import preanalyze

if TYPE_CHECKING:
    from promptops.registry.models import PromptVersion

REF_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_./-]*(@[A-Za-z0-9_-]+)?$")
CONCURRENCY = 8
MAX_FAILURES_SHOWN = 5


def _expected_text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return orjson.dumps(value).decode()


async def _version(runtime: Runtime, principal: Principal, prompt: str) -> tuple[PromptVersion, str | None]:
    """(version, registry prompt id) for a reference; raw text becomes an unsaved version."""
    if REF_PATTERN.match(prompt):
        try:
            async with runtime.db.transaction() as session:
                found_prompt, version = await service.resolve_prompt_ref(session, principal, prompt)
                session.expunge(version)
                return version, found_prompt.id
        except NotFound:
            if "@" in prompt:
                raise
    await preanalyze("text", prompt, None)  # a big text is parsed off the event loop, then found cached
    return registry.unsaved_version("text", prompt), None


@dataclass(frozen=True)
class CaseResult:
    """One test case: the answer, its score and the recorded run."""

    index: int
    output: str | None
    expected: str | None
    score: float
    passed: bool
    scores: list[dict[str, Any]]
    error: str | None
    run_id: str | None


@dataclass(frozen=True)
class Evaluation:
    """The mean score of a prompt on the request's test cases and a readable summary (the router maps it to
    ``PromptEvalResult``)."""

    prompt_id: str  # the registry prompt id, else ``inline:<hash of the text>``
    version_id: str | None
    score: float
    pass_rate: float
    feedback: str
    baselines: dict[str, Any] | None  # labelled cases: the prompt versus always answering the majority label
    cases: tuple[CaseResult, ...]


async def evaluate(runtime: Runtime, principal: Principal, body: PromptEvalRequest) -> Evaluation:
    """Run every test case, score it, and answer with the mean score and a readable summary.

    Load the version (a short read transaction), call the model on every case (no transaction open), then
    write ``PromptEvaluated`` in one write transaction.
    """
    version, prompt_id = await _version(runtime, principal, body.prompt)
    await preanalyze(version.kind, version.template, version.messages)
    names = variable_names(version)
    cases = [
        (bind(c.input, names, case=f"testCases[{i}].input"), _expected_text(c.expected))
        for i, c in enumerate(body.test_cases)
    ]
    scorers = scorers_for(body.scorers, (e for _, e in cases))
    if not scorers:
        raise ValidationProblem(
            "Test cases have no 'expected' values and no scorers were given", code="no_scorers"
        )
    validate_specs(scorers)
    target = body.model.model_dump() if body.model else service.version_target(version)
    await service.check_targets(runtime.caller, principal, [target])
    version_id = version.id if prompt_id else None
    result = await quick.evaluate_version(
        runtime,
        principal,
        version,
        target,
        [quick.QuickCase(v, e) for v, e in cases],
        scorers,
        prompt_id=prompt_id,
        version_id=version_id,
        concurrency=CONCURRENCY,
    )
    expected = [e for _, e in cases]
    outcomes = result.outcomes
    versus = _versus_majority(expected, outcomes, scorers)
    # the baselines block carries the figures, the summary the sentence
    sentence = versus.pop("sentence") if versus is not None else None
    evaluation = Evaluation(
        prompt_id=prompt_id or "inline:" + hashlib.sha256(body.prompt.encode()).hexdigest()[:16],
        version_id=version_id,
        score=round(statistics.fmean(o.score for o in outcomes), 4),
        pass_rate=round(sum(1 for o in outcomes if o.passed) / len(outcomes), 4),
        feedback=_feedback(outcomes, expected, target, sentence),
        baselines=versus,
        cases=tuple(
            CaseResult(i, o.output, expected[i], o.score, o.passed, o.scores, o.error_class, o.run_id)
            for i, o in enumerate(outcomes)
        ),
    )
    await _record(runtime, principal, prompt_id, evaluation, scorers, target)
    return evaluation


def _versus_majority(
    expected: list[str | None], outcomes: Sequence[CellOutcome], scorers: Sequence[ScorerSpec]
) -> dict[str, Any] | None:
    if label_task(scorers) is None:
        return None
    return versus_majority(
        expected, [o.passed for o in outcomes], [o.score for o in outcomes], who="This prompt"
    )


def _feedback(
    outcomes: Sequence[CellOutcome],
    expected: list[str | None],
    target: dict[str, Any],
    versus_sentence: str | None,
) -> str:
    """How many cases passed, how that compares with the majority label, why the first failing cases failed."""
    passed = sum(1 for o in outcomes if o.passed)
    lines = [f"{passed}/{len(outcomes)} test cases passed on {service.target_label(target)}."]
    failures = [(i, o) for i, o in enumerate(outcomes) if not o.passed]
    for i, o in failures[:MAX_FAILURES_SHOWN]:
        if o.error_class:
            lines.append(f"Case {i}: error {o.error_class}: {o.error_message}")
        else:
            reasons = "; ".join(s.get("reason", "") for s in o.scores if not s.get("passed"))
            lines.append(f"Case {i}: expected {expected[i]!r}, got {(o.output or '').strip()!r} ({reasons})")
    if len(failures) > MAX_FAILURES_SHOWN:
        lines.append(f"... and {len(failures) - MAX_FAILURES_SHOWN} more failing case(s).")
    if versus_sentence is not None:
        lines.insert(1, versus_sentence)
    return " ".join(lines)


async def _record(
    runtime: Runtime,
    principal: Principal,
    prompt_id: str | None,
    evaluation: Evaluation,
    scorers: Sequence[ScorerSpec],
    target: dict[str, Any],
) -> None:
    async with runtime.db.transaction(write=True) as session:
        await audit.record(
            session,
            principal,
            "PromptEvaluated",
            prompt_id=prompt_id,
            data={
                "promptId": evaluation.prompt_id,
                "versionId": evaluation.version_id,
                "evalScore": evaluation.score,
                "passRate": evaluation.pass_rate,
                "evaluator": f"api:evaluate ({', '.join(sorted({s.type for s in scorers}))}) on "
                f"{service.target_label(target)}",
                "feedback": evaluation.feedback[:2000],
                "cases": len(evaluation.cases),
            },
        )
