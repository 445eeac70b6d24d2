"""In-request evaluation of one prompt version (saved or not) on a handful of cases.

Used by ``POST /api/prompt/evaluate`` and by PromptOpt (candidate scoring, the optimizer's inner loop): the
same rendering, model call and scoring as an evaluation run's cell, without a job or stored results. Every
model call is still a recorded Run.
"""

from __future__ import annotations

import asyncio
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from promptops.auth.principal import Principal
from promptops.evals import engine
from promptops.evals.schemas import ScorerSpec
from promptops.evals.scoring import CallerModelAccess
from promptops.providers.calls import CallContext
from promptops.runtime import Runtime

if TYPE_CHECKING:
    from promptops.registry.models import PromptVersion


@dataclass(frozen=True)
class QuickCase:
    variables: dict[str, Any]
    expected: str | None = None
    key: str | None = None


@dataclass(frozen=True)
class QuickResult:
    score: float  # mean case score in [0, 1]
    pass_rate: float
    passed: int
    outcomes: list[engine.CellOutcome]
    calls: int  # model calls made: one per case plus any judge / embedding calls


async def evaluate_version(
    runtime: Runtime,
    principal: Principal,
    version: PromptVersion,
    target: dict[str, Any],
    cases: Sequence[QuickCase],
    scorers: Sequence[ScorerSpec],
    *,
    source: str = "eval",
    prompt_id: str | None = None,
    version_id: str | None = None,
    trace_id: str | None = None,
    concurrency: int = 8,
    pass_threshold: float = 1.0,
    cache_ttl: int | None = None,
) -> QuickResult:
    """Run ``version`` on every case with ``target`` and score the answers (concurrently, bounded)."""
    if not cases:
        raise ValueError("evaluate_version needs at least one case")
    ctx = CallContext(
        principal=principal, source=source, prompt_id=prompt_id, version_id=version_id, trace_id=trace_id
    )
    models = CallerModelAccess(runtime.caller, ctx, engine.DEFAULT_JUDGE)
    resolver = engine.CachedIncludes(runtime, principal)
    limit = asyncio.Semaphore(concurrency)

    async def one(case: QuickCase) -> engine.CellOutcome:
        async with limit:
            return await engine.evaluate_cell(
                runtime.caller,
                ctx,
                version=version,
                target=target,
                variables=case.variables,
                expected=case.expected,
                scorers=scorers,
                pass_threshold=pass_threshold,
                models=models,
                resolver=resolver,
                cache_ttl=cache_ttl,
                max_depth=runtime.settings.include_max_depth,
            )

    outcomes = list(await asyncio.gather(*(one(c) for c in cases)))
    passed = sum(1 for o in outcomes if o.passed)
    return QuickResult(
        score=statistics.fmean(o.score for o in outcomes),
        pass_rate=passed / len(outcomes),
        passed=passed,
        outcomes=outcomes,
        calls=len(outcomes) + models.calls,
    )
