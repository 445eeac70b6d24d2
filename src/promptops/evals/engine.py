"""The evaluation job: run every (case, version, model) cell, score it, store it as soon as it completes.

Durability comes from the result table: a cell is done exactly when its row exists (unique per run, case,
version and target). Running the job again after a crash or restart only runs the cells without a row.
Results are written in small batches (at most ``FLUSH_SECONDS`` apart), together with the run's progress
counters and heartbeat; the same flush notices a cancellation request.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite

from promptops.auth.principal import Principal
from promptops.datasets import service as datasets
from promptops.datasets.binding import case_variables
from promptops.db import utcnow
from promptops.errors import ProblemError
from promptops.evals import service
from promptops.evals.models import EvalResult, EvalRun
from promptops.evals.schemas import EvalRunSpec, RunVersion, ScorerSpec
from promptops.evals.scoring import CallerModelAccess, ModelAccess, ScoreInput, label_task, score_case
from promptops.governance import audit
from promptops.ids import new_id
from promptops.jobs import lifecycle
from promptops.jobs.base import register_job
from promptops.logging import log
from promptops.providers.base import ProviderError
from promptops.providers.calls import CallContext, CallInput, ModelCaller, Target
from promptops.providers.service import LOCAL_MODEL, LOCAL_NAME
from promptops.registry import service as registry
from promptops.runs.payloads import insert_runs
from promptops.runs.recorder import collect_runs
from promptops.runs.rollup import add_runs, stamp_runs
from promptops.runtime import Runtime
from promptops.templates import engine as templates

if TYPE_CHECKING:
    from promptops.datasets.models import DatasetCase
    from promptops.registry.models import PromptVersion
    from promptops.runs.models import Run

FLUSH_SECONDS = 0.05
FLUSH_BATCH = 256
MAX_CELL_ATTEMPTS = 3
LABEL_MIN_TOKENS = 8
LABEL_EXTRA_TOKENS = 6  # room for a lead-in such as "Sentiment:" before the label
DEFAULT_JUDGE = Target(LOCAL_NAME, LOCAL_MODEL, {"temperature": 0})


@dataclass(frozen=True)
class CellOutcome:
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
    rendered: str


def answer_params(
    params: dict[str, Any], scorers: Sequence[ScorerSpec], kind: str, expected: str | None
) -> dict[str, Any]:
    """The model parameters of an evaluation call: ``params`` as given, except that a classification (a
    ``label`` scorer) whose prompt and request set neither ``stop`` nor ``max_tokens`` gets a short answer:
    ``max_tokens`` enough for the longest label and a short lead-in, and for text prompts (what completion
    and base models get) a stop at the end of the first line, so a base model does not ramble on into more
    examples. Free-text tasks keep the caller's general default limit."""
    labels = label_task(scorers)
    if labels is None or any(k in params for k in ("stop", "max_tokens", "maxTokens")):
        return params
    longest = max((len(label) for label in [*labels, expected or ""]), default=0)
    out = {**params, "max_tokens": max(LABEL_MIN_TOKENS, -(-longest // 3) + LABEL_EXTRA_TOKENS)}
    if kind == "text":
        out["stop"] = ["\n"]
    return out


def _flatten(result: templates.RenderResult) -> str:
    if result.text is not None:
        return result.text
    return "\n".join(f"{m.get('role', '')}: {m.get('content', '')}" for m in result.messages or [])


async def evaluate_cell(
    caller: ModelCaller,
    ctx: CallContext,
    *,
    version: PromptVersion,
    target: dict[str, Any],
    variables: dict[str, Any],
    expected: str | None,
    scorers: Sequence[ScorerSpec],
    pass_threshold: float,
    models: ModelAccess,
    resolver: templates.Resolver,
    cache_ttl: int | None = None,
    max_depth: int = 5,
) -> CellOutcome:
    """Render ``version`` with the case's variables, call the model (retrying rate limits), score the answer.

    Every failure a case can cause (missing variable, provider error) becomes a failed cell, not an exception.
    """
    specs = [templates.VariableSpec.from_dict(v) for v in version.variables]
    try:
        rendered = await templates.render(
            version.kind, version.template, version.messages, specs, variables, resolver, max_depth=max_depth
        )
    except ProblemError as error:
        return CellOutcome(
            None, [], 0.0, False, 0.0, 0, 0, 0.0, False, error.code, error.detail[:2000], None, ""
        )
    call = CallInput(
        prompt=rendered.text, messages=rendered.messages, response_schema=version.response_schema
    )
    params = answer_params(dict(target.get("params") or {}), scorers, version.kind, expected)
    model = Target(target["provider"], target["model"], params)
    outcome = await caller.call(ctx, model, call, cache_ttl=cache_ttl)
    for attempt in range(1, MAX_CELL_ATTEMPTS):
        failure = outcome.error
        if not (isinstance(failure, ProviderError) and failure.retryable):
            break
        # The adapters already retried; back off longer here (rate limits last) before trying the cell again.
        wait = failure.extra.get("retryAfter") or 2.0**attempt
        await asyncio.sleep(min(float(wait), 60.0))
        outcome = await caller.call(ctx, model, call, cache_ttl=cache_ttl)
    flat = _flatten(rendered)
    usage = outcome.usage
    inp = ScoreInput(
        output=outcome.text if outcome.ok else None,
        expected=expected,
        variables=variables,
        prompt_text=flat,
        latency_ms=outcome.latency_ms,
        cost_usd=outcome.cost_usd,
        input_tokens=usage.input_tokens if usage else 0,
        output_tokens=usage.output_tokens if usage else 0,
        error=outcome.error.code if outcome.error else None,
    )
    case_score = await score_case(list(scorers), inp, models, pass_threshold=pass_threshold)
    return CellOutcome(
        output=outcome.text,
        scores=[r.to_json() for r in case_score.results],
        score=case_score.score,
        passed=case_score.passed,
        latency_ms=outcome.latency_ms,
        input_tokens=inp.input_tokens,
        output_tokens=inp.output_tokens,
        cost_usd=outcome.cost_usd,
        cached=outcome.cached,
        error_class=outcome.error.code if outcome.error else None,
        error_message=outcome.error.detail[:2000] if outcome.error else None,
        run_id=outcome.run.id if outcome.run is not None else None,
        rendered=flat,
    )


class CachedIncludes:
    """Resolves includes once per evaluation, so every case sees the same included versions."""

    def __init__(self, runtime: Runtime, principal: Principal) -> None:
        self.runtime = runtime
        self.principal = principal
        self.found: dict[str, templates.IncludedPrompt] = {}
        self.lock = asyncio.Lock()

    async def __call__(self, ref: str) -> templates.IncludedPrompt:
        if ref in self.found:
            return self.found[ref]
        async with self.lock:
            if ref not in self.found:
                async with self.runtime.db.transaction() as session:
                    resolve = registry.include_resolver(session, self.principal)
                    self.found[ref] = await resolve(ref)
        return self.found[ref]


@dataclass(frozen=True)
class Cell:
    case: DatasetCase
    entry: RunVersion
    version: PromptVersion
    target_index: int


class ResultWriter:
    """Buffers finished cells and writes them in short write transactions: each flush inserts the results and
    the model calls (runs) behind them together, advances the run's progress and heartbeat, and reads the
    cancellation flag. A flush happens every ``FLUSH_SECONDS`` or as soon as ``FLUSH_BATCH`` cells wait, so a
    crash loses at most the unflushed buffer (results and runs alike), which a resumed job runs again."""

    def __init__(self, runtime: Runtime, run_id: str) -> None:
        self.runtime = runtime
        self.run_id = run_id
        self.results: list[dict[str, Any]] = []
        self.runs: list[Run] = []
        self.cancel_requested = False
        self._closing = False
        self._wake = asyncio.Event()

    def add(self, result: dict[str, Any], runs: Sequence[Run] = ()) -> None:
        self.results.append(result)
        self.runs.extend(runs)
        if len(self.results) >= FLUSH_BATCH:
            self._wake.set()

    async def flush(self) -> None:
        results, self.results = self.results, []
        runs, self.runs = self.runs, []
        async with self.runtime.db.transaction(write=True) as session:
            if runs:
                stamp_runs(runs)
                await insert_runs(session, runs)
                await session.flush()
            inserted: list[str | None] = []
            if results:
                dialect = session.get_bind().dialect.name
                insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
                # A row that exists already (a cell finished twice around a restart) is kept as it was; the
                # totals count only the rows this flush really added (RETURNING gives those alone).
                stmt = insert(EvalResult).values(results).on_conflict_do_nothing()
                inserted = list((await session.execute(stmt.returning(EvalResult.error_class))).scalars())
            run = await session.get(EvalRun, self.run_id)
            assert run is not None
            # The totals move with the rows in the same transaction, so they never disagree with the table
            # (counting the whole table on every flush made a long evaluation quadratic).
            run.done_cells += len(inserted)
            run.error_cells += sum(1 for error in inserted if error is not None)
            self.cancel_requested = lifecycle.beat(run)
            # Last, just before the commit: the rollup rows are shared with every other writer of the same
            # prompt/model, so their locks are held for as short a time as possible.
            await add_runs(session, runs)

    async def loop(self) -> None:
        """Flush every ``FLUSH_SECONDS`` (sooner when a batch fills) until :meth:`close`, then a last time.

        The loop is never cancelled mid-flush: a commit interrupted by cancellation may still land after
        the run's totals were computed, so stopping is a request the loop honours between flushes.
        """
        while not self._closing:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), FLUSH_SECONDS)
            self._wake.clear()
            await self.flush()
        await self.flush()

    def close(self) -> None:
        self._closing = True
        self._wake.set()


class RunPlan:
    """What every cell of one run shares, worked out once per job rather than once per cell: the typed spec,
    scorers, target labels and the per-case scorer lists (only cases with their own scorers differ)."""

    def __init__(self, run: EvalRun) -> None:
        self.run = run
        self.spec: EvalRunSpec = run.spec_model
        self.variables = self.spec.variables
        self.labels = {
            (entry.version_id, index): service.target_label(target)
            for entry in self.spec.versions
            for index, target in enumerate(entry.targets)
        }
        self.targets = {
            (entry.version_id, index): target.model_dump()
            for entry in self.spec.versions
            for index, target in enumerate(entry.targets)
        }

    def scorers(self, case: DatasetCase) -> list[ScorerSpec]:
        extra = (case.metadata_ or {}).get("scorers") or []
        if not extra:
            return self.spec.scorers
        return [*self.spec.scorers, *(ScorerSpec.model_validate(s) for s in extra)]

    def row(self, cell: Cell, outcome: CellOutcome) -> dict[str, Any]:
        """The ``eval_results`` row of a finished cell."""
        return {
            "id": new_id("eval_result"),
            "project_id": self.run.project_id,
            "eval_run_id": self.run.id,
            "case_id": cell.case.id,
            "case_key": cell.case.key,
            "version_id": cell.version.id,
            "target_index": cell.target_index,
            "target": self.labels[(cell.version.id, cell.target_index)],
            "output": outcome.output,
            "scores": outcome.scores,
            "score": outcome.score,
            "passed": outcome.passed,
            "latency_ms": outcome.latency_ms,
            "input_tokens": outcome.input_tokens,
            "output_tokens": outcome.output_tokens,
            "cost_usd": outcome.cost_usd,
            "cached": outcome.cached,
            "error_class": outcome.error_class,
            "error_message": outcome.error_message,
            "run_id": outcome.run_id,
            "created_at": utcnow(),
        }

    def cells(
        self, cases: list[DatasetCase], versions: dict[str, PromptVersion], done: set[Any]
    ) -> Iterator[Cell]:
        for case in cases:
            for entry in self.spec.versions:
                version = versions.get(entry.version_id)
                if version is None:
                    continue
                for index in range(len(entry.targets)):
                    if (case.id, version.id, index) not in done:
                        yield Cell(case, entry, version, index)


async def _load(
    runtime: Runtime, run: EvalRun
) -> tuple[list[DatasetCase], dict[str, PromptVersion], set[Any]]:
    spec = run.spec_model
    principal = spec.principal.principal()
    async with runtime.db.transaction() as session:  # sessions keep their rows usable after the commit
        by_id = await datasets.cases_by_id(session, principal, spec.case_ids)
        cases = [by_id[i] for i in spec.case_ids if i in by_id]
        versions = await registry.versions_by_id(session, principal, [v.version_id for v in spec.versions])
        done = set(
            (
                await session.execute(
                    select(EvalResult.case_id, EvalResult.version_id, EvalResult.target_index).where(
                        EvalResult.project_id == run.project_id, EvalResult.eval_run_id == run.id
                    )
                )
            ).all()
        )
    return cases, versions, done


async def execute(runtime: Runtime, run_id: str) -> None:
    """Run (or resume) evaluation ``run_id`` until every cell has a result, it is cancelled, or it fails."""
    run = await lifecycle.claim(runtime.db, EvalRun, run_id)
    if run is None:
        return
    plan = RunPlan(run)
    principal = plan.spec.principal.principal()
    log.info("eval_started", eval_run_id=run.id, attempt=run.attempts, total_cells=run.total_cells)
    try:
        cases, versions, done = await _load(runtime, run)
        for loaded in versions.values():  # parsed off the event loop before the per-case variable_names()
            await templates.preanalyze(loaded.kind, loaded.template, loaded.messages)
        ctx = CallContext(principal=principal, source="eval", trace_id=run.id)
        models = CallerModelAccess(runtime.caller, ctx, DEFAULT_JUDGE)
        resolver = CachedIncludes(runtime, principal)
        writer = ResultWriter(runtime, run.id)
        cells = plan.cells(cases, versions, done)
        cell_contexts = {
            entry.version_id: CallContext(
                principal=principal,
                source="eval",
                prompt_id=entry.prompt_id,
                version_id=entry.version_id,
                trace_id=run.id,
            )
            for entry in plan.spec.versions
        }

        async def work() -> None:
            for cell in cells:
                if writer.cancel_requested:
                    return
                # The cell's model calls are written with its result, in the writer's next transaction.
                with collect_runs() as runs:
                    outcome = await evaluate_cell(
                        runtime.caller,
                        cell_contexts[cell.version.id],
                        version=cell.version,
                        target=plan.targets[(cell.version.id, cell.target_index)],
                        variables=case_variables(cell.case, cell.version, plan.variables),
                        expected=cell.case.expected,
                        scorers=plan.scorers(cell.case),
                        pass_threshold=plan.spec.pass_threshold,
                        models=models,
                        resolver=resolver,
                        cache_ttl=plan.spec.cache_ttl_seconds,
                        max_depth=runtime.settings.include_max_depth,
                    )
                writer.add(plan.row(cell, outcome), runs)

        flusher = asyncio.create_task(writer.loop())
        try:
            await asyncio.gather(*(work() for _ in range(plan.spec.concurrency)))
        finally:
            # Whatever finished is kept, also when the server is shutting down mid-run.
            writer.close()
            await asyncio.shield(flusher)
        await _finish(runtime, run.id, principal, cancelled=writer.cancel_requested)
    except asyncio.CancelledError:
        log.info("eval_interrupted", eval_run_id=run.id)
        raise
    except Exception as exc:
        log.exception("eval_failed", eval_run_id=run.id)
        await lifecycle.fail(runtime.db, EvalRun, run.id, exc)


async def _finish(runtime: Runtime, run_id: str, principal: Principal, *, cancelled: bool) -> None:
    async with runtime.db.transaction(write=True) as session:
        run = await session.get(EvalRun, run_id)
        assert run is not None
        results = await service.all_results(session, run)
        groups = service.summarise(run, results)
        run.summary = {"groups": groups}
        run.done_cells = len(results)
        run.error_cells = sum(1 for r in results if r.error_class)
        cancelled = cancelled or run.cancel_requested
        lifecycle.finish(run, lifecycle.CANCELLED if cancelled else lifecycle.COMPLETED)
        if cancelled:
            return
        spec = run.spec_model
        scorer_types = sorted({s.type for s in spec.scorers})
        dataset = f"{spec.dataset.name}@{spec.dataset.version}" if spec.dataset else "None@None"
        for group in groups:
            await audit.record(
                session,
                principal,
                "PromptEvaluated",
                prompt_id=group["promptId"],
                data={
                    "promptId": group["promptId"],
                    "versionId": group["versionId"],
                    "evalScore": group["meanScore"],
                    "passRate": group["passRate"],
                    "evaluator": f"eval:{run.id} ({', '.join(scorer_types)}) on {group['target']}",
                    "feedback": f"{group['passed']}/{group['completed']} cases passed on "
                    f"{dataset}; {group['errors']} errors",
                    "evalRunId": run.id,
                },
            )
    log.info("eval_finished", eval_run_id=run_id, status="cancelled" if cancelled else "completed")


register_job("eval", execute, lifecycle.pending_query(EvalRun))
