"""The optimization job (kind ``optimize``): run :class:`promptops.optimize.search.loop.Search` against the database.

Durability follows the evaluation engine: the job's state is the stored rows. Every candidate is written
when it is proposed and again as soon as it is scored, together with the optimization's call count,
progress report and heartbeat; the same write notices a cancellation request. Running the job again after
a crash or restart reloads the candidates and continues the round it was in, without scoring any stored
candidate again. At the end the winner is saved as a new version of the prompt (source ``generated``),
labelled only when ``promoteLabel`` was asked for and the starter may move that label.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from promptops.auth.principal import Principal
from promptops.datasets import service as datasets
from promptops.datasets.binding import case_variables
from promptops.db import utcnow
from promptops.errors import ProblemError
from promptops.evals import quick
from promptops.evals.scoring.builtin import normalise_label
from promptops.governance import audit
from promptops.ids import new_id
from promptops.jobs import lifecycle
from promptops.jobs.base import register_job
from promptops.logging import log
from promptops.optimize.examples import Example, labels_of
from promptops.optimize.models import Optimization, OptimizationCandidate
from promptops.optimize.search import loop as search
from promptops.optimize.search import proposer
from promptops.optimize.search.mutations import Draft
from promptops.optimize.search.verdict import held_out
from promptops.providers.calls import CallContext
from promptops.registry import service as registry
from promptops.registry.schemas import CreateVersionIn
from promptops.runtime import Runtime
from promptops.templates import engine as templates

if TYPE_CHECKING:
    from promptops.datasets.models import DatasetCase
    from promptops.registry.models import PromptVersion


class DbStore:
    """The search's :class:`~promptops.optimize.search.loop.Store`: one short write transaction per change."""

    def __init__(self, runtime: Runtime, optimization: Optimization) -> None:
        self.runtime = runtime
        self.id = optimization.id
        self.project_id = optimization.project_id
        self.calls_used = optimization.calls_used

    def _row(self, candidate: search.Candidate) -> dict[str, Any]:
        return {
            "round": candidate.round,
            "strategy": candidate.strategy[:60],
            "template": candidate.draft.display(),
            "parent_candidate_id": candidate.parent_id,
            "train_score": candidate.train_score,
            "val_score": candidate.val_score,
            "calls": candidate.calls,
            "details": {
                **candidate.details,
                "seq": candidate.seq,
                "status": candidate.status,
                "recipe": candidate.recipe,
                "draft": candidate.draft.to_json(),
                "tokens": candidate.tokens,
            },
        }

    async def _touch(self, session: Any, calls: int, best: search.Candidate | None = None) -> bool:
        optimization = await session.get(Optimization, self.id)
        assert optimization is not None
        optimization.calls_used += calls
        self.calls_used = optimization.calls_used
        cancel_requested = lifecycle.beat(optimization)
        if best is not None and best.scored:
            current = (
                await session.get(OptimizationCandidate, optimization.best_candidate_id)
                if optimization.best_candidate_id
                else None
            )
            if current is None or (current.train_score or 0.0) < (best.train_score or 0.0):
                optimization.best_candidate_id = best.id
        return cancel_requested

    async def add(self, candidates: Sequence[search.Candidate], calls: int) -> bool:
        async with self.runtime.db.transaction(write=True) as session:
            for candidate in candidates:
                session.add(
                    OptimizationCandidate(
                        id=candidate.id,
                        project_id=self.project_id,
                        optimization_id=self.id,
                        created_at=utcnow(),
                        **self._row(candidate),
                    )
                )
            await session.flush()
            return await self._touch(session, calls)

    async def update(self, candidate: search.Candidate, calls: int) -> bool:
        async with self.runtime.db.transaction(write=True) as session:
            row = await session.get(OptimizationCandidate, candidate.id)
            assert row is not None
            for name, value in self._row(candidate).items():
                setattr(row, name, value)
            await session.flush()
            return await self._touch(session, calls, candidate)

    async def progress(self, report: dict[str, Any]) -> bool:
        async with self.runtime.db.transaction(write=True) as session:
            optimization = await session.get(Optimization, self.id)
            assert optimization is not None
            optimization.report = {**(optimization.report or {}), **report}
            return await self._touch(session, 0)


def _candidate(row: OptimizationCandidate) -> search.Candidate:
    details = dict(row.details or {})
    seq = details.pop("seq", 0)
    status = details.pop("status", "scored")
    recipe = details.pop("recipe", {})
    draft = Draft.from_json(details.pop("draft"))
    details.pop("tokens", None)
    return search.Candidate(
        id=row.id,
        round=row.round,
        seq=seq,
        strategy=row.strategy,
        recipe=recipe,
        draft=draft,
        parent_id=row.parent_candidate_id,
        train_score=row.train_score,
        val_score=row.val_score,
        calls=row.calls,
        status=status,
        details=details,
    )


async def _load(
    runtime: Runtime, optimization: Optimization
) -> tuple[PromptVersion, dict[str, DatasetCase], list[search.Candidate]]:
    spec = optimization.spec_model
    principal = spec.principal.principal()
    async with runtime.db.transaction() as session:  # sessions keep their rows usable after the commit
        version = await registry.get_version_by_id(session, principal, optimization.base_version_id)
        cases = await datasets.cases_by_id(session, principal, [*spec.train_case_ids, *spec.val_case_ids])
        rows = (
            await session.execute(
                select(OptimizationCandidate).where(
                    OptimizationCandidate.project_id == optimization.project_id,
                    OptimizationCandidate.optimization_id == optimization.id,
                )
            )
        ).scalars()
        candidates = sorted((_candidate(r) for r in rows), key=lambda c: (c.round, c.seq))
        session.expunge(version)
    return version, cases, candidates


def _quick_cases(
    cases: dict[str, DatasetCase], ids: Sequence[str], version: PromptVersion
) -> list[quick.QuickCase]:
    return [
        quick.QuickCase(case_variables(cases[i], version), cases[i].expected, cases[i].key)
        for i in ids
        if i in cases
    ]


class Evaluator:
    """Scores a draft on one split through the same rendering, call and scoring as an evaluation cell."""

    def __init__(
        self,
        runtime: Runtime,
        principal: Principal,
        optimization: Optimization,
        version: PromptVersion,
        cases: dict[str, DatasetCase],
    ) -> None:
        spec = optimization.spec_model
        self.runtime = runtime
        self.principal = principal
        self.optimization = optimization
        self.version = version
        self.target = spec.target.model_dump()
        self.scorers = spec.scorers
        train = _quick_cases(cases, spec.train_case_ids, version)
        screen = screening_subset(train)
        chosen = {id(c) for c in screen}
        self.splits = {
            "screen": screen,
            "rest": [c for c in train if id(c) not in chosen],
            "val": _quick_cases(cases, spec.val_case_ids, version),
        }
        self.train = train
        self.concurrency = spec.concurrency

    async def __call__(self, draft: Draft, split: search.Split) -> search.SplitScore:
        candidate = registry.unsaved_version(
            draft.kind,
            draft.template,
            draft.message_dicts(),
            variables=list(self.version.variables),
            response_schema=self.version.response_schema,
            model_config=dict(self.version.model_config_ or {}),
        )
        target = {**self.target, "params": dict(draft.params)}
        result = await quick.evaluate_version(
            self.runtime,
            self.principal,
            candidate,
            target,
            self.splits[split],
            self.scorers,
            source="eval",
            prompt_id=self.optimization.prompt_id,
            trace_id=self.optimization.id,
            concurrency=self.concurrency,
        )
        if not self.splits[split]:
            return search.SplitScore(score=0.0, calls=0, passed=0, total=0, errors=0)
        called = [o for o in result.outcomes if o.run_id is not None]
        if called and all(o.error_class for o in called):
            first = called[0]
            # The model itself is failing (not one bad prompt): stop rather than burn the budget on errors.
            raise RuntimeError(f"every model call failed: {first.error_class}: {first.error_message}")
        return search.SplitScore(
            score=result.score,
            calls=result.calls,
            passed=result.passed,
            total=len(result.outcomes),
            errors=sum(1 for o in result.outcomes if o.error_class),
            unparsed=sum(1 for o in result.outcomes if _unparsed(o.scores)),
            cases=tuple((o.passed, o.score) for o in result.outcomes),
        )


def _unparsed(scores: Sequence[dict[str, Any]]) -> bool:
    """No label could be read in the answer (a label scorer said so)."""
    return any(s.get("type") == "label" and (s.get("details") or {}).get("unparsed") for s in scores)


SCREEN_MIN = 10
SCREEN_MAX = 50
SCREEN_WHOLE_BELOW = 16  # training splits this small are not screened: every candidate sees all of it


def screening_subset(train: Sequence[quick.QuickCase]) -> list[quick.QuickCase]:
    """The training cases a candidate is screened on: about a quarter of the split (10 to 50 cases), taken
    round robin over the expected labels so every label is represented; the whole split when it is small."""
    if len(train) <= SCREEN_WHOLE_BELOW:
        return list(train)
    size = min(SCREEN_MAX, max(SCREEN_MIN, len(train) // 4))
    groups: dict[str, list[quick.QuickCase]] = {}
    for case in train:
        groups.setdefault(normalise_label(case.expected or ""), []).append(case)
    picked: list[quick.QuickCase] = []
    index = 0
    while len(picked) < size:
        for name in sorted(groups):
            if index < len(groups[name]) and len(picked) < size:
                picked.append(groups[name][index])
        index += 1
    return picked


def _llm_proposer(
    runtime: Runtime,
    principal: Principal,
    optimization: Optimization,
    base: Draft,
    examples: Sequence[Example],
    allowed: Sequence[str],
) -> search.LlmProposer:
    spec = optimization.spec_model
    ctx = CallContext(
        principal=principal, source="eval", prompt_id=optimization.prompt_id, trace_id=optimization.id
    )
    required = list(spec.variables)

    async def propose(
        parents: Sequence[search.Candidate], seen: set[str]
    ) -> list[tuple[Draft | None, str, int]]:
        scored = [(p.draft, p.train_score or 0.0) for p in parents if p.train_score is not None]
        found = await proposer.propose(
            runtime.caller,
            ctx,
            spec.proposer.target.model_dump(),
            base=base,
            scored=scored,
            examples=examples,
            required=required,
            variables=required,
            seen=seen,
            allowed=allowed,
        )
        return [(found.draft, found.reason, found.calls)]

    return propose


async def execute(runtime: Runtime, optimization_id: str) -> None:
    """Run (or resume) optimization ``optimization_id`` until it finishes, is cancelled, or fails."""
    optimization = await lifecycle.claim(runtime.db, Optimization, optimization_id)
    if optimization is None:
        return
    spec = optimization.spec_model
    principal = spec.principal.principal()
    log.info("optimization_started", optimization_id=optimization.id, attempt=optimization.attempts)
    try:
        version, cases, candidates = await _load(runtime, optimization)
        await templates.preanalyze(version.kind, version.template, version.messages)  # off the event loop
        evaluate = Evaluator(runtime, principal, optimization, version, cases)
        examples = [
            Example(c.key, case_variables(c, version), c.expected)
            for i in spec.train_case_ids
            if (c := cases.get(i)) is not None and c.expected is not None
        ]
        labels = labels_of(examples)
        base = Draft.from_json(spec.base)
        per_case = spec.calls_per_case
        settings = search.Settings(
            budget=spec.budget,
            top_k=spec.top_k,
            max_rounds=spec.max_rounds,
            patience=spec.patience,
            per_round=spec.candidates_per_round,
            seed=spec.seed,
            proposer=spec.proposer.mode,
            llm_per_round=spec.proposer.per_round,
            screen_cost=len(evaluate.splits["screen"]) * per_case,
            rest_cost=len(evaluate.splits["rest"]) * per_case,
            val_cost=len(evaluate.splits["val"]) * per_case,
        )
        declared = [v["name"] for v in version.variables] + list(spec.variables)
        llm = None
        if settings.proposer in ("llm", "mixed"):
            llm = _llm_proposer(runtime, principal, optimization, base, examples, declared)
        loop = search.Search(
            settings,
            DbStore(runtime, optimization),
            evaluate,
            lambda: new_id("candidate"),
            base=base,
            examples=examples,
            labels=labels,
            variables=list(spec.variables),
            candidates=candidates,
            report=dict(optimization.report or {}),
            llm=llm,
        )
        try:
            outcome = await loop.run()
        except search.Cancelled:
            await _cancelled(runtime, optimization.id, principal)
            return
        verdict = held_out(
            outcome.baseline.details,
            outcome.winner.details,
            same=outcome.winner is outcome.baseline,
            val_expected=[c.expected for c in evaluate.splits["val"]],
            train_expected=[c.expected for c in evaluate.train],
            classification=bool(labels),
        )
        await _finish(runtime, optimization.id, principal, version, outcome, verdict)
    except asyncio.CancelledError:
        log.info("optimization_interrupted", optimization_id=optimization.id)
        raise
    except Exception as exc:
        log.exception("optimization_failed", optimization_id=optimization.id)
        await lifecycle.fail(runtime.db, Optimization, optimization.id, exc, _phase("failed"))


def _phase(phase: str) -> Callable[[Optimization], None]:
    def mark(optimization: Optimization) -> None:
        optimization.report = {**(optimization.report or {}), "phase": phase}

    return mark


async def _cancelled(runtime: Runtime, optimization_id: str, principal: Principal) -> None:
    async with runtime.db.transaction(write=True) as session:
        optimization = await session.get(Optimization, optimization_id)
        assert optimization is not None
        lifecycle.finish(optimization, lifecycle.CANCELLED)
        _phase("cancelled")(optimization)
    log.info("optimization_cancelled", optimization_id=optimization_id)


def _points(a: float | None, b: float | None) -> float:
    return round(100 * ((a or 0.0) - (b or 0.0)), 2)


def _summary(c: search.Candidate) -> dict[str, Any]:
    return {
        "candidateId": c.id,
        "round": c.round,
        "strategy": c.strategy,
        "trainScore": c.train_score,
        "valScore": c.val_score,
        "tokens": c.tokens,
    }


async def _finish(
    runtime: Runtime,
    optimization_id: str,
    principal: Principal,
    version: PromptVersion,
    outcome: search.Outcome,
    verdict: dict[str, Any],
) -> None:
    winner, baseline = outcome.winner, outcome.baseline
    improvement = _points(winner.val_score, baseline.val_score)
    report: dict[str, Any] = {
        "phase": "done",
        "heldOut": verdict,
        "summary": verdict["summary"],
        "stopReason": outcome.stop_reason,
        "baseline": _summary(baseline),
        "winner": _summary(winner),
        "finalists": [_summary(c) for c in outcome.finalists],
        "improvementPoints": improvement,
        "trainImprovementPoints": _points(winner.train_score, baseline.train_score),
        "keptBaseline": winner is baseline,
    }
    async with runtime.db.transaction(write=True) as session:
        optimization = await session.get(Optimization, optimization_id)
        assert optimization is not None
        spec = optimization.spec_model
        prompt_name = spec.prompt_name
        new_version = None
        if optimization.winner_version_id is not None:
            # A restart after the version was saved: keep that one.
            new_version = await registry.get_version_by_id(session, principal, optimization.winner_version_id)
        elif winner is not baseline:
            draft = winner.draft
            target = spec.target
            body = CreateVersionIn.model_validate(
                {
                    "kind": draft.kind,
                    "template": draft.template,
                    "messages": draft.message_dicts(),
                    "variables": list(version.variables),
                    "modelConfig": {
                        "provider": target.provider,
                        "model": target.model,
                        "params": dict(draft.params),
                    },
                    "responseSchema": version.response_schema,
                    "metadata": {
                        "optimizationId": optimization_id,
                        "candidateId": winner.id,
                        "strategy": winner.strategy,
                        "trainScore": winner.train_score,
                        "valScore": winner.val_score,
                        "baselineValScore": baseline.val_score,
                        "improvementPoints": improvement,
                        "significant": bool(verdict.get("significant")),
                    },
                    "commitMessage": (
                        f"Optimized by {optimization_id}: validation {baseline.val_score or 0:.2f} -> "
                        f"{winner.val_score or 0:.2f} ({improvement:+.0f} points)"
                    ),
                    "source": "generated",
                    "parentVersionId": version.id,
                }
            )
            _, new_version = await registry.create_version(session, principal, prompt_name, body)
            await audit.record(
                session,
                principal,
                "PromptGenerated",
                prompt_id=optimization.prompt_id,
                data={
                    "promptId": optimization.prompt_id,
                    "templateId": version.id,
                    "user": principal.display,
                    "versionId": new_version.id,
                    "version": new_version.version,
                    "optimizationId": optimization_id,
                    "strategy": winner.strategy,
                    "valScore": winner.val_score,
                },
            )
            optimization.winner_version_id = new_version.id
        if new_version is not None:
            report["winner"].update({"versionId": new_version.id, "version": new_version.version})
        optimization.best_candidate_id = (
            winner.id if winner is not baseline else optimization.best_candidate_id
        )
        # Finished only once the promotion and the final audit event are written (below).
        optimization.report = {**(optimization.report or {}), **report, "phase": "finishing"}
        label = spec.promote_label
    promotion: dict[str, Any] | None = None
    if label and new_version is not None and improvement > 0 and verdict.get("significant"):
        try:
            async with runtime.db.transaction(write=True) as session:
                moved = await registry.set_label(
                    session,
                    principal,
                    prompt_name,
                    label,
                    version_id=new_version.id,
                    reason=f"optimization {optimization_id}: {improvement:+.0f} points on validation",
                )
            if isinstance(moved, registry.LabelMove):
                promotion = {"label": label, "promoted": True}
            else:  # the label is gated by approvals: the promotion waits for reviewers
                promotion = {
                    "label": label,
                    "promoted": False,
                    "code": "approval_requested",
                    "approvalRequestId": moved.request.id,
                    "detail": f"the label needs approvals; request {moved.request.id} waits for review",
                }
        except ProblemError as error:
            promotion = {"label": label, "promoted": False, "code": error.code, "detail": error.detail}
    elif label:
        promotion = {
            "label": label,
            "promoted": False,
            "detail": "the winner does not beat the starting version"
            if new_version is None or improvement <= 0
            else "the gain on the held-out split is not significant",
        }
    async with runtime.db.transaction(write=True) as session:
        optimization = await session.get(Optimization, optimization_id)
        assert optimization is not None
        optimization.report = {**optimization.report, "phase": "done"}
        if promotion is not None:
            optimization.report["promotion"] = promotion
        lifecycle.finish(optimization, lifecycle.COMPLETED)
        await audit.record(
            session,
            principal,
            "OptimizationFinished",
            prompt_id=optimization.prompt_id,
            data={
                "optimizationId": optimization_id,
                "winner": new_version.id if new_version is not None else version.id,
                "winnerVersion": new_version.version if new_version is not None else version.version,
                "keptBaseline": new_version is None,
                "improvementPoints": improvement,
                "callsUsed": optimization.calls_used,
                "budget": spec.budget,
                "stopReason": outcome.stop_reason,
                "promoted": bool(promotion and promotion.get("promoted")),
            },
        )
    log.info(
        "optimization_finished",
        optimization_id=optimization_id,
        improvement_points=improvement,
        winner_version_id=new_version.id if new_version is not None else None,
    )


KIND = "optimize"
register_job(KIND, execute, lifecycle.pending_query(Optimization))
